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

    /// The first step.
    pub fn start(&self) -> Next {
        self.call_model_or_stop()
    }

    /// The conversation to send to the model.
    pub fn messages(&self) -> &[Message] {
        &self.messages
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
mod tests {
    use serde_json::json;

    use super::*;
    use crate::conversation::{ResultContent, ResultStatus};

    fn limits() -> EffectiveLimits {
        EffectiveLimits {
            max_iterations: 4,
            max_tokens_per_invocation: 1000,
            ..EffectiveLimits::default()
        }
    }

    fn text(t: &str) -> ModelReply {
        ModelReply {
            content: vec![Block::Text(t.into())],
            stop_reason: "end_turn".into(),
            usage: Usage {
                input_tokens: 10,
                output_tokens: 5,
            },
        }
    }

    fn tool_call(ids: &[&str]) -> ModelReply {
        ModelReply {
            content: ids
                .iter()
                .map(|id| {
                    Block::ToolUse(ToolUse {
                        tool_use_id: (*id).into(),
                        name: "top_song".into(),
                        input: json!({"sign": "WZPZ"}),
                    })
                })
                .collect(),
            stop_reason: "tool_use".into(),
            usage: Usage {
                input_tokens: 20,
                output_tokens: 10,
            },
        }
    }

    fn ok(id: &str) -> ToolResult {
        ToolResult {
            tool_use_id: id.into(),
            content: vec![ResultContent::Text("Elemental Hotel".into())],
            status: Some(ResultStatus::Success),
        }
    }

    #[test]
    fn a_plain_answer_ends_the_turn_with_its_text() {
        let mut l = Loop::new(vec![], Some("hi"), limits());
        assert_eq!(l.start(), Next::CallModel);
        assert_eq!(
            l.on_model_reply(text("Hello!")),
            Next::Done(StopReason::EndTurn)
        );
        assert_eq!(l.output(), "Hello!");
        assert_eq!((l.iterations(), l.usage().total()), (1, 15));
    }

    #[test]
    fn one_tool_round_trip_pairs_the_result_with_the_call() {
        let mut l = Loop::new(vec![], Some("top song on WZPZ?"), limits());
        let Next::RunTools(calls) = l.on_model_reply(tool_call(&["t1"])) else {
            panic!()
        };
        assert_eq!(calls[0].tool_use_id, "t1");
        assert_eq!(l.on_tool_results(vec![ok("t1")]), Next::CallModel);
        let last = l.messages().last().unwrap();
        assert_eq!(last.role, Role::User);
        assert!(matches!(&last.content[0], Block::ToolResult(r) if r.tool_use_id == "t1"));
        assert_eq!(
            l.on_model_reply(text("Elemental Hotel by 8 Storey Hike.")),
            Next::Done(StopReason::EndTurn)
        );
        assert_eq!(l.messages().len(), 4);
    }

    #[test]
    fn two_calls_in_one_reply_get_one_user_message_with_both_results_in_call_order() {
        let mut l = Loop::new(vec![], Some("q"), limits());
        l.on_model_reply(tool_call(&["a", "b"]));
        l.on_tool_results(vec![ok("b"), ok("a")]);
        let ids: Vec<_> = l
            .messages()
            .last()
            .unwrap()
            .content
            .iter()
            .map(|b| match b {
                Block::ToolResult(r) => r.tool_use_id.clone(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn a_missing_result_becomes_an_error_result_and_a_stray_one_is_dropped() {
        let mut l = Loop::new(vec![], Some("q"), limits());
        l.on_model_reply(tool_call(&["a", "b"]));
        l.on_tool_results(vec![ok("a"), ok("zzz")]);
        let last = l.messages().last().unwrap();
        assert_eq!(last.content.len(), 2);
        assert!(
            matches!(&last.content[1], Block::ToolResult(r) if r.tool_use_id == "b" && r.is_error())
        );
    }

    #[test]
    fn a_repeated_tool_use_id_runs_once_and_gets_one_result() {
        let mut l = Loop::new(vec![], Some("q"), limits());
        let mut reply = tool_call(&["a", "a"]);
        if let Block::ToolUse(u) = &mut reply.content[1] {
            u.name = "other".into();
        }
        let Next::RunTools(calls) = l.on_model_reply(reply) else {
            panic!()
        };
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "top_song");
        assert_eq!(l.messages().last().unwrap().tool_uses().len(), 1);
        l.on_tool_results(vec![ok("a")]);
        let last = l.messages().last().unwrap();
        assert_eq!(last.content.len(), 1);
        assert!(matches!(&last.content[0], Block::ToolResult(r) if !r.is_error()));
    }

    #[test]
    fn max_iterations_stops_before_running_tools_whose_results_could_not_be_used() {
        let mut l = Loop::new(
            vec![],
            Some("q"),
            EffectiveLimits {
                max_iterations: 2,
                ..limits()
            },
        );
        l.on_model_reply(tool_call(&["a"]));
        l.on_tool_results(vec![ok("a")]);
        assert_eq!(
            l.on_model_reply(tool_call(&["b"])),
            Next::Done(StopReason::MaxIterations)
        );
        assert_eq!(l.iterations(), 2);
    }

    #[test]
    fn token_budget_stops_the_loop_with_its_own_reason() {
        let mut l = Loop::new(
            vec![],
            Some("q"),
            EffectiveLimits {
                max_tokens_per_invocation: 50,
                ..limits()
            },
        );
        l.on_model_reply(tool_call(&["a"]));
        assert_eq!(l.on_tool_results(vec![ok("a")]), Next::CallModel);
        assert_eq!(
            l.on_model_reply(tool_call(&["b"])),
            Next::Done(StopReason::TokenBudget)
        );
    }

    #[test]
    fn model_stop_reasons_are_reported_as_they_are() {
        for (r, want) in [
            ("max_tokens", StopReason::MaxTokens),
            ("guardrail_intervened", StopReason::GuardrailIntervened),
            ("content_filtered", StopReason::ContentFiltered),
            ("stop_sequence", StopReason::StopSequence),
            (
                "malformed_tool_use",
                StopReason::Other("malformed_tool_use".into()),
            ),
        ] {
            let mut l = Loop::new(vec![], Some("q"), limits());
            let reply = ModelReply {
                stop_reason: r.into(),
                ..text("partial")
            };
            assert_eq!(l.on_model_reply(reply), Next::Done(want.clone()));
            assert_eq!(want.as_str(), r);
        }
    }

    #[test]
    fn empty_content_and_tool_use_without_tool_blocks_do_not_break_the_loop() {
        let mut l = Loop::new(vec![], Some("q"), limits());
        let empty = ModelReply {
            content: vec![Block::Text(String::new())],
            stop_reason: "tool_use".into(),
            usage: Usage::default(),
        };
        assert_eq!(l.on_model_reply(empty), Next::Done(StopReason::EndTurn));
        assert_eq!(l.messages().len(), 1, "no empty assistant message is kept");
    }

    #[test]
    fn a_client_history_is_continued() {
        let history = vec![
            Message::user_text("My sign is WZPZ."),
            Message {
                role: Role::Assistant,
                content: vec![Block::Text("Noted.".into())],
            },
        ];
        let l = Loop::new(history, Some("Top song?"), limits());
        assert_eq!(l.messages().len(), 3);
    }

    #[test]
    fn stop_reasons_serialize_to_their_names() {
        assert_eq!(
            serde_json::to_value(StopReason::TokenBudget).unwrap(),
            json!("token_budget")
        );
        assert_eq!(
            serde_json::to_value(StopReason::Other("x_y".into())).unwrap(),
            json!("x_y")
        );
    }
}
