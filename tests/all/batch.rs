//! Batch: atomic, validated first, at most 1,000 operations.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Server, contacts_schema};

#[tokio::test]
async fn a_valid_batch_applies_every_operation() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let ops = json!([
        {"type": "upsert_collection", "collection": "deals", "schema": {"type": "object"}},
        {"type": "upsert_record", "collection": "contacts", "external_id": "c1", "data": {"name": "A"}},
        {"type": "upsert_record", "collection": "deals", "external_id": "d1", "data": {"title": "Big"}},
        {"type": "upsert_relationship", "rel_type": "owns", "source_collection": "contacts", "source_id": "c1",
         "target_collection": "deals", "target_id": "d1"},
        {"type": "delete_relationship", "rel_type": "owns", "source_collection": "contacts", "source_id": "c1",
         "target_collection": "deals", "target_id": "d1"},
        {"type": "delete_record", "collection": "deals", "id": "d1"}
    ]);
    let out = s
        .ok(
            Method::POST,
            "/v1/crm--dev/batch",
            Some(json!({"operations": ops})),
        )
        .await;
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    assert_eq!(results[1]["result"]["data"]["name"], "A");
    let c = s
        .ok(Method::GET, "/v1/crm--dev/records/contacts/c1", None)
        .await;
    assert_eq!(c["data"]["name"], "A");
    // Collection changes in a production batch are refused like anywhere else.
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/crm/batch",
            Some(&s.admin),
            Some(json!({"operations": [{"type": "upsert_collection", "collection": "x", "schema": {}}]})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["details"]["failed"][0]["code"], "FORBIDDEN");
}

#[tokio::test]
async fn one_bad_operation_writes_nothing_and_every_failure_is_reported() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let ops = json!([
        {"type": "upsert_record", "collection": "contacts", "external_id": "ok1", "data": {"name": "fine"}},
        {"type": "upsert_record", "collection": "contacts", "external_id": "bad", "data": {"name": 42}},
        {"type": "upsert_record", "collection": "contacts", "external_id": "ok2", "data": {"name": "fine"}},
        {"type": "upsert_record", "collection": "ghosts", "data": {}},
        {"type": "teleport_record"}
    ]);
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/crm/batch",
            Some(&s.admin),
            Some(json!({"operations": ops})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    // A malformed operation is reported before anything runs.
    assert_eq!(v["error"]["details"]["failed"][0]["index"], 4, "{v}");
    let ops: Vec<Value> = ops.as_array().unwrap()[..4].to_vec();
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/crm/batch",
            Some(&s.admin),
            Some(json!({"operations": ops})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let failed = v["error"]["details"]["failed"].as_array().unwrap();
    let idx: Vec<u64> = failed
        .iter()
        .map(|f| f["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, [1, 3]);
    assert_eq!(failed[0]["details"]["violations"][0]["path"], "/name");
    assert_eq!(failed[1]["code"], "NOT_FOUND");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was written")
    );
    let all = s.ok(Method::GET, "/v1/crm/records/contacts", None).await;
    assert_eq!(
        all["meta"]["total"], 0,
        "the valid operations were not written either"
    );
    let log = s.ok(Method::GET, "/v1/crm/operations", None).await;
    assert!(
        log["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["operation"] != "create_record")
    );
}

#[tokio::test]
async fn thousand_operations_pass_and_a_thousand_and_one_are_refused() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let ops = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"type": "upsert_record", "collection": "contacts", "external_id": format!("c{i}"), "data": {"name": "x"}}))
            .collect()
    };
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/crm/batch",
            Some(&s.admin),
            Some(json!({"operations": ops(1001)})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 1000"),
        "{v}"
    );
    let all = s.ok(Method::GET, "/v1/crm/records/contacts", None).await;
    assert_eq!(all["meta"]["total"], 0);
    let out = s
        .ok(
            Method::POST,
            "/v1/crm/batch",
            Some(json!({"operations": ops(1000)})),
        )
        .await;
    assert_eq!(out["meta"]["operations"], 1000);
    let all = s
        .ok(Method::GET, "/v1/crm/records/contacts?limit=1", None)
        .await;
    assert_eq!(all["meta"]["total"], 1000);
    let (st, _) = s
        .call(
            Method::POST,
            "/v1/crm/batch",
            Some(&s.admin),
            Some(json!({"operations": []})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}
