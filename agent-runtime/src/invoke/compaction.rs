//! Context compaction of a session invocation, the I/O side: when the history plus the new
//! input would pass `memory.maxContextTokens` ([`compact::plan`]), one Converse call asks the
//! model for a summary of the oldest turns. It is a model call like the loop's: under the
//! invocation deadline, counted in the Bedrock, token and cost metrics, the invocation's
//! usage and `iterations`, with a `chat` span. Nothing is stored here: the summary is written
//! by the turn's commit ([`crate::session::Commit::compacted_turn`]).

use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::Serialize;

use super::pending::{Call, Pending};
use super::{Progress, Request, Runtime};
use crate::bedrock::Overrides;
use crate::conversation::{Message, Usage};
use crate::machine::StopReason;
use crate::session::{Compacted, compact};
use crate::tools::Offered;

/// What the answer reports when a compaction was saved with the turn (`compaction`).
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Messages of the oldest turns the summary replaced.
    pub summarized_messages: usize,
    /// Messages of the history kept verbatim after the summary.
    pub kept_messages: usize,
    /// The estimate that passed the limit: the history's tokens plus the new input's.
    pub estimated_tokens: u64,
    /// `memory.maxContextTokens`.
    pub max_context_tokens: u64,
    /// Tokens of the summary call (also counted in the invocation's `usage`).
    pub usage: Usage,
}

/// A compaction tried before the loop.
#[derive(Debug)]
pub struct Attempt {
    /// Tokens of the summary call (zero when none was made).
    pub usage: Usage,
    /// The summary and its report, or why there is none: the `outcome` label of
    /// `session_compactions_total` (bounded: `newest_turn_only`, `not_a_summary`, `deadline`
    /// or a Bedrock error category).
    pub result: Result<(Compacted, Report), &'static str>,
}

/// Compacts `history` (the session's messages as the model sees them, weighing `recorded`
/// tokens by the last turn's count) before `req`'s input when they would pass `max` tokens;
/// `None` when they fit.
pub async fn attempt(
    rt: &Runtime,
    req: &Request,
    history: &[Message],
    recorded: u64,
    max: u64,
    progress: &Progress,
) -> Option<Attempt> {
    let history_tokens = compact::history_tokens(recorded, history);
    let input_tokens = req.input.as_deref().map_or(0, compact::text_tokens);
    let summarize = match compact::plan(history, history_tokens, input_tokens, max) {
        compact::Plan::Fits => return None,
        compact::Plan::NewestTurnOnly => {
            return Some(Attempt {
                usage: Usage::default(),
                result: Err("newest_turn_only"),
            });
        }
        compact::Plan::Compact { summarize } => summarize,
    };
    let (usage, summary) = summarise(rt, req, &history[..summarize], progress).await;
    let result = summary.map(|summary| {
        let report = Report {
            summarized_messages: summarize,
            kept_messages: history.len() - summarize,
            estimated_tokens: history_tokens + input_tokens,
            max_context_tokens: max,
            usage,
        };
        (
            Compacted {
                summarized: summarize,
                summary,
            },
            report,
        )
    });
    if let Err(outcome) = result {
        tracing::warn!(
            request_id = %req.request_id,
            outcome,
            "context compaction failed: the invocation runs on the whole history, which stays as it was"
        );
    }
    Some(Attempt { usage, result })
}

/// The one summary call: its usage, and the summary or why there is none.
async fn summarise(
    rt: &Runtime,
    req: &Request,
    old: &[Message],
    progress: &Progress,
) -> (Usage, Result<String, &'static str>) {
    let remaining = req.deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return (Usage::default(), Err("deadline"));
    }
    let model = rt.config.model.id.as_str();
    let messages = compact::request(old);
    // The Agent's system prompt, model settings and guardrail, but no tools: the transcript
    // is text, and a summary needs none.
    let overrides = Overrides::default();
    progress.model_calls.fetch_add(1, Ordering::Relaxed);
    let span = rt
        .telemetry
        .chat(&req.trace, || rt.bedrock.settings(&overrides), &messages);
    let pending = Pending::new(&rt.metrics, Call::Model(model), span.clone());
    let no_tools = Offered::default();
    let call = rt.bedrock.converse(&messages, &no_tools, &overrides);
    let reply = match tokio::time::timeout(remaining, call).await {
        Err(_) => {
            pending.model_failed(&req.request_id, None, "");
            return (Usage::default(), Err("deadline"));
        }
        Ok(Err(e)) => {
            pending.model_failed(&req.request_id, Some(&e), " (context compaction)");
            return (Usage::default(), Err(e.category()));
        }
        Ok(Ok(reply)) => reply,
    };
    rt.metrics
        .model_reply(reply.usage, pending.started.elapsed());
    rt.telemetry.chat_reply(
        &span,
        &reply.content,
        &reply.stop_reason,
        reply.usage,
        reply.request_id.as_deref(),
    );
    pending.ended("success");
    rt.metrics.tokens(model, reply.usage);
    let u = reply.usage;
    progress
        .input_tokens
        .fetch_add(u.input_tokens, Ordering::Relaxed);
    progress.cached_input_tokens.fetch_add(
        u.cache_read_input_tokens + u.cache_write_input_tokens,
        Ordering::Relaxed,
    );
    progress
        .output_tokens
        .fetch_add(u.output_tokens, Ordering::Relaxed);
    let text = Message {
        role: crate::conversation::Role::Assistant,
        content: reply.content,
    }
    .text();
    // A cut-off (max_tokens) or filtered reply is not a summary to replace history with.
    if !StopReason::from_model(&reply.stop_reason).answered() || text.trim().is_empty() {
        return (u, Err("not_a_summary"));
    }
    (u, Ok(text.trim().to_string()))
}
