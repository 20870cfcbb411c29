//! One operation of a document as a tool: its parameters and JSON body as one input object.
//!
//! Input properties are named in order path, query, header parameters, then the body: each takes
//! its parameter's name (the body: `body`); a name already taken gets its location as a prefix
//! (`query_id`, `header_id`; the body: `request_body`), and if that is taken too, `_2`, `_3`, …
//! Bedrock takes only property names matching `^[a-zA-Z0-9_.-]{1,64}$`, so other characters
//! become `_` and longer names are cut (`filter[status]` is the property `filter_status_`; the
//! request still carries `filter[status]`). Deterministic, so the same document always gives
//! the same schema.
//!
//! What cannot be sent faithfully makes the operation [`Unsupported`]: cookie parameters,
//! parameters described by `content`, serialization styles other than `simple` (path, header)
//! and `form` (query), a request body without a JSON media type (`application/json` or
//! `…+json`), a path placeholder no parameter describes. Header parameters named `Accept`,
//! `Content-Type` or `Authorization` are ignored, as the OpenAPI specification says.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::refs::Resolver;
use super::{
    MAX_DESCRIPTION_CHARS, OpenApiError, Operation, Parameter, ParameterLocation, RequestBody,
};

/// Why an operation cannot be offered (the message says what would work).
#[derive(Debug)]
pub struct Unsupported(pub String);

/// Either a problem with the whole document, or with this operation only.
#[derive(Debug)]
pub enum Failure {
    /// The document cannot be used.
    Document(OpenApiError),
    /// This operation cannot be offered.
    Unsupported(Unsupported),
}

impl From<OpenApiError> for Failure {
    fn from(e: OpenApiError) -> Self {
        Self::Document(e)
    }
}

fn unsupported(message: String) -> Failure {
    Failure::Unsupported(Unsupported(message))
}

/// Where an operation sits in its document.
pub struct Site<'a> {
    /// HTTP method, lower case as in the document.
    pub method: &'a str,
    /// Path template.
    pub path: &'a str,
    /// The path item (its `parameters` apply to every operation in it).
    pub item: &'a Value,
    /// The operation object.
    pub operation: &'a Value,
}

/// A raw parameter, references followed.
struct Raw {
    value: Value,
    at: String,
}

fn location(name: &str, location: &str) -> Result<ParameterLocation, Failure> {
    match location {
        "path" => Ok(ParameterLocation::Path),
        "query" => Ok(ParameterLocation::Query),
        "header" => Ok(ParameterLocation::Header),
        "cookie" => Err(unsupported(format!(
            "parameter {name} is a cookie, which tools do not send"
        ))),
        other => Err(unsupported(format!(
            "parameter {name} is in {other:?}, not path, query or header"
        ))),
    }
}

/// Path-level parameters, overridden by operation-level ones of the same name and location.
fn parameters(r: &Resolver<'_>, site: &Site<'_>, at: &str) -> Result<Vec<Raw>, Failure> {
    let mut out: Vec<Raw> = Vec::new();
    let lists = [
        (site.item.get("parameters"), format!("{at}.parameters")),
        (
            site.operation.get("parameters"),
            format!("{at}.{}.parameters", site.method),
        ),
    ];
    for (list, list_at) in lists {
        for (i, p) in list
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let p_at = format!("{list_at}[{i}]");
            let value = r.follow(p, &p_at)?;
            let key = (value.get("name").cloned(), value.get("in").cloned());
            out.retain(|o| (o.value.get("name").cloned(), o.value.get("in").cloned()) != key);
            out.push(Raw { value, at: p_at });
        }
    }
    Ok(out)
}

/// Longest property name Bedrock takes.
const MAX_PROPERTY: usize = 64;

/// `name` as a property name Bedrock takes, at most `max` characters.
fn safe(name: &str, max: usize) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

/// A property name not yet in `taken`: `preferred`, else `prefixed`, else `prefixed_2`, ….
fn property(taken: &mut BTreeSet<String>, preferred: &str, prefixed: &str) -> String {
    let mut name = safe(preferred, MAX_PROPERTY);
    let mut n = 1;
    while name.is_empty() || taken.contains(&name) {
        name = if n == 1 {
            safe(prefixed, MAX_PROPERTY)
        } else {
            let suffix = format!("_{n}");
            format!("{}{suffix}", safe(prefixed, MAX_PROPERTY - suffix.len()))
        };
        n += 1;
    }
    taken.insert(name.clone());
    name
}

/// The description Claude reads: summary and description, or method and path; capped.
fn description(site: &Site<'_>) -> String {
    let text = |k: &str| {
        site.operation
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let joined = match (text("summary"), text("description")) {
        (Some(s), Some(d)) if s != d => format!("{s}\n\n{d}"),
        (Some(s), _) => s.to_string(),
        (None, Some(d)) => d.to_string(),
        (None, None) => format!("{} {}", site.method.to_uppercase(), site.path),
    };
    if joined.chars().count() <= MAX_DESCRIPTION_CHARS {
        return joined;
    }
    let mut cut: String = joined.chars().take(MAX_DESCRIPTION_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// The `{name}` placeholders of a path template (a trailing `+`, API Gateway's greedy
/// parameter, removed).
pub fn placeholders(path: &str) -> Vec<&str> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .map(|name| name.strip_suffix('+').unwrap_or(name))
        .collect()
}

fn is_json(media: &str) -> bool {
    let base = media
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    base == "application/json" || (base.starts_with("application/") && base.ends_with("+json"))
}

/// Builds one operation named `name` with operationId `operation_id`.
pub fn build(
    r: &mut Resolver<'_>,
    site: &Site<'_>,
    operation_id: &str,
    name: String,
) -> Result<Operation, Failure> {
    let at = format!("paths.{}", site.path);
    let mut taken = BTreeSet::new();
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut params = Vec::new();
    let raws = parameters(r, site, &at)?;
    for wanted in [
        ParameterLocation::Path,
        ParameterLocation::Query,
        ParameterLocation::Header,
    ] {
        for raw in &raws {
            let p = &raw.value;
            let pname = p.get("name").and_then(Value::as_str).unwrap_or_default();
            let pin = p.get("in").and_then(Value::as_str).unwrap_or_default();
            if pname.is_empty() {
                return Err(unsupported(format!("{}: a parameter has no name", raw.at)));
            }
            let loc = location(pname, pin)?;
            if loc != wanted {
                continue;
            }
            let ignored = ["accept", "content-type", "authorization"];
            if loc == ParameterLocation::Header
                && ignored.contains(&pname.to_ascii_lowercase().as_str())
            {
                continue;
            }
            let default_style = if loc == ParameterLocation::Query {
                "form"
            } else {
                "simple"
            };
            let style = p
                .get("style")
                .and_then(Value::as_str)
                .unwrap_or(default_style);
            if style != default_style {
                return Err(unsupported(format!(
                    "parameter {pname} uses style {style}; {pin} parameters are sent in style {default_style} only"
                )));
            }
            let explode = p
                .get("explode")
                .and_then(Value::as_bool)
                .unwrap_or(style == "form");
            let Some(schema) = p.get("schema") else {
                return Err(unsupported(format!(
                    "parameter {pname} has no schema (parameters described by content are not supported)"
                )));
            };
            let mut schema = r.expand(schema, &format!("{}.schema", raw.at))?;
            if let (Value::Object(s), Some(d)) = (&mut schema, p.get("description")) {
                s.entry("description").or_insert_with(|| d.clone());
            }
            let location_name = format!("{pin}_{pname}");
            let prop = property(&mut taken, pname, &location_name);
            let is_required = loc == ParameterLocation::Path
                || p.get("required").and_then(Value::as_bool).unwrap_or(false);
            if is_required {
                required.push(Value::from(prop.clone()));
            }
            properties.insert(prop.clone(), schema);
            params.push(Parameter {
                name: pname.to_string(),
                location: loc,
                property: prop,
                required: is_required,
                explode,
            });
        }
    }
    for placeholder in placeholders(site.path) {
        if !params
            .iter()
            .any(|p| p.location == ParameterLocation::Path && p.name == placeholder)
        {
            return Err(unsupported(format!(
                "the path has {{{placeholder}}}, but no path parameter describes it"
            )));
        }
    }
    let body = match site.operation.get("requestBody") {
        None => None,
        Some(rb) => {
            let rb_at = format!("{at}.{}.requestBody", site.method);
            let rb = r.follow(rb, &rb_at)?;
            let content = rb.get("content").and_then(Value::as_object);
            let media = content.and_then(|c| {
                c.iter()
                    .find(|(k, _)| k.as_str() == "application/json")
                    .or_else(|| c.iter().find(|(k, _)| is_json(k)))
            });
            let Some((content_type, media)) = media else {
                let types: Vec<&str> = content
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k.as_str())
                    .collect();
                return Err(unsupported(format!(
                    "its request body is {}, not JSON (application/json or +json)",
                    if types.is_empty() {
                        "undescribed".into()
                    } else {
                        types.join(", ")
                    }
                )));
            };
            let mut schema = match media.get("schema") {
                Some(s) => r.expand(s, &format!("{rb_at}.content.{content_type}.schema"))?,
                None => json!({}),
            };
            if let (Value::Object(s), Some(d)) = (&mut schema, rb.get("description")) {
                s.entry("description").or_insert_with(|| d.clone());
            }
            let prop = property(&mut taken, "body", "request_body");
            let is_required = rb.get("required").and_then(Value::as_bool).unwrap_or(false);
            if is_required {
                required.push(Value::from(prop.clone()));
            }
            properties.insert(prop.clone(), schema);
            Some(RequestBody {
                property: prop,
                required: is_required,
                content_type: content_type.clone(),
            })
        }
    };
    let mut input_schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        input_schema["required"] = Value::Array(required);
    }
    Ok(Operation {
        name,
        operation_id: operation_id.to_string(),
        description: description(site),
        method: site.method.to_uppercase(),
        path: site.path.to_string(),
        parameters: params,
        body,
        input_schema,
    })
}
