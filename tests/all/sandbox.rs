//! Hostile components (`tests/hostile`, built by the test, never shipped):
//! each attack fails only its own call, with a clear error within its
//! deadline, while a well-behaved endpoint keeps answering.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Server, build_component};
use crate::custom_components::upload;

const WS: &str = "acme--dev";
const HOSTILE: &str = "/v1/acme--dev/endpoints/hostile";
/// The hostile endpoint's own time limit. Calls that run past 10 ms move to
/// the background class (lower CPU priority): with the whole suite running
/// on two cores, `huge` (≈ 100 ms of guest work for a 9 MB answer) took
/// more than 1 s of wall time there, so the limit leaves room for that.
const TIMEOUT_MS: u64 = 3000;

async fn setup(s: &Server) -> String {
    for ws in ["acme", "beta"] {
        s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": ws})))
            .await;
        s.ok(
            Method::POST,
            &format!("/v1/workspaces/{ws}/previews"),
            Some(json!({"name": "dev"})),
        )
        .await;
        for c in ["invoices", "secrets"] {
            s.ok(
                Method::PUT,
                &format!("/v1/{ws}--dev/collections/{c}"),
                Some(json!({"schema": {"type": "object"}})),
            )
            .await;
        }
    }
    s.ok(
        Method::PUT,
        &format!("/v1/{WS}/records/secrets"),
        Some(json!({"external_id": "s1", "data": {"code": "TOPSECRET"}})),
    )
    .await;
    s.ok(
        Method::PUT,
        &format!("/v1/{WS}/records/invoices"),
        Some(json!({"data": {"customer": "mine"}})),
    )
    .await;
    let theirs = s
        .ok(
            Method::PUT,
            "/v1/beta--dev/records/invoices",
            Some(json!({"data": {"customer": "THEIRS"}})),
        )
        .await;
    s.ok(
        Method::PUT,
        "/v1/acme--dev/endpoints/good",
        Some(json!({"tools": [{"collection": "invoices", "operations": ["list"]}]})),
    )
    .await;
    theirs["id"].as_str().unwrap().to_string()
}

async fn attack(s: &Server, tool: &str, args: Value) -> (StatusCode, Value, Duration) {
    let started = Instant::now();
    let (st, v) = s
        .call(
            Method::POST,
            &format!("{HOSTILE}/tools/{tool}"),
            Some(&s.admin),
            Some(args),
        )
        .await;
    (st, v, started.elapsed())
}

/// Asserts a call failed with an endpoint error containing `want`, within
/// the deadline (plus scheduling slack on a busy 2-core machine).
fn failed(tool: &str, (st, v, took): (StatusCode, Value, Duration), want: &str) {
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{tool}: {v}");
    assert_eq!(v["error"]["code"], "ENDPOINT_ERROR", "{tool}: {v}");
    let msg = v["error"]["message"].as_str().unwrap();
    eprintln!("{tool}: {took:?}: {msg}");
    assert!(msg.contains(want), "{tool}: {msg}");
    assert!(
        took < Duration::from_millis(TIMEOUT_MS + 2000),
        "{tool} took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_components_fail_only_their_own_calls() {
    let wasm = build_component("tests/hostile", "hostile");
    let s = Server::start();
    let theirs = setup(&s).await;
    let (st, up) = upload(&s, WS, std::fs::read(&wasm).unwrap()).await;
    assert_eq!(st, StatusCode::CREATED, "{up}");
    s.ok(
        Method::PUT,
        HOSTILE,
        Some(json!({
            "tools": [{"collection": "invoices", "operations": ["get"]}],
            "sql_query": true,
            "component": up["digest"],
            "limits": {"timeout_ms": TIMEOUT_MS, "memory_mb": 32}
        })),
    )
    .await;

    // A well-behaved endpoint on the same server, called throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let (good_ok, good_failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut callers = Vec::new();
    for _ in 0..2 {
        let (http, url, admin) = (s.http.clone(), s.url.clone(), s.admin.clone());
        let (stop, ok, bad) = (stop.clone(), good_ok.clone(), good_failed.clone());
        callers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = http
                    .post(format!("{url}/v1/{WS}/endpoints/good/tools/list_invoices"))
                    .bearer_auth(&admin)
                    .json(&json!({}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == StatusCode::OK => ok.fetch_add(1, Ordering::Relaxed),
                    _ => bad.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }

    failed(
        "spin",
        attack(&s, "spin", json!({})).await,
        &format!("ran past its {TIMEOUT_MS} ms time limit"),
    );
    failed(
        "grow",
        attack(&s, "grow", json!({})).await,
        "ran out of memory: its limit is 32 MB",
    );
    failed(
        "recurse",
        attack(&s, "recurse", json!({})).await,
        "overflowed its stack",
    );
    failed(
        "recurse_frames",
        attack(&s, "recurse_frames", json!({})).await,
        "the endpoint failed",
    );
    failed(
        "random",
        attack(&s, "random", json!({})).await,
        "requested len 1099511627776 exceeds limit",
    );
    failed(
        "flood",
        attack(&s, "flood", json!({})).await,
        "resource table has no free keys",
    );
    failed(
        "panic",
        attack(&s, "panic", json!({})).await,
        "it panicked or aborted",
    );
    failed(
        "huge 100 MB",
        attack(&s, "huge", json!({"mb": 100})).await,
        "ran out of memory",
    );
    failed(
        "huge 9 MB",
        attack(&s, "huge", json!({"mb": 9})).await,
        "the limit is 8388608",
    );

    // Store calls outside the grants are refused, naming the grant.
    let (st, v, _) = attack(&s, "other_collection", json!({})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let refused = v["content"]["refused"].as_str().unwrap();
    assert!(
        refused.contains("FORBIDDEN") && refused.contains("collection 'secrets'"),
        "{v}"
    );
    // Another workspace does not exist for it: not by id, not by SQL.
    let (st, v, _) = attack(&s, "other_workspace", json!({"id": theirs})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(
        v["content"]["by_id"]["refused"]
            .as_str()
            .unwrap()
            .starts_with("NOT_FOUND"),
        "{v}"
    );
    assert_eq!(v["content"]["by_sql"], json!([[0]]), "{v}");
    assert!(!v.to_string().contains("THEIRS"));

    // It still serves its well-behaved tool, and prints reach the log.
    let (st, v, _) = attack(&s, "ok", json!({})).await;
    assert_eq!((st, &v["content"]), (StatusCode::OK, &json!({"ok": true})));
    let (st, _, _) = attack(&s, "print", json!({})).await;
    assert_eq!(st, StatusCode::OK);
    let logs = s
        .ok(Method::GET, &format!("{HOSTILE}/logs?limit=1000"), None)
        .await;
    let lines: Vec<(String, String)> = logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["source"].as_str().unwrap().to_string(),
                l["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |source: &str, text: &str| lines.iter().any(|(s, m)| s == source && m.contains(text));
    assert!(has("stdout", "hello from stdout"), "{lines:?}");
    assert!(has("stderr", "hello from stderr"), "{lines:?}");
    assert!(has("stderr", "the hostile component panics"), "{lines:?}");
    assert!(has("host", "time limit"), "{lines:?}");

    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.await.unwrap();
    }
    assert_eq!(good_failed.load(Ordering::Relaxed), 0);
    assert!(
        good_ok.load(Ordering::Relaxed) > 20,
        "the good endpoint answered only {} calls",
        good_ok.load(Ordering::Relaxed)
    );
    // The server is still healthy.
    let (st, _) = s.call(Method::GET, "/health", None, None).await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn a_component_listing_a_tool_twice_is_refused() {
    let wasm = build_component("tests/hostile", "hostile");
    let s = Server::start();
    setup(&s).await;
    let (_, up) = upload(&s, WS, std::fs::read(&wasm).unwrap()).await;
    // The hostile component lists `ok` twice when its config is named "dupe".
    let (st, v) = s
        .call(
            Method::PUT,
            HOSTILE,
            Some(&s.admin),
            Some(json!({"name": "dupe", "sql_query": true, "component": up["digest"]})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lists tool 'ok' more than once"),
        "{v}"
    );
    let (st, _) = s.call(Method::GET, HOSTILE, Some(&s.admin), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "nothing was stored");
}
