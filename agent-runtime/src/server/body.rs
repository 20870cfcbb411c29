//! Reading and checking an invocation request: the body is read whole under a size cap and a
//! timeout, then parsed and checked without I/O ([`parse_invoke`]), so every refusal is a
//! documented 4xx that names the problem.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::watch;

use crate::conversation::{self, Message};
use crate::session::SessionId;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A refusal: status, code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status.
    pub status: StatusCode,
    /// The error code.
    pub code: &'static str,
    /// What is wrong, and how to fix it.
    pub message: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

/// The `/v1/invoke` body.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InvokeBody {
    /// New user input.
    #[serde(default)]
    pub input: Option<String>,
    /// The conversation so far.
    #[serde(default)]
    pub messages: Vec<Message>,
    /// The session that holds the conversation instead (the Agent must have memory).
    #[serde(default, rename = "sessionId")]
    pub session_id: Option<SessionId>,
}

/// Parses and checks a `/v1/invoke` body: a JSON object with `input` and/or `messages`, whose
/// conversation Bedrock would accept.
pub fn parse_invoke(bytes: &[u8]) -> Result<InvokeBody, Refusal> {
    // serde reads a struct from a JSON array too (`["hi"]`); only an object is a request.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(Refusal::bad(
            "the body must be a JSON object: {\"input\": string, \"messages\": [...]}",
        ));
    }
    let parsed: InvokeBody = serde_json::from_slice(bytes).map_err(|e| {
        Refusal::bad(format!(
            "the body must be JSON {{\"input\": string, \"messages\": [...]}}: {e}"
        ))
    })?;
    let input = parsed.input.as_deref();
    if parsed.session_id.is_some() && !parsed.messages.is_empty() {
        return Err(Refusal::bad(
            "with sessionId the session holds the conversation: send only input, the new user message",
        ));
    }
    if parsed.session_id.is_some() && input.is_none() {
        return Err(Refusal::bad(
            "with sessionId give \"input\" (a non-empty string): the new user message",
        ));
    }
    if input.is_none() && parsed.messages.is_empty() {
        return Err(Refusal::bad(
            "give \"input\" (a non-empty string) or \"messages\" (a conversation to continue)",
        ));
    }
    conversation::check(&parsed.messages, input).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_conversation",
            e.to_string(),
        )
    })?;
    Ok(parsed)
}

/// A numeric header, if present.
pub fn header_number(headers: &HeaderMap, name: &str) -> Result<Option<u64>, Refusal> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_header",
                    format!("header {name} must be a non-negative integer"),
                )
            }),
    }
}

/// Why a body could not be read.
pub enum ReadFailure {
    /// A refusal to send.
    Refused(Refusal),
    /// The client went away mid-body: nobody to answer.
    Disconnected,
}

/// Reads the whole body: at most [`MAX_BODY_BYTES`], within `timeout`, and not past the
/// listener closing (a half-sent body must not hold up the shutdown).
pub async fn read(
    headers: &HeaderMap,
    body: Body,
    timeout: Duration,
    mut closing: watch::Receiver<bool>,
) -> Result<Vec<u8>, ReadFailure> {
    let too_large = || {
        ReadFailure::Refused(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is over {MAX_BODY_BYTES} bytes"),
        ))
    };
    let declared = header_number(headers, "content-length").map_err(ReadFailure::Refused)?;
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let collect = async {
        let mut stream = body.into_data_stream();
        let mut out = Vec::with_capacity(declared.unwrap_or(0) as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| ReadFailure::Disconnected)?;
            if out.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    };
    tokio::select! {
        read = tokio::time::timeout(timeout, collect) => read.unwrap_or_else(|_| {
            Err(ReadFailure::Refused(Refusal::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the request body did not arrive within {} ms", timeout.as_millis()),
            )))
        }),
        _ = closing.wait_for(|c| *c) => Err(ReadFailure::Refused(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the runtime is shutting down; retry on another replica",
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_body_is_refused_although_serde_would_read_it_as_the_struct() {
        let r = parse_invoke(br#"["hi"]"#).unwrap_err();
        assert_eq!(
            (r.status, r.code),
            (StatusCode::BAD_REQUEST, "invalid_request")
        );
        assert!(r.message.contains("JSON object"), "{}", r.message);
    }

    #[test]
    fn unknown_fields_and_wrong_types_name_the_problem() {
        let r = parse_invoke(br#"{"inptu": "hi"}"#).unwrap_err();
        assert!(r.message.contains("unknown field `inptu`"), "{}", r.message);
        let r = parse_invoke(br#"{"input": 5}"#).unwrap_err();
        assert!(r.message.contains("invalid type"), "{}", r.message);
    }

    #[test]
    fn a_bad_conversation_is_its_own_code() {
        let r =
            parse_invoke(br#"{"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}"#)
                .unwrap_err();
        assert_eq!(r.code, "invalid_conversation");
        assert!(r.message.starts_with("messages[0]"), "{}", r.message);
    }

    #[test]
    fn a_session_id_takes_only_input_and_must_match_its_pattern() {
        let b = parse_invoke(br#"{"sessionId": "c0ffee-42", "input": "hi"}"#).unwrap();
        assert_eq!(b.session_id.unwrap().as_str(), "c0ffee-42");
        let r = parse_invoke(
            br#"{"sessionId": "s", "messages": [{"role": "user", "content": [{"text": "hi"}]}]}"#,
        )
        .unwrap_err();
        assert!(r.message.contains("send only input"), "{}", r.message);
        let r = parse_invoke(br#"{"sessionId": "s"}"#).unwrap_err();
        assert!(r.message.contains("give \"input\""), "{}", r.message);
        let r = parse_invoke(br#"{"sessionId": "a/b", "input": "hi"}"#).unwrap_err();
        assert_eq!(r.code, "invalid_request");
        assert!(
            r.message.contains("sessionId \"a/b\" must be"),
            "{}",
            r.message
        );
    }

    #[test]
    fn input_alone_is_a_request() {
        let b = parse_invoke(br#" {"input": "hi"}"#).unwrap();
        assert_eq!(b.input.as_deref(), Some("hi"));
    }
}
