//! One invocation: drives the [`Loop`](crate::machine::Loop) with real I/O — model calls under
//! the invocation deadline, a reply's tool calls run concurrently — and reports progress as
//! [`Event`]s for streaming clients.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agentry_crds::runtime_config::RuntimeConfig;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

use opentelemetry::context::FutureExt as _;

use crate::bedrock::{Bedrock, BedrockError, Overrides};
use crate::conversation::{Message, ResultStatus, ToolUse, Usage};
use crate::machine::{Loop, Next, StopReason};
use crate::metrics::Metrics;
use crate::session::Sessions;
use crate::telemetry::{Telemetry, Trace};
use crate::tools::{CallContext, Toolbox};

pub mod approval;
pub mod compaction;
mod pending;
pub mod resume;
pub mod session;
use pending::{Call, Pending};

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
    /// Traces.
    pub telemetry: Telemetry,
    /// Sessions, when the Agent has memory.
    pub sessions: Option<Sessions>,
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
    /// The request id, for the log.
    pub request_id: String,
    /// Changes to the model settings for this invocation (a protocol's system messages,
    /// `max_tokens`, `temperature`), within the Agent's bounds.
    pub overrides: Overrides,
    /// The invocation's span (or the caller's trace context): the parent of its model and
    /// tool call spans.
    pub trace: Trace,
}

/// Counts of an invocation so far, shared with whoever reports on it: the access log reads
/// them even when the invocation was cancelled midway.
#[derive(Default, Debug)]
pub struct Progress {
    model_calls: AtomicU32,
    tool_calls: AtomicU32,
    input_tokens: AtomicU64,
    cached_input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    /// The last model reply's input (cached part included) plus output: what the
    /// conversation weighs now, as the model counted it.
    context_tokens: AtomicU64,
}

/// A reading of [`Progress`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgressSnapshot {
    /// Model calls made, an abandoned one included.
    pub model_calls: u32,
    /// Tool calls made.
    pub tool_calls: u32,
    /// Input tokens (Bedrock's `inputTokens`: without the prompt cache's).
    pub input_tokens: u64,
    /// Input tokens read from or written to the prompt cache.
    pub cached_input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

impl Progress {
    /// The counts now.
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            model_calls: self.model_calls.load(Ordering::Relaxed),
            tool_calls: self.tool_calls.load(Ordering::Relaxed),
            input_tokens: self.input_tokens.load(Ordering::Relaxed),
            cached_input_tokens: self.cached_input_tokens.load(Ordering::Relaxed),
            output_tokens: self.output_tokens.load(Ordering::Relaxed),
        }
    }

    /// The last model reply's input (cached part included) plus output; 0 before any reply.
    pub fn context_tokens(&self) -> u64 {
        self.context_tokens.load(Ordering::Relaxed)
    }
}

/// Progress of a streaming invocation: each is one Server-Sent Event, named by
/// [`Event::name`], its data the variant's fields in camelCase.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum Event {
    /// Model text, as it arrives (`text`).
    Text {
        /// The new text.
        delta: String,
    },
    /// A tool call began (`tool_call_started`).
    ToolStarted {
        /// Tool name.
        name: String,
        /// Call id.
        tool_use_id: String,
    },
    /// A tool call ended (`tool_call_finished`).
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

impl Event {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::ToolStarted { .. } => "tool_call_started",
            Self::ToolFinished { .. } => "tool_call_finished",
        }
    }
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
    /// Model calls made, one abandoned at the deadline included.
    pub iterations: u32,
    /// Tokens used.
    pub usage: Usage,
    /// Tool calls made, in order.
    pub tool_calls: Vec<ToolCallSummary>,
    /// With `stopReason: approval_required`: the calls of the model's last reply that wait for
    /// a decision (`toolUseId`, `name`, `input`); its other calls run with the approved ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_approvals: Vec<ToolUse>,
    /// The text of each model reply that had any, in order (the last is `output` when the
    /// final reply had text): what a stream showed, for protocols that answer with all of it.
    #[serde(skip)]
    pub texts: Vec<String>,
}

fn send(events: &Option<UnboundedSender<Event>>, e: Event) {
    if let Some(tx) = events {
        // A client that went away does not stop the invocation; its events are dropped.
        let _ = tx.send(e);
    }
}

/// Runs one invocation to its end, counting its calls and tokens in `progress`; its log lines
/// carry the invocation's trace.
pub async fn invoke(
    rt: &Runtime,
    req: Request,
    events: Option<UnboundedSender<Event>>,
    progress: &Progress,
) -> Result<Summary, BedrockError> {
    converse(rt, req, events, progress).await.map(|(s, _)| s)
}

/// Like [`invoke`], also giving the conversation as it ended: the request's messages, then
/// the new ones (what a session commits).
pub async fn converse(
    rt: &Runtime,
    req: Request,
    events: Option<UnboundedSender<Event>>,
    progress: &Progress,
) -> Result<(Summary, Vec<Message>), BedrockError> {
    if req.trace.is_empty() {
        return run(rt, req, events, progress).await;
    }
    let cx = req.trace.context().clone();
    run(rt, req, events, progress).with_context(cx).await
}

/// Saves the turn so far where the loop could be resumed from (a session's checkpoint): after
/// a model reply that calls tools, before they run, and after each round of tool results.
pub trait Saver: Sync {
    /// Why a save failed; it ends the invocation.
    type Error: Send;
    /// Saves the conversation `messages` after `model_calls` model calls that used `usage`
    /// (the saver knows which of them it has saved already). The future owns what it writes.
    fn save<'a>(
        &'a self,
        messages: &[Message],
        model_calls: u32,
        usage: Usage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + use<'a, Self>;

    /// Whether the turn can stop to wait for approvals (a session keeps it meanwhile).
    fn can_wait(&self) -> bool {
        false
    }
}

/// Saves nothing: a stateless invocation.
struct Unsaved;

impl Saver for Unsaved {
    type Error = std::convert::Infallible;
    fn save<'a>(
        &'a self,
        _: &[Message],
        _: u32,
        _: Usage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + use<'a> {
        std::future::ready(Ok(()))
    }
}

/// Why a saved invocation ended without a summary.
#[derive(Debug)]
pub enum Halt<E> {
    /// The model call failed.
    Model(BedrockError),
    /// A save failed (nothing runs after it).
    Save(E),
}

/// Like [`converse`], from `state` (a new or a resumed turn), saving the turn through
/// `saver` as it goes.
pub async fn converse_saving<S: Saver>(
    rt: &Runtime,
    req: Request,
    state: Loop,
    saver: &S,
    events: Option<UnboundedSender<Event>>,
    progress: &Progress,
) -> Result<(Summary, Vec<Message>), Halt<S::Error>> {
    if req.trace.is_empty() {
        return drive(rt, req, state, saver, events, progress).await;
    }
    let cx = req.trace.context().clone();
    drive(rt, req, state, saver, events, progress)
        .with_context(cx)
        .await
}

async fn run(
    rt: &Runtime,
    mut req: Request,
    events: Option<UnboundedSender<Event>>,
    progress: &Progress,
) -> Result<(Summary, Vec<Message>), BedrockError> {
    let history = std::mem::take(&mut req.messages);
    let state = Loop::new(history, req.input.as_deref(), rt.config.limits);
    match drive(rt, req, state, &Unsaved, events, progress).await {
        Ok(done) => Ok(done),
        Err(Halt::Model(e)) => Err(e),
        Err(Halt::Save(never)) => match never {},
    }
}

/// Waits for a save in flight, if there is one.
async fn saved<E>(save: Option<impl Future<Output = Result<(), E>>>) -> Result<(), E> {
    match save {
        Some(save) => save.await,
        None => Ok(()),
    }
}

async fn drive<S: Saver>(
    rt: &Runtime,
    req: Request,
    mut state: Loop,
    saver: &S,
    events: Option<UnboundedSender<Event>>,
    progress: &Progress,
) -> Result<(Summary, Vec<Message>), Halt<S::Error>> {
    // A round's results are saved while the next model call runs (awaited with it): losing
    // that save to a crash only makes the round's calls count as interrupted on resume.
    let mut saving = None;
    let mut tool_calls = Vec::new();
    let mut texts = Vec::new();
    let mut pending_approvals = Vec::new();
    let mut next = state.start();
    let model = rt.config.model.id.as_str();
    loop {
        next = match next {
            Next::Done(stop_reason) => {
                saved(saving.take()).await.map_err(Halt::Save)?;
                let summary = Summary {
                    output: state.output().to_string(),
                    stop_reason,
                    iterations: progress.model_calls.load(Ordering::Relaxed),
                    usage: state.usage(),
                    tool_calls,
                    texts,
                    pending_approvals,
                };
                return Ok((summary, state.into_messages()));
            }
            Next::AwaitApproval(calls) => {
                // The reply and its calls are the checkpoint a decision continues from.
                saved(saving.take()).await.map_err(Halt::Save)?;
                saver
                    .save(state.messages(), state.iterations(), state.usage())
                    .await
                    .map_err(Halt::Save)?;
                pending_approvals = calls;
                Next::Done(StopReason::ApprovalRequired)
            }
            Next::CallModel => {
                let remaining = req.deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    // A caller's deadline already spent: no model call can finish in time.
                    state.deadline()
                } else {
                    progress.model_calls.fetch_add(1, Ordering::Relaxed);
                    let span = rt.telemetry.chat(
                        &req.trace,
                        || rt.bedrock.settings(&req.overrides),
                        state.messages(),
                    );
                    let pending = Pending::new(&rt.metrics, Call::Model(model), span.clone());
                    let offered = rt.tools.offered();
                    let call = async {
                        if req.stream {
                            rt.bedrock
                                .converse_stream(state.messages(), &offered, &req.overrides, |t| {
                                    send(
                                        &events,
                                        Event::Text {
                                            delta: t.to_string(),
                                        },
                                    )
                                })
                                .await
                        } else {
                            rt.bedrock
                                .converse(state.messages(), &offered, &req.overrides)
                                .await
                        }
                    };
                    let (save, reply) =
                        tokio::join!(saved(saving.take()), tokio::time::timeout(remaining, call));
                    save.map_err(Halt::Save)?;
                    match reply {
                        Err(_) => {
                            pending.model_failed(&req.request_id, None, "");
                            state.deadline()
                        }
                        Ok(Err(e)) => {
                            pending.model_failed(&req.request_id, Some(&e), "");
                            return Err(Halt::Model(e));
                        }
                        Ok(Ok(reply)) => {
                            rt.metrics
                                .model_reply(reply.usage, pending.started.elapsed());
                            if let Some(d) = reply.first_chunk {
                                rt.metrics.first_chunk(d);
                            }
                            rt.telemetry.chat_reply(
                                &span,
                                &reply.content,
                                &reply.stop_reason,
                                reply.usage,
                                reply.request_id.as_deref(),
                            );
                            pending.ended("success");
                            rt.metrics.tokens(model, reply.usage);
                            progress
                                .input_tokens
                                .fetch_add(reply.usage.input_tokens, Ordering::Relaxed);
                            progress.cached_input_tokens.fetch_add(
                                reply.usage.cache_read_input_tokens
                                    + reply.usage.cache_write_input_tokens,
                                Ordering::Relaxed,
                            );
                            progress
                                .output_tokens
                                .fetch_add(reply.usage.output_tokens, Ordering::Relaxed);
                            let u = reply.usage;
                            progress.context_tokens.store(
                                u.input_tokens
                                    + u.cache_read_input_tokens
                                    + u.cache_write_input_tokens
                                    + u.output_tokens,
                                Ordering::Relaxed,
                            );
                            let next = state.on_model_reply(reply);
                            let next = state.gate(
                                next,
                                |name| rt.tools.needs_approval(name),
                                saver.can_wait(),
                            );
                            if !state.output().is_empty() {
                                texts.push(state.output().to_string());
                            }
                            next
                        }
                    }
                }
            }
            Next::RunTools(calls) => {
                // Before any tool runs: a resume then knows these calls may have happened and
                // never runs them again.
                saver
                    .save(state.messages(), state.iterations(), state.usage())
                    .await
                    .map_err(Halt::Save)?;
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
                progress.tool_calls.fetch_add(
                    u32::try_from(calls.len()).unwrap_or(u32::MAX),
                    Ordering::Relaxed,
                );
                let outcomes = futures::future::join_all(calls.iter().map(|c| async {
                    let span = rt
                        .telemetry
                        .execute_tool(&req.trace, c, || rt.tools.kind_of(&c.name));
                    let pending = Pending::new(&rt.metrics, Call::Tool(&c.name), span.clone());
                    let headers = span.headers();
                    let call = rt.tools.call(c, ctx, &headers);
                    let outcome = if span.is_empty() {
                        call.await
                    } else {
                        call.with_context(span.context().clone()).await
                    };
                    rt.telemetry.tool_result(&span, &outcome.result);
                    pending.ended("");
                    outcome
                }))
                .await;
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
                    let next = state.on_tool_results(results);
                    saving = Some(saver.save(state.messages(), state.iterations(), state.usage()));
                    next
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
