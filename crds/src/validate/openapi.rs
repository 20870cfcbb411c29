//! The API server's OpenAPI v3 check of a decoded object (kube-openapi's validators, as
//! apiextensions-apiserver reports them): types, nullability, enums, string lengths and
//! patterns, numeric formats and bounds, list sizes and required fields. Unknown fields are not
//! its concern (the typed check refuses them first).

use std::collections::HashMap;

use regex::Regex;
use serde_json::{Map, Number, Value};

use super::go_fmt;

/// The kind of a `field.Error`; all but `Invalid` stop the CEL rules from running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Invalid value: ...`
    Invalid,
    /// `Invalid value: "<type>": ... must be of type ...`
    TypeInvalid,
    /// `Unsupported value: ...`
    NotSupported,
    /// `Required value`
    Required,
    /// `Too long: ...`
    TooLong,
    /// `Too many: ...`
    TooMany,
}

/// One error, already formatted as the API server prints it.
#[derive(Debug, Clone)]
pub struct FieldError {
    /// What kind of error.
    pub kind: Kind,
    /// `{path}: {detail}`.
    pub text: String,
}

/// Compiled patterns, by their text in the schema.
pub type Patterns = HashMap<String, Regex>;

struct Checker<'a> {
    patterns: &'a Patterns,
    errors: Vec<FieldError>,
}

/// Checks `value` against `schema`; `path` is the value's path (`spec.tools[0]`, empty for the
/// root).
pub fn check(schema: &Value, value: &Value, path: &str, patterns: &Patterns) -> Vec<FieldError> {
    let mut c = Checker {
        patterns,
        errors: Vec::new(),
    };
    c.node(schema, value, path);
    c.errors
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name) == Some(&Value::Bool(true))
}

/// kube-openapi's JSON type and Go format of a decoded value.
fn data_type(value: &Value) -> (&'static str, &'static str) {
    match value {
        Value::Null => ("null", ""),
        Value::Bool(_) => ("boolean", ""),
        Value::Number(n) if n.is_i64() => ("integer", "int64"),
        Value::Number(_) => ("number", "float64"),
        Value::String(_) => ("string", ""),
        Value::Array(_) => ("array", ""),
        Value::Object(_) => ("object", ""),
    }
}

impl Checker<'_> {
    fn push(&mut self, kind: Kind, path: &str, detail: String) {
        self.errors.push(FieldError {
            kind,
            text: format!("{path}: {detail}"),
        });
    }

    fn type_invalid(&mut self, path: &str, want: &str, got: &str) {
        self.push(
            Kind::TypeInvalid,
            path,
            format!("Invalid value: \"{got}\": {path} in body must be of type {want}: \"{got}\""),
        );
    }

    fn node(&mut self, schema: &Value, value: &Value, path: &str) {
        let int_or_string = flag(schema, "x-kubernetes-int-or-string");
        let want = if int_or_string {
            Some("integer,string")
        } else {
            schema.get("type").and_then(Value::as_str)
        };
        if value.is_null() {
            if let Some(want) = want
                && !flag(schema, "nullable")
            {
                self.type_invalid(path, want, "null");
            }
            self.enumeration(schema, value, path);
            return;
        }
        if let Some(want) = want {
            self.data_type(schema, want, value, path);
        }
        if int_or_string {
            return;
        }
        self.enumeration(schema, value, path);
        match value {
            Value::String(s) => self.string(schema, s, path),
            Value::Number(n) => self.number(schema, want, n, path),
            Value::Array(items) => self.array(schema, items, path),
            Value::Object(map) => self.object(schema, map, path),
            Value::Bool(_) | Value::Null => {}
        }
    }

    /// kube-openapi's type validator: a float in an integer field fails on its Go format
    /// (`must be of type int32: "float64"`), anything else on its JSON type.
    fn data_type(&mut self, schema: &Value, want: &str, value: &Value, path: &str) {
        let (got, got_format) = data_type(value);
        let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
        let accepts = |t: &str| want.split(',').any(|w| w == t);
        let int_as_number = got == "integer" && accepts("number");
        let scalar = !matches!(value, Value::String(_) | Value::Array(_));
        let fits = accepts(got) || int_as_number;
        if !format.is_empty() {
            if scalar {
                if !(fits || got_format == format) {
                    return self.type_invalid(path, format, got_format);
                }
            } else if !(accepts("number") || accepts("integer")) {
                // A string's format (date-time, byte...) is no type check.
                return;
            }
        }
        if !fits {
            self.type_invalid(path, want, got);
        }
    }

    fn enumeration(&mut self, schema: &Value, value: &Value, path: &str) {
        let Some(options) = schema.get("enum").and_then(Value::as_array) else {
            return;
        };
        if options.contains(value) {
            return;
        }
        let supported: Vec<String> = options
            .iter()
            .map(|o| match o {
                Value::String(s) => go_fmt::quote(s),
                other => go_fmt::quote(&other.to_string()),
            })
            .collect();
        self.push(
            Kind::NotSupported,
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                go_fmt::field_value(value),
                supported.join(", ")
            ),
        );
    }

    /// Like kube-openapi's string validator, reports only the first of: too long, too short,
    /// not matching the pattern.
    fn string(&mut self, schema: &Value, s: &str, path: &str) {
        // Lengths count characters, though the message says bytes.
        let len = s.chars().count() as u64;
        let quoted = go_fmt::quote(s);
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            let detail = format!("Too long: may not be more than {max} bytes");
            return self.push(Kind::TooLong, path, detail);
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            let detail = format!(
                "Invalid value: {quoted}: {path} in body should be at least {min} chars long"
            );
            return self.push(Kind::Invalid, path, detail);
        }
        let Some(pattern) = schema.get("pattern").and_then(Value::as_str) else {
            return;
        };
        let matches = match self.patterns.get(pattern) {
            Some(re) => re.is_match(s),
            None => match super::go_regex(pattern) {
                Ok(re) => re.is_match(s),
                Err(e) => {
                    return self.push(Kind::Invalid, path, format!("Invalid value: {quoted}: {e}"));
                }
            },
        };
        if !matches {
            let detail =
                format!("Invalid value: {quoted}: {path} in body should match '{pattern}'");
            self.push(Kind::Invalid, path, detail);
        }
    }

    fn number(&mut self, schema: &Value, want: Option<&str>, n: &Number, path: &str) {
        let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
        let int = n.as_i64();
        let f = n.as_f64().unwrap_or_default();
        // kube-openapi checks that the value fits the declared integer format, and reports it
        // without a field path.
        let fits = match (want, format) {
            (Some("integer"), "int32") => int.is_some_and(|i| i32::try_from(i).is_ok()),
            (Some("integer"), _) => int.is_some(),
            (_, "float") => int.is_some() || f.abs() <= f64::from(f32::MAX),
            _ => true,
        };
        if !fits {
            let with = if format.is_empty() {
                String::new()
            } else {
                format!(" with format {format}")
            };
            let kind = want.unwrap_or("number");
            self.push(
                Kind::Invalid,
                "<nil>",
                format!(
                    "Invalid value: \"\": Checked value must be of type {kind}{with} in {path}"
                ),
            );
        }
        let shown = match int {
            Some(i) => i.to_string(),
            None => go_fmt::float(f),
        };
        // An integer is compared with the bound truncated to an integer, and printed so.
        let bound = |b: f64| match int {
            Some(_) => (b.trunc(), format!("{}", b.trunc() as i64)),
            None => (b, go_fmt::float(b)),
        };
        let value = int.map_or(f, |i| i as f64);
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            let (min, text) = bound(min);
            let exclusive = flag(schema, "exclusiveMinimum");
            if value < min || (exclusive && value == min) {
                let rel = if exclusive {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                self.push(
                    Kind::Invalid,
                    path,
                    format!("Invalid value: {shown}: {path} in body should be {rel} {text}"),
                );
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            let (max, text) = bound(max);
            let exclusive = flag(schema, "exclusiveMaximum");
            if value > max || (exclusive && value == max) {
                let rel = if exclusive {
                    "less than"
                } else {
                    "less than or equal to"
                };
                self.push(
                    Kind::Invalid,
                    path,
                    format!("Invalid value: {shown}: {path} in body should be {rel} {text}"),
                );
            }
        }
    }

    fn array(&mut self, schema: &Value, items: &[Value], path: &str) {
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
            && items.len() as u64 > max
        {
            self.push(
                Kind::TooMany,
                path,
                format!("Too many: {}: must have at most {max} items", items.len()),
            );
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                self.node(item_schema, item, &format!("{path}[{i}]"));
            }
        }
    }

    fn object(&mut self, schema: &Value, map: &Map<String, Value>, path: &str) {
        if flag(schema, "x-kubernetes-preserve-unknown-fields") {
            return;
        }
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !map.contains_key(name) {
                self.push(Kind::Required, &child(path, name), "Required value".into());
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties").filter(|a| a.is_object());
        for (name, value) in map {
            if let Some(s) = properties.and_then(|p| p.get(name)).or(additional) {
                self.node(s, value, &child(path, name));
            }
        }
    }
}
