//! Lists and queries with bounded work ("[trust 2/2]", defect 5): a list
//! used to decode and sort the whole collection for every page and count
//! `meta.total` by scanning it. Now pages stop early where the order allows,
//! sorted pages keep only the best `offset + limit`, and `total` comes from
//! a per-collection count. These tests pin that the pages did not change:
//! every combination of filter, sort, offset and limit equals a stable sort
//! of all matches in id order, computed here from what was written.

use std::cmp::Ordering;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Server, contacts_schema};

const STAGES: [&str; 4] = ["lead", "won", "negotiation", "won"];

/// The test's own reading of a filter: whether a record matches.
type Keep = Box<dyn Fn(&Value) -> bool>;

/// The order the API documents: missing/null < bool < number < string <
/// array < object.
fn cmp_json(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let rank = |v: Option<&Value>| match v {
        None | Some(Value::Null) => 0,
        Some(Value::Bool(_)) => 1,
        Some(Value::Number(_)) => 2,
        Some(Value::String(_)) => 3,
        Some(Value::Array(_)) => 4,
        Some(Value::Object(_)) => 5,
    };
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().partial_cmp(&y.as_f64()).unwrap()
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn at<'a>(r: &'a Value, field: &str) -> Option<&'a Value> {
    field.split('.').try_fold(r, |v, k| v.get(k))
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// 40 contacts: values with many ties and some missing, stages with ties,
/// external ids on some; then 6 of them deleted. Returns every record as
/// last written, in id order.
async fn fill(s: &Server) -> Vec<Value> {
    let ops: Vec<Value> = (0..40)
        .map(|i| {
            let mut data = json!({"name": format!("N{i:02}")});
            if i % 5 != 0 {
                data["value"] = json!((i % 7) as f64);
            }
            if i % 6 != 0 {
                data["stage"] = json!(STAGES[i % 4]);
            }
            let mut op = json!({"type": "upsert_record", "collection": "contacts", "data": data});
            if i % 3 == 0 {
                op["external_id"] = json!(format!("ext-{}", i % 9));
                op["external_source"] = json!(format!("src-{i}"));
            }
            op
        })
        .collect();
    let out = s
        .ok(
            Method::POST,
            "/v1/crm/batch",
            Some(json!({"operations": ops})),
        )
        .await;
    let mut records: Vec<Value> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].clone())
        .collect();
    for i in [1, 7, 12, 20, 33, 39] {
        let id = records[i]["id"].as_str().unwrap().to_string();
        records[i] = s
            .ok(
                Method::DELETE,
                &format!("/v1/crm/records/contacts/{id}"),
                None,
            )
            .await;
    }
    records.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    records
}

#[tokio::test]
async fn pages_equal_a_stable_sort_of_all_matches_for_every_combination() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    let records = fill(&s).await;
    let some_ids = json!([
        records[3]["id"],
        records[20]["id"],
        "no-such-id",
        records[3]["id"]
    ]);
    let filters: Vec<(Value, Keep)> = vec![
        (Value::Null, Box::new(|_| true)),
        (
            json!({"field": "data.stage", "op": "eq", "value": "won"}),
            Box::new(|r| at(r, "data.stage") == Some(&json!("won"))),
        ),
        (
            json!({"field": "data.value", "op": "gt", "value": 2}),
            Box::new(|r| {
                at(r, "data.value")
                    .and_then(Value::as_f64)
                    .is_some_and(|v| v > 2.0)
            }),
        ),
        (
            json!({"field": "id", "op": "in", "value": some_ids.clone()}),
            Box::new({
                let some = some_ids.clone();
                move |r| some.as_array().unwrap().contains(&r["id"])
            }),
        ),
        (
            json!([{"field": "external_id", "op": "eq", "value": "ext-3"},
                   {"field": "data.name", "op": "ne", "value": "nobody"}]),
            Box::new(|r| r["external_id"] == json!("ext-3")),
        ),
    ];
    let sorts: Vec<Vec<(&str, bool)>> = vec![
        vec![],
        vec![("data.value", false)],
        vec![("data.value", true)],
        vec![("data.stage", false), ("data.value", true)],
        vec![("id", true)],
        // Many records of one batch share a millisecond: ties keep id order.
        vec![("created_at", true)],
    ];
    let pages = [(0, 5), (3, 10), (0, 1000), (30, 10), (100, 5)];
    let mut checked = 0;
    for include_deleted in [false, true] {
        for (filter, keep) in &filters {
            for sort in &sorts {
                let mut expected: Vec<&Value> = records
                    .iter()
                    .filter(|r| include_deleted || r["deleted"] == json!(false))
                    .filter(|r| keep(r))
                    .collect();
                // Stable: equal keys stay in id order.
                expected.sort_by(|a, b| {
                    sort.iter()
                        .map(|(f, desc)| {
                            let o = cmp_json(at(a, f), at(b, f));
                            if *desc { o.reverse() } else { o }
                        })
                        .find(|o| *o != Ordering::Equal)
                        .unwrap_or(Ordering::Equal)
                });
                let sort_json: Vec<Value> = sort
                    .iter()
                    .map(|(f, desc)| json!({"field": f, "order": if *desc {"desc"} else {"asc"}}))
                    .collect();
                for (offset, limit) in pages {
                    let body = json!({"filter": filter, "sort": sort_json, "offset": offset,
                                      "limit": limit, "include_deleted": include_deleted});
                    let page = s
                        .ok(
                            Method::POST,
                            "/v1/crm/records/contacts/query",
                            Some(body.clone()),
                        )
                        .await;
                    let want: Vec<String> = expected
                        .iter()
                        .skip(offset)
                        .take(limit)
                        .map(|r| r["id"].as_str().unwrap().to_string())
                        .collect();
                    assert_eq!(ids(&page), want, "{body}");
                    assert_eq!(page["meta"]["total"], expected.len(), "{body}");
                    assert_eq!(page["meta"]["offset"], offset);
                    assert_eq!(page["meta"]["limit"], limit);
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 2 * 5 * 6 * 5);
    // The plain list (REST GET) is the default order without deleted ones.
    let list = s
        .ok(
            Method::GET,
            "/v1/crm/records/contacts?limit=7&offset=2",
            None,
        )
        .await;
    let live: Vec<String> = records
        .iter()
        .filter(|r| r["deleted"] == json!(false))
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids(&list), live[2..9]);
    assert_eq!(list["meta"]["total"], 34);
}

async fn totals(s: &Server, ws: &str) -> (Value, Value) {
    let live = s
        .ok(
            Method::GET,
            &format!("/v1/{ws}/records/contacts?limit=1"),
            None,
        )
        .await;
    let all = s
        .ok(
            Method::POST,
            &format!("/v1/{ws}/records/contacts/query"),
            Some(json!({"include_deleted": true, "limit": 1})),
        )
        .await;
    (live["meta"]["total"].clone(), all["meta"]["total"].clone())
}

#[tokio::test]
async fn total_follows_creates_deletes_restores_and_restarts() {
    let mut s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    assert_eq!(totals(&s, "crm").await, (json!(0), json!(0)));
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = s
            .ok(
                Method::PUT,
                "/v1/crm/records/contacts",
                Some(json!({"data": {"name": format!("N{i}")}})),
            )
            .await;
        ids.push(r["id"].as_str().unwrap().to_string());
    }
    // An update is not a new record.
    s.ok(
        Method::PATCH,
        &format!("/v1/crm/records/contacts/{}", ids[0]),
        Some(json!({"data": {"stage": "won"}})),
    )
    .await;
    assert_eq!(totals(&s, "crm").await, (json!(3), json!(3)));
    s.ok(
        Method::DELETE,
        &format!("/v1/crm/records/contacts/{}", ids[1]),
        None,
    )
    .await;
    assert_eq!(totals(&s, "crm").await, (json!(2), json!(3)));
    // A second delete of the same record finds nothing and changes nothing.
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/v1/crm/records/contacts/{}", ids[1]),
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::NOT_FOUND);
    assert_eq!(totals(&s, "crm").await, (json!(2), json!(3)));
    // Restoring (an upsert of the deleted record) brings it back once.
    s.ok(
        Method::PUT,
        "/v1/crm/records/contacts",
        Some(json!({"id": ids[1], "data": {"name": "back"}})),
    )
    .await;
    assert_eq!(totals(&s, "crm").await, (json!(3), json!(3)));
    // Totals are stored, not rebuilt from memory.
    s.restart();
    assert_eq!(totals(&s, "crm").await, (json!(3), json!(3)));
    // A preview has its own data and counts; deleting its collection drops them.
    s.ok(
        Method::PUT,
        "/v1/crm--dev/records/contacts",
        Some(json!({"data": {"name": "dev"}})),
    )
    .await;
    assert_eq!(totals(&s, "crm--dev").await, (json!(1), json!(1)));
    s.ok(
        Method::DELETE,
        "/v1/crm--dev/collections/contacts?force=true",
        None,
    )
    .await;
    s.ok(
        Method::PUT,
        "/v1/crm--dev/collections/contacts",
        Some(json!({"schema": contacts_schema()})),
    )
    .await;
    assert_eq!(totals(&s, "crm--dev").await, (json!(0), json!(0)));
    assert_eq!(totals(&s, "crm").await, (json!(3), json!(3)));
}

#[tokio::test]
async fn operations_pages_count_what_the_reader_may_see() {
    let s = Server::start();
    s.setup("crm", "contacts", contacts_schema()).await;
    s.ok(
        Method::PUT,
        "/v1/crm--dev/collections/deals",
        Some(json!({"schema": {}})),
    )
    .await;
    s.ok(
        Method::POST,
        "/v1/workspaces/crm/promote",
        Some(json!({"from": "crm--dev"})),
    )
    .await;
    for i in 0..4 {
        for coll in ["contacts", "deals"] {
            s.ok(
                Method::PUT,
                &format!("/v1/crm/records/{coll}"),
                Some(json!({"data": {"name": format!("N{i}")}})),
            )
            .await;
        }
    }
    let all = s
        .ok(Method::GET, "/v1/crm/operations?after=0&limit=1000", None)
        .await;
    let n = all["data"].as_array().unwrap().len();
    assert_eq!(all["meta"]["total"], n);
    let last = all["data"][n - 1]["seq"].as_u64().unwrap();
    let page = s
        .ok(Method::GET, "/v1/crm/operations?after=2&limit=3", None)
        .await;
    let seqs: Vec<u64> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 4, 5]);
    assert_eq!(page["meta"]["total"], last - 2);
    let end = s
        .ok(
            Method::GET,
            &format!("/v1/crm/operations?after={last}"),
            None,
        )
        .await;
    assert_eq!(end["meta"]["total"], 0);
    assert_eq!(end["data"], json!([]));
    // A token for one collection sees and counts only its entries.
    let t = s
        .token(
            "contacts-only",
            json!([{"scope": {"workspaces": ["crm"], "collections": ["contacts"]},
                    "permissions": ["read:records"]}]),
        )
        .await;
    let (st, mine) = s
        .call(
            Method::GET,
            "/v1/crm/operations?after=0&limit=2",
            Some(&t),
            None,
        )
        .await;
    assert!(st.is_success(), "{mine}");
    assert_eq!(mine["meta"]["total"], 4);
    assert_eq!(mine["data"].as_array().unwrap().len(), 2);
    assert!(
        mine["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["target"]["collection"] == "contacts")
    );
}
