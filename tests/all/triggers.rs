//! Triggers end to end: the real server delivers to a loopback receiver
//! that verifies every request with the PyPI `standardwebhooks` package.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Receiver, Server, contacts_schema, stderr, stdout};

/// A server that may deliver to loopback, with a quick retry schedule.
fn server(schedule: &str) -> Server {
    Server::start_with(&[
        "--egress-allow",
        "127.0.0.1",
        "--delivery-schedule",
        schedule,
    ])
}

async fn trigger(s: &Server, ws: &str, body: Value) -> Value {
    let v = s
        .ok(Method::POST, &format!("/v1/{ws}/triggers"), Some(body))
        .await;
    assert!(v["secret"].as_str().unwrap().starts_with("whsec_"), "{v}");
    v
}

fn verified(r: &[Value]) -> Vec<&Value> {
    r.iter().filter(|x| x["verified"] == true).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_arrives_once_verified_by_the_reference_receiver() {
    let s = server("0s,100ms,200ms");
    let rx = Receiver::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let ws = "crm--dev";
    // One trigger through the CLI (what the docs show), one through REST.
    let out = s.cli_in(
        &[
            "triggers",
            "create",
            "--workspace",
            ws,
            "--name",
            "contacts-out",
            "--collection",
            "contacts",
            "--url",
            &format!("{}/contacts", rx.url),
            "--events",
            r#"["create","update","delete"]"#,
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let records_secret = printed
        .split_whitespace()
        .find(|w| w.starts_with("whsec_"))
        .unwrap_or_else(|| panic!("the secret is printed once: {printed}"))
        .to_string();
    let rels = trigger(
        &s,
        ws,
        json!({"name": "links-out", "rel_type": "knows", "url": format!("{}/links", rx.url),
               "events": ["create", "update", "delete"]}),
    )
    .await;
    rx.control(
        &[&records_secret, rels["secret"].as_str().unwrap()],
        json!({"ok": true}),
    )
    .await;
    // The secret is never shown again.
    let listed = s.ok(Method::GET, &format!("/v1/{ws}/triggers"), None).await;
    assert!(!listed.to_string().contains("whsec_"), "{listed}");
    assert_eq!(listed["meta"]["total"], 2);

    let base = format!("/v1/{ws}/records/contacts");
    let a = s
        .ok(Method::POST, &base, Some(json!({"data": {"name": "Ada"}})))
        .await;
    let b = s
        .ok(Method::POST, &base, Some(json!({"data": {"name": "Bob"}})))
        .await;
    let (ida, idb) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    s.ok(
        Method::PATCH,
        &format!("{base}/{ida}"),
        Some(json!({"data": {"stage": "won"}})),
    )
    .await;
    s.ok(Method::DELETE, &format!("{base}/{idb}"), None).await;
    // Relationships between live records (Bob is deleted).
    let c = s
        .ok(Method::POST, &base, Some(json!({"data": {"name": "Cy"}})))
        .await;
    let idc = c["id"].as_str().unwrap();
    let link = json!({"rel_type": "knows", "source_collection": "contacts", "source_id": ida,
                      "target_collection": "contacts", "target_id": idc});
    let rel = s
        .ok(
            Method::PUT,
            &format!("/v1/{ws}/relationships"),
            Some(link.clone()),
        )
        .await;
    let mut changed = link.clone();
    changed["metadata"] = json!({"since": 2020});
    s.ok(
        Method::PUT,
        &format!("/v1/{ws}/relationships"),
        Some(changed),
    )
    .await;
    // Unchanged: no write, no event.
    s.ok(
        Method::PUT,
        &format!("/v1/{ws}/relationships"),
        Some(json!({"rel_type": "knows",
        "source_collection": "contacts", "source_id": ida, "target_collection": "contacts",
        "target_id": idc, "metadata": {"since": 2020}})),
    )
    .await;
    let rid = rel["id"].as_str().unwrap();
    s.ok(
        Method::DELETE,
        &format!("/v1/{ws}/relationships/{rid}"),
        None,
    )
    .await;

    let got = rx.wait_for(30, |r| verified(r).len() >= 8).await;
    // Nothing more arrives (each change exactly once).
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let got_after = rx.requests();
    assert_eq!(got_after.len(), got.len(), "{got_after:#?}");
    assert!(
        got.iter()
            .all(|r| r["verified"] == true && r["status"] == 204),
        "{got:#?}"
    );
    // In order per trigger (the two triggers deliver side by side).
    let of = |path: &str| -> Vec<(String, String)> {
        got.iter()
            .filter(|r| r["path"] == path)
            .map(|r| {
                (
                    r["body"]["type"].as_str().unwrap().to_string(),
                    r["body"]["data"]["id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let want = |t: &str, id: &str| (t.to_string(), id.to_string());
    assert_eq!(
        of("/contacts"),
        vec![
            want("record.created", ida),
            want("record.created", idb),
            want("record.updated", ida),
            want("record.deleted", idb),
            want("record.created", idc),
        ]
    );
    assert_eq!(
        of("/links"),
        vec![
            want("relationship.created", rid),
            want("relationship.updated", rid),
            want("relationship.deleted", rid),
        ]
    );
    let got: Vec<Value> = ["/contacts", "/links"]
        .iter()
        .flat_map(|p| got.iter().filter(move |r| r["path"] == *p).cloned())
        .collect();
    // The bodies are what REST returns, with the change's sequence.
    assert_eq!(
        got[2]["body"]["data"]["data"],
        json!({"name": "Ada", "stage": "won"})
    );
    assert_eq!(got[2]["body"]["data"]["version"], 2);
    assert_eq!(got[3]["body"]["data"]["deleted"], true);
    assert_eq!(got[6]["body"]["data"]["metadata"], json!({"since": 2020}));
    for part in [&got[..5], &got[5..]] {
        let seqs: Vec<u64> = part
            .iter()
            .map(|r| r["body"]["sequence"].as_u64().unwrap())
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    }
    let mut ids: Vec<&str> = got
        .iter()
        .map(|r| r["webhook_id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8, "one webhook-id per event");
    assert!(got.iter().all(|r| r["body"]["workspace_id"] == ws));
    let t = s
        .ok(
            Method::GET,
            &format!("/v1/{ws}/triggers/contacts-out"),
            None,
        )
        .await;
    assert_eq!(
        (t["status"].clone(), t["pending"].clone()),
        (json!("active"), json!(0)),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_keep_the_webhook_id_and_honour_retry_after() {
    let s = server("0s,100ms,100ms,100ms");
    let rx = Receiver::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let t = trigger(
        &s,
        "crm--dev",
        json!({"name": "flaky", "collection": "contacts", "url": format!("{}/in", rx.url), "events": ["create"]}),
    )
    .await;
    let secret = t["secret"].as_str().unwrap();
    // Fails twice (the first time asking for 2 s), then succeeds.
    rx.control(
        &[secret],
        json!({"fail": 1, "status": 503, "retry_after": 2}),
    )
    .await;
    let rec = s
        .ok(
            Method::POST,
            "/v1/crm--dev/records/contacts",
            Some(json!({"data": {"name": "Ada"}})),
        )
        .await;
    rx.wait_for(10, |r| !r.is_empty()).await;
    rx.control(&[secret], json!({"fail": 1, "status": 500}))
        .await;
    let got = rx
        .wait_for(20, |r| r.iter().any(|x| x["status"] == 204))
        .await;
    assert_eq!(got.len(), 3, "{got:#?}");
    let statuses: Vec<u64> = got.iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, vec![503, 500, 204]);
    assert!(
        got.iter().all(|r| r["webhook_id"] == got[0]["webhook_id"]),
        "{got:#?}"
    );
    assert!(got.iter().all(|r| r["body"]["data"]["id"] == rec["id"]));
    let gap = got[1]["received_at"].as_f64().unwrap() - got[0]["received_at"].as_f64().unwrap();
    assert!(
        gap >= 1.9,
        "Retry-After: 2 was not honoured (next attempt after {gap:.2} s)"
    );
    // Delivered: nothing left in the queue (once the dispatcher has
    // recorded the 204).
    let left = s
        .poll("/v1/crm--dev/triggers/flaky/deliveries", 100, |v| {
            v["meta"]["total"] == 0
        })
        .await;
    assert_eq!(left["meta"]["total"], 0, "{left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_trigger_and_replay_sends_its_queue() {
    let s = server("0s,100ms");
    let rx = Receiver::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let t = trigger(
        &s,
        "crm--dev",
        json!({"name": "gone", "collection": "contacts", "url": rx.url, "events": ["create"]}),
    )
    .await;
    let secret = t["secret"].as_str().unwrap();
    rx.control(&[secret], json!({"status": 410})).await;
    s.ok(
        Method::POST,
        "/v1/crm--dev/records/contacts",
        Some(json!({"data": {"name": "Ada"}})),
    )
    .await;
    rx.wait_for(10, |r| !r.is_empty()).await;
    let info = s
        .poll("/v1/crm--dev/triggers/gone", 100, |v| {
            v["status"] == "disabled"
        })
        .await;
    assert_eq!(info["status"], "disabled", "{info}");
    assert!(
        info["disabled_reason"].as_str().unwrap().contains("410"),
        "{info}"
    );
    // A disabled trigger queues nothing.
    s.ok(
        Method::POST,
        "/v1/crm--dev/records/contacts",
        Some(json!({"data": {"name": "Bob"}})),
    )
    .await;
    let info = s.ok(Method::GET, "/v1/crm--dev/triggers/gone", None).await;
    assert_eq!(
        (info["pending"].clone(), info["dead"].clone()),
        (json!(0), json!(1)),
        "{info}"
    );
    // Replay needs the trigger enabled first.
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/crm--dev/triggers/gone/replay",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, 409, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("enable"),
        "{v}"
    );
    rx.control(&[secret], json!({"ok": true})).await;
    s.ok(Method::POST, "/v1/crm--dev/triggers/gone/enable", None)
        .await;
    let replayed = s
        .ok(Method::POST, "/v1/crm--dev/triggers/gone/replay", None)
        .await;
    assert_eq!(replayed["replayed"], 1);
    let got = rx
        .wait_for(10, |r| r.iter().any(|x| x["status"] == 204))
        .await;
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(
        got[0]["webhook_id"], got[1]["webhook_id"],
        "a replay keeps the webhook-id"
    );
    assert_eq!(got[1]["body"]["data"]["data"]["name"], "Ada");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_deliveries_are_dead_lettered_and_replayed_from_the_cli() {
    let s = server("0s,50ms,50ms");
    let rx = Receiver::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let t = trigger(
        &s,
        "crm--dev",
        json!({"name": "down", "collection": "contacts", "url": rx.url, "events": ["create", "update"]}),
    )
    .await;
    let secret = t["secret"].as_str().unwrap();
    rx.control(&[secret], json!({"status": 500})).await;
    let rec = s
        .ok(
            Method::POST,
            "/v1/crm--dev/records/contacts",
            Some(json!({"data": {"name": "Ada"}})),
        )
        .await;
    rx.wait_for(10, |r| r.len() >= 3).await;
    let dead = s
        .poll(
            "/v1/crm--dev/triggers/down/deliveries?status=dead",
            100,
            |v| v["meta"]["total"] == 1,
        )
        .await;
    assert_eq!(dead["meta"]["total"], 1, "{dead}");
    let d = &dead["data"][0];
    assert_eq!(d["attempts"].as_array().unwrap().len(), 3, "{d}");
    assert_eq!(d["attempts"][0]["status"], 500);
    assert_eq!(d["body"]["data"]["id"], rec["id"]);
    assert_eq!(rx.requests().len(), 3, "three attempts, then it stops");
    // The CLI shows and replays it.
    let out = s.cli_in(
        &[
            "triggers",
            "deliveries",
            "down",
            "--workspace",
            "crm--dev",
            "--status",
            "dead",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("record.created"), "{}", stdout(&out));
    rx.control(&[secret], json!({"ok": true})).await;
    let out = s.cli_in(
        &["triggers", "replay", "down", "--workspace", "crm--dev"],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let got = rx
        .wait_for(10, |r| r.iter().any(|x| x["status"] == 204))
        .await;
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|r| r["webhook_id"] == got[0]["webhook_id"]));
    let info = s.ok(Method::GET, "/v1/crm--dev/triggers/down", None).await;
    assert_eq!(
        (info["pending"].clone(), info["dead"].clone()),
        (json!(0), json!(0)),
        "{info}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_signs_with_both_secrets_during_the_grace_period() {
    let s = server("0s,100ms");
    let rx = Receiver::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let t = trigger(
        &s,
        "crm--dev",
        json!({"name": "rot", "collection": "contacts", "url": rx.url, "events": ["create"]}),
    )
    .await;
    let old = t["secret"].as_str().unwrap().to_string();
    let r = s
        .ok(
            Method::POST,
            "/v1/crm--dev/triggers/rot/rotate-secret",
            Some(json!({"grace_seconds": 3600})),
        )
        .await;
    let new = r["secret"].as_str().unwrap().to_string();
    assert_ne!(old, new);
    // A receiver that knows only the old secret, or only the new, verifies.
    for (secret, name) in [(&old, "Old"), (&new, "New")] {
        rx.control(&[secret], json!({"ok": true})).await;
        let n = rx.requests().len();
        s.ok(
            Method::POST,
            "/v1/crm--dev/records/contacts",
            Some(json!({"data": {"name": name}})),
        )
        .await;
        let got = rx.wait_for(10, |r| r.len() > n).await;
        assert_eq!(got[n]["verified"], true, "{:#?}", got[n]);
        assert_eq!(got[n]["signatures"], 2);
    }
    // At most three secrets live at once, however often it is rotated.
    for _ in 0..4 {
        s.ok(
            Method::POST,
            "/v1/crm--dev/triggers/rot/rotate-secret",
            None,
        )
        .await;
    }
    let info = s.ok(Method::GET, "/v1/crm--dev/triggers/rot", None).await;
    assert_eq!(info["secrets"].as_array().unwrap().len(), 3, "{info}");
    // With no grace the old one stops at once.
    s.ok(
        Method::POST,
        "/v1/crm--dev/triggers/rot/rotate-secret",
        Some(json!({"grace_seconds": 0})),
    )
    .await;
    let info = s.ok(Method::GET, "/v1/crm--dev/triggers/rot", None).await;
    assert_eq!(info["secrets"].as_array().unwrap().len(), 1, "{info}");
    assert!(!info.to_string().contains("whsec_"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_are_preview_config_carried_by_promotion_with_new_secrets() {
    let s = server("0s,100ms");
    let rx = Receiver::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    // Production refuses it.
    let body =
        json!({"name": "erp", "collection": "contacts", "url": rx.url, "events": ["create"]});
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/crm/triggers",
            Some(&s.admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(st, 403, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("preview"),
        "{v}"
    );
    let preview = trigger(&s, "crm--dev", body).await;
    let dry = s
        .ok(
            Method::POST,
            "/v1/workspaces/crm/promote",
            Some(json!({"from": "crm--dev", "dry_run": true})),
        )
        .await;
    assert_eq!(dry["diff"]["triggers"]["added"], json!(["erp"]), "{dry}");
    let p = s
        .ok(
            Method::POST,
            "/v1/workspaces/crm/promote",
            Some(json!({"from": "crm--dev"})),
        )
        .await;
    let secrets = p["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 1, "{p}");
    let prod_secret = secrets[0]["secret"].as_str().unwrap().to_string();
    assert_ne!(
        prod_secret,
        preview["secret"].as_str().unwrap(),
        "production gets its own secret"
    );
    // The promotion history never holds it.
    let history = s
        .ok(Method::GET, "/v1/workspaces/crm/promotions", None)
        .await;
    assert!(!history.to_string().contains("whsec_"), "{history}");
    // Production delivers, signed with production's secret.
    rx.control(&[&prod_secret], json!({"ok": true})).await;
    s.ok(
        Method::POST,
        "/v1/crm/records/contacts",
        Some(json!({"data": {"name": "Prod"}})),
    )
    .await;
    let got = rx.wait_for(10, |r| !r.is_empty()).await;
    assert_eq!(got[0]["verified"], true, "{got:#?}");
    assert_eq!(got[0]["body"]["workspace_id"], "crm");
    // A new preview's copy starts disabled: preview data never reaches the
    // production receiver unless someone enables it.
    s.ok(
        Method::POST,
        "/v1/workspaces/crm/previews",
        Some(json!({"name": "qa"})),
    )
    .await;
    let copy = s.ok(Method::GET, "/v1/crm--qa/triggers/erp", None).await;
    assert_eq!(copy["status"], "disabled", "{copy}");
    s.ok(
        Method::POST,
        "/v1/crm--qa/records/contacts",
        Some(json!({"data": {"name": "QA"}})),
    )
    .await;
    // Rollback removes it from production; rolling forward again brings the
    // same secret back (receivers keep working).
    let pid = p["id"].as_str().unwrap();
    s.ok(
        Method::POST,
        &format!("/v1/workspaces/crm/promotions/{pid}/rollback"),
        None,
    )
    .await;
    let (st, _) = s
        .call(Method::GET, "/v1/crm/triggers/erp", Some(&s.admin), None)
        .await;
    assert_eq!(st, 404);
    let again = s
        .ok(
            Method::POST,
            "/v1/workspaces/crm/promote",
            Some(json!({"from": "crm--dev"})),
        )
        .await;
    assert!(
        again.get("secrets").is_none(),
        "the kept secret is reused: {again}"
    );
    s.ok(
        Method::POST,
        "/v1/crm/records/contacts",
        Some(json!({"data": {"name": "Again"}})),
    )
    .await;
    let got = rx.wait_for(10, |r| r.len() >= 2).await;
    assert_eq!(got[1]["verified"], true);
    assert_eq!(got[1]["body"]["data"]["data"]["name"], "Again");
    assert_eq!(
        got.len(),
        2,
        "the QA preview's record never arrived: {got:#?}"
    );
    // A collection with a trigger cannot be deleted.
    let (st, v) = s
        .call(
            Method::DELETE,
            "/v1/crm--dev/collections/contacts?force=true",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("trigger 'erp'"),
        "{v}"
    );
}

/// Who may manage triggers and hooks, on REST and the Admin MCP alike:
/// the permission, the collection scope, the read right a trigger needs on
/// what it sends out, and the workspace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_decide_who_manages_triggers_and_hooks_on_every_door() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    s.ok(
        Method::PUT,
        "/v1/crm--dev/collections/deals",
        Some(json!({"schema": {"type": "object"}})),
    )
    .await;
    let url = "https://erp.example.com/in";
    let body = |name: &str, coll: &str| json!({"name": name, "collection": coll, "url": url, "events": ["create"]});
    let reader = s
        .token("reader", json!([{"scope": {"workspaces": ["crm"]}, "permissions": ["read:triggers", "read:hooks"]}]))
        .await;
    let scoped = s
        .token(
            "contacts-only",
            json!([{"scope": {"workspaces": ["crm"], "collections": ["contacts"]},
            "permissions": ["read:triggers", "write:triggers", "read:records"]}]),
        )
        .await;
    let blind = s
        .token("no-read", json!([{"scope": {"workspaces": ["crm"]}, "permissions": ["write:triggers", "read:triggers"]}]))
        .await;
    let elsewhere = s
        .token(
            "elsewhere",
            json!([{"scope": {"workspaces": ["other"]}, "permissions": ["*"]}]),
        )
        .await;
    s.ok(
        Method::POST,
        "/v1/crm--dev/triggers",
        Some(body("seen", "contacts")),
    )
    .await;
    s.ok(
        Method::POST,
        "/v1/crm--dev/triggers",
        Some(body("hidden", "deals")),
    )
    .await;

    let rest = |token: &str, b: Value| {
        let token = token.to_string();
        let s = &s;
        async move {
            s.call(Method::POST, "/v1/crm--dev/triggers", Some(&token), Some(b))
                .await
        }
    };
    let (st, v) = rest(&reader, body("a", "contacts")).await;
    assert_eq!(st, 403, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("write:triggers"),
        "{v}"
    );
    let (st, v) = rest(&scoped, body("b", "contacts")).await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = rest(&scoped, body("c", "deals")).await;
    assert_eq!(st, 403, "{v}");
    let (st, v) = rest(&blind, body("d", "contacts")).await;
    assert_eq!(st, 403, "a trigger sends records out: {v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("read:records"),
        "{v}"
    );
    let (st, v) = rest(&elsewhere, body("e", "contacts")).await;
    assert_eq!(st, 403, "{v}");
    // A relationship trigger sends links between any collections: a token
    // limited to some collections may not make (or see) one.
    let scoped_rels = s
        .token(
            "contacts-rels",
            json!([{"scope": {"workspaces": ["crm"], "collections": ["contacts"]},
            "permissions": ["read:triggers", "write:triggers", "read:relationships"]}]),
        )
        .await;
    let rel = json!({"name": "links", "rel_type": "owns", "url": url, "events": ["create"]});
    let (st, v) = rest(&scoped_rels, rel.clone()).await;
    assert_eq!(st, 403, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not limited to some collections"),
        "{v}"
    );
    s.ok(Method::POST, "/v1/crm--dev/triggers", Some(rel)).await;
    let (st, _) = s
        .call(
            Method::GET,
            "/v1/crm--dev/triggers/links",
            Some(&scoped_rels),
            None,
        )
        .await;
    assert_eq!(st, 403);
    // A collection-scoped token lists only its collections' triggers, and
    // cannot read or delete the others.
    let (_, listed) = s
        .call(Method::GET, "/v1/crm--dev/triggers", Some(&scoped), None)
        .await;
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["b", "seen"], "{listed}");
    let (st, _) = s
        .call(
            Method::GET,
            "/v1/crm--dev/triggers/hidden",
            Some(&scoped),
            None,
        )
        .await;
    assert_eq!(st, 403);
    let (st, _) = s
        .call(
            Method::DELETE,
            "/v1/crm--dev/triggers/hidden",
            Some(&scoped),
            None,
        )
        .await;
    assert_eq!(st, 403);
    let (st, _) = s
        .call(
            Method::GET,
            "/v1/crm--dev/triggers/hidden/deliveries",
            Some(&scoped),
            None,
        )
        .await;
    assert_eq!(st, 403);
    let (st, _) = s
        .call(Method::GET, "/v1/crm--dev/triggers", Some(&elsewhere), None)
        .await;
    assert_eq!(st, 403);

    // The Admin MCP applies the same rules (the same service calls).
    let mut rpc = crate::mcp_auth::Rpc::new(&s, "/mcp", Some(&reader));
    rpc.initialize().await;
    let mut args = body("f", "contacts");
    args["action"] = json!("create");
    args["workspace_id"] = json!("crm--dev");
    let (_, _, r) = rpc.call("manage_trigger", args.clone()).await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert_eq!(
        r["result"]["structuredContent"]["error"]["code"], "FORBIDDEN",
        "{r}"
    );
    let (_, _, r) = rpc
        .call(
            "manage_trigger",
            json!({"action": "list", "workspace_id": "crm--dev"}),
        )
        .await;
    assert_eq!(r["result"]["structuredContent"]["meta"]["total"], 4, "{r}");
    let (_, _, r) = rpc
        .call("manage_hook", json!({"action": "create", "workspace_id": "crm--dev", "name": "h", "collection": "contacts"}))
        .await;
    assert_eq!(
        r["result"]["structuredContent"]["error"]["code"], "FORBIDDEN",
        "{r}"
    );
    let mut rpc = crate::mcp_auth::Rpc::new(&s, "/mcp", Some(&s.admin));
    rpc.initialize().await;
    let (_, _, r) = rpc.call("manage_trigger", args).await;
    assert_ne!(r["result"]["isError"], true, "{r}");
    assert!(
        r["result"]["structuredContent"]["secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    let (_, _, r) = rpc
        .call(
            "manage_trigger",
            json!({"action": "get", "workspace_id": "crm--dev", "trigger_id": "f"}),
        )
        .await;
    assert!(
        !r.to_string().contains("whsec_"),
        "get never shows a secret: {r}"
    );
}
