//! Tokens and grants: every REST call is authenticated and checked.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Server, contacts_schema};

#[tokio::test]
async fn missing_malformed_unknown_revoked_and_expired_tokens_get_401() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let (st, v) = s.call(Method::GET, "/v1/workspaces", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "UNAUTHORIZED");
    let resp = s
        .http
        .get(format!("{}/v1/workspaces", s.url))
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()
            .get("www-authenticate")
            .is_some_and(|h| h.to_str().unwrap().starts_with("Bearer"))
    );
    for bad in ["nonsense", "mcpf_nope", "mcpf_0000000000000000_AAAA"] {
        let (st, _) = s.call(Method::GET, "/v1/workspaces", Some(bad), None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{bad}");
    }
    // Right id, wrong secret.
    let id = s.admin.split('_').nth(1).unwrap();
    let (st, _) = s
        .call(
            Method::GET,
            "/v1/workspaces",
            Some(&format!("mcpf_{id}_wrongsecret")),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    let grants = json!([{"scope": {"workspaces": ["crm"]}, "permissions": ["read:records"]}]);
    let t = s.token("reader", grants.clone()).await;
    let (st, _) = s
        .call(Method::GET, "/v1/crm/records/contacts", Some(&t), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let list = s.ok(Method::GET, "/v1/tokens", None).await;
    let reader_row = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "reader")
        .unwrap();
    assert!(
        reader_row["last_used_at"].is_string(),
        "last_used_at is tracked: {reader_row}"
    );
    let tid = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "reader")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        list.to_string().find("hash").is_none() && !list.to_string().contains(&t),
        "listing never shows secrets"
    );
    s.ok(Method::DELETE, &format!("/v1/tokens/{tid}"), None)
        .await;
    let (st, v) = s
        .call(Method::GET, "/v1/crm/records/contacts", Some(&t), None)
        .await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "revocation is effective on the next request"
    );
    assert!(v["error"]["message"].as_str().unwrap().contains("revoked"));

    let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2);
    let v = s
        .ok(
            Method::POST,
            "/v1/tokens",
            Some(json!({"name": "short", "grants": grants, "expires_at": soon.to_string()})),
        )
        .await;
    let short = v["token"].as_str().unwrap().to_string();
    let (st, _) = s
        .call(Method::GET, "/v1/crm/records/contacts", Some(&short), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (st, v) = s
        .call(Method::GET, "/v1/crm/records/contacts", Some(&short), None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(v["error"]["message"].as_str().unwrap().contains("expired"));
    // Revocation survives a restart.
    let mut s = s;
    s.restart();
    let (st, _) = s
        .call(Method::GET, "/v1/crm/records/contacts", Some(&t), None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = s
        .call(Method::GET, "/v1/workspaces", Some(&s.admin), None)
        .await;
    assert_eq!(st, StatusCode::OK, "the admin token survives a restart");
}

#[tokio::test]
async fn grants_limit_workspace_permission_collection_and_environment() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    s.setup("hr", "people", json!({"type": "object"})).await;
    s.ok(
        Method::PUT,
        "/v1/hr/records/people",
        Some(json!({"external_id": "p1", "data": {"secret": "salary"}})),
    )
    .await;

    let crm_rw = s.token("crm-rw", json!([{"scope": {"workspaces": ["crm"]}, "permissions": ["read:records", "write:records"]}])).await;
    // Another workspace: 403, and nothing of it leaks.
    let (st, v) = s
        .call(Method::GET, "/v1/hr/records/people", Some(&crm_rw), None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(!v.to_string().contains("salary"));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no grant for workspace 'hr'"),
        "{v}"
    );
    let (st, _) = s
        .call(
            Method::PUT,
            "/v1/hr/records/people",
            Some(&crm_rw),
            Some(json!({"data": {}})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let ws = s
        .call(Method::GET, "/v1/workspaces", Some(&crm_rw), None)
        .await
        .1;
    let ids: Vec<&str> = ws["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["crm", "crm--dev"], "lists only what the grants reach");
    // Its own workspace works; a missing permission is 403 naming it.
    let (st, _) = s
        .call(
            Method::PUT,
            "/v1/crm/records/contacts",
            Some(&crm_rw),
            Some(json!({"data": {"name": "x"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = s
        .call(
            Method::PUT,
            "/v1/crm--dev/collections/x",
            Some(&crm_rw),
            Some(json!({"schema": {}})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("write:collections"),
        "{v}"
    );
    let (st, _) = s
        .call(
            Method::POST,
            "/v1/workspaces",
            Some(&crm_rw),
            Some(json!({"id": "new"})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    let reader = s
        .token(
            "reader",
            json!([{"scope": {"workspaces": ["crm"]}, "permissions": ["read:records"]}]),
        )
        .await;
    let (st, v) = s
        .call(
            Method::PUT,
            "/v1/crm/records/contacts",
            Some(&reader),
            Some(json!({"data": {"name": "x"}})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("write:records")
    );

    // Collection scope.
    s.ok(
        Method::PUT,
        "/v1/crm--dev/collections/deals",
        Some(json!({"schema": {}})),
    )
    .await;
    s.ok(
        Method::POST,
        "/v1/workspaces/crm/promote",
        Some(json!({"from": "crm--dev"})),
    )
    .await;
    let deals_only = s
        .token("deals", json!([{"scope": {"workspaces": ["crm"], "collections": ["deals"]}, "permissions": ["*"]}]))
        .await;
    let (st, _) = s
        .call(
            Method::PUT,
            "/v1/crm/records/deals",
            Some(&deals_only),
            Some(json!({"data": {}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s
        .call(
            Method::GET,
            "/v1/crm/records/contacts",
            Some(&deals_only),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Environment scope.
    let preview_only = s
        .token("pv", json!([{"scope": {"workspaces": ["crm"], "environments": ["preview"]}, "permissions": ["*"]}]))
        .await;
    let (st, _) = s
        .call(
            Method::GET,
            "/v1/crm--dev/records/contacts",
            Some(&preview_only),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s
        .call(
            Method::GET,
            "/v1/crm/records/contacts",
            Some(&preview_only),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn tokens_cannot_create_wider_tokens_and_bad_grants_are_refused() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let parent = s.token("parent", json!([{"scope": {"workspaces": ["crm"]}, "permissions": ["read:records", "write:records"]}])).await;
    let create = |grants: serde_json::Value| {
        let s = &s;
        let parent = parent.clone();
        async move {
            s.call(
                Method::POST,
                "/v1/tokens",
                Some(&parent),
                Some(json!({"name": "child", "grants": grants})),
            )
            .await
        }
    };
    let (st, v) =
        create(json!([{"scope": {"workspaces": ["crm"]}, "permissions": ["read:records"]}])).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(v["token"].as_str().unwrap().starts_with("mcpf_"));
    let secret = v["token"]
        .as_str()
        .unwrap()
        .splitn(3, '_')
        .nth(2)
        .unwrap()
        .to_string();
    assert!(secret.len() >= 43, "at least 256 bits of secret");
    for wider in [
        json!([{"scope": {"workspaces": ["*"]}, "permissions": ["read:records"]}]),
        json!([{"scope": {"workspaces": ["crm", "hr"]}, "permissions": ["read:records"]}]),
        json!([{"scope": {"workspaces": ["crm"]}, "permissions": ["*"]}]),
        json!([{"scope": {"workspaces": ["crm"]}, "permissions": ["write:collections"]}]),
    ] {
        let (st, v) = create(wider.clone()).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{wider} -> {v}");
    }
    for bad in [
        json!([{"scope": {"workspaces": ["crm"]}, "permissions": ["fly"]}]),
        json!([{"scope": {"workspaces": []}, "permissions": ["read:records"]}]),
        json!([{"scope": {"workspaces": ["crm"], "environments": ["staging"]}, "permissions": ["read:records"]}]),
        json!([]),
        json!("all"),
    ] {
        let (st, v) = create(bad.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad} -> {v}");
    }
    let (st, _) = s
        .call(Method::POST, "/v1/tokens", Some(&s.admin), Some(json!({"name": "old", "grants": [{"scope": {"workspaces": ["crm"]}, "permissions": ["*"]}], "expires_at": "2001-01-01T00:00:00Z"})))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // The parent only sees and revokes its own children.
    let mine = s
        .call(Method::GET, "/v1/tokens", Some(&parent), None)
        .await
        .1;
    let names: Vec<&str> = mine["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"child") && !names.contains(&"admin"),
        "{names:?}"
    );
    let admin_id = s.admin.split('_').nth(1).unwrap();
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{admin_id}"),
            Some(&parent),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn tokens_never_reach_the_log() {
    // At trace level every crate that sees a request logs all it has
    // (hyper, axum, tower, rmcp, ours): a leak would show. The Wasm
    // compiler's crates stay at info: they see no request, and at trace
    // they print every compiled function.
    let s = Server::start_logging(
        &[],
        "trace,cranelift_codegen=info,cranelift_frontend=info,regalloc2=info,wasmtime_cranelift=info,wasmtime_internal_cranelift=info,cranelift_entity=info,wasmtime_environ=info,wasmtime_internal_environ=info",
    );
    s.setup("crm", "contacts", crate::common::contacts_schema())
        .await;
    s.ok(
        Method::PUT,
        "/v1/crm--dev/endpoints/desk",
        Some(json!({"tools": [{"collection": "contacts", "operations": ["list"]}]})),
    )
    .await;
    let t = s
        .token(
            "agent",
            json!([{"scope": {"workspaces": ["crm--dev"]}, "permissions": ["read:records"]}]),
        )
        .await;
    s.call(Method::GET, "/v1/workspaces", Some(&t), None).await;
    s.call(Method::GET, "/v1/workspaces", Some("mcpf_bad_token"), None)
        .await;
    // Both MCP surfaces, Streamable HTTP: initialize and a tool call.
    for path in ["/mcp", "/e/desk/mcp"] {
        let mut rpc = crate::mcp_auth::Rpc::new(&s, path, Some(&t));
        let (st, body) = rpc.initialize().await;
        assert_eq!(st, StatusCode::OK, "{path}: {body}");
        rpc.request("tools/list", json!({})).await;
    }
    let log = std::fs::read_to_string(s.dir.path().join("serve.log")).unwrap_or_default();
    assert!(
        log.contains("TRACE"),
        "the server logged at trace level ({} bytes)",
        log.len()
    );
    for token in [&t, &s.admin] {
        let secret = token.splitn(3, '_').nth(2).unwrap();
        assert!(!log.contains(secret), "a token's secret is in the log");
    }
}

#[tokio::test]
async fn a_token_over_its_rate_limit_gets_429_with_retry_after() {
    let s = Server::start_with(&["--rate-limit", "5"]);
    let other = s
        .token(
            "other",
            json!([{"scope": {"workspaces": ["*"]}, "permissions": ["read:workspaces"]}]),
        )
        .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    let mut body = serde_json::Value::Null;
    for _ in 0..8 {
        let r = s
            .http
            .get(format!("{}/v1/workspaces", s.url))
            .bearer_auth(&s.admin)
            .send()
            .await
            .unwrap();
        statuses.push(r.status());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = r
                .headers()
                .get("retry-after")
                .map(|h| h.to_str().unwrap().to_string());
            body = r.json().await.unwrap();
        }
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
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    let secs: u64 = retry_after.expect("Retry-After header").parse().unwrap();
    assert!((1..=2).contains(&secs), "{secs}");
    // Limits are per token.
    let (st, _) = s
        .call(Method::GET, "/v1/workspaces", Some(&other), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    // And they refill.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (st, _) = s
        .call(Method::GET, "/v1/workspaces", Some(&s.admin), None)
        .await;
    assert_eq!(st, StatusCode::OK);
}
