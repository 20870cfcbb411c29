//! The loop driven with model replies alone.

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
            ..Usage::default()
        },
        request_id: None,
        first_chunk: None,
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
            ..Usage::default()
        },
        request_id: None,
        first_chunk: None,
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
        request_id: None,
        first_chunk: None,
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

#[test]
fn a_resumed_turn_counts_the_model_calls_and_tokens_made_before_the_crash() {
    let saved = vec![Message::user_text("Top song?")];
    let used = Usage {
        input_tokens: 10,
        output_tokens: 5,
        ..Usage::default()
    };
    let mut fresh = Loop::resumed(saved.clone(), limits(), 3, used);
    assert_eq!(fresh.start(), Next::CallModel);
    assert_eq!((fresh.iterations(), fresh.usage()), (3, used));
    let mut spent = Loop::resumed(saved.clone(), limits(), 4, used);
    assert_eq!(spent.start(), Next::Done(StopReason::MaxIterations));
    let over = Usage {
        input_tokens: 1000,
        ..Usage::default()
    };
    let mut broke = Loop::resumed(saved, limits(), 1, over);
    assert_eq!(broke.start(), Next::Done(StopReason::TokenBudget));
}

fn calls_of(named: &[(&str, &str)]) -> ModelReply {
    ModelReply {
        content: named
            .iter()
            .map(|(id, name)| {
                Block::ToolUse(ToolUse {
                    tool_use_id: (*id).into(),
                    name: (*name).into(),
                    input: json!({}),
                })
            })
            .collect(),
        ..tool_call(&[])
    }
}

#[test]
fn a_round_with_a_call_that_needs_approval_waits_whole_for_the_calls_that_need_it() {
    let needs = |n: &str| n == "book";
    let mut l = Loop::new(vec![], Some("Book it."), limits());
    let next = l.on_model_reply(calls_of(&[("t1", "top_song"), ("t2", "book")]));
    let Next::AwaitApproval(held) = l.gate(next, needs, true) else {
        panic!("the round ran");
    };
    assert_eq!(
        held.iter()
            .map(|c| c.tool_use_id.as_str())
            .collect::<Vec<_>>(),
        ["t2"]
    );
    // A round without such a call runs as before.
    let mut l = Loop::new(vec![], Some("Song?"), limits());
    let next = l.on_model_reply(calls_of(&[("t1", "top_song")]));
    assert!(matches!(l.gate(next, needs, true), Next::RunTools(c) if c.len() == 1));
}

#[test]
fn without_a_session_a_call_that_needs_approval_is_answered_as_not_run_and_the_rest_run() {
    let mut l = Loop::new(vec![], Some("Book it."), limits());
    let next = l.on_model_reply(calls_of(&[("t1", "book"), ("t2", "top_song")]));
    let Next::RunTools(run) = l.gate(next, |n| n == "book", false) else {
        panic!("not run");
    };
    assert_eq!(run.len(), 1);
    assert_eq!(run[0].tool_use_id, "t2");
    assert_eq!(l.on_tool_results(vec![ok("t2")]), Next::CallModel);
    let last = l.messages().last().unwrap();
    assert_eq!(
        last.content,
        [
            Block::ToolResult(ToolResult::error("t1", unapprovable_message("book"))),
            Block::ToolResult(ok("t2")),
        ]
    );
}

#[test]
fn a_decided_round_runs_the_approved_and_undecided_calls_and_answers_the_denied_with_the_reason() {
    let mut waiting = Loop::new(vec![], Some("Book it."), limits());
    waiting.on_model_reply(calls_of(&[
        ("t1", "top_song"),
        ("t2", "book"),
        ("t3", "pay"),
    ]));
    let messages = waiting.into_messages();
    let decisions = [
        ("t2".to_string(), Decision::Approve),
        ("t3".to_string(), Decision::Deny(Some("too much".into()))),
    ];
    let used = Usage {
        input_tokens: 20,
        output_tokens: 10,
        ..Usage::default()
    };
    let mut l = Loop::decided(messages, limits(), 1, used, &decisions);
    let Next::RunTools(run) = l.start() else {
        panic!("nothing to run");
    };
    assert_eq!(
        run.iter()
            .map(|c| c.tool_use_id.as_str())
            .collect::<Vec<_>>(),
        ["t1", "t2"]
    );
    assert_eq!(l.iterations(), 1);
    assert_eq!(l.on_tool_results(vec![ok("t2"), ok("t1")]), Next::CallModel);
    let last = l.messages().last().unwrap();
    assert_eq!(
        last.content,
        [
            Block::ToolResult(ok("t1")),
            Block::ToolResult(ok("t2")),
            Block::ToolResult(ToolResult::error(
                "t3",
                denied_message("pay", Some("too much"))
            )),
        ]
    );
    assert_eq!(
        denied_message("pay", Some("  ")),
        "a person denied this call to tool pay; it was not run. No reason was given."
    );
    assert_eq!(StopReason::ApprovalRequired.as_str(), "approval_required");
    assert!(!StopReason::ApprovalRequired.answered());
}
