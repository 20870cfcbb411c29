//! The Agent as an MCP server at `/mcp` (Streamable HTTP, through the official Rust SDK
//! `rmcp`): one tool, named after the Agent, taking `{input: string}` and answering with the
//! Agent's text, `isError: true` when the invocation fails or stops on a limit. A thin
//! adapter over the loop: each `tools/call` is one invocation with the same concurrency slots,
//! limits, metrics (`protocol="mcp"`), request id, access log and drain as `/v1/invoke`.
//!
//! Served stateless (no `Mcp-Session-Id`, plain JSON answers): every call stands alone, so
//! any replica behind the Service can answer it. The one hot request, a `tools/call` of the
//! Agent's tool in a handshake-era protocol version, is answered by [`call`] without the SDK's
//! per-request service; everything else goes to rmcp.
//!
//! With memory, the tool also takes an optional `sessionId` (advertised in its input schema
//! only then): the call continues that session as `/v1/invoke`'s `sessionId` does. Every
//! refusal — a busy session, a store that is down, a `sessionId` on an Agent without memory —
//! is an `isError` tool result saying why, as a full pod already is: MCP hosts show tool
//! results to their model, which can retry or go on without the session.

pub mod call;

use std::borrow::Cow;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::any;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use agentry_crds::runtime_config::AgentIdentity;

use super::invocation::{Invocation, Protocol};
use super::{AppState, body, error};
use crate::invoke::session::{self, Held};
use crate::invoke::{self, Request as LoopRequest, Summary};
use crate::session::SessionId;
use crate::tools::{CALL_DEPTH_HEADER, DEADLINE_HEADER};

const PATH: &str = "/mcp";

/// Longest MCP tool name (the MCP specification's bound).
const MAX_TOOL_NAME: usize = 128;

/// The MCP tool name of Agent `agent`: MCP allows `A-Z a-z 0-9 _ - .`, 1 to 128 characters;
/// a Kubernetes name already fits, anything else is replaced by `_`.
pub fn tool_name(agent: &str) -> String {
    let name: String = agent
        .chars()
        .take(MAX_TOOL_NAME)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "agent".into()
    } else {
        name
    }
}

/// The tool's description: the Agent's `spec.description` when set; otherwise (its system
/// prompt is not for callers to read) a fixed phrase naming the Agent.
pub fn tool_description(agent: &AgentIdentity) -> String {
    if let Some(d) = &agent.description {
        return d.clone();
    }
    let (agent, namespace) = (&agent.name, &agent.namespace);
    format!(
        "Ask the agent {agent} (namespace {namespace}): send a request in plain language as \
         `input`; it works on it with its own tools and answers with text."
    )
}

/// The tool's input schema: `{input: string}`, required, and with `sessions` (the Agent has
/// memory) an optional `sessionId`.
pub fn input_schema(sessions: bool) -> Map<String, Value> {
    let mut schema = json!({
        "type": "object",
        "properties": {"input": {"type": "string", "description": "The request, in plain language."}},
        "required": ["input"],
    });
    if sessions {
        schema["properties"]["sessionId"] = json!({
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
            "description": "Optional: continue the conversation kept under this id (a new id, such as a random UUID, starts one). Without it the call stands alone.",
        });
    }
    match schema {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// What a finished invocation answers: the text and whether it is an error. A limit stop is
/// an error (the answer is incomplete), carrying the reason and whatever text there was.
pub fn result_of(outcome: &Result<Summary, crate::bedrock::BedrockError>) -> (String, bool) {
    match outcome {
        Ok(s) if s.stop_reason.answered() => (s.output.clone(), false),
        // The turn waits in the session; the decisions go to the HTTP API for now.
        Ok(s) if s.stop_reason == crate::machine::StopReason::ApprovalRequired => {
            let calls: Vec<String> = s
                .pending_approvals
                .iter()
                .map(|c| {
                    format!(
                        "{} (toolUseId {}, input {})",
                        c.name, c.tool_use_id, c.input
                    )
                })
                .collect();
            let text = format!(
                "the agent waits for a person's approval of {}: send the decisions to POST /v1/sessions/{{sessionId}}/approvals",
                calls.join(", ")
            );
            (text, true)
        }
        Ok(s) => {
            let why = format!(
                "the agent stopped before finishing its answer: {}",
                s.stop_reason.as_str()
            );
            let text = if s.output.is_empty() {
                why
            } else {
                format!("{why}. Partial answer: {}", s.output)
            };
            (text, true)
        }
        Err(e) => (e.to_string(), true),
    }
}

/// The MCP server handler: one per request (stateless), sharing the runtime's state.
#[derive(Clone)]
struct AgentServer {
    state: AppState,
    tool: Arc<Tool>,
}

impl AgentServer {
    fn new(state: AppState) -> Self {
        let agent = &state.rt.config.agent;
        let tool = Tool::new(
            tool_name(&agent.name),
            tool_description(agent),
            Arc::new(input_schema(state.rt.sessions.is_some())),
        );
        Self {
            state,
            tool: Arc::new(tool),
        }
    }
}

/// What a call of the tool answers: the tool result's text and whether it is an error.
pub type Answer = (String, bool);

/// The tool result the SDK's types make of `answer`.
pub fn tool_result((text, is_error): Answer) -> CallToolResult {
    let content = vec![ContentBlock::text(text)];
    if is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    }
}

/// The session a call names with its `sessionId` argument, if any; the error is the tool
/// result's text and the `outcome` label.
fn session_of(
    s: &AppState,
    args: Option<&Map<String, Value>>,
) -> Result<Option<SessionId>, (String, &'static str)> {
    let id = match args.and_then(|a| a.get("sessionId")) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(id)) => id,
        Some(_) => {
            let why = "`sessionId` must be a string: the id of the session to continue";
            return Err((why.into(), "invalid_request"));
        }
    };
    if s.rt.sessions.is_none() {
        let why = "this agent keeps no sessions (it has no memory configured): call it without `sessionId`";
        return Err((why.into(), "sessions_not_enabled"));
    }
    SessionId::parse(id)
        .map(Some)
        .map_err(|m| (m, "invalid_request"))
}

/// A call of the Agent's tool with arguments `args`: `input` (a string) and, with memory, an
/// optional `sessionId`. Both paths of `/mcp` answer through here.
async fn call_tool(s: &AppState, args: Option<&Map<String, Value>>, headers: &HeaderMap) -> Answer {
    let failed = |text: String| (text, true);
    let input = args.and_then(|a| a.get("input")).and_then(Value::as_str);
    let Some(input) = input else {
        return failed("give `input`, a string: the request for the agent".into());
    };
    let mut inv = Invocation::arrive(s, headers, "POST", PATH, Protocol::Mcp);
    if s.draining() {
        inv.finish(503, "shutting_down");
        return failed("the runtime is shutting down; retry on another replica".into());
    }
    let (depth, caller_ms) = match (
        body::header_number(headers, CALL_DEPTH_HEADER),
        body::header_number(headers, DEADLINE_HEADER),
    ) {
        (Ok(d), Ok(ms)) => (u32::try_from(d.unwrap_or(0)).unwrap_or(u32::MAX), ms),
        (Err(r), _) | (_, Err(r)) => {
            inv.finish(r.status.as_u16(), r.code);
            return failed(r.message);
        }
    };
    if let Err(e) = crate::conversation::check(&[], Some(input)) {
        inv.finish(400, "invalid_request");
        return failed(e.to_string());
    }
    let session_id = match session_of(s, args) {
        Ok(id) => id,
        Err((why, outcome)) => {
            inv.finish(400, outcome);
            return failed(why);
        }
    };
    if !inv.admit() {
        inv.finish(429, "over_capacity");
        return failed(format!(
            "this agent is serving its limit of {} concurrent invocations; retry shortly",
            s.rt.config.limits.max_concurrent_invocations
        ));
    }
    let held: Option<Held> = match (session_id, &s.rt.sessions) {
        (Some(id), Some(store)) => match session::acquire(store, id, &inv.request_id).await {
            Ok(h) => Some(h),
            Err(e) => {
                let (status, _) = super::sessions::status(&e);
                inv.finish(status.as_u16(), e.code());
                return failed(crate::error_chain(&e));
            }
        },
        _ => None,
    };
    let request = LoopRequest {
        input: Some(input.to_string()),
        messages: vec![],
        depth,
        deadline: invoke::deadline(&s.rt.config, caller_ms),
        stream: false,
        request_id: inv.request_id.clone(),
        overrides: Default::default(),
        trace: inv.trace.clone(),
    };
    let outcome = session::run_maybe(held, &s.rt, request, None, &inv.progress).await;
    inv.finish(200, &session::outcome_label(&outcome));
    match outcome {
        Ok(ended) => result_of(&ended),
        // The turn ran but could not be saved (nothing was): the answer is not given, so the
        // caller does not go on from a turn the session lacks.
        Err(e) => failed(crate::error_chain(&e)),
    }
}

impl ServerHandler for AgentServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_server_info(
            Implementation::new(
                self.state.rt.config.agent.name.clone(),
                env!("CARGO_PKG_VERSION"),
            ),
        )
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        (name == self.tool.name).then(|| (*self.tool).clone())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![(*self.tool).clone()]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name != self.tool.name {
            return Err(ErrorData::invalid_params(
                Cow::Owned(format!(
                    "unknown tool {}: this server has one tool, {}",
                    request.name, self.tool.name
                )),
                None,
            ));
        }
        let headers = context
            .extensions
            .get::<axum::http::request::Parts>()
            .map(|p| p.headers.clone())
            .unwrap_or_default();
        // A client that cancels or goes away cancels the invocation; the guard it drops
        // counts it as `client_disconnected`.
        tokio::select! {
            r = call_tool(&self.state, request.arguments.as_ref(), &headers) => Ok(tool_result(r).into()),
            _ = context.ct.cancelled() => Err(ErrorData::internal_error("cancelled", None)),
        }
    }
}

/// The `/mcp` route, for `state`'s runtime.
pub fn routes(state: &AppState) -> Router<AppState> {
    let handler = AgentServer::new(state.clone());
    // No Host allowlist: rmcp's default (loopback names only) guards a server on a developer's
    // machine against DNS rebinding, but a pod is reached by its Service name, its pod IP, a
    // custom cluster domain or an Ingress host, none of which can be listed in advance; and
    // `/v1/invoke` on the same port has no such check to bypass. Browsers are kept out
    // instead: a request carrying any `Origin` is refused (MCP hosts send none).
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .disable_allowed_hosts()
        .enforce_origin_validation()
        .with_max_request_body_bytes(body::MAX_BODY_BYTES);
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    let tool: Arc<str> = tool_name(&state.rt.config.agent.name).into();
    Router::new().route(
        PATH,
        any(move |State(s): State<AppState>, req: Request| {
            let (service, tool) = (service.clone(), tool.clone());
            async move {
                if s.draining() {
                    let mut r = error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "shutting_down",
                        "the runtime is shutting down; retry on another replica",
                    );
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(1));
                    return r;
                }
                let req = match call::serve(&s, &tool, req).await {
                    Ok(answered) => return answered,
                    Err(req) => req,
                };
                match service.oneshot(req).await {
                    Ok(r) => r.map(axum::body::Body::new).into_response(),
                    Err(never) => match never {},
                }
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::Usage;
    use crate::machine::StopReason;

    fn summary(stop: StopReason, output: &str) -> Result<Summary, crate::bedrock::BedrockError> {
        Ok(Summary {
            output: output.into(),
            stop_reason: stop,
            iterations: 1,
            usage: Usage::default(),
            tool_calls: vec![],
            texts: vec![output.into()],
            pending_approvals: vec![],
        })
    }

    #[test]
    fn a_turn_waiting_for_approval_names_its_calls_and_where_the_decisions_go() {
        let mut waiting = summary(StopReason::ApprovalRequired, "I will book it.");
        if let Ok(s) = &mut waiting {
            s.pending_approvals = vec![crate::conversation::ToolUse {
                tool_use_id: "t1".into(),
                name: "book".into(),
                input: serde_json::json!({"table": 4}),
            }];
        }
        assert_eq!(
            result_of(&waiting),
            (
                r#"the agent waits for a person's approval of book (toolUseId t1, input {"table":4}): send the decisions to POST /v1/sessions/{sessionId}/approvals"#.to_string(),
                true
            )
        );
    }

    #[test]
    fn a_kubernetes_name_is_a_valid_tool_name_and_other_characters_become_underscores() {
        assert_eq!(tool_name("radio-dj.v2"), "radio-dj.v2");
        assert_eq!(tool_name("a b/c"), "a_b_c");
        assert_eq!(tool_name(&"x".repeat(300)).len(), MAX_TOOL_NAME);
        assert_eq!(tool_name(""), "agent");
    }

    #[test]
    fn an_answer_is_a_success_and_a_limit_stop_an_error_with_its_reason_and_partial_text() {
        assert_eq!(
            result_of(&summary(StopReason::EndTurn, "Elemental Hotel")),
            ("Elemental Hotel".into(), false)
        );
        let (text, is_error) = result_of(&summary(StopReason::MaxIterations, "Let me check."));
        assert!(is_error);
        assert_eq!(
            text,
            "the agent stopped before finishing its answer: max_iterations. Partial answer: Let me check."
        );
        let (text, is_error) = result_of(&Err(crate::bedrock::BedrockError::Throttled(
            "slow down".into(),
        )));
        assert!(is_error && text.contains("slow down"), "{text}");
    }

    #[test]
    fn the_tool_is_described_by_the_agents_description_or_else_a_phrase_naming_it() {
        let mut agent = AgentIdentity {
            name: "radio".into(),
            namespace: "demo".into(),
            description: None,
        };
        let phrase = tool_description(&agent);
        assert!(
            phrase.starts_with("Ask the agent radio (namespace demo)"),
            "{phrase}"
        );
        agent.description = Some("Tells the top song on a station.".into());
        assert_eq!(tool_description(&agent), "Tells the top song on a station.");
    }

    #[test]
    fn the_input_schema_requires_a_string_input_and_offers_a_session_id_only_with_memory() {
        let s = Value::Object(input_schema(false));
        assert_eq!(s["properties"]["input"]["type"], "string");
        assert_eq!(s["required"], json!(["input"]));
        assert_eq!(s["properties"].as_object().unwrap().len(), 1, "{s}");
        let s = Value::Object(input_schema(true));
        assert_eq!(s["properties"]["sessionId"]["type"], "string");
        assert_eq!(s["required"], json!(["input"]), "sessionId is optional");
    }
}
