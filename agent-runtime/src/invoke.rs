//! One invocation: drives the [`Loop`](crate::machine::Loop) with real I/O — model calls under
//! the invocation deadline, a reply's tool calls run concurrently — and reports progress as
//! [`Event`]s for streaming clients.

use std::time::{Duration, Instant};

use agentry_crds::runtime_config::RuntimeConfig;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

use crate::bedrock::{Bedrock, BedrockError};
use crate::conversation::{Message, ResultStatus, Usage};
use crate::machine::{Loop, Next, StopReason};
use crate::metrics::Metrics;
use crate::tools::{CallContext, Toolbox};

/// Everything an invocation needs, built once at start.
pub struct Runtime {
    /// The configuration.
    pub config: RuntimeConfig,
    /// The model.
    pub bedrock: Bedrock,
    /// The tools.
    pub tools: Toolbox,
    /// Metrics.
    pub metrics: Metrics,
}

/// What the client asked.
#[derive(Clone, Debug)]
pub struct Request {
    /// New user input.
    pub input: Option<String>,
    /// The conversation so far, held by the client.
    pub messages: Vec<Message>,
    /// Agent-to-agent hops before this invocation.
    pub depth: u32,
    /// When it must end.
    pub deadline: Instant,
    /// Stream text as it arrives (ConverseStream).
    pub stream: bool,
}

/// Progress of a streaming invocation.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Event {
    /// Model text, as it arrives.
    #[serde(rename = "text")]
    Text {
        /// The new text.
        delta: String,
    },
    /// A tool call began.
    #[serde(rename = "tool_call_started")]
    ToolStarted {
        /// Tool name.
        name: String,
        /// Call id.
        tool_use_id: String,
    },
    /// A tool call ended.
    #[serde(rename = "tool_call_finished")]
    ToolFinished {
        /// Tool name.
        name: String,
        /// Call id.
        tool_use_id: String,
        /// `success` or `error`.
        status: &'static str,
        /// Duration.
        duration_ms: u64,
    },
}

/// One tool call, for the summary.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallSummary {
    /// Tool name.
    pub name: String,
    /// `success` or `error`.
    pub status: &'static str,
    /// Duration.
    pub duration_ms: u64,
}

/// The answer: the response body of `/v1/invoke`, and the final streamed event.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// The model's final text.
    pub output: String,
    /// Why it ended.
    pub stop_reason: StopReason,
    /// Model calls made.
    pub iterations: u32,
    /// Tokens used.
    pub usage: Usage,
    /// Tool calls made, in order.
    pub tool_calls: Vec<ToolCallSummary>,
}

fn send(events: &Option<UnboundedSender<Event>>, e: Event) {
    if let Some(tx) = events {
        // A client that went away does not stop the invocation; its events are dropped.
        let _ = tx.send(e);
    }
}

/// Runs one invocation to its end.
pub async fn invoke(
    rt: &Runtime,
    req: Request,
    events: Option<UnboundedSender<Event>>,
) -> Result<Summary, BedrockError> {
    let mut state = Loop::new(req.messages, req.input.as_deref(), rt.config.limits);
    let mut tool_calls = Vec::new();
    let mut next = state.start();
    let model = rt.config.model.id.as_str();
    loop {
        next = match next {
            Next::Done(stop_reason) => {
                return Ok(Summary {
                    output: state.output().to_string(),
                    stop_reason,
                    iterations: state.iterations(),
                    usage: state.usage(),
                    tool_calls,
                });
            }
            Next::CallModel => {
                let remaining = req.deadline.saturating_duration_since(Instant::now());
                let started = Instant::now();
                let offered = rt.tools.offered();
                let call = async {
                    if req.stream {
                        rt.bedrock
                            .converse_stream(state.messages(), &offered, |t| {
                                send(
                                    &events,
                                    Event::Text {
                                        delta: t.to_string(),
                                    },
                                )
                            })
                            .await
                    } else {
                        rt.bedrock.converse(state.messages(), &offered).await
                    }
                };
                match tokio::time::timeout(remaining, call).await {
                    Err(_) => {
                        rt.metrics
                            .bedrock_call(model, "deadline", started.elapsed());
                        state.deadline()
                    }
                    Ok(Err(e)) => {
                        rt.metrics
                            .bedrock_call(model, e.category(), started.elapsed());
                        return Err(e);
                    }
                    Ok(Ok(reply)) => {
                        rt.metrics.bedrock_call(model, "success", started.elapsed());
                        rt.metrics.tokens(model, reply.usage);
                        state.on_model_reply(reply)
                    }
                }
            }
            Next::RunTools(calls) => {
                let ctx = CallContext {
                    depth: req.depth,
                    deadline: req.deadline,
                };
                for c in &calls {
                    send(
                        &events,
                        Event::ToolStarted {
                            name: c.name.clone(),
                            tool_use_id: c.tool_use_id.clone(),
                        },
                    );
                }
                let outcomes =
                    futures::future::join_all(calls.iter().map(|c| rt.tools.call(c, ctx))).await;
                let mut results = Vec::with_capacity(outcomes.len());
                for (c, o) in calls.iter().zip(outcomes) {
                    let status = if o.result.status == Some(ResultStatus::Error) {
                        "error"
                    } else {
                        "success"
                    };
                    let duration_ms = u64::try_from(o.duration.as_millis()).unwrap_or(u64::MAX);
                    rt.metrics.tool_call(&c.name, status, o.duration);
                    send(
                        &events,
                        Event::ToolFinished {
                            name: c.name.clone(),
                            tool_use_id: c.tool_use_id.clone(),
                            status,
                            duration_ms,
                        },
                    );
                    tool_calls.push(ToolCallSummary {
                        name: c.name.clone(),
                        status,
                        duration_ms,
                    });
                    results.push(o.result);
                }
                if Instant::now() >= req.deadline {
                    state.deadline()
                } else {
                    state.on_tool_results(results)
                }
            }
        };
    }
}

/// The deadline of a request: the Agent's own, shortened by a caller's remaining one.
pub fn deadline(config: &RuntimeConfig, caller_ms: Option<u64>) -> Instant {
    let own = Duration::from_secs(u64::from(config.limits.timeout_seconds));
    let d = caller_ms
        .map(Duration::from_millis)
        .map_or(own, |c| c.min(own));
    Instant::now() + d
}
