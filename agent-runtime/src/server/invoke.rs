//! `POST /v1/invoke`: the body is read and checked first, and only a valid request takes a
//! concurrency slot, so slow or broken clients cannot lock others out. The answer is JSON, or
//! Server-Sent Events with `Accept: text/event-stream`. A client that goes away cancels its
//! invocation (model and tool calls included) and is counted as `client_disconnected`.
//!
//! With `sessionId` the session's lease is taken and its history loaded before the answer
//! starts (409 `session_busy`, 503 `session_store_unavailable`), and the turn is committed
//! before the JSON answer or the stream's `done` event; a failed invocation writes nothing.
//! A context compaction saved with the turn is reported in both as `compaction`.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use axum::body::Bytes;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::mpsc::error::TryRecvError;

use super::body::{self, ReadFailure, Refusal};
use super::invocation::{Invocation, Protocol};
use super::sse;
use super::{AppState, bedrock_error, error, retry_later, sessions};
use crate::invoke::session::{self, Held, Outcome};
use crate::invoke::{self, Progress, Request, Runtime, Summary, compaction};
use crate::machine::StopReason;
use crate::session::SessionId;
use crate::tools::{CALL_DEPTH_HEADER, DEADLINE_HEADER};

const PATH: &str = "/v1/invoke";

fn refuse(inv: &mut Invocation, r: &Refusal) -> Response {
    inv.finish(r.status.as_u16(), r.code);
    let mut response = error(r.status, r.code, r.message.clone());
    if matches!(r.code, "body_timeout" | "shutting_down") {
        // The rest of the body will not be read: the connection cannot carry another request.
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    if r.code == "shutting_down" {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(1));
    }
    response
}

/// The handler.
pub async fn handler(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let inv = Invocation::arrive(&s, &headers, "POST", PATH, Protocol::Invoke);
    let id = inv.request_id_header();
    let mut response = answer(&s, inv, headers, body).await;
    if let Some(id) = id {
        response
            .headers_mut()
            .insert(super::invocation::REQUEST_ID_HEADER, id);
    }
    response
}

async fn answer(s: &AppState, mut inv: Invocation, headers: HeaderMap, body: Body) -> Response {
    if s.draining() {
        let r = Refusal {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "shutting_down",
            message: "the runtime is shutting down; retry on another replica".into(),
        };
        return refuse(&mut inv, &r);
    }
    let bytes = match body::read(&headers, body, s.body_read_timeout, s.closing.clone()).await {
        Ok(b) => b,
        Err(ReadFailure::Refused(r)) => return refuse(&mut inv, &r),
        // Nobody is left to answer; dropping `inv` counts the disconnect.
        Err(ReadFailure::Disconnected) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let parsed = match body::parse_invoke(&bytes) {
        Ok(b) => b,
        Err(r) => return refuse(&mut inv, &r),
    };
    let (depth, caller_ms) = match (
        body::header_number(&headers, CALL_DEPTH_HEADER),
        body::header_number(&headers, DEADLINE_HEADER),
    ) {
        (Ok(d), Ok(ms)) => (u32::try_from(d.unwrap_or(0)).unwrap_or(u32::MAX), ms),
        (Err(r), _) | (_, Err(r)) => return refuse(&mut inv, &r),
    };
    let stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    // Neither the headers nor the body's bytes (a second copy of the conversation, now parsed)
    // are needed past here: not held while the model answers.
    drop(headers);
    drop(bytes);
    if parsed.session_id.is_some() && s.rt.sessions.is_none() {
        inv.finish(400, "sessions_not_enabled");
        return sessions::not_enabled();
    }
    if !inv.admit() {
        inv.finish(429, "over_capacity");
        return retry_later(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!(
                "this agent is serving its limit of {} concurrent invocations; retry shortly",
                s.rt.config.limits.max_concurrent_invocations
            ),
            1,
        );
    }
    // The session's lease and history come before the answer starts, so a busy session or a
    // store that is down is a plain 409 or 503, streaming or not.
    let held = match (parsed.session_id, &s.rt.sessions) {
        // Boxed: the store's future would otherwise take room in every request's future.
        (Some(id), Some(store)) => {
            match Box::pin(session::acquire(store, id, &inv.request_id)).await {
                Ok(h) => Some(h),
                Err(e) => {
                    let response = sessions::session_error(&e);
                    inv.finish(response.status().as_u16(), e.code());
                    return response;
                }
            }
        }
        _ => None,
    };
    let request = Request {
        input: parsed.input,
        messages: parsed.messages,
        depth,
        deadline: invoke::deadline(&s.rt.config, caller_ms),
        stream,
        request_id: inv.request_id.clone(),
        overrides: Default::default(),
        trace: inv.trace.clone(),
    };
    if stream {
        inv.set_stream();
        stream_response(s, request, held, inv)
    } else {
        json_response(s, request, held, inv).await
    }
}

/// The answer to `request` on the session of `held`, JSON or a stream: also what a resume
/// (`POST /v1/sessions/{id}/resume`) answers.
pub(super) async fn respond(
    s: &AppState,
    request: Request,
    held: Held,
    mut inv: Invocation,
    stream: bool,
) -> Response {
    if stream {
        inv.set_stream();
        stream_response(s, request, Some(held), inv)
    } else {
        json_response(s, request, Some(held), inv).await
    }
}

/// The summary as answered: with the session's id when on a session, and the compaction
/// saved with the turn when there was one.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    #[serde(flatten)]
    summary: &'a Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compaction: Option<&'a compaction::Report>,
}

/// How an invocation ended, the session it ran on and the compaction it saved.
type Ran = (Outcome, Option<SessionId>, Option<compaction::Report>);

async fn run(
    rt: &Runtime,
    request: Request,
    held: Option<Held>,
    events: Option<UnboundedSender<invoke::Event>>,
    progress: &Progress,
) -> Ran {
    // Each path boxed: inline, the handler's future (which axum boxes per request) would be as
    // large as the larger of the two, the session path with all it holds, for every invocation.
    match held {
        None => (
            Ok(Box::pin(invoke::invoke(rt, request, events, progress)).await),
            None,
            None,
        ),
        Some(h) => {
            let id = h.id().clone();
            let (outcome, report) = Box::pin(h.run(rt, request, events, progress)).await;
            (outcome, Some(id), report)
        }
    }
}

fn outcome(result: &Outcome) -> String {
    match result {
        Ok(Ok(s)) => s.stop_reason.as_str().to_string(),
        Ok(Err(e)) => e.category().to_string(),
        Err(e) => e.code().to_string(),
    }
}

async fn json_response(
    s: &AppState,
    request: Request,
    held: Option<Held>,
    mut inv: Invocation,
) -> Response {
    let (result, id, report) = run(&s.rt, request, held, None, &inv.progress).await;
    let response = match &result {
        Err(e) => sessions::session_error(e),
        Ok(Ok(summary)) if summary.stop_reason == StopReason::Deadline => error(
            StatusCode::GATEWAY_TIMEOUT,
            "deadline_exceeded",
            format!(
                "the invocation passed its deadline after {} model calls and {} tool calls",
                summary.iterations,
                summary.tool_calls.len()
            ),
        ),
        Ok(Ok(summary)) => axum::Json(Answer {
            summary,
            session_id: id.as_ref().map(SessionId::as_str),
            compaction: report.as_ref(),
        })
        .into_response(),
        Ok(Err(e)) => bedrock_error(e),
    };
    inv.finish(response.status().as_u16(), &outcome(&result));
    response
}

fn stream_response(
    s: &AppState,
    request: Request,
    held: Option<Held>,
    mut inv: Invocation,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let rt = s.rt.clone();
    let task = tokio::spawn(async move {
        let ran = run(&rt, request, held, Some(tx), &inv.progress).await;
        inv.finish(200, &outcome(&ran.0));
        drop(inv);
        let _ = done_tx.send(ran);
    });
    let guard = sse::AbortOnDrop(task.abort_handle());
    let state = (rx, Some(done_rx), guard);
    let frames = futures::stream::unfold(state, |(mut rx, done, guard)| async move {
        let done_rx = done?;
        let first = match tokio::time::timeout(sse::KEEP_ALIVE_EVERY, rx.recv()).await {
            Err(_) => {
                let keep_alive = Bytes::from_static(sse::KEEP_ALIVE);
                return Some((Ok::<_, Infallible>(keep_alive), (rx, Some(done_rx), guard)));
            }
            Ok(first) => first,
        };
        let mut buf = Vec::with_capacity(256);
        let mut ended = first.is_none();
        if let Some(e) = first {
            sse::event(&mut buf, e.name(), &e);
            // Whatever else is ready goes in the same write.
            loop {
                match rx.try_recv() {
                    Ok(e) => sse::event(&mut buf, e.name(), &e),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        ended = true;
                        break;
                    }
                }
            }
        }
        if !ended {
            return Some((Ok(sse::frame(buf)), (rx, Some(done_rx), guard)));
        }
        // The invocation dropped its sender: it has ended; its summary (or error) comes last.
        // On a session, `done` comes only after the commit succeeded.
        match done_rx.await {
            Ok((Ok(Ok(summary)), id, report)) => {
                let answer = Answer {
                    summary: &summary,
                    session_id: id.as_ref().map(SessionId::as_str),
                    compaction: report.as_ref(),
                };
                sse::event(&mut buf, "done", &answer)
            }
            Ok((Ok(Err(e)), _, _)) => sse::event(
                &mut buf,
                "error",
                &json!({"error": {"code": e.code(), "message": e.to_string()}}),
            ),
            Ok((Err(e), _, _)) => sse::event(
                &mut buf,
                "error",
                &json!({"error": {"code": e.code(), "message": crate::error_chain(&e)}}),
            ),
            Err(_) => {}
        }
        Some((Ok(sse::frame(buf)), (rx, None, guard)))
    });
    sse::response(Body::from_stream(frames))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_handlers_future_holds_no_invocation_inline() {
        // The invocation's state is boxed, sized to its path: about 10 KB stateless, 40 KB on a
        // session; so are the session's lease and the store's future. What is left is what every
        // request in flight holds for as long as the model takes (2,592 bytes, December 3).
        let size = super::super::future_size(&super::handler);
        assert!(
            size <= 3072,
            "the /v1/invoke handler's future is {size} bytes"
        );
    }
}
