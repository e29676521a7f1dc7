//! Trust: one regression test per defect of the adversarial review
//! (issue "[trust 1/2]"). Each doc comment names the defect; each test
//! failed on `55ff30f`, where a rule was decided in more than one place.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Server, build_component, digest};
use crate::custom_components::upload;
use crate::mcp_auth::Rpc;

const WS: &str = "acme--dev";

/// `acme` and `acme--dev` with collections `invoices`, `notes` and `secrets`.
async fn setup(s: &Server) {
    s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": "acme"})))
        .await;
    s.ok(
        Method::POST,
        "/v1/workspaces/acme/previews",
        Some(json!({"name": "dev"})),
    )
    .await;
    for c in ["invoices", "notes", "secrets"] {
        s.ok(
            Method::PUT,
            &format!("/v1/{WS}/collections/{c}"),
            Some(json!({"schema": {"type": "object"}})),
        )
        .await;
    }
}

async fn endpoint(s: &Server, slug: &str, config: Value) {
    s.ok(
        Method::PUT,
        &format!("/v1/{WS}/endpoints/{slug}"),
        Some(config),
    )
    .await;
}

/// Calls an endpoint tool over REST as `token`; returns the tool result.
async fn tool(s: &Server, token: &str, slug: &str, name: &str, args: Value) -> (StatusCode, Value) {
    s.call(
        Method::POST,
        &format!("/v1/{WS}/endpoints/{slug}/tools/{name}"),
        Some(token),
        Some(args),
    )
    .await
}

async fn count(s: &Server, ws: &str, coll: &str) -> u64 {
    let v = s
        .ok(Method::GET, &format!("/v1/{ws}/records/{coll}"), None)
        .await;
    v["meta"]["total"].as_u64().unwrap()
}

async fn create(s: &Server, ws: &str, coll: &str, data: Value) -> String {
    let v = s
        .ok(
            Method::PUT,
            &format!("/v1/{ws}/records/{coll}"),
            Some(json!({ "data": data })),
        )
        .await;
    v["id"].as_str().unwrap().to_string()
}

/// A token that reads the records of `notes` in `WS`, and nothing else.
async fn notes_reader(s: &Server) -> String {
    s.token(
        "notes-only",
        json!([{"scope": {"workspaces": [WS], "collections": ["notes"]},
                "permissions": ["read:records"]}]),
    )
    .await
}

/// The hostile component (with its raw `store` tool) uploaded to `WS`.
async fn hostile(s: &Server) -> String {
    let wasm = build_component("tests/hostile", "hostile");
    let (st, v) = upload(s, WS, std::fs::read(&wasm).unwrap()).await;
    assert!(st.is_success(), "{v}");
    digest(&wasm)
}

/// Defect 1: batch grants were checked on raw JSON. `"id": null` in an
/// `upsert_record` counted as an update and created a record under an
/// update-only grant; `delete_relationship` by `id` with a granted
/// `rel_type` deleted a relationship of any type.
#[tokio::test]
async fn batch_grants_are_decided_on_the_typed_operation() {
    let s = Server::start();
    setup(&s).await;
    let inv = create(&s, WS, "invoices", json!({"n": 1})).await;
    let note = create(&s, WS, "notes", json!({"n": 1})).await;
    let rel = s
        .ok(
            Method::PUT,
            &format!("/v1/{WS}/relationships"),
            Some(
                json!({"rel_type": "secret_link", "source_collection": "invoices", "source_id": inv,
                        "target_collection": "notes", "target_id": note}),
            ),
        )
        .await;
    let rel_id = rel["id"].as_str().unwrap();
    endpoint(
        &s,
        "ops",
        json!({"tools": [{"collection": "invoices", "operations": ["get"]}],
               "batch": {"enabled": true, "operations": {"invoices": ["update"], "invoice_payment": ["delete"]}}}),
    )
    .await;
    let admin = s.admin.clone();

    // An upsert with "id": null is a create: refused under update-only.
    let (st, v) = tool(
        &s,
        &admin,
        "ops",
        "batch",
        json!({"operations": [{"type": "upsert_record", "collection": "invoices", "id": null, "data": {"n": 2}}]}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["is_error"], true, "{v}");
    let msg = v["content"]["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("no grant for 'create' on 'invoices' in a batch"),
        "{msg}"
    );
    assert_eq!(count(&s, WS, "invoices").await, 1, "nothing was created");

    // The update the grant allows still works, by id.
    let (_, v) = tool(
        &s,
        &admin,
        "ops",
        "batch",
        json!({"operations": [{"type": "upsert_record", "collection": "invoices", "id": inv, "data": {"n": 3}}]}),
    )
    .await;
    assert_eq!(v["is_error"], false, "{v}");

    // Deleting by id is decided by the relationship's own type.
    let (_, v) = tool(
        &s,
        &admin,
        "ops",
        "batch",
        json!({"operations": [{"type": "delete_relationship", "id": rel_id, "rel_type": "invoice_payment"}]}),
    )
    .await;
    assert_eq!(v["is_error"], true, "{v}");
    let msg = v["content"]["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("'delete' on 'secret_link' in a batch"),
        "{msg}"
    );
    let (st, _) = s
        .call(
            Method::GET,
            &format!("/v1/{WS}/relationships/{rel_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "the relationship is still there");
}

/// Defect 2: a token whose grant has `scope.collections: ["notes"]` listed
/// another collection's records through the endpoint's generated `list_…`
/// and `sql_query` tools, and saw its schema in `tools/list`, while REST
/// refused it.
#[tokio::test]
async fn collection_scopes_bind_endpoint_tools_and_their_listing() {
    let s = Server::start();
    setup(&s).await;
    create(&s, WS, "notes", json!({"text": "visible"})).await;
    create(&s, WS, "secrets", json!({"code": "TOPSECRET"})).await;
    endpoint(
        &s,
        "desk",
        json!({"tools": [{"collection": "notes", "operations": ["list"]},
                         {"collection": "secrets", "operations": ["list"]}],
               "sql_query": true}),
    )
    .await;
    let notes_only = notes_reader(&s).await;
    // REST already refused it.
    let (st, _) = s
        .call(
            Method::GET,
            &format!("/v1/{WS}/records/secrets"),
            Some(&notes_only),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // The endpoint MCP: the secrets tool is not listed, and not callable.
    let mut rpc = Rpc::new(&s, "/e/desk/mcp", Some(&notes_only));
    let (st, body) = rpc.initialize().await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (_, body, list) = rpc.request("tools/list", json!({})).await;
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["list_notes", "sql_query"], "{body}");
    assert!(!body.contains("secrets"), "{body}");
    let (_, body, _) = rpc.call("list_secrets", json!({})).await;
    assert!(!body.contains("TOPSECRET"), "{body}");
    let (_, body, notes) = rpc.call("list_notes", json!({})).await;
    assert!(body.contains("visible"), "{notes}");

    // SQL through the endpoint sees only what the token may read.
    let (_, body, _) = rpc
        .call(
            "sql_query",
            json!({"query": "SELECT data FROM records WHERE collection = 'secrets'"}),
        )
        .await;
    assert!(!body.contains("TOPSECRET"), "{body}");
    let (_, body, _) = rpc
        .call("sql_query", json!({"query": "SELECT data FROM secrets"}))
        .await;
    assert!(!body.contains("TOPSECRET"), "{body}");
}

/// Defect 3: a custom component whose tool is annotated read-only could
/// write (directly, through `base`, through `batch`) for a token that has
/// only `read:records`. The annotation is a hint, never a permission.
#[tokio::test]
async fn a_read_only_annotation_grants_nothing() {
    let s = Server::start();
    setup(&s).await;
    let d = hostile(&s).await;
    endpoint(
        &s,
        "h",
        json!({"component": d,
               "tools": [{"collection": "invoices", "operations": ["create", "list"]}],
               "batch": {"enabled": true, "operations": {"invoices": ["create"]}}}),
    )
    .await;
    let reader = s
        .token(
            "reader",
            json!([{"scope": {"workspaces": [WS]}, "permissions": ["read:records"]}]),
        )
        .await;
    let attempts = [
        json!({"op": "upsert", "collection": "invoices", "request": {"data": {"n": 1}}}),
        json!({"op": "base", "tool": "create_invoices", "arguments": {"data": {"n": 1}}}),
        json!({"op": "batch", "operations": [{"type": "upsert_record", "collection": "invoices", "data": {"n": 1}}]}),
    ];
    for a in attempts {
        let (st, v) = tool(&s, &reader, "h", "store", a.clone()).await;
        assert_eq!(st, StatusCode::OK, "{a}: {v}");
        let refused = &v["content"]["refused"];
        assert!(refused.is_object(), "{a} was not refused: {v}");
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .contains("lacks permission 'write:records'"),
            "{a}: {refused}"
        );
    }
    assert_eq!(count(&s, WS, "invoices").await, 0, "nothing was written");
    // Reading is allowed, and the same calls write for a read-write token.
    let (_, v) = tool(
        &s,
        &reader,
        "h",
        "store",
        json!({"op": "query", "collection": "invoices"}),
    )
    .await;
    assert!(v["content"]["ok"]["data"].is_array(), "{v}");
    let writer = s.token("writer", crate::common::rw(WS)).await;
    let (_, v) = tool(
        &s,
        &writer,
        "h",
        "store",
        json!({"op": "upsert", "collection": "invoices", "request": {"data": {"n": 1}}}),
    )
    .await;
    assert!(v["content"]["ok"]["id"].is_string(), "{v}");
}

/// Defect 4: a workspace id could end in `-`, and a token's parent
/// workspace was found by splitting at the first `--`: a token for `wsa`
/// could mint a token for `wsa---dev`, the preview of someone else's `wsa-`.
#[tokio::test]
async fn a_token_cannot_reach_a_lookalike_preview() {
    let s = Server::start();
    s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": "wsa"})))
        .await;
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/workspaces",
            Some(&s.admin),
            Some(json!({"id": "wsa-"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot end with '-'")
    );
    let wsa = s
        .token(
            "wsa",
            json!([{"scope": {"workspaces": ["wsa"]}, "permissions": ["*"]}]),
        )
        .await;
    let mint = |ws: &str| json!({"name": "child", "grants": [{"scope": {"workspaces": [ws]}, "permissions": ["read:records"]}]});
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/tokens",
            Some(&wsa),
            Some(mint("wsa---dev")),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    // Its real previews are still covered.
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/tokens",
            Some(&wsa),
            Some(mint("wsa--dev")),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

/// Defect 5: a parent with an expiry could create a child without one,
/// and revoking the parent left its children working.
#[tokio::test]
async fn child_tokens_never_outlive_their_parent() {
    let s = Server::start();
    s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": "acme"})))
        .await;
    let grants = crate::common::rw("acme");
    let exp = "2099-01-01T00:00:00Z";
    let parent = s
        .ok(
            Method::POST,
            "/v1/tokens",
            Some(json!({"name": "parent", "grants": grants, "expires_at": exp})),
        )
        .await;
    let (parent_id, parent) = (
        parent["id"].as_str().unwrap().to_string(),
        parent["token"].as_str().unwrap().to_string(),
    );
    let (st, child) = s
        .call(
            Method::POST,
            "/v1/tokens",
            Some(&parent),
            Some(json!({"name": "child", "grants": grants})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{child}");
    assert_eq!(child["expires_at"], exp, "inherits the parent's expiry");
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/tokens",
            Some(&parent),
            Some(json!({"name": "later", "grants": grants, "expires_at": "2100-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let child = child["token"].as_str().unwrap().to_string();
    let grandchild = s
        .call(
            Method::POST,
            "/v1/tokens",
            Some(&child),
            Some(json!({"name": "grandchild", "grants": grants})),
        )
        .await
        .1["token"]
        .as_str()
        .unwrap()
        .to_string();
    for t in [&child, &grandchild] {
        let (st, _) = s
            .call(Method::GET, "/v1/acme/records/x", Some(t), None)
            .await;
        assert_ne!(st, StatusCode::UNAUTHORIZED);
    }
    s.ok(Method::DELETE, &format!("/v1/tokens/{parent_id}"), None)
        .await;
    for t in [&child, &grandchild] {
        let (st, v) = s
            .call(Method::GET, "/v1/acme/records/x", Some(t), None)
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("revoked"),
            "{v}"
        );
    }
}

/// Defect 6: deleting a workspace left its endpoints, revisions and
/// uploads: a workspace created again with the same id listed and served
/// the old endpoint.
#[tokio::test]
async fn a_deleted_workspace_leaves_nothing_for_its_successor() {
    let s = Server::start();
    setup(&s).await;
    let d = hostile(&s).await;
    endpoint(
        &s,
        "desk",
        json!({"component": d, "tools": [{"collection": "notes", "operations": ["list"]}]}),
    )
    .await;
    // Fill the runtime's caches (tool set, config) and the endpoint's log.
    let admin = s.admin.clone();
    let (st, v) = tool(&s, &admin, "desk", "print", json!({})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    s.ok(
        Method::POST,
        "/v1/workspaces/acme/promote",
        Some(json!({"from": WS})),
    )
    .await;
    s.ok(Method::DELETE, &format!("/v1/workspaces/{WS}"), None)
        .await;
    s.ok(Method::DELETE, "/v1/workspaces/acme", None).await;
    s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": "acme"})))
        .await;
    let eps = s.ok(Method::GET, "/v1/acme/endpoints", None).await;
    assert_eq!(eps["data"], json!([]), "{eps}");
    let plugins = s.ok(Method::GET, "/v1/acme/plugins", None).await;
    assert_eq!(plugins["data"], json!([]), "{plugins}");
    let (st, _) = s
        .call(Method::GET, "/v1/acme/endpoints/desk", Some(&s.admin), None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let token = s.token("agent", crate::common::rw("acme")).await;
    let mut rpc = Rpc::new(&s, "/e/desk/mcp", Some(&token));
    let (st, _) = rpc.initialize().await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let ops = s.ok(Method::GET, "/v1/acme/operations", None).await;
    assert_eq!(ops["meta"]["total"], 1, "only the new create: {ops}");
    // An endpoint of the same name in the new preview starts clean: its
    // own tools (revision 1 again), an empty log.
    s.ok(
        Method::POST,
        "/v1/workspaces/acme/previews",
        Some(json!({"name": "dev"})),
    )
    .await;
    s.ok(
        Method::PUT,
        &format!("/v1/{WS}/collections/notes"),
        Some(json!({"schema": {"type": "object"}})),
    )
    .await;
    endpoint(
        &s,
        "desk",
        json!({"tools": [{"collection": "notes", "operations": ["get"]}]}),
    )
    .await;
    let tools = s
        .ok(Method::GET, &format!("/v1/{WS}/endpoints/desk/tools"), None)
        .await;
    let names: Vec<&str> = tools["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["get_notes"], "{tools}");
    let logs = s
        .ok(Method::GET, &format!("/v1/{WS}/endpoints/desk/logs"), None)
        .await;
    assert_eq!(logs["data"], json!([]), "{logs}");
}

/// Defect 7: force-deleting a collection and creating it again with
/// another schema kept validating writes against the deleted schema until
/// restart (the cache key `(ws, collection, version)` repeated).
#[tokio::test]
async fn a_recreated_collection_validates_against_its_new_schema() {
    let s = Server::start();
    setup(&s).await;
    let schema = |field: &str| json!({"schema": {"type": "object", "required": [field]}});
    s.ok(
        Method::PUT,
        &format!("/v1/{WS}/collections/c"),
        Some(schema("a")),
    )
    .await;
    create(&s, WS, "c", json!({"a": 1})).await;
    s.ok(
        Method::DELETE,
        &format!("/v1/{WS}/collections/c?force=true"),
        None,
    )
    .await;
    s.ok(
        Method::PUT,
        &format!("/v1/{WS}/collections/c"),
        Some(schema("b")),
    )
    .await;
    create(&s, WS, "c", json!({"b": 1})).await;
    let (st, v) = s
        .call(
            Method::PUT,
            &format!("/v1/{WS}/records/c"),
            Some(&s.admin),
            Some(json!({"data": {"a": 1}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
}

/// Defect 8: a collection-limited token read every collection's entries
/// over `GET /v1/{ws}/operations` (SQL's `operations_log` filtered them).
#[tokio::test]
async fn the_operations_log_shows_a_scoped_token_only_its_collections() {
    let s = Server::start();
    setup(&s).await;
    create(&s, WS, "notes", json!({})).await;
    create(&s, WS, "secrets", json!({})).await;
    let notes_only = notes_reader(&s).await;
    let (st, v) = s
        .call(
            Method::GET,
            &format!("/v1/{WS}/operations"),
            Some(&notes_only),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let entries = v["data"].as_array().unwrap();
    assert!(!entries.is_empty(), "{v}");
    for e in entries {
        assert_eq!(e["target"]["collection"], "notes", "{e}");
    }
    assert_eq!(v["meta"]["total"], entries.len(), "{v}");
    // The admin sees both.
    let all = s
        .ok(Method::GET, &format!("/v1/{WS}/operations"), None)
        .await;
    assert!(all.to_string().contains("secrets"), "{all}");
}

/// Defect 9: a preview-only token's upload landed in the production
/// workspace's upload list and operations log; uploads could not be
/// deleted and had no quota.
#[tokio::test]
async fn uploads_stay_in_their_workspace_are_bounded_and_can_be_deleted() {
    let hostile_wasm = std::fs::read(build_component("tests/hostile", "hostile")).unwrap();
    let invoicing = std::fs::read(build_component("plugins/invoicing", "invoicing")).unwrap();
    // Room for the larger of the two, not for both.
    let quota = hostile_wasm.len().max(invoicing.len()) + 1000;
    let s = Server::start_with(&["--max-plugin-bytes", &quota.to_string()]);
    setup(&s).await;
    let preview_only = s
        .token(
            "preview-only",
            json!([{"scope": {"workspaces": ["acme"], "environments": ["preview"]},
                    "permissions": ["write:workspaces", "read:workspaces"]}]),
        )
        .await;
    let resp = s
        .http
        .post(format!("{}/v1/{WS}/plugins", s.url))
        .bearer_auth(&preview_only)
        .header("content-type", "application/wasm")
        .body(hostile_wasm.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let prod = s.ok(Method::GET, "/v1/acme/plugins", None).await;
    assert_eq!(prod["data"], json!([]), "production lists nothing: {prod}");
    let prod_ops = s.ok(Method::GET, "/v1/acme/operations", None).await;
    assert!(
        !prod_ops.to_string().contains("upload_component"),
        "{prod_ops}"
    );
    let dev = s.ok(Method::GET, &format!("/v1/{WS}/plugins"), None).await;
    assert_eq!(dev["data"].as_array().unwrap().len(), 1, "{dev}");
    // Uploading to production is a config change there: refused.
    let (st, v) = upload(&s, "acme", hostile_wasm.clone()).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    // The quota: a second component does not fit.
    let (st, v) = upload(&s, WS, invoicing.clone()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("quota"),
        "{v}"
    );
    // An upload an endpoint uses cannot be deleted; an unused one can.
    let d = dev["data"][0]["digest"].as_str().unwrap().to_string();
    endpoint(&s, "h", json!({"component": d})).await;
    let (st, v) = s
        .call(
            Method::DELETE,
            &format!("/v1/{WS}/plugins/{d}"),
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    s.ok(Method::DELETE, &format!("/v1/{WS}/endpoints/h"), None)
        .await;
    s.ok(Method::DELETE, &format!("/v1/{WS}/plugins/{d}"), None)
        .await;
    let (st, v) = upload(&s, WS, invoicing).await;
    assert_eq!(st, StatusCode::CREATED, "room again after the delete: {v}");
}

/// Defect 11: an endpoint over a collection whose schema uses
/// `$defs`/`$ref` was accepted, then every tool of that endpoint answered
/// 500 "Pointer '/$defs/n' does not exist".
#[tokio::test]
async fn an_endpoint_over_a_schema_with_defs_serves_every_tool() {
    let s = Server::start();
    setup(&s).await;
    let tree = json!({
        "type": "object",
        "properties": {"root": {"$ref": "#/$defs/n"}},
        "required": ["root"],
        "$defs": {"n": {"type": "object", "required": ["v"], "properties": {
            "v": {"type": "number"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/n"}}}}}
    });
    s.ok(
        Method::PUT,
        &format!("/v1/{WS}/collections/trees"),
        Some(json!({ "schema": tree })),
    )
    .await;
    endpoint(
        &s,
        "forest",
        json!({"tools": [{"collection": "trees", "operations": ["create", "list"]},
                         {"collection": "notes", "operations": ["list"]}]}),
    )
    .await;
    let admin = s.admin.clone();
    let good = json!({"data": {"root": {"v": 1, "kids": [{"v": 2}]}}});
    let (st, v) = tool(&s, &admin, "forest", "create_trees", good).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["is_error"], false, "{v}");
    // The nested $ref is enforced by the tool's input schema.
    let bad = json!({"data": {"root": {"v": 1, "kids": [{"v": "two"}]}}});
    let (_, v) = tool(&s, &admin, "forest", "create_trees", bad).await;
    assert_eq!(v["is_error"], true, "{v}");
    for t in ["list_trees", "list_notes"] {
        let (st, v) = tool(&s, &admin, "forest", t, json!({})).await;
        assert_eq!(st, StatusCode::OK, "{t}: {v}");
    }
}

/// The auth matrix, grown: collection-scoped, read-only, preview-only,
/// expired, revoked-parent and child tokens on every door — REST, SQL, the
/// Admin MCP, the endpoint MCP (Streamable HTTP and legacy SSE) and endpoint
/// tools through a custom component. One oracle for every door: a read of
/// `secrets` is allowed exactly when the answer carries the secret, a write
/// to `notes` exactly when the admin finds the note afterwards.
#[tokio::test]
async fn every_door_gives_each_token_exactly_its_grants() {
    use crate::mcp_auth::Sse;
    let s = Server::start();
    setup(&s).await;
    let d = hostile(&s).await;
    create(&s, WS, "secrets", json!({"code": "TOPSECRET"})).await;
    endpoint(
        &s,
        "desk",
        json!({"component": d,
               "tools": [{"collection": "notes", "operations": ["create", "list"]},
                         {"collection": "secrets", "operations": ["list"]}],
               "sql_query": true}),
    )
    .await;
    s.ok(
        Method::POST,
        "/v1/workspaces/acme/promote",
        Some(json!({"from": WS})),
    )
    .await;
    create(&s, "acme", "secrets", json!({"code": "TOPSECRET"})).await;
    let grant = |scope: Value, perms: &[&str]| json!([{"scope": scope, "permissions": perms}]);
    let all = ["read:records", "write:records"];
    let soon = (jiff::Timestamp::now() + std::time::Duration::from_secs(2)).to_string();
    let mk = |name: &str, grants: Value| {
        let s = &s;
        let name = name.to_string();
        async move { s.token(&name, grants).await }
    };
    let scoped = mk(
        "scoped",
        grant(json!({"workspaces": [WS], "collections": ["notes"]}), &all),
    )
    .await;
    let reader = mk(
        "reader",
        grant(json!({"workspaces": [WS]}), &["read:records"]),
    )
    .await;
    let preview_only = mk(
        "preview-only",
        grant(
            json!({"workspaces": ["acme"], "environments": ["preview"]}),
            &all,
        ),
    )
    .await;
    let expiring = s
        .ok(
            Method::POST,
            "/v1/tokens",
            Some(json!({"name": "expired", "grants": grant(json!({"workspaces": [WS]}), &all), "expires_at": soon})),
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let parent = s
        .ok(
            Method::POST,
            "/v1/tokens",
            Some(json!({"name": "parent", "grants": grant(json!({"workspaces": [WS]}), &all)})),
        )
        .await;
    let child_of = |parent: String, name: &'static str| {
        let s = &s;
        async move {
            s.call(
                Method::POST,
                "/v1/tokens",
                Some(&parent),
                Some(json!({"name": name, "grants": grant(json!({"workspaces": [WS]}), &all)})),
            )
            .await
            .1["token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let orphan = child_of(parent["token"].as_str().unwrap().to_string(), "orphan").await;
    s.ok(
        Method::DELETE,
        &format!("/v1/tokens/{}", parent["id"].as_str().unwrap()),
        None,
    )
    .await;
    let writer = mk("writer", grant(json!({"workspaces": [WS]}), &all)).await;
    let child = child_of(writer.clone(), "child").await;
    // Past the expiry (2 s) with a margin that a busy machine keeps.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    // (label, token, workspace its doors use, may read secrets, may write notes)
    let cases = [
        ("scoped", &scoped, WS, false, true),
        ("reader", &reader, WS, true, false),
        ("preview-only", &preview_only, "acme", false, false),
        ("expired", &expiring, WS, false, false),
        ("orphan", &orphan, WS, false, false),
        ("child", &child, WS, true, true),
    ];
    let mut wrote: Vec<(String, bool)> = Vec::new();
    for (label, token, ws, may_read, may_write) in cases {
        let tok = Some(token.as_str());
        let mut reads: Vec<(&str, String)> = Vec::new();
        let mut write = |door: &'static str| {
            let marker = format!("{label}/{door}");
            wrote.push((marker.clone(), may_write));
            json!({"by": marker})
        };
        // REST and SQL.
        let (_, v) = s
            .call(Method::GET, &format!("/v1/{ws}/records/secrets"), tok, None)
            .await;
        reads.push(("rest", v.to_string()));
        let (_, v) = s
            .call(
                Method::POST,
                &format!("/v1/{ws}/sql"),
                tok,
                Some(json!({"query": "SELECT data FROM records WHERE collection = 'secrets'"})),
            )
            .await;
        reads.push(("sql", v.to_string()));
        s.call(
            Method::PUT,
            &format!("/v1/{ws}/records/notes"),
            tok,
            Some(json!({"data": write("rest")})),
        )
        .await;
        // Admin MCP.
        let mut admin = Rpc::new(&s, "/mcp", tok);
        admin.initialize().await;
        let (_, body, _) = admin
            .call(
                "manage_record",
                json!({"action": "query", "workspace_id": ws, "collection": "secrets"}),
            )
            .await;
        reads.push(("admin", body));
        admin
            .call(
                "manage_record",
                json!({"action": "upsert", "workspace_id": ws, "collection": "notes", "data": write("admin")}),
            )
            .await;
        // Endpoint MCP, Streamable HTTP: generated tools and the custom
        // component's raw store calls.
        let mut ep = Rpc::new(&s, "/e/desk/mcp", tok);
        ep.initialize().await;
        let (_, body, _) = ep.call("list_secrets", json!({})).await;
        reads.push(("endpoint", body));
        let (_, body, _) = ep
            .call("store", json!({"op": "query", "collection": "secrets"}))
            .await;
        reads.push(("component", body));
        let (_, body, _) = ep
            .call(
                "sql_query",
                json!({"query": "SELECT data FROM records WHERE collection = 'secrets'"}),
            )
            .await;
        reads.push(("endpoint sql", body));
        ep.call("create_notes", json!({"data": write("endpoint")}))
            .await;
        // The component is told only the schemas of collections the token
        // reaches.
        if label == "scoped" {
            let (_, body, _) = ep.call("store", json!({"op": "schemas"})).await;
            assert!(body.contains("notes"), "{body}");
            assert!(!body.contains("secrets"), "{label}: {body}");
        }
        ep.call(
            "store",
            json!({"op": "upsert", "collection": "notes", "request": {"data": write("component")}}),
        )
        .await;
        // Legacy SSE.
        for (door, tool, args) in [
            ("sse read", "list_secrets", json!({})),
            ("sse write", "create_notes", json!({"data": write("sse")})),
        ] {
            let seen = match Sse::open(&s, "/e/desk/sse", tok).await {
                Ok(mut sse) => sse.round_trip(&s, tok, tool, args).await,
                Err((st, body)) => format!("{st} {body}"),
            };
            if door == "sse read" {
                reads.push((door, seen));
            }
        }
        for (door, text) in reads {
            assert_eq!(
                text.contains("TOPSECRET"),
                may_read,
                "{label} reading secrets through {door}: {text}"
            );
        }
    }
    let notes = s
        .ok(
            Method::GET,
            &format!("/v1/{WS}/records/notes?limit=1000"),
            None,
        )
        .await
        .to_string();
    let prod_notes = s
        .ok(Method::GET, "/v1/acme/records/notes?limit=1000", None)
        .await
        .to_string();
    for (marker, may) in wrote {
        let found = notes.contains(&format!("\"{marker}\""))
            || prod_notes.contains(&format!("\"{marker}\""));
        assert_eq!(found, may, "write {marker}");
    }
}

/// Review finding: a grant limited to some collections carried
/// workspace-wide powers — a notes-only token with `write:workspaces` could
/// delete the workspace, and one with `read:workspaces` read every schema
/// through promotions and `endpoints/…?resolved=true`.
#[tokio::test]
async fn a_collection_scoped_grant_has_no_workspace_wide_powers() {
    let s = Server::start();
    setup(&s).await;
    endpoint(
        &s,
        "bot",
        json!({"tools": [{"collection": "secrets", "operations": ["list"]}]}),
    )
    .await;
    let scoped = s
        .token(
            "scoped",
            json!([{"scope": {"workspaces": ["acme"], "collections": ["notes"]},
                    "permissions": ["read:workspaces", "write:workspaces", "read:records"]}]),
        )
        .await;
    for (m, path) in [
        (Method::DELETE, format!("/v1/workspaces/{WS}")),
        (Method::GET, format!("/v1/{WS}/endpoints/bot?resolved=true")),
        (Method::GET, "/v1/workspaces/acme/promotions".to_string()),
        (Method::GET, format!("/v1/{WS}/endpoints/bot/logs")),
    ] {
        let (st, v) = s.call(m.clone(), &path, Some(&scoped), None).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{m} {path}: {v}");
    }
    s.ok(Method::GET, &format!("/v1/workspaces/{WS}"), None)
        .await;
}

/// Review finding: SQL went around an endpoint's per-operation grants and
/// the relationship permissions — a create-only grant read the collection,
/// and the `relationships` table and `operations_log` showed everything.
#[tokio::test]
async fn endpoint_sql_reads_only_what_the_endpoint_may_read() {
    let s = Server::start();
    setup(&s).await;
    let n = create(&s, WS, "notes", json!({"text": "NOTEVISIBLE"})).await;
    let sec = create(&s, WS, "secrets", json!({"code": "TOPSECRET"})).await;
    s.ok(
        Method::PUT,
        &format!("/v1/{WS}/relationships"),
        Some(
            json!({"rel_type": "private", "source_collection": "notes", "source_id": n,
                    "target_collection": "notes", "target_id": n, "metadata": {"m": "RELSECRET"}}),
        ),
    )
    .await;
    let _ = sec;
    endpoint(
        &s,
        "bot",
        json!({"tools": [{"collection": "notes", "operations": ["list"]},
                         {"collection": "secrets", "operations": ["create"]}],
               "sql_query": true}),
    )
    .await;
    let admin = s.admin.clone();
    let sql = |q: &str| json!({"query": q});
    for q in [
        "SELECT data FROM records",
        "SELECT metadata FROM relationships",
        "SELECT * FROM operations_log",
    ] {
        let (st, v) = tool(&s, &admin, "bot", "sql_query", sql(q)).await;
        assert_eq!(st, StatusCode::OK, "{q}: {v}");
        let text = v.to_string();
        assert!(!text.contains("TOPSECRET"), "{q}: {text}");
        assert!(!text.contains("RELSECRET"), "{q}: {text}");
        assert!(!text.contains("\"secrets\""), "{q}: {text}");
    }
    let (_, v) = tool(
        &s,
        &admin,
        "bot",
        "sql_query",
        sql("SELECT data FROM records"),
    )
    .await;
    assert!(v.to_string().contains("NOTEVISIBLE"), "{v}");
    // Over REST, relationships in SQL need read:relationships.
    let reader = s
        .token(
            "reader",
            json!([{"scope": {"workspaces": [WS]}, "permissions": ["read:records"]}]),
        )
        .await;
    let (_, v) = s
        .call(
            Method::POST,
            &format!("/v1/{WS}/sql"),
            Some(&reader),
            Some(sql("SELECT metadata FROM relationships")),
        )
        .await;
    assert!(!v.to_string().contains("RELSECRET"), "{v}");
}

/// Review finding: tokens outlived the workspace they name — a token for
/// `acme` read the records of a new tenant's `acme` created after the
/// first was deleted.
#[tokio::test]
async fn a_deleted_workspaces_tokens_do_not_reach_its_successor() {
    let s = Server::start();
    s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": "acme"})))
        .await;
    let old = s.token("old", crate::common::rw("acme")).await;
    let broad = s
        .token(
            "broad",
            json!([{"scope": {"workspaces": ["acme", "other"]}, "permissions": ["read:records"]}]),
        )
        .await;
    s.ok(Method::DELETE, "/v1/workspaces/acme", None).await;
    s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": "acme"})))
        .await;
    let (st, v) = s
        .call(Method::GET, "/v1/workspaces/acme", Some(&old), None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    // A token that also names other workspaces is kept.
    let (st, v) = s
        .call(Method::GET, "/v1/workspaces", Some(&broad), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

/// Review findings on records and batches: a batch `delete_relationship`
/// by its ends told a token without any grant which records exist; an
/// upsert by id with another record's external id (and an implied source)
/// overwrote that record's external key; an update-only grant brought a
/// deleted record back.
#[tokio::test]
async fn record_keys_and_probes_hold() {
    let s = Server::start();
    setup(&s).await;
    let stranger = s
        .token(
            "stranger",
            json!([{"scope": {"workspaces": [WS], "collections": ["notes"]}, "permissions": ["read:collections"]}]),
        )
        .await;
    create(&s, WS, "secrets", json!({})).await;
    let probe = |id: &str| {
        json!({"operations": [{"type": "delete_relationship", "rel_type": "zz",
                               "source_collection": "secrets", "source_id": id,
                               "target_collection": "secrets", "target_id": id}]})
    };
    let (_, real) = s
        .call(
            Method::POST,
            &format!("/v1/{WS}/batch"),
            Some(&stranger),
            Some(probe("alice")),
        )
        .await;
    let (_, fake) = s
        .call(
            Method::POST,
            &format!("/v1/{WS}/batch"),
            Some(&stranger),
            Some(probe("nobody")),
        )
        .await;
    assert_eq!(
        real["error"]["details"]["failed"][0]["code"], "FORBIDDEN",
        "{real}"
    );
    assert_eq!(real, fake, "the answer does not depend on what exists");

    // External keys stay unique.
    let notes_path = format!("/v1/{WS}/records/notes");
    let put = |body: Value| s.ok(Method::PUT, &notes_path, Some(body));
    let r1 = put(json!({"external_id": "A", "external_source": "crm", "data": {}})).await;
    put(json!({"external_id": "B", "external_source": "crm", "data": {}})).await;
    let (st, v) = s
        .call(
            Method::PUT,
            &format!("/v1/{WS}/records/notes"),
            Some(&s.admin),
            Some(json!({"id": r1["id"], "external_id": "B", "data": {}})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");

    // An update-only endpoint cannot bring back a deleted record.
    let gone = create(&s, WS, "notes", json!({"n": 1})).await;
    s.ok(
        Method::DELETE,
        &format!("/v1/{WS}/records/notes/{gone}"),
        None,
    )
    .await;
    endpoint(
        &s,
        "upd",
        json!({"batch": {"enabled": true, "operations": {"notes": ["update"]}}}),
    )
    .await;
    let admin = s.admin.clone();
    let (_, v) = tool(
        &s,
        &admin,
        "upd",
        "batch",
        json!({"operations": [{"type": "upsert_record", "collection": "notes", "id": gone, "data": {"n": 2}}]}),
    )
    .await;
    assert_eq!(v["is_error"], true, "{v}");
    let (st, _) = s
        .call(
            Method::GET,
            &format!("/v1/{WS}/records/notes/{gone}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "still deleted");
}
