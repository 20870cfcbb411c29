//! `GET` and `DELETE /v1/sessions/{id}`, `POST /v1/sessions/{id}/resume`, `POST
//! /v1/sessions/{id}/approvals`, and the one mapping of session errors to HTTP answers, shared
//! with `/v1/invoke`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::invocation::{Invocation, Protocol};
use super::{AppState, body, error, retry_later};
use crate::invoke::{self, Request, approval, resume};
use crate::machine::Decision;
use crate::session::{SessionError, SessionId, Sessions};
use crate::tools::{CALL_DEPTH_HEADER, DEADLINE_HEADER};

/// The HTTP status of a session error and its `Retry-After` seconds, if any: 409
/// `session_busy` (until the holder's lease runs out), 503 `session_store_unavailable` (1 s),
/// 503 `session_lock_lost`, 404 `session_not_found`, 409 `nothing_to_resume`, 409
/// `approval_pending`, 409 `no_pending_approval`, 410 `approval_expired`. Every protocol
/// answers with these.
pub fn status(e: &SessionError) -> (StatusCode, Option<u32>) {
    match e {
        SessionError::Busy { retry_after, .. } => {
            let secs = retry_after.as_millis().div_ceil(1000).max(1);
            (
                StatusCode::CONFLICT,
                Some(u32::try_from(secs).unwrap_or(u32::MAX)),
            )
        }
        SessionError::NotFound => (StatusCode::NOT_FOUND, None),
        SessionError::NothingToResume
        | SessionError::ApprovalPending { .. }
        | SessionError::NoPendingApproval => (StatusCode::CONFLICT, None),
        SessionError::ApprovalExpired => (StatusCode::GONE, None),
        SessionError::LockLost | SessionError::Conflict => (StatusCode::SERVICE_UNAVAILABLE, None),
        _ => (StatusCode::SERVICE_UNAVAILABLE, Some(1)),
    }
}

/// The HTTP answer for a session error (see [`status`]).
pub fn session_error(e: &SessionError) -> Response {
    let message = crate::error_chain(e);
    match status(e) {
        (status, Some(secs)) => retry_later(status, e.code(), message, secs),
        (status, None) => error(status, e.code(), message),
    }
}

/// The answer to a session request on an Agent without memory.
pub fn not_enabled() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "sessions_not_enabled",
        "this agent keeps no sessions (it has no memory configured): send the conversation in messages instead of a sessionId",
    )
}

fn session(s: &AppState, id: &str) -> Result<(Sessions, SessionId), Response> {
    let Some(sessions) = s.rt.sessions.clone() else {
        return Err(not_enabled());
    };
    let id =
        SessionId::parse(id).map_err(|m| error(StatusCode::BAD_REQUEST, "invalid_request", m))?;
    Ok((sessions, id))
}

fn rfc3339(ms: u64) -> Option<String> {
    let ms = i64::try_from(ms).ok()?;
    jiff::Timestamp::from_millisecond(ms)
        .ok()
        .map(|t| t.to_string())
}

/// `GET /v1/sessions/{id}`: the session's messages (and the summary of compacted ones, or
/// null) and bookkeeping, without taking its lease
/// (and without extending its life: reading is not activity).
pub async fn get(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let (sessions, id) = match session(&s, &id) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match sessions.read(&id).await {
        Ok(Some(mut snap)) => {
            // An expired approval's turn is gone, though the store drops it only at the next
            // acquire.
            let pending = snap.state.pending().ok().flatten();
            let pending = match pending {
                Some(p) if p.expires_at_ms <= crate::session::now_ms() => {
                    snap.state.checkpoint = None;
                    None
                }
                p => p,
            };
            let meta = &snap.state.meta;
            let expires_at = snap
                .expires_in
                .and_then(|d| rfc3339(crate::session::now_ms() + d.as_millis() as u64));
            axum::Json(json!({
                "sessionId": id.as_str(),
                "version": snap.state.version,
                "createdAt": rfc3339(meta.created_at_ms),
                "updatedAt": rfc3339(meta.updated_at_ms),
                "expiresAt": expires_at,
                "turns": meta.turns,
                "running": snap.running,
                "summary": snap.state.summary,
                "messages": snap.messages,
                // A running invocation's turn so far, or a crashed one's (to resume).
                "checkpoint": snap.state.checkpoint().ok().flatten().map(|c| json!({
                    "invocationId": c.invocation_id,
                    "messages": c.messages,
                    "modelCalls": c.model_calls,
                    "startedAt": rfc3339(c.started_at_ms),
                    "updatedAt": rfc3339(c.updated_at_ms),
                })),
                // A turn waiting for approval of its calls.
                "pendingApproval": pending.map(|p| json!({
                    "invocationId": p.invocation_id,
                    "requestedAt": rfc3339(p.requested_at_ms),
                    "expiresAt": rfc3339(p.expires_at_ms),
                    "calls": p.calls,
                })),
            }))
            .into_response()
        }
        Ok(None) => session_error(&SessionError::NotFound),
        Err(e) => session_error(&e),
    }
}

/// `DELETE /v1/sessions/{id}`: 204, or 409 while an invocation holds it.
pub async fn delete(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let (sessions, id) = match session(&s, &id) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match sessions.delete(&id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => session_error(&e),
    }
}

/// `POST /v1/sessions/{id}/resume` (no body): continues the invocation on session `id` whose
/// runtime died mid-loop, from its checkpoint, once the dead holder's lease ran out (409
/// `session_busy` with `Retry-After` until then, or while a live invocation holds it; 409
/// `nothing_to_resume` without a checkpoint; 404 `session_not_found`). The answer is that of
/// `/v1/invoke` on a session: JSON, or Server-Sent Events with `Accept: text/event-stream`,
/// after the turn is committed.
pub async fn resume(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let inv = Invocation::arrive(
        &s,
        &headers,
        "POST",
        "/v1/sessions/{id}/resume",
        Protocol::Invoke,
    );
    let request_id = inv.request_id_header();
    let mut response = resumed(&s, inv, &headers, &id, None).await;
    if let Some(v) = request_id {
        response
            .headers_mut()
            .insert(super::invocation::REQUEST_ID_HEADER, v);
    }
    response
}

/// `POST /v1/sessions/{id}/approvals` with `{"decisions": [{"toolUseId", "decision":
/// "approve" | "deny", "reason"?}]}`: continues the turn of session `id` that stopped with
/// `approval_required`, once every pending call is decided (400 `invalid_decisions` naming
/// the unknown, repeated or missing ids): approved calls run, denied ones reach the model as
/// error results with the reason, and the loop goes on. 409 `no_pending_approval`, 410
/// `approval_expired` (the turn is dropped), 404, 409 `session_busy`. The answer is that of
/// `/v1/invoke` on the session, JSON or Server-Sent Events.
pub async fn approvals(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let inv = Invocation::arrive(
        &s,
        &headers,
        "POST",
        "/v1/sessions/{id}/approvals",
        Protocol::Invoke,
    );
    let request_id = inv.request_id_header();
    let mut response = resumed(&s, inv, &headers, &id, Some(&body)).await;
    if let Some(v) = request_id {
        response
            .headers_mut()
            .insert(super::invocation::REQUEST_ID_HEADER, v);
    }
    response
}

/// The decisions of `body` for the turn of session `id` that waits, checked against its
/// pending calls (read without the lease). An expired approval passes: taking the lease
/// answers it (and drops the turn).
async fn decisions(
    sessions: &Sessions,
    id: &SessionId,
    body: &[u8],
) -> Result<Vec<(String, Decision)>, (Response, &'static str)> {
    let parsed: approval::Body = serde_json::from_slice(body).map_err(|e| {
        (
            error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("the body must be {{\"decisions\": [{{\"toolUseId\": ..., \"decision\": \"approve\" or \"deny\", \"reason\": ...}}]}}: {e}"),
            ),
            "invalid_request",
        )
    })?;
    let fail = |e: SessionError| (session_error(&e), e.code());
    let snap = sessions
        .read(id)
        .await
        .map_err(fail)?
        .ok_or_else(|| fail(SessionError::NotFound))?;
    let pending = snap
        .state
        .pending()
        .map_err(|e| fail(SessionError::Record(e)))?
        .ok_or_else(|| fail(SessionError::NoPendingApproval))?;
    if crate::session::now_ms() >= pending.expires_at_ms {
        return Ok(vec![]);
    }
    approval::check(&pending.calls, &parsed.decisions).map_err(|m| {
        (
            error(StatusCode::BAD_REQUEST, "invalid_decisions", m),
            "invalid_decisions",
        )
    })
}

async fn resumed(
    s: &AppState,
    mut inv: Invocation,
    headers: &HeaderMap,
    id: &str,
    decide: Option<&[u8]>,
) -> Response {
    let mut refuse = |r: Response, code: &str| {
        inv.finish(r.status().as_u16(), code);
        r
    };
    if s.draining() {
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the runtime is shutting down; retry on another replica",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(1));
        return refuse(r, "shutting_down");
    }
    let (sessions, id) = match session(s, id) {
        Ok(x) => x,
        Err(r) if s.rt.sessions.is_none() => return refuse(r, "sessions_not_enabled"),
        Err(r) => return refuse(r, "invalid_request"),
    };
    let (depth, caller_ms) = match (
        body::header_number(headers, CALL_DEPTH_HEADER),
        body::header_number(headers, DEADLINE_HEADER),
    ) {
        (Ok(d), Ok(ms)) => (u32::try_from(d.unwrap_or(0)).unwrap_or(u32::MAX), ms),
        (Err(r), _) | (_, Err(r)) => {
            return refuse(error(r.status, r.code, r.message.clone()), r.code);
        }
    };
    let stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    let decided = match decide {
        Some(body) => match decisions(&sessions, &id, body).await {
            Ok(d) => Some(d),
            Err((r, code)) => return refuse(r, code),
        },
        None => None,
    };
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
    let acquired = match decided {
        Some(d) => resume::acquire_to_decide(&sessions, id, &inv.request_id, d).await,
        None => resume::acquire(&sessions, id, &inv.request_id).await,
    };
    let held = match acquired {
        Ok(h) => h,
        Err(e) => {
            inv.finish(status(&e).0.as_u16(), e.code());
            return session_error(&e);
        }
    };
    let request = Request {
        input: None,
        messages: vec![],
        depth,
        deadline: invoke::deadline(&s.rt.config, caller_ms),
        stream,
        request_id: inv.request_id.clone(),
        overrides: Default::default(),
        trace: inv.trace.clone(),
    };
    super::invoke::respond(s, request, held, inv, stream).await
}
