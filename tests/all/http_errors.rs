//! Malformed and oversized requests: clear 4xx errors, never a panic.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Server, contacts_schema};

#[tokio::test]
async fn malformed_json_wrong_shapes_and_oversized_bodies() {
    let s = Server::start_with(&["--max-body", "65536"]);
    s.setup("crm", "contacts", contacts_schema()).await;
    let send = |method: Method, path: &str, body: &'static str| {
        s.http
            .request(method, format!("{}{path}", s.url))
            .bearer_auth(&s.admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for body in ["{", "not json", "{\"data\": }", "[1,2", ""] {
        let r = send(Method::PUT, "/v1/crm/records/contacts", body)
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body:?}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "VALIDATION_ERROR");
    }
    let r = send(
        Method::PUT,
        "/v1/crm/records/contacts",
        "{\"data\": {\"name\": \"x\"}, \"surprise\": 1}",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("surprise"),
        "unknown fields are named: {v}"
    );

    let big = "x".repeat(100_000);
    let (st, v) = s
        .call(
            Method::PUT,
            "/v1/crm/records/contacts",
            Some(&s.admin),
            Some(json!({"data": {"name": big}})),
        )
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "PAYLOAD_TOO_LARGE");
    let all = s.ok(Method::GET, "/v1/crm/records/contacts", None).await;
    assert_eq!(all["meta"]["total"], 0, "bad requests change nothing");

    let (st, v) = s
        .call(Method::GET, "/v2/anything", Some(&s.admin), None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "NOT_FOUND");
    let (st, v) = s
        .call(
            Method::GET,
            "/v1/crm/records/contacts?limit=abc",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("limit"),
        "{v}"
    );
    let (st, v) = s
        .call(Method::PATCH, "/v1/workspaces", Some(&s.admin), None)
        .await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(v["error"]["code"], "METHOD_NOT_ALLOWED");
    // The server is still serving.
    let h = s.ok(Method::GET, "/health", None).await;
    assert_eq!(h["status"], "ok");
}
