//! The HTTP API: `POST /v1/invoke` (JSON, or Server-Sent Events with
//! `Accept: text/event-stream`), OpenAI chat completions, the MCP server at `/mcp`,
//! a chat page at `GET /`, `GET /healthz`, `/readyz` and `/metrics`. Errors of `/v1/invoke` and the rest are JSON
//! `{"error": {"code", "message"}}` with a fitting status, unknown paths and methods included;
//! the chat completions endpoint answers in OpenAI's error shape, `/mcp` in MCP's.
//!
//! - [`body`]: reading and checking a request body (pure parts first, for tests and fuzzing);
//! - [`invocation`]: one admitted or refused invocation, its metrics and its access log line;
//! - [`invoke`]: the `/v1/invoke` endpoint (with `sessionId`, on a session);
//! - [`sessions`]: `GET`/`DELETE /v1/sessions/{id}`, `POST /v1/sessions/{id}/resume` and
//!   `/approvals`, and the HTTP answers of session errors;
//! - [`openai`]: OpenAI chat completions (`/v1/chat/completions`, `/v1/models`);
//! - [`mcp`]: the Agent as one MCP tool (`/mcp`, Streamable HTTP);
//! - [`page`]: the chat page (`GET /`), a browser client of `/v1/invoke`;
//! - [`a2a`]: the Agent as an A2A server (its card under `/.well-known/`, JSON-RPC at `POST /`).
//!
//! Each protocol is a thin adapter over the one loop ([`crate::invoke::invoke`]): it maps its
//! request to the loop's, and the loop's events and summary to its wire format, sharing the
//! concurrency slots, the limits, the metrics (by `protocol`), the request id, the access log
//! and the drain.

// Helpers return `Result<_, Response>`: the error is the HTTP answer itself, sent as it is.
#![allow(clippy::result_large_err)]

pub mod a2a;
pub mod body;
pub mod invocation;
mod invoke;
pub mod mcp;
pub mod openai;
pub mod page;
pub mod sessions;
mod sse;

/// The size of the future `f` returns, without calling it: a handler's future is boxed by axum
/// per request and lives as long as the request, so its size is memory per request in flight.
#[cfg(test)]
pub(crate) fn future_size<A, B, C, Fut: Future, F: FnOnce(A, B, C) -> Fut>(_: &F) -> usize {
    size_of::<Fut>()
}

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::{Notify, Semaphore, watch};

use crate::bedrock::BedrockError;
use crate::invoke::Runtime;

/// Shared state of the server.
#[derive(Clone)]
pub struct AppState {
    rt: Arc<Runtime>,
    slots: Arc<Semaphore>,
    draining: Arc<AtomicBool>,
    closing: watch::Receiver<bool>,
    in_flight: Arc<InFlight>,
    body_read_timeout: Duration,
    /// When the server started, in Unix seconds (the `created` of the Agent's model entry).
    started_unix: u64,
    /// The base URL the A2A agent card advertises, when not the Agent's cluster DNS name.
    public_url: Option<String>,
}

/// Invocations admitted and not yet ended, and a wake-up when the count changes.
#[derive(Default)]
pub struct InFlight {
    count: AtomicUsize,
    changed: Notify,
}

impl InFlight {
    /// How many there are.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl AppState {
    /// State for `rt`, admitting `limits.maxConcurrentInvocations` at once; `closing` turns
    /// true when the listener closes (a body still being read is then abandoned).
    pub fn new(
        rt: Arc<Runtime>,
        closing: watch::Receiver<bool>,
        body_read_timeout: Duration,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(
            rt.config.limits.max_concurrent_invocations as usize,
        ));
        Self {
            rt,
            slots,
            draining: Arc::new(AtomicBool::new(false)),
            closing,
            in_flight: Arc::default(),
            body_read_timeout,
            started_unix: unix_now(),
            public_url: None,
        }
    }

    /// The same, advertising `url` in the A2A agent card instead of the Agent's cluster DNS
    /// name (for a runtime reached another way, such as on a laptop).
    pub fn with_public_url(mut self, url: Option<String>) -> Self {
        self.public_url = url;
        self
    }

    /// The base URL the A2A agent card advertises, ending in `/`.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) if u.ends_with('/') => u.clone(),
            Some(u) => format!("{u}/"),
            None => a2a::card::default_url(&self.rt.config),
        }
    }

    /// Starts the drain: `/readyz` answers 503, so Kubernetes takes the pod out of its
    /// Service, and new invocations are refused with 503 and `Retry-After`.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the drain has begun.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Invocations in flight.
    pub fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    /// Waits until no invocation is in flight.
    pub async fn idle(&self) {
        loop {
            let changed = self.in_flight.changed.notified();
            if self.in_flight.count() == 0 {
                return;
            }
            changed.await;
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page::handler))
        .route("/v1/invoke", post(invoke::handler))
        .route(
            "/v1/sessions/{id}",
            get(sessions::get).delete(sessions::delete),
        )
        .route("/v1/sessions/{id}/resume", post(sessions::resume))
        .route("/v1/sessions/{id}/approvals", post(sessions::approvals))
        .merge(openai::routes())
        .merge(mcp::routes(&state))
        .merge(a2a::routes(&state))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state)
}

/// A JSON error response.
pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message.into()}})),
    )
        .into_response()
}

/// The same, with `Retry-After: seconds`.
pub fn retry_later(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    seconds: u32,
) -> Response {
    let mut r = error(status, code, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    r
}

/// The HTTP answer for a failed model call.
pub fn bedrock_error(e: &BedrockError) -> Response {
    match e {
        BedrockError::Throttled(_) => {
            retry_later(StatusCode::TOO_MANY_REQUESTS, e.code(), e.to_string(), 2)
        }
        BedrockError::Request(_) => error(StatusCode::BAD_REQUEST, e.code(), e.to_string()),
        _ => error(StatusCode::BAD_GATEWAY, e.code(), e.to_string()),
    }
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no endpoint at {}; this agent serves a chat page at GET /, POST /v1/invoke, POST /v1/chat/completions, GET /v1/models, /mcp, A2A (GET /.well-known/agent-card.json, POST /), GET /healthz, /readyz and /metrics",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not accept {method}", uri.path()),
    )
}

async fn readyz(axum::extract::State(s): axum::extract::State<AppState>) -> Response {
    if s.draining() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the runtime is shutting down",
        );
    }
    // Ready while an MCP server is down: the Agent serves its other tools; the body says which.
    let mut body = s.rt.tools.readiness();
    body["status"] = json!("ready");
    axum::Json(body).into_response()
}

async fn metrics(axum::extract::State(s): axum::extract::State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.rt.metrics.render(),
    )
        .into_response()
}
