//! OpenAI-compatible chat completions: `POST /v1/chat/completions` (a `chat.completion`, or
//! `chat.completion.chunk` Server-Sent Events with `stream: true`) and `GET /v1/models` (the
//! Agent as the one model). A thin adapter over the loop: [`request`] maps the body to the
//! loop's request, [`wire`] maps its events and summary to OpenAI's shapes; admission, the
//! concurrency slots, metrics (`protocol="openai"`), the access log and the drain are the
//! same as `/v1/invoke`'s. Errors are `{"error": {message, type, param, code}}` with the
//! statuses the `openai` SDKs map to their exception classes.
//!
//! With memory, the [`SESSION_HEADER`] continues a session: the request then carries only the
//! new user message(s) and any system messages ([`request::session_turn`]); the session's lease
//! and history are taken before the answer starts, so a busy session (409) or a store that is
//! down (503) is a plain error with `Retry-After`, streaming or not.

pub mod request;
mod stream;
pub mod wire;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::AppState;
use super::body::{self, ReadFailure};
use super::invocation::{Invocation, Protocol, REQUEST_ID_HEADER};
use crate::bedrock::BedrockError;
use crate::invoke::session::{self, Held, Outcome};
use crate::invoke::{self, Request, Summary};
use crate::session::{SessionError, SessionId};
use crate::tools::{CALL_DEPTH_HEADER, DEADLINE_HEADER};
use request::{Bounds, ChatRequest, RequestError};
use wire::{ErrorBody, ErrorObject, Head};

const PATH: &str = "/v1/chat/completions";

/// The request header naming the session a completion continues (OpenAI's API has no field
/// for it, and an unknown body parameter is refused).
pub const SESSION_HEADER: &str = "x-agentry-session-id";

/// How [`SESSION_HEADER`] is spelled in messages.
const SESSION_HEADER_NAME: &str = "X-Agentry-Session-Id";

/// Between the texts of two model calls (before and after a tool round trip), in the answer
/// and in the stream alike.
pub(super) const BETWEEN_REPLIES: &str = "\n\n";

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
pub(super) struct Failure {
    status: StatusCode,
    pub(super) error: ErrorObject,
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
pub(super) fn model_failure(e: &BedrockError) -> Failure {
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

pub(super) fn deadline(summary: &Summary) -> Failure {
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

/// A session error in OpenAI's shape, with the status and `Retry-After` every protocol uses
/// (409 `session_busy`, 503 `session_store_unavailable`, 503 `session_lock_lost`); the SDKs
/// retry both statuses after `Retry-After` unless told not to.
pub(super) fn session_failure(e: &SessionError) -> Failure {
    let (status, retry_after) = super::sessions::status(e);
    let kind = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    Failure {
        retry_after,
        ..Failure::new(status, kind, e.code(), crate::error_chain(e))
    }
}

/// The session named by [`SESSION_HEADER`], if any.
fn session_header(headers: &HeaderMap) -> Result<Option<SessionId>, Failure> {
    let Some(v) = headers.get(SESSION_HEADER) else {
        return Ok(None);
    };
    let id = v
        .to_str()
        .map_err(|_| format!("{SESSION_HEADER_NAME} must be printable ASCII"))
        .and_then(|v| SessionId::parse(v).map_err(|m| format!("{SESSION_HEADER_NAME}: {m}")));
    id.map(Some).map_err(|message| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_session_id",
            message,
        )
    })
}

fn sessions_not_enabled() -> Failure {
    Failure::new(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "sessions_not_enabled",
        format!(
            "this agent keeps no sessions (it has no memory configured): leave out the {SESSION_HEADER_NAME} header and send the whole conversation in messages"
        ),
    )
}

pub(super) fn outcome(result: &Outcome) -> String {
    session::outcome_label(result)
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
    let session_id = match session_header(headers) {
        Ok(id) => id,
        Err(f) => return refuse(&mut inv, f, "invalid_request"),
    };
    let input = match &session_id {
        None => None,
        Some(_) if s.rt.sessions.is_none() => {
            return refuse(&mut inv, sessions_not_enabled(), "sessions_not_enabled");
        }
        Some(_) => match request::session_turn(&chat, SESSION_HEADER_NAME) {
            Ok(turn) => Some(turn),
            Err(e) => return refuse(&mut inv, refused(e), "invalid_request"),
        },
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
    let held = match (session_id, &s.rt.sessions) {
        (Some(id), Some(store)) => match session::acquire(store, id, &inv.request_id).await {
            Ok(h) => Some(h),
            Err(e) => return refuse(&mut inv, session_failure(&e), e.code()),
        },
        _ => None,
    };
    let ChatRequest {
        messages,
        overrides,
        stream,
        include_usage,
        ..
    } = chat;
    let request = Request {
        // On a session the history comes from the store and the new turn is the input.
        messages: if input.is_some() { vec![] } else { messages },
        input,
        depth,
        deadline: invoke::deadline(cfg, caller_ms),
        stream,
        request_id: inv.request_id.clone(),
        overrides,
        trace: inv.trace.clone(),
    };
    let head = OwnedHead {
        id: format!("chatcmpl-{}", inv.request_id),
        created: super::unix_now(),
    };
    if stream {
        inv.set_stream();
        stream::response(s, request, held, inv, head, include_usage)
    } else {
        json_response(s, request, held, inv, head).await
    }
}

/// The owned parts of [`Head`]; the model is the Agent's name.
pub(super) struct OwnedHead {
    pub(super) id: String,
    pub(super) created: u64,
}

async fn json_response(
    s: &AppState,
    request: Request,
    held: Option<Held>,
    mut inv: Invocation,
    head: OwnedHead,
) -> Response {
    let result = session::run_maybe(held, &s.rt, request, None, &inv.progress).await;
    let response = match &result {
        Err(e) => session_failure(e).response(),
        Ok(Ok(summary)) => match wire::finish_reason(&summary.stop_reason) {
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
        Ok(Err(e)) => model_failure(e).response(),
    };
    inv.finish(response.status().as_u16(), &outcome(&result));
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_handlers_future_holds_no_invocation_inline() {
        let size = super::super::future_size(&super::completions);
        assert!(
            size <= 8192,
            "the chat completions handler's future is {size} bytes"
        );
    }
}
