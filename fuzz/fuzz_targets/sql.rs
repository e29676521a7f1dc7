//! The SQL guard and translator: `sql::check::check` and
//! `sql::translate::translate`, run the way `sql::query` runs them
//! (translate, then check the result), and `check` on the raw text too.
//!
//! Invariants: nothing panics; translating SQL the tokenizer reads yields
//! SQL it still reads; a query with none of the ClickHouse forms (`{…}`
//! parameters, `FINAL`, `data.…`, `CAST(x, 'T')`) passes through unchanged
//! (strings, quoted names and comments are never touched); parameters are
//! bound once each, and `{workspace_id:…}` is always the caller's
//! workspace whatever the request says.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mcp_factory::sql::SqlError;
use mcp_factory::sql::check::check;
use mcp_factory::sql::translate::translate;
use rusqlite::types::Value as SqlValue;
use serde_json::{Map, Value, json};

const WORKSPACE: &str = "crm";

/// The request's `params`: one of each JSON type, and a `workspace_id`
/// that must not win.
static PARAMS: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    let v = json!({
        "workspace_id": "other", "s": "it's", "n": 5, "f": 1.5, "b": true,
        "z": null, "big": 1e300, "neg": -1, "num": "42", "obj": {"a": [1]}
    });
    v.as_object().cloned().unwrap_or_default()
});

fn unreadable(e: &SqlError) -> bool {
    matches!(e, SqlError::Invalid(m) if m.starts_with("cannot read the query"))
}

fuzz_target!(|data: &[u8]| {
    // Queries arrive as JSON strings: always UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The guard on its own, on anything (translation only adds to this).
    let _ = check(text);
    let Ok(tr) = translate(text, WORKSPACE, &PARAMS) else {
        return;
    };
    if let Err(e) = &check(&tr.sql) {
        assert!(
            !unreadable(e),
            "translating {text:?} gave unreadable SQL {:?}: {e}",
            tr.sql
        );
    }
    let lower = text.to_ascii_lowercase();
    if !["{", "final", "data", "cast"]
        .iter()
        .any(|w| lower.contains(w))
    {
        // The tokenizer reads `\r\n` and `\r` as one newline token.
        let lines = |s: &str| s.replace("\r\n", "\n").replace('\r', "\n");
        assert_eq!(
            lines(&tr.sql),
            lines(text),
            "a query without ClickHouse forms changed"
        );
    }
    for (i, (name, value)) in tr.binds.iter().enumerate() {
        assert!(name.starts_with(":p_"), "{name}");
        assert!(
            tr.binds[..i].iter().all(|(n, _)| n != name),
            "{name} bound twice"
        );
        if name == ":p_workspace_id" {
            assert_eq!(value, &SqlValue::Text(WORKSPACE.into()));
        }
    }
});
