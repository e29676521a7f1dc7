//! Hooks end to end: other systems POST Record-format JSON into a
//! collection, authenticated by the hook's secret as a bearer token or a
//! Standard Webhooks signature made by the PyPI `standardwebhooks` package.

use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{
    Receiver, Server, contacts_schema, standardwebhooks_installed, stderr, stdout,
};

/// A signature made by the reference implementation (not ours).
fn py_sign(secret: &str, id: &str, ts: i64, body: &str) -> String {
    standardwebhooks_installed();
    let script = r#"
import sys, datetime
from standardwebhooks.webhooks import Webhook
secret, wid, ts, body = sys.argv[1:5]
print(Webhook(secret).sign(wid, datetime.datetime.fromtimestamp(int(ts), tz=datetime.timezone.utc), body))
"#;
    let out = Command::new("python3")
        .args(["-c", script, secret, id, &ts.to_string(), body])
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_string()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// POSTs `body` to a hook's ingest URL with `headers`.
async fn ingest(
    s: &Server,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (StatusCode, Value) {
    let mut req = s
        .http
        .post(format!("{}{path}", s.url))
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.unwrap();
    let st = resp.status();
    let text = resp.text().await.unwrap();
    (
        st,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn signed(secret: &str, id: &str, body: &str) -> Vec<(&'static str, String)> {
    let ts = now();
    vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", py_sign(secret, id, ts, body)),
        ("content-type", "application/json".to_string()),
    ]
}

async fn count(s: &Server, ws: &str) -> u64 {
    s.ok(
        Method::GET,
        &format!("/v1/{ws}/records/contacts?limit=1"),
        None,
    )
    .await["meta"]["total"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_and_signed_ingest_write_once_through_the_normal_path() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let ws = "crm--dev";
    let out = s.cli_in(
        &[
            "hooks",
            "create",
            "--workspace",
            ws,
            "--name",
            "stripe",
            "--collection",
            "contacts",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let secret = printed
        .split_whitespace()
        .find(|w| w.starts_with("whsec_"))
        .unwrap_or_else(|| panic!("the secret is printed once: {printed}"))
        .to_string();
    assert!(
        printed.contains("/v1/crm--dev/hooks/stripe/ingest"),
        "{printed}"
    );
    let path = "/v1/crm--dev/hooks/stripe/ingest";

    // Bearer.
    let body = r#"{"data": {"name": "Ada"}, "external_id": "cus_1", "external_source": "stripe"}"#;
    let (st, v) = ingest(
        &s,
        path,
        &[("authorization", format!("Bearer {secret}"))],
        body,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["replayed"], false);
    let id = v["records"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(v["records"][0]["data"]["name"], "Ada");

    // Signed by the reference implementation, with no bearer at all: the
    // same external id updates the same record.
    let body2 =
        r#"{"data": {"name": "Ada L."}, "external_id": "cus_1", "external_source": "stripe"}"#;
    let h = signed(&secret, "msg_1", body2);
    let (st, v) = ingest(&s, path, &h, body2).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["records"][0]["id"], id.as_str());
    assert_eq!(v["records"][0]["version"], 2);
    // The same webhook-id again: a no-op that says so.
    let (st, v) = ingest(&s, path, &h, body2).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["replayed"], true, "{v}");
    assert_eq!(v["records"], json!([id]));
    let rec = s
        .ok(
            Method::GET,
            &format!("/v1/{ws}/records/contacts/{id}"),
            None,
        )
        .await;
    assert_eq!(rec["version"], 2, "the replay changed nothing: {rec}");
    // Idempotency-Key works the same with a bearer secret.
    let body3 = r#"{"data": {"name": "Bob"}}"#;
    let hk = [
        ("authorization", format!("Bearer {secret}")),
        ("idempotency-key", "k-1".to_string()),
    ];
    let (_, first) = ingest(&s, path, &hk, body3).await;
    let (_, again) = ingest(&s, path, &hk, body3).await;
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(again["records"][0], first["records"][0]["id"]);
    assert_eq!(count(&s, ws).await, 2);

    // Refusals write nothing.
    let bad_sig = {
        let mut h = signed(&secret, "msg_2", body3);
        h[2].1 = py_sign(
            &crate::common::Receiver::fake_secret(),
            "msg_2",
            now(),
            body3,
        );
        h
    };
    let old = {
        let ts = now() - 600;
        vec![
            ("webhook-id", "msg_3".to_string()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", py_sign(&secret, "msg_3", ts, body3)),
        ]
    };
    let tampered = signed(&secret, "msg_4", body3);
    for (what, headers, body, want) in [
        ("no credentials", vec![], body3, "needs the hook's secret"),
        (
            "wrong bearer",
            vec![("authorization", "Bearer whsec_nope".to_string())],
            body3,
            "secret does not match",
        ),
        ("wrong signing secret", bad_sig, body3, "no signature"),
        (
            "a timestamp 10 minutes old",
            old,
            body3,
            "more than 5 minutes old",
        ),
        (
            "a body changed after signing",
            tampered,
            r#"{"data": {"name": "Eve"}}"#,
            "no signature",
        ),
    ] {
        let (st, v) = ingest(&s, path, &headers, body).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{what}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(want), "{what}: {msg}");
    }
    // An unknown hook answers as a wrong secret does (not enumerable).
    let (st, v) = ingest(
        &s,
        "/v1/crm--dev/hooks/nope/ingest",
        &[("authorization", format!("Bearer {secret}"))],
        body3,
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(count(&s, ws).await, 2);

    // The operations log marks hook writes.
    let ops = s
        .ok(
            Method::GET,
            &format!("/v1/{ws}/operations?after=0&limit=1000"),
            None,
        )
        .await;
    let hook_ops: Vec<&Value> = ops["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["hook"] == "stripe")
        .collect();
    assert_eq!(hook_ops.len(), 3, "{ops}");
    assert!(hook_ops.iter().all(|e| e["token_id"] == "hook:stripe"));
    // The secret shows nowhere: get, list, operations, SQL.
    let got = s
        .ok(Method::GET, &format!("/v1/{ws}/hooks/stripe"), None)
        .await;
    assert_eq!(got["ingest_path"], path);
    let listed = s.ok(Method::GET, &format!("/v1/{ws}/hooks"), None).await;
    let sql = s
        .ok(
            Method::POST,
            &format!("/v1/{ws}/sql"),
            Some(json!({"query": "SELECT * FROM operations_log"})),
        )
        .await;
    for v in [&got, &listed, &ops, &sql] {
        assert!(!v.to_string().contains("whsec_"), "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_a_thousand_is_one_transaction_and_one_bad_item_writes_nothing() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let h = s
        .ok(
            Method::POST,
            "/v1/crm--dev/hooks",
            Some(json!({"name": "bulk", "collection": "contacts"})),
        )
        .await;
    let auth = [(
        "authorization",
        format!("Bearer {}", h["secret"].as_str().unwrap()),
    )];
    let path = "/v1/crm--dev/hooks/bulk/ingest";
    let mut items: Vec<Value> = (0..1000)
        .map(|i| json!({"data": {"name": format!("c{i}")}, "external_id": format!("e{i}")}))
        .collect();
    items[500] = json!({"data": {"name": 42}});
    let (st, v) = ingest(&s, path, &auth, &Value::Array(items.clone()).to_string()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "VALIDATION_ERROR");
    let failed = v["error"]["details"]["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{v}");
    assert_eq!(failed[0]["index"], 500);
    assert!(
        failed[0]["details"].to_string().contains("name"),
        "the violation's path: {v}"
    );
    assert_eq!(count(&s, "crm--dev").await, 0, "nothing was written");
    // Not Record-format: named by index too.
    let (st, v) = ingest(
        &s,
        path,
        &auth,
        r#"[{"data": {"name": "a"}}, {"name": "b"}]"#,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["details"]["failed"][0]["index"], 1, "{v}");
    let (st, v) = ingest(&s, path, &auth, "{not json").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");

    items[500] = json!({"data": {"name": "c500"}});
    let before = s
        .ok(Method::GET, "/v1/crm--dev/operations?after=0&limit=1", None)
        .await["meta"]["total"]
        .as_u64()
        .unwrap();
    let (st, v) = ingest(&s, path, &auth, &Value::Array(items).to_string()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["records"].as_array().unwrap().len(), 1000);
    assert_eq!(count(&s, "crm--dev").await, 1000);
    let ops = s
        .ok(
            Method::GET,
            &format!("/v1/crm--dev/operations?after={before}&limit=1000"),
            None,
        )
        .await;
    let seqs: Vec<u64> = ops["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["hook"] == "bulk")
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 1000);
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive: one transaction"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_writes_do_not_fire_skip_hook_writes_triggers() {
    let s = Server::start_with(&["--egress-allow", "127.0.0.1"]);
    let rx = Receiver::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let ws = "crm--dev";
    let mut secrets = Vec::new();
    for (name, skip) in [("skips", true), ("all", false)] {
        let t = s
            .ok(Method::POST, &format!("/v1/{ws}/triggers"), Some(json!({"name": name, "collection": "contacts",
                "url": format!("{}/{name}", rx.url), "events": ["create"], "skip_hook_writes": skip})))
            .await;
        secrets.push(t["secret"].as_str().unwrap().to_string());
    }
    rx.control(&[&secrets[0], &secrets[1]], json!({"ok": true}))
        .await;
    let h = s
        .ok(
            Method::POST,
            &format!("/v1/{ws}/hooks"),
            Some(json!({"name": "in", "collection": "contacts"})),
        )
        .await;
    let auth = [(
        "authorization",
        format!("Bearer {}", h["secret"].as_str().unwrap()),
    )];
    let (st, v) = ingest(
        &s,
        "/v1/crm--dev/hooks/in/ingest",
        &auth,
        r#"{"data": {"name": "From hook"}}"#,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    s.ok(
        Method::POST,
        &format!("/v1/{ws}/records/contacts"),
        Some(json!({"data": {"name": "From REST"}})),
    )
    .await;
    let got = rx.wait_for(10, |r| r.len() >= 3).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let got_after = rx.requests();
    assert_eq!(got_after.len(), 3, "{got_after:#?}");
    let names = |path: &str| -> Vec<String> {
        got.iter()
            .filter(|r| r["path"] == path)
            .map(|r| {
                r["body"]["data"]["data"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(names("/skips"), vec!["From REST"]);
    assert_eq!(names("/all"), vec!["From hook", "From REST"]);
    let from_hook = got.iter().find(|r| r["path"] == "/all").unwrap();
    assert_eq!(from_hook["body"]["origin"], json!({"hook": "in"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_are_preview_config_and_production_gets_its_own_secret() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let body = json!({"name": "stripe", "collection": "contacts"});
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/crm/hooks",
            Some(&s.admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("preview"),
        "{v}"
    );
    let preview = s.ok(Method::POST, "/v1/crm--dev/hooks", Some(body)).await;
    let p = s
        .ok(
            Method::POST,
            "/v1/workspaces/crm/promote",
            Some(json!({"from": "crm--dev"})),
        )
        .await;
    assert_eq!(p["diff"]["hooks"]["added"], json!(["stripe"]), "{p}");
    let prod = p["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == "hook")
        .unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let path = "/v1/crm/hooks/stripe/ingest";
    let body = r#"{"data": {"name": "Prod"}}"#;
    let (st, _) = ingest(
        &s,
        path,
        &[(
            "authorization",
            format!("Bearer {}", preview["secret"].as_str().unwrap()),
        )],
        body,
    )
    .await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "the preview's secret does not open production"
    );
    let (st, v) = ingest(
        &s,
        path,
        &[("authorization", format!("Bearer {prod}"))],
        body,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Rotation works in production (a secret is not config), with a grace period.
    let r = s
        .ok(
            Method::POST,
            "/v1/crm/hooks/stripe/rotate-secret",
            Some(json!({"grace_seconds": 60})),
        )
        .await;
    let next = r["secret"].as_str().unwrap();
    for secret in [prod.as_str(), next] {
        let (st, v) = ingest(
            &s,
            path,
            &[("authorization", format!("Bearer {secret}"))],
            body,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    // Deleting is preview-only; the collection is protected while the hook exists.
    let (st, _) = s
        .call(Method::DELETE, "/v1/crm/hooks/stripe", Some(&s.admin), None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = s
        .call(
            Method::DELETE,
            "/v1/crm--dev/collections/contacts",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hook 'stripe'"),
        "{v}"
    );
    // A token that may manage hooks but not write the collection cannot
    // create one (the hook would write for it).
    let t = s
        .token("hooks-only", json!([{"scope": {"workspaces": ["crm"]}, "permissions": ["read:hooks", "write:hooks", "read:collections"]}]))
        .await;
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/crm--dev/hooks",
            Some(&t),
            Some(json!({"name": "sneaky", "collection": "contacts"})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("write:records"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_is_held_to_the_rate_limit() {
    let s = Server::start_with(&["--rate-limit", "5"]);
    s.setup("crm", "contacts", contacts_schema()).await;
    let h = s
        .ok(
            Method::POST,
            "/v1/crm--dev/hooks",
            Some(json!({"name": "busy", "collection": "contacts"})),
        )
        .await;
    let auth = [(
        "authorization",
        format!("Bearer {}", h["secret"].as_str().unwrap()),
    )];
    let mut statuses = Vec::new();
    let mut last = Value::Null;
    for i in 0..8 {
        let (st, v) = ingest(
            &s,
            "/v1/crm--dev/hooks/busy/ingest",
            &auth,
            &format!(r#"{{"data": {{"name": "n{i}"}}}}"#),
        )
        .await;
        statuses.push(st);
        last = v;
    }
    assert!(
        statuses[..4].iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert_eq!(last["error"]["code"], "RATE_LIMITED");
    // Requests without the secret do not count against it.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    for _ in 0..8 {
        let (st, _) = ingest(
            &s,
            "/v1/crm--dev/hooks/busy/ingest",
            &[("authorization", "Bearer whsec_nope".to_string())],
            "{}",
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let (st, v) = ingest(
        &s,
        "/v1/crm--dev/hooks/busy/ingest",
        &auth,
        r#"{"data": {"name": "ok"}}"#,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}
