//! Work limits for the built-in SQL functions that cost the product of
//! their arguments' lengths in one step.
//!
//! The progress handler stops a query between VDBE instructions, but one
//! call of `LIKE`, `GLOB`, `instr`, `replace` or the two-argument `trim`
//! is one instruction, and SQLite's own implementations of them compare
//! every position of the string with the pattern: `instr` of a 1 MiB string
//! and a 512 KiB needle ran 8 s, a two-argument `ltrim` of 256 KiB with a
//! 256 KiB character set 372 s. The length limit alone cannot bound that
//! (records themselves may be megabytes), so each of these functions is
//! replaced on the query's connection by one that first checks the work
//! (length × length) against a budget and refuses with a clear error
//! above it, then computes the answer with SQLite's own implementation:
//! the semantics stay SQLite's.
//!
//! - `LIKE` / `GLOB` on text call `sqlite3_strlike` / `sqlite3_strglob`
//!   (the same matcher as the operators, hence the only `unsafe` here);
//! - everything else (and `LIKE` on numbers, whose text form is SQLite's
//!   business) runs the built-in on a plain side connection of the same
//!   thread, which has no overrides.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{CString, c_int};

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::limits::Limit;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, Error, ffi};

use super::{LIKE_PATTERN_MAX, MAX_LENGTH};

/// Work (bytes × bytes) one call of a character-by-character matcher may
/// do: ≈ 0.1 s at the ≈ 3-5 ns per step measured for `LIKE` and `ltrim`.
const CHAR_WORK: u64 = 1 << 25;
/// The same for the `memcmp`-based `instr` and `replace` (≈ 0.03 ns per
/// byte compared): ≈ 0.1 s.
const MEMCMP_WORK: u64 = 1 << 32;

struct Guarded {
    name: &'static str,
    n_arg: c_int,
    /// Argument indexes of (the string worked on, the pattern).
    subject: usize,
    pattern: usize,
    work: u64,
    /// The call on the side connection.
    sql: &'static str,
    /// `sqlite3_strlike`/`strglob` fast path for text arguments.
    matcher: Option<Matcher>,
}

#[derive(Clone, Copy)]
enum Matcher {
    Like,
    Glob,
}

const GUARDED: &[Guarded] = &[
    Guarded {
        name: "like",
        n_arg: 2,
        subject: 1,
        pattern: 0,
        work: CHAR_WORK,
        sql: "SELECT like(?1, ?2)",
        matcher: Some(Matcher::Like),
    },
    Guarded {
        name: "like",
        n_arg: 3,
        subject: 1,
        pattern: 0,
        work: CHAR_WORK,
        sql: "SELECT like(?1, ?2, ?3)",
        matcher: Some(Matcher::Like),
    },
    Guarded {
        name: "glob",
        n_arg: 2,
        subject: 1,
        pattern: 0,
        work: CHAR_WORK,
        sql: "SELECT glob(?1, ?2)",
        matcher: Some(Matcher::Glob),
    },
    Guarded {
        name: "instr",
        n_arg: 2,
        subject: 0,
        pattern: 1,
        work: MEMCMP_WORK,
        sql: "SELECT instr(?1, ?2)",
        matcher: None,
    },
    Guarded {
        name: "replace",
        n_arg: 3,
        subject: 0,
        pattern: 1,
        work: MEMCMP_WORK,
        sql: "SELECT replace(?1, ?2, ?3)",
        matcher: None,
    },
    Guarded {
        name: "trim",
        n_arg: 2,
        subject: 0,
        pattern: 1,
        work: CHAR_WORK,
        sql: "SELECT trim(?1, ?2)",
        matcher: None,
    },
    Guarded {
        name: "ltrim",
        n_arg: 2,
        subject: 0,
        pattern: 1,
        work: CHAR_WORK,
        sql: "SELECT ltrim(?1, ?2)",
        matcher: None,
    },
    Guarded {
        name: "rtrim",
        n_arg: 2,
        subject: 0,
        pattern: 1,
        work: CHAR_WORK,
        sql: "SELECT rtrim(?1, ?2)",
        matcher: None,
    },
];

thread_local! {
    /// Plain connection for the built-ins, one per blocking thread.
    static SIDE: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

fn side_connection() -> rusqlite::Result<Connection> {
    let c = Connection::open_in_memory()?;
    c.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_LENGTH)?;
    c.set_limit(Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, LIKE_PATTERN_MAX)?;
    Ok(c)
}

/// Runs `sql` with `args` on this thread's side connection.
fn builtin(sql: &str, args: &[ValueRef<'_>]) -> rusqlite::Result<Value> {
    SIDE.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            *slot = Some(side_connection()?);
        }
        let conn = slot
            .as_ref()
            .ok_or_else(|| Error::UserFunctionError("no side connection".into()))?;
        let mut stmt = conn.prepare_cached(sql)?;
        let args = args.iter().map(|a| ToSqlOutput::Borrowed(*a));
        stmt.query_row(rusqlite::params_from_iter(args), |r| r.get(0))
    })
}

/// One built-in (`sql` with `?1`) applied to `v` on this thread's side
/// connection: SQLite's own semantics where they are intricate (casts).
pub(super) fn builtin_value(sql: &str, v: Value) -> rusqlite::Result<Value> {
    let arg = ValueRef::from(&v);
    builtin(sql, &[arg])
}

/// Byte length of an argument as the function sees it (numbers are short).
fn len(v: ValueRef<'_>) -> u64 {
    match v {
        ValueRef::Text(b) | ValueRef::Blob(b) => b.len() as u64,
        ValueRef::Null => 0,
        ValueRef::Integer(_) | ValueRef::Real(_) => 32,
    }
}

/// Text or blob bytes up to the first NUL, as SQLite's matcher reads them.
fn c_text(v: ValueRef<'_>) -> Option<CString> {
    match v {
        ValueRef::Text(b) | ValueRef::Blob(b) => {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            CString::new(&b[..end]).ok()
        }
        _ => None,
    }
}

fn call(g: &Guarded, ctx: &Context<'_>) -> rusqlite::Result<Value> {
    let args: Vec<ValueRef<'_>> = (0..ctx.len()).map(|i| ctx.get_raw(i)).collect();
    if args.iter().any(|a| matches!(a, ValueRef::Null)) {
        return Ok(Value::Null);
    }
    let (subject, pattern) = (len(args[g.subject]), len(args[g.pattern]));
    if subject.saturating_mul(pattern) > g.work {
        return Err(Error::UserFunctionError(
            format!(
                "{}() over a {subject}-byte string with a {pattern}-byte pattern is more work \
                 than one expression may do ({} byte pairs); use a shorter pattern or string",
                g.name, g.work
            )
            .into(),
        ));
    }
    if let Some(m) = g.matcher {
        if pattern > LIKE_PATTERN_MAX as u64 {
            return Err(Error::UserFunctionError(
                format!("LIKE or GLOB pattern too complex: at most {LIKE_PATTERN_MAX} bytes")
                    .into(),
            ));
        }
        let esc = match args.get(2) {
            None => Some(0),
            Some(ValueRef::Text(e)) => match std::str::from_utf8(e).ok().map(|e| e.chars()) {
                Some(mut cs) => match (cs.next(), cs.next()) {
                    (Some(c), None) => Some(u32::from(c)),
                    _ => {
                        return Err(Error::UserFunctionError(
                            "ESCAPE expression must be a single character".into(),
                        ));
                    }
                },
                None => None,
            },
            Some(_) => None,
        };
        if let (Some(p), Some(s), Some(esc)) =
            (c_text(args[g.pattern]), c_text(args[g.subject]), esc)
        {
            // SAFETY: both are NUL-terminated strings that outlive the call;
            // the functions only read them.
            let rc = unsafe {
                match m {
                    Matcher::Like => ffi::sqlite3_strlike(p.as_ptr(), s.as_ptr(), esc),
                    Matcher::Glob => ffi::sqlite3_strglob(p.as_ptr(), s.as_ptr()),
                }
            };
            return Ok(Value::Integer(i64::from(rc == 0)));
        }
    }
    builtin(g.sql, &args)
}

/// Replaces the guarded built-ins on `conn`.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8
        | FunctionFlags::SQLITE_DETERMINISTIC
        | FunctionFlags::SQLITE_INNOCUOUS;
    for g in GUARDED {
        conn.create_scalar_function(g.name, g.n_arg, flags, move |ctx| call(g, ctx))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(conn: &Connection, sql: &str) -> rusqlite::Result<Value> {
        conn.query_row(sql, [], |r| r.get(0))
    }

    #[test]
    fn the_guarded_functions_answer_like_the_built_ins() {
        let plain = Connection::open_in_memory().expect("sqlite");
        let guarded = Connection::open_in_memory().expect("sqlite");
        register(&guarded).expect("register");
        for q in [
            "SELECT 'Hello' LIKE 'h%'",
            "SELECT 'Hello' LIKE 'h_llo'",
            "SELECT 'héllo' LIKE 'h_llo'",
            "SELECT 'HÉLLO' LIKE 'héllo'",
            "SELECT '10%' LIKE '10\\%' ESCAPE '\\'",
            "SELECT '10x' LIKE '10\\%' ESCAPE '\\'",
            "SELECT 1.5 LIKE '1.5'",
            "SELECT 100.0 LIKE '100.0'",
            "SELECT 12 LIKE '1%'",
            "SELECT NULL LIKE 'a'",
            "SELECT 'abc' GLOB 'a*'",
            "SELECT 'abc' GLOB 'A*'",
            "SELECT x'616263' LIKE 'ab%'",
            "SELECT instr('héllo', 'l')",
            "SELECT instr(x'0102', x'02')",
            "SELECT instr(1.5, '.')",
            "SELECT replace(1.5, '.', ',')",
            "SELECT replace('aaa', 'a', 'bb')",
            "SELECT replace('aaa', '', 'b')",
            "SELECT trim('xxhixx', 'x')",
            "SELECT ltrim('xxhixx', 'x')",
            "SELECT rtrim('xxhixx', 'x')",
            "SELECT trim('  hi  ')",
        ] {
            assert_eq!(
                one(&guarded, q).expect("guarded"),
                one(&plain, q).expect("plain"),
                "{q}"
            );
        }
        let e = one(&guarded, "SELECT 'a' LIKE 'a' ESCAPE 'xy'").expect_err("refused");
        assert!(e.to_string().contains("single character"), "{e}");
    }

    #[test]
    fn quadratic_calls_are_refused_at_once() {
        let c = Connection::open_in_memory().expect("sqlite");
        register(&c).expect("register");
        for q in [
            "SELECT printf('%.*c', 10000000, 'a') LIKE '%' || printf('%.*c', 1500, 'a') || 'b'",
            "SELECT instr(printf('%.*c', 1000000, 'a'), printf('%.*c', 500000, 'a') || 'b')",
            "SELECT ltrim(printf('%.*c', 262144, 'a') || 'x', printf('%.*c', 262144, 'b') || 'a')",
        ] {
            let t = std::time::Instant::now();
            let e = one(&c, q).expect_err("refused").to_string();
            assert!(e.contains("more work than one expression"), "{q}: {e}");
            assert!(t.elapsed() < std::time::Duration::from_secs(5), "{q}");
        }
    }
}
