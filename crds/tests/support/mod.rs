//! Offline stand-in for the API server's validation of an Agent: the OpenAPI v3 structural
//! checks (types, required fields, unknown fields, bounds, patterns, enums, list-map keys), then
//! the schema's own CEL rules evaluated by kube-cel. It reads the generated CRD, so what it checks
//! is exactly what is committed; the cluster suite in `tests/` checks the same cases on a real
//! API server.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::Value;

/// The repository root (the parent of `crds/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crds/ has a parent")
        .to_path_buf()
}

/// The openAPIV3Schema of the generated Agent CRD, as JSON.
pub fn agent_schema() -> Value {
    let crd = agentry_crds::crd::agent_crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("the CRD has a schema");
    serde_json::to_value(schema).expect("schema serializes")
}

/// Validates `object` (a whole Agent as JSON) and returns every error, formatted like the API
/// server's: `spec.tools[0].name: Invalid value: ...`. Empty means accepted.
pub fn validate(object: &Value) -> Vec<String> {
    let schema = agent_schema();
    let defaulted = kube_cel::apply_defaults(&schema, object);
    let mut errors = Vec::new();
    check(&schema, &defaulted, "", true, &mut errors);
    if errors.is_empty()
        && let Err(cel_errors) = kube_cel::Validator::new().validate(&schema, &defaulted, None)
    {
        for e in cel_errors.iter() {
            errors.push(format!("{}: Invalid value: {}", e.field_path, e.message));
        }
    }
    errors
}

/// Checks one value against one schema node (no CEL), returning the errors.
pub fn check_node(schema: &Value, value: &Value, path: &str) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, value, path, false, &mut errors);
    errors
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check(schema: &Value, value: &Value, path: &str, root: bool, errors: &mut Vec<String>) {
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            errors.push(format!("{path}: Invalid value: \"null\": must not be null"));
        }
        return;
    }
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            errors.push(format!(
                "{path}: Invalid value: must be an integer or a string"
            ));
        }
        return;
    }
    if let Some(want) = schema.get("type").and_then(Value::as_str) {
        let got = type_name(value);
        let ok = got == want || (want == "number" && got == "integer");
        if !ok {
            errors.push(format!(
                "{path}: Invalid value: \"{got}\": {path} in body must be of type {want}"
            ));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        errors.push(format!(
            "{path}: Unsupported value: {value}: supported values: {options:?}"
        ));
    }
    match value {
        Value::String(s) => check_string(schema, s, path, errors),
        Value::Number(n) => check_number(schema, n.as_f64().unwrap_or_default(), path, errors),
        Value::Array(items) => check_array(schema, items, path, errors),
        Value::Object(map) => check_object(schema, map, path, root, errors),
        _ => {}
    }
}

fn check_string(schema: &Value, s: &str, path: &str, errors: &mut Vec<String>) {
    let len = s.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        errors.push(format!(
            "{path}: Invalid value: \"{s}\": {path} in body should be at least {min} chars long"
        ));
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        errors.push(format!(
            "{path}: Too long: may not be more than {max} bytes"
        ));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        let re = regex::Regex::new(pattern).expect("schema patterns compile");
        if !re.is_match(s) {
            errors.push(format!(
                "{path}: Invalid value: \"{s}\": {path} in body should match '{pattern}'"
            ));
        }
    }
}

fn check_number(schema: &Value, n: f64, path: &str, errors: &mut Vec<String>) {
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && n < min
    {
        errors.push(format!(
            "{path}: Invalid value: {n}: {path} in body should be greater than or equal to {min}"
        ));
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
        && n > max
    {
        errors.push(format!(
            "{path}: Invalid value: {n}: {path} in body should be less than or equal to {max}"
        ));
    }
}

fn check_array(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<String>) {
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        errors.push(format!(
            "{path}: Too many: {}: must have at most {max} items",
            items.len()
        ));
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        errors.push(format!(
            "{path}: Invalid value: must have at least {min} items"
        ));
    }
    if schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
        let keys: Vec<&str> = schema["x-kubernetes-list-map-keys"]
            .as_array()
            .map(|k| k.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut seen = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let key: Vec<&Value> = keys.iter().map(|k| &item[*k]).collect();
            if seen.contains(&key) {
                errors.push(format!("{path}[{i}]: Duplicate value: {key:?}"));
            }
            seen.push(key);
        }
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            check(item_schema, item, &format!("{path}[{i}]"), false, errors);
        }
    }
}

fn check_object(
    schema: &Value,
    map: &serde_json::Map<String, Value>,
    path: &str,
    root: bool,
    errors: &mut Vec<String>,
) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(name) {
                errors.push(format!("{}: Required value", child(path, name)));
            }
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    for (name, value) in map {
        let field = child(path, name);
        if root && matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(s) = properties.and_then(|p| p.get(name)) {
            check(s, value, &field, false, errors);
        } else if let Some(s) = additional.filter(|a| a.is_object()) {
            check(s, value, &field, false, errors);
        } else {
            errors.push(format!(".{field}: field not declared in schema"));
        }
    }
}
