//! A small JSON Schema check of tool input (types, required fields, enums), so invalid input
//! goes back to Claude as a tool error naming the field instead of reaching the tool.

use serde_json::Value;

fn type_ok(want: &str, v: &Value) -> bool {
    match want {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    }
}

/// Checks `value` against `schema` at `path`; the first problem, naming the field.
pub fn check(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    if let Some(want) = schema.get("type").and_then(Value::as_str)
        && !type_ok(want, value)
    {
        return Err(format!("{path}: expected {want}, got {value}"));
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        return Err(format!(
            "{path}: {value} is not one of {}",
            Value::Array(options.clone())
        ));
    }
    if let Value::Object(map) = value {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !map.contains_key(name) {
                return Err(format!("{path}.{name}: required"));
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (k, v) in map {
                if let Some(s) = props.get(k) {
                    check(s, v, &format!("{path}.{k}"))?;
                }
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(s, item, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"sign": {"type": "string"}, "n": {"type": "integer"}, "mode": {"enum": ["a", "b"]}}, "required": ["sign"]})
    }

    #[test]
    fn valid_input_passes() {
        assert_eq!(
            check(
                &schema(),
                &json!({"sign": "WZPZ", "n": 2, "extra": 1}),
                "input"
            ),
            Ok(())
        );
    }

    #[test]
    fn problems_name_the_field() {
        assert_eq!(
            check(&schema(), &json!({}), "input"),
            Err("input.sign: required".into())
        );
        assert_eq!(
            check(&schema(), &json!({"sign": 5}), "input"),
            Err("input.sign: expected string, got 5".into())
        );
        assert!(
            check(&schema(), &json!({"sign": "x", "mode": "c"}), "input")
                .unwrap_err()
                .starts_with("input.mode:")
        );
        assert!(
            check(&schema(), &json!("text"), "input")
                .unwrap_err()
                .contains("expected object")
        );
    }
}
