//! The hot request of `/mcp`, answered without the SDK's per-request service: a stateless
//! `tools/call` of the Agent's tool, in a protocol version with the `initialize` handshake
//! (2024-11-05 to 2025-11-25). rmcp serves each stateless request with a service of its own
//! (a spawned task, a channel transport, the whole protocol's message enum), about a sixth of
//! the CPU of a one-tool invocation; here the call is one parse and one serialisation around
//! the same [`call_tool`](super::call_tool) the SDK's handler runs, and the result is the SDK's
//! own [`CallToolResult`](rmcp::model::CallToolResult).
//!
//! Only a request this path answers exactly as rmcp would is taken: anything else (another
//! method or tool, a 2026-07-28 request with its per-request `_meta`, a task-augmented call, a
//! browser `Origin`, an unusual `Accept`, `Content-Type` or version header) goes to rmcp
//! unchanged, body included.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::ServerResult;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::super::body::{self, ReadFailure};
use super::super::{AppState, error};
use super::{call_tool, tool_result};

/// The versions whose requests carry no per-request `_meta` (the handshake era).
const HANDSHAKE_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// Whether the headers are ones rmcp accepts for a stateless request without anything else
/// to say: POST, JSON in, JSON and SSE accepted, no `Origin`, no session, a handshake-era (or
/// no) protocol version.
pub fn eligible(method: &Method, headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().ok());
    let essence = |v: &str| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let json_in = matches!(text(header::CONTENT_TYPE.as_str()), Some(Some(v)) if essence(v) == "application/json");
    let accepted: Vec<String> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(essence)
        .collect();
    let accepts = |t: &str| accepted.iter().any(|a| a == t);
    let version = match text("mcp-protocol-version") {
        None => true,
        Some(Some(v)) => HANDSHAKE_VERSIONS.contains(&v),
        Some(None) => false,
    };
    method == Method::POST
        && json_in
        && accepts("application/json")
        && accepts("text/event-stream")
        && version
        && !headers.contains_key(header::ORIGIN)
        && !headers.contains_key("mcp-session-id")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rpc {
    jsonrpc: String,
    id: Value,
    method: String,
    params: Params,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    name: String,
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
    #[serde(default, rename = "_meta")]
    meta: Option<Map<String, Value>>,
}

/// A call this path takes: its JSON-RPC id and its arguments (read by the same
/// [`call_tool`](super::call_tool) as rmcp's handler).
#[derive(Debug, PartialEq)]
pub struct Call {
    /// The request id, echoed.
    pub id: Value,
    /// The arguments (`input`, and `sessionId` with memory).
    pub arguments: Option<Map<String, Value>>,
}

/// The call in `bytes` when it is a well-formed `tools/call` of `tool` that carries nothing
/// of the 2026-07-28 protocol or the tasks extension; `None` leaves the request to rmcp.
pub fn parse(bytes: &[u8], tool: &str) -> Option<Call> {
    let rpc: Rpc = serde_json::from_slice(bytes).ok()?;
    let id_ok = rpc.id.is_string() || rpc.id.is_i64() || rpc.id.is_u64();
    let protocol_meta = rpc
        .params
        .meta
        .as_ref()
        .is_some_and(|m| m.keys().any(|k| k.starts_with("io.modelcontextprotocol/")));
    if rpc.jsonrpc != "2.0"
        || !id_ok
        || rpc.method != "tools/call"
        || rpc.params.name != tool
        || protocol_meta
    {
        return None;
    }
    Some(Call {
        id: rpc.id,
        arguments: rpc.params.arguments,
    })
}

#[derive(Serialize)]
struct Reply<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    result: ServerResult,
}

/// The result as rmcp answers a peer of a handshake-era version: through its own shaping for
/// such peers (no `resultType`, object-only structured output).
fn legacy_result(answer: super::Answer) -> ServerResult {
    let mut result = ServerResult::CallToolResult(tool_result(answer));
    result.strip_result_type_for_legacy_peer();
    result.strip_non_object_output_for_legacy_peer();
    result
}

/// Answers `req` when it is the hot call; otherwise hands it back, body included, for rmcp.
pub async fn serve(s: &AppState, tool: &str, req: Request) -> Result<Response, Request> {
    if !eligible(req.method(), req.headers()) {
        return Err(req);
    }
    let (parts, body) = req.into_parts();
    let bytes = match body::read(&parts.headers, body, s.body_read_timeout, s.closing.clone()).await
    {
        Ok(b) => b,
        Err(ReadFailure::Refused(r)) => return Ok(error(r.status, r.code, r.message)),
        Err(ReadFailure::Disconnected) => return Ok(StatusCode::BAD_REQUEST.into_response()),
    };
    let Some(call) = parse(&bytes, tool) else {
        return Err(Request::from_parts(parts, Body::from(bytes)));
    };
    let answer = call_tool(s, call.arguments.as_ref(), &parts.headers).await;
    let reply = Reply {
        jsonrpc: "2.0",
        id: &call.id,
        result: legacy_result(answer),
    };
    let json = match serde_json::to_vec(&reply) {
        Ok(json) => json,
        Err(e) => {
            let message = format!("the tool result could not be written as JSON: {e}");
            return Ok(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                message,
            ));
        }
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    const PLAIN: [(&str, &str); 3] = [
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2025-11-25"),
    ];

    #[test]
    fn a_plain_stateless_post_is_eligible_and_anything_rmcp_would_judge_is_not() {
        assert!(eligible(&Method::POST, &headers(&PLAIN)));
        assert!(
            eligible(&Method::POST, &headers(&PLAIN[..2])),
            "no version header"
        );
        let accept_twice = [
            ("content-type", "application/json; charset=utf-8"),
            ("accept", "application/json"),
            ("accept", "text/event-stream;q=0.9"),
        ];
        assert!(eligible(&Method::POST, &headers(&accept_twice)));
        assert!(!eligible(&Method::GET, &headers(&PLAIN)));
        for extra in [
            ("origin", "http://evil.example"),
            ("mcp-session-id", "s1"),
            ("mcp-protocol-version", "2026-07-28"),
        ] {
            let mut h = headers(&PLAIN);
            h.insert(
                axum::http::HeaderName::from_static(extra.0),
                HeaderValue::from_static(extra.1),
            );
            assert!(!eligible(&Method::POST, &h), "{extra:?}");
        }
        let json_only = [PLAIN[0], ("accept", "application/json")];
        assert!(!eligible(&Method::POST, &headers(&json_only)));
        let text_in = [("content-type", "text/plain"), PLAIN[1]];
        assert!(!eligible(&Method::POST, &headers(&text_in)));
    }

    fn body(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    #[test]
    fn a_call_of_the_agents_tool_is_taken_with_its_id_and_input() {
        let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "radio", "arguments": {"input": "top song?"},
                       "_meta": {"progressToken": 3}}});
        assert_eq!(
            parse(&body(call), "radio"),
            Some(Call {
                id: json!(7),
                arguments: json!({"input": "top song?"}).as_object().cloned()
            })
        );
        let no_input = json!({"jsonrpc": "2.0", "id": "a", "method": "tools/call",
            "params": {"name": "radio", "arguments": {"question": 1}}});
        assert_eq!(
            parse(&body(no_input), "radio"),
            Some(Call {
                id: json!("a"),
                arguments: json!({"question": 1}).as_object().cloned()
            })
        );
    }

    #[test]
    fn every_other_request_is_left_to_the_sdk() {
        let base = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "radio", "arguments": {"input": "hi"}}});
        let mut cases = vec![];
        for (pointer, v) in [
            ("/method", json!("tools/list")),
            ("/params/name", json!("other")),
            ("/jsonrpc", json!("1.0")),
            ("/id", json!(null)),
            ("/id", json!(1.5)),
            ("/params/arguments", json!("hi")),
            ("/params/task", json!({"ttl": 1000})),
            (
                "/params/_meta",
                json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"}),
            ),
        ] {
            let mut c = base.clone();
            match c.pointer_mut(pointer) {
                Some(slot) => *slot = v,
                None => {
                    c["params"][pointer.rsplit('/').next().unwrap()] = v;
                }
            }
            cases.push(c);
        }
        for c in cases {
            assert_eq!(parse(&body(c.clone()), "radio"), None, "{c}");
        }
        assert_eq!(parse(b"[1]", "radio"), None, "a batch");
        assert_eq!(parse(b"{", "radio"), None, "not JSON");
    }
}
