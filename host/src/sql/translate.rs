//! Rekor/ClickHouse query forms → SQLite, on sqlparser's tokens (strings,
//! quoted names and comments are never touched):
//!
//! - `{name:Type}` parameters become bound SQLite parameters; `workspace_id`
//!   is always the caller's workspace, whatever the request says;
//! - `FROM records FINAL` drops `FINAL` (our reads are always final);
//! - `data.a.b.:Type` and `data.a.b` become `data ->> '$.a.b'` (cast to the
//!   SQLite type of `Type` when given);
//! - `CAST(x, 'Float64')` becomes `CAST(x AS REAL)`.

use rusqlite::types::Value as SqlValue;
use serde_json::{Map, Value};
use sqlparser::dialect::GenericDialect;
use sqlparser::tokenizer::{Token, Tokenizer, Word};

use super::SqlError;

/// A query ready for SQLite, with its parameter values.
#[derive(Debug)]
pub struct Translated {
    pub sql: String,
    /// (SQLite parameter name with its `:`, value).
    pub binds: Vec<(String, SqlValue)>,
}

pub fn tokenize(text: &str) -> Result<Vec<Token>, SqlError> {
    Ok(tokenize_as_written(text)?
        .into_iter()
        .map(|(t, _)| t)
        .collect())
}

/// The tokens of `text`, each with the text it was read from, so that what
/// the translation leaves alone reaches SQLite exactly as written (printing
/// a token back can differ: `E'…'` and `0x'…'` strings, say).
pub(super) fn tokenize_as_written(text: &str) -> Result<Vec<(Token, String)>, SqlError> {
    let spanned = Tokenizer::new(&GenericDialect {}, text)
        .with_unescape(false) // so tokens print back as written: 'it''s', "a""b"
        .tokenize_with_location()
        .map_err(|e| SqlError::Invalid(format!("cannot read the query: {e}")))?;
    // Byte offset of each token's start (lines and columns count from 1,
    // columns in characters).
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let offset = |line: u64, column: u64| -> Option<usize> {
        let start = *line_starts.get(usize::try_from(line).ok()?.checked_sub(1)?)?;
        let skip = usize::try_from(column).ok()?.checked_sub(1)?;
        let rest = text.get(start..)?;
        match rest.char_indices().nth(skip) {
            Some((i, _)) => Some(start + i),
            None if rest.chars().count() == skip => Some(text.len()),
            None => None,
        }
    };
    let starts: Option<Vec<usize>> = spanned
        .iter()
        .map(|t| offset(t.span.start.line, t.span.start.column))
        .collect();
    // The starts must tile the text; otherwise print tokens back.
    let tiles = starts
        .as_ref()
        .is_some_and(|s| s.first().is_none_or(|f| *f == 0) && s.windows(2).all(|w| w[0] < w[1]));
    Ok(match starts.filter(|_| tiles) {
        Some(starts) => spanned
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let end = starts.get(i + 1).copied().unwrap_or(text.len());
                (t.token, text[starts[i]..end].to_string())
            })
            .collect(),
        None => spanned
            .into_iter()
            .map(|t| {
                let s = t.token.to_string();
                (t.token, s)
            })
            .collect(),
    })
}

/// The SQLite type for a ClickHouse type name.
fn sqlite_type(t: &str) -> Result<&'static str, SqlError> {
    let lower = t.to_ascii_lowercase();
    Ok(match lower.as_str() {
        "string" | "fixedstring" | "uuid" | "date" | "date32" | "datetime" | "datetime64" => "TEXT",
        "float32" | "float64" | "decimal" | "double" | "real" => "REAL",
        "bool" | "boolean" => "INTEGER",
        _ if lower.starts_with("int") || lower.starts_with("uint") => "INTEGER",
        _ => {
            return Err(SqlError::Invalid(format!(
                "unsupported type '{t}'; use String, Int64, Float64 or Bool"
            )));
        }
    })
}

fn bind_value(name: &str, ty: &str, v: &Value) -> Result<SqlValue, SqlError> {
    let bad = || SqlError::Invalid(format!("parameter {{{name}:{ty}}}: {v} is not a {ty}"));
    Ok(match (sqlite_type(ty)?, v) {
        (_, Value::Null) => SqlValue::Null,
        ("TEXT", Value::String(s)) => SqlValue::Text(s.clone()),
        ("TEXT", other) => SqlValue::Text(other.to_string()),
        ("INTEGER", Value::Bool(b)) => SqlValue::Integer(i64::from(*b)),
        ("INTEGER", Value::Number(n)) => SqlValue::Integer(n.as_i64().ok_or_else(bad)?),
        ("INTEGER", Value::String(s)) => SqlValue::Integer(s.parse().map_err(|_| bad())?),
        ("REAL", Value::Number(n)) => SqlValue::Real(n.as_f64().ok_or_else(bad)?),
        ("REAL", Value::String(s)) => SqlValue::Real(s.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    })
}

fn is_word(t: Option<&Token>, text: &str) -> bool {
    matches!(t, Some(Token::Word(Word { value, quote_style: None, .. })) if value.eq_ignore_ascii_case(text))
}

fn word(t: Option<&Token>) -> Option<&Word> {
    match t {
        Some(Token::Word(w)) => Some(w),
        _ => None,
    }
}

/// Index of the previous / next token that is not whitespace.
fn prev(tokens: &[Token], i: usize) -> Option<usize> {
    (0..i)
        .rev()
        .find(|&j| !matches!(tokens[j], Token::Whitespace(_)))
}

fn next(tokens: &[Token], i: usize) -> Option<usize> {
    (i + 1..tokens.len()).find(|&j| !matches!(tokens[j], Token::Whitespace(_)))
}

/// A JSON path segment for SQLite: plain names as is, others quoted.
fn path_segment(w: &Word) -> Result<String, SqlError> {
    let v = &w.value;
    if v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(v.clone())
    } else if v.contains(['"', '\'', '\\']) {
        Err(SqlError::Invalid(format!(
            "field name {v:?} cannot be used in a data path; use json_extract"
        )))
    } else {
        Ok(format!("\"{v}\""))
    }
}

pub fn translate(
    text: &str,
    workspace: &str,
    params: &Map<String, Value>,
) -> Result<Translated, SqlError> {
    let (tokens, mut out): (Vec<Token>, Vec<String>) =
        tokenize_as_written(text)?.into_iter().unzip();
    let mut binds: Vec<(String, SqlValue)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        // {name:Type}
        if tokens[i] == Token::LBrace
            && let (
                Some(Token::Word(n)),
                Some(Token::Colon),
                Some(Token::Word(t)),
                Some(Token::RBrace),
            ) = (
                tokens.get(i + 1),
                tokens.get(i + 2),
                tokens.get(i + 3),
                tokens.get(i + 4),
            )
        {
            let name = n.value.as_str();
            let placeholder = format!(":p_{name}");
            let value = if name == "workspace_id" {
                SqlValue::Text(workspace.to_string())
            } else {
                let v = params.get(name).ok_or_else(|| {
                    SqlError::Invalid(format!(
                        "parameter {{{name}:{}}} has no value; pass it in \"params\": {{\"{name}\": …}}",
                        t.value
                    ))
                })?;
                bind_value(name, &t.value, v)?
            };
            sqlite_type(&t.value)?;
            if !binds.iter().any(|(p, _)| *p == placeholder) {
                binds.push((placeholder.clone(), value));
            }
            // What follows `}` must not run into the placeholder
            // (`{b:Bool}x` is `:p_b x`, not `:p_bx`; `#`, `@`, `$` continue
            // a name too): keep them apart unless a space or `)`/`,`/`;`
            // already does.
            let glued = out
                .get(i + 5)
                .and_then(|o| o.chars().next())
                .is_some_and(|c| !c.is_whitespace() && !"),;".contains(c));
            out[i] = if glued {
                format!("{placeholder} ")
            } else {
                placeholder
            };
            for o in &mut out[i + 1..=i + 4] {
                o.clear();
            }
            i += 5;
            continue;
        }
        // `table FINAL`
        if is_word(tokens.get(i), "final")
            && prev(&tokens, i).is_some_and(|p| word(tokens.get(p)).is_some())
        {
            out[i].clear();
            i += 1;
            continue;
        }
        // data.a.b[.:Type]
        if is_word(tokens.get(i), "data")
            && tokens.get(i + 1) == Some(&Token::Period)
            && word(tokens.get(i + 2)).is_some()
        {
            let mut segments = Vec::new();
            let mut j = i + 1;
            let mut ty = None;
            while tokens.get(j) == Some(&Token::Period) {
                match (tokens.get(j + 1), tokens.get(j + 2)) {
                    (Some(Token::Colon), Some(Token::Word(t))) => {
                        ty = Some(t.value.clone());
                        j += 3;
                        break;
                    }
                    (Some(Token::Word(w)), _) => {
                        segments.push(path_segment(w)?);
                        j += 2;
                    }
                    _ => break,
                }
            }
            let path = format!("data ->> '$.{}'", segments.join("."));
            out[i] = match ty {
                Some(t) => format!("CAST({path} AS {})", sqlite_type(&t)?),
                None => format!("({path})"),
            };
            for o in &mut out[i + 1..j] {
                o.clear();
            }
            i = j;
            continue;
        }
        i += 1;
    }
    rewrite_casts(&tokens, &mut out)?;
    Ok(Translated {
        sql: out.concat(),
        binds,
    })
}

/// `CAST(x, 'Type')` → `CAST(x AS TYPE)`.
fn rewrite_casts(tokens: &[Token], out: &mut [String]) -> Result<(), SqlError> {
    for i in 0..tokens.len() {
        if !is_word(tokens.get(i), "cast") {
            continue;
        }
        let Some(open) = next(tokens, i).filter(|&o| tokens[o] == Token::LParen) else {
            continue;
        };
        let mut depth = 0;
        let mut comma = None;
        for j in open..tokens.len() {
            match tokens[j] {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        if let Some(c) = comma
                            && let Some(s) = next(tokens, c)
                            && let Token::SingleQuotedString(ty) = &tokens[s]
                            && next(tokens, s) == Some(j)
                        {
                            out[c] = " AS ".into();
                            for o in &mut out[c + 1..s] {
                                o.clear(); // whitespace between the comma and the type
                            }
                            out[s] = sqlite_type(ty)?.into();
                        }
                        break;
                    }
                }
                Token::Comma if depth == 1 => comma = Some(j),
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(q: &str) -> String {
        translate(q, "crm", &Map::new()).expect("translates").sql
    }

    #[test]
    fn clickhouse_forms_become_sqlite() {
        assert_eq!(
            t(
                "SELECT * FROM records FINAL WHERE workspace_id = {workspace_id:String} AND deleted = false"
            ),
            "SELECT * FROM records  WHERE workspace_id = :p_workspace_id AND deleted = false"
        );
        assert_eq!(
            t(
                "SELECT data.title.:String as deal, CAST(data.value, 'Float64') as value FROM records"
            ),
            "SELECT CAST(data ->> '$.title' AS TEXT) as deal, CAST((data ->> '$.value') AS REAL) as value FROM records"
        );
        assert_eq!(
            t("SELECT data.a.b FROM x"),
            "SELECT (data ->> '$.a.b') FROM x"
        );
        // Strings and quoted names are left alone; SQLite forms pass through.
        assert_eq!(
            t("SELECT 'data.x FINAL', \"data\" FROM t"),
            "SELECT 'data.x FINAL', \"data\" FROM t"
        );
        assert_eq!(
            t("SELECT data->>'$.x', CAST(v AS INT) FROM t"),
            "SELECT data->>'$.x', CAST(v AS INT) FROM t"
        );
    }

    /// Found by the `sql` fuzz target: escaped quotes came back unescaped,
    /// so `'O''Brien'` broke and a string's contents became SQL.
    #[test]
    fn escaped_quotes_stay_escaped() {
        assert_eq!(
            t("SELECT 1 FROM t WHERE name = 'O''Brien'"),
            "SELECT 1 FROM t WHERE name = 'O''Brien'"
        );
        assert_eq!(
            t("SELECT 1 FROM t WHERE id = 'x'' OR ''1''=''1'"),
            "SELECT 1 FROM t WHERE id = 'x'' OR ''1''=''1'"
        );
        assert_eq!(t("SELECT \"a\"\"b\" FROM t"), "SELECT \"a\"\"b\" FROM t");
        // What is not translated reaches SQLite as written (the fuzz
        // target's open findings: E'…' strings, hex strings, a name glued
        // to a placeholder).
        for q in [
            "SELECT e'x'', secret FROM other\n--' FROM t",
            "H 0x'Float64'\0\0\0HERE ",
            "SELECT 'é''ü', \"ñ\"\n  FROM t WHERE x = 'a\nb'",
        ] {
            assert_eq!(t(q), q);
        }
        assert_eq!(
            t("SELECT {workspace_id:String}x"),
            "SELECT :p_workspace_id x"
        );
        assert_eq!(
            t("SELECT {workspace_id:String}#'\n"),
            "SELECT :p_workspace_id #'\n"
        );
        assert_eq!(
            t("SELECT ({workspace_id:String}), 1"),
            "SELECT (:p_workspace_id), 1"
        );
    }

    #[test]
    fn parameters_are_bound_and_workspace_is_forced() {
        let mut p = Map::new();
        p.insert("workspace_id".into(), Value::String("other".into()));
        p.insert("min".into(), serde_json::json!(5));
        let tr = translate(
            "SELECT 1 WHERE {workspace_id:String} = {workspace_id:String} AND x > {min:Int64}",
            "crm",
            &p,
        )
        .expect("translates");
        assert_eq!(
            tr.binds,
            vec![
                (":p_workspace_id".to_string(), SqlValue::Text("crm".into())),
                (":p_min".to_string(), SqlValue::Integer(5))
            ]
        );
        let err =
            translate("SELECT {missing:String}", "crm", &Map::new()).expect_err("missing param");
        assert!(
            err.to_string().contains("{missing:String} has no value"),
            "{err}"
        );
    }
}
