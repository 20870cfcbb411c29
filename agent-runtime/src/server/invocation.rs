//! One invocation request from arrival to its last byte: its request id, its concurrency slot
//! once admitted, and — whatever way it ends, a client disconnect included — exactly one
//! outcome in the metrics and one access log line (never the prompt or tool input).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::http::{HeaderMap, HeaderValue};
use tokio::sync::OwnedSemaphorePermit;

use opentelemetry::KeyValue;

use super::AppState;
use crate::invoke::Progress;
use crate::telemetry::Trace;

/// Header carrying the request id (taken from the client when it sends a usable one).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The protocol an invocation is spoken in: the bounded `protocol` label of the invocation
/// metrics and the `protocol` field of the access log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `POST /v1/invoke`, JSON or Server-Sent Events.
    Invoke,
    /// OpenAI chat completions, `POST /v1/chat/completions`.
    OpenAi,
    /// MCP `tools/call` at `/mcp`.
    Mcp,
    /// A2A `message/send` or `message/stream` (either version) at `POST /`.
    A2a,
}

impl Protocol {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invoke => "invoke",
            Self::OpenAi => "openai",
            Self::Mcp => "mcp",
            Self::A2a => "a2a",
        }
    }
}

/// Outcome of an invocation whose client went away before its answer.
pub const CLIENT_DISCONNECTED: &str = "client_disconnected";

/// The client's request id when it is short and printable, else a new one.
pub fn request_id(headers: &HeaderMap) -> String {
    if let Some(id) = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
    {
        return id.to_string();
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    });
    format!("{seed:016x}{:08x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// An invocation request. Dropping it records its outcome: the one given to
/// [`Invocation::finish`], or [`CLIENT_DISCONNECTED`] (HTTP 499 in the log) when it was
/// dropped unfinished because the client went away.
pub struct Invocation {
    state: AppState,
    /// Its request id.
    pub request_id: String,
    method: String,
    path: String,
    protocol: Protocol,
    stream: bool,
    started: Instant,
    /// Model calls, tool calls and tokens so far.
    pub progress: Arc<Progress>,
    ended: Option<(u16, String)>,
    admitted: Option<OwnedSemaphorePermit>,
    /// Its `invoke_agent` span (or the caller's trace context), ended when it is dropped.
    pub trace: Trace,
}

impl Invocation {
    /// A request arriving at `path`, spoken in `protocol`.
    pub fn arrive(
        state: &AppState,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        protocol: Protocol,
    ) -> Self {
        let request_id = request_id(headers);
        let trace = state
            .rt
            .telemetry
            .invoke_agent(headers, protocol.as_str(), &request_id);
        Self {
            state: state.clone(),
            trace,
            request_id,
            method: method.to_string(),
            path: path.to_string(),
            protocol,
            stream: false,
            started: Instant::now(),
            progress: Arc::default(),
            ended: None,
            admitted: None,
        }
    }

    /// Takes a concurrency slot; `false` when all are taken.
    pub fn admit(&mut self) -> bool {
        let Ok(permit) = self.state.slots.clone().try_acquire_owned() else {
            return false;
        };
        self.admitted = Some(permit);
        self.state.rt.metrics.started(self.protocol.as_str());
        self.state.in_flight.count.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Marks it as answered with a stream (for the access log).
    pub fn set_stream(&mut self) {
        self.stream = true;
    }

    /// Records how it ended: the HTTP status sent and the outcome (a stop reason, an error
    /// category, or a refusal code).
    pub fn finish(&mut self, status: u16, outcome: &str) {
        self.ended = Some((status, outcome.to_string()));
    }

    /// The request id as a header value.
    pub fn request_id_header(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.request_id).ok()
    }
}

impl Drop for Invocation {
    fn drop(&mut self) {
        let (status, outcome) = self
            .ended
            .take()
            .unwrap_or_else(|| (499, CLIENT_DISCONNECTED.to_string()));
        let elapsed = self.started.elapsed();
        let metrics = &self.state.rt.metrics;
        if self.admitted.take().is_some() {
            metrics.finished(self.protocol.as_str(), &outcome, elapsed);
            self.state.in_flight.count.fetch_sub(1, Ordering::SeqCst);
            self.state.in_flight.changed.notify_waiters();
        } else {
            metrics.refused(self.protocol.as_str(), &outcome);
        }
        let p = self.progress.snapshot();
        self.trace.record(|| {
            vec![
                KeyValue::new("http.response.status_code", i64::from(status)),
                KeyValue::new("agentry.outcome", outcome.clone()),
                KeyValue::new(
                    "gen_ai.usage.input_tokens",
                    // The conventions count cached input too, as the chat spans do.
                    i64::try_from(p.input_tokens + p.cached_input_tokens).unwrap_or(i64::MAX),
                ),
                KeyValue::new(
                    "gen_ai.usage.output_tokens",
                    i64::try_from(p.output_tokens).unwrap_or(i64::MAX),
                ),
            ]
        });
        if status >= 400 {
            self.trace
                .fail(&outcome, format!("HTTP {status}: {outcome}"));
        }
        self.trace.end();
        let _trace = (!self.trace.is_empty()).then(|| self.trace.context().clone().attach());
        tracing::info!(
            target: "agentry_runtime::access",
            request_id = %self.request_id,
            method = %self.method,
            path = %self.path,
            protocol = self.protocol.as_str(),
            stream = self.stream,
            status,
            outcome = %outcome,
            duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            model_calls = p.model_calls,
            tool_calls = p.tool_calls,
            input_tokens = p.input_tokens,
            output_tokens = p.output_tokens,
            "invocation"
        );
    }
}
