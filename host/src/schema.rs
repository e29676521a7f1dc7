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
type Versioned = (u64, Arc<Value>, Arc<jsonschema::Validator>);

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
        if let Some(hit) = self.cached(workspace, collection, version, schema) {
            return Ok(hit);
        }
        let key = (workspace.to_string(), collection.to_string());
        let validator = Arc::new(compile(schema)?);
        let schema = Arc::new(schema.clone());
        if let Ok(mut map) = self.inner.write() {
            map.insert(key, (version, schema.clone(), validator.clone()));
        }
        Ok((validator, schema))
    }

    /// The validator for this version of the collection's schema if it is
    /// already compiled (never compiles).
    pub fn cached(
        &self,
        workspace: &str,
        collection: &str,
        version: u64,
        schema: &Value,
    ) -> Option<(Arc<jsonschema::Validator>, Arc<Value>)> {
        let map = self.inner.read().ok()?;
        let (v, compiled_from, validator) =
            map.get(&(workspace.to_string(), collection.to_string()))?;
        (*v == version && **compiled_from == *schema)
            .then(|| (validator.clone(), compiled_from.clone()))
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
