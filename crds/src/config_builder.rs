//! Turns an Agent into its runtime configuration: every reference becomes a URL, every default
//! is applied, and secret header values are named by environment variable only. Pure; the
//! operator writes the result into the Agent's ConfigMap, and the runtime's local mode builds it
//! from a manifest.

use std::collections::BTreeMap;

use crate::memory::{MEMORY_URL_ENV, Memory};
use crate::openapi::Operation;
use crate::runtime_config::{
    A2aToolConfig, AgentIdentity, AgentToolConfig, AuthConfig, DEFAULT_MAX_TOKENS, GuardrailConfig,
    HeaderConfig, HttpToolConfig, LambdaToolConfig, McpToolConfig, MemoryConfig, ModelConfig,
    OpenApiDocumentConfig, OpenApiToolConfig, RUNTIME_CONFIG_API_VERSION, RuntimeConfig,
    SigV4Config, ToolConfig, ToolKindConfig,
};
use crate::{AgentSpec, HttpAuth, HttpHeader, KeyRef, ServiceRef, Tool, ToolKind};

/// The operations of each ConfigMap-held OpenAPI document, by tool name, as the operator read
/// and converted them. A tool missing here (its document could not be read) offers nothing.
pub type OpenApiOperations = BTreeMap<String, Vec<Operation>>;

/// The in-cluster URL of an Agent: the DNS name of its Service.
pub fn agent_url(name: &str, namespace: &str) -> String {
    format!("http://{name}.{namespace}.svc.cluster.local")
}

/// The description of an `agent` tool that sets none, when the named Agent has no
/// `spec.description` either (the operator fills in the Agent's description when it has one,
/// and reports the tool under `ToolsResolved` when it has not).
pub fn agent_tool_description(name: &str, namespace: &str) -> String {
    format!(
        "Ask the agent {name} (namespace {namespace}): send a request in plain language as \
         `input`; it answers with text."
    )
}

/// Environment variable carrying the value of header `header` of tool `tool` (both positions).
/// Positions, not names: tool names may hold `-`, which environment names may not.
pub fn header_env_name(tool: usize, header: usize) -> String {
    format!("AGENTRY_TOOL{tool}_HEADER{header}")
}

/// Every header value taken from a Secret (of http, openapi and mcp tools): the environment
/// variable and the Secret key.
pub fn secret_headers(spec: &AgentSpec) -> Vec<(String, KeyRef)> {
    let mut out = Vec::new();
    for (t, tool) in spec.tools.iter().enumerate() {
        let headers = match tool.kind() {
            Some(ToolKind::Http(http)) => &http.headers,
            Some(ToolKind::OpenApi(api)) => &api.headers,
            Some(ToolKind::Mcp(mcp)) => &mcp.headers,
            _ => continue,
        };
        for (h, header) in headers.iter().enumerate() {
            if let Some(from) = &header.value_from {
                out.push((header_env_name(t, h), from.secret_key_ref.clone()));
            }
        }
    }
    out
}

/// `http://<name>.<namespace>.svc.cluster.local:<port><path>`; the namespace defaults to the
/// Agent's, the port to 80, the path to `/`.
pub fn service_url(service: &ServiceRef, default_namespace: &str) -> String {
    let namespace = service.namespace.as_deref().unwrap_or(default_namespace);
    let port = service.port.unwrap_or(80);
    let path = service.path.as_deref().unwrap_or("/");
    format!(
        "http://{}.{namespace}.svc.cluster.local:{port}{path}",
        service.name
    )
}

fn positive_u32(value: Option<i32>, default: u32) -> u32 {
    value
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

/// Headers of tool `index`: literal values as they are, Secret values by environment variable.
fn header_configs(index: usize, headers: &[HttpHeader]) -> Vec<HeaderConfig> {
    headers
        .iter()
        .enumerate()
        .map(|(h, header)| HeaderConfig {
            name: header.name.clone(),
            value: header.value.clone(),
            value_from_env: header
                .value_from
                .as_ref()
                .map(|_| header_env_name(index, h)),
        })
        .collect()
}

fn auth_config(auth: Option<&HttpAuth>) -> Option<AuthConfig> {
    let sig = auth?.aws_sig_v4.as_ref()?;
    Some(AuthConfig::AwsSigV4(SigV4Config {
        service: sig.service,
        region: sig.region.clone(),
    }))
}

fn input_schema(schema: Option<&serde_json::Map<String, serde_json::Value>>) -> serde_json::Value {
    schema
        .cloned()
        .map(serde_json::Value::Object)
        .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}}))
}

fn tool_config(
    namespace: &str,
    spec: &AgentSpec,
    index: usize,
    tool: &Tool,
    openapi: &OpenApiOperations,
) -> Option<ToolConfig> {
    let ns = namespace;
    let default_timeout = spec.effective_limits().tool_timeout_seconds;
    let kind = match tool.kind()? {
        ToolKind::Http(http) => ToolKindConfig::Http(HttpToolConfig {
            url: match (&http.url, &http.service) {
                (Some(url), _) => url.clone(),
                (None, Some(svc)) => service_url(svc, ns),
                (None, None) => return None,
            },
            method: http.method.unwrap_or_default(),
            headers: header_configs(index, &http.headers),
            auth: auth_config(http.auth.as_ref()),
            timeout_seconds: positive_u32(http.timeout_seconds, default_timeout),
            input_schema: input_schema(http.input_schema.as_ref()),
        }),
        ToolKind::Lambda(lambda) => ToolKindConfig::Lambda(LambdaToolConfig {
            function_name: lambda.function_name.clone(),
            qualifier: lambda.qualifier.clone(),
            region: lambda.region.clone(),
            timeout_seconds: positive_u32(lambda.timeout_seconds, default_timeout),
            input_schema: input_schema(lambda.input_schema.as_ref()),
        }),
        ToolKind::OpenApi(api) => ToolKindConfig::OpenApi(OpenApiToolConfig {
            url: match (&api.url, &api.service) {
                (Some(url), _) => url.clone(),
                (None, Some(svc)) => service_url(svc, ns),
                (None, None) => return None,
            },
            document: match &api.document.url {
                Some(url) => OpenApiDocumentConfig::Url {
                    url: url.clone(),
                    operations: api.operations.clone().unwrap_or_default(),
                },
                None => OpenApiDocumentConfig::Operations(
                    openapi.get(&tool.name).cloned().unwrap_or_default(),
                ),
            },
            headers: header_configs(index, &api.headers),
            auth: auth_config(api.auth.as_ref()),
            timeout_seconds: positive_u32(api.timeout_seconds, default_timeout),
        }),
        ToolKind::Agent(other) => ToolKindConfig::Agent(AgentToolConfig {
            url: agent_url(&other.name, other.namespace.as_deref().unwrap_or(ns)),
            // Another agent runs a whole loop: it gets the invocation deadline, not a tool's.
            timeout_seconds: spec.effective_limits().timeout_seconds,
        }),
        ToolKind::Mcp(mcp) => ToolKindConfig::Mcp(McpToolConfig {
            url: match (&mcp.url, &mcp.service) {
                (Some(url), _) => url.clone(),
                (None, Some(svc)) => service_url(svc, ns),
                (None, None) => return None,
            },
            allowed_tools: mcp.allowed_tools.clone().unwrap_or_default(),
            headers: header_configs(index, &mcp.headers),
            timeout_seconds: positive_u32(mcp.timeout_seconds, default_timeout),
        }),
        ToolKind::A2a(a2a) => ToolKindConfig::A2a(A2aToolConfig {
            url: match (&a2a.url, &a2a.service) {
                (Some(url), _) => url.clone(),
                (None, Some(svc)) => service_url(svc, ns),
                (None, None) => return None,
            },
            timeout_seconds: positive_u32(a2a.timeout_seconds, default_timeout),
        }),
    };
    let description = match (&tool.description, tool.kind()?) {
        (Some(d), _) => d.clone(),
        (None, ToolKind::Agent(other)) => {
            agent_tool_description(&other.name, other.namespace.as_deref().unwrap_or(ns))
        }
        // The schema requires a description on every other kind.
        (None, _) => format!("The tool {}.", tool.name),
    };
    Some(ToolConfig {
        name: tool.name.clone(),
        description,
        kind,
        approval_required: tool.approval == Some(crate::tool::Approval::Required),
    })
}

/// `spec.memory` for the runtime: the URL named by [`MEMORY_URL_ENV`], which the Deployment fills
/// from the Secret key (and a local run from its own environment), defaults applied.
pub fn memory_config(memory: &Memory) -> MemoryConfig {
    MemoryConfig {
        url_from_env: MEMORY_URL_ENV.into(),
        ttl_seconds: memory.effective_ttl_seconds(),
        max_messages: memory.effective_max_messages(),
        ca_pem: memory.ca_pem.clone(),
        max_context_tokens: memory.context_tokens(),
        approval_timeout_seconds: memory.effective_approval_timeout_seconds(),
    }
}

/// The runtime configuration of Agent `namespace/name`, with `system_prompt` and the
/// ConfigMap-held OpenAPI documents already resolved.
pub fn runtime_config(
    name: &str,
    namespace: &str,
    spec: &AgentSpec,
    system_prompt: &str,
    openapi: &OpenApiOperations,
) -> RuntimeConfig {
    let model = &spec.model;
    RuntimeConfig {
        api_version: RUNTIME_CONFIG_API_VERSION.into(),
        agent: AgentIdentity {
            name: name.into(),
            namespace: namespace.into(),
            description: spec.description.clone(),
        },
        model: ModelConfig {
            id: model.id.clone(),
            region: model.region.clone(),
            max_tokens: model
                .max_tokens
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or(DEFAULT_MAX_TOKENS),
            temperature: model.temperature.map(|t| t as f32),
            top_p: model.top_p.map(|t| t as f32),
            stop_sequences: model.stop_sequences.clone().unwrap_or_default(),
            guardrail: model.guardrail.as_ref().map(|g| GuardrailConfig {
                identifier: g.identifier.clone(),
                version: g.version.clone(),
                trace: g.trace,
            }),
            prompt_caching: model.prompt_caching.unwrap_or(false),
        },
        system_prompt: system_prompt.to_string(),
        limits: spec.effective_limits(),
        tools: spec
            .tools
            .iter()
            .enumerate()
            .filter_map(|(i, t)| tool_config(namespace, spec, i, t, openapi))
            .collect(),
        memory: spec.memory.as_ref().map(memory_config),
    }
}
#[cfg(test)]
mod tests;
