//! One call of an OpenAPI operation as an HTTP request: path parameters percent-encoded as path
//! segments (style `simple`), query parameters in style `form` (arrays repeated, or
//! comma-joined with `explode: false`; percent-encoded, a space as `%20`), header parameters in style `simple`, the JSON body with
//! the document's media type, then the tool's configured headers (which win over a header
//! parameter of the same name: they carry keys the author set).

use agentry_crds::openapi::{Operation, ParameterLocation};
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::Value;

/// A scalar as text: strings as they are, other JSON as written.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Style `simple`: arrays comma-joined; objects `k,v,k,v`, or `k=v,k=v` exploded.
fn simple(v: &Value, explode: bool) -> String {
    match v {
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(","),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let sep = if explode { "=" } else { "," };
                format!("{k}{sep}{}", scalar(v))
            })
            .collect::<Vec<_>>()
            .join(","),
        other => scalar(other),
    }
}

/// Style `form`: the query pairs of one parameter, percent-encoded (RFC 3986, so a space is
/// `%20`, never `+`). Arrays and objects repeat the parameter when exploded, else join their
/// items with literal commas (`fields=id,name`; a comma inside an item is `%2C`).
fn form(name: &str, v: &Value, explode: bool) -> Vec<String> {
    let name = encode(name);
    let join = |items: Vec<String>| items.join(",");
    match (v, explode) {
        (Value::Array(items), true) => items
            .iter()
            .map(|i| format!("{name}={}", encode(&scalar(i))))
            .collect(),
        (Value::Object(map), true) => map
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(&scalar(v))))
            .collect(),
        (Value::Array(items), false) => vec![format!(
            "{name}={}",
            join(items.iter().map(|i| encode(&scalar(i))).collect())
        )],
        (Value::Object(map), false) => vec![format!(
            "{name}={}",
            join(
                map.iter()
                    .flat_map(|(k, v)| [encode(k), encode(&scalar(v))])
                    .collect()
            )
        )],
        (other, _) => vec![format!("{name}={}", encode(&scalar(other)))],
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters: a path segment, or a
/// query name or value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path template with `{name}` filled; `{name+}` (API Gateway's greedy parameter) keeps
/// the value's `/` as separators.
fn fill_path(op: &Operation, input: &Value) -> Result<String, String> {
    let mut path = op.path.clone();
    for p in op
        .parameters
        .iter()
        .filter(|p| p.location == ParameterLocation::Path)
    {
        let Some(value) = input.get(&p.property).filter(|v| !v.is_null()) else {
            return Err(format!("input.{}: required (path parameter)", p.property));
        };
        let text = simple(value, p.explode);
        if text.is_empty() {
            return Err(format!(
                "input.{}: a path parameter cannot be empty",
                p.property
            ));
        }
        let greedy = format!("{{{}+}}", p.name);
        path = if path.contains(&greedy) {
            let encoded: Vec<String> = text.split('/').map(encode).collect();
            path.replace(&greedy, &encoded.join("/"))
        } else {
            path.replace(&format!("{{{}}}", p.name), &encode(&text))
        };
    }
    Ok(path)
}

/// Builds the request of one call of `op` on the API at `base`.
pub(super) fn build(
    client: &reqwest::Client,
    base: &str,
    op: &Operation,
    headers: &[(HeaderName, HeaderValue)],
    input: &Value,
) -> Result<reqwest::Request, String> {
    let path = fill_path(op, input)?;
    let joined = format!("{}{path}", base.trim_end_matches('/'));
    let mut url = reqwest::Url::parse(&joined)
        .map_err(|e| format!("the operation's URL {joined} is invalid: {e}"))?;
    let mut pairs = Vec::new();
    let mut header_params = Vec::new();
    for p in &op.parameters {
        let Some(value) = input.get(&p.property).filter(|v| !v.is_null()) else {
            continue;
        };
        match p.location {
            ParameterLocation::Path => {}
            ParameterLocation::Query => pairs.extend(form(&p.name, value, p.explode)),
            ParameterLocation::Header => {
                let name = HeaderName::from_bytes(p.name.as_bytes()).map_err(|_| {
                    format!("header parameter {} is not a valid header name", p.name)
                })?;
                let value = HeaderValue::from_str(&simple(value, p.explode))
                    .map_err(|_| format!("input.{}: not a valid HTTP header value", p.property))?;
                header_params.push((name, value));
            }
        }
    }
    if !pairs.is_empty() {
        let added = pairs.join("&");
        let query = match url.query() {
            Some(q) if !q.is_empty() => format!("{q}&{added}"),
            _ => added,
        };
        url.set_query(Some(&query));
    }
    let method = reqwest::Method::from_bytes(op.method.as_bytes())
        .map_err(|_| format!("the operation's method {} is invalid", op.method))?;
    let mut request = client.request(method, url);
    if let Some(body) = &op.body
        && let Some(value) = input.get(&body.property)
    {
        request = request
            .header(CONTENT_TYPE, body.content_type.as_str())
            .body(value.to_string());
    }
    let mut request = request.build().map_err(|e| {
        format!(
            "the operation's request could not be built: {}",
            crate::error_chain(&e)
        )
    })?;
    let map = request.headers_mut();
    for (name, value) in header_params.into_iter().chain(headers.iter().cloned()) {
        map.insert(name, value);
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use agentry_crds::openapi::{Parameter, RequestBody};
    use serde_json::json;

    use super::*;

    fn param(name: &str, location: ParameterLocation, explode: bool) -> Parameter {
        Parameter {
            name: name.into(),
            location,
            property: name.into(),
            required: false,
            explode,
        }
    }

    fn op(path: &str, parameters: Vec<Parameter>, body: Option<RequestBody>) -> Operation {
        Operation {
            name: "t_op".into(),
            operation_id: "op".into(),
            description: "d".into(),
            method: "POST".into(),
            path: path.into(),
            parameters,
            body,
            input_schema: json!({"type": "object"}),
        }
    }

    #[test]
    fn path_query_header_and_body_are_filled_from_the_input() {
        let o = op(
            "/pets/{petId}/toys",
            vec![
                param("petId", ParameterLocation::Path, false),
                param("tags", ParameterLocation::Query, true),
                param("fields", ParameterLocation::Query, false),
                param("X-Trace", ParameterLocation::Header, false),
            ],
            Some(RequestBody {
                property: "body".into(),
                required: true,
                content_type: "application/merge-patch+json".into(),
            }),
        );
        let input = json!({"petId": "a b/c", "tags": ["x", "y&z"], "fields": ["id", "name"], "X-Trace": 7, "body": {"n": 1}});
        let client = reqwest::Client::new();
        let r = build(&client, "http://127.0.0.1:9/v1/", &o, &[], &input).unwrap();
        assert_eq!(
            r.url().as_str(),
            "http://127.0.0.1:9/v1/pets/a%20b%2Fc/toys?tags=x&tags=y%26z&fields=id,name"
        );
        assert_eq!(r.headers()["x-trace"], "7");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/merge-patch+json");
        assert_eq!(r.body().and_then(|b| b.as_bytes()), Some(&b"{\"n\":1}"[..]));
    }

    #[test]
    fn a_greedy_path_parameter_keeps_its_slashes_and_configured_headers_win() {
        let o = op(
            "/{proxy+}",
            vec![
                param("proxy", ParameterLocation::Path, false),
                param("x-api-key", ParameterLocation::Header, false),
            ],
            None,
        );
        let configured = [(
            HeaderName::from_static("x-api-key"),
            HeaderValue::from_static("secret"),
        )];
        let input = json!({"proxy": "a/b c", "x-api-key": "from-claude"});
        let client = reqwest::Client::new();
        let r = build(&client, "http://127.0.0.1:9", &o, &configured, &input).unwrap();
        assert_eq!(r.url().path(), "/a/b%20c");
        assert_eq!(r.headers()["x-api-key"], "secret");
        assert!(r.body().is_none());
    }

    #[test]
    fn objects_and_arrays_follow_the_style_rules_and_spaces_are_percent_encoded() {
        let v = json!({"R": 100, "G": 200});
        assert_eq!(simple(&v, false), "G,200,R,100");
        assert_eq!(simple(&v, true), "G=200,R=100");
        assert_eq!(form("color", &v, true), ["G=200", "R=100"]);
        assert_eq!(form("color", &v, false), ["color=G,200,R,100"]);
        assert_eq!(form("q", &json!("a b+c"), true), ["q=a%20b%2Bc"]);
        assert_eq!(form("f", &json!(["a,b", "c"]), false), ["f=a%2Cb,c"]);
    }

    #[test]
    fn a_missing_path_parameter_is_an_error_naming_it() {
        let o = op(
            "/pets/{petId}",
            vec![param("petId", ParameterLocation::Path, false)],
            None,
        );
        let client = reqwest::Client::new();
        let err = build(&client, "http://127.0.0.1:9", &o, &[], &json!({})).unwrap_err();
        assert_eq!(err, "input.petId: required (path parameter)");
    }
}
