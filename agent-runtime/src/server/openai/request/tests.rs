use serde_json::{Value, json};

use super::*;

const BOUNDS: Bounds<'static> = Bounds {
    agent: "radio",
    max_tokens: 1024,
};

fn ok(body: Value) -> ChatRequest {
    parse(body.to_string().as_bytes(), BOUNDS).unwrap_or_else(|e| panic!("{e:?}"))
}

fn refused(body: Value) -> (Option<String>, &'static str, String) {
    match parse(body.to_string().as_bytes(), BOUNDS) {
        Err(RequestError::Invalid {
            param,
            code,
            message,
        }) => (param, code, message),
        other => panic!("not refused as invalid: {other:?}"),
    }
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

#[test]
fn system_and_developer_messages_become_system_text_in_order_and_turns_the_conversation() {
    let r = ok(json!({"model": "radio", "messages": [
        {"role": "system", "content": "Answer in French."},
        user("hi"),
        {"role": "assistant", "content": [{"type": "text", "text": "Bonjour"}]},
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
        user("top song?"),
    ]}));
    assert_eq!(r.overrides.system, vec!["Answer in French.", "Be brief."]);
    assert_eq!(
        r.messages,
        vec![
            Message::user_text("hi"),
            Message {
                role: Role::Assistant,
                content: vec![Block::Text("Bonjour".into())]
            },
            Message::user_text("top song?"),
        ]
    );
    assert!(!r.stream && !r.include_usage);
    assert_eq!(
        (r.overrides.max_tokens, r.overrides.temperature),
        (None, None)
    );
}

#[test]
fn consecutive_user_turns_merge_into_one_message_of_several_blocks() {
    let r = ok(json!({"model": "radio", "messages": [user("one"), user("two")]}));
    assert_eq!(
        r.messages,
        vec![Message {
            role: Role::User,
            content: vec![Block::Text("one".into()), Block::Text("two".into())]
        }]
    );
}

#[test]
fn max_tokens_and_temperature_within_the_agents_bounds_apply_to_the_invocation() {
    let r = ok(json!({"model": "radio", "messages": [user("hi")],
        "max_completion_tokens": 1024, "temperature": 0.5, "n": 1, "stream": true,
        "stream_options": {"include_usage": true}, "user": "u-1", "seed": 3}));
    assert_eq!(r.overrides.max_tokens, Some(1024));
    assert_eq!(r.overrides.temperature, Some(0.5));
    assert!(r.stream && r.include_usage);
    assert_eq!(
        ok(json!({"model": "radio", "messages": [user("hi")], "max_tokens": 7}))
            .overrides
            .max_tokens,
        Some(7)
    );
}

#[test]
fn out_of_bounds_values_are_refused_naming_the_field_and_the_bound() {
    let (param, _, message) =
        refused(json!({"model": "radio", "messages": [user("hi")], "max_tokens": 1025}));
    assert_eq!(param.as_deref(), Some("max_tokens"));
    assert!(message.contains("1 to 1024"), "{message}");
    let (param, _, message) =
        refused(json!({"model": "radio", "messages": [user("hi")], "temperature": 1.5}));
    assert_eq!(param.as_deref(), Some("temperature"));
    assert!(message.contains("0 to 1"), "{message}");
    let (param, code, _) = refused(json!({"model": "radio", "messages": [user("hi")], "n": 2}));
    assert_eq!((param.as_deref(), code), (Some("n"), "unsupported_value"));
}

#[test]
fn client_tools_and_tool_messages_are_refused_because_the_agent_owns_its_tools() {
    let tools =
        json!([{"type": "function", "function": {"name": "x", "parameters": {"type": "object"}}}]);
    let (param, code, message) =
        refused(json!({"model": "radio", "messages": [user("hi")], "tools": tools}));
    assert_eq!(
        (param.as_deref(), code),
        (Some("tools"), "unsupported_parameter")
    );
    assert!(message.contains("owns its tools"), "{message}");
    let (param, _, _) = refused(json!({"model": "radio", "messages": [
        user("hi"),
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1"}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]}));
    assert_eq!(param.as_deref(), Some("messages[1].tool_calls"));
    let (param, _, _) = refused(json!({"model": "radio", "messages": [
        user("hi"), {"role": "tool", "content": "42"}]}));
    assert_eq!(param.as_deref(), Some("messages[1].role"));
}

#[test]
fn image_parts_are_refused_with_the_index_of_the_part() {
    let (param, code, _) = refused(json!({"model": "radio", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:"}}]}]}));
    assert_eq!(
        (param.as_deref(), code),
        (
            Some("messages[0].content[1].type"),
            "unsupported_content_type"
        )
    );
}

#[test]
fn another_model_is_not_found_and_a_missing_model_is_invalid() {
    let e = parse(
        json!({"model": "gpt-4o", "messages": [user("hi")]})
            .to_string()
            .as_bytes(),
        BOUNDS,
    )
    .unwrap_err();
    assert!(matches!(e, RequestError::ModelNotFound { ref asked, .. } if asked == "gpt-4o"));
    assert!(e.to_string().contains("`radio`"), "{e}");
    let (param, code, _) = refused(json!({"messages": [user("hi")]}));
    assert_eq!(
        (param.as_deref(), code),
        (Some("model"), "missing_required_parameter")
    );
}

#[test]
fn unknown_parameters_are_refused_and_defaults_of_unsupported_ones_accepted() {
    let (param, code, message) =
        refused(json!({"model": "radio", "messages": [user("hi")], "fancy": 1}));
    assert_eq!(
        (param.as_deref(), code),
        (Some("fancy"), "unknown_parameter")
    );
    assert!(message.contains("Unrecognized request argument supplied: fancy"));
    let (param, _, _) = refused(json!({"model": "radio", "messages": [user("hi")], "top_p": 0.9}));
    assert_eq!(param.as_deref(), Some("top_p"));
    let (param, _, _) =
        refused(json!({"model": "radio", "messages": [user("hi")], "presence_penalty": 0.5}));
    assert_eq!(param.as_deref(), Some("presence_penalty"));
    ok(
        json!({"model": "radio", "messages": [user("hi")], "presence_penalty": 0,
        "logprobs": false, "response_format": {"type": "text"}, "tools": null, "stop": null}),
    );
}

#[test]
fn stream_options_need_stream() {
    let (param, _, _) = refused(json!({"model": "radio", "messages": [user("hi")],
        "stream_options": {"include_usage": true}}));
    assert_eq!(param.as_deref(), Some("stream_options"));
}

#[test]
fn the_conversation_must_start_and_end_with_a_user_turn_and_hold_text() {
    let (param, _, _) = refused(json!({"model": "radio", "messages": [
        {"role": "assistant", "content": "hi"}, user("hi")]}));
    assert_eq!(param.as_deref(), Some("messages[0]"));
    let (param, _, message) = refused(json!({"model": "radio", "messages": [
        user("hi"), {"role": "assistant", "content": "hello"}]}));
    assert_eq!(param.as_deref(), Some("messages"));
    assert!(
        message.contains("last message must be a user message"),
        "{message}"
    );
    let (param, _, _) = refused(json!({"model": "radio", "messages": [
        {"role": "system", "content": "only a system prompt"}]}));
    assert_eq!(param.as_deref(), Some("messages"));
    let (param, _, _) = refused(json!({"model": "radio", "messages": [user("  ")]}));
    assert_eq!(param.as_deref(), Some("messages[0].content"));
}

#[test]
fn on_a_session_the_new_user_messages_are_the_input_and_a_resent_conversation_is_refused() {
    let r = ok(json!({"model": "radio", "messages": [
        {"role": "system", "content": "Answer in French."},
        user("one"),
        {"role": "user", "content": [{"type": "text", "text": "two"}]},
    ]}));
    assert_eq!(session_turn(&r, "H").unwrap(), "one\n\ntwo");
    assert_eq!(r.overrides.system, vec!["Answer in French."]);
    let resent = ok(json!({"model": "radio", "messages": [
        user("hi"),
        {"role": "assistant", "content": "Bonjour"},
        user("top song?"),
    ]}));
    match session_turn(&resent, "X-Agentry-Session-Id") {
        Err(RequestError::Invalid { param, message, .. }) => {
            assert_eq!(param.as_deref(), Some("messages[1]"));
            assert!(
                message.contains("send only the new user message"),
                "{message}"
            );
        }
        other => panic!("not refused: {other:?}"),
    }
}
