//! The first check server-side apply makes: converting the manifest to the schema's typed form
//! (structured-merge-diff). It refuses fields the schema does not declare and values of the
//! wrong shape, with messages such as `.spec.systemPromt: field not declared in schema`, and the
//! API server stops there. Nulls pass (they mean "unset" to apply); int-or-string and
//! preserve-unknown-fields nodes take anything of their shape.
//!
//! One difference, on purpose: the server stops reading an object at its first undeclared field
//! and visits fields in random order, so with several mistakes it names one of them; this names
//! them all.

use serde_json::{Map, Value};

use super::go_fmt;

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name) == Some(&Value::Bool(true))
}

/// `&{x}`: Go's `%v` of the pointer apply wraps each value in.
fn pointer_v(value: &Value) -> String {
    format!("&{{{}}}", go_fmt::v(value))
}

/// Checks `value` against `schema`, appending `{path}: {message}` errors.
pub fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if value.is_null() || flag(schema, "x-kubernetes-int-or-string") {
        return;
    }
    let kind = schema.get("type").and_then(Value::as_str);
    if flag(schema, "x-kubernetes-preserve-unknown-fields") {
        if kind == Some("object") && !value.is_object() {
            errors.push(format!("{path}: expected map, got {}", pointer_v(value)));
        }
        return;
    }
    match kind {
        Some("object") => match value {
            Value::Object(map) => check_object(schema, map, path, errors),
            other => errors.push(format!("{path}: expected map, got {}", pointer_v(other))),
        },
        Some("array") => match value {
            Value::Array(items) => check_list(schema, items, path, errors),
            other => errors.push(format!("{path}: expected list, got {}", pointer_v(other))),
        },
        Some("string") if !value.is_string() => errors.push(format!(
            "{path}: expected string, got &value.valueUnstructured{{Value:{}}}",
            go_fmt::sharp_v(value)
        )),
        Some("integer" | "number") if !value.is_number() => errors.push(format!(
            "{path}: expected numeric (int or float), got {}",
            go_fmt::type_name(value)
        )),
        Some("boolean") if !value.is_boolean() => errors.push(format!(
            "{path}: expected boolean, got {}",
            pointer_v(value)
        )),
        _ => {}
    }
}

fn check_object(schema: &Value, map: &Map<String, Value>, path: &str, errors: &mut Vec<String>) {
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    // Apply's own order is random; sorted keys make the messages stable.
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        let field = format!("{path}.{key}");
        match properties.and_then(|p| p.get(key)).or(additional) {
            Some(s) => check(s, &map[key], &field, errors),
            None => errors.push(format!("{field}: field not declared in schema")),
        }
    }
}

fn check_list(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<String>) {
    let Some(item_schema) = schema.get("items") else {
        return;
    };
    let list_type = schema.get("x-kubernetes-list-type").and_then(Value::as_str);
    let keys: Vec<&str> = schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|k| k.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut seen: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        // Apply names the items of a list-map by their keys and of a set by their value.
        let element = match list_type {
            Some("map") if item.is_object() => {
                let parts: Vec<String> = keys
                    .iter()
                    .filter_map(|k| item.get(*k).map(|v| format!("{k}={v}")))
                    .collect();
                format!("[{}]", parts.join(","))
            }
            Some("set") => format!("[={item}]"),
            _ => format!("[{i}]"),
        };
        if list_type == Some("map") && item.is_object() {
            if seen.contains(&element) {
                errors.push(format!("{path}: duplicate entries for key {element}"));
                continue;
            }
            seen.push(element.clone());
        }
        check(item_schema, item, &format!("{path}{element}"), errors);
    }
}
