//! OpenAPI documents turned into tools: each selected operation of an OpenAPI 3.0 or 3.1 document
//! becomes one [`Operation`], with the name, description and input schema Claude sees and what a
//! call needs to fill the path, query, headers and body. The operator converts a ConfigMap-held
//! document (so a document it cannot use shows in `ToolsResolved`); the runtime converts one it
//! fetched from a URL. Pure.

use serde::{Deserialize, Serialize};

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
