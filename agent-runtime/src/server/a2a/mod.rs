//! The Agent as an A2A (Agent2Agent) server: its agent card at `/.well-known/agent-card.json`
//! (and the older `/.well-known/agent.json`), and JSON-RPC 2.0 at `POST /` in both wire
//! versions — 1.0 (`SendMessage`, `SendStreamingMessage`, `GetTask`, `CancelTask`) and 0.3
//! (`message/send`, `message/stream`, `tasks/get`, `tasks/cancel`, as kagent 0.10 speaks it)
//! — picked by the method name. A thin adapter over the loop: each message is one invocation,
//! with the same concurrency slots, limits, metrics (`protocol="a2a"`), request id, access log
//! and drain as `/v1/invoke`.
//!
//! - [`card`]: the agent card;
//! - [`wire`]: both versions' shapes and error codes;
//! - [`store`]: the bounded in-memory task store;
//! - [`run`]: one task's invocation.
//!
//! Text parts in, text parts out. Each message starts a new task. Without memory it has no
//! memory of earlier ones: its `contextId` is echoed (or made up when absent) but carries no
//! history. With memory the `contextId` is the session: a message continues the conversation
//! of its context (one without starts a new session, whose id is the new `contextId`), its
//! lease and history taken before the task starts, so a busy session or a store that is down
//! is refused like a full pod — a JSON-RPC error with the HTTP status and `Retry-After` of
//! `/v1/invoke` (409, 503) — and no task is made. A context whose turn waits for approval
//! takes the next message as the decision ([`approval`]).

mod approval;
pub mod card;
mod run;
pub mod store;
pub mod wire;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::State as Axum;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::Value;
use tokio::sync::mpsc;

use super::body::{self, ReadFailure};
use super::invocation::{Invocation, Protocol, REQUEST_ID_HEADER};
use super::{AppState, sse};
use crate::invoke::session;
use crate::session::{SessionError, SessionId};
use crate::tools::{CALL_DEPTH_HEADER, DEADLINE_HEADER};
use store::{Message, Role, State, Store, Task};
use wire::{Dispatch, Method, RpcError, Version};

/// Where JSON-RPC requests go (the URL the card names).
pub const RPC_PATH: &str = "/";

/// The agent card's path.
pub const CARD_PATH: &str = "/.well-known/agent-card.json";

/// The card's path before A2A 0.3, still served by the 0.3 SDK.
pub const OLD_CARD_PATH: &str = "/.well-known/agent.json";

/// The version header: clients may name the version they speak.
pub const VERSION_HEADER: &str = "a2a-version";

/// A new random id (32 hex digits), for tasks, contexts, messages and artifacts.
pub fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    let a = h.finish();
    h.write_u64(a);
    format!("{a:016x}{:016x}", h.finish())
}

struct Shared {
    store: Arc<Store>,
    card: Value,
}

/// The A2A routes, for `state`'s runtime.
pub fn routes(state: &AppState) -> Router<AppState> {
    let shared = Arc::new(Shared {
        store: Arc::default(),
        card: card::card(&state.rt.config, &state.public_url()),
    });
    Router::new()
        .route(CARD_PATH, get(agent_card))
        .route(OLD_CARD_PATH, get(agent_card))
        .route(RPC_PATH, post(rpc))
        .layer(Extension(shared))
}

async fn agent_card(Extension(shared): Extension<Arc<Shared>>) -> Response {
    axum::Json(shared.card.clone()).into_response()
}

/// A JSON-RPC answer with HTTP 200 (A2A sends errors with 200 too).
fn answer(v: impl serde::Serialize) -> Response {
    axum::Json(v).into_response()
}

/// A refusal before any method ran, with its HTTP status (and `Retry-After` for 429 and 503).
fn refusal(status: StatusCode, id: &Value, e: &RpcError) -> Response {
    let mut r = (status, axum::Json(wire::error(id, Version::V03, e))).into_response();
    if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1));
    }
    r
}

/// A session refusal: the JSON-RPC error in the caller's version, with the HTTP status and
/// `Retry-After` every protocol gives it (409 busy, 503 store unavailable).
fn session_refusal(id: &Value, version: Version, e: &SessionError) -> Response {
    let (status, retry_after) = super::sessions::status(e);
    let rpc = RpcError::internal(crate::error_chain(e));
    let mut r = (status, axum::Json(wire::error(id, version, &rpc))).into_response();
    if let Some(secs) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// A version the client names in `A2A-Version` that this server cannot speak: any `0.x`
/// (0.3 and the 0.2 it grew from read the same here) and `1.x` are accepted, as is no header.
fn unsupported_version(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(VERSION_HEADER)?.to_str().unwrap_or("?").trim();
    let major = v.split('.').next().unwrap_or_default();
    (!v.is_empty() && !matches!(major, "0" | "1")).then(|| v.to_string())
}

async fn rpc(
    Axum(s): Axum<AppState>,
    Extension(shared): Extension<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let null = Value::Null;
    if s.draining() {
        let e = RpcError::internal("the runtime is shutting down; retry on another replica");
        return refusal(StatusCode::SERVICE_UNAVAILABLE, &null, &e);
    }
    let bytes = match body::read(&headers, body, s.body_read_timeout, s.closing.clone()).await {
        Ok(b) => b,
        Err(ReadFailure::Refused(r)) => {
            return refusal(r.status, &null, &RpcError::invalid_request(r.message));
        }
        Err(ReadFailure::Disconnected) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let Ok(mut request) = serde_json::from_slice::<Value>(&bytes) else {
        return answer(wire::error(
            &null,
            Version::V03,
            &RpcError::parse("Parse error: the body is not JSON"),
        ));
    };
    let params = request
        .get_mut("params")
        .map(Value::take)
        .unwrap_or_default();
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let method = request.get("method").and_then(Value::as_str);
    let (Some(method), Some("2.0"), true) = (
        method,
        request.get("jsonrpc").and_then(Value::as_str),
        matches!(id, Value::String(_) | Value::Number(_)),
    ) else {
        let e = RpcError::invalid_request(
            "Invalid Request: one JSON-RPC 2.0 object with jsonrpc \"2.0\", an id and a method",
        );
        return answer(wire::error(&id, Version::V03, &e));
    };
    let (version, method) = match wire::dispatch(method) {
        Dispatch::Serve(v, m) => (v, m),
        Dispatch::PushNotifications => {
            return answer(wire::error(
                &id,
                Version::V1,
                &RpcError::push_not_supported(),
            ));
        }
        Dispatch::Unsupported => {
            let e = RpcError::unsupported(format!(
                "{method} is not offered: this agent serves send, stream, get and cancel"
            ));
            return answer(wire::error(&id, Version::V1, &e));
        }
        Dispatch::Unknown => {
            return answer(wire::error(
                &id,
                Version::V03,
                &RpcError::method_not_found(method),
            ));
        }
    };
    if let Some(v) = unsupported_version(&headers) {
        return answer(wire::error(&id, version, &RpcError::version(&v)));
    }
    let store = &shared.store;
    match method {
        Method::Get => match wire::task_params(&params) {
            Ok((task_id, hl)) => match store.get(&task_id) {
                Some(t) => answer(wire::result(&id, wire::task(version, &t, hl))),
                None => answer(wire::error(
                    &id,
                    version,
                    &RpcError::task_not_found(&task_id),
                )),
            },
            Err(e) => answer(wire::error(&id, version, &e)),
        },
        Method::Cancel => match wire::task_params(&params) {
            Ok((task_id, _)) => match store.cancel(&task_id) {
                Ok(t) => answer(wire::result(&id, wire::task(version, &t, None))),
                Err(store::CancelError::NotFound) => answer(wire::error(
                    &id,
                    version,
                    &RpcError::task_not_found(&task_id),
                )),
                Err(store::CancelError::Finished(t)) => answer(wire::error(
                    &id,
                    version,
                    &RpcError::not_cancelable(t.state),
                )),
            },
            Err(e) => answer(wire::error(&id, version, &e)),
        },
        Method::Send | Method::Stream => {
            let stream = method == Method::Stream;
            send(&s, store, &headers, id, version, &params, stream).await
        }
    }
}

/// `message/send` and `message/stream`: checks the message, takes a slot, starts the task.
async fn send(
    s: &AppState,
    store: &Arc<Store>,
    headers: &HeaderMap,
    id: Value,
    version: Version,
    params: &Value,
    stream: bool,
) -> Response {
    let mut inv = Invocation::arrive(s, headers, "POST", RPC_PATH, Protocol::A2a);
    let request_id = inv.request_id_header();
    let refuse = |inv: &mut Invocation, status: u16, outcome: &str, e: RpcError| {
        inv.finish(status, outcome);
        wire::error(&id, version, &e)
    };
    let checked = wire::send_params(version, params).and_then(|p| {
        let depth = body::header_number(headers, CALL_DEPTH_HEADER);
        let caller_ms = body::header_number(headers, DEADLINE_HEADER);
        match (depth, caller_ms) {
            (Ok(d), Ok(ms)) => Ok((p, u32::try_from(d.unwrap_or(0)).unwrap_or(u32::MAX), ms)),
            (Err(r), _) | (_, Err(r)) => Err(RpcError::invalid_params(r.message)),
        }
    });
    let (p, depth, caller_ms) = match checked {
        Ok(c) => c,
        Err(e) => return answer(refuse(&mut inv, 200, "invalid_request", e)),
    };
    let input = p.parts.join("\n");
    if let Err(e) = crate::conversation::check(&[], Some(&input)) {
        let e = RpcError::invalid_params(e.to_string());
        return answer(refuse(&mut inv, 200, "invalid_request", e));
    }
    let context_id = p.context_id.clone().unwrap_or_else(new_id);
    // With memory the context is the session, so its id must be one a session can have.
    let session_id = match &s.rt.sessions {
        None => None,
        Some(_) => match SessionId::parse(&context_id) {
            Ok(sid) => Some(sid),
            Err(_) => {
                let e = RpcError::invalid_params(format!(
                    "message.contextId {context_id:?} cannot name a session (this agent keeps each context's conversation): use 1-128 letters, digits, '.', '_', ':' and '-', starting with a letter or digit (a UUID works), or leave it out to start a new context"
                ));
                return answer(refuse(&mut inv, 200, "invalid_request", e));
            }
        },
    };
    if !inv.admit() {
        inv.finish(429, "over_capacity");
        let e = RpcError::internal(format!(
            "this agent is serving its limit of {} concurrent invocations; retry shortly",
            s.rt.config.limits.max_concurrent_invocations
        ));
        return refusal(StatusCode::TOO_MANY_REQUESTS, &id, &e);
    }
    let held = match (session_id, &s.rt.sessions) {
        (Some(sid), Some(store)) => {
            let acquired = match session::acquire(store, sid.clone(), &inv.request_id).await {
                // The context's turn waits for approval: this message is the decision.
                Err(SessionError::ApprovalPending { .. }) => {
                    match decide(store, sid, &inv.request_id, &input).await {
                        Ok(h) => Ok(h),
                        Err(Refused::Rpc(e)) => {
                            return answer(refuse(&mut inv, 200, "invalid_request", e));
                        }
                        Err(Refused::Session(e)) => Err(e),
                    }
                }
                other => other,
            };
            match acquired {
                Ok(h) => Some(h),
                Err(e) => {
                    inv.finish(super::sessions::status(&e).0.as_u16(), e.code());
                    return session_refusal(&id, version, &e);
                }
            }
        }
        _ => None,
    };
    if stream {
        inv.set_stream();
    }
    let task = Task {
        id: new_id(),
        context_id,
        state: State::Submitted,
        timestamp: store::now(),
        history: vec![Message {
            message_id: p.message_id.clone(),
            role: Role::User,
            parts: p.parts.clone(),
        }],
        answer: None,
        status_message: None,
    };
    let job = run::Job {
        inv,
        held,
        input,
        depth,
        deadline: crate::invoke::deadline(&s.rt.config, caller_ms),
    };
    let (running, mut updates) = run::start(s, store, task.clone(), job, stream);
    let mut response = if stream {
        running.detach();
        stream_response(id, version, task, updates)
    } else if p.blocking {
        running.finish().await;
        let mut last = task;
        while let Some(t) = updates.recv().await {
            last = t;
        }
        answer(wire::result(
            &id,
            wire::send_result(version, &last, p.history_length),
        ))
    } else {
        running.detach();
        answer(wire::result(
            &id,
            wire::send_result(version, &task, p.history_length),
        ))
    };
    if let Some(rid) = request_id {
        response.headers_mut().insert(REQUEST_ID_HEADER, rid);
    }
    response
}

enum Refused {
    Rpc(RpcError),
    Session(SessionError),
}

/// Continues the turn of session `sid` that waits for approval with the decision `text`
/// carries for all its waiting calls ([`approval::decision`]); text that is no decision is
/// refused saying what the context waits for.
async fn decide(
    sessions: &crate::session::Sessions,
    sid: SessionId,
    invocation_id: &str,
    text: &str,
) -> Result<session::Held, Refused> {
    let snap = sessions.read(&sid).await.map_err(Refused::Session)?;
    let pending = snap
        .and_then(|s| s.state.pending().ok().flatten())
        .ok_or(Refused::Session(SessionError::NoPendingApproval))?;
    let Some(d) = approval::decision(text) else {
        return Err(Refused::Rpc(RpcError::invalid_params(format!(
            "this context waits for a decision: {}",
            approval::asking(&pending.calls)
        ))));
    };
    let decisions = pending
        .calls
        .iter()
        .map(|c| (c.tool_use_id.clone(), d.clone()))
        .collect();
    crate::invoke::resume::acquire_to_decide(sessions, sid, invocation_id, decisions)
        .await
        .map_err(Refused::Session)
}

fn data(buf: &mut Vec<u8>, id: &Value, result: impl serde::Serialize) {
    buf.extend_from_slice(b"data: ");
    let v = wire::result(id, result);
    if serde_json::to_writer(&mut *buf, &v).is_err() {
        buf.extend_from_slice(b"null");
    }
    buf.extend_from_slice(b"\n\n");
}

/// The SSE answer of `message/stream`: the task, each status change (with the answer as an
/// artifact just before the completed status), closed once the task has ended. Only `data:`
/// lines, no event names: both SDKs read every event as a JSON-RPC response.
fn stream_response(
    id: Value,
    version: Version,
    task: Task,
    updates: mpsc::UnboundedReceiver<Task>,
) -> Response {
    let mut first = Vec::with_capacity(512);
    data(&mut first, &id, wire::stream_task(version, &task));
    let head = futures::stream::once(async move { Ok::<_, Infallible>(Bytes::from(first)) });
    let rest = futures::stream::unfold(Some((updates, id)), move |state| async move {
        let (mut rx, id) = state?;
        let t = match tokio::time::timeout(sse::KEEP_ALIVE_EVERY, rx.recv()).await {
            Err(_) => return Some((Ok(Bytes::from_static(sse::KEEP_ALIVE)), Some((rx, id)))),
            Ok(None) => return None,
            Ok(Some(t)) => t,
        };
        let mut buf = Vec::with_capacity(512);
        if t.state == State::Completed
            && let Some(a) = wire::artifact_update(version, &t)
        {
            data(&mut buf, &id, a);
        }
        data(&mut buf, &id, wire::status_update(version, &t));
        let next = (!t.state.terminal()).then_some((rx, id));
        Some((Ok(Bytes::from(buf)), next))
    });
    sse::response(Body::from_stream(futures::StreamExt::chain(head, rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_header_naming_an_unknown_major_version_is_refused_and_none_is_fine() {
        let mut h = HeaderMap::new();
        assert_eq!(unsupported_version(&h), None);
        for ok in ["0.3", "1.0", "1.1", "0.2.5"] {
            h.insert(VERSION_HEADER, HeaderValue::from_static(ok));
            assert_eq!(unsupported_version(&h), None, "{ok}");
        }
        h.insert(VERSION_HEADER, HeaderValue::from_static("2.0"));
        assert_eq!(unsupported_version(&h).as_deref(), Some("2.0"));
    }

    #[tokio::test]
    async fn rpc_at_post_root_leaves_get_root_to_another_route() {
        use tower::ServiceExt;
        // The chat page serves `GET /`: both must merge into one router without a panic.
        let a2a = Router::<()>::new()
            .route(RPC_PATH, post(|| async { "rpc" }))
            .layer(Extension(1u8));
        let app = Router::new()
            .route("/", get(|| async { "page" }))
            .merge(a2a);
        for (method, want) in [("GET", "page"), ("POST", "rpc")] {
            let req = axum::http::Request::builder()
                .method(method)
                .uri("/")
                .body(Body::empty())
                .unwrap();
            let r = app.clone().oneshot(req).await.unwrap();
            let body = axum::body::to_bytes(r.into_body(), 64).await.unwrap();
            assert_eq!(body, want.as_bytes(), "{method}");
        }
    }

    #[test]
    fn ids_are_distinct_32_hex_digits() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert!(
            a.len() == 32 && a.bytes().all(|c| c.is_ascii_hexdigit()),
            "{a}"
        );
    }
}
