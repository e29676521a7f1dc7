//! Batch operations: `service::batch::parse`, which every batch (REST,
//! Admin MCP, the `batch` tool of an endpoint) goes through before anything
//! is written.
//!
//! The input is JSON: an array is the batch, any other value a batch of one.
//!
//! Invariants: nothing panics; a batch of 1 to 1,000 operations parses
//! exactly when every operation parses on its own; otherwise the error is a
//! validation error listing every failing index once, in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_factory::service::ServiceError;
use mcp_factory::service::batch::{MAX_OPERATIONS, parse};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let raw = match v {
        Value::Array(items) => items,
        one => vec![one],
    };
    let result = parse(&raw);
    if raw.is_empty() || raw.len() > MAX_OPERATIONS {
        assert!(
            result.is_err(),
            "a batch of {} operations parsed",
            raw.len()
        );
        return;
    }
    let failing: Vec<usize> = (0..raw.len())
        .filter(|&i| parse(std::slice::from_ref(&raw[i])).is_err())
        .collect();
    match result {
        Ok(ops) => {
            assert!(failing.is_empty(), "parsed, yet {failing:?} fail alone");
            assert_eq!(ops.len(), raw.len());
        }
        Err(ServiceError::Validation { message, details }) => {
            let listed: Vec<usize> = details["failed"]
                .as_array()
                .expect("the failing operations are listed")
                .iter()
                .map(|f| {
                    assert_eq!(f["code"], "VALIDATION_ERROR");
                    usize::try_from(f["index"].as_u64().expect("an index")).expect("fits")
                })
                .collect();
            assert_eq!(listed, failing, "{message}");
            assert!(message.contains("nothing was written"), "{message}");
        }
        Err(other) => panic!("not a validation error: {other:?}"),
    }
});
