//! The read-only policy, first line: exactly one SELECT (or WITH … SELECT)
//! statement and no function that loads code or touches files. SQLite's
//! authorizer and `sqlite3_stmt_readonly` are the second line (see `mod.rs`).

use sqlparser::ast::{SetExpr, Statement};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Word};

use super::SqlError;
use super::translate::tokenize;

/// Functions never callable from sql_query.
pub(super) const DENIED_FUNCTIONS: &[&str] = &[
    "load_extension",
    "readfile",
    "writefile",
    "edit",
    "fts3_tokenizer",
];

fn words(tokens: &[Token]) -> impl Iterator<Item = (usize, &Word)> {
    tokens.iter().enumerate().filter_map(|(i, t)| match t {
        Token::Word(w) => Some((i, w)),
        _ => None,
    })
}

/// The kind of a statement for messages: its leading keyword(s).
fn kind(tokens: &[Token]) -> String {
    let mut ws = words(tokens).map(|(_, w)| w.value.to_ascii_uppercase());
    match ws.next() {
        Some(first) if ["CREATE", "DROP", "ALTER"].contains(&first.as_str()) => {
            let second = ws
                .find(|w| !["TEMP", "TEMPORARY", "UNIQUE", "VIRTUAL", "IF"].contains(&w.as_str()));
            format!("{first} {}", second.unwrap_or_default())
                .trim()
                .to_string()
        }
        Some(first) => first,
        None => "empty".into(),
    }
}

pub(super) fn refused_kind(kind: &str) -> SqlError {
    SqlError::Refused(format!(
        "{kind} statements are not allowed: sql_query is read-only. Send one SELECT (or WITH … SELECT)"
    ))
}

pub fn check(sql: &str) -> Result<(), SqlError> {
    let tokens = tokenize(sql)?;
    for (i, w) in words(&tokens) {
        let name = w.value.to_ascii_lowercase();
        let called = tokens[i + 1..]
            .iter()
            .find(|t| !matches!(t, Token::Whitespace(_)))
            == Some(&Token::LParen);
        if called && w.quote_style.is_none() && DENIED_FUNCTIONS.contains(&name.as_str()) {
            return Err(SqlError::Refused(format!(
                "function {name}() is not allowed: sql_query cannot load code or touch files"
            )));
        }
    }
    match Parser::parse_sql(&SQLiteDialect {}, sql) {
        Ok(stmts) => match stmts.as_slice() {
            [] => Err(SqlError::Invalid("the query is empty".into())),
            // `WITH … DELETE` parses as a query whose body writes.
            [Statement::Query(q)] => match q.body.as_ref() {
                SetExpr::Insert(_) => Err(refused_kind("INSERT")),
                SetExpr::Update(_) => Err(refused_kind("UPDATE")),
                SetExpr::Delete(_) => Err(refused_kind("DELETE")),
                SetExpr::Merge(_) => Err(refused_kind("MERGE")),
                _ => Ok(()),
            },
            [_] => Err(refused_kind(&kind(&tokens))),
            many => Err(SqlError::Refused(format!(
                "only one statement per query is allowed; found {}. Send them as separate queries",
                many.len()
            ))),
        },
        // sqlparser does not know every SQLite form: a statement that starts
        // like a query goes on to SQLite, which has the last word.
        Err(_) => {
            let k = kind(&tokens);
            if ["SELECT", "WITH", "VALUES"].contains(&k.as_str()) {
                Ok(())
            } else {
                Err(refused_kind(&k))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(sql: &str) -> String {
        match check(sql) {
            Err(SqlError::Refused(m)) => m,
            other => panic!("{sql}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn every_forbidden_kind_is_named() {
        assert!(refused("INSERT INTO records VALUES (1)").starts_with("INSERT"));
        assert!(refused("update records set data = '{}'").starts_with("UPDATE"));
        assert!(refused("DELETE FROM records").starts_with("DELETE"));
        assert!(refused("CREATE TABLE t(x)").starts_with("CREATE TABLE"));
        assert!(refused("CREATE TEMP VIEW v AS SELECT 1").starts_with("CREATE VIEW"));
        assert!(refused("DROP TABLE records").starts_with("DROP TABLE"));
        assert!(refused("ALTER TABLE records ADD COLUMN x").starts_with("ALTER TABLE"));
        assert!(refused("ATTACH DATABASE '/tmp/x' AS x").starts_with("ATTACH"));
        assert!(refused("PRAGMA table_info(records)").starts_with("PRAGMA"));
        assert!(refused("SELECT 1; SELECT 2").contains("only one statement"));
        assert!(refused("SELECT load_extension('/tmp/evil')").contains("load_extension()"));
        assert!(refused("WITH x AS (SELECT 1) DELETE FROM records").starts_with("DELETE"));
        assert!(check("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c").is_ok());
        assert!(check("SELECT data->>'$.stage', count(*) FROM records GROUP BY 1").is_ok());
    }
}
