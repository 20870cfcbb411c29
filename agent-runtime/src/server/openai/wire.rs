//! OpenAI's wire shapes, built from the loop's results without I/O: the `chat.completion`
//! object, `chat.completion.chunk` events, the model list, finish reasons and error bodies.

use serde::Serialize;

use crate::conversation::Usage;
use crate::machine::StopReason;

/// OpenAI's `finish_reason` for how the loop ended; `None` for a deadline, which is reported as
/// an error (HTTP 504, or an error event in a stream) because the answer was cut off by time.
///
/// - `end_turn`, `stop_sequence` → `stop`;
/// - `max_tokens` (one reply hit `max_tokens`), `model_context_window_exceeded`, and the
///   Agent's own limits `max_iterations` and `token_budget` → `length`: the answer is
///   incomplete because a limit on generation was reached, which is what `length` tells a
///   client (it may ask again with a narrower question; retrying as is gives the same stop);
/// - `guardrail_intervened`, `content_filtered` → `content_filter`;
/// - `approval_required` → `stop`: the turn waits in the session for decisions sent to
///   `POST /v1/sessions/{id}/approvals` (the session's next invocation answers 409
///   `approval_pending` until then); `tool_calls` would ask the client to run them itself;
/// - any other reason Bedrock reports → `stop` (the model ended its turn).
pub fn finish_reason(stop: &StopReason) -> Option<&'static str> {
    Some(match stop {
        StopReason::EndTurn | StopReason::StopSequence => "stop",
        StopReason::MaxTokens | StopReason::MaxIterations | StopReason::TokenBudget => "length",
        StopReason::Other(r) if r == "model_context_window_exceeded" => "length",
        StopReason::GuardrailIntervened | StopReason::ContentFiltered => "content_filter",
        StopReason::Deadline => return None,
        StopReason::Other(_) | StopReason::ApprovalRequired => "stop",
    })
}

/// Token counts, summed over the invocation's model calls.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenAiUsage {
    /// Input tokens of every model call (the conversation is sent again on each).
    pub prompt_tokens: u64,
    /// Output tokens of every model call.
    pub completion_tokens: u64,
    /// Their sum.
    pub total_tokens: u64,
}

impl From<Usage> for OpenAiUsage {
    fn from(u: Usage) -> Self {
        Self {
            prompt_tokens: u.input_tokens,
            completion_tokens: u.output_tokens,
            total_tokens: u.total(),
        }
    }
}

/// What every completion and chunk carries.
#[derive(Serialize, Clone, Copy, Debug)]
pub struct Head<'a> {
    /// `chatcmpl-<request id>`.
    pub id: &'a str,
    /// Unix seconds when the request arrived.
    pub created: u64,
    /// The Agent's name.
    pub model: &'a str,
}

#[derive(Serialize)]
struct Completion<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    object: &'static str,
    choices: [Choice<'a>; 1],
    usage: OpenAiUsage,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: Assistant<'a>,
    logprobs: Option<()>,
    finish_reason: &'a str,
}

#[derive(Serialize)]
struct Assistant<'a> {
    role: &'static str,
    content: &'a str,
}

/// A `chat.completion` object.
pub fn completion(head: Head<'_>, content: &str, finish: &str, usage: Usage) -> Vec<u8> {
    let c = Completion {
        head,
        object: "chat.completion",
        choices: [Choice {
            index: 0,
            message: Assistant {
                role: "assistant",
                content,
            },
            logprobs: None,
            finish_reason: finish,
        }],
        usage: usage.into(),
    };
    serde_json::to_vec(&c).unwrap_or_default()
}

/// The change a chunk carries.
#[derive(Serialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct Delta<'a> {
    /// `assistant`, on the first chunk only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// New text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
}

#[derive(Serialize)]
struct Chunk<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    object: &'static str,
    choices: &'a [ChunkChoice<'a>],
    // `Some(None)` writes `"usage": null`, as OpenAI does on every chunk but the usage one
    // when usage was asked for; `None` leaves the field out.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<OpenAiUsage>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

/// One `chat.completion.chunk` (as `data: …` event text) with `delta` and `finish`;
/// `with_usage` writes `"usage": null` on it (the request asked for a usage chunk).
pub fn chunk(
    buf: &mut Vec<u8>,
    head: Head<'_>,
    delta: Delta<'_>,
    finish: Option<&str>,
    with_usage: bool,
) {
    let choices = [ChunkChoice {
        index: 0,
        delta,
        logprobs: None,
        finish_reason: finish,
    }];
    data(
        buf,
        &Chunk {
            head,
            object: "chat.completion.chunk",
            choices: &choices,
            usage: with_usage.then_some(None),
        },
    );
}

/// The usage chunk that ends a stream when `stream_options.include_usage` was asked for.
pub fn usage_chunk(buf: &mut Vec<u8>, head: Head<'_>, usage: Usage) {
    data(
        buf,
        &Chunk {
            head,
            object: "chat.completion.chunk",
            choices: &[],
            usage: Some(Some(usage.into())),
        },
    );
}

/// The event that ends a stream.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// Appends one `data:` event of compact JSON (which never holds a newline).
pub fn data(buf: &mut Vec<u8>, value: &impl Serialize) {
    buf.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut *buf, value).is_err() {
        buf.extend_from_slice(b"null");
    }
    buf.extend_from_slice(b"\n\n");
}

/// An error in OpenAI's shape: what is wrong, its kind, the parameter at fault, a code.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ErrorObject {
    /// What is wrong and what to do.
    pub message: String,
    /// `invalid_request_error`, `requests` (rate limits) or `server_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The request parameter at fault.
    pub param: Option<String>,
    /// A machine-readable code.
    pub code: Option<&'static str>,
}

/// `{"error": {…}}`.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorObject,
}

/// The list `GET /v1/models` answers: the Agent as the one model.
pub fn models(agent: &str, created: u64) -> serde_json::Value {
    serde_json::json!({
        "object": "list",
        "data": [{"id": agent, "object": "model", "created": created, "owned_by": "agentry"}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const HEAD: Head<'static> = Head {
        id: "chatcmpl-r1",
        created: 1_764_590_000,
        model: "radio",
    };

    #[test]
    fn a_limit_stop_is_length_and_a_deadline_has_no_finish_reason() {
        let cases = [
            (StopReason::EndTurn, Some("stop")),
            (StopReason::StopSequence, Some("stop")),
            (StopReason::MaxTokens, Some("length")),
            (StopReason::MaxIterations, Some("length")),
            (StopReason::TokenBudget, Some("length")),
            (
                StopReason::Other("model_context_window_exceeded".into()),
                Some("length"),
            ),
            (StopReason::GuardrailIntervened, Some("content_filter")),
            (StopReason::ContentFiltered, Some("content_filter")),
            (
                StopReason::Other("malformed_model_output".into()),
                Some("stop"),
            ),
            (StopReason::Deadline, None),
        ];
        for (stop, want) in cases {
            assert_eq!(finish_reason(&stop), want, "{stop:?}");
        }
    }

    #[test]
    fn a_completion_has_the_fields_the_sdk_requires_and_usage_sums_both_directions() {
        let usage = Usage {
            input_tokens: 30,
            output_tokens: 15,
            ..Usage::default()
        };
        let v: Value = serde_json::from_slice(&completion(HEAD, "hello", "stop", usage)).unwrap();
        assert_eq!(
            v,
            json!({"id": "chatcmpl-r1", "object": "chat.completion", "created": 1_764_590_000u64,
                "model": "radio",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"},
                    "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 30, "completion_tokens": 15, "total_tokens": 45}})
        );
    }

    fn events(buf: &[u8]) -> Vec<Value> {
        let text = std::str::from_utf8(buf).unwrap();
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn chunks_carry_usage_null_only_when_usage_was_asked_for() {
        let mut buf = Vec::new();
        let first = Delta {
            role: Some("assistant"),
            content: Some(""),
        };
        chunk(&mut buf, HEAD, first, None, true);
        chunk(&mut buf, HEAD, Delta::default(), Some("stop"), false);
        usage_chunk(
            &mut buf,
            HEAD,
            Usage {
                input_tokens: 2,
                output_tokens: 1,
                ..Usage::default()
            },
        );
        let e = events(&buf);
        assert_eq!(e[0]["object"], "chat.completion.chunk");
        assert_eq!(
            e[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(e[0]["choices"][0]["finish_reason"], Value::Null);
        assert!(e[0].as_object().unwrap().contains_key("usage"));
        assert_eq!(e[0]["usage"], Value::Null);
        assert_eq!(e[1]["choices"][0]["delta"], json!({}));
        assert_eq!(e[1]["choices"][0]["finish_reason"], "stop");
        assert!(!e[1].as_object().unwrap().contains_key("usage"));
        assert_eq!(e[2]["choices"], json!([]));
        assert_eq!(e[2]["usage"]["total_tokens"], 3);
    }

    #[test]
    fn the_model_list_names_the_agent() {
        assert_eq!(
            models("radio", 7),
            json!({"object": "list", "data": [{"id": "radio", "object": "model", "created": 7, "owned_by": "agentry"}]})
        );
    }
}
