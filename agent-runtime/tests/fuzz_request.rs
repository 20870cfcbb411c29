//! Property tests of the `/v1/invoke` body parser ([`parse_invoke`]), run with bounded case
//! counts in every `cargo test`: whatever the bytes, it never panics, every refusal is a
//! documented 4xx with a message, and every body it accepts is a conversation Bedrock would
//! accept. Inputs: arbitrary bytes, JSON built from the request's own keys, and well-formed
//! conversations (which must be accepted as sent) with one rule broken.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentry_runtime::conversation::{
    self, Block, Message, ResultContent, ResultStatus, Role, ToolResult, ToolUse,
};
use agentry_runtime::server::body::{InvokeBody, Refusal, parse_invoke};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512),
        // Failures are reported with their minimal input; no files written next to the tests.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The properties every outcome has.
fn documented(bytes: &[u8], outcome: &Result<InvokeBody, Refusal>) -> Result<(), TestCaseError> {
    match outcome {
        Ok(body) => {
            prop_assert!(
                body.input.is_some() || !body.messages.is_empty(),
                "accepted a body with neither input nor messages: {:?}",
                String::from_utf8_lossy(bytes)
            );
            prop_assert_eq!(
                conversation::check(&body.messages, body.input.as_deref()),
                Ok(()),
                "accepted a conversation that breaks a rule: {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        Err(r) => {
            prop_assert!(
                [400, 413].contains(&r.status.as_u16()),
                "status {}",
                r.status
            );
            prop_assert!(
                ["invalid_request", "invalid_conversation"].contains(&r.code),
                "code {}",
                r.code
            );
            prop_assert!(!r.message.trim().is_empty(), "refusal without a message");
            if r.code == "invalid_conversation" {
                prop_assert!(
                    r.message.starts_with("messages[") || r.message.starts_with("input"),
                    "a conversation refusal names where: {}",
                    r.message
                );
            }
        }
    }
    Ok(())
}

// ---- JSON shaped like a request ---------------------------------------------------------

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "input",
        "messages",
        "role",
        "content",
        "text",
        "toolUse",
        "toolResult",
        "toolUseId",
        "name",
        "status",
        "json",
        "junk",
    ])
    .prop_map(String::from)
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            " ",
            "\n",
            "user",
            "assistant",
            "system",
            "hi",
            "t1",
            "t2",
            "top_song",
            "success",
            "error",
        ])
        .prop_map(String::from),
        "\\PC{0,8}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        word().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A block that is often nearly right: one of the block keys, with fields from a small pool
/// of ids, names and statuses.
fn block_ish() -> impl Strategy<Value = Value> {
    let id = prop::sample::select(vec!["t1", "t2", "t3", ""]);
    let status = prop::sample::select(vec![
        json!("success"),
        json!("error"),
        json!("bad"),
        Value::Null,
    ]);
    let result_content = prop::collection::vec(
        prop_oneof![
            word().prop_map(|t| json!({"text": t})),
            json_value().prop_map(|v| json!({"json": v}))
        ],
        0..3,
    );
    prop_oneof![
        4 => word().prop_map(|t| json!({"text": t})),
        3 => (id.clone(), word(), json_value())
            .prop_map(|(i, n, v)| json!({"toolUse": {"toolUseId": i, "name": n, "input": v}})),
        3 => (id, status, result_content).prop_map(|(i, s, c)| {
            let mut r = json!({"toolUseId": i, "content": c});
            if !s.is_null() {
                r["status"] = s;
            }
            json!({"toolResult": r})
        }),
        1 => json_value(),
    ]
}

fn message_ish() -> impl Strategy<Value = Value> {
    let role = prop_oneof![
        8 => prop::sample::select(vec![json!("user"), json!("assistant")]),
        1 => prop::sample::select(vec![json!("User"), json!("system"), json!(1), Value::Null]),
    ];
    (role, prop::collection::vec(block_ish(), 0..4))
        .prop_map(|(role, content)| json!({"role": role, "content": content}))
}

/// A request object: `input` and `messages` usually of the right types, now and then
/// another key.
fn request_ish() -> impl Strategy<Value = Value> {
    let input = prop_oneof![
        4 => word().prop_map(Value::String),
        1 => json_value(),
    ];
    let messages = prop_oneof![
        6 => prop::collection::vec(message_ish(), 0..5).prop_map(Value::Array),
        1 => json_value(),
    ];
    prop_oneof![
        6 => (
            prop::option::of(input),
            prop::option::weighted(0.8, messages),
            prop::option::weighted(0.1, (key(), json_value())),
        )
            .prop_map(|(input, messages, extra)| {
                let mut o = serde_json::Map::new();
                if let Some(i) = input {
                    o.insert("input".into(), i);
                }
                if let Some(m) = messages {
                    o.insert("messages".into(), m);
                }
                if let Some((k, v)) = extra {
                    o.insert(k, v);
                }
                Value::Object(o)
            }),
        1 => json_value(),
    ]
}

/// How the serialized JSON is then damaged, if at all.
#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(Index),
    Flip(Index, u8),
    Pad(Vec<u8>, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => Just(Damage::None),
        1 => any::<Index>().prop_map(Damage::Truncate),
        1 => (any::<Index>(), 1..=255u8).prop_map(|(i, x)| Damage::Flip(i, x)),
        1 => (
            prop::sample::select(vec![b"".to_vec(), b" \n\t".to_vec(), b"\xef\xbb\xbf".to_vec()]),
            prop::sample::select(vec![b"".to_vec(), b"\n".to_vec(), b"}".to_vec(), b"{}".to_vec(), b"\0".to_vec()]),
        )
            .prop_map(|(a, b)| Damage::Pad(a, b)),
    ]
}

fn apply(mut bytes: Vec<u8>, d: &Damage) -> Vec<u8> {
    match d {
        Damage::None => {}
        Damage::Truncate(i) => bytes.truncate(i.index(bytes.len() + 1)),
        Damage::Flip(i, x) if !bytes.is_empty() => {
            let at = i.index(bytes.len());
            bytes[at] ^= x;
        }
        Damage::Flip(..) => {}
        Damage::Pad(before, after) => {
            bytes.splice(0..0, before.iter().copied());
            bytes.extend_from_slice(after);
        }
    }
    bytes
}

// ---- Well-formed conversations ------------------------------------------------------------

/// A turn of the model: text, or tool calls (answered in the next user turn).
#[derive(Debug, Clone)]
enum AssistantTurn {
    Text(String),
    Tools(Vec<(String, Value)>, Option<String>),
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Top song on WZPZ?".to_string()),
        "[a-zA-Z0-9 ?.]{0,12}[a-zA-Z0-9]",
        "\\PC{0,6}\\p{L}",
    ]
}

fn tool_input() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"sign": "WZPZ"})),
        Just(json!({})),
        Just(json!(null)),
        any::<i32>().prop_map(|n| json!({"n": n, "tags": ["a", "b"]})),
    ]
}

fn assistant_turn() -> impl Strategy<Value = AssistantTurn> {
    prop_oneof![
        text().prop_map(AssistantTurn::Text),
        (
            prop::collection::vec(tool_input(), 1..4),
            prop::option::of(text())
        )
            .prop_map(|(inputs, t)| {
                AssistantTurn::Tools(
                    inputs
                        .into_iter()
                        .enumerate()
                        .map(|(k, v)| (format!("tooluse_{k}"), v))
                        .collect(),
                    t,
                )
            }),
    ]
}

/// A conversation that meets every rule, as `(messages, input)`: user and assistant turns
/// alternate, each tool call is answered once (in a shuffled order) in the next user turn,
/// and it ends with a user turn or with `input` after a text-only assistant turn.
fn valid_conversation() -> impl Strategy<Value = (Vec<Message>, Option<String>)> {
    (
        text(),
        prop::collection::vec(
            (assistant_turn(), text(), any::<bool>(), any::<u64>()),
            0..4,
        ),
        prop_oneof![Just(None), text().prop_map(Some)],
        any::<bool>(),
    )
        .prop_map(|(first, turns, input, input_alone)| {
            if input_alone && input.is_some() {
                return (vec![], input);
            }
            let mut messages = vec![Message::user_text(&first)];
            for (turn, user_text, error, seed) in turns {
                match turn {
                    AssistantTurn::Text(t) => {
                        messages.push(Message {
                            role: Role::Assistant,
                            content: vec![Block::Text(t)],
                        });
                        messages.push(Message::user_text(&user_text));
                    }
                    AssistantTurn::Tools(calls, t) => {
                        let mut content: Vec<Block> = t.into_iter().map(Block::Text).collect();
                        content.extend(calls.iter().map(|(id, input)| {
                            Block::ToolUse(ToolUse {
                                tool_use_id: id.clone(),
                                name: "top_song".into(),
                                input: input.clone(),
                            })
                        }));
                        messages.push(Message {
                            role: Role::Assistant,
                            content,
                        });
                        let mut answers: Vec<Block> = calls
                            .iter()
                            .enumerate()
                            .map(|(k, (id, _))| {
                                Block::ToolResult(if error && k == 0 {
                                    ToolResult::error(id, "HTTP 503")
                                } else {
                                    ToolResult {
                                        tool_use_id: id.clone(),
                                        content: vec![ResultContent::Json(
                                            json!({"song": "Elemental Hotel"}),
                                        )],
                                        status: (k % 2 == 1).then_some(ResultStatus::Success),
                                    }
                                })
                            })
                            .collect();
                        let n = answers.len();
                        answers.rotate_left(seed as usize % n);
                        messages.push(Message {
                            role: Role::User,
                            content: answers,
                        });
                    }
                }
            }
            // `input` continues only after a text-only assistant turn: drop the last user turn.
            let continues = input.is_some()
                && messages.len() >= 3
                && messages[messages.len() - 2].tool_uses().is_empty();
            if continues {
                messages.pop();
                (messages, input)
            } else {
                (messages, None)
            }
        })
}

fn encode(messages: &[Message], input: Option<&str>) -> Vec<u8> {
    let mut o = serde_json::Map::new();
    if let Some(i) = input {
        o.insert("input".into(), json!(i));
    }
    if !messages.is_empty() {
        o.insert("messages".into(), serde_json::to_value(messages).unwrap());
    }
    serde_json::to_vec(&Value::Object(o)).unwrap()
}

/// One rule broken on purpose; each of these must be refused as `invalid_conversation`.
#[derive(Debug, Clone)]
enum Break {
    /// Swap the role of a message: two equal roles meet, or the first becomes the assistant.
    SwapRole(Index),
    /// Empty a message's block list.
    EmptyContent(Index),
    /// Blank a text block.
    BlankText(Index, &'static str),
    /// Point a tool result at an id no call of the previous turn has.
    StrangerResult(Index),
    /// Drop one tool result.
    DropResult(Index),
    /// Answer a call twice.
    DuplicateResult(Index),
    /// Give a call an empty id or name.
    NamelessCall(Index, bool),
    /// A blank `input`.
    BlankInput(&'static str),
}

fn a_break() -> impl Strategy<Value = Break> {
    let blank = prop::sample::select(vec!["", " ", "\n\t"]);
    prop_oneof![
        any::<Index>().prop_map(Break::SwapRole),
        any::<Index>().prop_map(Break::EmptyContent),
        (any::<Index>(), blank.clone()).prop_map(|(i, b)| Break::BlankText(i, b)),
        any::<Index>().prop_map(Break::StrangerResult),
        any::<Index>().prop_map(Break::DropResult),
        any::<Index>().prop_map(Break::DuplicateResult),
        (any::<Index>(), any::<bool>()).prop_map(|(i, b)| Break::NamelessCall(i, b)),
        blank.prop_map(Break::BlankInput),
    ]
}

/// Positions `(message, block)` of the blocks `pick` selects.
fn blocks_where(messages: &[Message], pick: impl Fn(&Block) -> bool) -> Vec<(usize, usize)> {
    messages
        .iter()
        .enumerate()
        .flat_map(|(i, m)| {
            m.content
                .iter()
                .enumerate()
                .filter(|(_, b)| pick(b))
                .map(move |(j, _)| (i, j))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Applies the break; `false` when this conversation has nothing to break that way.
fn break_rule(messages: &mut [Message], input: &mut Option<String>, b: &Break) -> bool {
    let is_text = |b: &Block| matches!(b, Block::Text(_));
    let is_result = |b: &Block| matches!(b, Block::ToolResult(_));
    let is_call = |b: &Block| matches!(b, Block::ToolUse(_));
    match b {
        Break::SwapRole(i) if !messages.is_empty() => {
            let n = messages.len();
            let m = &mut messages[i.index(n)];
            m.role = match m.role {
                Role::User => Role::Assistant,
                Role::Assistant => Role::User,
            };
        }
        Break::EmptyContent(i) if !messages.is_empty() => {
            let n = messages.len();
            messages[i.index(n)].content.clear();
        }
        Break::BlankText(i, blank) => {
            let at = blocks_where(messages, is_text);
            if at.is_empty() {
                return false;
            }
            let (m, j) = at[i.index(at.len())];
            messages[m].content[j] = Block::Text((*blank).into());
        }
        Break::StrangerResult(i) | Break::DropResult(i) | Break::DuplicateResult(i) => {
            let at = blocks_where(messages, is_result);
            if at.is_empty() {
                return false;
            }
            let (m, j) = at[i.index(at.len())];
            match b {
                Break::StrangerResult(_) => {
                    if let Block::ToolResult(r) = &mut messages[m].content[j] {
                        r.tool_use_id = "tooluse_stranger".into();
                    }
                }
                Break::DropResult(_) => {
                    messages[m].content.remove(j);
                }
                _ => {
                    let copy = messages[m].content[j].clone();
                    messages[m].content.push(copy);
                }
            }
        }
        Break::NamelessCall(i, id) => {
            let at = blocks_where(messages, is_call);
            if at.is_empty() {
                return false;
            }
            let (m, j) = at[i.index(at.len())];
            if let Block::ToolUse(u) = &mut messages[m].content[j] {
                if *id {
                    u.tool_use_id.clear();
                } else {
                    u.name.clear();
                }
            }
        }
        Break::BlankInput(blank) => *input = Some((*blank).into()),
        _ => return false,
    }
    true
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_get_a_documented_outcome(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let outcome = parse_invoke(&bytes);
        documented(&bytes, &outcome)?;
    }

    #[test]
    fn json_built_from_the_request_keys_gets_a_documented_outcome(
        value in request_ish(),
        d in damage(),
    ) {
        let bytes = apply(serde_json::to_vec(&value).unwrap(), &d);
        let outcome = parse_invoke(&bytes);
        documented(&bytes, &outcome)?;
        // Only a JSON object is a request.
        if !value.is_object() && matches!(d, Damage::None) {
            prop_assert_eq!(outcome.unwrap_err().code, "invalid_request");
        }
    }

    #[test]
    fn a_well_formed_conversation_is_accepted_as_sent((messages, input) in valid_conversation()) {
        let bytes = encode(&messages, input.as_deref());
        let body = parse_invoke(&bytes).map_err(|r| {
            TestCaseError::fail(format!("{r:?} for {}", String::from_utf8_lossy(&bytes)))
        })?;
        prop_assert_eq!(body, InvokeBody { input, messages, session_id: None });
    }

    #[test]
    fn a_conversation_with_one_rule_broken_is_refused_as_invalid_conversation(
        (mut messages, mut input) in valid_conversation(),
        b in a_break(),
    ) {
        // A break that does not fit this conversation (no tool calls to break) gives way to one
        // that always fits, rather than a rejected case.
        let b = if break_rule(&mut messages, &mut input, &b) {
            b
        } else {
            let fits = Break::BlankInput(" ");
            assert!(break_rule(&mut messages, &mut input, &fits));
            fits
        };
        let bytes = encode(&messages, input.as_deref());
        let outcome = parse_invoke(&bytes);
        documented(&bytes, &outcome)?;
        match outcome {
            Err(r) => prop_assert_eq!(r.code, "invalid_conversation", "{}", r.message),
            Ok(_) => prop_assert!(
                false,
                "accepted after {:?}: {}",
                b,
                String::from_utf8_lossy(&bytes)
            ),
        }
    }

    #[test]
    fn a_damaged_well_formed_conversation_gets_a_documented_outcome(
        (messages, input) in valid_conversation(),
        d in damage(),
    ) {
        let bytes = apply(encode(&messages, input.as_deref()), &d);
        let outcome = parse_invoke(&bytes);
        documented(&bytes, &outcome)?;
    }
}

#[test]
fn nesting_past_the_parser_depth_is_a_refusal_not_a_stack_overflow() {
    for depth in [127, 128, 129, 10_000, 100_000] {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let body = format!(
                r#"{{"messages": [{{"role": "user", "content": [{{"toolResult": {{"toolUseId": "x", "content": [{{"json": {}1{}}}]}}}}]}}]}}"#,
                open.repeat(depth),
                close.repeat(depth)
            );
            let outcome = parse_invoke(body.as_bytes());
            let r = outcome.unwrap_err();
            assert!(
                ["invalid_request", "invalid_conversation"].contains(&r.code),
                "{depth}: {r:?}"
            );
        }
    }
}
