//! Record queries: the REKOR-SURFACE filter (`eq, ne, gt, gte, lt, lte, in,
//! contains, exists`, combined with `and` / `or` / `not` or a list meaning
//! "all of") and sort. Parsed once into a typed form, then evaluated.

use std::cmp::Ordering;

use serde_json::Value;

use super::error::{Result, ServiceError};

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

    pub fn matches(&self, record: &Value) -> bool {
        match self {
            Filter::And(fs) => fs.iter().all(|f| f.matches(record)),
            Filter::Or(fs) => fs.iter().any(|f| f.matches(record)),
            Filter::Not(f) => !f.matches(record),
            Filter::Cond { path, op, value } => {
                let got = lookup(record, path);
                match op {
                    Op::Exists => {
                        got.is_some_and(|v| !v.is_null()) == value.as_bool().unwrap_or(true)
                    }
                    Op::Eq => got.is_some_and(|g| json_eq(g, value)),
                    Op::Ne => !got.is_some_and(|g| json_eq(g, value)),
                    Op::Gt => cmp_same_kind(got, value) == Some(Ordering::Greater),
                    Op::Gte => matches!(
                        cmp_same_kind(got, value),
                        Some(Ordering::Greater | Ordering::Equal)
                    ),
                    Op::Lt => cmp_same_kind(got, value) == Some(Ordering::Less),
                    Op::Lte => matches!(
                        cmp_same_kind(got, value),
                        Some(Ordering::Less | Ordering::Equal)
                    ),
                    Op::In => got.is_some_and(|g| {
                        value
                            .as_array()
                            .is_some_and(|vs| vs.iter().any(|v| json_eq(g, v)))
                    }),
                    Op::Contains => match (got, value) {
                        (Some(Value::String(s)), Value::String(sub)) => s.contains(sub.as_str()),
                        (Some(Value::Array(items)), v) => items.iter().any(|i| json_eq(i, v)),
                        (Some(Value::Object(o)), Value::String(k)) => o.contains_key(k),
                        _ => false,
                    },
                }
            }
        }
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

    pub fn compare(sorts: &[Sort], a: &Value, b: &Value) -> Ordering {
        for s in sorts {
            let o = total_cmp(lookup(a, &s.path), lookup(b, &s.path));
            let o = if s.desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| match cur {
        Value::Object(o) => o.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn cmp_same_kind(a: Option<&Value>, b: &Value) -> Option<Ordering> {
    match (a?, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn rank(v: Option<&Value>) -> u8 {
    match v {
        None | Some(Value::Null) => 0,
        Some(Value::Bool(_)) => 1,
        Some(Value::Number(_)) => 2,
        Some(Value::String(_)) => 3,
        Some(Value::Array(_)) => 4,
        Some(Value::Object(_)) => 5,
    }
}

/// A total order over JSON values for sorting: missing/null < bool < number
/// < string < array < object.
fn total_cmp(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) if rank(a) == rank(b) => {
            cmp_same_kind(Some(x), y).unwrap_or(Ordering::Equal)
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(data: Value) -> Value {
        json!({"id": "r1", "data": data})
    }

    #[test]
    fn ops_match_like_users_expect() {
        let r = rec(
            json!({"stage": "negotiation", "value": 1200, "tags": ["vip"], "name": "Acme Corp"}),
        );
        let t = |f: Value| Filter::parse(&f).expect("valid filter").matches(&r);
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
        rows.sort_by(|a, b| Sort::compare(&sorts, a, b));
        let values: Vec<_> = rows
            .iter()
            .map(|r| r["data"].get("value").cloned())
            .collect();
        assert_eq!(values, vec![Some(json!(10)), Some(json!(9)), None]);
    }
}
