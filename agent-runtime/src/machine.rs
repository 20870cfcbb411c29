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
    /// The model asked for a tool whose calls wait for a person's approval: the turn is kept
    /// in the session until the calls are decided.
    ApprovalRequired,
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
            Self::ApprovalRequired => "approval_required",
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
    /// Stop until a person decides these calls (of the last reply, whose whole round waits,
    /// see [`Loop::gate`]); the turn continues with [`Loop::decided`].
    AwaitApproval(Vec<ToolUse>),
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
    /// Results of pending calls that are not run (denied, or refused for want of a session):
    /// they join the run calls' results.
    settled: Vec<ToolResult>,
    /// The first step of a turn continued after a decision: run the approved calls.
    first: Option<Vec<ToolUse>>,
    last_text: String,
}

/// A person's decision on one call that waited for approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run it.
    Approve,
    /// Do not run it; the model gets an error result with the reason.
    Deny(Option<String>),
}

/// What the model is told for a call a person denied.
pub fn denied_message(tool: &str, reason: Option<&str>) -> String {
    match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => format!("a person denied this call to tool {tool}; it was not run. Reason: {r}"),
        None => format!(
            "a person denied this call to tool {tool}; it was not run. No reason was given."
        ),
    }
}

/// What the model is told for a call that needs approval in an invocation without a session
/// (nothing could keep the turn while a person decides).
pub fn unapprovable_message(tool: &str) -> String {
    format!(
        "tool {tool} runs only after a person approves the call, which needs a session (the client sends a sessionId); it was not run"
    )
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
            settled: vec![],
            first: None,
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
            settled: vec![],
            first: None,
            last_text: String::new(),
        }
    }

    /// Continues a turn that waited for approval: `messages` ends with the model reply whose
    /// calls were held, `decisions` has one per call that needed approval (by id; a call of
    /// the round without one did not need it and runs). The first step runs the approved
    /// calls; the denied ones get an error result each ([`denied_message`]).
    pub fn decided(
        messages: Vec<Message>,
        limits: EffectiveLimits,
        iterations: u32,
        usage: Usage,
        decisions: &[(String, Decision)],
    ) -> Self {
        let calls = messages
            .last()
            .filter(|m| m.role == Role::Assistant)
            .map(Message::tool_uses)
            .unwrap_or_default();
        let mut approved = vec![];
        let mut settled = vec![];
        for c in &calls {
            match decisions
                .iter()
                .find(|(id, _)| *id == c.tool_use_id)
                .map(|(_, d)| d)
            {
                Some(Decision::Approve) | None => approved.push(c.clone()),
                Some(Decision::Deny(reason)) => settled.push(ToolResult::error(
                    &c.tool_use_id,
                    denied_message(&c.name, reason.as_deref()),
                )),
            }
        }
        let mut state = Self::resumed(messages, limits, iterations, usage);
        state.pending = calls;
        state.settled = settled;
        state.first = Some(approved);
        state
    }

    /// The first step.
    pub fn start(&mut self) -> Next {
        match self.first.take() {
            Some(approved) => Next::RunTools(approved),
            None => self.call_model_or_stop(),
        }
    }

    /// Holds a round for approval: when `next` runs calls of which any `needs` approval, the
    /// whole round waits ([`Next::AwaitApproval`] with the calls that need it; the others run
    /// with the approved ones) if the turn `can_wait` (a session keeps it); otherwise those calls are answered with an error result
    /// ([`unapprovable_message`]) and the others run. Any other step passes through.
    pub fn gate(&mut self, next: Next, needs: impl Fn(&str) -> bool, can_wait: bool) -> Next {
        let Next::RunTools(calls) = next else {
            return next;
        };
        if !calls.iter().any(|c| needs(&c.name)) {
            return Next::RunTools(calls);
        }
        if can_wait {
            return Next::AwaitApproval(calls.into_iter().filter(|c| needs(&c.name)).collect());
        }
        let (held, run): (Vec<ToolUse>, Vec<ToolUse>) =
            calls.into_iter().partition(|c| needs(&c.name));
        self.settled.extend(
            held.iter()
                .map(|c| ToolResult::error(&c.tool_use_id, unapprovable_message(&c.name))),
        );
        Next::RunTools(run)
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
    pub fn on_tool_results(&mut self, mut results: Vec<ToolResult>) -> Next {
        let pending = std::mem::take(&mut self.pending);
        results.append(&mut self.settled);
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
        self.settled.clear();
        Next::Done(StopReason::Deadline)
    }
}

#[cfg(test)]
mod tests;
