//! `POST /v1/invoke`: the body is read and checked first, and only a valid request takes a
//! concurrency slot, so slow or broken clients cannot lock others out. The answer is JSON, or
//! Server-Sent Events with `Accept: text/event-stream`. A client that goes away cancels its
//! invocation (model and tool calls included) and is counted as `client_disconnected`.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use axum::body::Bytes;
use tokio::sync::mpsc::error::TryRecvError;

use super::body::{self, ReadFailure, Refusal};
use super::invocation::{Invocation, Protocol};
use super::sse;
use super::{AppState, bedrock_error, error, retry_later};
use crate::bedrock::BedrockError;
use crate::invoke::{self, Request, Summary};
use crate::machine::StopReason;
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
    let mut response = answer(&s, inv, &headers, body).await;
    if let Some(id) = id {
        response
            .headers_mut()
            .insert(super::invocation::REQUEST_ID_HEADER, id);
    }
    response
}

async fn answer(s: &AppState, mut inv: Invocation, headers: &HeaderMap, body: Body) -> Response {
    if s.draining() {
        let r = Refusal {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "shutting_down",
            message: "the runtime is shutting down; retry on another replica".into(),
        };
        return refuse(&mut inv, &r);
    }
    let bytes = match body::read(headers, body, s.body_read_timeout, s.closing.clone()).await {
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
        body::header_number(headers, CALL_DEPTH_HEADER),
        body::header_number(headers, DEADLINE_HEADER),
    ) {
        (Ok(d), Ok(ms)) => (u32::try_from(d.unwrap_or(0)).unwrap_or(u32::MAX), ms),
        (Err(r), _) | (_, Err(r)) => return refuse(&mut inv, &r),
    };
    let stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
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
        stream_response(s, request, inv)
    } else {
        json_response(s, request, inv).await
    }
}

fn outcome(result: &Result<Summary, BedrockError>) -> String {
    match result {
        Ok(s) => s.stop_reason.as_str().to_string(),
        Err(e) => e.category().to_string(),
    }
}

async fn json_response(s: &AppState, request: Request, mut inv: Invocation) -> Response {
    let result = invoke::invoke(&s.rt, request, None, &inv.progress).await;
    let response = match &result {
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
        Err(e) => bedrock_error(e),
    };
    inv.finish(response.status().as_u16(), &outcome(&result));
    response
}

fn stream_response(s: &AppState, request: Request, mut inv: Invocation) -> Response {
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
        match done_rx.await {
            Ok(Ok(summary)) => sse::event(&mut buf, "done", &summary),
            Ok(Err(e)) => sse::event(
                &mut buf,
                "error",
                &json!({"error": {"code": e.code(), "message": e.to_string()}}),
            ),
            Err(_) => {}
        }
        Some((Ok(sse::frame(buf)), (rx, None, guard)))
    });
    sse::response(Body::from_stream(frames))
}
