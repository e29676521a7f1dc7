//! Who may reach what over the MCP routes, with raw HTTP so every status
//! and body is visible: the auth matrix (two workspaces × token kinds ×
//! admin MCP, endpoint MCP, SSE and REST), sessions bound to their token,
//! and revocation ending live streams.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Server, rw};

const ALPHA: &str = "ALPHA-ONLY-4711";
const BRAVO: &str = "BRAVO-SECRET-0815";

/// Workspaces `alpha` and `bravo`, each with a `notes` collection holding
/// one marker record and an endpoint `desk` serving it.
async fn setup(s: &Server) {
    for (ws, marker) in [("alpha", ALPHA), ("bravo", BRAVO)] {
        s.setup(
            ws,
            "notes",
            json!({"type": "object", "properties": {"text": {"type": "string"}}}),
        )
        .await;
        s.ok(
            Method::PUT,
            &format!("/v1/{ws}--dev/endpoints/desk"),
            Some(json!({"name": "Desk", "tools": [{"collection": "notes", "operations": ["get", "list"]}], "sql_query": true})),
        )
        .await;
        s.ok(
            Method::POST,
            &format!("/v1/workspaces/{ws}/promote"),
            Some(json!({"from": format!("{ws}--dev")})),
        )
        .await;
        s.ok(
            Method::PUT,
            &format!("/v1/{ws}/records/notes"),
            Some(json!({"external_id": "n1", "data": {"text": marker}})),
        )
        .await;
    }
}

/// A JSON-RPC exchange over Streamable HTTP.
pub(crate) struct Rpc<'a> {
    s: &'a Server,
    path: String,
    token: Option<String>,
    pub session: Option<String>,
    next_id: u64,
}

/// The JSON-RPC messages in a response body (JSON or an SSE stream).
fn messages(body: &str) -> Vec<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return vec![v];
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

impl<'a> Rpc<'a> {
    pub(crate) fn new(s: &'a Server, path: &str, token: Option<&str>) -> Rpc<'a> {
        Rpc {
            s,
            path: path.to_string(),
            token: token.map(String::from),
            session: None,
            next_id: 1,
        }
    }

    /// The session `initialize` opened, if any.
    pub(crate) fn session_id(&self) -> Option<&str> {
        self.session.as_deref()
    }

    async fn post(&self, body: &Value) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut req = self
            .s
            .http
            .post(format!("{}{}", self.s.url, self.path))
            .header("Accept", "application/json, text/event-stream")
            .json(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(sid) = &self.session {
            req = req
                .header("Mcp-Session-Id", sid)
                .header("MCP-Protocol-Version", "2025-11-25");
        }
        let resp = req.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        (status, headers, resp.text().await.unwrap())
    }

    /// `initialize` + `notifications/initialized`; returns the status and
    /// the raw body of the initialize response.
    pub(crate) async fn initialize(&mut self) -> (StatusCode, String) {
        let (st, headers, body) = self
            .post(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "auth-matrix", "version": "1"}}}),
            )
            .await;
        if st == StatusCode::OK {
            self.session = headers
                .get("mcp-session-id")
                .map(|v| v.to_str().unwrap().to_string());
            let (st2, _, b2) = self
                .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                .await;
            assert_eq!(st2, StatusCode::ACCEPTED, "initialized: {b2}");
        }
        (st, body)
    }

    /// One request; returns the status, the raw body and the result/error.
    pub(crate) async fn request(
        &mut self,
        method: &str,
        params: Value,
    ) -> (StatusCode, String, Value) {
        self.next_id += 1;
        let (st, _, body) = self
            .post(
                &json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}),
            )
            .await;
        let msg = messages(&body)
            .into_iter()
            .find(|m| m.get("id") == Some(&json!(self.next_id)))
            .unwrap_or(Value::Null);
        (st, body, msg)
    }

    pub(crate) async fn call(&mut self, tool: &str, args: Value) -> (StatusCode, String, Value) {
        self.request("tools/call", json!({"name": tool, "arguments": args}))
            .await
    }
}

/// A legacy SSE session, read chunk by chunk.
pub(crate) struct Sse {
    resp: reqwest::Response,
    buf: String,
    messages_url: String,
}

impl Sse {
    /// Opens `path`; `Err` carries the status and body of a refusal.
    pub(crate) async fn open(
        s: &Server,
        path: &str,
        token: Option<&str>,
    ) -> Result<Sse, (StatusCode, String)> {
        let mut req = s
            .http
            .get(format!("{}{path}", s.url))
            .header("Accept", "text/event-stream")
            .timeout(Duration::from_secs(600));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        if resp.status() != StatusCode::OK {
            let st = resp.status();
            return Err((st, resp.text().await.unwrap()));
        }
        let mut sse = Sse {
            resp,
            buf: String::new(),
            messages_url: String::new(),
        };
        let endpoint = sse.next_event("endpoint").await.expect("endpoint event");
        sse.messages_url = format!("{}{endpoint}", s.url);
        Ok(sse)
    }

    /// The data of the next event named `name`; `None` once the stream ends.
    async fn next_event(&mut self, name: &str) -> Option<String> {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                let mut kind = "message";
                let mut data = String::new();
                for line in event.lines() {
                    if let Some(k) = line.strip_prefix("event:") {
                        kind = k.trim();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if kind == name {
                    return Some(data);
                }
            }
            match self.resp.chunk().await {
                Ok(Some(c)) => self.buf.push_str(&String::from_utf8_lossy(&c)),
                _ => return None,
            }
        }
    }

    async fn send(&self, s: &Server, token: Option<&str>, msg: Value) -> (StatusCode, String) {
        let mut req = s.http.post(&self.messages_url).json(&msg);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let st = r.status();
        (st, r.text().await.unwrap())
    }

    /// initialize, initialized, then one tools/call; returns every message
    /// read, as text.
    pub(crate) async fn round_trip(
        &mut self,
        s: &Server,
        token: Option<&str>,
        tool: &str,
        args: Value,
    ) -> String {
        let mut seen = String::new();
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
        assert_eq!(self.send(s, token, init).await.0, StatusCode::ACCEPTED);
        seen.push_str(&self.next_event("message").await.unwrap_or_default());
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(self.send(s, token, note).await.0, StatusCode::ACCEPTED);
        let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": args}});
        assert_eq!(self.send(s, token, call).await.0, StatusCode::ACCEPTED);
        seen.push_str(&self.next_event("message").await.unwrap_or_default());
        seen
    }
}

fn sql_on(ws: &str) -> Value {
    json!({"workspace_id": ws, "query": "SELECT * FROM records FINAL WHERE workspace_id = {workspace_id:String} AND deleted = false"})
}

/// Every route for one token: what came back, concatenated, and the
/// statuses of the endpoint and admin routes.
struct Seen {
    text: String,
    endpoint_status: StatusCode,
    endpoint_sse_status: StatusCode,
    admin_status: StatusCode,
}

async fn everything(s: &Server, token: Option<&str>) -> Seen {
    let mut text = String::new();
    // Admin MCP: list workspaces, SQL and a record query on bravo.
    let mut admin = Rpc::new(s, "/mcp", token);
    let (admin_status, body) = admin.initialize().await;
    text.push_str(&body);
    if admin_status == StatusCode::OK {
        for (tool, args) in [
            ("manage_workspace", json!({"action": "list"})),
            ("sql_query", sql_on("bravo")),
            (
                "manage_record",
                json!({"action": "query", "workspace_id": "bravo", "collection": "notes"}),
            ),
            (
                "manage_record",
                json!({"action": "get", "workspace_id": "bravo", "collection": "notes", "id": "n1"}),
            ),
        ] {
            text.push_str(&admin.call(tool, args).await.1);
        }
    }
    // Endpoint MCP.
    let mut ep = Rpc::new(s, "/e/desk/mcp", token);
    let (endpoint_status, body) = ep.initialize().await;
    text.push_str(&body);
    if endpoint_status == StatusCode::OK {
        text.push_str(&ep.call("list_notes", json!({})).await.1);
        text.push_str(&ep.call("get_notes", json!({"id": "n1"})).await.1);
        text.push_str(
            &ep.call("sql_query", json!({"query": "SELECT * FROM notes"}))
                .await
                .1,
        );
    }
    // Legacy SSE, endpoint and admin.
    let endpoint_sse_status = match Sse::open(s, "/e/desk/sse", token).await {
        Ok(mut sse) => {
            text.push_str(&sse.round_trip(s, token, "list_notes", json!({})).await);
            StatusCode::OK
        }
        Err((st, body)) => {
            text.push_str(&body);
            st
        }
    };
    match Sse::open(s, "/sse", token).await {
        Ok(mut sse) => text.push_str(&sse.round_trip(s, token, "sql_query", sql_on("bravo")).await),
        Err((_, body)) => text.push_str(&body),
    }
    // REST.
    for (m, path, body) in [
        (Method::GET, "/v1/workspaces", None),
        (Method::GET, "/v1/bravo/records/notes", None),
        (Method::GET, "/v1/bravo/records/notes/n1", None),
        (
            Method::POST,
            "/v1/bravo/sql",
            Some(json!({"query": "SELECT * FROM notes"})),
        ),
        (
            Method::POST,
            "/v1/bravo/endpoints/desk/tools/list_notes",
            Some(json!({})),
        ),
        (Method::GET, "/v1/bravo/operations?after=0", None),
    ] {
        text.push_str(&s.call(m, path, token, body).await.1.to_string());
    }
    Seen {
        text,
        endpoint_status,
        endpoint_sse_status,
        admin_status,
    }
}

#[tokio::test]
async fn no_alpha_token_ever_sees_bravo_data_on_any_route() {
    let s = Server::start();
    setup(&s).await;
    let a_rw = s.token("a-rw", rw("alpha")).await;
    let a_ro = s
        .token(
            "a-ro",
            json!([{"scope": {"workspaces": ["alpha"]}, "permissions": ["read:records"]}]),
        )
        .await;
    let a_all = s
        .token(
            "a-all",
            json!([{"scope": {"workspaces": ["alpha"]}, "permissions": ["*"]}]),
        )
        .await;
    let a_dev = s.token("a-dev", rw("alpha--dev")).await;
    let a_revoked = s.token("a-revoked", rw("alpha")).await;
    let revoked_id = a_revoked.split('_').nth(1).unwrap().to_string();
    s.ok(Method::DELETE, &format!("/v1/tokens/{revoked_id}"), None)
        .await;
    let b_rw = s.token("b-rw", rw("bravo")).await;
    let multi = s
        .token(
            "multi",
            json!([{"scope": {"workspaces": ["alpha", "bravo"]}, "permissions": ["read:records"]}]),
        )
        .await;

    // Tokens of alpha alone: whatever they do, bravo's marker never shows.
    for (name, token, endpoint) in [
        ("a-rw", Some(a_rw.as_str()), StatusCode::OK),
        ("a-ro", Some(a_ro.as_str()), StatusCode::OK),
        ("a-all", Some(a_all.as_str()), StatusCode::OK),
        ("a-dev", Some(a_dev.as_str()), StatusCode::OK),
        (
            "a-revoked",
            Some(a_revoked.as_str()),
            StatusCode::UNAUTHORIZED,
        ),
        ("no token", None, StatusCode::UNAUTHORIZED),
        ("garbage", Some("mcpf_nope_nope"), StatusCode::UNAUTHORIZED),
    ] {
        let seen = everything(&s, token).await;
        assert!(
            !seen.text.contains(BRAVO),
            "{name} saw bravo's data:\n{}",
            seen.text
        );
        assert_eq!(seen.endpoint_status, endpoint, "{name} on /e/desk/mcp");
        assert_eq!(seen.endpoint_sse_status, endpoint, "{name} on /e/desk/sse");
        if endpoint == StatusCode::OK && name != "a-dev" {
            // The production endpoint serves alpha's own record.
            assert!(seen.text.contains(ALPHA), "{name} reaches alpha's desk");
        }
        if endpoint == StatusCode::UNAUTHORIZED {
            assert_eq!(
                seen.admin_status,
                StatusCode::UNAUTHORIZED,
                "{name} on /mcp"
            );
        } else {
            assert_eq!(seen.admin_status, StatusCode::OK, "{name} on /mcp");
        }
    }

    // Controls: bravo's token sees its marker through its endpoint, never alpha's.
    let seen = everything(&s, Some(&b_rw)).await;
    assert!(seen.text.contains(BRAVO));
    assert!(!seen.text.contains(ALPHA), "bravo's token saw alpha's data");

    // Multi-workspace and wildcard tokens may not use endpoint routes, and are told why.
    for (token, why) in [(&multi, "several workspaces"), (&s.admin, "wildcard")] {
        for path in ["/e/desk/mcp", "/e/desk/sse"] {
            let method = if path.ends_with("sse") {
                Method::GET
            } else {
                Method::POST
            };
            let (st, v) = s.call(method, path, Some(token), Some(json!({}))).await;
            assert_eq!(st, StatusCode::FORBIDDEN, "{path}: {v}");
            assert!(v["error"]["message"].as_str().unwrap().contains(why), "{v}");
        }
    }
    // Unknown slug: 404 naming the token's workspace.
    let (st, v) = s
        .call(Method::POST, "/e/nope/mcp", Some(&a_rw), Some(json!({})))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("'alpha'"),
        "{v}"
    );
    // Missing token: 401 with WWW-Authenticate, on every MCP route.
    for path in ["/mcp", "/e/desk/mcp"] {
        let r = s
            .http
            .post(format!("{}{path}", s.url))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().get("www-authenticate").is_some(), "{path}");
    }
    // A read-only token may call read-only tools only.
    let mut ro = Rpc::new(&s, "/mcp", Some(&a_ro));
    ro.initialize().await;
    let (_, _, v) = ro
        .call("manage_record", json!({"action": "upsert", "workspace_id": "alpha", "collection": "notes", "data": {"text": "x"}}))
        .await;
    assert_eq!(v["result"]["isError"], true, "{v}");
    assert!(
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("write:records"),
        "{v}"
    );
}

#[tokio::test]
async fn a_session_belongs_to_its_token_and_host_and_origin_are_checked() {
    let s = Server::start();
    setup(&s).await;
    let a1 = s.token("a1", rw("alpha")).await;
    let a2 = s.token("a2", rw("alpha")).await;
    let mut mine = Rpc::new(&s, "/e/desk/mcp", Some(&a1));
    assert_eq!(mine.initialize().await.0, StatusCode::OK);
    // Another token, even of the same workspace, cannot use the session.
    let mut thief = Rpc::new(&s, "/e/desk/mcp", Some(&a2));
    thief.session = mine.session.clone();
    let (st, body, _) = thief.call("list_notes", json!({})).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert!(!body.contains(ALPHA));
    // Nor can the session be used on the Admin MCP route.
    let mut elsewhere = Rpc::new(&s, "/mcp", Some(&a1));
    elsewhere.session = mine.session.clone();
    let (st, _, _) = elsewhere.request("tools/list", json!({})).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // The owner still can.
    let (st, body, _) = mine.call("list_notes", json!({})).await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains(ALPHA));
    // DNS rebinding: a foreign Host is refused, so is a browser Origin.
    for (h, v) in [("Host", "evil.example"), ("Origin", "https://evil.example")] {
        for path in ["/mcp", "/e/desk/mcp", "/messages?sessionId=x"] {
            let r = s
                .http
                .post(format!("{}{path}", s.url))
                .bearer_auth(&a1)
                .header(h, v)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{h}: {v} on {path}");
        }
    }
    // Unless the server was told to accept them.
    let s2 = Server::start_with(&[
        "--allowed-host",
        "mcp.example.com",
        "--allowed-origin",
        "https://app.example.com",
    ]);
    let r = s2
        .http
        .post(format!("{}/mcp", s2.url))
        .bearer_auth(&s2.admin)
        .header("Host", "mcp.example.com")
        .header("Origin", "https://app.example.com")
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn revoking_a_token_ends_its_sessions_and_streams_within_a_second() {
    let s = Server::start();
    setup(&s).await;
    let token = s
        .token(
            "doomed",
            json!([{"scope": {"workspaces": ["alpha"]}, "permissions": ["read:records"]}]),
        )
        .await;
    let id = token.split('_').nth(1).unwrap().to_string();
    // A Streamable HTTP session with its GET stream open.
    let mut rpc = Rpc::new(&s, "/e/desk/mcp", Some(&token));
    assert_eq!(rpc.initialize().await.0, StatusCode::OK);
    let mut get = s
        .http
        .get(format!("{}/e/desk/mcp", s.url))
        .bearer_auth(&token)
        .header("Accept", "text/event-stream")
        .header("Mcp-Session-Id", rpc.session.clone().unwrap())
        .header("MCP-Protocol-Version", "2025-11-25")
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    // A legacy SSE stream, initialized.
    let mut sse = Sse::open(&s, "/e/desk/sse", Some(&token)).await.unwrap();
    assert!(
        sse.round_trip(&s, Some(&token), "list_notes", json!({}))
            .await
            .contains(ALPHA)
    );

    let revoked = Instant::now();
    s.ok(Method::DELETE, &format!("/v1/tokens/{id}"), None)
        .await;
    let sse_end = tokio::spawn(async move {
        while sse.next_event("message").await.is_some() {}
        revoked.elapsed()
    });
    let get_end = tokio::spawn(async move {
        while let Ok(Some(_)) = get.chunk().await {}
        revoked.elapsed()
    });
    let (sse_end, get_end) = (sse_end.await.unwrap(), get_end.await.unwrap());
    println!("after revocation: SSE stream ended in {sse_end:?}, GET stream in {get_end:?}");
    assert!(
        sse_end < Duration::from_secs(1),
        "SSE ended after {sse_end:?}"
    );
    assert!(
        get_end < Duration::from_secs(1),
        "GET stream ended after {get_end:?}"
    );
    // And the session is gone: the next request is refused.
    let (st, _, _) = rpc.call("list_notes", json!({})).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn malformed_requests_get_json_rpc_errors_and_change_nothing() {
    let s = Server::start();
    setup(&s).await;
    let token = s.token("a", rw("alpha")).await;
    let post = |path: &str, body: &'static str, accept: &'static str| {
        s.http
            .post(format!("{}{path}", s.url))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .header("Accept", accept)
            .body(body)
    };
    let both = "application/json, text/event-stream";
    for path in ["/mcp", "/e/desk/mcp"] {
        let r = post(path, "{not json", both).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], -32700, "{v}");
        let r = post(path, r#"{"hello": 1}"#, both).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], -32600, "{v}");
        // Clients must accept both JSON and SSE answers.
        let r = post(
            path,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            "text/html",
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE, "{path}");
    }
    // The same over the legacy SSE transport's messages endpoint.
    let sse = Sse::open(&s, "/e/desk/sse", Some(&token)).await.unwrap();
    for (body, code) in [("{not json", -32700), (r#"{"hello": 1}"#, -32600)] {
        let r = s
            .http
            .post(&sse.messages_url)
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{v}");
    }
    let mut rpc = Rpc::new(&s, "/e/desk/mcp", Some(&token));
    assert_eq!(rpc.initialize().await.0, StatusCode::OK);
    let (st, _, v) = rpc.request("no/such/method", json!({})).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["error"]["code"], -32601, "{v}");
    let (_, _, v) = rpc.call("drop_table", json!({})).await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    // Arguments that break the tool's input schema: a tool error, nothing written.
    let (_, _, v) = rpc.call("list_notes", json!({"limit": "many"})).await;
    assert_eq!(v["result"]["isError"], true, "{v}");
    // An unsupported protocol version header is refused.
    let r = s
        .http
        .post(format!("{}/e/desk/mcp", s.url))
        .bearer_auth(&token)
        .header("Accept", both)
        .header("Mcp-Session-Id", rpc.session.clone().unwrap())
        .header("MCP-Protocol-Version", "1999-01-01")
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("MCP-Protocol-Version"));
    // The tool list is stable: twice the same, in the config's order.
    let (_, _, a) = rpc.request("tools/list", json!({})).await;
    let (_, _, b) = rpc.request("tools/list", json!({})).await;
    assert_eq!(a["result"], b["result"]);
    let names: Vec<&str> = a["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["get_notes", "list_notes", "sql_query"]);
    let notes = s.ok(Method::GET, "/v1/alpha/records/notes", None).await;
    assert_eq!(notes["meta"]["total"], 1, "nothing was written");
}
