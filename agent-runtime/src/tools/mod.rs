//! The tools an Agent offers Claude, resolved once at start, and their execution. Every call
//! ends in a tool result, never an error of the invocation: a failed, unknown, timed-out or
//! invalid-input call becomes a result with `status: error` and a message Claude can act on.

mod agent;
mod http;
pub mod schema;

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentry_crds::runtime_config::{RuntimeConfig, ToolKindConfig};
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::bedrock::ToolSpec;
use crate::conversation::{ToolResult, ToolUse};

/// Key under which a streamed tool input that was not valid JSON is reported to the tool step.
pub const MALFORMED_INPUT_KEY: &str = "__agentry_malformed_input";
/// Request header carrying how many agent-to-agent hops led to this invocation.
pub const CALL_DEPTH_HEADER: &str = "x-agentry-call-depth";
/// Request header carrying the caller's remaining deadline, in milliseconds.
pub const DEADLINE_HEADER: &str = "x-agentry-deadline-ms";
/// Most agent-to-agent hops: a cycle (A asks B asks A ...) ends here with an error result.
pub const MAX_CALL_DEPTH: u32 = 5;
/// Largest tool response kept; more is cut, and the result says so.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Where a call stands: its hop count and the invocation's deadline.
#[derive(Clone, Copy, Debug)]
pub struct CallContext {
    /// Agent-to-agent hops before this invocation.
    pub depth: u32,
    /// When the invocation must end.
    pub deadline: Instant,
}

#[derive(Clone, Debug)]
enum Kind {
    Http {
        url: String,
        method: reqwest::Method,
        headers: Vec<(HeaderName, HeaderValue)>,
    },
    Agent {
        url: String,
    },
}

#[derive(Clone, Debug)]
struct Tool {
    spec: ToolSpec,
    kind: Kind,
    timeout: Duration,
}

/// Why the tools cannot be set up; names the tool and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    /// A secret header's environment variable is missing.
    #[error(
        "tool {tool}: header {header} takes its value from the environment variable {var}, which is not set"
    )]
    MissingSecret {
        /// The tool.
        tool: String,
        /// The header.
        header: String,
        /// The variable.
        var: String,
    },
    /// A header name or value cannot be sent.
    #[error("tool {tool}: header {header} is not a valid HTTP header")]
    BadHeader {
        /// The tool.
        tool: String,
        /// The header.
        header: String,
    },
    /// The HTTP client could not be built.
    #[error("building the HTTP client for tools")]
    Client(#[source] reqwest::Error),
}

/// The Agent's tools.
#[derive(Clone, Debug)]
pub struct Toolbox {
    tools: Vec<Tool>,
    offered: Arc<Offered>,
    client: reqwest::Client,
}

/// The tools offered to the model at one moment. Each model call takes the current offer; a
/// new `version` tells the Bedrock client to rebuild its request form of the tools.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Offered {
    /// Changes whenever the offer does.
    pub version: u64,
    /// The tools, in the order the model sees them.
    pub specs: Vec<ToolSpec>,
}

/// What one call produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The result for the model.
    pub result: ToolResult,
    /// How long it took.
    pub duration: Duration,
}

/// The input schema Claude sees for an agent tool.
pub fn agent_input_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"input": {"type": "string", "description": "The question or task for the other agent, in plain language."}},
        "required": ["input"]
    })
}

impl Toolbox {
    /// Resolves the configured tools; `env` looks up secret header values. MCP servers are not
    /// offered yet (a later runtime version connects to them); they are logged and skipped.
    pub fn new(
        config: &RuntimeConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ToolsError> {
        let mut tools = Vec::new();
        for t in &config.tools {
            let (kind, input_schema, timeout) = match &t.kind {
                ToolKindConfig::Http(h) => {
                    let mut headers = Vec::new();
                    for header in &h.headers {
                        let bad = || ToolsError::BadHeader {
                            tool: t.name.clone(),
                            header: header.name.clone(),
                        };
                        let value = match (&header.value, &header.value_from_env) {
                            (Some(v), _) => v.clone(),
                            (None, Some(var)) => {
                                env(var).ok_or_else(|| ToolsError::MissingSecret {
                                    tool: t.name.clone(),
                                    header: header.name.clone(),
                                    var: var.clone(),
                                })?
                            }
                            (None, None) => String::new(),
                        };
                        let name =
                            HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| bad())?;
                        let mut value = HeaderValue::from_str(&value).map_err(|_| bad())?;
                        // Never printed by Debug, so never in logs.
                        value.set_sensitive(header.value_from_env.is_some());
                        headers.push((name, value));
                    }
                    let method = reqwest::Method::from_bytes(h.method.as_str().as_bytes())
                        .unwrap_or(reqwest::Method::POST);
                    (
                        Kind::Http {
                            url: h.url.clone(),
                            method,
                            headers,
                        },
                        h.input_schema.clone(),
                        h.timeout_seconds,
                    )
                }
                ToolKindConfig::Agent(a) => (
                    Kind::Agent {
                        url: a.url.trim_end_matches('/').to_string(),
                    },
                    agent_input_schema(),
                    a.timeout_seconds,
                ),
                ToolKindConfig::Mcp(m) => {
                    tracing::warn!(tool = %t.name, url = %m.url, "MCP tools are not supported by this runtime version; the tool is not offered");
                    continue;
                }
            };
            tools.push(Tool {
                spec: ToolSpec {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    input_schema,
                },
                kind,
                timeout: Duration::from_secs(u64::from(timeout.max(1))),
            });
        }
        let client = reqwest::Client::builder()
            .build()
            .map_err(ToolsError::Client)?;
        let offered = Arc::new(Offered {
            version: 1,
            specs: tools.iter().map(|t| t.spec.clone()).collect(),
        });
        Ok(Self {
            tools,
            offered,
            client,
        })
    }

    /// The tools offered to the model now.
    pub fn offered(&self) -> Arc<Offered> {
        self.offered.clone()
    }

    /// Runs one call; always returns a result.
    pub async fn call(&self, call: &ToolUse, ctx: CallContext) -> Outcome {
        let start = Instant::now();
        let result = self.result(call, ctx).await;
        Outcome {
            result,
            duration: start.elapsed(),
        }
    }

    async fn result(&self, call: &ToolUse, ctx: CallContext) -> ToolResult {
        let id = &call.tool_use_id;
        let Some(tool) = self.tools.iter().find(|t| t.spec.name == call.name) else {
            let names: Vec<&str> = self.tools.iter().map(|t| t.spec.name.as_str()).collect();
            return ToolResult::error(
                id,
                format!(
                    "unknown tool {:?}; the tools are: {}",
                    call.name,
                    names.join(", ")
                ),
            );
        };
        if let Some(problem) = call.input.get(MALFORMED_INPUT_KEY).and_then(Value::as_str) {
            return ToolResult::error(
                id,
                format!("invalid input for {}: {problem}", tool.spec.name),
            );
        }
        if let Err(problem) = schema::check(&tool.spec.input_schema, &call.input, "input") {
            return ToolResult::error(
                id,
                format!("invalid input for {}: {problem}", tool.spec.name),
            );
        }
        let remaining = ctx.deadline.saturating_duration_since(Instant::now());
        let timeout = tool.timeout.min(remaining);
        if timeout.is_zero() {
            return ToolResult::error(
                id,
                format!(
                    "{} was not called: the invocation deadline has passed",
                    tool.spec.name
                ),
            );
        }
        let run = async {
            match &tool.kind {
                Kind::Http {
                    url,
                    method,
                    headers,
                } => http::call(&self.client, id, url, method, headers, &call.input).await,
                Kind::Agent { url } => {
                    agent::call(&self.client, id, url, &call.input, ctx, timeout).await
                }
            }
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            Err(_) => ToolResult::error(
                id,
                format!(
                    "{} timed out after {} ms",
                    tool.spec.name,
                    timeout.as_millis()
                ),
            ),
        }
    }
}

/// Reads a response body up to [`MAX_RESPONSE_BYTES`]; says whether it was cut.
async fn read_capped(mut response: reqwest::Response) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_RESPONSE_BYTES {
            body.truncate(MAX_RESPONSE_BYTES);
            return Ok((body, true));
        }
    }
    Ok((body, false))
}
