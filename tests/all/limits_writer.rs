//! The writer under hostile load: schema validation never runs on the single
//! writer thread, so one tenant's costly schema cannot hold up another
//! tenant's writes. (Queue bounds, poisoned and panicking jobs are covered by
//! the writer's own tests in `host/src/store/writer.rs`.)

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Server, contacts_schema};

/// A schema whose validation doubles with each level of nesting: both
/// branches of every `anyOf` recurse, and both fail at the bottom.
fn branching_schema() -> Value {
    let branch =
        json!({"type": "object", "required": ["c"], "properties": {"c": {"$ref": "#/$defs/n"}}});
    json!({"$defs": {"n": {"anyOf": [branch, branch]}}, "$ref": "#/$defs/n"})
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(json!({}), |inner, _| json!({"c": inner}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_costly_schema_in_one_workspace_does_not_hold_up_anothers_writes() {
    let s = Server::start();
    s.setup("slow", "nodes", branching_schema()).await;
    s.setup("calm", "contacts", contacts_schema()).await;

    // Calibrate: the depth at which one validation takes at least 2 s.
    let mut depth = 12;
    let took = loop {
        let t = Instant::now();
        let (status, _) = s
            .call(
                Method::PUT,
                "/v1/slow/records/nodes",
                Some(&s.admin),
                Some(json!({"data": nested(depth)})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "the bottom fails both branches"
        );
        let took = t.elapsed();
        if took >= Duration::from_secs(2) || depth >= 30 {
            eprintln!("one validation at depth {depth} took {took:?}");
            break took;
        }
        depth += 1;
    };
    assert!(
        took >= Duration::from_secs(2),
        "validation at depth {depth} took only {took:?}"
    );

    let url = s.url.clone();
    let (http, admin) = (s.http.clone(), s.admin.clone());
    let slow = tokio::spawn(async move {
        let r = http
            .put(format!("{url}/v1/slow/records/nodes"))
            .bearer_auth(admin)
            .json(&json!({"data": nested(depth + 1)}))
            .send()
            .await
            .unwrap();
        (r.status(), Instant::now())
    });
    // Let the costly check start, then write elsewhere.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..5 {
        s.ok(
            Method::PUT,
            "/v1/calm/records/contacts",
            Some(json!({"data": {"name": format!("c{i}")}})),
        )
        .await;
    }
    let calm_done = Instant::now();
    let (status, slow_done) = slow.await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        calm_done < slow_done,
        "the other workspace's writes finished while the costly validation ran ({:?} before it)",
        slow_done - calm_done
    );
    let list = s.ok(Method::GET, "/v1/calm/records/contacts", None).await;
    assert_eq!(list["meta"]["total"], 5);
}
