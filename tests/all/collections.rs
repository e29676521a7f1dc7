//! Collections: schema validity, versions, delete rules.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Server, contacts_schema};

#[tokio::test]
async fn upsert_get_list_and_versioning() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let c = s
        .ok(Method::PUT, "/v1/crm--dev/collections/deals", Some(json!({"name": "Deals", "description": "Sales deals", "schema": {"type": "object"}})))
        .await;
    assert_eq!(
        (c["id"].as_str(), c["name"].as_str(), c["version"].as_u64()),
        (Some("deals"), Some("Deals"), Some(1))
    );
    // Same config again: no new version.
    let same = s
        .ok(
            Method::PUT,
            "/v1/crm--dev/collections/deals",
            Some(json!({"schema": {"type": "object"}})),
        )
        .await;
    assert_eq!(same["version"], 1);
    let changed = s
        .ok(
            Method::PUT,
            "/v1/crm--dev/collections/deals",
            Some(json!({"schema": {"type": "object", "required": ["title"]}})),
        )
        .await;
    assert_eq!(changed["version"], 2);
    assert_eq!(changed["name"], "Deals", "the display name is kept");
    let list = s.ok(Method::GET, "/v1/crm--dev/collections", None).await;
    assert_eq!(list["meta"]["total"], 2);
    // The new schema applies at once (validator cache follows the version).
    let (st, v) = s
        .call(
            Method::PUT,
            "/v1/crm--dev/records/deals",
            Some(&s.admin),
            Some(json!({"data": {}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["details"]["violations"][0]["rule"], "required");
}

#[tokio::test]
async fn invalid_schema_is_refused_and_names_the_problem() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    for bad in [
        json!({"type": "strin"}),
        json!({"properties": {"a": {"minLength": -1}}}),
        json!("nope"),
        json!(5),
    ] {
        let (st, v) = s
            .call(
                Method::PUT,
                "/v1/crm--dev/collections/bad",
                Some(&s.admin),
                Some(json!({"schema": bad})),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad} -> {v}");
        assert_eq!(v["error"]["code"], "VALIDATION_ERROR");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not a valid JSON Schema"),
            "{v}"
        );
    }
    // A $ref to the network is not fetched: the schema is refused, not resolved.
    let remote = json!({"$ref": "http://127.0.0.1:9/evil.json"});
    let (st, _) = s
        .call(
            Method::PUT,
            "/v1/crm--dev/collections/bad",
            Some(&s.admin),
            Some(json!({"schema": remote})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = s
        .call(
            Method::GET,
            "/v1/crm--dev/collections/bad",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "nothing was written");
    for bad_name in ["Has Space", "UPPER", "x/y"] {
        let path = format!(
            "/v1/crm--dev/collections/{}",
            bad_name.replace(' ', "%20").replace('/', "%2F")
        );
        let (st, _) = s
            .call(
                Method::PUT,
                &path,
                Some(&s.admin),
                Some(json!({"schema": {}})),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad_name}");
    }
}

#[tokio::test]
async fn delete_refused_while_records_exist_unless_forced() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let r = s
        .ok(
            Method::PUT,
            "/v1/crm--dev/records/contacts",
            Some(json!({"data": {"name": "A"}})),
        )
        .await;
    s.ok(
        Method::PUT,
        "/v1/crm--dev/collections/deals",
        Some(json!({"schema": {}})),
    )
    .await;
    let d = s
        .ok(
            Method::PUT,
            "/v1/crm--dev/records/deals",
            Some(json!({"data": {}})),
        )
        .await;
    s.ok(
        Method::PUT,
        "/v1/crm--dev/relationships",
        Some(json!({"rel_type": "owns", "source_collection": "contacts", "source_id": r["id"], "target_collection": "deals", "target_id": d["id"]})),
    )
    .await;
    let (st, v) = s
        .call(
            Method::DELETE,
            "/v1/crm--dev/collections/contacts",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("--force"));
    s.ok(
        Method::DELETE,
        "/v1/crm--dev/collections/contacts?force=true",
        None,
    )
    .await;
    let (st, _) = s
        .call(
            Method::GET,
            "/v1/crm--dev/collections/contacts",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Its relationships went with it.
    let rels = s
        .ok(
            Method::GET,
            &format!(
                "/v1/crm--dev/records/deals/{}/relationships",
                d["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(rels["meta"]["total"], 0);
    // An empty collection deletes without force.
    s.ok(
        Method::PUT,
        "/v1/crm--dev/collections/empty",
        Some(json!({"schema": {}})),
    )
    .await;
    s.ok(Method::DELETE, "/v1/crm--dev/collections/empty", None)
        .await;
}
