//! Property tests of the model-reply handling, through the real `aws-sdk-bedrockruntime`
//! client: an in-process HTTP client answers each call with a generated response (Converse
//! JSON, event-stream frames built with `aws-smithy-eventstream`, error bodies, arbitrary
//! bytes), whole or damaged, in random HTTP chunks. Whatever comes back, the runtime never
//! panics and every outcome is a documented one: an error code clients are told about, or a
//! reply with a real stop reason, and a stream reply only when its `messageStop` arrived
//! intact. Case counts are bounded (`PROPTEST_CASES` raises them for a deeper local run).
//! The tests at the end hold the minimal inputs of four bugs these found (all fixed), so each
//! stays fixed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentry_runtime::bedrock::{BedrockError, excerpt};
use agentry_runtime::conversation::{Block, ToolUse, Usage};
use agentry_runtime::machine::ModelReply;
use agentry_runtime::tools::MALFORMED_INPUT_KEY;
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message as Frame};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

/// Every error code a model call may end with (see `BedrockError::code`).
const DOCUMENTED: [&str; 7] = [
    "throttled",
    "model_error",
    "bedrock_unreachable",
    "bedrock_bad_response",
    "model_reply_incomplete",
    "model_reply_too_large",
    "invalid_conversation",
];
/// What the SDK puts in a required field the response left out.
const PLACEHOLDER: &str = "no value was set";
const SMALL_CAP: usize = 4096;
const LARGE_CAP: usize = 1024 * 1024;
const EVENTSTREAM: &str = "application/vnd.amazon.eventstream";
const STOP_REASONS: [&str; 9] = [
    "end_turn",
    "tool_use",
    "max_tokens",
    "stop_sequence",
    "guardrail_intervened",
    "content_filtered",
    "malformed_model_output",
    "malformed_tool_use",
    "model_context_window_exceeded",
];

#[path = "support/replay.rs"]
mod replay;
use replay::{Answer, Harness};

/// Runs `test` over `strategy`, `PROPTEST_CASES` or `cases` times.
fn check<S: Strategy>(
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

/// What every outcome must be: a documented error, or a reply with a real stop reason.
fn documented(outcome: &Result<ModelReply, BedrockError>) -> Result<(), TestCaseError> {
    match outcome {
        Err(e) => prop_assert!(DOCUMENTED.contains(&e.code()), "undocumented: {e:?}"),
        Ok(reply) => prop_assert!(
            !reply.stop_reason.trim().is_empty() && reply.stop_reason != PLACEHOLDER,
            "a reply without a real stop reason: {}",
            excerpt(&format!("{reply:?}"), 600)
        ),
    }
    Ok(())
}

/// An outcome, short enough for a failure message (replies can be megabytes).
fn brief(outcome: &Result<ModelReply, BedrockError>) -> String {
    excerpt(&format!("{outcome:?}"), 600)
}

fn code(outcome: &Result<ModelReply, BedrockError>) -> &'static str {
    match outcome {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

fn cuts() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..6)
}

// ---- Generated model replies --------------------------------------------------------------

/// A block of the reply as it should come out.
#[derive(Clone)]
enum Want {
    Text(Vec<String>),
    /// A tool call; its input as streamed (JSON text, maybe malformed) and split points.
    Tool {
        id: String,
        name: String,
        input: String,
        splits: Vec<Index>,
    },
}

/// A text as `Debug` shows it in a failure: long ones abbreviated, so that a minimal failing
/// input stays readable.
fn short(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{:?} ({} bytes)", excerpt(s, 10), s.len())
    } else {
        format!("{s:?}")
    }
}

impl std::fmt::Debug for Want {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Want::Text(parts) => {
                let parts: Vec<String> = parts.iter().map(|p| short(p)).collect();
                write!(f, "Text([{}])", parts.join(", "))
            }
            Want::Tool {
                id,
                name,
                input,
                splits,
            } => write!(
                f,
                "Tool {{ id: {id:?}, name: {name:?}, input: {input:?}, splits: {splits:?} }}"
            ),
        }
    }
}

impl Want {
    fn block(&self) -> Result<Block, ()> {
        Ok(match self {
            Want::Text(parts) => Block::Text(parts.concat()),
            Want::Tool {
                id, name, input, ..
            } => Block::ToolUse(ToolUse {
                tool_use_id: id.clone(),
                name: name.clone(),
                input: if input.trim().is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(input).map_err(|_| ())?
                },
            }),
        })
    }
}

fn text_part() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-zA-Z ,.]{1,40}",
        2 => "\\PC{1,12}",
        1 => (1..3000usize).prop_map(|n| "é".repeat(n)),
        1 => (1..6000usize).prop_map(|n| "a".repeat(n)),
    ]
}

fn tool_input() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            json!({"sign": "WZPZ"}),
            json!({}),
            json!({"stations": ["WZPZ", "WKRP"], "limit": 3, "live": true, "n": null}),
            json!({"nested": {"a": [1, -2, {"b": "ü"}]}}),
        ])
        .prop_map(|v| v.to_string()),
        1 => Just(String::new()),
        1 => Just("{\"sign\": \"WZ".to_string()),
        1 => Just("not json".to_string()),
    ]
}

fn want() -> impl Strategy<Value = Want> {
    prop_oneof![
        prop::collection::vec(text_part(), 1..4).prop_map(Want::Text),
        (
            "tooluse_[a-zA-Z0-9]{4,22}",
            prop::sample::select(vec!["top_song", "ask_self", "x"]),
            tool_input(),
            prop::collection::vec(any::<Index>(), 0..4)
        )
            .prop_map(|(id, name, input, splits)| Want::Tool {
                id,
                name: name.into(),
                input,
                splits
            }),
    ]
}

/// A stop reason as the body gives it: usually a known one, sometimes unknown, empty or absent.
fn stop_reason() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        8 => prop::sample::select(STOP_REASONS.to_vec()).prop_map(|r| Some(r.to_string())),
        1 => Just(Some("a_reason_from_a_newer_model".to_string())),
        1 => Just(Some(String::new())),
        1 => Just(None),

    ]
}

fn valid_stop(r: &Option<String>) -> bool {
    r.as_deref().is_some_and(|r| !r.trim().is_empty())
}

/// Compares a reply with the wanted blocks (a malformed tool input is marked, not kept).
fn same_content(got: &[Block], want: &[Want]) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len(), "{:?} vs {:?}", got, want);
    for (g, w) in got.iter().zip(want) {
        match (w.block(), g) {
            (Ok(w), g) => prop_assert_eq!(g, &w),
            (Err(()), Block::ToolUse(u)) => prop_assert!(
                u.input.get(MALFORMED_INPUT_KEY).is_some(),
                "a malformed tool input is not marked: {u:?}"
            ),
            (Err(()), g) => prop_assert!(false, "wanted a tool call, got {g:?}"),
        }
    }
    Ok(())
}

// ---- Converse -----------------------------------------------------------------------------

/// A Converse response body in the shape of the AWS documentation's example.
fn converse_body(blocks: &[Want], stop: &Option<String>, usage: Usage) -> Value {
    let content: Vec<Value> = blocks
        .iter()
        .map(|b| match b.block() {
            Ok(Block::Text(t)) => json!({"text": t}),
            Ok(Block::ToolUse(u)) => {
                json!({"toolUse": {"toolUseId": u.tool_use_id, "name": u.name, "input": u.input}})
            }
            // Malformed tool inputs exist only in streams (`converse_blocks` leaves them out).
            _ => json!({"toolUse": {"toolUseId": "tooluse_x", "name": "x", "input": {}}}),
        })
        .collect();
    let mut body = json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "usage": {
            "inputTokens": usage.input_tokens,
            "outputTokens": usage.output_tokens,
            "totalTokens": usage.total(),
        },
        "metrics": {"latencyMs": 2270},
    });
    if let Some(r) = stop {
        body["stopReason"] = json!(r);
    }
    body
}

fn usage() -> impl Strategy<Value = Usage> {
    (0..100_000u64, 0..10_000u64).prop_map(|(input_tokens, output_tokens)| Usage {
        input_tokens,
        output_tokens,
        ..Usage::default()
    })
}

/// Blocks for a Converse body: its tool inputs are JSON objects.
fn converse_blocks() -> impl Strategy<Value = Vec<Want>> {
    prop::collection::vec(want(), 0..4)
        .prop_map(|blocks| blocks.into_iter().filter(|b| b.block().is_ok()).collect())
}

#[test]
fn a_whole_converse_reply_is_read_as_sent_unless_it_is_over_the_cap() {
    let h = [Harness::new(SMALL_CAP), Harness::new(LARGE_CAP)];
    let strategy = (
        converse_blocks(),
        stop_reason(),
        usage(),
        any::<bool>(),
        any::<bool>(),
        cuts(),
    );
    check(
        256,
        strategy,
        |(blocks, stop, usage, small, length, cuts)| {
            let cap = if small { SMALL_CAP } else { LARGE_CAP };
            let body = serde_json::to_vec(&converse_body(&blocks, &stop, usage)).unwrap();
            let n = body.len();
            let mut answer = Answer::new(200, Some("application/json"), body, &cuts);
            if length {
                answer = answer.header("content-length", n.to_string());
            }
            let outcome = h[usize::from(!small)].converse(answer);
            documented(&outcome)?;
            if n > cap {
                prop_assert_eq!(code(&outcome), "model_reply_too_large");
            } else if !valid_stop(&stop) {
                prop_assert_eq!(
                    code(&outcome),
                    "model_reply_incomplete",
                    "{}",
                    brief(&outcome)
                );
            } else {
                let reply = outcome.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                same_content(&reply.content, &blocks)?;
                prop_assert_eq!(Some(reply.stop_reason), stop);
                prop_assert_eq!(reply.usage, usage);
            }
            Ok(())
        },
    );
}

/// The paths to every value inside a JSON document (keys and indices).
fn paths(v: &Value, here: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match v {
        Value::Object(o) => {
            for (k, c) in o {
                here.push(json!(k));
                out.push(here.clone());
                paths(c, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                here.push(json!(i));
                out.push(here.clone());
                paths(c, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

/// Replaces (`Some`) or removes (`None`) the value at `path`.
fn edit(v: &mut Value, path: &[Value], with: Option<Value>) {
    let (last, parents) = path.split_last().unwrap();
    let mut at = v;
    for p in parents {
        at = match p {
            Value::String(k) => &mut at[k.as_str()],
            _ => &mut at[p.as_u64().unwrap() as usize],
        };
    }
    match (at, last, with) {
        (Value::Object(o), Value::String(k), Some(w)) => {
            o.insert(k.clone(), w);
        }
        (Value::Object(o), Value::String(k), None) => {
            o.remove(k);
        }
        (Value::Array(a), i, Some(w)) => a[i.as_u64().unwrap() as usize] = w,
        (Value::Array(a), i, None) => {
            a.remove(i.as_u64().unwrap() as usize);
        }
        _ => {}
    }
}

/// How a valid body is spoilt.
#[derive(Clone, Debug)]
enum Spoil {
    Drop(Index),
    WrongType(Index, Value),
    Truncate(Index),
    Flip(Index, u8),
    Html,
    Bytes(Vec<u8>),
}

fn spoil() -> impl Strategy<Value = Spoil> {
    let wrong = prop::sample::select(vec![
        Value::Null,
        json!(0),
        json!(-1),
        json!("x"),
        json!([]),
        json!({}),
        json!(true),
        json!(1e300),
    ]);
    prop_oneof![
        3 => any::<Index>().prop_map(Spoil::Drop),
        3 => (any::<Index>(), wrong).prop_map(|(i, w)| Spoil::WrongType(i, w)),
        3 => any::<Index>().prop_map(Spoil::Truncate),
        1 => (any::<Index>(), 1..=255u8).prop_map(|(i, x)| Spoil::Flip(i, x)),
        1 => Just(Spoil::Html),
        1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Spoil::Bytes),
    ]
}

const HTML: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n";

fn error_type() -> impl Strategy<Value = Option<String>> {
    prop::option::of(
        (
            prop::sample::select(vec![
                "ThrottlingException",
                "ValidationException",
                "AccessDeniedException",
                "InternalServerException",
                "ServiceUnavailableException",
                "ModelErrorException",
            ]),
            any::<bool>(),
        )
            .prop_map(|(t, suffix)| {
                if suffix {
                    format!("{t}:http://internal.amazon.com/coral/com.amazon.bedrock/")
                } else {
                    t.to_string()
                }
            }),
    )
}

#[test]
fn a_damaged_converse_reply_gets_a_documented_outcome_and_is_never_a_reply_when_cut_short() {
    let h = [Harness::new(SMALL_CAP), Harness::new(LARGE_CAP)];
    let strategy = (
        (converse_blocks(), stop_reason(), usage()),
        spoil(),
        prop::sample::select(vec![200u16, 200, 200, 400, 403, 429, 500, 502, 503]),
        error_type(),
        prop::sample::select(vec![
            Some("application/json"),
            None,
            Some("text/html"),
            Some("text/plain"),
            Some(EVENTSTREAM),
        ]),
        any::<bool>(),
        cuts(),
    );
    check(
        256,
        strategy,
        |((blocks, stop, usage), spoil, status, error_type, content_type, small, cuts)| {
            let cap = if small { SMALL_CAP } else { LARGE_CAP };
            let mut doc = converse_body(&blocks, &stop, usage);
            let mut all = vec![];
            paths(&doc, &mut vec![], &mut all);
            let mut truncated = false;
            let body = match &spoil {
                Spoil::Drop(i) => {
                    edit(&mut doc, &all[i.index(all.len())], None);
                    serde_json::to_vec(&doc).unwrap()
                }
                Spoil::WrongType(i, w) => {
                    edit(&mut doc, &all[i.index(all.len())], Some(w.clone()));
                    serde_json::to_vec(&doc).unwrap()
                }
                Spoil::Truncate(i) => {
                    let mut b = serde_json::to_vec(&doc).unwrap();
                    b.truncate(i.index(b.len()));
                    truncated = true;
                    b
                }
                Spoil::Flip(i, x) => {
                    let mut b = serde_json::to_vec(&doc).unwrap();
                    let at = i.index(b.len());
                    b[at] ^= x;
                    b
                }
                Spoil::Html => HTML.as_bytes().to_vec(),
                Spoil::Bytes(b) => b.clone(),
            };
            let n = body.len();
            let mut answer = Answer::new(status, content_type, body.clone(), &cuts);
            if let Some(t) = error_type {
                answer = answer.header("x-amzn-errortype", t);
            }
            let outcome = h[usize::from(!small)].converse(answer);
            documented(&outcome)?;
            if outcome.is_ok() {
                prop_assert_eq!(
                    status,
                    200,
                    "an error status read as a reply: {}",
                    brief(&outcome)
                );
                prop_assert!(
                    !truncated,
                    "a cut-short body read as a reply: {}",
                    brief(&outcome)
                );
            }
            if n > cap {
                prop_assert_eq!(
                    code(&outcome),
                    "model_reply_too_large",
                    "{} bytes over a cap of {}, content-type {:?}: {}",
                    n,
                    cap,
                    content_type,
                    brief(&outcome)
                );
            } else {
                prop_assert_ne!(code(&outcome), "model_reply_too_large");
            }
            Ok(())
        },
    );
}

#[derive(Clone, Debug)]
enum CodeAt {
    Header,
    HeaderWithSuffix,
    BodyType,
    BodyNamespacedType,
    BodyCode,
    Nowhere,
}

#[test]
fn an_aws_error_response_is_classified_by_its_code() {
    let h = Harness::new(LARGE_CAP);
    let strategy = (
        prop::sample::select(vec![400u16, 403, 404, 408, 424, 429, 500, 503]),
        prop::sample::select(vec![
            "ThrottlingException",
            "ServiceQuotaExceededException",
            "ValidationException",
            "AccessDeniedException",
            "ResourceNotFoundException",
            "ModelTimeoutException",
            "ModelErrorException",
            "InternalServerException",
            "ServiceUnavailableException",
            "ModelNotReadyException",
        ]),
        prop::sample::select(vec![
            CodeAt::Header,
            CodeAt::HeaderWithSuffix,
            CodeAt::BodyType,
            CodeAt::BodyNamespacedType,
            CodeAt::BodyCode,
            CodeAt::Nowhere,
        ]),
        "[a-zA-Z0-9 .:]{1,60}",
        any::<bool>(),
    );
    check(256, strategy, |(status, aws_code, at, message, stream)| {
        let mut body = json!({"message": message});
        match at {
            CodeAt::BodyType => body["__type"] = json!(aws_code),
            CodeAt::BodyNamespacedType => {
                body["__type"] = json!(format!("com.amazon.bedrock#{aws_code}"));
            }
            CodeAt::BodyCode => body["code"] = json!(aws_code),
            _ => {}
        }
        let mut answer = Answer::new(
            status,
            Some("application/json"),
            serde_json::to_vec(&body).unwrap(),
            &[],
        );
        match at {
            CodeAt::Header => answer = answer.header("x-amzn-errortype", aws_code.into()),
            CodeAt::HeaderWithSuffix => {
                answer = answer.header(
                    "x-amzn-errortype",
                    format!("{aws_code}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
                );
            }
            _ => {}
        }
        let outcome = if stream {
            h.stream(answer).0
        } else {
            h.converse(answer)
        };
        documented(&outcome)?;
        match (&at, outcome) {
            (CodeAt::Nowhere, outcome) => {
                prop_assert_eq!(
                    code(&outcome),
                    "bedrock_bad_response",
                    "{}",
                    brief(&outcome)
                );
            }
            (_, Err(BedrockError::Throttled(m))) => {
                prop_assert!(
                    ["ThrottlingException", "ServiceQuotaExceededException"].contains(&aws_code)
                );
                prop_assert_eq!(m, message);
            }
            (
                _,
                Err(BedrockError::Model {
                    code,
                    message: m,
                    request_id,
                }),
            ) => {
                prop_assert_eq!(code, aws_code);
                prop_assert_eq!(m, message);
                // Exception frames have no request id; a whole error response has one.
                prop_assert!(request_id.is_some());
            }
            (_, outcome) => prop_assert!(false, "{aws_code} HTTP {status}: {}", brief(&outcome)),
        }
        Ok(())
    });
}

#[test]
fn arbitrary_bytes_as_a_reply_get_a_documented_outcome() {
    let h = Harness::new(SMALL_CAP);
    let strategy = (
        prop::collection::vec(any::<u8>(), 0..600),
        prop::sample::select(vec![200u16, 400, 500]),
        prop::sample::select(vec![Some("application/json"), Some(EVENTSTREAM), None]),
        any::<bool>(),
        cuts(),
    );
    check(
        256,
        strategy,
        |(body, status, content_type, stream, cuts)| {
            let answer = Answer::new(status, content_type, body, &cuts);
            let outcome = if stream {
                h.stream(answer).0
            } else {
                h.converse(answer)
            };
            documented(&outcome)?;
            prop_assert!(
                outcome.is_err(),
                "random bytes read as a reply: {}",
                brief(&outcome)
            );
            Ok(())
        },
    );
}

#[test]
fn a_connection_that_fails_is_bedrock_unreachable() {
    let h = Harness::new(LARGE_CAP);
    assert_eq!(
        code(&h.converse(Answer::ConnectionFails)),
        "bedrock_unreachable"
    );
    assert_eq!(
        code(&h.stream(Answer::ConnectionFails).0),
        "bedrock_unreachable"
    );
}

// ---- ConverseStream -----------------------------------------------------------------------

/// One event-stream frame.
#[derive(Clone)]
enum Ev {
    MessageStart,
    BlockStart {
        index: i32,
        id: String,
        name: String,
    },
    TextDelta {
        index: i32,
        text: String,
    },
    ToolDelta {
        index: i32,
        input: String,
    },
    BlockStop {
        index: i32,
    },
    MessageStop(Option<String>),
    Metadata(Usage),
    /// An event type this SDK does not know (a newer Bedrock's): skipped.
    Unknown,
    Exception {
        kind: &'static str,
        message: String,
    },
    /// A frame whose CRCs hold but whose content cannot be read.
    Unreadable(&'static str),
}

impl std::fmt::Debug for Ev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ev::MessageStart => write!(f, "MessageStart"),
            Ev::BlockStart { index, id, name } => {
                write!(f, "BlockStart({index}, {id:?}, {name:?})")
            }
            Ev::TextDelta { index, text } => write!(f, "TextDelta({index}, {})", short(text)),
            Ev::ToolDelta { index, input } => write!(f, "ToolDelta({index}, {})", short(input)),
            Ev::BlockStop { index } => write!(f, "BlockStop({index})"),
            Ev::MessageStop(r) => write!(f, "MessageStop({r:?})"),
            Ev::Metadata(u) => write!(f, "Metadata({}, {})", u.input_tokens, u.output_tokens),
            Ev::Unknown => write!(f, "Unknown"),
            Ev::Exception { kind, message } => write!(f, "Exception({kind}, {message:?})"),
            Ev::Unreadable(what) => write!(f, "Unreadable({what})"),
        }
    }
}

fn header(name: &'static str, value: &str) -> Header {
    Header::new(name, HeaderValue::String(value.to_string().into()))
}

fn frame(headers: Vec<Header>, payload: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    write_message_to(&Frame::new_from_parts(headers, payload), &mut out).unwrap();
    out
}

fn event(kind: &str, payload: &Value) -> Vec<u8> {
    frame(
        vec![
            header(":event-type", kind),
            header(":content-type", "application/json"),
            header(":message-type", "event"),
        ],
        serde_json::to_vec(payload).unwrap(),
    )
}

impl Ev {
    fn encode(&self) -> Vec<u8> {
        match self {
            Ev::MessageStart => event("messageStart", &json!({"role": "assistant"})),
            Ev::BlockStart { index, id, name } => event(
                "contentBlockStart",
                &json!({"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": id, "name": name}}}),
            ),
            Ev::TextDelta { index, text } => event(
                "contentBlockDelta",
                &json!({"contentBlockIndex": index, "delta": {"text": text}}),
            ),
            Ev::ToolDelta { index, input } => event(
                "contentBlockDelta",
                &json!({"contentBlockIndex": index, "delta": {"toolUse": {"input": input}}}),
            ),
            Ev::BlockStop { index } => {
                event("contentBlockStop", &json!({"contentBlockIndex": index}))
            }
            Ev::MessageStop(Some(r)) => event("messageStop", &json!({"stopReason": r})),
            Ev::MessageStop(None) => event("messageStop", &json!({})),
            Ev::Metadata(u) => event(
                "metadata",
                &json!({
                    "usage": {"inputTokens": u.input_tokens, "outputTokens": u.output_tokens, "totalTokens": u.total()},
                    "metrics": {"latencyMs": 120}
                }),
            ),
            Ev::Unknown => event("reasoningSummary", &json!({"summary": "thinking"})),
            Ev::Exception { kind, message } => frame(
                vec![
                    header(":exception-type", kind),
                    header(":content-type", "application/json"),
                    header(":message-type", "exception"),
                ],
                serde_json::to_vec(&json!({"message": message})).unwrap(),
            ),
            Ev::Unreadable("payload") => frame(
                vec![
                    header(":event-type", "contentBlockDelta"),
                    header(":message-type", "event"),
                ],
                b"{\"contentBlockIndex\": 0, \"delta\": {\"text\": ".to_vec(),
            ),
            Ev::Unreadable("message-type") => frame(
                vec![
                    header(":message-type", "error"),
                    header(":error-code", "InternalFailure"),
                    header(":error-message", "boom"),
                ],
                vec![],
            ),
            Ev::Unreadable(_) => frame(vec![header(":message-type", "event")], b"{}".to_vec()),
        }
    }
}

/// The events of a well-formed stream: `messageStart`, each block (a toolUse block opened by
/// `contentBlockStart`; a text block by its first delta), `messageStop`, then `metadata`.
fn well_formed(blocks: &[Want], stop: &Option<String>, usage: Option<Usage>) -> Vec<Ev> {
    let mut events = vec![Ev::MessageStart];
    for (i, b) in blocks.iter().enumerate() {
        let index = i as i32;
        match b {
            Want::Text(parts) => events.extend(parts.iter().map(|t| Ev::TextDelta {
                index,
                text: t.clone(),
            })),
            Want::Tool {
                id,
                name,
                input,
                splits,
            } => {
                events.push(Ev::BlockStart {
                    index,
                    id: id.clone(),
                    name: name.clone(),
                });
                let chars: Vec<usize> = input
                    .char_indices()
                    .map(|(at, _)| at)
                    .chain([input.len()])
                    .collect();
                let mut at: Vec<usize> =
                    splits.iter().map(|s| chars[s.index(chars.len())]).collect();
                at.extend([0, input.len()]);
                at.sort_unstable();
                at.dedup();
                events.extend(at.windows(2).map(|w| Ev::ToolDelta {
                    index,
                    input: input[w[0]..w[1]].to_string(),
                }));
            }
        }
        events.push(Ev::BlockStop { index });
    }
    events.push(Ev::MessageStop(stop.clone()));
    events.extend(usage.map(Ev::Metadata));
    events
}

/// What a stream of these (intact) frames must come to.
#[derive(Debug, PartialEq)]
enum Expect {
    Reply(String),
    Error(&'static str),
    /// A `messageStop` without a stop reason arrived: not a reply, whatever follows.
    NoStopReason,
}

/// The outcome the frames call for: the first failure among them (an exception frame, an
/// unreadable one, text and tool input over the cap) even after a `messageStop`, since the
/// stream is read to its end; else a reply with the last stop reason, or an incomplete one.
/// `cut_short`: what follows them is a damaged frame.
fn expect(events: &[Ev], cap: usize, cut_short: bool) -> Expect {
    let mut held = 0;
    let mut stop = None;
    for ev in events {
        let failure = match ev {
            Ev::TextDelta { text: s, .. } | Ev::ToolDelta { input: s, .. } => {
                held += s.len();
                (held > cap).then_some("model_reply_too_large")
            }
            Ev::MessageStop(r) if !valid_stop(r) => return Expect::NoStopReason,
            Ev::MessageStop(r) => {
                stop = r.clone();
                None
            }
            Ev::Exception { kind, .. } => Some(if *kind == "throttlingException" {
                "throttled"
            } else {
                "model_error"
            }),
            Ev::Unreadable(_) => Some("bedrock_bad_response"),
            _ => None,
        };
        if let Some(code) = failure {
            return Expect::Error(code);
        }
    }
    match (cut_short, stop) {
        (true, _) => Expect::Error("bedrock_bad_response"),
        (false, Some(r)) => Expect::Reply(r),
        (false, None) => Expect::Error("model_reply_incomplete"),
    }
}

fn stream_answer(frames: &[Vec<u8>], cuts: &[Index]) -> Answer {
    Answer::new(200, Some(EVENTSTREAM), frames.concat(), cuts)
}

fn agrees(outcome: &Result<ModelReply, BedrockError>, want: &Expect) -> Result<(), TestCaseError> {
    match (want, outcome) {
        (Expect::Reply(r), Ok(reply)) => prop_assert_eq!(&reply.stop_reason, r),
        (Expect::Error(c), outcome) => prop_assert_eq!(code(outcome), *c, "{}", brief(outcome)),
        (Expect::NoStopReason, Err(_)) => {}
        (want, outcome) => prop_assert!(false, "want {want:?}, got {}", brief(outcome)),
    }
    Ok(())
}

#[test]
fn a_well_formed_stream_is_assembled_as_sent_unless_it_is_over_the_cap() {
    let h = [Harness::new(SMALL_CAP), Harness::new(LARGE_CAP)];
    let strategy = (
        prop::collection::vec(want(), 0..4),
        stop_reason(),
        prop::option::of(usage()),
        any::<bool>(),
        cuts(),
    );
    check(256, strategy, |(blocks, stop, usage, small, cuts)| {
        let cap = if small { SMALL_CAP } else { LARGE_CAP };
        let events = well_formed(&blocks, &stop, usage);
        let frames: Vec<Vec<u8>> = events.iter().map(Ev::encode).collect();
        let (outcome, seen) = h[usize::from(!small)].stream(stream_answer(&frames, &cuts));
        documented(&outcome)?;
        let want = expect(&events, cap, false);
        agrees(&outcome, &want)?;
        if want == Expect::NoStopReason {
            // One messageStop, without a stop reason: the reply is incomplete.
            prop_assert_eq!(
                code(&outcome),
                "model_reply_incomplete",
                "{}",
                brief(&outcome)
            );
        }
        if let Ok(reply) = outcome {
            same_content(&reply.content, &blocks)?;
            prop_assert_eq!(reply.usage, usage.unwrap_or_default());
            let text: String = blocks
                .iter()
                .filter_map(|b| match b {
                    Want::Text(parts) => Some(parts.concat()),
                    Want::Tool { .. } => None,
                })
                .collect();
            prop_assert_eq!(seen, text, "the text passed on as it streamed");
        }
        Ok(())
    });
}

fn any_event() -> impl Strategy<Value = Ev> {
    let index = 0..3i32;
    prop_oneof![
        1 => Just(Ev::MessageStart),
        2 => (index.clone(), prop::sample::select(vec!["tooluse_a", "tooluse_b"]))
            .prop_map(|(index, id)| Ev::BlockStart { index, id: id.into(), name: "top_song".into() }),
        4 => (index.clone(), text_part()).prop_map(|(index, text)| Ev::TextDelta { index, text }),
        3 => (index.clone(), tool_input()).prop_map(|(index, input)| Ev::ToolDelta { index, input }),
        2 => index.prop_map(|index| Ev::BlockStop { index }),
        2 => stop_reason().prop_map(Ev::MessageStop),
        1 => usage().prop_map(Ev::Metadata),
        1 => Just(Ev::Unknown),
        1 => (
            prop::sample::select(vec![
                "throttlingException",
                "validationException",
                "modelStreamErrorException",
                "internalServerException",
                "serviceUnavailableException",
                "someNewException",
            ]),
            "[a-z ]{0,20}",
        )
            .prop_map(|(kind, message)| Ev::Exception { kind, message }),
        1 => prop::sample::select(vec!["payload", "message-type", "event-type"]).prop_map(Ev::Unreadable),
    ]
}

/// Damage to the bytes of a stream.
#[derive(Clone, Debug)]
enum Damage {
    None,
    Flip(Index, u8),
    Truncate(Index),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        1 => Just(Damage::None),
        1 => (any::<Index>(), 1..=255u8).prop_map(|(i, x)| Damage::Flip(i, x)),
        1 => any::<Index>().prop_map(Damage::Truncate),
    ]
}

#[test]
fn frames_in_any_order_and_damaged_get_a_documented_outcome_and_a_reply_only_after_an_intact_message_stop()
 {
    let h = [Harness::new(SMALL_CAP), Harness::new(LARGE_CAP)];
    let events = prop_oneof![
        prop::collection::vec(any_event(), 0..12),
        (
            prop::collection::vec(want(), 0..3),
            stop_reason(),
            prop::option::of(usage())
        )
            .prop_map(|(b, s, u)| well_formed(&b, &s, u)),
    ];
    let strategy = (events, damage(), any::<bool>(), cuts());
    check(256, strategy, |(events, damage, small, cuts)| {
        let cap = if small { SMALL_CAP } else { LARGE_CAP };
        let frames: Vec<Vec<u8>> = events.iter().map(Ev::encode).collect();
        let mut body = frames.concat();
        // Where each frame ends, to know which arrive intact.
        let ends: Vec<usize> = frames
            .iter()
            .scan(0, |end, f| {
                *end += f.len();
                Some(*end)
            })
            .collect();
        let (intact, cut_short) = match damage {
            Damage::Flip(i, x) if !body.is_empty() => {
                let at = i.index(body.len());
                body[at] ^= x;
                (ends.iter().take_while(|e| **e <= at).count(), true)
            }
            Damage::Truncate(i) => {
                let at = i.index(body.len() + 1);
                body.truncate(at);
                let intact = ends.iter().take_while(|e| **e <= at).count();
                (intact, at != if intact == 0 { 0 } else { ends[intact - 1] })
            }
            _ => (events.len(), false),
        };
        let answer = Answer::new(200, Some(EVENTSTREAM), body, &cuts);
        let (outcome, _) = h[usize::from(!small)].stream(answer);
        documented(&outcome)?;
        if outcome.is_ok() {
            prop_assert!(
                events[..intact]
                    .iter()
                    .any(|e| matches!(e, Ev::MessageStop(r) if valid_stop(r))),
                "a reply without an intact messageStop: {}",
                brief(&outcome)
            );
        }
        agrees(&outcome, &expect(&events[..intact], cap, cut_short))
    });
}

// ---- The minimal inputs of bugs the properties found (fixed), kept as regression tests ----

fn frames(events: &[Ev]) -> Vec<Vec<u8>> {
    events.iter().map(Ev::encode).collect()
}

/// Found by the properties above (fixed): `"stopReason": ""` is read
/// as a reply whose stop reason is empty, by Converse and by ConverseStream alike. Minimal
/// inputs: the Converse body `{"output": {"message": {"role": "assistant", "content": []}},
/// "stopReason": ""}`; the frames `messageStart`, `messageStop {"stopReason": ""}`.
#[test]
fn regression_an_empty_stop_reason_is_an_incomplete_reply() {
    let h = Harness::new(LARGE_CAP);
    let body =
        json!({"output": {"message": {"role": "assistant", "content": []}}, "stopReason": ""});
    let outcome = h.converse(Answer::new(
        200,
        Some("application/json"),
        serde_json::to_vec(&body).unwrap(),
        &[],
    ));
    assert_eq!(
        code(&outcome),
        "model_reply_incomplete",
        "{}",
        brief(&outcome)
    );
    let events = [Ev::MessageStart, Ev::MessageStop(Some(String::new()))];
    let (outcome, _) = h.stream(stream_answer(&frames(&events), &[]));
    assert_eq!(
        code(&outcome),
        "model_reply_incomplete",
        "{}",
        brief(&outcome)
    );
}

/// Found by the properties above (fixed): a streamed `messageStop` without `stopReason` (payload `{}`)
/// is read as a reply whose stop reason is the SDK's placeholder "no value was set"; the
/// Converse path checks for the placeholder, the stream path does not. Minimal input: the
/// frames `messageStart`, `messageStop {}`.
#[test]
fn regression_a_streamed_message_stop_without_a_stop_reason_is_an_incomplete_reply() {
    let h = Harness::new(LARGE_CAP);
    let events = [Ev::MessageStart, Ev::MessageStop(None)];
    let (outcome, _) = h.stream(stream_answer(&frames(&events), &[]));
    assert_eq!(
        code(&outcome),
        "model_reply_incomplete",
        "{}",
        brief(&outcome)
    );
}

/// Found by the properties above (fixed): the cap on a Converse reply is skipped when the response
/// says `content-type: application/vnd.amazon.eventstream` (the interceptor tells streams by
/// that header, which the server chooses), so a 10 kB Converse body passes a 4096-byte cap.
/// Minimal input: HTTP 200, that content type, a valid Converse body with 10,000 bytes of text.
#[test]
fn regression_a_converse_reply_labelled_as_an_event_stream_is_still_capped() {
    let h = Harness::new(SMALL_CAP);
    let body = converse_body(
        &[Want::Text(vec!["a".repeat(10_000)])],
        &Some("end_turn".into()),
        Usage::default(),
    );
    let outcome = h.converse(Answer::new(
        200,
        Some(EVENTSTREAM),
        serde_json::to_vec(&body).unwrap(),
        &[],
    ));
    assert_eq!(
        code(&outcome),
        "model_reply_too_large",
        "{}",
        brief(&outcome)
    );
}

/// Found by the properties above (fixed): a stream
/// cut exactly 12 bytes into a frame, right after its prelude, ends as if it were whole,
/// because the decoder has taken the prelude out of the receiver's buffer and the receiver
/// only reports bytes left in that buffer. Cut inside the `metadata` frame after
/// `messageStop`, the runtime answers with a reply whose usage is lost (zero tokens counted
/// against the invocation's limit); cut inside `messageStop`, it says "incomplete" where the
/// body is unreadable. Minimal input: `messageStart`, `contentBlockDelta "Hello"`,
/// `contentBlockStop`, `messageStop end_turn`, then the first 12 bytes of `metadata`.
#[test]
fn regression_a_stream_cut_right_after_a_frame_prelude_is_unreadable() {
    let h = Harness::new(LARGE_CAP);
    let events = well_formed(
        &[Want::Text(vec!["Hello".into()])],
        &Some("end_turn".into()),
        Some(Usage {
            input_tokens: 5,
            output_tokens: 7,
            ..Usage::default()
        }),
    );
    let frames = frames(&events);
    for cut in [frames.len() - 1, frames.len() - 2] {
        let mut body = frames[..cut].concat();
        body.extend_from_slice(&frames[cut][..12]);
        let (outcome, _) = h.stream(Answer::new(200, Some(EVENTSTREAM), body, &[]));
        assert_eq!(
            code(&outcome),
            "bedrock_bad_response",
            "cut 12 bytes into {:?}: {}",
            events[cut],
            brief(&outcome)
        );
    }
}
