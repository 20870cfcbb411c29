//! The tool-use loop as a state machine, without I/O: given the conversation and the model's
//! reply, it decides the next step (call tools, call the model again, or stop and why). The
//! invocation drives it, doing the I/O at the edges; the tests drive it with replies alone.

use std::collections::HashSet;

use agentry_crds::limits::EffectiveLimits;
use serde::Serialize;

use crate::conversation::{Block, Message, Role, ToolResult, ToolUse, Usage};

/// Why an invocation ended.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its answer.
    EndTurn,
    /// The model hit `maxTokens` in one reply.
    MaxTokens,
    /// The model produced a stop sequence.
    StopSequence,
    /// A guardrail intervened.
    GuardrailIntervened,
    /// Content filters stopped the reply.
    ContentFiltered,
    /// `limits.maxIterations` model calls were made.
    MaxIterations,
    /// `limits.maxTokensPerInvocation` was used up.
    TokenBudget,
    /// The invocation deadline passed.
    Deadline,
    /// Any other stop reason Bedrock reports, as it names it.
    #[serde(untagged)]
    Other(String),
}

impl StopReason {
    /// Whether the model finished its answer (rather than a limit stopping it).
    pub fn answered(&self) -> bool {
        matches!(self, Self::EndTurn | Self::StopSequence)
    }

    /// From Bedrock's `stopReason` (not `tool_use`, which continues the loop).
    pub fn from_model(reason: &str) -> Self {
        match reason {
            "end_turn" => Self::EndTurn,
            "max_tokens" => Self::MaxTokens,
            "stop_sequence" => Self::StopSequence,
            "guardrail_intervened" => Self::GuardrailIntervened,
            "content_filtered" => Self::ContentFiltered,
            other => Self::Other(other.to_string()),
        }
    }

    /// The name clients see.
    pub fn as_str(&self) -> &str {
        match self {
            Self::EndTurn => "end_turn",
            Self::MaxTokens => "max_tokens",
            Self::StopSequence => "stop_sequence",
            Self::GuardrailIntervened => "guardrail_intervened",
            Self::ContentFiltered => "content_filtered",
            Self::MaxIterations => "max_iterations",
            Self::TokenBudget => "token_budget",
            Self::Deadline => "deadline",
            Self::Other(s) => s,
        }
    }
}

/// A model reply, already translated from the SDK.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelReply {
    /// The assistant message's blocks.
    pub content: Vec<Block>,
    /// Bedrock's `stopReason`.
    pub stop_reason: String,
    /// Tokens of this call.
    pub usage: Usage,
    /// The AWS request id of the call, when Bedrock gave one.
    pub request_id: Option<String>,
    /// For a streamed reply, how long after the request its first chunk came.
    pub first_chunk: Option<std::time::Duration>,
}

/// What to do next.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// Call the model with [`Loop::messages`].
    CallModel,
    /// Run these tool calls and report with [`Loop::on_tool_results`].
    RunTools(Vec<ToolUse>),
    /// Stop.
    Done(StopReason),
}

/// The loop's state for one invocation.
#[derive(Clone, Debug)]
pub struct Loop {
    limits: EffectiveLimits,
    messages: Vec<Message>,
    iterations: u32,
    usage: Usage,
    pending: Vec<ToolUse>,
    last_text: String,
}

impl Loop {
    /// Starts from the client's earlier `history` plus its new `input` (if any).
    pub fn new(history: Vec<Message>, input: Option<&str>, limits: EffectiveLimits) -> Self {
        let mut messages = history;
        if let Some(text) = input.filter(|t| !t.is_empty()) {
            messages.push(Message::user_text(text));
        }
        Self {
            limits,
            messages,
            iterations: 0,
            usage: Usage::default(),
            pending: vec![],
            last_text: String::new(),
        }
    }

    /// Continues a turn that was interrupted: `messages` is the conversation as it was saved
    /// (history, the turn's input and its messages since, the last a tool-results message),
    /// after `iterations` model calls that used `usage`, which count toward the limits.
    pub fn resumed(
        messages: Vec<Message>,
        limits: EffectiveLimits,
        iterations: u32,
        usage: Usage,
    ) -> Self {
        Self {
            limits,
            messages,
            iterations,
            usage,
            pending: vec![],
            last_text: String::new(),
        }
    }

    /// The first step.
    pub fn start(&self) -> Next {
        self.call_model_or_stop()
    }

    /// The conversation to send to the model.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The conversation at the end (what a session keeps).
    pub fn into_messages(self) -> Vec<Message> {
        self.messages
    }

    /// Model calls so far.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Tokens so far.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// The text of the latest assistant reply: the answer when the loop ends.
    pub fn output(&self) -> &str {
        &self.last_text
    }

    fn call_model_or_stop(&self) -> Next {
        if self.iterations >= self.limits.max_iterations {
            Next::Done(StopReason::MaxIterations)
        } else if self.usage.total() >= self.limits.max_tokens_per_invocation {
            Next::Done(StopReason::TokenBudget)
        } else {
            Next::CallModel
        }
    }

    /// Takes the model's reply and decides the next step.
    pub fn on_model_reply(&mut self, reply: ModelReply) -> Next {
        self.iterations += 1;
        self.usage.add(reply.usage);
        // Bedrock refuses empty text blocks (and empty messages) when the conversation is sent
        // back, so they are dropped here rather than sent on. It also needs exactly one result
        // per toolUse id: a later toolUse repeating an id is dropped (and not run), so each
        // call keeps its own result.
        let mut ids = HashSet::new();
        let content: Vec<Block> = reply
            .content
            .into_iter()
            .filter(|b| match b {
                Block::Text(t) => !t.is_empty(),
                Block::ToolUse(u) => {
                    let first = ids.insert(u.tool_use_id.clone());
                    if !first {
                        tracing::warn!(tool_use_id = %u.tool_use_id, tool = %u.name, "the model repeated a toolUse id; the repeated call is dropped");
                    }
                    first
                }
                Block::ToolResult(_) => true,
            })
            .collect();
        let message = Message {
            role: Role::Assistant,
            content,
        };
        self.last_text = message.text();
        let uses = message.tool_uses();
        if !message.content.is_empty() {
            self.messages.push(message);
        }
        if reply.stop_reason != "tool_use" || uses.is_empty() {
            let reason = if reply.stop_reason == "tool_use" {
                "end_turn"
            } else {
                reply.stop_reason.as_str()
            };
            return Next::Done(StopReason::from_model(reason));
        }
        // A tool round trip needs another model call: stop now if none is allowed, rather
        // than run tools whose results nobody will read.
        if let Next::Done(reason) = self.call_model_or_stop() {
            return Next::Done(reason);
        }
        self.pending = uses.clone();
        Next::RunTools(uses)
    }

    /// Takes the results of the pending tool calls (in any order) and decides the next step.
    /// Every pending call gets exactly one result: a missing one becomes an error result, and
    /// results for calls that were not pending are dropped, so no toolUse is ever unpaired.
    pub fn on_tool_results(&mut self, results: Vec<ToolResult>) -> Next {
        let pending = std::mem::take(&mut self.pending);
        let mut seen = HashSet::new();
        let mut blocks = Vec::with_capacity(pending.len());
        for call in &pending {
            let result = results
                .iter()
                .find(|r| r.tool_use_id == call.tool_use_id)
                .cloned()
                .unwrap_or_else(|| {
                    ToolResult::error(
                        &call.tool_use_id,
                        format!("tool {} returned no result", call.name),
                    )
                });
            if seen.insert(call.tool_use_id.clone()) {
                blocks.push(Block::ToolResult(result));
            }
        }
        self.messages.push(Message {
            role: Role::User,
            content: blocks,
        });
        self.call_model_or_stop()
    }

    /// Records that the deadline passed; the loop ends with [`StopReason::Deadline`].
    pub fn deadline(&mut self) -> Next {
        self.pending.clear();
        Next::Done(StopReason::Deadline)
    }
}

#[cfg(test)]
mod tests;
