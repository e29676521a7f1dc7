//! JSON Schema handling: checking that a collection's schema is itself a valid
//! schema, compiling it once, caching the validator, and turning validation
//! failures into errors that name the JSON path and the rule that failed.
//!
//! jsonschema is built without its default features, so `$ref`s are never
//! fetched over the network or read from files: user schemas cannot make the
//! server issue requests.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};

/// One failed rule of a schema check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Violation {
    /// JSON Pointer to the offending value ("" is the whole document).
    pub path: String,
    /// The JSON Schema keyword that failed ("type", "required", …).
    pub rule: String,
    pub message: String,
}

impl Violation {
    pub fn to_json(list: &[Violation]) -> Value {
        json!({ "violations": list })
    }
}

/// Checks `schema` against its meta-schema and compiles it.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, Vec<Violation>> {
    if !schema.is_object() && !schema.is_boolean() {
        return Err(vec![Violation {
            path: String::new(),
            rule: "type".into(),
            message: "a JSON Schema must be an object or a boolean".into(),
        }]);
    }
    if let Err(e) = jsonschema::meta::validate(schema) {
        return Err(vec![Violation {
            path: e.instance_path().to_string(),
            rule: e.kind().keyword().to_string(),
            message: format!("not a valid JSON Schema: {e}"),
        }]);
    }
    jsonschema::validator_for(schema).map_err(|e| {
        vec![Violation {
            path: e.instance_path().to_string(),
            rule: e.kind().keyword().to_string(),
            message: format!("not a valid JSON Schema: {e}"),
        }]
    })
}

/// Validates `instance`, collecting every violation (capped at 20).
pub fn check(validator: &jsonschema::Validator, instance: &Value) -> Result<(), Vec<Violation>> {
    let errors: Vec<Violation> = validator
        .iter_errors(instance)
        .take(20)
        .map(|e| Violation {
            path: e.instance_path().to_string(),
            rule: e.kind().keyword().to_string(),
            message: e.to_string(),
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A compiled validator with the collection version and the schema it was
/// compiled from. The schema is compared too: a collection deleted and
/// created again starts its versions anew, so a version alone can repeat.
type Versioned = (u64, Arc<Value>, Arc<jsonschema::Validator>, bool);

/// Schema keywords whose validation cost is not linear in the data and the
/// schema: references (recursion), combinators that validate a value
/// against several branches (nested, exponential when errors are
/// collected), patterns (backtracking), `uniqueItems` (quadratic).
const COSTLY: &[&str] = &[
    "$ref",
    "$dynamicRef",
    "$recursiveRef",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "dependentSchemas",
    "contains",
    "pattern",
    "patternProperties",
    "propertyNames",
    "uniqueItems",
    "unevaluatedProperties",
    "unevaluatedItems",
];

/// Most values a cheap schema may have (see [`cheap`]).
const CHEAP_VALUES: usize = 1024;

/// Whether validating against `schema` costs at most about its size times
/// the data's: no [`COSTLY`] keyword and at most [`CHEAP_VALUES`] values.
/// Only such schemas are checked on an async worker (light writes); any
/// other goes to the blocking pool.
pub fn cheap(schema: &Value) -> bool {
    fn walk(v: &Value, left: &mut usize) -> bool {
        let Some(l) = left.checked_sub(1) else {
            return false;
        };
        *left = l;
        match v {
            Value::Array(a) => a.iter().all(|v| walk(v, left)),
            Value::Object(o) => o
                .iter()
                .all(|(k, v)| !COSTLY.contains(&k.as_str()) && walk(v, left)),
            _ => true,
        }
    }
    let mut left = CHEAP_VALUES;
    walk(schema, &mut left)
}

/// Compiled validators by (workspace, collection), tagged with the version.
#[derive(Default)]
pub struct Cache {
    inner: RwLock<HashMap<(String, String), Versioned>>,
}

impl Cache {
    /// The validator for this version of the collection's schema, compiled on
    /// first use.
    pub fn get(
        &self,
        workspace: &str,
        collection: &str,
        version: u64,
        schema: &Value,
    ) -> Result<Arc<jsonschema::Validator>, Vec<Violation>> {
        self.get_with_schema(workspace, collection, version, schema)
            .map(|(validator, _)| validator)
    }

    /// [`Cache::get`], with the schema it was compiled from (shared, not
    /// copied).
    pub fn get_with_schema(
        &self,
        workspace: &str,
        collection: &str,
        version: u64,
        schema: &Value,
    ) -> Result<(Arc<jsonschema::Validator>, Arc<Value>), Vec<Violation>> {
        if let Some((validator, schema, _)) = self.cached(workspace, collection, version, schema) {
            return Ok((validator, schema));
        }
        let key = (workspace.to_string(), collection.to_string());
        let validator = Arc::new(compile(schema)?);
        let is_cheap = cheap(schema);
        let schema = Arc::new(schema.clone());
        if let Ok(mut map) = self.inner.write() {
            map.insert(key, (version, schema.clone(), validator.clone(), is_cheap));
        }
        Ok((validator, schema))
    }

    /// The validator for this version of the collection's schema if it is
    /// already compiled (never compiles), and whether the schema is
    /// [`cheap`].
    pub fn cached(
        &self,
        workspace: &str,
        collection: &str,
        version: u64,
        schema: &Value,
    ) -> Option<(Arc<jsonschema::Validator>, Arc<Value>, bool)> {
        // Copy the entry out: the comparison runs after the lock is given
        // back, so a reader preempted mid-compare holds up no writer (and,
        // behind it, no other reader).
        let (v, compiled_from, validator, is_cheap) = self
            .inner
            .read()
            .ok()?
            .get(&(workspace.to_string(), collection.to_string()))?
            .clone();
        (v == version && *compiled_from == *schema).then_some((validator, compiled_from, is_cheap))
    }

    /// The latest validator compiled for the collection, whatever its
    /// version, if its schema is [`cheap`]: for a first, optimistic check
    /// that the write's transaction confirms (the schema it finds must be
    /// this one).
    pub fn latest_cheap(
        &self,
        workspace: &str,
        collection: &str,
    ) -> Option<(Arc<jsonschema::Validator>, Arc<Value>)> {
        let (_, schema, validator, is_cheap) = self
            .inner
            .read()
            .ok()?
            .get(&(workspace.to_string(), collection.to_string()))?
            .clone();
        is_cheap.then_some((validator, schema))
    }

    pub fn forget_workspace(&self, workspace: &str) {
        if let Ok(mut map) = self.inner.write() {
            map.retain(|(ws, _), _| ws != workspace);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_linear_schemas_are_cheap() {
        let plain = json!({"type": "object", "required": ["a"], "properties": {
            "a": {"type": "string", "maxLength": 10, "enum": ["x", "y"]},
            "n": {"type": "array", "items": {"type": "number", "minimum": 0}},
        }});
        assert!(cheap(&plain));
        for costly in [
            json!({"$defs": {"n": {"anyOf": [{"items": {"$ref": "#/$defs/n"}}]}}, "$ref": "#/$defs/n"}),
            json!({"properties": {"a": {"pattern": "^(a|a)*$"}}}),
            json!({"properties": {"a": {"type": "array", "uniqueItems": true}}}),
            json!({"oneOf": [{"type": "object"}, {"type": "string"}]}),
        ] {
            assert!(!cheap(&costly), "{costly}");
        }
        let big: Vec<Value> = (0..CHEAP_VALUES).map(|i| json!(i)).collect();
        assert!(!cheap(&json!({"enum": big})));
        // The cache says so beside the validator.
        let cache = Cache::default();
        cache.get("w", "c", 1, &plain).expect("compiles");
        assert!(matches!(
            cache.cached("w", "c", 1, &plain),
            Some((_, _, true))
        ));
        assert!(
            cache.cached("w", "c", 2, &plain).is_none(),
            "another version"
        );
    }

    /// A collection deleted and created again with another schema gets
    /// version 1 again: the cache must not answer with the old validator
    /// (defect: writes were validated against the deleted schema).
    #[test]
    fn a_repeated_version_with_another_schema_is_compiled_anew() {
        let cache = Cache::default();
        let old = json!({"type": "object", "required": ["a"]});
        let new = json!({"type": "object", "required": ["b"]});
        let v = cache.get("w", "c", 1, &old).expect("compiles");
        assert!(check(&v, &json!({"a": 1})).is_ok());
        let v = cache.get("w", "c", 1, &new).expect("compiles");
        assert!(check(&v, &json!({"b": 1})).is_ok());
        assert!(check(&v, &json!({"a": 1})).is_err());
    }
}
