//! Record queries: the REKOR-SURFACE filter (`eq, ne, gt, gte, lt, lte, in,
//! contains, exists`, combined with `and` / `or` / `not` or a list meaning
//! "all of") and sort. Parsed once into a typed form, then evaluated on the
//! stored bytes of each record, reading only the fields named.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::ControlFlow;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::error::{Result, ServiceError};
use super::{Page, PageMeta, decode};
use crate::store::{self, View};

/// Top-level record fields a filter or sort can name besides `data.…`.
const FIELDS: &[&str] = &[
    "id",
    "collection",
    "data",
    "external_id",
    "external_source",
    "version",
    "archived",
    "cancelled",
    "deleted",
    "created_at",
    "updated_at",
];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Contains,
    Exists,
}

#[derive(Debug, Clone)]
pub enum Filter {
    Cond {
        path: Vec<String>,
        op: Op,
        value: Value,
    },
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

#[derive(Debug, Clone)]
pub struct Sort {
    path: Vec<String>,
    desc: bool,
}

fn field_path(field: &str) -> Result<Vec<String>> {
    let path: Vec<String> = field.split('.').map(str::to_string).collect();
    if path.iter().any(String::is_empty) || !FIELDS.contains(&path[0].as_str()) {
        return Err(ServiceError::invalid(format!(
            "unknown field '{field}': use data.<property> for record data, or one of {}",
            FIELDS.join(", ")
        )));
    }
    Ok(path)
}

impl Filter {
    pub fn parse(v: &Value) -> Result<Filter> {
        match v {
            Value::Array(items) => Ok(Filter::And(
                items.iter().map(Filter::parse).collect::<Result<_>>()?,
            )),
            Value::Object(o) if o.len() == 1 && (o.contains_key("and") || o.contains_key("or")) => {
                let (key, items) = o
                    .iter()
                    .next()
                    .ok_or_else(|| ServiceError::invalid("empty filter"))?;
                let Value::Array(items) = items else {
                    return Err(ServiceError::invalid(format!(
                        "filter '{key}' takes a list of filters"
                    )));
                };
                let parts = items.iter().map(Filter::parse).collect::<Result<_>>()?;
                Ok(if key == "and" {
                    Filter::And(parts)
                } else {
                    Filter::Or(parts)
                })
            }
            Value::Object(o) if o.len() == 1 && o.contains_key("not") => {
                Ok(Filter::Not(Box::new(Filter::parse(&o["not"])?)))
            }
            Value::Object(o) => {
                let field = o.get("field").and_then(Value::as_str).ok_or_else(|| {
                    ServiceError::invalid(
                        "a filter needs \"field\" and \"op\" (e.g. {\"field\":\"data.status\",\"op\":\"eq\",\"value\":\"draft\"}), or \"and\"/\"or\"/\"not\"",
                    )
                })?;
                if let Some(k) = o
                    .keys()
                    .find(|k| !["field", "op", "value"].contains(&k.as_str()))
                {
                    return Err(ServiceError::invalid(format!(
                        "unknown filter key '{k}'; expected field, op, value"
                    )));
                }
                let op = match o.get("op").and_then(Value::as_str).unwrap_or("") {
                    "eq" => Op::Eq,
                    "ne" => Op::Ne,
                    "gt" => Op::Gt,
                    "gte" => Op::Gte,
                    "lt" => Op::Lt,
                    "lte" => Op::Lte,
                    "in" => Op::In,
                    "contains" => Op::Contains,
                    "exists" => Op::Exists,
                    other => {
                        return Err(ServiceError::invalid(format!(
                            "unknown filter op '{other}' on '{field}'; expected eq, ne, gt, gte, lt, lte, in, contains or exists"
                        )));
                    }
                };
                let value = o.get("value").cloned().unwrap_or(Value::Null);
                match op {
                    Op::In if !value.is_array() => {
                        return Err(ServiceError::invalid(format!(
                            "op 'in' on '{field}' needs a list value"
                        )));
                    }
                    Op::Exists if !(value.is_boolean() || value.is_null()) => {
                        return Err(ServiceError::invalid(format!(
                            "op 'exists' on '{field}' takes true or false"
                        )));
                    }
                    _ if !o.contains_key("value") && op != Op::Exists => {
                        return Err(ServiceError::invalid(format!(
                            "filter on '{field}' needs a \"value\""
                        )));
                    }
                    _ => {}
                }
                Ok(Filter::Cond {
                    path: field_path(field)?,
                    op,
                    value,
                })
            }
            _ => Err(ServiceError::invalid(
                "a filter must be an object or a list of filters",
            )),
        }
    }

    /// Whether the stored record `bytes` match. Only the fields the filter
    /// names are read; nothing else of the record is decoded.
    pub fn matches(&self, bytes: &[u8]) -> Result<bool> {
        Ok(match self {
            Filter::And(fs) => {
                for f in fs {
                    if !f.matches(bytes)? {
                        return Ok(false);
                    }
                }
                true
            }
            Filter::Or(fs) => {
                for f in fs {
                    if f.matches(bytes)? {
                        return Ok(true);
                    }
                }
                false
            }
            Filter::Not(f) => !f.matches(bytes)?,
            Filter::Cond { path, op, value } => {
                let got = lookup(bytes, path)?;
                match op {
                    Op::Exists => {
                        got.as_ref().is_some_and(|v| !matches!(v, Leaf::Null))
                            == value.as_bool().unwrap_or(true)
                    }
                    Op::Eq => match &got {
                        Some(g) => g.eq_json(value)?,
                        None => false,
                    },
                    Op::Ne => match &got {
                        Some(g) => !g.eq_json(value)?,
                        None => true,
                    },
                    Op::Gt => cmp_same_kind(got.as_ref(), value) == Some(Ordering::Greater),
                    Op::Gte => matches!(
                        cmp_same_kind(got.as_ref(), value),
                        Some(Ordering::Greater | Ordering::Equal)
                    ),
                    Op::Lt => cmp_same_kind(got.as_ref(), value) == Some(Ordering::Less),
                    Op::Lte => matches!(
                        cmp_same_kind(got.as_ref(), value),
                        Some(Ordering::Less | Ordering::Equal)
                    ),
                    Op::In => match (&got, value.as_array()) {
                        (Some(g), Some(vs)) => {
                            let mut any = false;
                            for v in vs {
                                if g.eq_json(v)? {
                                    any = true;
                                    break;
                                }
                            }
                            any
                        }
                        _ => false,
                    },
                    Op::Contains => match (&got, value) {
                        (Some(Leaf::Str(s)), Value::String(sub)) => s.contains(sub.as_str()),
                        (Some(Leaf::Array(raw)), v) => {
                            let items: Vec<Value> = decode_raw(raw)?;
                            items.iter().any(|i| json_eq(i, v))
                        }
                        (Some(Leaf::Object(raw)), Value::String(k)) => {
                            let o: serde_json::Map<String, Value> = decode_raw(raw)?;
                            o.contains_key(k)
                        }
                        _ => false,
                    },
                }
            }
        })
    }

    /// Record ids that include every match, if an index gives them cheaply:
    /// `id` eq / in, or `external_id` eq (the external-key index), alone or
    /// as one part of an "all of". The whole filter is still applied to them.
    fn candidates(&self, v: &impl View, ws: &str, coll: &str) -> Result<Option<Vec<String>>> {
        Ok(match self {
            Filter::And(fs) => {
                for f in fs {
                    if let Some(ids) = f.candidates(v, ws, coll)? {
                        return Ok(Some(ids));
                    }
                }
                None
            }
            Filter::Cond { path, op, value } if path.len() == 1 => {
                match (path[0].as_str(), op, value) {
                    ("id", Op::Eq, Value::String(id)) => Some(vec![id.clone()]),
                    // Any other value equals no id.
                    ("id", Op::Eq, _) => Some(vec![]),
                    ("id", Op::In, Value::Array(vs)) => Some(
                        vs.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect(),
                    ),
                    ("external_id", Op::Eq, Value::String(ext)) => {
                        Some(store::records::external_any(v, ws, coll, ext)?)
                    }
                    _ => None,
                }
            }
            _ => None,
        })
    }
}

impl Sort {
    /// `{"field", "order": "asc"|"desc"}` or a list of them.
    pub fn parse(v: &Value) -> Result<Vec<Sort>> {
        let items = match v {
            Value::Array(items) => items.clone(),
            Value::Object(_) => vec![v.clone()],
            Value::Null => vec![],
            _ => {
                return Err(ServiceError::invalid(
                    "sort must be {\"field\":…,\"order\":\"asc\"|\"desc\"} or a list of them",
                ));
            }
        };
        items
            .iter()
            .map(|s| {
                let field = s.get("field").and_then(Value::as_str).ok_or_else(|| {
                    ServiceError::invalid("a sort needs a \"field\", e.g. {\"field\":\"data.amount\",\"order\":\"desc\"}")
                })?;
                let desc = match s.get("order").and_then(Value::as_str).unwrap_or("asc") {
                    "asc" => false,
                    "desc" => true,
                    other => return Err(ServiceError::invalid(format!("sort order '{other}' on '{field}': use asc or desc"))),
                };
                Ok(Sort { path: field_path(field)?, desc })
            })
            .collect()
    }

    /// The sort keys of stored record `bytes`, borrowed from them.
    fn keys<'a>(sorts: &[Sort], bytes: &'a [u8]) -> Result<Vec<Key<'a>>> {
        sorts
            .iter()
            .map(|s| Ok(Key::of(lookup(bytes, &s.path)?.as_ref())))
            .collect()
    }

    /// Whether record `bytes` sorts strictly before `keys`, reading its keys
    /// one at a time and only as far as needed (no allocation: most records
    /// of a large scan lose this comparison).
    fn beats(sorts: &[Sort], bytes: &[u8], keys: &[Key<'_>]) -> Result<bool> {
        for (s, k) in sorts.iter().zip(keys) {
            let mine = Key::of(lookup(bytes, &s.path)?.as_ref());
            let o = mine.cmp(k);
            let o = if s.desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return Ok(o == Ordering::Less);
            }
        }
        Ok(false)
    }

    fn compare(sorts: &[Sort], a: &[Key<'_>], b: &[Key<'_>]) -> Ordering {
        for (s, (x, y)) in sorts.iter().zip(a.iter().zip(b)) {
            let o = x.cmp(y);
            let o = if s.desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

/// A query, parsed: what [`run`] executes.
pub struct Plan {
    pub filter: Option<Filter>,
    pub sorts: Vec<Sort>,
    pub include_deleted: bool,
    pub limit: usize,
    pub offset: usize,
}

/// Runs a query over one collection with work and memory bounded by the
/// page, where the order allows it:
///
/// - no sort (or a sort on `id`, unique and the key order): records are read
///   in key order and decoding stops with the page; without a filter the scan
///   stops there too and `total` comes from the collection's counts;
/// - a sort on anything else must see every match: each record's sort keys
///   are read from its bytes and the best `offset + limit` kept in a heap;
/// - a filter is tested on the fields it names, without decoding the rest,
///   and `total` counts the matches of that scan (which the filter needs
///   anyway); `id` and `external_id` conditions use the indexes instead.
///
/// Results equal a stable sort of all matches in id order.
pub fn run(v: &impl View, ws: &str, coll: &str, p: &Plan) -> Result<Page<Value>> {
    let key_order = match p.sorts.first() {
        None => Some(false),
        Some(s) if s.path.len() == 1 && s.path[0] == "id" => Some(s.desc),
        Some(_) => None,
    };
    let want = p.offset.saturating_add(p.limit);
    let known_total = match &p.filter {
        Some(_) => None,
        None => {
            let (live, all) = store::records::count(v, ws, coll)?;
            let n = if p.include_deleted { all } else { live };
            Some(usize::try_from(n).unwrap_or(usize::MAX))
        }
    };
    let mut matched = 0usize;
    let mut page: Vec<Value> = Vec::new();
    let mut heap: BinaryHeap<Ranked<'_>> = BinaryHeap::new();
    let mut visit = |bytes: &[u8]| -> Result<ControlFlow<()>> {
        if !p.include_deleted && store::records::is_deleted(bytes)? {
            return Ok(ControlFlow::Continue(()));
        }
        if let Some(f) = &p.filter
            && !f.matches(bytes)?
        {
            return Ok(ControlFlow::Continue(()));
        }
        let seq = matched;
        matched += 1;
        if key_order.is_some() {
            if seq >= p.offset && page.len() < p.limit {
                page.push(decode(bytes, "record")?);
            }
            // Without a filter the total is known: nothing more to read.
            if matched >= want && known_total.is_some() {
                return Ok(ControlFlow::Break(()));
            }
            return Ok(ControlFlow::Continue(()));
        }
        if heap.len() == want {
            // Full: a record enters only if it beats the worst kept one
            // (on a tie the earlier record wins, as in a stable sort).
            let beats = match heap.peek() {
                Some(worst) => Sort::beats(&p.sorts, bytes, &worst.keys)?,
                None => false,
            };
            if !beats {
                return Ok(ControlFlow::Continue(()));
            }
            heap.pop();
        }
        let keys = Sort::keys(&p.sorts, bytes)?;
        heap.push(Ranked {
            sorts: &p.sorts,
            keys: keys.into_iter().map(Key::into_owned).collect(),
            seq,
            bytes: bytes.to_vec(),
        });
        Ok(ControlFlow::Continue(()))
    };
    let skip_all = known_total.is_some_and(|n| p.offset >= n);
    let candidates = match &p.filter {
        Some(f) => f.candidates(v, ws, coll)?,
        None => None,
    };
    match candidates {
        _ if skip_all => {}
        Some(mut ids) => {
            ids.sort_unstable();
            ids.dedup();
            if key_order == Some(true) {
                ids.reverse();
            }
            for id in ids {
                if let Some(bytes) = store::records::get(v, ws, coll, &id)?
                    && visit(&bytes)?.is_break()
                {
                    break;
                }
            }
        }
        None => store::records::scan(v, ws, coll, key_order == Some(true), &mut visit)?,
    }
    if key_order.is_none() {
        page = heap
            .into_sorted_vec()
            .into_iter()
            .skip(p.offset)
            .map(|r| decode(&r.bytes, "record"))
            .collect::<Result<_>>()?;
    }
    Ok(Page {
        data: page,
        meta: PageMeta {
            total: known_total.unwrap_or(matched),
            limit: p.limit,
            offset: p.offset,
        },
    })
}

/// A record kept for a sorted page, ordered by its sort keys, then by scan
/// position (so ties keep id order); the heap's greatest is the worst.
struct Ranked<'s> {
    sorts: &'s [Sort],
    keys: Vec<Key<'static>>,
    seq: usize,
    bytes: Vec<u8>,
}

impl Ord for Ranked<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        Sort::compare(self.sorts, &self.keys, &other.keys).then(self.seq.cmp(&other.seq))
    }
}

impl PartialOrd for Ranked<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked<'_> {}

/// The value at a path of a stored record, borrowed from its bytes: scalars
/// decoded (strings without escapes not even copied), arrays and objects
/// left as JSON text until a filter needs them.
#[derive(Debug)]
enum Leaf<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    Array(&'a RawValue),
    Object(&'a RawValue),
}

impl<'a> Leaf<'a> {
    fn of(raw: &'a RawValue) -> Result<Leaf<'a>> {
        let text = raw.get();
        Ok(match text.as_bytes().first() {
            Some(b'n') => Leaf::Null,
            Some(b't') => Leaf::Bool(true),
            Some(b'f') => Leaf::Bool(false),
            Some(b'"') => Leaf::Str(decode_raw::<Text<'a>>(raw)?.0),
            Some(b'[') => Leaf::Array(raw),
            Some(b'{') => Leaf::Object(raw),
            _ => Leaf::Num(text.parse().map_err(|e| corrupt(&e))?),
        })
    }

    /// Equality as the filter defines it: numbers by value, the rest as JSON.
    fn eq_json(&self, v: &Value) -> Result<bool> {
        Ok(match (self, v) {
            (Leaf::Null, Value::Null) => true,
            (Leaf::Bool(a), Value::Bool(b)) => a == b,
            (Leaf::Num(a), Value::Number(b)) => Some(*a) == b.as_f64(),
            (Leaf::Str(a), Value::String(b)) => a == b,
            (Leaf::Array(raw), Value::Array(_)) | (Leaf::Object(raw), Value::Object(_)) => {
                decode_raw::<Value>(raw)? == *v
            }
            _ => false,
        })
    }
}

/// A sort key: a [`Leaf`] with arrays and objects reduced to their rank.
#[derive(Debug)]
enum Key<'a> {
    Missing,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl<'a> Key<'a> {
    fn of(leaf: Option<&Leaf<'a>>) -> Key<'a> {
        match leaf {
            None | Some(Leaf::Null) => Key::Missing,
            Some(Leaf::Bool(b)) => Key::Bool(*b),
            Some(Leaf::Num(n)) => Key::Num(*n),
            Some(Leaf::Str(s)) => Key::Str(s.clone()),
            Some(Leaf::Array(_)) => Key::Array,
            Some(Leaf::Object(_)) => Key::Object,
        }
    }

    fn into_owned(self) -> Key<'static> {
        match self {
            Key::Missing => Key::Missing,
            Key::Bool(b) => Key::Bool(b),
            Key::Num(n) => Key::Num(n),
            Key::Str(s) => Key::Str(Cow::Owned(s.into_owned())),
            Key::Array => Key::Array,
            Key::Object => Key::Object,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Key::Missing => 0,
            Key::Bool(_) => 1,
            Key::Num(_) => 2,
            Key::Str(_) => 3,
            Key::Array => 4,
            Key::Object => 5,
        }
    }

    /// A total order for sorting: missing/null < bool < number < string <
    /// array < object; arrays and objects all tie (as do NaN-free numbers
    /// that compare equal).
    fn cmp(&self, other: &Key<'_>) -> Ordering {
        match (self, other) {
            (Key::Bool(a), Key::Bool(b)) => a.cmp(b),
            (Key::Num(a), Key::Num(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (Key::Str(a), Key::Str(b)) => a.as_ref().cmp(b.as_ref()),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// The value at `path` in stored record `bytes`, if there is one.
fn lookup<'a>(bytes: &'a [u8], path: &[String]) -> Result<Option<Leaf<'a>>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match At(path).deserialize(&mut de).map_err(|e| corrupt(&e))? {
        Some(raw) => Leaf::of(raw).map(Some),
        None => Ok(None),
    }
}

/// Walks a path through JSON while it is parsed, skipping everything off
/// the path, and yields the text of the value at its end.
struct At<'p>(&'p [String]);

impl<'de> DeserializeSeed<'de> for At<'_> {
    type Value = Option<&'de RawValue>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        match self.0.split_first() {
            None => <&RawValue>::deserialize(d).map(Some),
            Some((head, rest)) => d.deserialize_any(Step { head, rest }),
        }
    }
}

struct Step<'p> {
    head: &'p str,
    rest: &'p [String],
}

impl<'de> Visitor<'de> for Step<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            // The last of duplicate keys wins, as when decoding to a `Value`.
            if key.0 == self.head {
                found = map.next_value_seed(At(self.rest))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let index = self.head.parse::<usize>().ok();
        let mut found = None;
        let mut i = 0;
        loop {
            if Some(i) == index {
                match seq.next_element_seed(At(self.rest))? {
                    Some(v) => found = v,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }
}

/// A JSON string, borrowed when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

fn decode_raw<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Result<T> {
    serde_json::from_str(raw.get()).map_err(|e| corrupt(&e))
}

fn corrupt(e: &dyn std::fmt::Display) -> ServiceError {
    ServiceError::Internal(format!("corrupt record in store: {e}"))
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Compares a record's value with a filter's, if they are of one kind.
fn cmp_same_kind(a: Option<&Leaf<'_>>, b: &Value) -> Option<Ordering> {
    match (a?, b) {
        (Leaf::Num(x), Value::Number(y)) => x.partial_cmp(&y.as_f64()?),
        (Leaf::Str(x), Value::String(y)) => Some(x.as_ref().cmp(y.as_str())),
        (Leaf::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(data: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"id": "r1", "data": data})).expect("encodes")
    }

    #[test]
    fn ops_match_like_users_expect() {
        let r = rec(
            json!({"stage": "negotiation", "value": 1200, "tags": ["vip"], "name": "Acme Corp"}),
        );
        let t = |f: Value| {
            Filter::parse(&f)
                .expect("valid filter")
                .matches(&r)
                .expect("readable record")
        };
        assert!(t(
            json!({"field": "data.stage", "op": "eq", "value": "negotiation"})
        ));
        assert!(t(
            json!({"field": "data.value", "op": "eq", "value": 1200.0})
        ));
        assert!(!t(
            json!({"field": "data.stage", "op": "ne", "value": "negotiation"})
        ));
        assert!(t(json!({"field": "data.value", "op": "gt", "value": 1000})));
        assert!(!t(
            json!({"field": "data.value", "op": "lt", "value": 1000})
        ));
        assert!(t(
            json!({"field": "data.value", "op": "lte", "value": 1200})
        ));
        assert!(t(
            json!({"field": "data.stage", "op": "in", "value": ["won", "negotiation"]})
        ));
        assert!(t(
            json!({"field": "data.name", "op": "contains", "value": "Acme"})
        ));
        assert!(t(
            json!({"field": "data.tags", "op": "contains", "value": "vip"})
        ));
        assert!(t(
            json!({"field": "data.missing", "op": "exists", "value": false})
        ));
        assert!(t(
            json!([{"field": "data.value", "op": "gte", "value": 1200}, {"field": "id", "op": "eq", "value": "r1"}])
        ));
        assert!(t(
            json!({"or": [{"field": "data.value", "op": "lt", "value": 0}, {"field": "data.stage", "op": "exists"}]})
        ));
        assert!(t(
            json!({"not": {"field": "data.stage", "op": "eq", "value": "won"}})
        ));
        // A string never compares greater than a number.
        assert!(!t(json!({"field": "data.stage", "op": "gt", "value": 5})));
    }

    #[test]
    fn bad_filters_say_what_is_wrong() {
        let err = |f: Value| Filter::parse(&f).expect_err("invalid").to_string();
        assert!(
            err(json!({"field": "data.x", "op": "like", "value": 1}))
                .contains("unknown filter op 'like'")
        );
        assert!(
            err(json!({"field": "stage", "op": "eq", "value": 1}))
                .contains("unknown field 'stage'")
        );
        assert!(err(json!({"field": "data.x", "op": "in", "value": 1})).contains("needs a list"));
        assert!(err(json!({"field": "data.x", "op": "eq"})).contains("needs a \"value\""));
    }

    #[test]
    fn sort_orders_numbers_numerically_and_missing_first() {
        let sorts =
            Sort::parse(&json!({"field": "data.value", "order": "desc"})).expect("valid sort");
        let mut rows = [
            rec(json!({"value": 9})),
            rec(json!({})),
            rec(json!({"value": 10})),
        ];
        rows.sort_by(|a, b| {
            let (a, b) = (Sort::keys(&sorts, a), Sort::keys(&sorts, b));
            Sort::compare(&sorts, &a.expect("keys"), &b.expect("keys"))
        });
        let values: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::from_slice::<Value>(r).expect("json")["data"]
                    .get("value")
                    .cloned()
            })
            .collect();
        assert_eq!(values, vec![Some(json!(10)), Some(json!(9)), None]);
    }

    #[test]
    fn paths_reach_nested_values_and_array_items_only() {
        let r = serde_json::to_vec(&json!({
            "id": "r1",
            "data": {"a": {"b": [10, {"c": "x\"y"}]}, "s": "plain", "n": null}
        }))
        .expect("encodes");
        let at = |p: &str| {
            let path: Vec<String> = p.split('.').map(str::to_string).collect();
            lookup(&r, &path)
                .expect("readable")
                .map(|l| format!("{l:?}"))
        };
        assert_eq!(at("data.a.b.0").as_deref(), Some("Num(10.0)"));
        assert_eq!(at("data.a.b.1.c").as_deref(), Some("Str(\"x\\\"y\")"));
        assert_eq!(at("data.s").as_deref(), Some("Str(\"plain\")"));
        assert_eq!(at("data.n").as_deref(), Some("Null"));
        assert_eq!(at("data.a.b.2"), None);
        assert_eq!(at("data.s.x"), None);
        assert_eq!(at("data.missing"), None);
        assert_eq!(at("id").as_deref(), Some("Str(\"r1\")"));
    }
}
