//! Printing REST responses: `--json` prints the body as is; otherwise lists
//! become tables with the columns that matter and single objects a
//! two-column field/value table.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::Value;

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            let s = other.to_string();
            if s.len() > 80 {
                format!(
                    "{}…",
                    &s[..s.char_indices().nth(79).map_or(s.len(), |(i, _)| i)]
                )
            } else {
                s
            }
        }
    }
}

/// Prints `body`: `columns` are JSON pointers used when it is a list page.
pub fn print(body: &Value, json: bool, columns: &[&str]) {
    if json {
        println!("{}", serde_json::to_string_pretty(body).unwrap_or_default());
        return;
    }
    if let Some(rows) = body.get("data").and_then(Value::as_array) {
        let mut t = Table::new();
        t.load_preset(UTF8_BORDERS_ONLY);
        t.set_header(
            columns
                .iter()
                .map(|c| c.trim_start_matches('/').replace('/', ".")),
        );
        for r in rows {
            t.add_row(columns.iter().map(|c| cell(r.pointer(c))));
        }
        println!("{t}");
        if let Some(total) = body.pointer("/meta/total") {
            println!("{} of {total}", rows.len());
        }
        return;
    }
    match body.as_object() {
        Some(obj) => {
            let mut t = Table::new();
            t.load_preset(UTF8_BORDERS_ONLY);
            for (k, v) in obj {
                let text = match v {
                    Value::Object(_) | Value::Array(_) => {
                        serde_json::to_string_pretty(v).unwrap_or_default()
                    }
                    other => cell(Some(other)),
                };
                t.add_row(vec![k.clone(), text]);
            }
            println!("{t}");
        }
        None => println!("{body}"),
    }
}
