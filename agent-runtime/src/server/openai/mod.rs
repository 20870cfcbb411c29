//! OpenAI-compatible chat completions: `POST /v1/chat/completions` (a `chat.completion`, or
//! `chat.completion.chunk` Server-Sent Events with `stream: true`) and `GET /v1/models` (the
//! Agent as the one model). A thin adapter over the loop: [`request`] maps the body to the
//! loop's request, [`wire`] maps its events and summary to OpenAI's shapes; admission, the
//! concurrency slots, metrics (`protocol="openai"`), the access log and the drain are the
//! same as `/v1/invoke`'s. Errors are `{"error": {message, type, param, code}}` with the
//! statuses the `openai` SDKs map to their exception classes.

pub mod request;
pub mod wire;

use std::convert::Infallible;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::mpsc::error::TryRecvError;

use super::body::{self, ReadFailure};
use super::invocation::{Invocation, Protocol, REQUEST_ID_HEADER};
use super::{AppState, sse};
use crate::bedrock::BedrockError;
use crate::invoke::{self, Event, Request, Summary};
use crate::tools::{CALL_DEPTH_HEADER, DEADLINE_HEADER};
use request::{Bounds, ChatRequest, RequestError};
use wire::{Delta, ErrorBody, ErrorObject, Head};

const PATH: &str = "/v1/chat/completions";

/// Between the texts of two model calls (before and after a tool round trip), in the answer
/// and in the stream alike.
const BETWEEN_REPLIES: &str = "\n\n";

/// The routes of this protocol.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, post(completions))
        .route("/v1/models", get(models))
}

async fn models(State(s): State<AppState>) -> Response {
    axum::Json(wire::models(&s.rt.config.agent.name, s.started_unix)).into_response()
}

/// An error answer; `retry_after` adds `Retry-After`, `no_retry` tells the SDKs not to retry
/// (`x-should-retry: false`) where a retry would fail the same way.
struct Failure {
    status: StatusCode,
    error: ErrorObject,
    retry_after: Option<u32>,
    no_retry: bool,
}

impl Failure {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, message: String) -> Self {
        Self {
            status,
            error: ErrorObject {
                message,
                kind,
                param: None,
                code: Some(code),
            },
            retry_after: None,
            no_retry: false,
        }
    }

    fn response(self) -> Response {
        let mut r = (self.status, axum::Json(ErrorBody { error: self.error })).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.no_retry {
            r.headers_mut()
                .insert("x-should-retry", HeaderValue::from_static("false"));
        }
        r
    }
}

fn refused(e: RequestError) -> Failure {
    let message = e.to_string();
    match e {
        RequestError::Invalid { param, code, .. } => {
            let mut f = Failure::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                code,
                message,
            );
            f.error.param = param;
            f
        }
        RequestError::ModelNotFound { .. } => {
            let mut f = Failure::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
                message,
            );
            f.error.param = Some("model".into());
            f
        }
    }
}

/// A failed model call: throttling is a rate limit (429, retried after `Retry-After`); a
/// conversation Bedrock cannot take is the client's (400); a model's refusal is not retried;
/// the rest (unreachable, unreadable, incomplete) may be transient and are retried.
fn model_failure(e: &BedrockError) -> Failure {
    let message = e.to_string();
    match e {
        BedrockError::Throttled(_) => Failure {
            retry_after: Some(2),
            ..Failure::new(
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                "rate_limit_exceeded",
                message,
            )
        },
        BedrockError::Request(_) => Failure::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            e.code(),
            message,
        ),
        BedrockError::Model { .. } | BedrockError::ReplyTooLarge { .. } => Failure {
            no_retry: true,
            ..Failure::new(StatusCode::BAD_GATEWAY, "server_error", e.code(), message)
        },
        _ => Failure::new(StatusCode::BAD_GATEWAY, "server_error", e.code(), message),
    }
}

fn deadline(summary: &Summary) -> Failure {
    Failure {
        no_retry: true,
        ..Failure::new(
            StatusCode::GATEWAY_TIMEOUT,
            "server_error",
            "deadline_exceeded",
            format!(
                "the invocation passed its deadline after {} model calls and {} tool calls",
                summary.iterations,
                summary.tool_calls.len()
            ),
        )
    }
}

fn outcome(result: &Result<Summary, BedrockError>) -> String {
    match result {
        Ok(s) => s.stop_reason.as_str().to_string(),
        Err(e) => e.category().to_string(),
    }
}

async fn completions(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let inv = Invocation::arrive(&s, &headers, "POST", PATH, Protocol::OpenAi);
    let id = inv.request_id_header();
    let mut response = answer(&s, inv, &headers, body).await;
    if let Some(id) = id {
        response.headers_mut().insert(REQUEST_ID_HEADER, id);
    }
    response
}

fn refuse(inv: &mut Invocation, f: Failure, outcome: &str) -> Response {
    inv.finish(f.status.as_u16(), outcome);
    f.response()
}

async fn answer(s: &AppState, mut inv: Invocation, headers: &HeaderMap, body: Body) -> Response {
    if s.draining() {
        let f = Failure {
            retry_after: Some(1),
            ..Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "shutting_down",
                "the runtime is shutting down; retry on another replica".into(),
            )
        };
        let mut r = refuse(&mut inv, f, "shutting_down");
        // The body is not read: the connection cannot carry another request.
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    let bytes = match body::read(headers, body, s.body_read_timeout, s.closing.clone()).await {
        Ok(b) => b,
        Err(ReadFailure::Refused(r)) => {
            let kind = if r.status.is_server_error() {
                "server_error"
            } else {
                "invalid_request_error"
            };
            let mut f = Failure::new(r.status, kind, r.code, r.message);
            if r.code == "shutting_down" {
                f.retry_after = Some(1);
            }
            let mut response = refuse(&mut inv, f, r.code);
            if matches!(r.code, "body_timeout" | "shutting_down") {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            return response;
        }
        Err(ReadFailure::Disconnected) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let cfg = &s.rt.config;
    let bounds = Bounds {
        agent: &cfg.agent.name,
        max_tokens: cfg.model.max_tokens,
    };
    let chat = match request::parse(&bytes, bounds) {
        Ok(c) => c,
        Err(e) => {
            let code = match &e {
                RequestError::Invalid { .. } => "invalid_request",
                RequestError::ModelNotFound { .. } => "model_not_found",
            };
            return refuse(&mut inv, refused(e), code);
        }
    };
    let (depth, caller_ms) = match (
        body::header_number(headers, CALL_DEPTH_HEADER),
        body::header_number(headers, DEADLINE_HEADER),
    ) {
        (Ok(d), Ok(ms)) => (u32::try_from(d.unwrap_or(0)).unwrap_or(u32::MAX), ms),
        (Err(r), _) | (_, Err(r)) => {
            let f = Failure::new(r.status, "invalid_request_error", r.code, r.message);
            return refuse(&mut inv, f, r.code);
        }
    };
    if !inv.admit() {
        let f = Failure {
            retry_after: Some(1),
            ..Failure::new(
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                "rate_limit_exceeded",
                format!(
                    "this agent is serving its limit of {} concurrent invocations; retry shortly",
                    cfg.limits.max_concurrent_invocations
                ),
            )
        };
        return refuse(&mut inv, f, "over_capacity");
    }
    let ChatRequest {
        messages,
        overrides,
        stream,
        include_usage,
    } = chat;
    let request = Request {
        input: None,
        messages,
        depth,
        deadline: invoke::deadline(cfg, caller_ms),
        stream,
        request_id: inv.request_id.clone(),
        overrides,
    };
    let head = OwnedHead {
        id: format!("chatcmpl-{}", inv.request_id),
        created: super::unix_now(),
    };
    if stream {
        inv.set_stream();
        stream_response(s, request, inv, head, include_usage)
    } else {
        json_response(s, request, inv, head).await
    }
}

/// The owned parts of [`Head`]; the model is the Agent's name.
struct OwnedHead {
    id: String,
    created: u64,
}

async fn json_response(
    s: &AppState,
    request: Request,
    mut inv: Invocation,
    head: OwnedHead,
) -> Response {
    let result = invoke::invoke(&s.rt, request, None, &inv.progress).await;
    let response = match &result {
        Ok(summary) => match wire::finish_reason(&summary.stop_reason) {
            Some(finish) => {
                let head = Head {
                    id: &head.id,
                    created: head.created,
                    model: &s.rt.config.agent.name,
                };
                let content = summary.texts.join(BETWEEN_REPLIES);
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    wire::completion(head, &content, finish, summary.usage),
                )
                    .into_response()
            }
            None => deadline(summary).response(),
        },
        Err(e) => model_failure(e).response(),
    };
    inv.finish(response.status().as_u16(), &outcome(&result));
    response
}

/// A stream being written: what was sent so far decides the next chunk.
struct Chunks {
    id: String,
    created: u64,
    model: std::sync::Arc<str>,
    include_usage: bool,
    sent_text: bool,
    tools_since_text: bool,
}

impl Chunks {
    fn head(&self) -> Head<'_> {
        Head {
            id: &self.id,
            created: self.created,
            model: &self.model,
        }
    }

    fn first(&self, buf: &mut Vec<u8>) {
        let delta = Delta {
            role: Some("assistant"),
            content: Some(""),
        };
        wire::chunk(buf, self.head(), delta, None, self.include_usage);
    }

    /// Text becomes content deltas; tool calls are the Agent's own and are not shown (an
    /// OpenAI client would take `tool_calls` as calls for it to run), but the text of the
    /// next model call is set apart from the text before them.
    fn event(&mut self, buf: &mut Vec<u8>, e: &Event) {
        match e {
            Event::Text { delta } if delta.is_empty() => {}
            Event::Text { delta } => {
                let mut text = |t: &str| {
                    let delta = Delta {
                        role: None,
                        content: Some(t),
                    };
                    wire::chunk(buf, self.head(), delta, None, self.include_usage);
                };
                if self.sent_text && self.tools_since_text {
                    text(BETWEEN_REPLIES);
                }
                text(delta);
                self.sent_text = true;
                self.tools_since_text = false;
            }
            Event::ToolStarted { .. } | Event::ToolFinished { .. } => self.tools_since_text = true,
        }
    }

    /// The end: the finish reason, the usage chunk if asked for, and `[DONE]`; or an error
    /// event (as OpenAI's own servers send one) when the invocation failed or ran out of time.
    fn end(&self, buf: &mut Vec<u8>, result: &Result<Summary, BedrockError>) {
        let failure = match result {
            Ok(summary) => match wire::finish_reason(&summary.stop_reason) {
                Some(finish) => {
                    let head = self.head();
                    wire::chunk(
                        buf,
                        head,
                        Delta::default(),
                        Some(finish),
                        self.include_usage,
                    );
                    if self.include_usage {
                        wire::usage_chunk(buf, head, summary.usage);
                    }
                    buf.extend_from_slice(wire::DONE);
                    return;
                }
                None => deadline(summary),
            },
            Err(e) => model_failure(e),
        };
        wire::data(
            buf,
            &ErrorBody {
                error: failure.error,
            },
        );
    }
}

fn stream_response(
    s: &AppState,
    request: Request,
    mut inv: Invocation,
    head: OwnedHead,
    include_usage: bool,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let rt = s.rt.clone();
    let task = tokio::spawn(async move {
        let result = invoke::invoke(&rt, request, Some(tx), &inv.progress).await;
        inv.finish(200, &outcome(&result));
        drop(inv);
        let _ = done_tx.send(result);
    });
    let guard = sse::AbortOnDrop(task.abort_handle());
    let chunks = Chunks {
        id: head.id,
        created: head.created,
        model: s.rt.config.agent.name.as_str().into(),
        include_usage,
        sent_text: false,
        tools_since_text: false,
    };
    // The role chunk leaves at once: the client sees the stream has begun.
    let mut first = Vec::with_capacity(256);
    chunks.first(&mut first);
    let state = (rx, Some(done_rx), guard, chunks);
    let rest = futures::stream::unfold(state, |(mut rx, done, guard, mut chunks)| async move {
        let done_rx = done?;
        let first = match tokio::time::timeout(sse::KEEP_ALIVE_EVERY, rx.recv()).await {
            Err(_) => {
                let keep_alive = Bytes::from_static(sse::KEEP_ALIVE);
                return Some((
                    Ok::<_, Infallible>(keep_alive),
                    (rx, Some(done_rx), guard, chunks),
                ));
            }
            Ok(first) => first,
        };
        let mut buf = Vec::with_capacity(256);
        let mut ended = first.is_none();
        if let Some(e) = first {
            chunks.event(&mut buf, &e);
            loop {
                match rx.try_recv() {
                    Ok(e) => chunks.event(&mut buf, &e),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        ended = true;
                        break;
                    }
                }
            }
        }
        if !ended {
            return Some((Ok(sse::frame(buf)), (rx, Some(done_rx), guard, chunks)));
        }
        if let Ok(result) = done_rx.await {
            chunks.end(&mut buf, &result);
        }
        Some((Ok(sse::frame(buf)), (rx, None, guard, chunks)))
    });
    let first = futures::stream::once(async move { Ok::<_, Infallible>(sse::frame(first)) });
    sse::response(Body::from_stream(futures::StreamExt::chain(first, rest)))
}
