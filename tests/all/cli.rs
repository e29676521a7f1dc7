//! The CLI as a user runs it: the issue's command sequence, --json output,
//! --help everywhere, and a useful message when the server is down.

use serde_json::Value;

use crate::common::{BIN, Server, stderr, stdout};

fn json_of(o: &std::process::Output) -> Value {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

#[tokio::test]
async fn the_documented_workflow_runs_through_the_cli() {
    let s = Server::start();
    let dir = s.dir.path();
    std::fs::write(
        dir.join("contacts.schema.json"),
        r#"{"type":"object","properties":{"name":{"type":"string"},"email":{"type":"string"},"stage":{"type":"string"},"value":{"type":"number"}},"required":["name"]}"#,
    )
    .unwrap();
    let run = |args: &[&str]| s.cli_in(args, Some(dir));

    // The first start saved the admin token for the CLI, readable only by its owner.
    let creds = s.config_dir().join("mcp-factory").join("credentials.json");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&creds).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "{}", creds.display());
    let saved: Value = serde_json::from_slice(&std::fs::read(&creds).unwrap()).unwrap();
    assert_eq!(saved["token"], s.admin.as_str());
    assert_eq!(saved["url"], s.url.as_str());
    // The CLI finds the server's saved admin credentials by itself.
    let o = run(&["workspaces", "create", "crm", "--name", "CRM"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("production"),
        "human table by default: {}",
        stdout(&o)
    );
    let p = json_of(&run(&[
        "--json",
        "workspaces",
        "create-preview",
        "crm",
        "--name",
        "dev",
    ]));
    assert_eq!(p["id"], "crm--dev");
    json_of(&run(&[
        "--json",
        "collections",
        "upsert",
        "contacts",
        "--workspace",
        "crm--dev",
        "--schema",
        "@contacts.schema.json",
    ]));
    json_of(&run(&[
        "--json",
        "collections",
        "upsert",
        "deals",
        "--workspace",
        "crm--dev",
        "--schema",
        r#"{"type":"object"}"#,
    ]));
    let c = json_of(&run(&[
        "--json",
        "records",
        "upsert",
        "contacts",
        "--workspace",
        "crm--dev",
        "--external-id",
        "c_001",
        "--external-source",
        "crm",
        "--data",
        r#"{"name":"Jane Doe","email":"jane@acme.com","stage":"negotiation","value":10}"#,
    ]));
    let cid = c["id"].as_str().unwrap().to_string();
    json_of(&run(&[
        "--json",
        "records",
        "upsert",
        "contacts",
        "--workspace",
        "crm--dev",
        "--external-id",
        "c_002",
        "--data",
        r#"{"name":"Bo","stage":"negotiation","value":20}"#,
    ]));
    json_of(&run(&[
        "--json",
        "records",
        "upsert",
        "contacts",
        "--workspace",
        "crm--dev",
        "--data",
        r#"{"name":"Al","stage":"lead","value":99}"#,
    ]));
    let q = json_of(&run(&[
        "--json",
        "query",
        "contacts",
        "--workspace",
        "crm--dev",
        "--filter",
        r#"{"field":"data.stage","op":"eq","value":"negotiation"}"#,
        "--sort",
        r#"{"field":"data.value","order":"desc"}"#,
        "--limit",
        "20",
    ]));
    assert_eq!(q["meta"]["total"], 2);
    assert_eq!(q["data"][0]["data"]["name"], "Bo");
    let d = json_of(&run(&[
        "--json",
        "records",
        "upsert",
        "deals",
        "--workspace",
        "crm--dev",
        "--data",
        r#"{"title":"Big"}"#,
    ]));
    let did = d["id"].as_str().unwrap().to_string();
    let source = format!("contacts/{cid}");
    let target = format!("deals/{did}");
    json_of(&run(&[
        "--json",
        "relationships",
        "upsert",
        "--workspace",
        "crm--dev",
        "--source",
        &source,
        "--target",
        &target,
        "--type",
        "owns",
    ]));
    let rels = json_of(&run(&[
        "--json",
        "query-relationships",
        "contacts",
        &cid,
        "--workspace",
        "crm--dev",
        "--type",
        "owns",
        "--direction",
        "outgoing",
    ]));
    assert_eq!(rels["data"][0]["target_id"], did.as_str());
    std::fs::write(
        dir.join("ops.json"),
        r#"[{"type":"upsert_record","collection":"contacts","external_id":"c_003","data":{"name":"Cy"}},
            {"type":"upsert_record","collection":"deals","external_id":"d_002","data":{"title":"Small"}}]"#,
    )
    .unwrap();
    let b = json_of(&run(&[
        "--json",
        "batch",
        "--workspace",
        "crm--dev",
        "--operations",
        "@ops.json",
    ]));
    assert_eq!(b["meta"]["operations"], 2);
    let dry = json_of(&run(&[
        "--json",
        "workspaces",
        "promote",
        "crm",
        "--from",
        "crm--dev",
        "--dry-run",
    ]));
    assert_eq!(
        dry["diff"]["collections"]["added"],
        serde_json::json!(["contacts", "deals"])
    );
    let promo = json_of(&run(&[
        "--json",
        "workspaces",
        "promote",
        "crm",
        "--from",
        "crm--dev",
    ]));
    let pid = promo["id"].as_str().unwrap().to_string();
    let hist = json_of(&run(&["--json", "workspaces", "promotions", "crm"]));
    assert_eq!(hist["meta"]["total"], 1);
    json_of(&run(&[
        "--json",
        "workspaces",
        "rollback",
        "crm",
        "--promotion",
        &pid,
    ]));
    let colls = json_of(&run(&[
        "--json",
        "collections",
        "list",
        "--workspace",
        "crm",
    ]));
    assert_eq!(colls["meta"]["total"], 0);

    let t = json_of(&run(&[
        "--json",
        "tokens",
        "create",
        "--name",
        "agent",
        "--grants",
        r#"[{"scope":{"workspaces":["crm"]},"permissions":["read:records","write:records"]}]"#,
    ]));
    let agent = t["token"].as_str().unwrap().to_string();
    let tid = t["id"].as_str().unwrap().to_string();
    let list = json_of(&run(&["--json", "tokens", "list"]));
    assert_eq!(list["meta"]["total"], 2);
    // MCP_FACTORY_TOKEN and MCP_FACTORY_WORKSPACE are honoured.
    let o = std::process::Command::new(BIN)
        .args(["--json", "query", "contacts"])
        .env("MCP_FACTORY_URL", &s.url)
        .env("MCP_FACTORY_TOKEN", &agent)
        .env("MCP_FACTORY_WORKSPACE", "crm--dev")
        .env("XDG_CONFIG_HOME", dir.join("empty"))
        .output()
        .unwrap();
    assert_eq!(
        json_of(&o)["meta"]["total"],
        4,
        "c_001, c_002, Al and the batch's c_003"
    );
    json_of(&run(&["--json", "tokens", "revoke", &tid]));
    let o = std::process::Command::new(BIN)
        .args([
            "query",
            "contacts",
            "--workspace",
            "crm--dev",
            "--token",
            &agent,
        ])
        .env("MCP_FACTORY_URL", &s.url)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("UNAUTHORIZED (401)") && stderr(&o).contains("revoked"),
        "{}",
        stderr(&o)
    );

    // Errors are printed with their code and details, exit status 1.
    let o = run(&[
        "records",
        "upsert",
        "contacts",
        "--workspace",
        "crm--dev",
        "--data",
        r#"{"name":1}"#,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("VALIDATION_ERROR (400)") && stderr(&o).contains("/name"),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "records",
        "upsert",
        "contacts",
        "--workspace",
        "crm--dev",
        "--data",
        "@missing.json",
    ]);
    assert!(stderr(&o).contains("missing.json"), "{}", stderr(&o));
}

#[test]
fn every_command_has_help() {
    let groups: &[&[&str]] = &[
        &[],
        &["serve"],
        &["workspaces"],
        &["workspaces", "list"],
        &["workspaces", "get"],
        &["workspaces", "create"],
        &["workspaces", "delete"],
        &["workspaces", "create-preview"],
        &["workspaces", "previews"],
        &["workspaces", "promote"],
        &["workspaces", "promotions"],
        &["workspaces", "rollback"],
        &["collections"],
        &["collections", "upsert"],
        &["collections", "list"],
        &["collections", "get"],
        &["collections", "delete"],
        &["records"],
        &["records", "upsert"],
        &["records", "get"],
        &["records", "update"],
        &["records", "delete"],
        &["records", "cancel"],
        &["records", "archive"],
        &["query"],
        &["relationships"],
        &["relationships", "upsert"],
        &["relationships", "get"],
        &["relationships", "delete"],
        &["query-relationships"],
        &["batch"],
        &["operations"],
        &["tokens"],
        &["tokens", "create"],
        &["tokens", "list"],
        &["tokens", "revoke"],
        &["hooks"],
        &["hooks", "create"],
        &["hooks", "list"],
        &["hooks", "get"],
        &["hooks", "delete"],
        &["hooks", "rotate-secret"],
        &["triggers"],
        &["triggers", "create"],
        &["triggers", "list"],
        &["triggers", "get"],
        &["triggers", "delete"],
        &["triggers", "rotate-secret"],
        &["triggers", "enable"],
        &["triggers", "deliveries"],
        &["triggers", "replay"],
    ];
    for g in groups {
        let o = std::process::Command::new(BIN)
            .args(*g)
            .arg("--help")
            .output()
            .unwrap();
        assert!(o.status.success(), "{g:?} --help failed: {}", stderr(&o));
        assert!(
            stdout(&o).contains("Usage: mcp-factory"),
            "{g:?}: {}",
            stdout(&o)
        );
    }
}

#[test]
fn connection_refused_says_how_to_start_the_server() {
    let o = std::process::Command::new(BIN)
        .args(["--server", "http://127.0.0.1:9", "workspaces", "list"])
        .env("MCP_FACTORY_TOKEN", "mcpf_x_y")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("mcp-factory serve"), "{}", stderr(&o));
}

/// `docs/hooks-and-triggers.md`'s walk-through, line by line, through a
/// shell (its quoting is the doc's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hooks_and_triggers_guide_runs() {
    let s = Server::start();
    let doc = std::fs::read_to_string(crate::mcp_clients::repo_file("docs/hooks-and-triggers.md"))
        .unwrap();
    let start = doc
        .find("## Walk-through")
        .expect("the walk-through section");
    let block = doc[start..]
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("its sh block");
    let lines: Vec<&str> = block
        .lines()
        .filter(|l| l.starts_with("mcp-factory "))
        .collect();
    assert!(lines.len() >= 20, "{lines:?}");
    let bin_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(BIN, bin_dir.path().join("mcp-factory")).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut promoted = String::new();
    for line in &lines {
        let o = std::process::Command::new("sh")
            .args(["-c", line])
            .env("PATH", &path)
            .env("XDG_CONFIG_HOME", s.config_dir())
            .env("MCP_FACTORY_URL", &s.url)
            .env_remove("MCP_FACTORY_TOKEN")
            .env_remove("MCP_FACTORY_WORKSPACE")
            .output()
            .unwrap();
        assert!(o.status.success(), "{line}\n{}{}", stdout(&o), stderr(&o));
        if line.contains("promote crm --from crm--dev") && !line.contains("--dry-run") {
            promoted = stdout(&o);
        }
    }
    // The promotion printed the new production secrets (a hook, two triggers), once.
    assert!(promoted.contains("New secrets"), "{promoted}");
    assert_eq!(promoted.matches("whsec_").count(), 3, "{promoted}");
    let hooks = s.ok(reqwest::Method::GET, "/v1/crm--dev/hooks", None).await;
    assert_eq!(hooks["meta"]["total"], 0);
    let t = s
        .ok(reqwest::Method::GET, "/v1/crm/triggers/erp-invoices", None)
        .await;
    assert_eq!(
        t["events"],
        serde_json::json!(["create", "update", "delete"])
    );
    assert_eq!(
        t["secrets"].as_array().unwrap().len(),
        2,
        "rotated with a grace period: {t}"
    );
}
