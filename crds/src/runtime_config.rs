//! The runtime configuration: what the operator writes into an Agent's ConfigMap and the runtime
//! reads at start. It is the Agent with every reference resolved (Service and Agent tools become
//! URLs, `systemPromptFrom` becomes text) and every default applied.
//!
//! The format is versioned by [`RuntimeConfig::api_version`]. A runtime refuses a version it
//! does not know with a message that says which one it understands, so an operator newer than
//! its runtime image fails loudly instead of running half-understood tools.
//!
//! Secret values never appear here: a header taken from a Secret is named by the environment
//! variable ([`HeaderConfig::value_from_env`]) the Deployment fills from the Secret key.

use serde::{Deserialize, Serialize};

use crate::limits::EffectiveLimits;
use crate::model::GuardrailTrace;
use crate::openapi::Operation;
use crate::tool::{HttpMethod, SigV4Service};

/// The one config version this build writes and reads.
pub const RUNTIME_CONFIG_API_VERSION: &str = "agentry.dev/runtime-config/v1";

/// Key of the configuration in the Agent's ConfigMap; also the file name in the pod.
pub const RUNTIME_CONFIG_KEY: &str = "config.json";

/// Everything the runtime needs to serve one Agent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Format version, [`RUNTIME_CONFIG_API_VERSION`].
    pub api_version: String,
    /// The Agent this configuration serves.
    pub agent: AgentIdentity,
    /// Model and inference settings.
    pub model: ModelConfig,
    /// The resolved system prompt.
    pub system_prompt: String,
    /// Limits with defaults applied.
    pub limits: EffectiveLimits,
    /// Tools with resolved endpoints.
    #[serde(default)]
    pub tools: Vec<ToolConfig>,
    /// Sessions (conversations kept in a Redis-compatible store), from the Agent's
    /// `spec.memory`; absent: invocations are stateless and `sessionId` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryConfig>,
}

/// The session store and how sessions behave.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemoryConfig {
    /// The environment variable holding the store's URL (`redis://` or `rediss://`, with
    /// credentials): the URL is a secret, so it never appears here.
    pub url_from_env: String,
    /// A session expires this many seconds after its last turn (at least 1).
    pub ttl_seconds: u32,
    /// Most messages a session keeps; older whole turns are dropped (at least 2).
    pub max_messages: u32,
    /// PEM of the CA that signed the store's certificate (`rediss://` only), instead of the
    /// image's public roots: for a store with a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Context compaction: when a session's history plus the new input would pass this many
    /// tokens (estimated from the model's reported usage of the last turn), its oldest whole
    /// turns are replaced by a summary the model writes in one extra call (at least 1000).
    /// Absent: never compact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_context_tokens: Option<u32>,
    /// How long a turn stopped for approval of its calls waits for the decisions before it is
    /// dropped (10 to 604800). Absent from configurations written before it existed: 3600.
    #[serde(default = "default_approval_timeout_seconds")]
    pub approval_timeout_seconds: u32,
}

fn default_approval_timeout_seconds() -> u32 {
    crate::memory::DEFAULT_APPROVAL_TIMEOUT_SECONDS
}

/// Name and namespace of the Agent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentIdentity {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `spec.description`, when set (absent from configurations written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Model and inference settings, as in the Agent's `spec.model`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelConfig {
    /// Bedrock model id, inference profile id or ARN.
    pub id: String,
    /// AWS region; `None` means the AWS default chain decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Most tokens per reply.
    pub max_tokens: u32,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
    /// Guardrail applied to every call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrail: Option<GuardrailConfig>,
    /// Whether to place prompt cache points after the system prompt and the tools.
    #[serde(default)]
    pub prompt_caching: bool,
}

/// Default `maxTokens` when the Agent sets none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// A Bedrock guardrail.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuardrailConfig {
    /// Guardrail identifier or ARN.
    pub identifier: String,
    /// Guardrail version.
    pub version: String,
    /// Trace setting; `None` is Bedrock's default (disabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<GuardrailTrace>,
}

/// One tool with its endpoint resolved.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolConfig {
    /// Name Claude calls it by.
    pub name: String,
    /// Description Claude reads.
    pub description: String,
    /// What calling it does.
    pub kind: ToolKindConfig,
    /// Its calls wait for a person's approval (`tools[].approval: Required`); needs `memory`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approval_required: bool,
}

/// The resolved kind of a tool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum ToolKindConfig {
    /// Call an HTTP endpoint.
    Http(HttpToolConfig),
    /// Invoke a Lambda function.
    Lambda(LambdaToolConfig),
    /// Call the operations of an HTTP API described by an OpenAPI document.
    #[serde(rename = "openapi")]
    OpenApi(OpenApiToolConfig),
    /// Invoke another Agent's `/v1/invoke`.
    Agent(AgentToolConfig),
    /// Use the tools of an MCP server.
    Mcp(McpToolConfig),
    /// An A2A agent.
    A2a(A2aToolConfig),
}

/// A resolved http tool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpToolConfig {
    /// Absolute URL.
    pub url: String,
    /// HTTP method.
    pub method: HttpMethod,
    /// Headers sent with every call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderConfig>,
    /// How calls authenticate beyond the headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    /// Deadline of one call.
    pub timeout_seconds: u32,
    /// JSON Schema of the input.
    pub input_schema: serde_json::Value,
}

/// How an HTTP call authenticates beyond its headers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum AuthConfig {
    /// Sign each request with SigV4 and the pod's AWS credentials.
    #[serde(rename = "awsSigV4")]
    AwsSigV4(SigV4Config),
}

/// SigV4 signing of HTTP calls.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SigV4Config {
    /// The service signed for.
    pub service: SigV4Service,
    /// The region signed for; `None` means the AWS default chain decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// A resolved lambda tool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LambdaToolConfig {
    /// Function name, partial or full ARN.
    pub function_name: String,
    /// Version or alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
    /// AWS region; `None` means the ARN's, else the AWS default chain's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Deadline of one call, retries included.
    pub timeout_seconds: u32,
    /// JSON Schema of the input (the event).
    pub input_schema: serde_json::Value,
}

/// A resolved openapi tool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenApiToolConfig {
    /// Base URL the operations' paths are appended to.
    pub url: String,
    /// The operations, or where the runtime fetches the document from.
    pub document: OpenApiDocumentConfig,
    /// Headers sent with every call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderConfig>,
    /// How calls authenticate beyond the headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    /// Deadline of one call.
    pub timeout_seconds: u32,
}

/// An OpenAPI tool's operations: already read from a ConfigMap and converted by the operator,
/// or to be fetched from a URL by the runtime at start.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum OpenApiDocumentConfig {
    /// The selected operations, converted.
    Operations(Vec<Operation>),
    /// The document's URL and the `operationId`s to offer (empty: all).
    Url {
        /// Absolute URL of the document.
        url: String,
        /// `operationId`s to offer; empty means all.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        operations: Vec<String>,
    },
}

/// A header: a literal value, or the environment variable holding a Secret's value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderConfig {
    /// Header name.
    pub name: String,
    /// Literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Environment variable that holds the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from_env: Option<String>,
}

/// A resolved agent tool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentToolConfig {
    /// Base URL of the other Agent, `http://<name>.<namespace>.svc.cluster.local`.
    pub url: String,
    /// Deadline of one call.
    pub timeout_seconds: u32,
}

/// A resolved MCP server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpToolConfig {
    /// URL of the Streamable HTTP endpoint.
    pub url: String,
    /// Tools to offer; empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_tools: Vec<String>,
    /// Headers sent with every request to the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderConfig>,
    /// Deadline of one call.
    pub timeout_seconds: u32,
}

/// A resolved A2A agent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct A2aToolConfig {
    /// Base URL of the agent (its card is under `/.well-known/`).
    pub url: String,
    /// Deadline of one call.
    pub timeout_seconds: u32,
}

/// Why a runtime configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The text is not a configuration; the message names the field.
    #[error("invalid runtime configuration: {0}")]
    Parse(String),
    /// A version this build does not understand.
    #[error(
        "runtime configuration version {found:?} is not supported: this runtime understands \
         {RUNTIME_CONFIG_API_VERSION:?}; run a runtime image that matches the operator"
    )]
    UnsupportedVersion {
        /// The version found.
        found: String,
    },
}

impl RuntimeConfig {
    /// Parses a configuration, checking its version before anything else so an unknown version
    /// gets the version message rather than a confusing field error.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Versioned {
            api_version: Option<String>,
        }
        let versioned: Versioned =
            serde_json::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        match versioned.api_version.as_deref() {
            Some(RUNTIME_CONFIG_API_VERSION) => {}
            Some(other) => {
                return Err(ConfigError::UnsupportedVersion {
                    found: other.to_string(),
                });
            }
            None => return Err(ConfigError::Parse("missing field `apiVersion`".into())),
        }
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            ConfigError::Parse(if path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            })
        })
    }

    /// The configuration as the JSON the ConfigMap holds. Field order is fixed, so equal
    /// configurations give equal text (and equal hashes).
    pub fn to_json(&self) -> String {
        // Serializing plain structs, strings and numbers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RuntimeConfig {
        RuntimeConfig {
            api_version: RUNTIME_CONFIG_API_VERSION.into(),
            agent: AgentIdentity {
                name: "weather".into(),
                namespace: "demo".into(),
                description: None,
            },
            model: ModelConfig {
                id: "anthropic.claude-3-haiku-20240307-v1:0".into(),
                region: None,
                max_tokens: DEFAULT_MAX_TOKENS,
                temperature: Some(0.2),
                top_p: None,
                stop_sequences: vec![],
                guardrail: None,
                prompt_caching: false,
            },
            system_prompt: "You help.".into(),
            limits: EffectiveLimits::default(),
            tools: vec![ToolConfig {
                approval_required: false,
                name: "ask".into(),
                description: "Ask travel.".into(),
                kind: ToolKindConfig::Agent(AgentToolConfig {
                    url: "http://travel.demo.svc.cluster.local".into(),
                    timeout_seconds: 30,
                }),
            }],
            memory: None,
        }
    }

    #[test]
    fn memory_round_trips_and_is_not_written_when_absent() {
        let mut c = sample();
        assert!(!c.to_json().contains("memory"));
        c.memory = Some(MemoryConfig {
            url_from_env: "AGENTRY_MEMORY_URL".into(),
            ttl_seconds: 86_400,
            max_messages: 500,
            ca_pem: None,
            max_context_tokens: None,
            approval_timeout_seconds: 3_600,
        });
        let json: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(
            json["memory"],
            serde_json::json!({"urlFromEnv": "AGENTRY_MEMORY_URL", "ttlSeconds": 86400, "maxMessages": 500, "approvalTimeoutSeconds": 3600})
        );
        assert_eq!(RuntimeConfig::from_json(&c.to_json()).unwrap(), c);
    }

    #[test]
    fn a_memory_config_written_before_the_approval_timeout_existed_waits_an_hour() {
        let mut c = sample();
        c.memory = Some(MemoryConfig {
            url_from_env: "AGENTRY_MEMORY_URL".into(),
            ttl_seconds: 86_400,
            max_messages: 500,
            ca_pem: None,
            max_context_tokens: None,
            approval_timeout_seconds: 600,
        });
        let mut json: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(json["memory"]["approvalTimeoutSeconds"], 600);
        json["memory"]
            .as_object_mut()
            .unwrap()
            .remove("approvalTimeoutSeconds");
        let read = RuntimeConfig::from_json(&json.to_string()).unwrap();
        assert_eq!(read.memory.unwrap().approval_timeout_seconds, 3_600);
    }

    #[test]
    fn max_context_tokens_is_read_by_its_camel_case_name_and_a_bad_value_names_it() {
        let mut c = sample();
        c.memory = Some(MemoryConfig {
            url_from_env: "AGENTRY_MEMORY_URL".into(),
            ttl_seconds: 60,
            max_messages: 100,
            ca_pem: None,
            max_context_tokens: Some(150_000),
            approval_timeout_seconds: 3_600,
        });
        let text = c.to_json();
        assert!(text.contains("\"maxContextTokens\": 150000"), "{text}");
        assert_eq!(RuntimeConfig::from_json(&text).unwrap(), c);
        let bad = text.replace("150000", "-1");
        let err = RuntimeConfig::from_json(&bad).unwrap_err().to_string();
        assert!(
            err.contains("memory.maxContextTokens: invalid value"),
            "{err}"
        );
    }

    #[test]
    fn config_round_trips_through_its_json() {
        let c = sample();
        assert_eq!(RuntimeConfig::from_json(&c.to_json()).unwrap(), c);
    }

    #[test]
    fn a_config_written_before_the_description_existed_still_loads_and_none_is_not_written() {
        let c = sample();
        let json: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(
            json["agent"],
            serde_json::json!({"name": "weather", "namespace": "demo"})
        );
        assert_eq!(RuntimeConfig::from_json(&c.to_json()).unwrap(), c);
        let mut described = c.clone();
        described.agent.description = Some("Answers weather questions.".into());
        let json: serde_json::Value = serde_json::from_str(&described.to_json()).unwrap();
        assert_eq!(json["agent"]["description"], "Answers weather questions.");
    }

    #[test]
    fn unknown_version_is_refused_with_the_supported_one_named() {
        let text = sample()
            .to_json()
            .replace("runtime-config/v1", "runtime-config/v9");
        let err = RuntimeConfig::from_json(&text).unwrap_err().to_string();
        assert!(err.contains("agentry.dev/runtime-config/v9"), "{err}");
        assert!(
            err.contains("understands \"agentry.dev/runtime-config/v1\""),
            "{err}"
        );
    }

    #[test]
    fn a_wrong_type_names_the_field_path() {
        let text = sample()
            .to_json()
            .replace("\"maxTokens\": 4096", "\"maxTokens\": \"lots\"");
        let err = RuntimeConfig::from_json(&text).unwrap_err().to_string();
        assert!(
            err.contains("model.maxTokens: invalid type: string \"lots\""),
            "{err}"
        );
    }

    #[test]
    fn unknown_field_is_refused_with_its_name() {
        let text = sample()
            .to_json()
            .replacen("\"systemPrompt\"", "\"systemPromt\"", 1);
        let err = RuntimeConfig::from_json(&text).unwrap_err().to_string();
        assert!(err.contains("systemPromt"), "{err}");
    }
}
