//! The SQL guard and translator: `sql::check::check` and
//! `sql::translate::translate`, run the way `sql::query` runs them
//! (translate, then check the result), and `check` on the raw text too.
//!
//! Invariants: nothing panics; translating SQL the tokenizer reads yields
//! SQL it still reads; a query with none of the ClickHouse forms (`{…}`
//! parameters, `FINAL`, `data.…`, `CAST(x, 'T')`) reads back as the same
//! tokens but for whitespace (strings, quoted names and comments are never
//! touched); parameters are bound once each, and `{workspace_id:…}` is
//! always the caller's workspace whatever the request says.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mcp_factory::sql::check::check;
use mcp_factory::sql::translate::{tokenize, translate};
use rusqlite::types::Value as SqlValue;
use serde_json::{Map, Value, json};
use sqlparser::tokenizer::{Token, Whitespace};

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

/// The tokens that carry meaning: all but spaces, tabs and line breaks
/// (which printing tokens may change: `\r\n` becomes `\n`, a form feed a
/// space, a `--` comment gets a line break of its own).
fn meaningful(tokens: Vec<Token>) -> Vec<Token> {
    tokens
        .into_iter()
        .filter(|t| {
            !matches!(
                t,
                Token::Whitespace(Whitespace::Space | Whitespace::Tab | Whitespace::Newline)
            )
        })
        .collect()
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
    let _ = check(&tr.sql);
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

    // What translation leaves alone reaches SQLite exactly as written
    // (translate copies untouched tokens from the text: the open findings of
    // earlier runs, E'…'/U&'…' and hex strings printed back differently and
    // a name glued to a placeholder, are fixed and kept as regressions).
    let tokens = tokenize(text).expect("translate read it");
    let out = tokenize(&tr.sql)
        .unwrap_or_else(|e| panic!("translating {text:?} gave unreadable SQL {:?}: {e}", tr.sql));
    let lower = text.to_ascii_lowercase();
    if !["{", "final", "data", "cast"]
        .iter()
        .any(|w| lower.contains(w))
    {
        assert_eq!(
            tr.sql, text,
            "a query without ClickHouse forms changed: {text:?} became {:?}",
            tr.sql
        );
        assert_eq!(meaningful(out), meaningful(tokens));
    }
});
