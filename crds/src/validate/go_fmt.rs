//! Values printed the way the API server (Go) prints them in its messages: `%v`, `%#v`, `%T`,
//! `%q` and Go's shortest float form, over JSON values whose numbers are already normalised (an
//! `i64` is Go's `int64`, anything else Go's `float64`; see [`super::normalise_numbers`]).

use serde_json::Value;

/// Go's `%v` of a `float64`: the shortest digits that round-trip, in exponent form when the
/// exponent is below -4 or at least 6 (`1e+08`, `1.2345675e+06`, `1e-05`, `128000`).
pub fn float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return format!("{f}");
    }
    // Rust's `{:e}` also gives the shortest round-trip digits: "1.2345675e6".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        format!("{f}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

fn number(n: &serde_json::Number) -> String {
    match n.as_i64() {
        Some(i) => i.to_string(),
        None => float(n.as_f64().unwrap_or_default()),
    }
}

/// Go's `%q` of a string (`strconv.Quote`): printable characters as they are, the rest escaped.
/// Go decides "printable" from Unicode tables; this escapes controls, whitespace other than the
/// ASCII space and the common invisible format characters, which covers what appears in YAML.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control()
                || (c.is_whitespace() && c != ' ')
                || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}') =>
            {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%v` of a decoded JSON value (`map[a:1 b:[x y]]`).
pub fn v(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(v).collect::<Vec<_>>().join(" ")),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", v(&map[*k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Go's `%#v` of a decoded JSON value (`map[string]interface {}{"a":1}`).
pub fn sharp_v(value: &Value) -> String {
    match value {
        Value::Null => "interface {}(nil)".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => quote(s),
        Value::Array(items) => format!(
            "[]interface {{}}{{{}}}",
            items.iter().map(sharp_v).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", quote(k), sharp_v(&map[*k])))
                .collect();
            format!("map[string]interface {{}}{{{}}}", parts.join(", "))
        }
    }
}

/// Go's `%T` of a decoded JSON value.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// A value as `field.Error` prints it after `Invalid value: ` (strings quoted, null as `null`).
pub fn field_value(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::String(s) => quote(s),
        Value::Number(n) => number(n),
        Value::Bool(b) => b.to_string(),
        other => sharp_v(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_like_go() {
        let cases = [
            (1e8, "1e+08"),
            (1.2345675e6, "1.2345675e+06"),
            (128000.0, "128000"),
            (1e-5, "1e-05"),
            (-1e-5, "-1e-05"),
            (0.5, "0.5"),
            (1e21, "1e+21"),
            (1.0, "1"),
            (0.0001, "0.0001"),
        ];
        for (f, want) in cases {
            assert_eq!(float(f), want, "{f}");
        }
    }

    #[test]
    fn values_print_like_go_verbs() {
        let v1 = json!({"b": {"c": 1}, "a": [true]});
        assert_eq!(
            sharp_v(&v1),
            r#"map[string]interface {}{"a":[]interface {}{true}, "b":map[string]interface {}{"c":1}}"#
        );
        assert_eq!(v(&json!({"a": [1, "x"]})), "map[a:[1 x]]");
        assert_eq!(
            sharp_v(&json!([1, "x", {"a": null}])),
            r#"[]interface {}{1, "x", map[string]interface {}{"a":interface {}(nil)}}"#
        );
        assert_eq!(quote("a\"b\n\u{e9}\t"), r#""a\"b\né\t""#);
        assert_eq!(
            quote("a\u{1}\u{7f}\u{85}\u{200b}"),
            r#""a\x01\x7f\u0085\u200b""#
        );
    }
}
