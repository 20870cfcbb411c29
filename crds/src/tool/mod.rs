//! Tools an Agent offers Claude: HTTP endpoints, Lambda functions, whole HTTP APIs from their
//! OpenAPI document, other Agents, MCP servers, and A2A agents.
//!
//! Each tool sets exactly one kind. The rule is a CEL rule in the schema (so the API server
//! refuses a tool with none or two), and [`Tool::kind`] gives code a typed view of it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::agent::KeyRef;

mod aws;
mod openapi;

pub use aws::{AwsSigV4, HttpAuth, LambdaTool, SigV4Service};
pub use openapi::{OpenApiDocumentSource, OpenApiTool};

/// One tool Claude may call.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "(has(self.http) ? 1 : 0) + (has(self.lambda) ? 1 : 0) + (has(self.openapi) ? 1 : 0) + (has(self.agent) ? 1 : 0) + (has(self.mcp) ? 1 : 0) + (has(self.a2a) ? 1 : 0) == 1",
    "message": "a tool sets exactly one of http, lambda, openapi, agent, mcp or a2a",
}, {
    "rule": "has(self.description) || has(self.agent)",
    "message": "set description: Claude reads it to choose the tool (only an agent tool may leave it out, to take the named Agent's spec.description)",
}]))]
pub struct Tool {
    /// Name Claude calls the tool by: 1 to 64 letters, digits, `_` or `-` (Bedrock's rule).
    /// Unique within the Agent.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-zA-Z0-9_-]{1,64}$"))]
    pub name: String,

    /// What the tool does and when to use it. Claude reads this to decide whether to call the
    /// tool, so say what it returns and what input it needs. Required, except on an `agent`
    /// tool, which defaults to the named Agent's `spec.description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub description: Option<String>,

    /// Call an HTTP endpoint (an in-cluster Service or a URL, such as an API Gateway stage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpTool>,

    /// Invoke an AWS Lambda function with the tool input as its event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<LambdaTool>,

    /// Offer the operations of an HTTP API described by an OpenAPI 3.0 or 3.1 document, each as
    /// its own tool named `<name>_<operationId>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openapi: Option<OpenApiTool>,

    /// Ask another Agent, reached through its Service's cluster DNS name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentToolRef>,

    /// Offer the tools of a Model Context Protocol server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpTool>,

    /// Ask an A2A (Agent2Agent) agent — a kagent agent, another vendor's — by sending the tool
    /// input as a message and answering with its final text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a2a: Option<A2aTool>,

    /// Whether a person approves each call first (`Required`, needs `spec.memory`) or not
    /// (`None`, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// Whether a tool's calls wait for a person's approval. `Required`: when Claude asks for the
/// tool, the invocation stops with `stopReason: approval_required` and the pending calls, and
/// the turn waits in the session; the client approves or denies each call (`POST
/// /v1/sessions/{id}/approvals`), and a denied call reaches Claude as an error result with the
/// reason. Needs `spec.memory`. Default `None`: calls run as Claude makes them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum Approval {
    /// Each call waits for an approve or deny decision.
    Required,
    /// Calls run as Claude makes them.
    #[default]
    None,
}

/// A typed view of the one kind a tool sets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ToolKind<'a> {
    /// An HTTP tool.
    Http(&'a HttpTool),
    /// A Lambda function.
    Lambda(&'a LambdaTool),
    /// An HTTP API from its OpenAPI document.
    OpenApi(&'a OpenApiTool),
    /// Another Agent.
    Agent(&'a AgentToolRef),
    /// An MCP server.
    Mcp(&'a McpTool),
    /// An A2A agent.
    A2a(&'a A2aTool),
}

impl Tool {
    /// The kind this tool sets, or `None` when it sets none or several (which the schema refuses).
    pub fn kind(&self) -> Option<ToolKind<'_>> {
        let mut kinds = [
            self.http.as_ref().map(ToolKind::Http),
            self.lambda.as_ref().map(ToolKind::Lambda),
            self.openapi.as_ref().map(ToolKind::OpenApi),
            self.agent.as_ref().map(ToolKind::Agent),
            self.mcp.as_ref().map(ToolKind::Mcp),
            self.a2a.as_ref().map(ToolKind::A2a),
        ]
        .into_iter()
        .flatten();
        match (kinds.next(), kinds.next()) {
            (Some(kind), None) => Some(kind),
            _ => None,
        }
    }
}

/// An HTTP endpoint called with the tool input as its JSON body.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.url) != has(self.service)",
    "message": "an http tool sets exactly one of url or service",
}, {
    "rule": SIGNED_HEADERS_RULE,
    "message": SIGNED_HEADERS_MESSAGE,
}]))]
pub struct HttpTool {
    /// Absolute `http://` or `https://` URL of the endpoint, for example an API Gateway stage or a
    /// Lambda function URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^https?://\S+$"))]
    pub url: Option<String>,

    /// An in-cluster Service; the runtime calls `http://<name>.<namespace>.svc.cluster.local:<port><path>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRef>,

    /// HTTP method. Default `POST`. `GET` and `DELETE` send the input's top-level fields as query
    /// parameters; the others send the input as a JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<HttpMethod>,

    /// Headers sent with every call (at most 32), each a literal value or a Secret key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub headers: Vec<HttpHeader>,

    /// How calls authenticate beyond `headers`: `awsSigV4` signs each request with the pod's AWS
    /// credentials (IAM-authorized API Gateway APIs, Lambda function URLs with `AWS_IAM` auth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<HttpAuth>,

    /// Deadline of one call in seconds (1 to 3600). Default: `limits.toolTimeoutSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: Option<i32>,

    /// JSON Schema of the tool's input, as Claude sees it, for example
    /// `{type: object, properties: {city: {type: string}}, required: [city]}`.
    /// Default: an object with no declared properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::free_form_object")]
    pub input_schema: Option<serde_json::Map<String, serde_json::Value>>,
}

/// CEL: a signed tool's headers leave the signature's own headers to the signer.
pub(crate) const SIGNED_HEADERS_RULE: &str = "!has(self.auth) || !has(self.auth.awsSigV4) || !has(self.headers) || self.headers.all(h, !(h.name.lowerAscii() in ['authorization', 'host', 'x-amz-date', 'x-amz-security-token', 'x-amz-content-sha256']))";
/// The message of [`SIGNED_HEADERS_RULE`].
pub(crate) const SIGNED_HEADERS_MESSAGE: &str = "with auth.awsSigV4 the headers cannot include authorization, host, x-amz-date, x-amz-security-token or x-amz-content-sha256: the SigV4 signer sets them";

/// HTTP method of an http tool. Default `POST`. `GET` and `DELETE` send the input's top-level
/// fields as query parameters; the others send the input as a JSON body.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET, input as query parameters.
    Get,
    /// POST, input as JSON body (the default).
    #[default]
    Post,
    /// PUT, input as JSON body.
    Put,
    /// PATCH, input as JSON body.
    Patch,
    /// DELETE, input as query parameters.
    Delete,
}

impl HttpMethod {
    /// The method as it goes on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// A header sent with every request of an http or mcp tool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.value) != has(self.valueFrom)",
    "message": "a header sets exactly one of value or valueFrom",
}]))]
pub struct HttpHeader {
    /// Header name, for example `x-api-key`.
    #[schemars(
        length(min = 1, max = 256),
        regex(pattern = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    )]
    pub name: String,

    /// A literal value. Use `valueFrom` for anything secret: literal values are stored in the
    /// Agent and in the runtime's ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 8192))]
    pub value: Option<String>,

    /// Take the value from a Secret key. The value reaches the runtime pod as an environment
    /// variable; the operator never reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<HeaderValueSource>,
}

/// Where a header value comes from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderValueSource {
    /// A key of a Secret in the Agent's namespace.
    pub secret_key_ref: KeyRef,
}

/// A reference to an in-cluster Service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRef {
    /// Name of the Service.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,

    /// Namespace of the Service. Default: the Agent's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,

    /// Service port (1 to 65535). Default 80.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,

    /// Path on the Service, starting with `/`. Default `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/\S*$"))]
    pub path: Option<String>,
}

/// Another Agent used as a tool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentToolRef {
    /// Name of the Agent.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,

    /// Namespace of the Agent. Default: this Agent's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
}

/// A Model Context Protocol server whose tools are offered to Claude.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.url) != has(self.service)",
    "message": "an mcp tool sets exactly one of url or service",
}, {
    "rule": "!has(self.headers) || self.headers.all(h, !(h.name.lowerAscii() in ['accept', 'content-type', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id']))",
    "message": "an mcp tool's headers cannot include accept, content-type, mcp-session-id, mcp-protocol-version or last-event-id: the MCP transport sets them itself",
}]))]
pub struct McpTool {
    /// Absolute `http://` or `https://` URL of the server's MCP endpoint, for example
    /// `http://tools.example.com/mcp`. Streamable HTTP is used; a server that offers only the
    /// older HTTP+SSE transport is reached through it at the same URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^https?://\S+$"))]
    pub url: Option<String>,

    /// An in-cluster Service serving MCP; the runtime connects to
    /// `http://<name>.<namespace>.svc.cluster.local:<port><path>` (set `path`, usually `/mcp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRef>,

    /// Names of the server's tools to offer (at most 128), as the server lists them.
    /// Default: every tool the server lists. Claude sees each as `<tool name>_<MCP tool name>`
    /// (characters other than letters, digits, `_` and `-` become `_`, and a name changed that
    /// way or longer than 64 characters is shortened and ends in `_` and 8 hex digits of a hash
    /// of the full name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 128),
        inner(
            length(min = 1, max = 128),
            regex(pattern = r"^[A-Za-z0-9_./-]{1,128}$")
        )
    )]
    pub allowed_tools: Option<Vec<String>>,

    /// Headers sent with every request to the server (at most 32), each a literal value or a
    /// Secret key, for example an `Authorization` header from a Secret. Not the headers the MCP
    /// transport sets itself (`Accept`, `Content-Type`, `Mcp-Session-Id`, `Mcp-Protocol-Version`,
    /// `Last-Event-ID`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub headers: Vec<HttpHeader>,

    /// Deadline of one tool call in seconds (1 to 3600). Default: `limits.toolTimeoutSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: Option<i32>,
}

/// An A2A agent, reached at the URL its agent card names (fetched from
/// `<base>/.well-known/agent-card.json` when the runtime starts).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.url) != has(self.service)",
    "message": "an a2a tool sets exactly one of url or service",
}]))]
pub struct A2aTool {
    /// Absolute `http://` or `https://` base URL of the agent, where its card lives under
    /// `/.well-known/`, for example `http://kagent-controller.kagent:8083/api/a2a/kagent/k8s-agent/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^https?://\S+$"))]
    pub url: Option<String>,

    /// An in-cluster Service serving the agent; its base URL is
    /// `http://<name>.<namespace>.svc.cluster.local:<port><path>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRef>,

    /// Deadline of one call in seconds (1 to 3600). Default: `limits.toolTimeoutSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: Option<i32>,
}
