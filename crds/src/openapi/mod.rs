//! OpenAPI documents turned into tools: each selected operation of an OpenAPI 3.0 or 3.1 document
//! becomes one [`Operation`], with the name, description and input schema Claude sees and what a
//! call needs to fill the path, query, headers and body. The operator converts a ConfigMap-held
//! document (so a document it cannot use shows in `ToolsResolved`); the runtime converts one it
//! fetched from a URL. Pure.
//!
//! - [`document`]: reading JSON or YAML, the version check;
//! - [`refs`]: local `$ref`s followed and expanded, cycles and remote references refused;
//! - [`operation`]: one operation's input schema, parameters and body;
//! - [`convert`] (here): which operations, their names, the limits.
//!
//! Every `get`, `put`, `post`, `delete`, `patch`, `head` and `options` operation under `paths` is
//! a candidate. One without an `operationId` (API Gateway exports have none) gets one derived
//! from its method and path ([`derived_operation_id`]). Its tool name is
//! [`crate::naming::derive`] of the Agent tool's name and the operationId. `x-` extensions
//! (`x-amazon-apigateway-integration`, …) are ignored; API Gateway's `ANY` method
//! (`x-amazon-apigateway-any-method`) is not an HTTP method and is skipped with a reason.
//!
//! An operation that cannot be sent faithfully (see [`operation`]) is skipped, with the reason
//! in [`Conversion::skipped`], when every operation is offered, and refused when `operations`
//! names it. When every operation is offered, an `options` operation without an operationId is
//! skipped too: in API Gateway exports these are the CORS preflight mocks, noise to Claude
//! (naming its derived id in `operations` offers it). Problems of the document itself (a remote or broken `$ref`, a recursive schema,
//! limits) refuse the whole document.

mod document;
mod error;
mod operation;
mod refs;
#[cfg(feature = "telemetry")]
pub(crate) use refs::percent_decode;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use error::OpenApiError;
pub use refs::MAX_SCHEMA_NODES;

use crate::naming;
use operation::{Failure, Site};

/// Largest document read, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Most operations one tool offers.
pub const MAX_OPERATIONS: usize = 128;
/// Largest input schema of one operation, `$ref`s expanded, in bytes of JSON.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Largest total of one tool's converted operations, in bytes of JSON: they travel in the
/// Agent's runtime ConfigMap, which Kubernetes caps at 1 MiB.
pub const MAX_TOTAL_BYTES: usize = 512 * 1024;
/// Largest total of the converted operations of all of one Agent's ConfigMap-held documents
/// (the operator checks it), leaving room in the runtime ConfigMap for the rest.
pub const MAX_AGENT_BYTES: usize = 768 * 1024;
/// Longest description, in characters; longer ones are cut and end in `…`.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// The methods that are operations, in the order a path's operations are offered.
pub const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

/// One operation offered as a tool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operation {
    /// Name Claude calls it by: `<tool name>_<operationId>`, valid for Bedrock.
    pub name: String,
    /// The document's `operationId`.
    pub operation_id: String,
    /// What Claude reads: the summary and description.
    pub description: String,
    /// HTTP method, upper case.
    pub method: String,
    /// Path template, for example `/pets/{petId}`, appended to the tool's base URL.
    pub path: String,
    /// Where each input property goes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    /// The JSON request body, if the operation takes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<RequestBody>,
    /// JSON Schema of the input, `$ref`s resolved.
    pub input_schema: serde_json::Value,
}

/// A path, query or header parameter.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Parameter {
    /// The parameter's name in the document (and on the wire).
    pub name: String,
    /// Where it goes.
    #[serde(rename = "in")]
    pub location: ParameterLocation,
    /// The input property holding its value.
    pub property: String,
    /// Whether the document requires it.
    pub required: bool,
    /// Query arrays and objects: `true` (the default of style `form`) repeats the parameter per
    /// item (`tag=a&tag=b`), `false` joins the items with commas (`tag=a,b`). Path and header
    /// values are always comma-joined (style `simple`); `true` writes their objects as
    /// `k=v,k=v` rather than `k,v,k,v`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub explode: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Where a parameter goes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ParameterLocation {
    /// A `{name}` segment of the path.
    Path,
    /// The query string.
    Query,
    /// A request header.
    Header,
}

/// A JSON request body.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestBody {
    /// The input property holding the body.
    pub property: String,
    /// Whether the document requires it.
    pub required: bool,
    /// The media type sent, for example `application/json`.
    pub content_type: String,
}

/// An operation left out when every operation is offered, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Its operationId (given or derived).
    pub operation_id: String,
    /// Method and path, `POST /pets`.
    pub at: String,
    /// Why, and what would work.
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.operation_id, self.at, self.reason)
    }
}

/// What a document offers.
#[derive(Clone, Debug, PartialEq)]
pub struct Conversion {
    /// The operations, in path order (and [`METHODS`] order within a path).
    pub operations: Vec<Operation>,
    /// Operations left out, with the reason.
    pub skipped: Vec<Skipped>,
}

/// The operationId of an operation that has none: the lower-case method, then each path
/// segment, joined with `_`; a `{param}` segment (or API Gateway's greedy `{param+}`) becomes
/// `by_param`, and characters other than letters, digits, `_` and `-` become `_`.
/// `GET /pets/{petId}` gives `get_pets_by_petId`, `POST /` gives `post`.
pub fn derived_operation_id(method: &str, path: &str) -> String {
    let mut parts = vec![method.to_ascii_lowercase()];
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let param = segment
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .map(|s| s.strip_suffix('+').unwrap_or(s));
        parts.push(match param {
            Some(p) => format!("by_{p}"),
            None => segment.to_string(),
        });
    }
    parts
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One candidate operation.
struct Candidate<'a> {
    operation_id: String,
    /// The document gives no operationId.
    derived: bool,
    site: Site<'a>,
}

impl Candidate<'_> {
    fn at(&self) -> String {
        format!("{} {}", self.site.method.to_uppercase(), self.site.path)
    }
}

/// Every operation of `doc`, in path order, and the ANY methods skipped.
fn candidates<'a>(doc: &'a Value, skipped: &mut Vec<Skipped>) -> Vec<Candidate<'a>> {
    let mut out = Vec::new();
    let paths = doc.get("paths").and_then(Value::as_object);
    let mut paths: Vec<(&String, &Value)> = paths.into_iter().flatten().collect();
    paths.sort_by(|a, b| a.0.cmp(b.0));
    for (path, item) in paths {
        if item.get("$ref").is_some() {
            skipped.push(Skipped {
                operation_id: "(every operation of the path)".into(),
                at: path.clone(),
                reason: "path items given by $ref are not supported; write the path item inline"
                    .into(),
            });
            continue;
        }
        if item.get("x-amazon-apigateway-any-method").is_some() {
            skipped.push(Skipped {
                operation_id: derived_operation_id("any", path),
                at: format!("ANY {path}"),
                reason: "API Gateway's ANY method is not an HTTP method; add the methods to offer to the path".into(),
            });
        }
        for method in METHODS {
            let Some(operation) = item.get(method).filter(|o| o.is_object()) else {
                continue;
            };
            let given = operation
                .get("operationId")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty());
            out.push(Candidate {
                operation_id: given
                    .map_or_else(|| derived_operation_id(method, path), String::from),
                derived: given.is_none(),
                site: Site {
                    method,
                    path,
                    item,
                    operation,
                },
            });
        }
    }
    out
}

/// The operations of document `text` for the Agent tool `tool`: those named in `selected`
/// (by operationId), or every one when `selected` is empty.
pub fn convert(tool: &str, text: &str, selected: &[String]) -> Result<Conversion, OpenApiError> {
    let doc = document::parse(tool, text)?;
    let mut skipped = Vec::new();
    let all = candidates(&doc, &mut skipped);
    let chosen: Vec<&Candidate<'_>> = if selected.is_empty() {
        if all.len() > MAX_OPERATIONS {
            return Err(OpenApiError::TooManyOperations {
                tool: tool.into(),
                count: all.len(),
            });
        }
        all.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for id in selected {
            let Some(c) = all.iter().find(|c| &c.operation_id == id) else {
                let mut known: Vec<&str> = all.iter().map(|c| c.operation_id.as_str()).collect();
                known.truncate(40);
                return Err(OpenApiError::UnknownOperation {
                    tool: tool.into(),
                    operation_id: id.clone(),
                    known: known.join(", "),
                });
            };
            if !chosen.iter().any(|o: &&Candidate<'_>| std::ptr::eq(*o, c)) {
                chosen.push(c);
            }
        }
        // Offered in document order whatever order they were listed in.
        chosen.sort_by_key(|c| all.iter().position(|a| std::ptr::eq(a, *c)));
        chosen
    };
    let mut by_id: BTreeMap<&str, String> = BTreeMap::new();
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    let mut operations = Vec::new();
    let mut total = 0;
    for c in chosen {
        let at = c.at();
        if selected.is_empty() && c.derived && c.site.method == "options" {
            skipped.push(Skipped {
                operation_id: c.operation_id.clone(),
                at,
                reason: "an OPTIONS operation without an operationId (API Gateway's CORS \
                         preflight) is offered only when operations names it"
                    .into(),
            });
            continue;
        }
        if let Some(first) = by_id.insert(&c.operation_id, at.clone()) {
            return Err(OpenApiError::DuplicateOperationId {
                tool: tool.into(),
                operation_id: c.operation_id.clone(),
                first,
                second: at,
            });
        }
        let name = naming::derive(tool, &c.operation_id);
        let mut resolver = refs::Resolver::new(tool, &c.operation_id, &doc);
        let op = match operation::build(&mut resolver, &c.site, &c.operation_id, name.clone()) {
            Ok(op) => op,
            Err(Failure::Document(e)) => return Err(e),
            Err(Failure::Unsupported(why)) if selected.is_empty() => {
                skipped.push(Skipped {
                    operation_id: c.operation_id.clone(),
                    at,
                    reason: why.0,
                });
                continue;
            }
            Err(Failure::Unsupported(why)) => {
                return Err(OpenApiError::Unsupported {
                    tool: tool.into(),
                    operation_id: c.operation_id.clone(),
                    at,
                    reason: why.0,
                });
            }
        };
        let described = format!("{} ({at})", c.operation_id);
        if let Some(first) = by_name.insert(name.clone(), described.clone()) {
            return Err(OpenApiError::DuplicateName {
                tool: tool.into(),
                name,
                first,
                second: described,
            });
        }
        if op.input_schema.to_string().len() > MAX_SCHEMA_BYTES {
            return Err(OpenApiError::SchemaTooLarge {
                tool: tool.into(),
                operation_id: c.operation_id.clone(),
            });
        }
        total += serde_json::to_string(&op).map_or(0, |s| s.len());
        operations.push(op);
    }
    if total > MAX_TOTAL_BYTES {
        return Err(OpenApiError::TotalTooLarge {
            tool: tool.into(),
            size: total,
        });
    }
    if operations.is_empty() {
        let why: Vec<String> = skipped.iter().map(ToString::to_string).collect();
        return Err(OpenApiError::NoOperations {
            tool: tool.into(),
            why: if why.is_empty() {
                String::new()
            } else {
                format!(": {}", why.join("; "))
            },
        });
    }
    Ok(Conversion {
        operations,
        skipped,
    })
}

#[cfg(test)]
mod tests;
