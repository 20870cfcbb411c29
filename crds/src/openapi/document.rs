//! Reading a document: JSON or YAML, at most [`MAX_DOCUMENT_BYTES`], OpenAPI 3.0 or 3.1.

use serde_json::{Map, Value};

use super::{MAX_DOCUMENT_BYTES, OpenApiError};

/// Parses `text` as JSON (when it starts with `{`) or YAML and checks its `openapi` version.
pub fn parse(tool: &str, text: &str) -> Result<Value, OpenApiError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(OpenApiError::TooLarge {
            tool: tool.into(),
            size: text.len(),
        });
    }
    let parse_error = |message: String| OpenApiError::Parse {
        tool: tool.into(),
        message,
    };
    let doc = if text.trim_start().starts_with('{') {
        serde_json::from_str::<Value>(text).map_err(|e| parse_error(e.to_string()))?
    } else {
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| parse_error(e.to_string()))?;
        from_yaml(yaml)
    };
    let Some(object) = doc.as_object() else {
        return Err(parse_error("the top level is not an object".into()));
    };
    if object.contains_key("swagger") {
        return Err(OpenApiError::Swagger2 { tool: tool.into() });
    }
    match object.get("openapi") {
        Some(Value::String(v)) if v.starts_with("3.0.") || v.starts_with("3.1.") => Ok(doc),
        other => Err(OpenApiError::Version {
            tool: tool.into(),
            found: other.map_or_else(|| "missing".into(), Value::to_string),
        }),
    }
}

/// YAML to JSON. YAML keys need not be strings (`200:` under `responses` is an integer), JSON
/// keys must: scalar keys become their text, other keys their YAML text.
fn from_yaml(value: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(from_yaml).collect()),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    Y::Null => "null".into(),
                    other => serde_yaml::to_string(&other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                out.insert(key, from_yaml(v));
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => from_yaml(tagged.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_with_integer_response_codes_parses() {
        let doc = parse(
            "t",
            "openapi: 3.0.3\npaths:\n  /a:\n    get:\n      responses:\n        200: {description: ok}\n",
        )
        .unwrap();
        assert_eq!(
            doc["paths"]["/a"]["get"]["responses"]["200"]["description"],
            "ok"
        );
    }

    #[test]
    fn json_3_1_parses() {
        let doc = parse("t", r#"{"openapi": "3.1.0", "paths": {}}"#).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
    }

    #[test]
    fn swagger_2_is_refused_saying_so() {
        let err = parse("pets", "swagger: '2.0'\npaths: {}\n").unwrap_err();
        assert_eq!(
            err,
            OpenApiError::Swagger2 {
                tool: "pets".into()
            }
        );
        assert!(err.to_string().contains("Swagger 2.0"), "{err}");
    }

    #[test]
    fn other_versions_are_refused_naming_the_version() {
        let err = parse("t", "openapi: 4.0.0\n").unwrap_err().to_string();
        assert!(err.contains("\"4.0.0\"") && err.contains("3.0.x"), "{err}");
        let err = parse("t", "info: {}\n").unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn a_document_over_one_mebibyte_is_refused_before_parsing() {
        let big = format!("openapi: 3.0.0\nx: '{}'\n", "a".repeat(MAX_DOCUMENT_BYTES));
        assert!(matches!(
            parse("t", &big),
            Err(OpenApiError::TooLarge { .. })
        ));
    }

    #[test]
    fn text_that_is_not_an_object_is_refused() {
        let err = parse("t", "- a\n- b\n").unwrap_err().to_string();
        assert!(err.contains("not an object"), "{err}");
        let err = parse("t", "{not json").unwrap_err().to_string();
        assert!(
            err.starts_with("tool t: the OpenAPI document is not"),
            "{err}"
        );
    }
}
