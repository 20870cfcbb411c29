//! The API server's check of an Agent, offline: what `kubectl apply --server-side` would say
//! about a manifest, in the server's own words, without a cluster. The runtime's local mode
//! (`agentry-runtime --agent FILE`) refuses with these messages, and the crds tests use it to
//! check the schema; a cluster suite compares it with a real API server case by case.
//!
//! It follows the server's order (kube-apiserver 1.36, apiextensions-apiserver):
//! 1. server-side apply's typed conversion ([`typed`]): undeclared fields and values of the wrong
//!    shape; the server stops here when it finds any;
//! 2. defaulting, then the OpenAPI schema ([`openapi`]), `metadata` ([`meta`]) and the scale
//!    subresource's `specReplicasPath`;
//! 3. the CEL rules (`x-kubernetes-validations`, evaluated by kube-cel), unless step 2 found a
//!    type, enum, required, length or item-count error, in which case the server adds its
//!    "some validation rules were not checked" message instead.
//!
//! The schema is the generated CRD's, so what is checked is exactly what is committed. A schema
//! keyword this module does not implement makes every check fail with a message saying so,
//! rather than pass silently.

mod go_fmt;
mod meta;
mod openapi;
mod typed;

use std::sync::OnceLock;

use regex::Regex;
use serde_json::{Map, Value};

/// What the server appends when step 2 stops the CEL rules.
const NOT_CHECKED: &str = "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

/// Schema keywords the checks implement; anything else refuses every object (see the module doc).
const KEYWORDS: &[&str] = &[
    "description",
    "title",
    "type",
    "format",
    "nullable",
    "default",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "maxItems",
    "anyOf",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

struct Compiled {
    /// The version's openAPIV3Schema.
    schema: Value,
    /// The same with `apiVersion`, `kind` and ObjectMeta added at the root, as apply sees it.
    typed_schema: Value,
    patterns: openapi::Patterns,
    /// The CEL rules, compiled.
    rules: kube_cel::CompiledSchema,
    /// The scale subresource's `specReplicasPath` (`.spec.replicas`).
    spec_replicas_path: Option<String>,
}

fn compiled() -> Result<&'static Compiled, &'static str> {
    static COMPILED: OnceLock<Result<Compiled, String>> = OnceLock::new();
    COMPILED
        .get_or_init(compile)
        .as_ref()
        .map_err(String::as_str)
}

fn compile() -> Result<Compiled, String> {
    let crd = crate::crd::agent_crd();
    let version = crd
        .spec
        .versions
        .first()
        .ok_or("the generated Agent CRD has no version")?;
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .ok_or("the generated Agent CRD has no schema")?;
    let schema = serde_json::to_value(schema).map_err(|e| format!("the Agent schema: {e}"))?;
    let mut problems = Vec::new();
    let mut patterns = openapi::Patterns::new();
    walk_schema(&schema, "", &mut |path, node| {
        for key in node.as_object().into_iter().flat_map(Map::keys) {
            if !KEYWORDS.contains(&key.as_str()) {
                problems.push(format!("{path}: {key}"));
            }
        }
        for rule in node
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for key in rule.as_object().into_iter().flat_map(Map::keys) {
                if key != "rule" && key != "message" {
                    problems.push(format!("{path}: x-kubernetes-validations {key}"));
                }
            }
        }
        if node.get("anyOf").is_some() && node.get("x-kubernetes-int-or-string").is_none() {
            problems.push(format!("{path}: anyOf"));
        }
        if let Some(p) = node.get("pattern").and_then(Value::as_str) {
            match go_regex(p) {
                Ok(re) => {
                    patterns.insert(p.to_string(), re);
                }
                Err(e) => problems.push(format!("{path}: pattern {p}: {e}")),
            }
        }
    });
    if !problems.is_empty() {
        return Err(format!(
            "the local check of an Agent does not implement what the schema uses, so it cannot \
             tell what the API server would say: {}",
            problems.join(", ")
        ));
    }
    let mut typed_schema = schema.clone();
    if let Some(props) = typed_schema
        .get_mut("properties")
        .and_then(Value::as_object_mut)
    {
        props.insert("apiVersion".into(), serde_json::json!({"type": "string"}));
        props.insert("kind".into(), serde_json::json!({"type": "string"}));
        props.insert("metadata".into(), meta::object_meta_schema());
    }
    let spec_replicas_path = version
        .subresources
        .as_ref()
        .and_then(|s| s.scale.as_ref())
        .map(|s| s.spec_replicas_path.clone());
    let rules = kube_cel::compile_schema(&schema);
    Ok(Compiled {
        schema,
        typed_schema,
        patterns,
        rules,
        spec_replicas_path,
    })
}

/// Visits every schema node with its path (`spec.tools[].name`).
fn walk_schema(node: &Value, path: &str, visit: &mut dyn FnMut(&str, &Value)) {
    visit(path, node);
    for (name, child) in node
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let p = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        walk_schema(child, &p, visit);
    }
    if let Some(items) = node.get("items") {
        walk_schema(items, &format!("{path}[]"), visit);
    }
    if let Some(extra) = node.get("additionalProperties").filter(|a| a.is_object()) {
        walk_schema(extra, &format!("{path}{{}}"), visit);
    }
    for (i, branch) in node
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        walk_schema(branch, &format!("{path}<anyOf {i}>"), visit);
    }
}

/// A schema pattern compiled with Go's (RE2's) meaning: there `\s`, `\d`, `\w` and `\b` are
/// ASCII-only, where Rust's regex is Unicode-aware (so `^\S+$` must accept a no-break space).
fn go_regex(pattern: &str) -> Result<Regex, regex::Error> {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // Nested classes are valid inside a class as well as outside it.
            Some('s') => out.push_str("[\\t\\n\\f\\r ]"),
            Some('S') => out.push_str("[^\\t\\n\\f\\r ]"),
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('W') => out.push_str("[^0-9A-Za-z_]"),
            Some('b') => out.push_str("(?-u:\\b)"),
            Some('B') => out.push_str("(?-u:\\B)"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Regex::new(&out)
}

/// Numbers as the API server holds them after decoding: an integral value that fits `int64`
/// is an integer (`2.0` is `2`), anything else a float.
fn normalise_numbers(value: &Value) -> Value {
    match value {
        Value::Number(n) if n.is_i64() => value.clone(),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or_default();
            // 2^63 is exactly representable; every integral f64 below it fits an i64.
            if f.fract() == 0.0
                && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)
            {
                Value::from(f as i64)
            } else {
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(normalise_numbers).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalise_numbers(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Drops nulls of non-nullable fields that have a default, so the default applies, as the
/// server does.
fn strip_defaulted_nulls(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            map.retain(|k, v| {
                let s = props.and_then(|p| p.get(k));
                !(v.is_null()
                    && s.is_some_and(|s| {
                        s.get("default").is_some() && s.get("nullable") != Some(&Value::Bool(true))
                    }))
            });
            for (k, v) in map.iter_mut() {
                if let Some(s) = props.and_then(|p| p.get(k)).or(additional) {
                    strip_defaulted_nulls(s, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                items.iter_mut().for_each(|i| strip_defaulted_nulls(s, i));
            }
        }
        _ => {}
    }
}

fn defaulted_with(c: &Compiled, object: &Value) -> Value {
    let mut value = normalise_numbers(object);
    // The server ignores the status of an object it creates.
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    strip_defaulted_nulls(&c.schema, &mut value);
    kube_cel::apply_defaults(&c.schema, &value)
}

/// `object` as the API server would store it: numbers decoded as Go decodes them, the schema's
/// defaults applied (`spec.replicas: 1`), no status. Meant for an object [`agent`] accepts.
pub fn defaulted(object: &Value) -> Value {
    match compiled() {
        Ok(c) => defaulted_with(c, object),
        Err(_) => object.clone(),
    }
}

/// The scale subresource's check of `specReplicasPath` (apiextensions' `ValidateScaleSpec`).
fn scale_errors(path: &str, object: &Value) -> Vec<String> {
    let mut value = Some(object);
    for part in path.trim_start_matches('.').split('.') {
        value = value.and_then(|v| v.get(part));
    }
    match value {
        None => Vec::new(),
        Some(Value::Number(n)) if n.is_i64() => match n.as_i64().unwrap_or_default() {
            i if i < 0 => vec![format!(
                "{path}: Invalid value: {i}: should be a non-negative integer"
            )],
            i if i > i64::from(i32::MAX) => vec![format!(
                "{path}: Invalid value: {i}: should be less than or equal to {}",
                i32::MAX
            )],
            _ => Vec::new(),
        },
        Some(other) => vec![format!(
            "{path}: Invalid value: 0: {path} accessor error: {} is of the type {}, expected int64",
            go_fmt::v(other),
            go_fmt::type_name(other)
        )],
    }
}

/// Every message the API server would refuse `object` (a whole Agent manifest as JSON) with,
/// each as `{field path}: {message}` exactly as the server words it
/// (`spec.tools[0].name: Invalid value: "bad name!": spec.tools[0].name in body should match
/// '^[a-zA-Z0-9_-]{1,64}$'`, `.spec.systemPromt: field not declared in schema`). Empty means
/// the server would accept it.
///
/// `apiVersion` and `kind` are not checked: the server takes them from the request.
pub fn agent(object: &Value) -> Vec<String> {
    let c = match compiled() {
        Ok(c) => c,
        Err(e) => return vec![e.to_string()],
    };
    let raw = normalise_numbers(object);
    let mut errors = Vec::new();
    typed::check(&c.typed_schema, &raw, "", &mut errors);
    if !errors.is_empty() {
        return errors;
    }
    let object = defaulted_with(c, &raw);
    let found = openapi::check(&c.schema, &object, "", &c.patterns);
    let blocking = found.iter().any(|e| e.kind != openapi::Kind::Invalid);
    errors.extend(found.into_iter().map(|e| e.text));
    if let Some(metadata) = object.get("metadata") {
        errors.extend(meta::check(metadata));
    }
    if let Some(path) = &c.spec_replicas_path {
        errors.extend(scale_errors(path, &object));
    }
    if blocking {
        errors.push(NOT_CHECKED.to_string());
        return errors;
    }
    // The server's CEL values treat a field set to null as absent (`has()` is false).
    let object = without_nulls(&object);
    if let Err(failed) = kube_cel::Validator::new().validate_compiled(&c.rules, &object, None) {
        // The server prints the value that failed a rule when it is a scalar (a string rule's
        // string), and none for an object or a list.
        errors.extend(failed.iter().map(|e| {
            match value_at(&object, &e.field_path).filter(|v| !v.is_object() && !v.is_array()) {
                Some(v) => format!(
                    "{}: Invalid value: {}: {}",
                    e.field_path,
                    go_fmt::field_value(v),
                    e.message
                ),
                None => format!("{}: Invalid value: {}", e.field_path, e.message),
            }
        }));
    }
    errors
}

/// The value at a field path as the server prints it (`spec.tools[0].http.headers[1].name`,
/// `spec.podLabels[app]`), if there is one.
fn value_at<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let mut value = object;
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let (key, after) = inner.split_once(']')?;
            value = match value {
                Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
                other => other.get(key)?,
            };
            rest = after;
        } else {
            let name = rest.strip_prefix('.').unwrap_or(rest);
            let end = name.find(['.', '[']).unwrap_or(name.len());
            value = value.get(&name[..end])?;
            rest = &name[end..];
        }
    }
    Some(value)
}

/// The schema checks of one value against one node of a schema (types, bounds, patterns,
/// enums, required fields; no typed-apply, metadata or CEL checks), e.g. to check that a
/// field's default passes the field's own validation, as the API server requires of a CRD.
pub fn schema_value(schema: &Value, value: &Value, path: &str) -> Vec<String> {
    openapi::check(
        schema,
        &normalise_numbers(value),
        path,
        &openapi::Patterns::new(),
    )
    .into_iter()
    .map(|e| e.text)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_regex_classes_are_ascii_like_re2() {
        let re = go_regex(r"^\S+$").unwrap();
        assert!(re.is_match("claude\u{a0}sonnet"));
        assert!(!re.is_match("claude sonnet"));
        assert!(go_regex(r"^[\d_]+$").unwrap().is_match("12_3"));
        assert!(!go_regex(r"^\d$").unwrap().is_match("\u{663}"));
        assert!(go_regex(r"^a\.b$").unwrap().is_match("a.b"));
    }

    #[test]
    fn a_field_path_finds_list_items_map_keys_and_nothing_past_the_object() {
        let o = serde_json::json!({"spec": {"tools": [{"name": "a"}, {"name": "b"}],
            "podLabels": {"app": "x"}}});
        assert_eq!(value_at(&o, "spec.tools[1].name"), Some(&Value::from("b")));
        assert_eq!(value_at(&o, "spec.podLabels[app]"), Some(&Value::from("x")));
        assert_eq!(value_at(&o, "spec"), o.get("spec"));
        assert_eq!(value_at(&o, "spec.tools[2].name"), None);
        assert_eq!(value_at(&o, "spec.memory.caPem"), None);
    }

    #[test]
    fn integral_floats_become_integers_as_in_the_api_server() {
        let v = normalise_numbers(&serde_json::json!({"a": 2.0, "b": 1.5, "c": 1e20, "d": [3.0]}));
        assert_eq!(
            v,
            serde_json::json!({"a": 2, "b": 1.5, "c": 1e20, "d": [3]})
        );
    }
}
