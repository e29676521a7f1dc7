//! Endpoint configurations: the seed's JSON config and shorthand command
//! verbatim through the CLI, naming rules, preview-only edits, revisions and
//! rollback, and promotion carrying endpoints. (Serving them as Wasm
//! components comes with the endpoint runtime.)

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{SEED_CONFIG, Server, stderr, stdout};

async fn invoicing(s: &Server) {
    s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": "my-ws"})))
        .await;
    s.ok(
        Method::POST,
        "/v1/workspaces/my-ws/previews",
        Some(json!({"name": "dev"})),
    )
    .await;
    for c in ["invoices", "payments", "line_items"] {
        let schema = json!({"type": "object", "properties": {"amount": {"type": "number"}}});
        s.ok(
            Method::PUT,
            &format!("/v1/my-ws--dev/collections/{c}"),
            Some(json!({"schema": schema})),
        )
        .await;
    }
}

fn json_out(o: &std::process::Output) -> Value {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    serde_json::from_str(&stdout(o)).unwrap()
}

#[tokio::test]
async fn the_seed_config_and_shorthand_yield_exactly_the_documented_tools() {
    let s = Server::start();
    invoicing(&s).await;
    let e = json_out(&s.cli_in(
        &[
            "--json",
            "endpoints",
            "upsert",
            "invoicing-agent",
            "--workspace",
            "my-ws--dev",
            "--config",
            SEED_CONFIG,
        ],
        None,
    ));
    assert_eq!(
        e["tools"],
        json!([
            "search_invoices",
            "create_payments",
            "get_payments",
            "list_payments",
            "assign_payment",
            "batch",
            "sql_query"
        ])
    );
    assert_eq!(e["revision"], 1);
    assert_eq!(e["config"]["name"], "Invoicing Agent");

    let e = json_out(&s.cli_in(
        &[
            "--json",
            "endpoints",
            "upsert",
            "invoicing-agent-short",
            "--workspace",
            "my-ws--dev",
            "--name",
            "Invoicing Agent",
            "--tool",
            "invoices:get,list",
            "--tool",
            "payments:create,get,list",
            "--relationship",
            "invoice_payment:create,list",
            "--batch",
            "invoices:create,update",
            "--batch",
            "payments:create",
            "--sql-query",
        ],
        None,
    ));
    assert_eq!(
        e["tools"],
        json!([
            "get_invoices",
            "list_invoices",
            "create_payments",
            "get_payments",
            "list_payments",
            "link_invoice_payment",
            "list_invoice_payment",
            "batch",
            "sql_query"
        ])
    );
    // The batch-only pattern: no standalone create_invoices.
    let batch_only = json!({
        "tools": [{"collection": "invoices", "operations": ["get", "list"]}, {"collection": "line_items", "operations": ["get", "list"]}],
        "batch": {"enabled": true, "operations": {"invoices": ["create", "update"], "line_items": ["create"], "invoice_line_item": ["create"]}}
    });
    let e = s
        .ok(
            Method::PUT,
            "/v1/my-ws--dev/endpoints/billing",
            Some(batch_only),
        )
        .await;
    assert_eq!(
        e["tools"],
        json!([
            "get_invoices",
            "list_invoices",
            "get_line_items",
            "list_line_items",
            "batch"
        ])
    );

    let list = json_out(&s.cli_in(
        &["--json", "endpoints", "list", "--workspace", "my-ws--dev"],
        None,
    ));
    assert_eq!(list["meta"]["total"], 3);
    // --resolved adds the tools with annotations and the collection schemas.
    let r = json_out(&s.cli_in(
        &[
            "--json",
            "endpoints",
            "get",
            "invoicing-agent",
            "--workspace",
            "my-ws--dev",
            "--resolved",
        ],
        None,
    ));
    assert_eq!(
        r["resolved"]["collections"]["payments"]["properties"]["amount"]["type"],
        "number"
    );
    let tools = r["resolved"]["tools"].as_array().unwrap();
    assert_eq!(tools[0]["name"], "search_invoices");
    assert_eq!(tools[0]["operations"], json!(["get", "list"]));
    assert_eq!(tools[0]["annotations"]["read_only"], true);
    assert_eq!(tools[5]["annotations"]["destructive"], true);
    // Table output by default.
    let o = s.cli_in(&["endpoints", "list", "--workspace", "my-ws--dev"], None);
    assert!(stdout(&o).contains("invoicing-agent"), "{}", stdout(&o));
}

#[tokio::test]
async fn bad_configs_are_refused_with_the_reason_and_change_nothing() {
    let s = Server::start();
    invoicing(&s).await;
    for (config, says) in [
        (
            json!({"tools": [{"collection": "invoices", "operations": ["get"], "name_override": "no spaces please"}]}),
            "tools[0].name_override",
        ),
        (
            json!({"tools": [{"collection": "invoices", "operations": ["get"]}, {"collection": "payments", "operations": ["get"], "name_override": "get_invoices"}]}),
            "used twice",
        ),
        (
            json!({"tools": [{"collection": "ghosts", "operations": ["get"]}]}),
            "collection 'ghosts'",
        ),
        (
            json!({"tools": [{"collection": "invoices", "operations": ["fly"]}]}),
            "fly",
        ),
        (json!({"tools": [], "component": "sha256:abc"}), "component"),
        (json!({"surprise": true}), "surprise"),
        (
            json!({"tools": [{"collection": "invoices", "operations": ["get"]}], "limits": {"memory_mb": 0}}),
            "limits.memory_mb must be at least 1",
        ),
        (
            json!({"batch": {"operations": {"invoices": ["explode"]}}}),
            "batch.operations.invoices",
        ),
        (
            json!({"batch": {"operations": {"not_a_collection": ["update"]}}}),
            "batch.operations.not_a_collection",
        ),
    ] {
        let (st, v) = s
            .call(
                Method::PUT,
                "/v1/my-ws--dev/endpoints/bad",
                Some(&s.admin),
                Some(config.clone()),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{config}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{config}: {v}"
        );
    }
    let (st, _) = s
        .call(
            Method::GET,
            "/v1/my-ws--dev/endpoints/bad",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s
        .call(
            Method::PUT,
            "/v1/my-ws--dev/endpoints/Bad%20Slug",
            Some(&s.admin),
            Some(json!({"sql_query": true})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // Production config is read-only.
    let (st, v) = s
        .call(
            Method::PUT,
            "/v1/my-ws/endpoints/agent",
            Some(&s.admin),
            Some(json!({"sql_query": true})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("create-preview"),
        "{v}"
    );
    // The CLI needs to be told what the endpoint serves, one way.
    let o = s.cli_in(
        &["endpoints", "upsert", "x", "--workspace", "my-ws--dev"],
        None,
    );
    assert!(
        !o.status.success() && stderr(&o).contains("--tool"),
        "{}",
        stderr(&o)
    );
    let o = s.cli_in(
        &[
            "endpoints",
            "upsert",
            "x",
            "--workspace",
            "my-ws--dev",
            "--config",
            "{}",
            "--sql-query",
        ],
        None,
    );
    assert!(!o.status.success());
}

#[tokio::test]
async fn revisions_rollback_and_promotion() {
    let s = Server::start();
    invoicing(&s).await;
    let path = "/v1/my-ws--dev/endpoints/agent";
    let v1 = json!({"tools": [{"collection": "invoices", "operations": ["get"]}]});
    let v2 = json!({"tools": [{"collection": "invoices", "operations": ["get", "list"]}], "sql_query": true});
    assert_eq!(
        s.ok(Method::PUT, path, Some(v1.clone())).await["revision"],
        1
    );
    assert_eq!(
        s.ok(Method::PUT, path, Some(v2.clone())).await["revision"],
        2
    );
    assert_eq!(
        s.ok(Method::PUT, path, Some(v2)).await["revision"],
        2,
        "an unchanged config is not a new revision"
    );
    let back = s
        .ok(
            Method::POST,
            &format!("{path}/rollback"),
            Some(json!({"revision": 1})),
        )
        .await;
    assert_eq!(back["revision"], 3);
    assert_eq!(back["tools"], json!(["get_invoices"]));
    let revs = s.ok(Method::GET, &format!("{path}/revisions"), None).await;
    assert_eq!(revs["meta"]["total"], 3);
    let (st, _) = s
        .call(
            Method::POST,
            &format!("{path}/rollback"),
            Some(&s.admin),
            Some(json!({"revision": 9})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Promotion carries endpoints to production, and its rollback removes them.
    let dry = s
        .ok(
            Method::POST,
            "/v1/workspaces/my-ws/promote",
            Some(json!({"from": "my-ws--dev", "dry_run": true})),
        )
        .await;
    assert_eq!(dry["diff"]["endpoints"]["added"], json!(["agent"]));
    let p = s
        .ok(
            Method::POST,
            "/v1/workspaces/my-ws/promote",
            Some(json!({"from": "my-ws--dev"})),
        )
        .await;
    let prod = s.ok(Method::GET, "/v1/my-ws/endpoints/agent", None).await;
    assert_eq!(prod["tools"], json!(["get_invoices"]));
    // A new preview starts with the endpoint too.
    s.ok(
        Method::POST,
        "/v1/workspaces/my-ws/previews",
        Some(json!({"name": "next"})),
    )
    .await;
    s.ok(Method::GET, "/v1/my-ws--next/endpoints/agent", None)
        .await;
    s.ok(
        Method::POST,
        &format!(
            "/v1/workspaces/my-ws/promotions/{}/rollback",
            p["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    let (st, _) = s
        .call(
            Method::GET,
            "/v1/my-ws/endpoints/agent",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Delete, in the preview.
    s.ok(Method::DELETE, path, None).await;
    let (st, _) = s.call(Method::GET, path, Some(&s.admin), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // A token without workspace permissions cannot touch endpoints.
    let reader = s
        .token(
            "reader",
            json!([{"scope": {"workspaces": ["my-ws"]}, "permissions": ["read:records"]}]),
        )
        .await;
    let (st, _) = s.call(Method::PUT, path, Some(&reader), Some(v1)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s
        .call(Method::GET, "/v1/my-ws--dev/endpoints", Some(&reader), None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}
