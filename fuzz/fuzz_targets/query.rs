//! Record filters and sorts (`service::query`): what `GET …/records?filter=`
//! and the generated `list_*` tools take.
//!
//! The input is JSON. An object with a `filter`, `sort` or `records` key
//! gives each part; any other value is tried as a filter and as a sort, on
//! a few sample records.
//!
//! Invariants: nothing panics; a filter means the same wrapped in a list,
//! in `and`/`or` of one, or under two `not`s; a sort is a total order on
//! the records (reflexive, antisymmetric, transitive), so sorting by it is
//! well defined.
#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use mcp_factory::service::query::{Filter, Sort};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let mut records = vec![
        json!({"id": "r1", "collection": "deals", "version": 1, "deleted": false,
               "data": {"stage": "won", "value": 1200, "tags": ["vip"], "a": {"b": [1, 2.5, null]}}}),
        json!({"id": "r2", "collection": "deals", "version": 3, "deleted": true,
               "data": {"stage": "lost", "value": -1.5e3, "tags": [], "a": {"b": "x"}}}),
        json!({"id": "r3", "data": {"value": "1200", "stage": null}}),
        json!({"id": "r4", "data": {"value": 18446744073709551615u64, "stage": true}}),
        json!({"id": "r5", "data": {}}),
    ];
    let harness = v.as_object().filter(|o| {
        ["filter", "sort", "records"]
            .iter()
            .any(|k| o.contains_key(*k))
    });
    let (filter, sort) = match harness {
        Some(o) => {
            if let Some(Value::Array(extra)) = o.get("records") {
                records.extend(extra.iter().cloned());
            }
            (
                o.get("filter").cloned().unwrap_or(Value::Null),
                o.get("sort").cloned().unwrap_or(Value::Null),
            )
        }
        None => (v.clone(), v),
    };

    if let Ok(f) = Filter::parse(&filter) {
        let same = [
            json!([filter]),
            json!({"and": [filter]}),
            json!({"or": [filter]}),
            json!({"not": {"not": filter}}),
        ];
        for wrapped in same {
            let g = Filter::parse(&wrapped).expect("a valid filter stays valid when wrapped");
            for r in &records {
                assert_eq!(f.matches(r), g.matches(r), "{wrapped} on {r}");
            }
        }
    }

    if let Ok(sorts) = Sort::parse(&sort) {
        let cmp = |a: &Value, b: &Value| Sort::compare(&sorts, a, b);
        for a in &records {
            assert_eq!(cmp(a, a), Ordering::Equal, "not reflexive on {a}");
            for b in &records {
                assert_eq!(cmp(a, b), cmp(b, a).reverse(), "not antisymmetric: {a} {b}");
                for c in &records {
                    if cmp(a, b) != Ordering::Greater && cmp(b, c) != Ordering::Greater {
                        assert_ne!(cmp(a, c), Ordering::Greater, "not transitive: {a} {b} {c}");
                    }
                }
            }
        }
        let mut sorted = records.clone();
        sorted.sort_by(cmp);
        assert!(
            sorted
                .windows(2)
                .all(|w| cmp(&w[0], &w[1]) != Ordering::Greater)
        );
    }
});
