//! JSON-RPC messages: `mcp::parse_message`, which reads every message of
//! the legacy SSE transport and explains every POST body rmcp refuses.
//!
//! Invariants: nothing panics on any bytes; a refusal is a 400 whose body
//! is a JSON-RPC 2.0 error without an id, code -32700 exactly when the
//! body is not JSON and -32600 otherwise; a parsed message serializes.
#![no_main]

use axum::http::StatusCode;
use libfuzzer_sys::fuzz_target;
use mcp_factory::mcp::parse_message;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    match parse_message(data) {
        Ok(message) => {
            serde_json::to_vec(&message).expect("a parsed message serializes");
        }
        Err(refusal) => {
            let (parts, body) = refusal.into_parts();
            assert_eq!(parts.status, StatusCode::BAD_REQUEST);
            let bytes = futures::executor::block_on(axum::body::to_bytes(body, usize::MAX))
                .expect("the refusal has a body");
            let err: Value = serde_json::from_slice(&bytes).expect("the refusal is JSON");
            assert_eq!(err["jsonrpc"], "2.0", "{err}");
            assert!(err.get("id").is_none_or(Value::is_null), "{err}");
            let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok();
            let want = if is_json { -32600 } else { -32700 };
            assert_eq!(err["error"]["code"], want, "{err}");
        }
    }
});
