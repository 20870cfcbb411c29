//! OpenAPI tools: every selected operation of an HTTP API becomes a tool of its own.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{HttpAuth, HttpHeader, SIGNED_HEADERS_MESSAGE, SIGNED_HEADERS_RULE, ServiceRef};
use crate::agent::KeyRef;

/// An HTTP API described by an OpenAPI 3.0 or 3.1 document (JSON or YAML). Each selected
/// operation is offered as its own tool, named `<name>_<operationId>` (characters other than
/// letters, digits, `_` and `-` become `_`; a name longer than 64 characters is shortened and ends
/// in `_` and 8 hex digits of a hash), described by its summary and description, taking its path,
/// query and header parameters and its JSON request body as input. An operation without an
/// `operationId` gets one from its method and path (`GET /pets/{petId}` gives
/// `get_pets_by_petId`), so an API Gateway export (`aws apigateway get-export --export-type
/// oas30`) works as it comes; `x-` extensions are ignored.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.url) != has(self.service)",
    "message": "an openapi tool sets exactly one of url or service",
}, {
    "rule": SIGNED_HEADERS_RULE,
    "message": SIGNED_HEADERS_MESSAGE,
}]))]
pub struct OpenApiTool {
    /// Where the document is.
    pub document: OpenApiDocumentSource,

    /// Base URL the operations' paths are appended to, for example
    /// `https://abc123.execute-api.eu-west-1.amazonaws.com/prod`. The document's `servers` are
    /// not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^https?://\S+$"))]
    pub url: Option<String>,

    /// An in-cluster Service serving the API; the base URL is
    /// `http://<name>.<namespace>.svc.cluster.local:<port><path>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRef>,

    /// `operationId`s of the operations to offer (at most 128), derived ones included. Default
    /// (unset or empty): every operation the document has, if there are at most 128, except
    /// those that cannot be sent faithfully (a body that is not JSON, a cookie parameter, an
    /// unsupported parameter style) and `options` operations without an `operationId` (API
    /// Gateway's CORS preflights), which are skipped. Naming one the document lacks, or one
    /// that cannot be sent, is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 128),
        inner(length(min = 1, max = 256), regex(pattern = r"^\S+$"))
    )]
    pub operations: Option<Vec<String>>,

    /// Headers sent with every call (at most 32), each a literal value or a Secret key, for
    /// example an API key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub headers: Vec<HttpHeader>,

    /// How calls authenticate beyond `headers`, as for http tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<HttpAuth>,

    /// Deadline of one call in seconds (1 to 3600). Default: `limits.toolTimeoutSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: Option<i32>,
}

/// Where an OpenAPI document is: a ConfigMap key (read and checked by the operator, so a
/// document it cannot use shows in `ToolsResolved`) or a URL (fetched by the runtime at start).
/// At most 1 MiB either way.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.configMapKeyRef) != has(self.url)",
    "message": "an openapi document sets exactly one of configMapKeyRef or url",
}]))]
pub struct OpenApiDocumentSource {
    /// A key of a ConfigMap in the Agent's namespace holding the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<KeyRef>,

    /// Absolute `http://` or `https://` URL of the document, fetched by the runtime at start
    /// (with the tool's headers and auth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^https?://\S+$"))]
    pub url: Option<String>,
}
