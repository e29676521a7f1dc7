//! Custom components: `plugins/invoicing` (built with one cargo command,
//! uploaded with the CLI) overrides a generated tool and adds one; its store
//! calls stay inside the endpoint's grants; uploads are validated.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Server, build_component, digest, stdout};

const WS: &str = "acme--dev";
const EP: &str = "/v1/acme--dev/endpoints/billing";

async fn setup(s: &Server) {
    s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": "acme"})))
        .await;
    s.ok(
        Method::POST,
        "/v1/workspaces/acme/previews",
        Some(json!({"name": "dev"})),
    )
    .await;
    let invoice = json!({"type": "object", "properties": {
        "customer": {"type": "string"}, "total": {"type": "number"}, "status": {"type": "string"},
        "lines": {"type": "array", "items": {"type": "object", "properties": {
            "description": {"type": "string"}, "quantity": {"type": "number"}, "unit_price": {"type": "number"}},
            "required": ["quantity", "unit_price"]}}},
        "required": ["customer", "total"]});
    let payment = json!({"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]});
    for (c, schema) in [
        ("invoices", invoice),
        ("payments", payment),
        ("secrets", json!({"type": "object"})),
    ] {
        s.ok(
            Method::PUT,
            &format!("/v1/{WS}/collections/{c}"),
            Some(json!({"schema": schema})),
        )
        .await;
    }
}

pub async fn upload(s: &Server, ws: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let resp = s
        .http
        .post(format!("{}/v1/{ws}/plugins", s.url))
        .bearer_auth(&s.admin)
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

async fn call(s: &Server, tool: &str, args: Value) -> Value {
    let (st, v) = s
        .call(
            Method::POST,
            &format!("{EP}/tools/{tool}"),
            Some(&s.admin),
            Some(args),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{tool}: {v}");
    v
}

/// The billing endpoint; without `list_links`, the invoicing code's
/// listing of `invoice_payment` links is outside its grants.
fn config(component: &str, list_links: bool) -> Value {
    let rel_ops = if list_links {
        json!(["create", "list"])
    } else {
        json!(["create"])
    };
    json!({
        "name": "Billing",
        "tools": [{"collection": "invoices", "operations": ["create", "get", "list"]}],
        "relationships": [{"rel_type": "invoice_payment", "operations": rel_ops}],
        "grants": [{"collection": "payments", "operations": ["get"]},
                   {"collection": "invoices", "operations": ["update"]}],
        "component": component,
    })
}

#[tokio::test]
async fn invoicing_overrides_a_generated_tool_delegates_and_adds_one() {
    let wasm = build_component("plugins/invoicing", "invoicing");
    let s = Server::start();
    setup(&s).await;

    // `plugins upload` prints the digest; `plugins list` shows the upload.
    let out = s.cli_in(
        &[
            "plugins",
            "upload",
            wasm.to_str().unwrap(),
            "--workspace",
            WS,
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let d = digest(&wasm);
    assert_eq!(stdout(&out).trim(), d);
    let out = s.cli_in(&["plugins", "list", "--workspace", WS, "--json"], None);
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list["data"][0]["digest"], d.as_str());
    assert_eq!(
        list["data"][0]["tools"],
        json!(["create_invoices", "invoice_balance", "void_invoice"])
    );

    // `--component file.wasm` uploads (again: idempotent) and uses it.
    let cfg = config(&d, true);
    let out = s.cli_in(
        &[
            "endpoints",
            "upsert",
            "billing",
            "--workspace",
            WS,
            "--config",
            &json!({"tools": cfg["tools"], "relationships": cfg["relationships"], "grants": cfg["grants"]})
                .to_string(),
            "--component",
            wasm.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let ep = s.ok(Method::GET, EP, None).await;
    assert_eq!(ep["config"]["component"], d.as_str());

    // The custom tool shadows the generated one in place; the rest fall
    // through; the added tool comes last.
    let tools = s.ok(Method::GET, &format!("{EP}/tools"), None).await;
    let names: Vec<&str> = tools["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "create_invoices",
            "get_invoices",
            "list_invoices",
            "link_invoice_payment",
            "list_invoice_payment",
            "invoice_balance",
            "void_invoice"
        ]
    );
    let create = &tools["data"][0];
    assert!(
        create["description"]
            .as_str()
            .unwrap()
            .contains("must add up to its total"),
        "{create}"
    );
    assert_eq!(
        create["input_schema"]["properties"]["data"]["required"],
        json!(["customer", "total"]),
        "the override reuses the generated input schema: {create}"
    );
    assert_eq!(tools["data"][5]["annotations"]["read_only"], true);

    // The override checks, then delegates: a mismatch writes nothing.
    let bad = call(
        &s,
        "create_invoices",
        json!({"data": {"customer": "Acme", "total": 100,
        "lines": [{"description": "a", "quantity": 3, "unit_price": 30}]}}),
    )
    .await;
    assert_eq!(bad["is_error"], true, "{bad}");
    assert_eq!(bad["content"]["error"]["code"], "TOTAL_MISMATCH", "{bad}");
    let none = s
        .ok(Method::GET, &format!("/v1/{WS}/records/invoices"), None)
        .await;
    assert_eq!(none["meta"]["total"], 0);
    let inv = call(&s, "create_invoices", json!({"data": {"customer": "Acme", "total": 100,
        "lines": [{"description": "a", "quantity": 2, "unit_price": 30}, {"description": "b", "quantity": 1, "unit_price": 40}]}}))
    .await;
    assert_eq!(inv["is_error"], false, "{inv}");
    assert_eq!(
        inv["content"]["data"]["status"], "open",
        "status filled: {inv}"
    );
    let id = inv["content"]["id"].as_str().unwrap().to_string();
    // Schema violations are still caught by the generated behaviour / host.
    let v = call(
        &s,
        "create_invoices",
        json!({"data": {"customer": 7, "total": 0, "lines": []}}),
    )
    .await;
    assert_eq!(v["is_error"], true, "{v}");

    // A generated tool beneath still works; then the added tool.
    let pay = s
        .ok(
            Method::PUT,
            &format!("/v1/{WS}/records/payments"),
            Some(json!({"data": {"amount": 60}})),
        )
        .await;
    let link = call(
        &s,
        "link_invoice_payment",
        json!({"source_collection": "invoices", "source_id": id,
        "target_collection": "payments", "target_id": pay["id"]}),
    )
    .await;
    assert_eq!(link["is_error"], false, "{link}");
    let bal = call(&s, "invoice_balance", json!({"id": id})).await;
    assert_eq!(bal["is_error"], false, "{bal}");
    assert_eq!(bal["content"]["paid"], 60.0);
    assert_eq!(bal["content"]["balance"], 40.0);

    // Voiding: refused while a payment is linked; another invoice is
    // cancelled through `store.cancel-record` (an `update` grant).
    let v = call(&s, "void_invoice", json!({"id": id})).await;
    assert_eq!(v["content"]["error"]["code"], "HAS_PAYMENTS", "{v}");
    let other = call(
        &s,
        "create_invoices",
        json!({"data": {"customer": "B", "total": 5,
        "lines": [{"quantity": 1, "unit_price": 5}]}}),
    )
    .await;
    let other_id = other["content"]["id"].as_str().unwrap();
    let v = call(&s, "void_invoice", json!({"id": other_id})).await;
    assert_eq!(
        v["content"],
        json!({"invoice_id": other_id, "cancelled": true}),
        "{v}"
    );
    let rec = s
        .ok(
            Method::GET,
            &format!("/v1/{WS}/records/invoices/{other_id}"),
            None,
        )
        .await;
    assert_eq!(rec["cancelled"], true);

    // The component's log and its prints reach `endpoints logs`.
    let out = s.cli_in(
        &["endpoints", "logs", "billing", "--workspace", WS, "--json"],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("creating an invoice of 100.00 with 2 lines"),
        "{}",
        stdout(&out)
    );

    // Without the grant to list links, the same code is refused, naming it.
    s.ok(Method::PUT, EP, Some(config(&d, false))).await;
    let denied = call(&s, "invoice_balance", json!({"id": id})).await;
    assert_eq!(denied["is_error"], true, "{denied}");
    assert_eq!(denied["content"]["error"]["code"], "FORBIDDEN");
    let msg = denied["content"]["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("'list' on relationship type 'invoice_payment'"),
        "{msg}"
    );
}

#[tokio::test]
async fn uploads_and_component_configs_are_validated() {
    let s = Server::start();
    setup(&s).await;
    // Not wasm at all.
    let (st, v) = upload(&s, WS, b"hello".to_vec()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a valid component"),
        "{v}"
    );
    // A component importing the file system is refused, naming the import.
    let fs = wat::parse_str(r#"(component (import "wasi:filesystem/preopens@0.2.0" (instance)))"#)
        .unwrap();
    let (st, v) = upload(&s, WS, fs).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("'wasi:filesystem/preopens@0.2.0'"), "{msg}");
    // One that imports nothing but exports no tool-provider.
    let (st, v) = upload(&s, WS, wat::parse_str("(component)").unwrap()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not export 'mcp-factory:plugin/tool-provider@0.1.0'"),
        "{v}"
    );
    // Nothing was stored.
    let list = s.ok(Method::GET, &format!("/v1/{WS}/plugins"), None).await;
    assert_eq!(list["data"], json!([]));
    // A digest nobody uploaded.
    let (st, v) = s
        .call(
            Method::PUT,
            EP,
            Some(&s.admin),
            Some(config(&format!("sha256:{}", "0".repeat(64)), true)),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not uploaded"),
        "{v}"
    );
    // A token of another workspace can neither upload here nor list.
    let other = s
        .token(
            "other",
            json!([{"scope": {"workspaces": ["other"]}, "permissions": ["*"]}]),
        )
        .await;
    let (st, _) = s
        .call(
            Method::GET,
            &format!("/v1/{WS}/plugins"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Uploading takes `write:workspaces`: refused before any compiling.
    let reader = s
        .token(
            "reader",
            json!([{"scope": {"workspaces": ["acme"]}, "permissions": ["read:records"]}]),
        )
        .await;
    for token in [Some(other.as_str()), Some(reader.as_str()), None] {
        let mut req = s
            .http
            .post(format!("{}/v1/{WS}/plugins", s.url))
            .body(wat::parse_str("(component)").unwrap());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let st = req.send().await.unwrap().status();
        let want = if token.is_some() {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(st, want, "{token:?}");
    }
}
