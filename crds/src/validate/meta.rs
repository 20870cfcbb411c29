//! `metadata`, which the CRD's schema leaves to the API server: the shape of ObjectMeta for the
//! typed check, and the checks of the name, label and annotation keys and label values
//! (apimachinery's `ValidateObjectMeta`), with its messages.

use serde_json::{Value, json};

use super::go_fmt;

/// ObjectMeta as server-side apply's typed check sees it.
pub fn object_meta_schema() -> Value {
    let string = json!({"type": "string"});
    let strings = json!({"type": "object", "additionalProperties": {"type": "string"}});
    json!({
        "type": "object",
        "properties": {
            "name": string, "generateName": string, "namespace": string, "selfLink": string,
            "uid": string, "resourceVersion": string, "creationTimestamp": string,
            "deletionTimestamp": string,
            "generation": {"type": "integer"}, "deletionGracePeriodSeconds": {"type": "integer"},
            "labels": strings, "annotations": strings,
            "finalizers": {"type": "array", "items": string, "x-kubernetes-list-type": "set"},
            "ownerReferences": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["uid"],
                "items": {"type": "object", "properties": {
                    "apiVersion": string, "kind": string, "name": string, "uid": string,
                    "controller": {"type": "boolean"}, "blockOwnerDeletion": {"type": "boolean"},
                }},
            },
            "managedFields": {"type": "array", "items": {"type": "object", "properties": {
                "manager": string, "operation": string, "apiVersion": string, "time": string,
                "fieldsType": string, "subresource": string,
                "fieldsV1": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            }}},
        },
    })
}

const DNS_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const NAME_PART: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_KEY: &str = "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
const LABEL_VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`
fn is_dns_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        b.first().is_some_and(edge)
            && b.last().is_some_and(edge)
            && b.iter().all(|c| edge(c) || *c == b'-')
    })
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn qualified_name(key: &str) -> Vec<String> {
    let parts: Vec<&str> = key.split('/').collect();
    let mut errors = Vec::new();
    let name = match parts[..] {
        [name] => name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                if prefix.len() > 253 {
                    errors.push("prefix part must be no more than 253 bytes".into());
                }
                if !is_dns_subdomain(prefix) {
                    errors.push(format!("prefix part {DNS_SUBDOMAIN}"));
                }
            }
            name
        }
        _ => return vec![LABEL_KEY.to_string()],
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 bytes".into());
    }
    if !is_qualified_name_part(name) {
        errors.push(NAME_PART.into());
    }
    errors
}

fn label_value(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push("must be no more than 63 bytes".to_string());
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errors.push(LABEL_VALUE.to_string());
    }
    errors
}

/// The API server's checks of `metadata`, each `{path}: Invalid value: ...`. A missing name is
/// not an error here: server-side apply takes it from the request.
pub fn check(metadata: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut invalid = |path: &str, value: &str, message: &str| {
        out.push(format!(
            "{path}: Invalid value: {}: {message}",
            go_fmt::quote(value)
        ));
    };
    if let Some(name) = metadata.get("name").and_then(Value::as_str) {
        if name.len() > 253 {
            invalid("metadata.name", name, "must be no more than 253 characters");
        }
        if !is_dns_subdomain(name) {
            invalid("metadata.name", name, DNS_SUBDOMAIN);
        }
    }
    for field in ["labels", "annotations"] {
        let Some(map) = metadata.get(field).and_then(Value::as_object) else {
            continue;
        };
        let path = format!("metadata.{field}");
        for (key, value) in map {
            for message in qualified_name(key) {
                invalid(&path, key, &message);
            }
            if field == "labels"
                && let Some(value) = value.as_str()
            {
                for message in label_value(value) {
                    invalid(&path, value, &message);
                }
            }
        }
    }
    out
}
