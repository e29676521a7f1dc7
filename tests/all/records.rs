//! Records: idempotent upsert, validation, versions, archive, soft delete,
//! queries, and the 100-concurrent-upserts idempotency guarantee.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Server, contacts_schema};

#[tokio::test]
async fn upsert_by_external_key_is_idempotent() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let body = json!({"external_id": "c_001", "external_source": "crm", "data": {"name": "Jane Doe", "email": "jane@acme.com"}});
    let a = s
        .ok(Method::PUT, "/v1/crm/records/contacts", Some(body.clone()))
        .await;
    let b = s
        .ok(Method::PUT, "/v1/crm/records/contacts", Some(body))
        .await;
    assert_eq!(a["id"], b["id"]);
    assert_eq!(
        (a["version"].as_u64(), b["version"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(a["external_id"], "c_001");
    // Same external id from another source is another record.
    let c = s
        .ok(Method::PUT, "/v1/crm/records/contacts", Some(json!({"external_id": "c_001", "external_source": "hubspot", "data": {"name": "J"}})))
        .await;
    assert_ne!(a["id"], c["id"]);
    let all = s.ok(Method::GET, "/v1/crm/records/contacts", None).await;
    assert_eq!(all["meta"]["total"], 2);
    // Get by internal id returns the stored document.
    let got = s
        .ok(
            Method::GET,
            &format!("/v1/crm/records/contacts/{}", a["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(got["data"]["email"], "jane@acme.com");
    assert_eq!(got["collection"], "contacts");
    // An external key that belongs to another record conflicts with an explicit id.
    let (st, v) = s
        .call(
            Method::PUT,
            "/v1/crm/records/contacts",
            Some(&s.admin),
            Some(json!({"id": c["id"], "external_id": "c_001", "external_source": "crm", "data": {"name": "x"}})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
}

#[tokio::test]
async fn hundred_concurrent_upserts_with_one_external_key_make_one_record() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let http = s.http.clone();
        let url = format!("{}/v1/crm/records/contacts", s.url);
        let token = s.admin.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"external_id": "same", "external_source": "crm", "data": {"name": format!("n{i}")}});
            let r = http.put(url).bearer_auth(token).json(&body).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every upsert answered with the same record");
    let all = s.ok(Method::GET, "/v1/crm/records/contacts", None).await;
    assert_eq!(all["meta"]["total"], 1);
    assert_eq!(all["data"][0]["version"], 100);
}

#[tokio::test]
async fn schema_violations_name_path_and_rule_and_write_nothing() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let (st, v) = s
        .call(
            Method::PUT,
            "/v1/crm/records/contacts",
            Some(&s.admin),
            Some(json!({"data": {"name": 5, "value": "big"}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "VALIDATION_ERROR");
    let violations = v["error"]["details"]["violations"].as_array().unwrap();
    let pairs: Vec<(String, String)> = violations
        .iter()
        .map(|x| {
            (
                x["path"].as_str().unwrap().to_string(),
                x["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        pairs.contains(&("/name".into(), "type".into())),
        "{pairs:?}"
    );
    assert!(
        pairs.contains(&("/value".into(), "type".into())),
        "{pairs:?}"
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("'/"),
        "{v}"
    );
    let (st, v) = s
        .call(
            Method::PUT,
            "/v1/crm/records/contacts",
            Some(&s.admin),
            Some(json!({"data": {}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["details"]["violations"][0]["rule"], "required");
    let (st, _) = s
        .call(
            Method::PUT,
            "/v1/crm/records/contacts",
            Some(&s.admin),
            Some(json!({"data": [1]})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let all = s.ok(Method::GET, "/v1/crm/records/contacts", None).await;
    assert_eq!(all["meta"]["total"], 0);
    // Unknown collection.
    let (st, v) = s
        .call(
            Method::PUT,
            "/v1/crm/records/nope",
            Some(&s.admin),
            Some(json!({"data": {}})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("collection 'nope'")
    );
    // Unknown workspace.
    let (st, _) = s
        .call(
            Method::GET,
            "/v1/nowhere/records/contacts",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn merge_patch_versions_and_conflicts() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let r = s
        .ok(
            Method::PUT,
            "/v1/crm/records/contacts",
            Some(json!({"data": {"name": "A", "email": "a@x", "stage": "lead"}})),
        )
        .await;
    let path = format!("/v1/crm/records/contacts/{}", r["id"].as_str().unwrap());
    let p = s
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"data": {"stage": "won", "email": null}, "version": 1})),
        )
        .await;
    assert_eq!(p["data"], json!({"name": "A", "stage": "won"}));
    assert_eq!(p["version"], 2);
    // Stale version: 409, nothing changes.
    let (st, v) = s
        .call(
            Method::PATCH,
            &path,
            Some(&s.admin),
            Some(json!({"data": {"stage": "lost"}, "version": 1})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["details"]["current_version"], 2);
    let (st, _) = s
        .call(
            Method::PUT,
            "/v1/crm/records/contacts",
            Some(&s.admin),
            Some(json!({"id": r["id"], "data": {"name": "B"}, "version": 7})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    // A patch that breaks the schema is refused.
    let (st, v) = s
        .call(
            Method::PATCH,
            &path,
            Some(&s.admin),
            Some(json!({"data": {"name": null}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let now = s.ok(Method::GET, &path, None).await;
    assert_eq!(now["data"]["stage"], "won");
    assert_eq!(now["version"], 2);
}

#[tokio::test]
async fn archived_is_read_only_but_can_be_cancelled_and_deleted() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let r = s
        .ok(
            Method::PUT,
            "/v1/crm/records/contacts",
            Some(json!({"external_id": "c1", "data": {"name": "A"}})),
        )
        .await;
    let id = r["id"].as_str().unwrap();
    let path = format!("/v1/crm/records/contacts/{id}");
    let a = s.ok(Method::POST, &format!("{path}/archive"), None).await;
    assert_eq!(a["archived"], true);
    let (st, v) = s
        .call(
            Method::PUT,
            "/v1/crm/records/contacts",
            Some(&s.admin),
            Some(json!({"external_id": "c1", "data": {"name": "B"}})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("archived"),
        "{v}"
    );
    let (st, _) = s
        .call(
            Method::PATCH,
            &path,
            Some(&s.admin),
            Some(json!({"data": {"name": "C"}})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let c = s.ok(Method::POST, &format!("{path}/cancel"), None).await;
    assert_eq!(c["cancelled"], true);
    assert_eq!(c["data"]["name"], "A");
    let d = s.ok(Method::DELETE, &path, None).await;
    assert_eq!(d["deleted"], true);
    // Soft-deleted: gone from reads and lists, kept in the store.
    let (st, _) = s.call(Method::GET, &path, Some(&s.admin), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let list = s.ok(Method::GET, "/v1/crm/records/contacts", None).await;
    assert_eq!(list["meta"]["total"], 0);
    let with_deleted = s
        .ok(
            Method::POST,
            "/v1/crm/records/contacts/query",
            Some(json!({"include_deleted": true})),
        )
        .await;
    assert_eq!(with_deleted["meta"]["total"], 1);
}

#[tokio::test]
async fn query_filters_sorts_pages_and_counts() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    for (i, stage) in ["lead", "negotiation", "negotiation", "won", "negotiation"]
        .iter()
        .enumerate()
    {
        s.ok(
            Method::PUT,
            "/v1/crm/records/contacts",
            Some(json!({"external_id": format!("c{i}"), "data": {"name": format!("N{i}"), "stage": stage, "value": (i * 10) as f64}})),
        )
        .await;
    }
    let sr = &s;
    let q = |body: Value| async move {
        sr.ok(Method::POST, "/v1/crm/records/contacts/query", Some(body))
            .await
    };
    let r = q(json!({
        "filter": {"field": "data.stage", "op": "eq", "value": "negotiation"},
        "sort": {"field": "data.value", "order": "desc"}, "limit": 2
    }))
    .await;
    assert_eq!(r["meta"]["total"], 3);
    assert_eq!(r["meta"]["limit"], 2);
    let names: Vec<&str> = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["data"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["N4", "N2"]);
    let r2 = q(json!({"filter": {"field": "data.stage", "op": "eq", "value": "negotiation"}, "sort": {"field": "data.value"}, "offset": 1, "limit": 5})).await;
    let names: Vec<&str> = r2["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["data"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["N2", "N4"]);
    let combined = q(json!({"filter": {"and": [
        {"field": "data.value", "op": "gte", "value": 10},
        {"or": [{"field": "data.stage", "op": "in", "value": ["won"]}, {"field": "data.name", "op": "contains", "value": "1"}]}
    ]}}))
    .await;
    assert_eq!(combined["meta"]["total"], 2);
    let exists = q(json!({"filter": {"field": "data.email", "op": "exists", "value": true}})).await;
    assert_eq!(exists["meta"]["total"], 0);
    for bad in [
        json!({"limit": 1001}),
        json!({"limit": 0}),
        json!({"filter": {"field": "data.x", "op": "like", "value": 1}}),
        json!({"sort": {"field": "data.x", "order": "sideways"}}),
        json!({"bogus": 1}),
    ] {
        let (st, v) = s
            .call(
                Method::POST,
                "/v1/crm/records/contacts/query",
                Some(&s.admin),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad} -> {v}");
    }
}
