//! `GET` and `DELETE /v1/sessions/{id}`, and the one mapping of session errors to HTTP
//! answers, shared with `/v1/invoke`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{AppState, error, retry_later};
use crate::session::{SessionError, SessionId, Sessions};

/// The HTTP status of a session error and its `Retry-After` seconds, if any: 409
/// `session_busy` (until the holder's lease runs out), 503 `session_store_unavailable` (1 s),
/// 503 `session_lock_lost`, 404 `session_not_found`. Every protocol answers with these.
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
        Ok(Some(snap)) => {
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
