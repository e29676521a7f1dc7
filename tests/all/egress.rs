//! SSRF-safe egress through triggers: destinations that are not public are
//! refused with the rule that refused them, at create time where the URL
//! alone shows it and at delivery otherwise; redirects are never followed.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Receiver, Server, contacts_schema};

async fn create(s: &Server, url: &str) -> (StatusCode, serde_json::Value) {
    s.call(
        Method::POST,
        "/v1/crm--dev/triggers",
        Some(&s.admin),
        Some(json!({"name": "t", "collection": "contacts", "url": url, "events": ["create"]})),
    )
    .await
}

/// A name in /etc/hosts for a loopback address that is not `localhost`
/// (the name-based rule catches that one without DNS).
fn loopback_name() -> String {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    for line in hosts.lines() {
        let mut parts = line.split('#').next().unwrap_or("").split_whitespace();
        let Some(addr) = parts
            .next()
            .and_then(|a| a.parse::<std::net::IpAddr>().ok())
        else {
            continue;
        };
        if !addr.is_loopback() {
            continue;
        }
        if let Some(name) = parts.find(|n| {
            let n = n.to_ascii_lowercase();
            n != "localhost"
                && !n.ends_with(".localhost")
                && !n.ends_with(".localdomain")
                && n.contains(|c: char| c.is_ascii_alphabetic())
        }) {
            return name.to_string();
        }
    }
    panic!(
        "this test needs a name for a loopback address in /etc/hosts other than localhost (e.g. ip6-localhost); found none in:\n{hosts}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_destinations_are_refused_naming_the_rule() {
    let s = Server::start(); // no --egress-allow
    s.setup("crm", "contacts", contacts_schema()).await;
    for (url, rule) in [
        (
            "http://127.0.0.1:8080/hook",
            "127.0.0.1 is a loopback address",
        ),
        ("https://127.0.0.1/hook", "loopback"),
        ("http://localhost:8080/hook", "local name"),
        (
            "http://[::ffff:127.0.0.1]/hook",
            "written as the IPv6 address",
        ),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://0x7f.1/hook", "127.0.0.1 is a loopback address"),
        ("https://10.0.0.8/hook", "private"),
        ("https://[fd00::1]/hook", "unique-local"),
        ("http://hooks.example.com/in", "plain http"),
        ("ftp://hooks.example.com/in", "scheme 'ftp'"),
        ("https://user:pw@hooks.example.com/in", "user info"),
        ("not a url", "not a URL"),
    ] {
        let (st, v) = create(&s, url).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{url}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(rule), "{url}: {msg} (want '{rule}')");
        assert_eq!(v["error"]["details"]["at"], "url", "{v}");
    }
    let listed = s.ok(Method::GET, "/v1/crm--dev/triggers", None).await;
    assert_eq!(listed["meta"]["total"], 0, "nothing was created");

    // A name only DNS can tell about passes create, and is refused at
    // delivery, once resolved: the attempt says why.
    let name = loopback_name();
    let (st, v) = create(&s, &format!("https://{name}:9/hook")).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    s.ok(
        Method::POST,
        "/v1/crm--dev/records/contacts",
        Some(json!({"data": {"name": "Ada"}})),
    )
    .await;
    let pending = s
        .poll("/v1/crm--dev/triggers/t/deliveries", 200, |v| {
            v["data"][0]["attempts"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        })
        .await;
    let error = pending["data"][0]["attempts"][0]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{pending}"));
    assert!(
        error.contains("resolves only to addresses that are not global")
            && error.contains("loopback"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_never_followed() {
    let s = Server::start_with(&[
        "--egress-allow",
        "127.0.0.1",
        "--delivery-schedule",
        "0s,60s",
    ]);
    let rx = Receiver::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let (st, v) = create(&s, &format!("{}/in", rx.url)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    // Even to a destination that is allowed: deliveries go to the trigger's URL only.
    rx.control(
        &[v["secret"].as_str().unwrap()],
        json!({"redirect": format!("{}/landed", rx.url)}),
    )
    .await;
    s.ok(
        Method::POST,
        "/v1/crm--dev/records/contacts",
        Some(json!({"data": {"name": "Ada"}})),
    )
    .await;
    let pending = s
        .poll("/v1/crm--dev/triggers/t/deliveries", 200, |v| {
            v["data"][0]["attempts"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        })
        .await;
    let a = &pending["data"][0]["attempts"][0];
    assert_eq!(a["status"], 302, "{pending}");
    assert!(a["error"].as_str().unwrap().contains("not followed"), "{a}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let got = rx.requests();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["path"], "/in");
}
