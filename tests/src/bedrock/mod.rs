//! A Bedrock Runtime imitation for tests and benchmarks, speaking the real wire format to the
//! real `aws-sdk-bedrockruntime` client (pointed at it with `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`
//! or an endpoint override):
//!
//! - `POST /model/{modelId}/converse`: Converse JSON;
//! - `POST /model/{modelId}/converse-stream`: ConverseStream event-stream frames, split across
//!   HTTP chunks at uneven offsets, as a real network delivers them;
//! - AWS error responses (`x-amzn-errortype` header, `message` body) and mid-stream exceptions.
//!
//! Each test scripts the model's turns in order ([`Script`]); the same turn is rendered as JSON
//! or as a stream, whichever the client asked for. Every request is captured for assertions.

pub mod eventstream;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

/// One block of a model turn.
#[derive(Clone, Debug)]
pub enum Block {
    /// Text.
    Text(String),
    /// A tool call with JSON input.
    ToolUse {
        /// `toolUseId`.
        id: String,
        /// Tool name.
        name: String,
        /// Input.
        input: Value,
    },
    /// A tool call whose streamed input is this raw (possibly malformed) JSON text.
    RawToolUse {
        /// `toolUseId`.
        id: String,
        /// Tool name.
        name: String,
        /// The input text, streamed in fragments.
        raw: String,
    },
}

/// One scripted model turn.
#[derive(Clone, Debug)]
pub struct Turn {
    /// Content blocks, in order.
    pub blocks: Vec<Block>,
    /// `stopReason`.
    pub stop_reason: String,
    /// Input and output tokens.
    pub usage: (u64, u64),
}

impl Turn {
    /// A text answer that ends the turn.
    pub fn text(text: &str) -> Self {
        Self {
            blocks: vec![Block::Text(text.into())],
            stop_reason: "end_turn".into(),
            usage: (10, 5),
        }
    }

    /// A request for one or more tool calls: `(id, name, input)`.
    pub fn tools(calls: &[(&str, &str, Value)]) -> Self {
        Self {
            blocks: calls
                .iter()
                .map(|(id, name, input)| Block::ToolUse {
                    id: (*id).into(),
                    name: (*name).into(),
                    input: input.clone(),
                })
                .collect(),
            stop_reason: "tool_use".into(),
            usage: (20, 10),
        }
    }

    /// The same turn with other usage figures.
    pub fn with_usage(mut self, input: u64, output: u64) -> Self {
        self.usage = (input, output);
        self
    }
}

/// What the server does for one request.
#[derive(Clone, Debug)]
pub enum Script {
    /// Answer with this turn.
    Turn(Turn),
    /// Answer with this Converse JSON body, verbatim (e.g. an AWS documentation example).
    Json(Value),
    /// Fail with an AWS error: HTTP status, error code (e.g. `ThrottlingException`), message.
    Error(u16, String, String),
    /// On a stream: send the first events of this turn, then an exception frame
    /// (`throttlingException`, ...).
    StreamException(Turn, String),
    /// Wait, then do the inner step.
    Delay(Duration, Box<Script>),
    /// Answer with exactly this: status, headers, body (an HTML page, truncated JSON, nothing).
    Raw(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// On a stream: send these event-stream frames (see [`stream_frames`]), as they are.
    Frames(Vec<Vec<u8>>),
}

impl Script {
    /// A throttling error (HTTP 429), which the SDK retries.
    pub fn throttled() -> Self {
        Self::Error(
            429,
            "ThrottlingException".into(),
            "Too many requests, please wait before trying again.".into(),
        )
    }
}

/// A captured request.
#[derive(Clone, Debug)]
pub struct Captured {
    /// The model id, percent-decoded.
    pub model_id: String,
    /// Whether it was ConverseStream.
    pub stream: bool,
    /// The JSON body.
    pub body: Value,
}

/// Answers a request the script does not cover.
type Fallback = Box<dyn Fn(&Value) -> Script + Send + Sync>;

#[derive(Default)]
struct Inner {
    script: Mutex<VecDeque<Script>>,
    /// When the script runs out, answer every request with this (for benchmarks).
    fallback: Mutex<Option<Fallback>>,
    captured: Mutex<Vec<Captured>>,
}

/// A running Bedrock imitation.
#[derive(Clone)]
pub struct FakeBedrock {
    inner: Arc<Inner>,
    /// Its address.
    pub addr: SocketAddr,
}

impl FakeBedrock {
    /// Starts it on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        // A deep backlog: benchmarks open a thousand connections at once.
        let listener = agentry_runtime::listener::bind(([127, 0, 0, 1], 0).into(), 4096)?;
        let addr = listener.local_addr()?;
        let fake = Self {
            inner: Arc::default(),
            addr,
        };
        let app = Router::new()
            .route("/model/{model}/converse", post(converse))
            .route("/model/{model}/converse-stream", post(converse_stream))
            .with_state(fake.clone());
        // No Nagle delay: streamed frames go out as they are written, as from Bedrock.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(fake)
    }

    /// The endpoint URL to give the SDK.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The environment of an `agentry-runtime` process that should talk to this server: the
    /// endpoint override, test credentials and region, and no instance-metadata lookups.
    pub fn process_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", self.url()),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE".into()),
            (
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            ),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// Appends steps to the script.
    pub fn push(&self, steps: impl IntoIterator<Item = Script>) {
        lock(&self.inner.script).extend(steps);
    }

    /// Answers every request beyond the script with `f(request body)`.
    pub fn fallback(&self, f: impl Fn(&Value) -> Script + Send + Sync + 'static) {
        *lock(&self.inner.fallback) = Some(Box::new(f));
    }

    /// The requests so far.
    pub fn captured(&self) -> Vec<Captured> {
        lock(&self.inner.captured).clone()
    }

    fn next(&self, model_id: String, stream: bool, body: Value) -> Script {
        let step = lock(&self.inner.script)
            .pop_front()
            .or_else(|| lock(&self.inner.fallback).as_ref().map(|f| f(&body)));
        lock(&self.inner.captured).push(Captured {
            model_id,
            stream,
            body,
        });
        step.unwrap_or_else(|| {
            Script::Error(
                500,
                "InternalServerException".into(),
                "the test script has no reply left".into(),
            )
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn error_response(status: u16, code: &str, message: &str) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .header(
            "x-amzn-errortype",
            format!("{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        )
        .header("x-amzn-requestid", "00000000-0000-0000-0000-000000000000")
        .body(Body::from(json!({"message": message}).to_string()))
        .unwrap_or_default()
}

/// The Converse JSON body of a turn.
pub fn converse_body(turn: &Turn) -> Value {
    let content: Vec<Value> = turn
        .blocks
        .iter()
        .map(|b| match b {
            Block::Text(t) => json!({"text": t}),
            Block::ToolUse { id, name, input } => {
                json!({"toolUse": {"toolUseId": id, "name": name, "input": input}})
            }
            // Converse returns parsed input; a raw text that is not JSON comes back as a string.
            Block::RawToolUse { id, name, raw } => {
                let input = serde_json::from_str(raw).unwrap_or(Value::String(raw.clone()));
                json!({"toolUse": {"toolUseId": id, "name": name, "input": input}})
            }
        })
        .collect();
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": turn.stop_reason,
        "usage": {"inputTokens": turn.usage.0, "outputTokens": turn.usage.1, "totalTokens": turn.usage.0 + turn.usage.1},
        "metrics": {"latencyMs": 1}
    })
}

/// Splits `s` into pieces of at most `n` characters.
fn pieces(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

/// The ConverseStream frames of a turn; with `cut`, only the first `cut` frames.
pub fn stream_frames(turn: &Turn, cut: Option<usize>) -> Vec<Vec<u8>> {
    use eventstream::event;
    let mut frames = vec![event("messageStart", &json!({"role": "assistant"}))];
    for (i, b) in turn.blocks.iter().enumerate() {
        match b {
            // A text block starts with its first delta: no contentBlockStart.
            Block::Text(t) => {
                for p in pieces(t, 7) {
                    frames.push(event(
                        "contentBlockDelta",
                        &json!({"contentBlockIndex": i, "delta": {"text": p}}),
                    ));
                }
            }
            Block::ToolUse { id, name, .. } | Block::RawToolUse { id, name, .. } => {
                let raw = match b {
                    Block::ToolUse { input, .. } => input.to_string(),
                    Block::RawToolUse { raw, .. } => raw.clone(),
                    Block::Text(_) => String::new(),
                };
                frames.push(event("contentBlockStart", &json!({"contentBlockIndex": i, "start": {"toolUse": {"toolUseId": id, "name": name}}})));
                for p in pieces(&raw, 5) {
                    frames.push(event(
                        "contentBlockDelta",
                        &json!({"contentBlockIndex": i, "delta": {"toolUse": {"input": p}}}),
                    ));
                }
            }
        }
        frames.push(event("contentBlockStop", &json!({"contentBlockIndex": i})));
    }
    frames.push(event(
        "messageStop",
        &json!({"stopReason": turn.stop_reason}),
    ));
    frames.push(event(
        "metadata",
        &json!({"usage": {"inputTokens": turn.usage.0, "outputTokens": turn.usage.1, "totalTokens": turn.usage.0 + turn.usage.1}, "metrics": {"latencyMs": 1}}),
    ));
    if let Some(n) = cut {
        frames.truncate(n);
    }
    frames
}

/// Re-chunks `frames` so HTTP chunk boundaries fall inside frames (uneven sizes).
fn chunked(frames: Vec<Vec<u8>>) -> Vec<Bytes> {
    let all: Vec<u8> = frames.concat();
    let mut out = Vec::new();
    let mut at = 0;
    let mut size = 13;
    while at < all.len() {
        let end = (at + size).min(all.len());
        out.push(Bytes::copy_from_slice(&all[at..end]));
        at = end;
        size = if size > 90 { 13 } else { size * 2 + 1 };
    }
    out
}

fn stream_response(chunks: Vec<Bytes>) -> Response {
    let body = futures::stream::iter(chunks.into_iter().map(Ok::<_, std::convert::Infallible>));
    Response::builder()
        .status(200)
        .header("content-type", "application/vnd.amazon.eventstream")
        .header("x-amzn-requestid", "00000000-0000-0000-0000-000000000000")
        .body(Body::from_stream(body))
        .unwrap_or_default()
}

async fn run(step: Script, stream: bool) -> Response {
    let mut step = step;
    while let Script::Delay(d, inner) = step {
        tokio::time::sleep(d).await;
        step = *inner;
    }
    match (step, stream) {
        (Script::Error(status, code, message), _) => error_response(status, &code, &message),
        (Script::Turn(turn), false) => Response::builder()
            .header("content-type", "application/json")
            .header("x-amzn-requestid", "00000000-0000-0000-0000-000000000000")
            .body(Body::from(converse_body(&turn).to_string()))
            .unwrap_or_default(),
        (Script::Json(body), _) => Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap_or_default(),
        (Script::Turn(turn), true) => stream_response(chunked(stream_frames(&turn, None))),
        (Script::StreamException(turn, kind), true) => {
            let mut frames = stream_frames(&turn, Some(3));
            frames.push(eventstream::exception(
                &kind,
                "Too many requests, please wait before trying again.",
            ));
            stream_response(chunked(frames))
        }
        (Script::StreamException(..), false) => error_response(
            500,
            "InternalServerException",
            "stream exception scripted for a Converse call",
        ),
        (Script::Raw(status, headers, body), _) => {
            let mut r = Response::builder()
                .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.body(Body::from(body)).unwrap_or_default()
        }
        (Script::Frames(frames), _) => stream_response(chunked(frames)),
        (Script::Delay(..), _) => error_response(500, "InternalServerException", "unreachable"),
    }
}

async fn converse(
    State(fake): State<FakeBedrock>,
    Path(model): Path<String>,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let step = fake.next(model, false, body);
    run(step, false).await
}

async fn converse_stream(
    State(fake): State<FakeBedrock>,
    Path(model): Path<String>,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let step = fake.next(model, true, body);
    run(step, true).await
}

/// The tool-use exchange of the AWS Bedrock user guide ("Call a tool with the Converse API"):
/// the model's first reply, asking for `top_song` with `{"sign": "WZPZ"}`. Ids and content follow
/// the guide; the usage and latency figures are illustrative.
pub fn aws_docs_tool_use_reply() -> Value {
    json!({
        "output": {"message": {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "top_song", "input": {"sign": "WZPZ"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 375, "outputTokens": 42, "totalTokens": 417},
        "metrics": {"latencyMs": 2203}
    })
}

/// The `top_song` tool's input schema, as the guide defines it.
pub fn aws_docs_top_song_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"sign": {"type": "string", "description": "The call sign for the radio station for which you want the most popular song. Example calls signs are WZPZ and WKRP."}},
        "required": ["sign"]
    })
}

/// The model's final reply in the same AWS example.
pub fn aws_docs_final_reply() -> Value {
    json!({
        "output": {"message": {"role": "assistant", "content": [
            {"text": "The most popular song on WZPZ is Elemental Hotel by 8 Storey Hike."}
        ]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 434, "outputTokens": 20, "totalTokens": 454},
        "metrics": {"latencyMs": 1067}
    })
}
