//! `data ->> '$.a.b'` as a column of `records`: extracted while scanning.
//!
//! SQLite evaluates `data ->> '$.stage'` by parsing the row's JSON text for
//! every extract, and a GROUP BY over it carries the whole `data` text
//! through its sorter and parses it again afterwards. Instead, the simple
//! forms (a literal path of plain or double-quoted keys) become *hidden
//! columns* of the `records` virtual table: the table reads all the paths a
//! query needs from one parse of each row's `data`, and because they are
//! columns, a GROUP BY over them can be served grouped by the table itself
//! (see `vtab`), with no sort at all.
//!
//! The rewrite works on tokens, like [`super::translate`], and is only an
//! optimisation: a hidden column returns exactly what the expression it
//! replaces returns (value and type; tested against SQLite's own), and a
//! query the rewrite breaks (say `data` named another table's column) is
//! run as written instead. What is left alone: `->` (its result carries
//! SQLite's JSON subtype, which a column cannot), paths with array indexes
//! or unusual keys, and any spelling where operator precedence would make
//! the replacement mean something else (`'x' || data ->> '$.a'` is
//! `('x' || data) ->> '$.a'` in SQLite; `-data ->> …`; `… COLLATE`).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use rusqlite::types::Value as SqlValue;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use sqlparser::tokenizer::{Token, Word};

use super::SqlError;

/// Most hidden columns one query declares (SQLite's column limit is 1,000
/// per table); past it, views keep SQLite's own expressions.
pub const MAX_HIDDEN: usize = 500;

/// A cast applied to the extracted value, as the views' typed columns do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cast {
    None,
    Integer,
    Real,
}

/// One hidden column: `[CAST(]data ->> '$.k1.k2'[ AS T)]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hidden {
    /// The object keys, outermost first (at least one).
    pub keys: Vec<String>,
    pub cast: Cast,
}

impl Hidden {
    /// The path in SQLite's JSON path syntax, canonical (`$.a."b c"`).
    pub fn path(&self) -> String {
        let mut p = String::from("$");
        for k in &self.keys {
            if plain(k) {
                p.push('.');
                p.push_str(k);
            } else {
                p.push_str(&format!(".\"{k}\""));
            }
        }
        p
    }

    /// The column's name: the expression it stands for.
    pub fn name(&self) -> String {
        let e = format!("data->>'{}'", self.path());
        match self.cast {
            Cast::None => e,
            Cast::Integer => format!("CAST({e} AS INTEGER)"),
            Cast::Real => format!("CAST({e} AS REAL)"),
        }
    }

    /// The column's name as a quoted SQL identifier.
    pub fn ident(&self) -> String {
        format!("\"{}\"", self.name().replace('"', "\"\""))
    }

    /// The column's declaration in the table: the type gives it the
    /// affinity of the expression it stands for (`->>` has none, a CAST its
    /// type's), so comparisons convert exactly as they would (`HIDDEN`
    /// alone would make it NUMERIC: `'02134' = 2134` would hold).
    pub fn declaration(&self) -> String {
        let ty = match self.cast {
            Cast::None => "BLOB",
            Cast::Integer => "INTEGER",
            Cast::Real => "REAL",
        };
        format!("{} {ty} HIDDEN", self.ident())
    }
}

/// A key SQLite's path syntax takes unquoted, with the same meaning quoted.
fn plain(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A key that may appear double-quoted in a path and in a column name.
pub fn quotable(k: &str) -> bool {
    !k.is_empty() && !k.contains(['"', '\'', '\\']) && !k.chars().any(char::is_control)
}

/// The keys of a path literal in the forms rewritten: `$.a`, `$."a b".c`,
/// or a bare key `a` (which `->>` reads as `$.a`). `None` for anything else.
pub fn parse_path(p: &str) -> Option<Vec<String>> {
    if plain(p) {
        return Some(vec![p.to_string()]);
    }
    let mut rest = p.strip_prefix('$')?;
    let mut keys = Vec::new();
    while !rest.is_empty() {
        rest = rest.strip_prefix('.')?;
        if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"')?;
            let k = &q[..end];
            if !quotable(k) {
                return None;
            }
            keys.push(k.to_string());
            rest = &q[end + 1..];
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let k = &rest[..end];
            if !plain(k) {
                return None;
            }
            keys.push(k.to_string());
            rest = &rest[end..];
        }
    }
    (!keys.is_empty()).then_some(keys)
}

/// The hidden columns one query uses, each once.
#[derive(Debug, Default)]
pub struct HiddenSet(Vec<Hidden>);

impl HiddenSet {
    /// The column for `h`, added if new; `None` when the set is full, or
    /// when its name differs from another's only in case (SQLite's column
    /// names are case-insensitive: `$.A` and `$.a` cannot both be columns).
    pub fn add(&mut self, h: Hidden) -> Option<&Hidden> {
        let name = h.name();
        let i = match self.0.iter().position(|x| *x == h) {
            Some(i) => i,
            None if self.0.iter().any(|x| x.name().eq_ignore_ascii_case(&name)) => return None,
            None if self.0.len() < MAX_HIDDEN => {
                self.0.push(h);
                self.0.len() - 1
            }
            None => return None,
        };
        self.0.get(i)
    }

    pub fn into_vec(self) -> Vec<Hidden> {
        self.0
    }
}

/// Tokens that, right before `data`, would bind it tighter than `->>` does
/// (or make the replacement's meaning differ): concatenation and the arrows
/// share `->>`'s precedence and group to the left; unary operators bind
/// tighter. `-` and `+` may be binary (and harmless), but telling that apart
/// is not worth the risk.
fn binds_left(t: &Token) -> bool {
    matches!(
        t,
        Token::StringConcat
            | Token::Arrow
            | Token::LongArrow
            | Token::Minus
            | Token::Plus
            | Token::Tilde
            | Token::Period
    )
}

fn is_data(t: Option<&Token>) -> bool {
    matches!(t, Some(Token::Word(Word { value, quote_style: None, .. })) if value.eq_ignore_ascii_case("data"))
}

/// Rewrites the simple `data ->> '…'` forms of `sql` to hidden columns,
/// added to `set`. `None` when there is nothing to rewrite, and for any
/// query with more than one SELECT (subqueries, CTEs, compounds): there a
/// name the inner scope lacks would be looked up in the outer one, so a
/// `data` of a view or CTE could turn into the outer `records`' column.
/// With one SELECT, every `data` is a column of its FROM: the rewritten
/// name is one of `records`' columns or no column at all (and the caller
/// prepares with double-quoted strings off, so that is an error and the
/// query runs as written). Also `None` when `data` is defined as an alias.
pub fn rewrite(sql: &str, set: &mut HiddenSet) -> Result<Option<String>, SqlError> {
    let (tokens, mut out): (Vec<Token>, Vec<String>) = super::translate::tokenize_as_written(sql)?
        .into_iter()
        .unzip();
    let solid = |i: usize| !matches!(tokens[i], Token::Whitespace(_));
    let prev = |i: usize| (0..i).rev().find(|&j| solid(j));
    let next = |i: usize| (i + 1..tokens.len()).find(|&j| solid(j));
    let keyword = |t: &Token, k: &str| matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(k));
    let selects = tokens.iter().filter(|t| keyword(t, "select")).count();
    if selects != 1 || tokens.iter().any(|t| keyword(t, "with")) {
        return Ok(None);
    }
    let aliased = tokens.iter().enumerate().any(|(i, t)| {
        matches!(t, Token::Word(w) if w.value.eq_ignore_ascii_case("data"))
            && prev(i).is_some_and(|p| keyword(&tokens[p], "as"))
    });
    if aliased {
        return Ok(None);
    }
    let mut changed = false;
    for i in 0..tokens.len() {
        if !is_data(tokens.get(i)) {
            continue;
        }
        // `[qualifier.]data`: the token before the qualifier decides.
        let mut first = i;
        if let Some(p) = prev(i)
            && tokens[p] == Token::Period
        {
            match prev(p) {
                Some(q) if matches!(tokens[q], Token::Word(_)) && p + 1 == i && q + 1 == p => {
                    first = q;
                }
                _ => continue,
            }
        }
        if prev(first).is_some_and(|p| binds_left(&tokens[p])) {
            continue;
        }
        let Some(arrow) = next(i).filter(|&a| tokens[a] == Token::LongArrow) else {
            continue;
        };
        let Some(lit) = next(arrow) else { continue };
        let Token::SingleQuotedString(path) = &tokens[lit] else {
            continue;
        };
        if next(lit).is_some_and(
            |n| matches!(&tokens[n], Token::Word(w) if w.value.eq_ignore_ascii_case("collate")),
        ) {
            continue;
        }
        let Some(keys) = parse_path(path) else {
            continue;
        };
        let Some(h) = set.add(Hidden {
            keys,
            cast: Cast::None,
        }) else {
            continue;
        };
        out[i] = h.ident();
        for o in &mut out[i + 1..=lit] {
            o.clear();
        }
        changed = true;
    }
    Ok(changed.then(|| out.concat()))
}

/// The first keys a query's hidden columns look up, for matching a JSON
/// object's keys against them (a map past a few).
enum Keys {
    Few(Vec<String>),
    Many(HashMap<String, usize>),
}

impl Keys {
    fn new(keys: Vec<String>) -> Keys {
        if keys.len() <= 8 {
            Keys::Few(keys)
        } else {
            Keys::Many(keys.into_iter().enumerate().map(|(i, k)| (k, i)).collect())
        }
    }

    fn len(&self) -> usize {
        match self {
            Keys::Few(k) => k.len(),
            Keys::Many(k) => k.len(),
        }
    }

    fn find(&self, key: &str) -> Option<usize> {
        match self {
            Keys::Few(k) => k.iter().position(|x| x == key),
            Keys::Many(k) => k.get(key).copied(),
        }
    }
}

/// Reads the hidden columns one query uses from a row's `data`: one parse
/// of the top level for all of them, then only the values nested keys are in.
pub struct Extractor {
    firsts: Keys,
    /// (hidden column, index of its first key in `firsts`).
    cols: Vec<(usize, usize)>,
    /// The top level's values, per first key (reused across rows).
    top: RefCell<Vec<Option<Range<usize>>>>,
}

impl Extractor {
    /// For the hidden columns `wanted` (indexes into `hidden`).
    pub fn new(hidden: &[Hidden], wanted: impl IntoIterator<Item = usize>) -> Extractor {
        let mut firsts: Vec<String> = Vec::new();
        let mut cols = Vec::new();
        for h in wanted {
            let Some(first) = hidden.get(h).map(|x| &x.keys[0]) else {
                continue;
            };
            let i = match firsts.iter().position(|f| f == first) {
                Some(i) => i,
                None => {
                    firsts.push(first.clone());
                    firsts.len() - 1
                }
            };
            cols.push((h, i));
        }
        let n = firsts.len();
        Extractor {
            firsts: Keys::new(firsts),
            cols,
            top: RefCell::new(vec![None; n]),
        }
    }

    /// Fills `out[h]` for each wanted hidden column `h` with where its value
    /// is in `data`, plus `offset` (`Some(None)`: the path is not there).
    pub fn run(
        &self,
        hidden: &[Hidden],
        data: &str,
        offset: usize,
        out: &mut [Option<Option<Range<usize>>>],
    ) -> Result<(), serde_json::Error> {
        let mut top = self.top.borrow_mut();
        pick(data, &self.firsts, &mut top)?;
        for &(h, i) in &self.cols {
            let mut at = top[i].clone();
            for k in hidden[h].keys.iter().skip(1) {
                let Some(r) = at else { break };
                let mut one = [None];
                pick(&data[r.clone()], &Keys::Few(vec![k.clone()]), &mut one)?;
                at = one[0]
                    .clone()
                    .map(|inner| r.start + inner.start..r.start + inner.end);
            }
            if let Some(slot) = out.get_mut(h) {
                *slot = Some(at.map(|r| offset + r.start..offset + r.end));
            }
        }
        Ok(())
    }
}

/// Finds the value of each of `keys` in one JSON object: `found[i]` is the
/// byte range of key `i`'s raw JSON within `json`, the first occurrence
/// (as in SQLite). Anything but an object finds nothing.
fn pick(
    json: &str,
    keys: &Keys,
    found: &mut [Option<Range<usize>>],
) -> Result<(), serde_json::Error> {
    found.iter_mut().for_each(|f| *f = None);
    if !json.starts_with('{') || keys.len() == 0 {
        return Ok(());
    }
    let base = json.as_ptr() as usize;
    serde_json::Deserializer::from_str(json).deserialize_map(Pick { keys, found, base })
}

struct Pick<'a> {
    keys: &'a Keys,
    found: &'a mut [Option<Range<usize>>],
    base: usize,
}

impl<'de> Visitor<'de> for Pick<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(k) = map.next_key_seed(Key { keys: self.keys })? {
            match k {
                Some(i) if self.found[i].is_none() => {
                    let v: &'de RawValue = map.next_value()?;
                    let start = v.get().as_ptr() as usize - self.base;
                    self.found[i] = Some(start..start + v.get().len());
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A map key, as the index of the wanted key it equals.
struct Key<'k> {
    keys: &'k Keys,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Key<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.keys.find(v))
    }
}

/// What `data ->> path` returns for the raw JSON value `raw` (`None`:
/// missing), then the column's cast: SQLite's own rules (a string to a
/// number goes through SQLite itself).
pub fn value(raw: Option<&str>, cast: Cast) -> rusqlite::Result<SqlValue> {
    let v = match raw {
        None => SqlValue::Null,
        Some(r) => scalar(r)?,
    };
    Ok(match (cast, v) {
        (Cast::None, v) | (_, v @ SqlValue::Null) => v,
        (Cast::Integer, SqlValue::Integer(i)) => SqlValue::Integer(i),
        // SQLite truncates toward zero and saturates, as `as` does.
        (Cast::Integer, SqlValue::Real(f)) => SqlValue::Integer(f as i64),
        (Cast::Real, SqlValue::Integer(i)) => SqlValue::Real(i as f64),
        (Cast::Real, SqlValue::Real(f)) => SqlValue::Real(f),
        (cast, v) => {
            let sql = match cast {
                Cast::Integer => "SELECT CAST(?1 AS INTEGER)",
                _ => "SELECT CAST(?1 AS REAL)",
            };
            super::functions::builtin_value(sql, v)?
        }
    })
}

/// A raw JSON value as `->>` returns it: strings unescaped, numbers as
/// integers when they fit, `true`/`false` as 1/0, containers as their text.
pub(super) fn scalar(raw: &str) -> rusqlite::Result<SqlValue> {
    let bad = |e: &dyn fmt::Display| rusqlite::Error::ModuleError(format!("stored JSON: {e}"));
    Ok(match raw.as_bytes().first() {
        Some(b'"') => match serde_json::from_str::<Cow<'_, str>>(raw) {
            Ok(s) => SqlValue::Text(s.into_owned()),
            Err(e) => return Err(bad(&e)),
        },
        Some(b't') => SqlValue::Integer(1),
        Some(b'f') => SqlValue::Integer(0),
        Some(b'n') | None => SqlValue::Null,
        Some(b'{' | b'[') => SqlValue::Text(raw.to_string()),
        Some(_) => match raw.parse::<i64>() {
            Ok(i) => SqlValue::Integer(i),
            Err(_) => SqlValue::Real(raw.parse::<f64>().map_err(|e| bad(&e))?),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_in_the_rewritten_forms_parse_and_others_do_not() {
        assert_eq!(parse_path("$.a"), Some(vec!["a".into()]));
        assert_eq!(parse_path("a_1"), Some(vec!["a_1".into()]));
        assert_eq!(
            parse_path("$.a.\"b c\".d"),
            Some(vec!["a".into(), "b c".into(), "d".into()])
        );
        for p in [
            "$", "$.", "$.a[0]", "$[0]", "$.a-b", "a.b", "$.\"a", "$.\"\"", "", "#-1",
        ] {
            assert_eq!(parse_path(p), None, "{p}");
        }
        let h = Hidden {
            keys: vec!["a".into(), "b c".into()],
            cast: Cast::Real,
        };
        assert_eq!(h.name(), "CAST(data->>'$.a.\"b c\"' AS REAL)");
        assert_eq!(h.ident(), "\"CAST(data->>'$.a.\"\"b c\"\"' AS REAL)\"");
        // SQLite's column names ignore case: `$.A` cannot be a second column.
        let mut set = HiddenSet::default();
        let key = |k: &str| Hidden {
            keys: vec![k.to_string()],
            cast: Cast::None,
        };
        assert!(set.add(key("a")).is_some());
        assert!(set.add(key("a")).is_some(), "the same column again");
        assert!(set.add(key("A")).is_none());
        assert_eq!(set.into_vec().len(), 1);
    }

    fn rw(sql: &str) -> Option<String> {
        rewrite(sql, &mut HiddenSet::default()).expect("tokens")
    }

    #[test]
    fn only_forms_with_the_same_meaning_are_rewritten() {
        assert_eq!(
            rw("SELECT data->>'$.stage', sum(r.data ->> 'value') FROM records r").as_deref(),
            Some("SELECT \"data->>'$.stage'\", sum(r.\"data->>'$.value'\") FROM records r")
        );
        for sql in [
            "SELECT 'x' || data ->> '$.a' FROM records",
            "SELECT id FROM records WHERE id IN (SELECT data->>'$.ref' FROM orders)",
            "WITH t(data) AS (SELECT 1) SELECT data->>'$.a' FROM t",
            "SELECT data->>'$.a' FROM records UNION SELECT data->>'$.a' FROM records",
            "SELECT metadata AS \"data\", data->>'$.a' FROM records",
            "SELECT -data ->> '$.a' FROM records",
            "SELECT data ->> '$.a' COLLATE nocase FROM records",
            "SELECT data -> '$.a' FROM records",
            "SELECT data ->> '$.a[0]' FROM records",
            "SELECT data ->> :p FROM records",
            "SELECT x.data ->> '$.a' FROM (SELECT metadata AS data FROM relationships) x",
            "SELECT \"data\" ->> '$.a' FROM records",
            "SELECT 'data ->> ''$.a''' FROM records",
        ] {
            assert_eq!(rw(sql), None, "{sql}");
        }
    }

    #[test]
    fn extract_finds_every_path_in_one_parse() {
        let data = r#"{"a":{"b":[1,2],"c":"x\"y"},"n":1.5,"a":7,"e\u0073c":true}"#;
        let hs: Vec<Hidden> = [
            vec!["a", "c"],
            vec!["n"],
            vec!["a", "b"],
            vec!["esc"],
            vec!["zz"],
        ]
        .into_iter()
        .map(|k| Hidden {
            keys: k.into_iter().map(String::from).collect(),
            cast: Cast::None,
        })
        .collect();
        let run = |data: &str, wanted: &[usize]| {
            let mut out = vec![None; hs.len()];
            Extractor::new(&hs, wanted.iter().copied())
                .run(&hs, data, 0, &mut out)
                .expect("json");
            out
        };
        let out = run(data, &[0, 1, 2, 3, 4]);
        let got: Vec<Option<&str>> = out
            .iter()
            .map(|r| r.clone().expect("extracted").map(|r| &data[r]))
            .collect();
        assert_eq!(
            got,
            vec![
                Some(r#""x\"y""#),
                Some("1.5"),
                Some("[1,2]"),
                Some("true"),
                None
            ]
        );
        assert_eq!(
            value(got[0], Cast::None).expect("v"),
            SqlValue::Text("x\"y".into())
        );
        assert_eq!(
            value(Some("7.9"), Cast::Integer).expect("v"),
            SqlValue::Integer(7)
        );
        assert_eq!(
            value(Some("\"12abc\""), Cast::Real).expect("v"),
            SqlValue::Real(12.0)
        );
        assert_eq!(
            run("[1]", &[0])[0],
            Some(None),
            "not an object: nothing there"
        );
        assert_eq!(run(data, &[1])[0], None, "only what is wanted is read");
    }
}
