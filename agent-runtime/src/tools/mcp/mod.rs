//! MCP tools: the tools of a Model Context Protocol server, through the official Rust SDK
//! (rmcp). One [`McpServer`] per configured `mcp` tool; its task connects at start (retrying
//! with backoff while the server is down, without holding up the Agent's other tools), lists
//! the server's tools (all pages), keeps those in `allowedTools`, and offers each under the
//! name [`naming::derive`] gives. It lists again when the server says its tools changed, and
//! reconnects when the session is lost. A call is a `tools/call`; a dropped or expired session
//! is reconnected and the call retried once.
//!
//! - [`session`]: connecting (Streamable HTTP, HTTP+SSE) and the requests;
//! - [`transport`]: per-call headers under rmcp's HTTP client; [`sse`]: the HTTP+SSE transport;
//! - [`naming`]: Bedrock-visible names; [`result`]: results as tool results.

pub mod naming;
pub mod result;
mod session;
mod sse;
mod transport;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentry_crds::runtime_config::McpToolConfig;
use futures::future::BoxFuture;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use super::catalog::{Catalog, Entry};
use super::{Built, CALL_DEPTH_HEADER, Call, DEADLINE_HEADER, Setup, ToolKind, seconds};
use crate::bedrock::ToolSpec;
use crate::conversation::ToolResult;
use crate::metrics::McpMetrics;
use session::{CallError, Session, Target};
use transport::CallHeaders;

/// First wait after a failed connection; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often a connected server's session is checked for having closed.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Where a server stands, for `/readyz`.
#[derive(Clone, Debug, Default)]
struct Status {
    state: &'static str,
    error: Option<String>,
    transport: Option<&'static str>,
    protocol: Option<String>,
    /// `allowedTools` entries the server does not list.
    missing: Vec<String>,
}

/// One configured MCP server.
pub struct McpServer {
    name: String,
    description: String,
    url: String,
    allowed: Vec<String>,
    timeout: Duration,
    headers: Arc<Vec<(HeaderName, HeaderValue)>>,
    client: reqwest::Client,
    index: usize,
    catalog: Arc<Catalog>,
    metrics: McpMetrics,
    status: Mutex<Status>,
    session: watch::Sender<Option<Arc<Session>>>,
    /// The server said its tools changed.
    changed: Arc<Notify>,
    /// A call found the session broken.
    broken: Notify,
}

pub(super) fn build(
    setup: &Setup<'_>,
    config: &McpToolConfig,
    headers: Vec<(HeaderName, HeaderValue)>,
) -> Built {
    let server = Arc::new(McpServer {
        name: setup.name.to_string(),
        description: setup.description.to_string(),
        url: config.url.clone(),
        allowed: config.allowed_tools.clone(),
        timeout: seconds(config.timeout_seconds),
        headers: Arc::new(headers),
        // No redirects: a redirect to another origin would carry the tool's headers there.
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| setup.client.clone()),
        index: setup.index,
        catalog: setup.catalog.clone(),
        metrics: setup.metrics.clone(),
        status: Mutex::new(Status {
            state: "connecting",
            ..Status::default()
        }),
        session: watch::Sender::new(None),
        changed: Arc::new(Notify::new()),
        broken: Notify::new(),
    });
    server.metrics.tools_offered(&server.name, 0);
    let task = tokio::spawn(server.clone().supervise());
    Built {
        kind: server,
        task: Some(task),
    }
}

impl McpServer {
    fn set_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Connects, lists and offers, and keeps doing so for as long as the runtime runs.
    async fn supervise(self: Arc<Self>) {
        let mut backoff = MIN_BACKOFF;
        let mut generation = 0;
        loop {
            generation += 1;
            let target = Target {
                client: &self.client,
                url: &self.url,
                headers: &self.headers,
                changed: &self.changed,
            };
            let session = match session::connect(target, generation).await {
                Ok(s) => Arc::new(s),
                Err(error) => {
                    tracing::warn!(tool = %self.name, url = %self.url, %error, retry_in = ?backoff, "MCP server unreachable");
                    self.set_status(|s| {
                        s.state = "failed";
                        s.error = Some(error);
                    });
                    self.offer(Vec::new());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = MIN_BACKOFF;
            // A list that fails right after connecting is a broken session like any other.
            if let Err(error) = self.list(&session).await {
                self.set_status(|s| {
                    s.state = "failed";
                    s.error = Some(error);
                });
                self.offer(Vec::new());
                tokio::time::sleep(backoff).await;
                continue;
            }
            self.set_status(|s| {
                s.state = "connected";
                s.error = None;
                s.transport = Some(session.transport);
                s.protocol = Some(session.protocol.clone());
            });
            tracing::info!(tool = %self.name, url = %self.url, transport = session.transport, protocol = %session.protocol, tools = self.catalog.offered_count(self.index), "MCP server connected");
            self.metrics.connected(true);
            self.session.send_replace(Some(session.clone()));
            self.watch(&session).await;
            self.metrics.connected(false);
            self.session.send_replace(None);
            self.set_status(|s| s.state = "connecting");
            tracing::warn!(tool = %self.name, url = %self.url, "MCP session lost; reconnecting");
            if let Some(s) = Arc::into_inner(session) {
                tokio::spawn(s.close());
            }
        }
    }

    /// Waits while the session lives, listing again whenever the tools change.
    async fn watch(self: &Arc<Self>, session: &Session) {
        let mut subscription = session.subscribe().await;
        loop {
            let notified = async {
                match subscription.as_mut() {
                    Some(s) => s.next().await.ok().flatten().is_some(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.changed.notified() => {}
                alive = notified => if !alive { return },
                () = self.broken.notified() => return,
                () = tokio::time::sleep(CHECK_EVERY) => {
                    if session.is_closed() { return }
                    continue;
                }
            }
            if let Err(error) = self.list(session).await {
                tracing::warn!(tool = %self.name, %error, "listing the MCP server's tools failed");
                return;
            }
        }
    }

    /// Lists the server's tools and offers the allowed ones.
    async fn list(self: &Arc<Self>, session: &Session) -> Result<(), String> {
        let tools = session.tools().await?;
        let listed: Vec<&str> = tools
            .iter()
            .filter_map(|t| t.get("name").and_then(Value::as_str))
            .collect();
        let missing: Vec<String> = self
            .allowed
            .iter()
            .filter(|a| !listed.contains(&a.as_str()))
            .cloned()
            .collect();
        if !missing.is_empty() {
            tracing::warn!(tool = %self.name, ?missing, "allowedTools names tools the MCP server does not list");
        }
        let entries = tools
            .iter()
            .filter_map(|t| self.entry(t))
            .collect::<Vec<_>>();
        self.set_status(|s| s.missing = missing);
        self.offer(entries);
        Ok(())
    }

    fn offer(&self, entries: Vec<Entry>) {
        self.catalog.set(self.index, entries);
        self.metrics
            .tools_offered(&self.name, self.catalog.offered_count(self.index));
    }

    /// The entry of one listed tool, unless `allowedTools` leaves it out or it cannot be called.
    fn entry(self: &Arc<Self>, tool: &Value) -> Option<Entry> {
        let mcp_name = tool.get("name").and_then(Value::as_str)?;
        if !self.allowed.is_empty() && !self.allowed.iter().any(|a| a == mcp_name) {
            return None;
        }
        if tool
            .pointer("/execution/taskSupport")
            .and_then(Value::as_str)
            == Some("required")
        {
            tracing::warn!(tool = %self.name, mcp_tool = mcp_name, "not offered: it runs only as a task, which this runtime does not support");
            return None;
        }
        let description = tool
            .get("description")
            .or_else(|| tool.get("title"))
            .and_then(Value::as_str)
            .filter(|d| !d.trim().is_empty())
            .map_or_else(
                || format!("{} ({mcp_name})", self.description),
                String::from,
            );
        let input_schema = tool
            .get("inputSchema")
            .filter(|s| s.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object"}));
        Some(Entry {
            source: 0,
            spec: ToolSpec {
                name: naming::derive(&self.name, mcp_name),
                description,
                input_schema,
            },
            kind: self.clone(),
            target: mcp_name.to_string(),
            timeout: self.timeout,
            origin: format!("tool {mcp_name} of MCP server {}", self.name),
            plain: false,
        })
    }
}

impl McpServer {
    /// The session now, or the next one if there is none yet (waiting at most until
    /// `deadline`); `newer_than` skips a session the caller found broken.
    async fn session(&self, newer_than: u64, deadline: Instant) -> Option<Arc<Session>> {
        let mut rx = self.session.subscribe();
        let wait = rx.wait_for(|s| s.as_ref().is_some_and(|s| s.generation > newer_than));
        match tokio::time::timeout_at(deadline.into(), wait).await {
            Ok(Ok(s)) => s.clone(),
            _ => None,
        }
    }

    /// One call with its headers; a broken session is replaced and the call retried once.
    async fn run(&self, call: Call<'_>) -> ToolResult {
        let id = call.id;
        let deadline = Instant::now() + call.timeout;
        let mut headers = CallHeaders(vec![
            (
                HeaderName::from_static(CALL_DEPTH_HEADER),
                HeaderValue::from(call.ctx.depth + 1),
            ),
            (
                HeaderName::from_static(DEADLINE_HEADER),
                HeaderValue::from(u64::try_from(call.timeout.as_millis()).unwrap_or(u64::MAX)),
            ),
        ]);
        headers
            .0
            .extend(call.trace.iter().map(|(k, v)| (k.clone(), v.clone())));
        let offered = naming::derive(&self.name, call.target);
        let mut seen = 0;
        let mut retried = false;
        loop {
            let Some(session) = self.session(seen, deadline).await else {
                self.metrics.call(&offered, "unreachable");
                let why = self.status.lock().map(|s| s.error.clone()).ok().flatten();
                return ToolResult::error(
                    id,
                    format!(
                        "the MCP server {} ({}) is not connected{}",
                        self.name,
                        self.url,
                        why.map(|w| format!(": {w}")).unwrap_or_default()
                    ),
                );
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let outcome = session
                .call(call.target, call.input, headers.clone(), left)
                .await;
            let (label, message) = match outcome {
                Ok(value) => {
                    let result = result::convert(id, &value);
                    let label = if result.is_error() {
                        "tool_error"
                    } else {
                        "success"
                    };
                    self.metrics.call(&offered, label);
                    return result;
                }
                Err(CallError::Broken(why)) if !retried => {
                    tracing::info!(tool = %self.name, %why, "MCP session broken during a call; reconnecting to retry once");
                    retried = true;
                    seen = session.generation;
                    self.broken.notify_one();
                    continue;
                }
                Err(CallError::Broken(why)) => (
                    "unreachable",
                    format!(
                        "the MCP server {} could not be reached (after reconnecting once): {why}",
                        self.name
                    ),
                ),
                Err(CallError::Timeout) => (
                    "timeout",
                    format!("{offered} timed out after {} ms", call.timeout.as_millis()),
                ),
                Err(CallError::Refused(why)) => (
                    "protocol_error",
                    format!("the MCP server {} refused the call: {why}", self.name),
                ),
                Err(CallError::Other(why)) => (
                    "protocol_error",
                    format!("the call to the MCP server {} failed: {why}", self.name),
                ),
            };
            self.metrics.call(&offered, label);
            return ToolResult::error(id, message);
        }
    }
}

impl ToolKind for McpServer {
    fn kind(&self) -> &'static str {
        "mcp"
    }

    fn call<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, ToolResult> {
        Box::pin(self.run(call))
    }

    fn readiness(&self) -> Option<Value> {
        let s = self.status.lock().map(|s| s.clone()).unwrap_or_default();
        let mut v = json!({
            "tool": self.name,
            "url": self.url,
            "state": s.state,
            "toolsOffered": self.catalog.offered_count(self.index),
        });
        let extra = [
            ("error", s.error.map(Value::from)),
            ("transport", s.transport.map(Value::from)),
            ("protocolVersion", s.protocol.map(Value::from)),
            (
                "refused",
                Some(self.catalog.refused(self.index))
                    .filter(|r| !r.is_empty())
                    .map(Value::from),
            ),
            (
                "missingTools",
                Some(s.missing).filter(|m| !m.is_empty()).map(Value::from),
            ),
        ];
        for (k, val) in extra {
            if let Some(val) = val {
                v[k] = val;
            }
        }
        Some(v)
    }
}
