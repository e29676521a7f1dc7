//! Relationships: uniqueness, metadata, directions through the indexes.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Server, contacts_schema};

async fn record(s: &Server, coll: &str, ext: &str) -> String {
    let v = s
        .ok(
            Method::PUT,
            &format!("/v1/crm/records/{coll}"),
            Some(json!({"external_id": ext, "data": {"name": ext}})),
        )
        .await;
    v["id"].as_str().unwrap().to_string()
}

fn rel(t: &str, sc: &str, si: &str, tc: &str, ti: &str) -> Value {
    json!({"rel_type": t, "source_collection": sc, "source_id": si, "target_collection": tc, "target_id": ti})
}

#[tokio::test]
async fn upsert_is_unique_on_type_source_target_and_queries_by_direction() {
    let s = Server::start();
    s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": "crm"})))
        .await;
    s.ok(
        Method::POST,
        "/v1/workspaces/crm/previews",
        Some(json!({"name": "dev"})),
    )
    .await;
    s.ok(
        Method::PUT,
        "/v1/crm--dev/collections/contacts",
        Some(json!({"schema": contacts_schema()})),
    )
    .await;
    s.ok(
        Method::PUT,
        "/v1/crm--dev/collections/deals",
        Some(json!({"schema": {"type": "object"}})),
    )
    .await;
    s.ok(
        Method::POST,
        "/v1/workspaces/crm/promote",
        Some(json!({"from": "crm--dev"})),
    )
    .await;
    let c1 = record(&s, "contacts", "c_001").await;
    let d1 = record(&s, "deals", "d_001").await;
    let d2 = record(&s, "deals", "d_002").await;

    // The seed's form: records named by external id.
    let a = s
        .ok(
            Method::PUT,
            "/v1/crm/relationships",
            Some(rel("owns", "contacts", "c_001", "deals", "d_001")),
        )
        .await;
    assert_eq!(
        a["source_id"],
        c1.as_str(),
        "external ids resolve to internal ids"
    );
    // The same link again is the same relationship (metadata updated in place).
    let mut again = rel("owns", "contacts", &c1, "deals", &d1);
    again["metadata"] = json!({"since": 2024});
    let b = s
        .ok(Method::PUT, "/v1/crm/relationships", Some(again))
        .await;
    assert_eq!(a["id"], b["id"]);
    assert_eq!(b["metadata"]["since"], 2024);
    s.ok(
        Method::PUT,
        "/v1/crm/relationships",
        Some(rel("owns", "contacts", &c1, "deals", &d2)),
    )
    .await;
    s.ok(
        Method::PUT,
        "/v1/crm/relationships",
        Some(rel("follows", "deals", &d1, "contacts", &c1)),
    )
    .await;

    let sr = &s;
    let get = |path: String| async move { sr.ok(Method::GET, &path, None).await };
    let out = get(format!(
        "/v1/crm/records/contacts/{c1}/relationships?type=owns&direction=outgoing"
    ))
    .await;
    assert_eq!(out["meta"]["total"], 2);
    let inc = get(format!(
        "/v1/crm/records/contacts/{c1}/relationships?direction=incoming"
    ))
    .await;
    assert_eq!(inc["meta"]["total"], 1);
    assert_eq!(inc["data"][0]["rel_type"], "follows");
    let both = get("/v1/crm/records/contacts/c_001/relationships?direction=both".to_string()).await;
    assert_eq!(both["meta"]["total"], 3);
    let deal_in = get(format!(
        "/v1/crm/records/deals/{d1}/relationships?type=owns&direction=incoming"
    ))
    .await;
    assert_eq!(deal_in["meta"]["total"], 1);

    let one = get(format!(
        "/v1/crm/relationships/{}",
        a["id"].as_str().unwrap()
    ))
    .await;
    assert_eq!(one["rel_type"], "owns");
    s.ok(
        Method::DELETE,
        &format!("/v1/crm/relationships/{}", a["id"].as_str().unwrap()),
        None,
    )
    .await;
    let out = get(format!(
        "/v1/crm/records/contacts/{c1}/relationships?type=owns&direction=outgoing"
    ))
    .await;
    assert_eq!(out["meta"]["total"], 1);

    // Bad input.
    let (st, v) = s
        .call(
            Method::PUT,
            "/v1/crm/relationships",
            Some(&s.admin),
            Some(rel("owns", "contacts", "nobody", "deals", &d1)),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    let (st, _) = s
        .call(
            Method::PUT,
            "/v1/crm/relationships",
            Some(&s.admin),
            Some(rel("Bad Type", "contacts", &c1, "deals", &d1)),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = s
        .call(
            Method::GET,
            &format!("/v1/crm/records/contacts/{c1}/relationships?direction=up"),
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}
