//! The tools an Agent offers Claude, and their execution. Every call ends in a tool result,
//! never an error of the invocation: a failed, unknown, timed-out or invalid-input call becomes
//! a result with `status: error` and a message Claude can act on.
//!
//! Each kind of tool is one module implementing [`ToolKind`] ([`http`], [`agent`], [`mcp`],
//! [`lambda`], [`openapi`], [`a2a`]); [`Toolbox::with_aws`] is the one registry that maps a
//! configured kind to its module. Kinds that call AWS share the pod's AWS configuration
//! ([`aws`]); HTTP requests that authenticate with SigV4 are signed last ([`auth`], [`sigv4`]).
//! What is offered at a given moment lives in the [`catalog`]: http, agent and a2a tools are
//! offered from the start, an MCP server's tools once it answers, an openapi tool's operations
//! once its document is converted, and the offer's version changes with them.

pub mod a2a;
mod agent;
mod auth;
mod aws;
mod catalog;
mod http;
mod lambda;
pub mod mcp;
pub mod openapi;
pub mod schema;
mod setup;
mod sigv4;

pub use aws::{CredentialsError, load_aws, needs_aws};

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentry_crds::runtime_config::{RuntimeConfig, ToolKindConfig};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::bedrock::ToolSpec;
use crate::conversation::{ToolResult, ToolUse};
use crate::metrics::McpMetrics;
use aws::AwsTools;
use catalog::Catalog;
use setup::{Built, Setup, headers, seconds};

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

/// One call, as a [`ToolKind`] sees it: input already checked against the offered schema.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// The `toolUseId`.
    pub id: &'a str,
    /// The kind's own name for the tool called (an MCP tool's name; for one-tool kinds, the
    /// tool's name).
    pub target: &'a str,
    /// The input.
    pub input: &'a Value,
    /// Hop count and deadline.
    pub ctx: CallContext,
    /// The trace context the call passes on (`traceparent`, `tracestate`; empty when none).
    pub trace: &'a ::http::HeaderMap,
    /// How long this call may take (the tool's timeout, cut to the invocation's deadline).
    pub timeout: Duration,
}

/// One kind of tool. Boxed futures keep it object-safe, so the toolbox holds every kind the
/// same way; a new kind is a new module and one arm in [`Toolbox::with_aws`].
pub trait ToolKind: Send + Sync + 'static {
    /// The kind's name as the Agent's `tools[]` spell it (`http`, `lambda`, `mcp`, ...), for
    /// traces.
    fn kind(&self) -> &'static str;

    /// Runs one call; failures are error results, never panics or errors.
    fn call<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, ToolResult>;

    /// This tool's state for `/readyz`, if it has one worth reporting (MCP servers and openapi
    /// tools do).
    fn readiness(&self) -> Option<Value> {
        None
    }

    /// The `/readyz` list [`ToolKind::readiness`] goes in: `mcpServers` unless the kind says
    /// otherwise (openapi tools: [`openapi::READINESS_KEY`]).
    fn readiness_key(&self) -> &'static str {
        "mcpServers"
    }
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
    /// A tool calls AWS but the toolbox was built without an AWS configuration.
    #[error(
        "tool {0} calls AWS, but the runtime has no AWS configuration for tools (build the toolbox with Toolbox::with_aws)"
    )]
    NoAws(String),
    /// The HTTP client could not be built.
    #[error("building the HTTP client for tools")]
    Client(#[source] reqwest::Error),
    /// A tool's calls need approval but the Agent keeps no sessions.
    #[error(
        "tool {0} has approval required, but approvals need memory (spec.memory), where the turn waiting for a decision is kept"
    )]
    ApprovalWithoutMemory(String),
}

/// The Agent's tools.
pub struct Toolbox {
    catalog: Arc<Catalog>,
    /// Whether each configured tool's calls wait for approval, by index.
    approval: Vec<bool>,
    kinds: Vec<Arc<dyn ToolKind>>,
    mcp_metrics: McpMetrics,
    /// Background work of the tools (MCP connections); stopped when the toolbox goes.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Toolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toolbox")
            .field("offered", &self.catalog.current().offered)
            .finish_non_exhaustive()
    }
}

impl Drop for Toolbox {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.catalog.clear();
    }
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
    /// Resolves configured tools that need no AWS configuration (see [`Self::with_aws`]); a
    /// lambda tool or SigV4 auth is refused with [`ToolsError::NoAws`].
    pub fn new(
        config: &RuntimeConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ToolsError> {
        Self::with_aws(config, env, None)
    }

    /// Resolves the configured tools; `env` looks up secret header values, `aws` is the pod's
    /// AWS configuration for lambda tools and SigV4 auth ([`load_aws`]; `None` when none
    /// needs it). Must run inside a tokio runtime: each MCP server gets a task that connects
    /// (retrying with backoff while it is down) and offers its tools once it answers, and AWS
    /// credentials are loaded once in the background to warn early when they cannot be.
    pub fn with_aws(
        config: &RuntimeConfig,
        env: impl Fn(&str) -> Option<String>,
        aws: Option<aws_config::SdkConfig>,
    ) -> Result<Self, ToolsError> {
        if let Some(t) = config.tools.iter().find(|t| t.approval_required)
            && config.memory.is_none()
        {
            return Err(ToolsError::ApprovalWithoutMemory(t.name.clone()));
        }
        let client = reqwest::Client::builder()
            .build()
            .map_err(ToolsError::Client)?;
        let catalog = Arc::new(Catalog::new(config.tools.len()));
        let mcp_metrics = McpMetrics::default();
        let aws = aws.map(AwsTools::new);
        let mut kinds = Vec::new();
        let mut tasks = Vec::new();
        for (index, t) in config.tools.iter().enumerate() {
            let setup = Setup {
                index,
                name: &t.name,
                description: &t.description,
                client: &client,
                catalog: &catalog,
                metrics: &mcp_metrics,
                aws: aws.as_ref(),
            };
            // The registry: one arm per kind.
            let built = match &t.kind {
                ToolKindConfig::Http(h) => {
                    http::build(&setup, h, headers(&t.name, &h.headers, &env)?)?
                }
                ToolKindConfig::Agent(a) => agent::build(&setup, a),
                ToolKindConfig::Mcp(m) => {
                    mcp::build(&setup, m, headers(&t.name, &m.headers, &env)?)
                }
                ToolKindConfig::Lambda(l) => lambda::build(&setup, l)?,
                ToolKindConfig::A2a(a) => a2a::build(&setup, a),
                ToolKindConfig::OpenApi(o) => {
                    let auth = setup.auth(o.auth.as_ref())?;
                    openapi::build(&setup, o, headers(&t.name, &o.headers, &env)?, auth)
                }
            };
            kinds.push(built.kind);
            tasks.extend(built.task);
        }
        let aws_tools: Vec<String> = config
            .tools
            .iter()
            .filter(|t| aws::uses_aws(&t.kind))
            .map(|t| t.name.clone())
            .collect();
        let regionless: Vec<String> = config
            .tools
            .iter()
            .filter(|t| aws::needs_chain_region(&t.kind))
            .map(|t| t.name.clone())
            .collect();
        if let Some(aws) = &aws
            && !aws_tools.is_empty()
        {
            tasks.push(aws.check_at_start(aws_tools, regionless));
        }
        Ok(Self {
            catalog,
            approval: config.tools.iter().map(|t| t.approval_required).collect(),
            kinds,
            mcp_metrics,
            tasks,
        })
    }

    /// The tools offered to the model now.
    pub fn offered(&self) -> Arc<Offered> {
        self.catalog.current().offered.clone()
    }

    /// The MCP metrics this toolbox keeps, for [`crate::metrics::Metrics::with_mcp`].
    pub fn mcp_metrics(&self) -> McpMetrics {
        self.mcp_metrics.clone()
    }

    /// The state of each tool that has one, for the `/readyz` body:
    /// `{"mcpServers": [{"tool", "url", "state", "error"?, "toolsOffered", "refused"?}],
    /// "openApiTools": [{"tool", "document", "state", "error"?, "operationsOffered", ...}],
    /// "a2aAgents": [{"tool", "url", "state", "endpoint"?, "protocolVersion"?, "error"?}]}`
    /// (see [`openapi`], [`a2a`]).
    pub fn readiness(&self) -> Value {
        let mut body =
            json!({ "mcpServers": [], openapi::READINESS_KEY: [], a2a::READINESS_KEY: [] });
        for kind in &self.kinds {
            if let Some(state) = kind.readiness()
                && let Some(list) = body
                    .get_mut(kind.readiness_key())
                    .and_then(Value::as_array_mut)
            {
                list.push(state);
            }
        }
        body
    }

    /// Whether a call to the tool Claude calls `name` waits for a person's approval (the
    /// configured tool it comes from has `approval: Required`; every tool an MCP server or
    /// an OpenAPI document offers through it, then). A name not offered: no (it fails).
    pub fn needs_approval(&self, name: &str) -> bool {
        self.catalog
            .current()
            .routes
            .get(name)
            .is_some_and(|e| self.approval.get(e.source).copied().unwrap_or(false))
    }

    /// The kind of the tool Claude calls `name` (`unknown` for a name not offered).
    pub fn kind_of(&self, name: &str) -> &'static str {
        self.catalog
            .current()
            .routes
            .get(name)
            .map_or("unknown", |e| e.kind.kind())
    }

    /// Runs one call, passing `trace` on; always returns a result.
    pub async fn call(
        &self,
        call: &ToolUse,
        ctx: CallContext,
        trace: &::http::HeaderMap,
    ) -> Outcome {
        let start = Instant::now();
        let result = self.result(call, ctx, trace).await;
        Outcome {
            result,
            duration: start.elapsed(),
        }
    }

    async fn result(
        &self,
        call: &ToolUse,
        ctx: CallContext,
        trace: &::http::HeaderMap,
    ) -> ToolResult {
        let id = &call.tool_use_id;
        let offer = self.catalog.current();
        let Some(entry) = offer.routes.get(&call.name) else {
            let names: Vec<&str> = offer
                .offered
                .specs
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            return ToolResult::error(
                id,
                format!(
                    "unknown tool {:?}; the tools are: {}",
                    call.name,
                    names.join(", ")
                ),
            );
        };
        let name = &entry.spec.name;
        if let Some(problem) = call.input.get(MALFORMED_INPUT_KEY).and_then(Value::as_str) {
            return ToolResult::error(id, format!("invalid input for {name}: {problem}"));
        }
        if let Err(problem) = schema::check(&entry.spec.input_schema, &call.input, "input") {
            return ToolResult::error(id, format!("invalid input for {name}: {problem}"));
        }
        let remaining = ctx.deadline.saturating_duration_since(Instant::now());
        let timeout = entry.timeout.min(remaining);
        if timeout.is_zero() {
            return ToolResult::error(
                id,
                format!("{name} was not called: the invocation deadline has passed"),
            );
        }
        let run = entry.kind.call(Call {
            id,
            target: &entry.target,
            input: &call.input,
            ctx,
            trace,
            timeout,
        });
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            Err(_) => ToolResult::error(
                id,
                format!("{name} timed out after {} ms", timeout.as_millis()),
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
