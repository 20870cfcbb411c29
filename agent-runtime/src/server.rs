//! The HTTP API: `POST /v1/invoke` (JSON, or Server-Sent Events with
//! `Accept: text/event-stream`), `GET /healthz`, `/readyz` and `/metrics`. Errors are JSON
//! `{"error": {"code", "message"}}` with a fitting status.

// Helpers return `Result<_, Response>`: the error is the HTTP answer itself, sent as it is.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::bedrock::BedrockError;
use crate::conversation::Message;
use crate::invoke::{self, Request, Runtime, Summary};
use crate::machine::StopReason;
use crate::tools::{CALL_DEPTH_HEADER, DEADLINE_HEADER};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Shared state of the server.
#[derive(Clone)]
pub struct AppState {
    rt: Arc<Runtime>,
    slots: Arc<Semaphore>,
    ready: Arc<AtomicBool>,
}

impl AppState {
    /// State for `rt`, admitting `limits.maxConcurrentInvocations` at once.
    pub fn new(rt: Arc<Runtime>) -> Self {
        let slots = Arc::new(Semaphore::new(
            rt.config.limits.max_concurrent_invocations as usize,
        ));
        Self {
            rt,
            slots,
            ready: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Marks the server not ready (on shutdown), so Kubernetes stops sending traffic.
    pub fn set_not_ready(&self) {
        self.ready.store(false, Ordering::Relaxed);
    }
}

/// The routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/invoke", post(invoke_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
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

async fn readyz(State(s): State<AppState>) -> Response {
    if s.ready.load(Ordering::Relaxed) {
        "ready".into_response()
    } else {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the runtime is shutting down",
        )
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.rt.metrics.render(),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvokeBody {
    #[serde(default)]
    input: Option<String>,
    #[serde(default)]
    messages: Vec<Message>,
}

fn header_number(headers: &HeaderMap, name: &str) -> Result<Option<u64>, Response> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "invalid_header",
                    format!("header {name} must be a non-negative integer"),
                )
            }),
    }
}

fn bedrock_error(e: &BedrockError) -> Response {
    match e {
        BedrockError::Throttled(_) => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "throttled", e.to_string());
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
            r
        }
        BedrockError::Model { .. } => error(StatusCode::BAD_GATEWAY, "model_error", e.to_string()),
        BedrockError::Unreachable(_) => error(
            StatusCode::BAD_GATEWAY,
            "bedrock_unreachable",
            e.to_string(),
        ),
        BedrockError::Request(_) => error(
            StatusCode::BAD_REQUEST,
            "invalid_conversation",
            e.to_string(),
        ),
    }
}

async fn read_request(headers: &HeaderMap, body: Body) -> Result<InvokeBody, Response> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is over {MAX_BODY_BYTES} bytes"),
        )
    };
    if header_number(headers, "content-length")?.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| too_large())?;
    let parsed: InvokeBody = serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the body must be JSON {{\"input\": string, \"messages\": [...]}}: {e}"),
        )
    })?;
    let has_input = parsed
        .input
        .as_deref()
        .is_some_and(|s| !s.trim().is_empty());
    if !has_input && parsed.messages.is_empty() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "give \"input\" (a non-empty string) or \"messages\" (a conversation to continue)",
        ));
    }
    Ok(parsed)
}

async fn invoke_handler(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Ok(permit) = s.slots.clone().try_acquire_owned() else {
        s.rt.metrics.refused("over_capacity");
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!(
                "this agent is serving its limit of {} concurrent invocations; retry shortly",
                s.rt.config.limits.max_concurrent_invocations
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return r;
    };
    let body = match read_request(&headers, body).await {
        Ok(b) => b,
        Err(r) => {
            s.rt.metrics.refused("invalid_request");
            return r;
        }
    };
    let (depth, caller_ms) = match (
        header_number(&headers, CALL_DEPTH_HEADER),
        header_number(&headers, DEADLINE_HEADER),
    ) {
        (Ok(d), Ok(ms)) => (u32::try_from(d.unwrap_or(0)).unwrap_or(u32::MAX), ms),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    let request = Request {
        input: body.input,
        messages: body.messages,
        depth,
        deadline: invoke::deadline(&s.rt.config, caller_ms),
        stream,
    };
    if stream {
        stream_response(s, request, permit)
    } else {
        json_response(s, request, permit).await
    }
}

fn outcome(result: &Result<Summary, BedrockError>) -> String {
    match result {
        Ok(s) => s.stop_reason.as_str().to_string(),
        Err(e) => e.category().to_string(),
    }
}

async fn json_response(s: AppState, request: Request, _permit: OwnedSemaphorePermit) -> Response {
    let started = Instant::now();
    s.rt.metrics.started();
    let result = invoke::invoke(&s.rt, request, None).await;
    s.rt.metrics.finished(&outcome(&result), started.elapsed());
    match result {
        Ok(summary) if summary.stop_reason == StopReason::Deadline => error(
            StatusCode::GATEWAY_TIMEOUT,
            "deadline_exceeded",
            format!(
                "the invocation passed its deadline after {} model calls and {} tool calls",
                summary.iterations,
                summary.tool_calls.len()
            ),
        ),
        Ok(summary) => axum::Json(summary).into_response(),
        Err(e) => bedrock_error(&e),
    }
}

fn stream_response(s: AppState, request: Request, permit: OwnedSemaphorePermit) -> Response {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let rt = s.rt.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let started = Instant::now();
        rt.metrics.started();
        let result = invoke::invoke(&rt, request, Some(tx)).await;
        rt.metrics.finished(&outcome(&result), started.elapsed());
        let _ = done_tx.send(result);
    });
    let events = futures::stream::unfold((rx, Some(done_rx)), |(mut rx, done)| async move {
        if let Some(e) = rx.recv().await {
            let name = match &e {
                invoke::Event::Text { .. } => "text",
                invoke::Event::ToolStarted { .. } => "tool_call_started",
                invoke::Event::ToolFinished { .. } => "tool_call_finished",
            };
            let event = SseEvent::default()
                .event(name)
                .json_data(&e)
                .unwrap_or_default();
            return Some((Ok::<_, std::convert::Infallible>(event), (rx, done)));
        }
        // The invocation dropped its sender: it has ended; send its summary (or error) last.
        let done = done?.await.ok()?;
        let event = match done {
            Ok(summary) => SseEvent::default()
                .event("done")
                .json_data(&summary)
                .unwrap_or_default(),
            Err(e) => {
                let code = match &e {
                    BedrockError::Throttled(_) => "throttled",
                    BedrockError::Model { .. } => "model_error",
                    BedrockError::Unreachable(_) => "bedrock_unreachable",
                    BedrockError::Request(_) => "invalid_conversation",
                };
                SseEvent::default()
                    .event("error")
                    .json_data(json!({"error": {"code": code, "message": e.to_string()}}))
                    .unwrap_or_default()
            }
        };
        Some((Ok(event), (rx, None)))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
