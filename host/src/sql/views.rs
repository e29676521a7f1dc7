//! One view per collection, named after it, with a column per top-level
//! property of its JSON Schema (typed from the schema), so an agent can
//! write `SELECT customer, sum(amount) FROM invoices GROUP BY customer`.
//! Views show live records (not deleted) and keep `id`, `data` and the
//! record's metadata beside the properties.

use super::Collection;
use super::paths::{Cast, Hidden, HiddenSet};
use super::vtab::Kind;

/// Record columns a view keeps; a property with one of these names is
/// still reachable through `data`.
const META: &[&str] = &[
    "id",
    "data",
    "external_id",
    "external_source",
    "created_at",
    "updated_at",
    "version",
    "archived",
    "cancelled",
];

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The SQL expression for property `p` of type `ty` (JSON Schema): a
/// hidden column of `records` where one can stand for it (read while
/// scanning, and groupable by the table), else SQLite's own expression.
fn column(p: &str, ty: Option<&str>, hidden: &mut HiddenSet) -> String {
    let cast = match ty {
        Some("integer") => Some(Cast::Integer),
        Some("number") => Some(Cast::Real),
        // `->` marks its result as JSON (SQLite's subtype), which a column cannot.
        Some("object" | "array") => None,
        _ => Some(Cast::None),
    };
    if let Some(cast) = cast
        && let Some(h) = hidden.add(Hidden {
            keys: vec![p.to_string()],
            cast,
        })
    {
        return h.ident();
    }
    let path = format!("'$.\"{p}\"'");
    match ty {
        Some("integer") => format!("CAST(data ->> {path} AS INTEGER)"),
        Some("number") => format!("CAST(data ->> {path} AS REAL)"),
        Some("object" | "array") => format!("data -> {path}"),
        _ => format!("data ->> {path}"),
    }
}

/// `CREATE TEMP VIEW` statements for `collections`.
/// A collection named like a base table gets no view (use `records`).
pub fn ddl(collections: &[&Collection], hidden: &mut HiddenSet) -> Vec<String> {
    let base: Vec<String> = Kind::ALL
        .iter()
        .map(|k| k.name().to_string_lossy().into_owned())
        .collect();
    let mut out = Vec::new();
    for c in collections {
        let name = c.id.as_str();
        if base.iter().any(|b| b == name) {
            continue;
        }
        let mut cols: Vec<String> = vec!["id".into()];
        if let Some(props) = c.schema["properties"].as_object() {
            for (p, spec) in props {
                let usable =
                    !META.contains(&p.as_str()) && !p.contains(['"', '\'', '\\']) && !p.is_empty();
                if usable {
                    let ty = spec["type"].as_str();
                    cols.push(format!("{} AS {}", column(p, ty, hidden), quote_ident(p)));
                }
            }
        }
        cols.extend(META[1..].iter().map(|m| m.to_string()));
        out.push(format!(
            "CREATE TEMP VIEW {} AS SELECT {} FROM records WHERE collection = '{}' AND deleted = 0",
            quote_ident(name),
            cols.join(", "),
            name.replace('\'', "''"),
        ));
    }
    out
}
