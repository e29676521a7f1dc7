//! Endpoint tools served by the real generated Wasm component (embedded in
//! the host), called over REST: the seed's invoicing flow, the endpoint's
//! grants, client permissions, errors, and the compiled-component cache.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{SEED_CONFIG, Server};

pub(crate) async fn setup(s: &Server) {
    s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": "acme"})))
        .await;
    s.ok(
        Method::POST,
        "/v1/workspaces/acme/previews",
        Some(json!({"name": "dev"})),
    )
    .await;
    let invoice = json!({"type": "object", "properties": {"customer": {"type": "string"}, "total": {"type": "number"}, "status": {"type": "string"}}, "required": ["customer", "total"]});
    let payment = json!({"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]});
    for (c, schema) in [
        ("invoices", invoice),
        ("payments", payment),
        ("secrets", json!({"type": "object"})),
    ] {
        s.ok(
            Method::PUT,
            &format!("/v1/acme--dev/collections/{c}"),
            Some(json!({"schema": schema})),
        )
        .await;
    }
    let config: Value = serde_json::from_str(SEED_CONFIG).unwrap();
    s.ok(
        Method::PUT,
        "/v1/acme--dev/endpoints/invoicing-agent",
        Some(config),
    )
    .await;
    s.ok(
        Method::POST,
        "/v1/workspaces/acme/promote",
        Some(json!({"from": "acme--dev"})),
    )
    .await;
}

const EP: &str = "/v1/acme/endpoints/invoicing-agent";

async fn call(s: &Server, token: &str, tool: &str, args: Value) -> (StatusCode, Value) {
    s.call(
        Method::POST,
        &format!("{EP}/tools/{tool}"),
        Some(token),
        Some(args),
    )
    .await
}

async fn ok(s: &Server, tool: &str, args: Value) -> Value {
    let (st, v) = call(s, &s.admin, tool, args).await;
    assert_eq!(st, StatusCode::OK, "{tool}: {v}");
    assert_eq!(v["is_error"], false, "{tool}: {v}");
    v["content"].clone()
}

#[tokio::test]
async fn the_seed_invoicing_flow_through_the_generated_component() {
    let s = Server::start();
    setup(&s).await;
    let tools = s.ok(Method::GET, &format!("{EP}/tools"), None).await;
    let names: Vec<&str> = tools["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "search_invoices",
            "create_payments",
            "get_payments",
            "list_payments",
            "assign_payment",
            "batch",
            "sql_query"
        ]
    );
    let search = &tools["data"][0];
    assert_eq!(
        search["input_schema"]["properties"]["action"]["enum"],
        json!(["get", "list"])
    );
    assert_eq!(search["annotations"]["read_only"], true);
    assert!(
        search["description"]
            .as_str()
            .unwrap()
            .starts_with("Search invoices")
    );
    let create = &tools["data"][1];
    assert_eq!(
        create["input_schema"]["properties"]["data"]["required"],
        json!(["amount"]),
        "the collection's schema is the input schema"
    );
    assert!(
        create["description"]
            .as_str()
            .unwrap()
            .contains("JSON Schema")
    );

    // Batch-only invoices: created atomically with a payment and the link.
    let b = ok(&s, "batch", json!({"operations": [
        {"type": "upsert_record", "collection": "invoices", "external_id": "inv-1", "data": {"customer": "globex", "total": 120.0, "status": "open"}},
        {"type": "upsert_record", "collection": "invoices", "external_id": "inv-2", "data": {"customer": "acme", "total": 80.0, "status": "open"}},
    ]}))
    .await;
    assert_eq!(b["meta"]["operations"], 2);
    let pay = ok(
        &s,
        "create_payments",
        json!({"data": {"amount": 120.0}, "external_id": "pay-1"}),
    )
    .await;
    let pay_id = pay["id"].as_str().unwrap().to_string();
    assert_eq!(
        ok(&s, "get_payments", json!({"id": pay_id})).await["data"]["amount"],
        120.0
    );
    let link = ok(&s, "assign_payment", json!({"action": "create", "source_collection": "invoices", "source_id": "inv-1", "target_collection": "payments", "target_id": "pay-1"})).await;
    assert_eq!(link["rel_type"], "invoice_payment");
    let links = ok(
        &s,
        "assign_payment",
        json!({"action": "list", "collection": "invoices", "id": "inv-1", "direction": "outgoing"}),
    )
    .await;
    assert_eq!(links["data"][0]["target_id"], pay_id.as_str());
    let listed = ok(
        &s,
        "list_payments",
        json!({"filter": {"field": "data.amount", "op": "gte", "value": 100}}),
    )
    .await;
    assert_eq!(listed["meta"]["total"], 1);
    let found = ok(&s, "search_invoices", json!({"action": "list", "filter": {"field": "data.customer", "op": "eq", "value": "acme"}})).await;
    assert_eq!(found["data"][0]["external_id"], "inv-2");
    let one = ok(
        &s,
        "search_invoices",
        json!({"action": "get", "id": "inv-1"}),
    )
    .await;
    assert_eq!(one["data"]["total"], 120.0);
    let q = ok(&s, "sql_query", json!({"query": "SELECT customer, sum(total) FROM invoices WHERE status = 'open' GROUP BY 1 ORDER BY 1"})).await;
    assert_eq!(q["rows"], json!([["acme", 80.0], ["globex", 120.0]]));
    // The writes went through the endpoint for the calling token, and the
    // log says both.
    let log = s
        .ok(Method::GET, "/v1/acme/operations?after=0&limit=1000", None)
        .await;
    assert!(
        log["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["endpoint"] == "invoicing-agent" && e["token_id"].is_string()),
        "{log}"
    );
}

#[tokio::test]
async fn the_endpoint_can_do_only_what_its_config_grants() {
    let s = Server::start();
    setup(&s).await;
    s.ok(
        Method::PUT,
        "/v1/acme/records/secrets",
        Some(json!({"external_id": "s1", "data": {"code": "TOPSECRET"}})),
    )
    .await;
    // Batch allows invoices create/update only: a delete is refused, nothing is written.
    let (st, v) = call(&s, &s.admin, "batch", json!({"operations": [
        {"type": "upsert_record", "collection": "invoices", "data": {"customer": "x", "total": 1}},
        {"type": "delete_record", "collection": "invoices", "id": "whatever"}
    ]}))
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["is_error"], true, "{v}");
    assert!(
        v["content"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'delete' on 'invoices'"),
        "{v}"
    );
    let inv = s.ok(Method::GET, "/v1/acme/records/invoices", None).await;
    assert_eq!(inv["meta"]["total"], 0);
    // Another collection of the same workspace is out of reach.
    let (_, v) = call(
        &s,
        &s.admin,
        "batch",
        json!({"operations": [{"type": "upsert_record", "collection": "secrets", "data": {}}]}),
    )
    .await;
    assert_eq!(v["is_error"], true, "{v}");
    let (_, v) = call(
        &s,
        &s.admin,
        "sql_query",
        json!({"query": "SELECT * FROM records WHERE data LIKE '%TOPSECRET%'"}),
    )
    .await;
    assert_eq!(
        v["content"]["rows"],
        json!([]),
        "sql_query sees only the endpoint's collections: {v}"
    );
    let (_, v) = call(
        &s,
        &s.admin,
        "sql_query",
        json!({"query": "SELECT * FROM secrets"}),
    )
    .await;
    assert_eq!(
        v["is_error"], true,
        "no view for a collection outside the endpoint: {v}"
    );
    // A schema violation is a business error the agent can act on.
    let (_, v) = call(
        &s,
        &s.admin,
        "create_payments",
        json!({"data": {"amount": "lots"}}),
    )
    .await;
    assert_eq!(v["is_error"], true);
    assert!(
        v["content"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/amount"),
        "{v}"
    );
}

#[tokio::test]
async fn clients_errors_and_the_compiled_component_cache() {
    let mut s = Server::start();
    setup(&s).await;
    let reader = s
        .token(
            "reader",
            json!([{"scope": {"workspaces": ["acme"]}, "permissions": ["read:records"]}]),
        )
        .await;
    let (st, _) = call(&s, &reader, "list_payments", json!({})).await;
    assert_eq!(st, StatusCode::OK, "read-only tools need read:records");
    let (st, v) = call(
        &s,
        &reader,
        "create_payments",
        json!({"data": {"amount": 1}}),
    )
    .await;
    // The tool runs; its store write is refused for the token (service
    // decides per store operation, not by the tool's annotation).
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["is_error"], true, "{v}");
    assert_eq!(v["content"]["error"]["code"], "FORBIDDEN", "{v}");
    assert!(
        v["content"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lacks permission 'write:records'"),
        "{v}"
    );
    let stranger = s
        .token(
            "stranger",
            json!([{"scope": {"workspaces": ["other"]}, "permissions": ["*"]}]),
        )
        .await;
    let (st, _) = s
        .call(Method::GET, &format!("{EP}/tools"), Some(&stranger), None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = call(&s, &s.admin, "drop_everything", json!({})).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Arguments are checked against the input schema before the component
    // runs; a violation is a tool error the agent can correct.
    let (st, v) = call(&s, &s.admin, "get_payments", json!({})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["is_error"], true, "{v}");
    assert_eq!(
        v["content"]["error"]["details"]["violations"][0]["rule"], "required",
        "{v}"
    );
    assert!(
        v["content"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"id\" is a required property"),
        "{v}"
    );
    let (st, _) = s
        .call(
            Method::GET,
            "/v1/acme/endpoints/nope/tools",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // The compiled component was cached on disk; a restart loads it.
    let cache = s.data_dir().join("cache");
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let before = std::fs::metadata(&entries[0]).unwrap().modified().unwrap();
    let log_path = s.dir.path().join("serve.log");
    let log = || std::fs::read_to_string(&log_path).unwrap();
    let compiled = |l: &str| l.matches("compiled a component").count();
    let compiled_before = compiled(&log());
    assert_eq!(compiled_before, 1, "compiled once: {}", log());
    s.restart();
    let (st, _) = call(&s, &s.admin, "list_payments", json!({})).await;
    assert_eq!(st, StatusCode::OK);
    let after = log();
    assert_eq!(
        compiled(&after),
        1,
        "nothing recompiled after the restart: {after}"
    );
    // The log says how long loading took (the measured number).
    let loaded = after
        .lines()
        .find(|l| l.contains("loaded a compiled component from the cache"))
        .unwrap_or_else(|| panic!("no cache load in the log: {after}"));
    let compiled_line = after.lines().find(|l| l.contains("compiled a component"));
    eprintln!("{compiled_line:?}\n{loaded}");
    assert!(loaded.contains("ms="), "{loaded}");
    assert_eq!(
        std::fs::metadata(&entries[0]).unwrap().modified().unwrap(),
        before,
        "loaded, not recompiled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swap_under_load_fails_no_call_and_mixes_no_revisions() {
    let s = Server::start();
    setup(&s).await;
    let path = "/v1/acme--dev/endpoints/swap";
    // Both revisions serve list_invoices, which every client calls
    // between listings: no call may fail while revisions swap.
    let a = json!({"tools": [{"collection": "invoices", "operations": ["list"]},
                             {"collection": "payments", "operations": ["get", "list"]}]});
    let b =
        json!({"tools": [{"collection": "invoices", "operations": ["list"]}], "sql_query": true});
    s.ok(Method::PUT, path, Some(a.clone())).await;
    let tools_a = json!(["list_invoices", "get_payments", "list_payments"]);
    let tools_b = json!(["list_invoices", "sql_query"]);
    s.ok(Method::GET, &format!("{path}/tools"), None).await; // warm: compile once
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..16 {
        let done = done.clone();
        let (http, url, token, stop) = (
            s.http.clone(),
            format!("{}{path}/tools", s.url),
            s.admin.clone(),
            stop.clone(),
        );
        let (ta, tb) = (tools_a.clone(), tools_b.clone());
        clients.push(tokio::spawn(async move {
            let (mut calls, mut seen_a, mut seen_b) = (0, 0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK, "a call failed during the swap");
                let v: Value = r.json().await.unwrap();
                let names: Value = v["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["name"].clone())
                    .collect();
                if names == ta {
                    seen_a += 1;
                } else if names == tb {
                    seen_b += 1;
                } else {
                    panic!("a call saw neither revision: {names}");
                }
                let r = http
                    .post(format!("{url}/list_invoices"))
                    .bearer_auth(&token)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    r.status(),
                    StatusCode::OK,
                    "a tool call failed during the swap"
                );
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["is_error"], false, "{v}");
                calls += 2;
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            (calls, seen_a, seen_b)
        }));
    }
    for i in 0..100 {
        // Let the clients make progress between swaps, so calls overlap them.
        let seen = done.load(std::sync::atomic::Ordering::Relaxed);
        while done.load(std::sync::atomic::Ordering::Relaxed) < seen + 8 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let next = if i % 2 == 0 { b.clone() } else { a.clone() };
        s.ok(Method::PUT, path, Some(next)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut calls, mut seen_a, mut seen_b) = (0, 0, 0);
    for c in clients {
        let (n, x, y) = c.await.unwrap();
        calls += n;
        seen_a += x;
        seen_b += y;
    }
    assert!(
        calls >= 16 && seen_a > 0 && seen_b > 0,
        "calls {calls}, a {seen_a}, b {seen_b}"
    );
    let revs = s.ok(Method::GET, &format!("{path}/revisions"), None).await;
    assert_eq!(revs["meta"]["total"], 101);
    // Rollback to the first revision is one call, served at once.
    s.ok(
        Method::POST,
        &format!("{path}/rollback"),
        Some(json!({"revision": 1})),
    )
    .await;
    let now = s.ok(Method::GET, &format!("{path}/tools"), None).await;
    let names: Value = now["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(names, tools_a);
    eprintln!(
        "hot swap: {calls} calls during 100 upserts, 0 failed ({seen_a} on A, {seen_b} on B)"
    );
}

#[tokio::test]
async fn a_call_blocked_in_a_host_import_is_cut_off_at_the_endpoint_deadline() {
    let s = Server::start();
    setup(&s).await;
    let slow = json!({"sql_query": true, "limits": {"timeout_ms": 300}});
    s.ok(Method::PUT, "/v1/acme--dev/endpoints/slow", Some(slow))
        .await;
    let t = std::time::Instant::now();
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/acme--dev/endpoints/slow/tools/sql_query",
            Some(&s.admin),
            Some(json!({"query": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"})),
        )
        .await;
    let took = t.elapsed();
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("300 ms"),
        "{v}"
    );
    assert!(
        took < std::time::Duration::from_secs(3),
        "cut off after {took:?}"
    );
    // The endpoint and the server keep serving.
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/acme--dev/endpoints/slow/tools/sql_query",
            Some(&s.admin),
            Some(json!({"query": "SELECT 1"})),
        )
        .await;
    assert_eq!(
        (st, v["content"]["rows"].clone()),
        (StatusCode::OK, json!([[1]]))
    );
}

/// Posts `body` as the admin; returns how long the answer took, and the answer.
async fn timed_post(
    s: &Server,
    url: &str,
    body: &Value,
) -> (std::time::Duration, reqwest::Response) {
    let t = std::time::Instant::now();
    let r = s
        .http
        .post(url)
        .bearer_auth(&s.admin)
        .json(body)
        .send()
        .await
        .unwrap();
    (t.elapsed(), r)
}

/// Starts a call that holds its endpoint until the SQL time limit stops it.
fn spawn_slow_sql(s: &Server, url: &str) -> tokio::task::JoinHandle<Value> {
    let (http, u, token) = (s.http.clone(), url.to_string(), s.admin.clone());
    tokio::spawn(async move {
        let q = json!({"query": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"});
        let r = http
            .post(&u)
            .bearer_auth(&token)
            .json(&q)
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrency_makes_calls_to_one_endpoint_wait_their_turn() {
    let s = Server::start_with(&["--sql-timeout-ms", "800"]);
    setup(&s).await;
    let one_at_a_time = json!({"sql_query": true, "limits": {"max_concurrency": 1}});
    s.ok(
        Method::PUT,
        "/v1/acme--dev/endpoints/single",
        Some(one_at_a_time),
    )
    .await;
    let url = format!("{}/v1/acme--dev/endpoints/single/tools/sql_query", s.url);
    let quick = json!({"query": "SELECT 1"});
    let warm = s
        .http
        .post(&url)
        .bearer_auth(&s.admin)
        .json(&quick)
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), StatusCode::OK);
    // A holds the only slot for the SQL time limit (800 ms)…
    let slow = spawn_slow_sql(&s, &url);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // …so B, a trivial query, waits for it.
    let (waited, r) = timed_post(&s, &url, &quick).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["content"]["rows"],
        json!([[1]])
    );
    let a = slow.await.unwrap();
    assert_eq!(a["is_error"], true, "A hit the SQL time limit: {a}");
    assert!(
        waited >= std::time::Duration::from_millis(400),
        "B did not wait for A's slot: {waited:?}"
    );
    // Without a cap, the same pair runs side by side.
    s.ok(
        Method::PUT,
        "/v1/acme--dev/endpoints/single",
        Some(json!({"sql_query": true})),
    )
    .await;
    let slow = spawn_slow_sql(&s, &url);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (waited, r) = timed_post(&s, &url, &quick).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        waited < std::time::Duration::from_millis(400),
        "uncapped call waited {waited:?}"
    );
    slow.await.unwrap();
}
