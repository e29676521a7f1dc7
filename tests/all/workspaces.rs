//! Workspaces, previews, config-only-in-previews, promotion and rollback.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Server, contacts_schema};

#[tokio::test]
async fn create_get_list_delete() {
    let s = Server::start();
    let ws = s
        .ok(
            Method::POST,
            "/v1/workspaces",
            Some(json!({"id": "crm", "name": "CRM"})),
        )
        .await;
    assert_eq!(ws["id"], "crm");
    assert_eq!(ws["kind"], "production");
    let (st, dup) = s
        .call(
            Method::POST,
            "/v1/workspaces",
            Some(&s.admin),
            Some(json!({"id": "crm"})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{dup}");
    let got = s.ok(Method::GET, "/v1/workspaces/crm", None).await;
    assert_eq!(got["name"], "CRM");
    let list = s.ok(Method::GET, "/v1/workspaces", None).await;
    assert_eq!(list["meta"]["total"], 1);
    for bad in ["Bad Id", "a--b", "workspaces", ""] {
        let (st, v) = s
            .call(
                Method::POST,
                "/v1/workspaces",
                Some(&s.admin),
                Some(json!({"id": bad})),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(v["error"]["code"], "VALIDATION_ERROR");
    }
    s.ok(Method::DELETE, "/v1/workspaces/crm", None).await;
    let (st, v) = s
        .call(Method::GET, "/v1/workspaces/crm", Some(&s.admin), None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
}

#[tokio::test]
async fn previews_copy_config_not_data_and_production_config_is_read_only() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    // Production holds data…
    s.ok(
        Method::PUT,
        "/v1/crm/records/contacts",
        Some(json!({"data": {"name": "Prod"}})),
    )
    .await;
    // …but its config cannot change.
    let (st, v) = s
        .call(
            Method::PUT,
            "/v1/crm/collections/deals",
            Some(&s.admin),
            Some(json!({"schema": {"type": "object"}})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("preview") && msg.contains("create-preview"),
        "{msg}"
    );
    let (st, _) = s
        .call(
            Method::DELETE,
            "/v1/crm/collections/contacts",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // A new preview gets the config, not the data.
    let p = s
        .ok(
            Method::POST,
            "/v1/workspaces/crm/previews",
            Some(json!({"name": "second"})),
        )
        .await;
    assert_eq!(p["id"], "crm--second");
    assert_eq!(p["parent"], "crm");
    let colls = s.ok(Method::GET, "/v1/crm--second/collections", None).await;
    assert_eq!(colls["data"][0]["id"], "contacts");
    let recs = s
        .ok(Method::GET, "/v1/crm--second/records/contacts", None)
        .await;
    assert_eq!(recs["meta"]["total"], 0);
    let previews = s.ok(Method::GET, "/v1/workspaces/crm/previews", None).await;
    assert_eq!(previews["meta"]["total"], 2);
    // No preview of a preview.
    let (st, _) = s
        .call(
            Method::POST,
            "/v1/workspaces/crm--dev/previews",
            Some(&s.admin),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // A production workspace with previews cannot be deleted.
    let (st, v) = s
        .call(Method::DELETE, "/v1/workspaces/crm", Some(&s.admin), None)
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
}

#[tokio::test]
async fn promote_dry_run_then_promote_then_rollback() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    s.ok(
        Method::PUT,
        "/v1/crm--dev/collections/deals",
        Some(json!({"schema": {"type": "object"}})),
    )
    .await;
    s.ok(
        Method::PUT,
        "/v1/crm--dev/collections/contacts",
        Some(json!({"schema": {"type": "object", "required": ["name", "email"]}})),
    )
    .await;
    // Data in the preview is never promoted.
    s.ok(
        Method::PUT,
        "/v1/crm--dev/records/deals",
        Some(json!({"data": {"title": "x"}})),
    )
    .await;

    let dry = s
        .ok(
            Method::POST,
            "/v1/workspaces/crm/promote",
            Some(json!({"from": "crm--dev", "dry_run": true})),
        )
        .await;
    assert_eq!(dry["diff"]["collections"]["added"], json!(["deals"]));
    assert_eq!(dry["diff"]["collections"]["changed"], json!(["contacts"]));
    let (st, _) = s
        .call(
            Method::GET,
            "/v1/crm/collections/deals",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "a dry run changes nothing");

    let p = s
        .ok(
            Method::POST,
            "/v1/workspaces/crm/promote",
            Some(json!({"from": "crm--dev"})),
        )
        .await;
    let pid = p["id"].as_str().unwrap().to_string();
    let deals = s.ok(Method::GET, "/v1/crm/collections/deals", None).await;
    assert_eq!(deals["id"], "deals");
    let contacts = s
        .ok(Method::GET, "/v1/crm/collections/contacts", None)
        .await;
    assert_eq!(contacts["version"], 2);
    let prod_deals = s.ok(Method::GET, "/v1/crm/records/deals", None).await;
    assert_eq!(prod_deals["meta"]["total"], 0, "data is never promoted");

    let history = s
        .ok(Method::GET, "/v1/workspaces/crm/promotions", None)
        .await;
    assert_eq!(history["meta"]["total"], 2, "{history}");

    let rb = s
        .ok(
            Method::POST,
            &format!("/v1/workspaces/crm/promotions/{pid}/rollback"),
            None,
        )
        .await;
    assert_eq!(rb["kind"], "rollback");
    let (st, _) = s
        .call(
            Method::GET,
            "/v1/crm/collections/deals",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "rollback removes what the promotion added"
    );
    let contacts = s
        .ok(Method::GET, "/v1/crm/collections/contacts", None)
        .await;
    assert_eq!(
        contacts["schema"],
        contacts_schema(),
        "rollback restores the old schema"
    );

    // Promoting from something that is not a preview of crm is refused.
    s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": "other"})))
        .await;
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/workspaces/crm/promote",
            Some(&s.admin),
            Some(json!({"from": "other"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, _) = s
        .call(
            Method::POST,
            "/v1/workspaces/crm/promotions/nope/rollback",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn operations_log_records_every_write_in_order() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let r = s
        .ok(
            Method::PUT,
            "/v1/crm/records/contacts",
            Some(json!({"data": {"name": "A"}})),
        )
        .await;
    let id = r["id"].as_str().unwrap();
    s.ok(
        Method::PATCH,
        &format!("/v1/crm/records/contacts/{id}"),
        Some(json!({"data": {"email": "a@x"}})),
    )
    .await;
    s.ok(
        Method::DELETE,
        &format!("/v1/crm/records/contacts/{id}"),
        None,
    )
    .await;
    let log = s.ok(Method::GET, "/v1/crm/operations", None).await;
    let ops: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    // The collection was made in the preview (its own log); production logs the promotion.
    assert_eq!(
        ops,
        [
            "create_workspace",
            "promotion",
            "create_record",
            "update_record",
            "delete_record"
        ]
    );
    let seqs: Vec<u64> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=5).collect::<Vec<_>>());
    assert!(
        log["data"][2]["token_id"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(log["data"][2]["target"]["id"], id);
    let after = s.ok(Method::GET, "/v1/crm/operations?after=3", None).await;
    assert_eq!(after["data"].as_array().unwrap().len(), 2);
}
