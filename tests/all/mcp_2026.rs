//! MCP 2026-07-28 on the product routes (`/mcp`, `/e/{slug}/mcp`) with raw
//! HTTP, beside 2025-11-25 sessions on the same routes: `server/discover`,
//! per-request `_meta` and the standard headers, cache hints and
//! `resultType`, JSON answers, 405 for GET/DELETE, lists the servers do not
//! serve, and `subscriptions/listen` ending on revocation and shutdown.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Server, rw};
use crate::endpoint_calls;
use crate::mcp_auth::Rpc;

const V: &str = "2026-07-28";
const EP: &str = "/e/invoicing-agent/mcp";

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientInfo": {"name": "mcp-2026-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// A 2026-07-28 request as a conforming client sends it: `_meta` in the
/// params, `MCP-Protocol-Version`, `Mcp-Method` and (for tools/call)
/// `Mcp-Name`. `headers` overrides or adds headers.
fn request(
    s: &Server,
    path: &str,
    token: Option<&str>,
    method: &str,
    mut params: Value,
    headers: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    params["_meta"] = meta();
    let mut req = s
        .http
        .post(format!("{}{path}", s.url))
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", V)
        .header("Mcp-Method", method)
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}));
    if let Some(name) = params.get("name").and_then(Value::as_str) {
        req = req.header("Mcp-Name", name);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req
}

/// A POST of `body` with exactly `headers` (plus Accept and the token).
fn raw(
    s: &Server,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> reqwest::RequestBuilder {
    let mut req = s
        .http
        .post(format!("{}{path}", s.url))
        .header("Accept", "application/json, text/event-stream")
        .bearer_auth(token)
        .json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req
}

/// Sends a request; returns status, headers and the JSON body.
async fn send(req: reqwest::RequestBuilder) -> (StatusCode, HeaderMap, Value) {
    let resp = req.send().await.unwrap();
    let (st, h) = (resp.status(), resp.headers().clone());
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (st, h, body)
}

fn content_type(h: &HeaderMap) -> &str {
    h.get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn the_2026_07_28_revision_beside_2025_11_25_sessions() {
    let s = Server::start();
    endpoint_calls::setup(&s).await;
    let agent = s.token("agent", rw("acme")).await;
    let bravo = {
        s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": "bravo"})))
            .await;
        s.token("bravo", rw("bravo")).await
    };

    for (path, token, server) in [
        ("/mcp", s.admin.as_str(), "mcp-factory-admin"),
        (EP, agent.as_str(), "mcp-factory-endpoint"),
    ] {
        // Discovery declares what the handlers serve: tools (with
        // listChanged), no prompts or resources; serverInfo in `_meta`.
        let (st, h, d) = send(request(
            &s,
            path,
            Some(token),
            "server/discover",
            json!({}),
            &[],
        ))
        .await;
        assert_eq!(st, StatusCode::OK, "{path}: {d}");
        assert!(content_type(&h).starts_with("application/json"), "{h:?}");
        let r = &d["result"];
        assert!(
            r["supportedVersions"]
                .as_array()
                .unwrap()
                .contains(&json!(V)),
            "{d}"
        );
        assert_eq!(r["capabilities"]["tools"]["listChanged"], true, "{d}");
        assert!(r["capabilities"].get("prompts").is_none(), "{d}");
        assert!(r["capabilities"].get("resources").is_none(), "{d}");
        assert_eq!(
            r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
            server
        );
        for (m, st_want) in [
            ("prompts/list", StatusCode::NOT_FOUND),
            ("resources/list", StatusCode::NOT_FOUND),
            ("resources/templates/list", StatusCode::NOT_FOUND),
            ("ping", StatusCode::NOT_FOUND),
        ] {
            let (st, _, b) = send(request(&s, path, Some(token), m, json!({}), &[])).await;
            assert_eq!(
                (st, &b["error"]["code"]),
                (st_want, &json!(-32601)),
                "{path} {m}: {b}"
            );
            assert_eq!(b["id"], 7, "{b}");
        }

        // tools/list: a complete result with cache hints (private: tool lists
        // differ by token), as JSON.
        let (st, h, l) = send(request(&s, path, Some(token), "tools/list", json!({}), &[])).await;
        assert_eq!(st, StatusCode::OK, "{l}");
        assert!(content_type(&h).starts_with("application/json"), "{h:?}");
        assert_eq!(l["result"]["resultType"], "complete", "{l}");
        assert!(l["result"]["ttlMs"].as_u64().is_some(), "{l}");
        assert_eq!(l["result"]["cacheScope"], "private", "{l}");
        assert!(!l["result"]["tools"].as_array().unwrap().is_empty());

        // GET and DELETE from a modern client: 405, POST only.
        for m in [Method::GET, Method::DELETE] {
            let resp = s
                .http
                .request(m.clone(), format!("{}{path}", s.url))
                .header("Accept", "text/event-stream")
                .header("MCP-Protocol-Version", V)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{m} {path}");
            assert_eq!(resp.headers()["allow"], "POST");
        }

        // Header validation: Mcp-Method, the version header and `_meta`
        // must agree (-32020, 400); nothing is served.
        let list =
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {"_meta": meta()}});
        for (what, headers) in [
            (
                "Mcp-Method mismatch",
                [("MCP-Protocol-Version", V), ("Mcp-Method", "tools/call")],
            ),
            (
                "version header mismatch",
                [
                    ("MCP-Protocol-Version", "2025-11-25"),
                    ("Mcp-Method", "tools/list"),
                ],
            ),
        ] {
            let (st, _, b) = send(raw(&s, path, token, &headers, &list)).await;
            assert_eq!(
                (st, &b["error"]["code"]),
                (StatusCode::BAD_REQUEST, &json!(-32020)),
                "{path} {what}: {b}"
            );
        }

        // Without a token: 401 on the modern path too.
        let (st, h, _) = send(request(&s, path, None, "tools/list", json!({}), &[])).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        assert!(h.contains_key("www-authenticate"));
    }

    // tools/call on the endpoint: JSON, resultType, the tool's data.
    let call = json!({"name": "search_invoices", "arguments": {"action": "list"}});
    let (st, h, c) = send(request(
        &s,
        EP,
        Some(&agent),
        "tools/call",
        call.clone(),
        &[],
    ))
    .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    assert!(content_type(&h).starts_with("application/json"), "{h:?}");
    assert_eq!(c["result"]["resultType"], "complete", "{c}");
    assert_eq!(c["result"]["isError"], false, "{c}");
    assert!(c["result"]["structuredContent"].is_object(), "{c}");
    // Mcp-Name must name the tool.
    let named = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "search_invoices", "arguments": {"action": "list"}, "_meta": meta()}});
    let headers = [
        ("MCP-Protocol-Version", V),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "sql_query"),
    ];
    let (st, _, b) = send(raw(&s, EP, &agent, &headers, &named)).await;
    assert_eq!(
        (st, &b["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!(-32020)),
        "{b}"
    );
    // Another workspace's token does not reach this endpoint.
    let (st, _, b) = send(request(&s, EP, Some(&bravo), "tools/call", call, &[])).await;
    assert!(st.is_client_error(), "{st} {b}");
    assert!(!b.to_string().contains("customer"), "{b}");

    // The same routes still hold 2025-11-25 sessions: no resultType or
    // cache hints there, and the (empty) lists legacy clients expect.
    let mut rpc = Rpc::new(&s, EP, Some(&agent));
    let (st, body) = rpc.initialize().await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(rpc.session_id().is_some());
    let (st, _, l) = rpc.request("tools/list", json!({})).await;
    assert_eq!(st, StatusCode::OK);
    assert!(l["result"]["tools"].is_array(), "{l}");
    assert!(l["result"].get("resultType").is_none(), "{l}");
    assert!(l["result"].get("ttlMs").is_none(), "{l}");
    let (_, _, p) = rpc.request("prompts/list", json!({})).await;
    assert_eq!(p["result"]["prompts"], json!([]), "{p}");
    let (_, _, c) = rpc.call("search_invoices", json!({"action": "list"})).await;
    assert_eq!(c["result"]["isError"], false, "{c}");
    assert!(c["result"].get("resultType").is_none(), "{c}");
}

/// A listen stream, read chunk by chunk.
struct Listen {
    resp: reqwest::Response,
    buf: String,
}

impl Listen {
    async fn open(s: &Server, path: &str, token: &str) -> Listen {
        let resp = request(
            s,
            path,
            Some(token),
            "subscriptions/listen",
            json!({"notifications": {"toolsListChanged": true}}),
            &[],
        )
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(content_type(resp.headers()).starts_with("text/event-stream"));
        Listen {
            resp,
            buf: String::new(),
        }
    }

    /// The next JSON-RPC message; `None` once the stream ends.
    async fn next(&mut self) -> Option<Value> {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if let Ok(v) = serde_json::from_str(&data) {
                    return Some(v);
                }
            }
            match self.resp.chunk().await {
                Ok(Some(c)) => self.buf.push_str(&String::from_utf8_lossy(&c)),
                _ => return None,
            }
        }
    }
}

#[tokio::test]
async fn listen_streams_end_when_their_token_is_revoked_or_the_server_stops() {
    let s = Server::start();
    endpoint_calls::setup(&s).await;
    let created = s
        .ok(
            Method::POST,
            "/v1/tokens",
            Some(json!({"name": "listener", "grants": rw("acme")})),
        )
        .await;
    let (token, id) = (
        created["token"].as_str().unwrap().to_string(),
        created["id"].as_str().unwrap().to_string(),
    );
    let mut admin_listen = Listen::open(&s, "/mcp", &s.admin).await;
    let mut ep = Listen::open(&s, EP, &token).await;
    for l in [&mut admin_listen, &mut ep] {
        let ack = l.next().await.expect("an acknowledgement");
        assert_eq!(
            ack["method"], "notifications/subscriptions/acknowledged",
            "{ack}"
        );
        assert_eq!(
            ack["params"]["notifications"]["toolsListChanged"], true,
            "{ack}"
        );
        assert_eq!(
            ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 7,
            "{ack}"
        );
    }

    // Revocation ends the endpoint stream with an error that says why,
    // within a second (the sweeper runs every 250 ms).
    s.ok(Method::DELETE, &format!("/v1/tokens/{id}"), None)
        .await;
    let t0 = Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(5), ep.next())
        .await
        .expect("the stream ends");
    let took = t0.elapsed();
    let end = end.expect("a final message");
    assert_eq!(end["id"], 7, "{end}");
    assert!(
        end["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{end}"
    );
    assert!(took < Duration::from_secs(1), "revocation took {took:?}");
    assert!(
        tokio::time::timeout(Duration::from_secs(5), ep.next())
            .await
            .unwrap()
            .is_none()
    );

    // Shutdown (SIGTERM) ends the open admin stream too.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &s.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while admin_listen.next().await.is_some() {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the listen stream outlived the server's shutdown"
    );
}

/// The same calls, once on the fast path and once through rmcp (a progress
/// token in `_meta` sends a call there), on both revisions: the same status
/// and the same JSON-RPC answer.
#[tokio::test]
async fn fast_and_rmcp_paths_answer_alike() {
    let s = Server::start();
    endpoint_calls::setup(&s).await;
    let agent = s.token("agent", rw("acme")).await;
    let rec = s
        .ok(
            Method::PUT,
            "/v1/acme/records/invoices",
            Some(json!({"data": {"customer": "fast-or-not", "total": 12.5}})),
        )
        .await;
    let id = rec["id"].as_str().unwrap();
    let calls = [
        ("search_invoices", json!({"action": "get", "id": id})),
        ("search_invoices", json!({"action": "list"})),
        (
            "search_invoices",
            json!({"action": "get", "id": "no-such-record"}),
        ),
        ("search_invoices", json!({"action": "frobnicate"})),
        ("create_payments", json!({"amount": "not a number"})),
        ("no_such_tool", json!({})),
    ];
    let mut rpc = Rpc::new(&s, EP, Some(&agent));
    rpc.initialize().await;
    for (tool, args) in &calls {
        // 2025-11-25 session: fast answers JSON, rmcp an SSE stream.
        let (st_fast, body_fast, fast) = rpc
            .request("tools/call", json!({"name": tool, "arguments": args}))
            .await;
        let (st_rmcp, body_rmcp, slow) = rpc
            .request(
                "tools/call",
                json!({"name": tool, "arguments": args, "_meta": {"progressToken": "p"}}),
            )
            .await;
        assert!(
            body_fast.starts_with('{'),
            "the fast path answers JSON: {body_fast}"
        );
        assert!(body_rmcp.contains("data:"), "rmcp answers SSE: {body_rmcp}");
        assert_eq!(st_fast, st_rmcp, "{tool} {args}");
        assert_eq!(without_id(fast), without_id(slow), "session: {tool} {args}");

        // 2026-07-28 stateless.
        let params = json!({"name": tool, "arguments": args});
        let (st_fast, _, fast) =
            send(request(&s, EP, Some(&agent), "tools/call", params, &[])).await;
        let mut body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
            "name": tool, "arguments": args, "_meta": meta()}});
        body["params"]["_meta"]["progressToken"] = json!("p");
        let headers = [
            ("MCP-Protocol-Version", V),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", *tool),
        ];
        let (st_rmcp, _, slow) = send(raw(&s, EP, &agent, &headers, &body)).await;
        assert_eq!(st_fast, st_rmcp, "{tool} {args}");
        assert_eq!(fast, slow, "stateless: {tool} {args}");
        assert!(
            fast.get("result").is_some() || fast.get("error").is_some(),
            "{fast}"
        );
    }
    // A sample of what was compared, so an empty answer cannot pass.
    let (_, _, got) = send(request(
        &s,
        EP,
        Some(&agent),
        "tools/call",
        json!({"name": "search_invoices", "arguments": {"action": "get", "id": id}}),
        &[],
    ))
    .await;
    assert_eq!(
        got["result"]["structuredContent"]["data"]["customer"], "fast-or-not",
        "{got}"
    );
    assert_eq!(got["result"]["resultType"], "complete");
    let (_, _, got) = rpc
        .request(
            "tools/call",
            json!({"name": "no_such_tool", "arguments": {}}),
        )
        .await;
    assert_eq!(got["error"]["code"], -32602, "{got}");
}

/// A JSON-RPC message without its id (the two requests of a pair have
/// different ids).
fn without_id(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
    }
    v
}

/// One token holds at most 32 listen streams; the next is refused with a
/// reason, and closing one makes room.
#[tokio::test]
async fn a_token_holds_a_bounded_number_of_listen_streams() {
    let s = Server::start();
    endpoint_calls::setup(&s).await;
    let token = s.token("listener", rw("acme")).await;
    let mut open = Vec::new();
    for _ in 0..32 {
        let mut l = Listen::open(&s, EP, &token).await;
        let ack = l.next().await.expect("ack");
        assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
        open.push(l);
    }
    let refused = async |s: &Server| {
        let mut l = Listen::open(s, EP, &token).await;
        let mut last = Value::Null;
        while let Some(m) = tokio::time::timeout(Duration::from_secs(5), l.next())
            .await
            .expect("the stream answers")
        {
            last = m;
            if last.get("id").is_some() {
                break;
            }
        }
        last
    };
    let end = refused(&s).await;
    assert!(
        end["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("32 open listen streams")),
        "{end}"
    );
    // Another token is not affected.
    let mut other = Listen::open(&s, "/mcp", &s.admin).await;
    assert_eq!(
        other.next().await.expect("ack")["method"],
        "notifications/subscriptions/acknowledged"
    );
    // Closing one stream frees its place (once the server sees it go).
    drop(open.pop());
    let t0 = Instant::now();
    loop {
        let mut l = Listen::open(&s, EP, &token).await;
        l.next().await.expect("ack");
        let more = tokio::time::timeout(Duration::from_millis(300), l.next()).await;
        match more {
            Err(_) => break, // still open: accepted
            Ok(m) => assert!(
                m.as_ref().is_some_and(|m| m["error"].is_object())
                    && t0.elapsed() < Duration::from_secs(5),
                "a closed stream's place was not freed after {:?}: {m:?}",
                t0.elapsed()
            ),
        }
    }
}

/// A token holds at most 64 sessions: opening one more closes its least
/// recently used one (that client gets 404 and would open a new one);
/// other tokens' sessions are untouched.
#[tokio::test]
async fn a_token_holds_a_bounded_number_of_sessions() {
    let s = Server::start();
    endpoint_calls::setup(&s).await;
    let token = s.token("agent", rw("acme")).await;
    let other = s.token("other", rw("acme")).await;
    let mut theirs = Rpc::new(&s, EP, Some(&other));
    theirs.initialize().await;
    let mut first = Rpc::new(&s, EP, Some(&token));
    first.initialize().await;
    let mut kept = Vec::new();
    for _ in 0..64 {
        let mut r = Rpc::new(&s, EP, Some(&token));
        let (st, body) = r.initialize().await;
        assert_eq!(st, StatusCode::OK, "{body}");
        kept.push(r);
    }
    let t0 = Instant::now();
    loop {
        let (st, _, _) = first.request("tools/list", json!({})).await;
        if st == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the least recently used session is still open ({st})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for r in [&mut kept[63], &mut theirs] {
        let (st, _, l) = r.request("tools/list", json!({})).await;
        assert_eq!(st, StatusCode::OK, "{l}");
        assert!(l["result"]["tools"].is_array(), "{l}");
    }
}
