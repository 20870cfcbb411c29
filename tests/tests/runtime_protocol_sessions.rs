//! Sessions over the other protocols, each with its official client, against a real
//! redis-server and the Bedrock imitation: OpenAI chat completions (the `openai` SDK, the
//! `X-Agentry-Session-Id` header) and MCP (the `mcp` SDK's ClientSession, answered by the
//! direct path, and its high-level Client, answered by rmcp; the tool's `sessionId`
//! argument) and A2A (`a2a-sdk` 1.3 and 0.3; the message's `contextId`), for each a two-turn
//! conversation whose second model call sees the first turn, a busy session and a store that
//! does not answer refused, and an Agent without memory refusing the session (A2A: keeping no
//! history, as before sessions).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;
#[path = "support/session_fixtures.rs"]
mod sessions;

use std::time::Duration;

use agentry_tests::a2a::{self, Sdk};
use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::redis::RedisServer;
use agentry_tests::runtime::{RuntimeUnderTest, ToolServer};
use agentry_tests::{mcp, openai, runtime};
use fixtures::{limits, setup, song};
use serde_json::{Value, json};
use sessions::*;

const Q1: &str = "What is the top song on WZPZ?";
const A1: &str = "Elemental Hotel by 8 Storey Hike.";
const Q2: &str = "Who sings it?";
const A2: &str = "8 Storey Hike.";

/// The first turn with a tool round trip, then the second turn's answer.
fn two_turns(fake: &FakeBedrock) {
    fake.push([
        Script::Turn(Turn::tools(&[("t1", "top_song", json!({"sign": "WZPZ"}))])),
        Script::Turn(Turn::text(A1)),
        Script::Turn(Turn::text(A2)),
    ]);
}

/// What the model saw in the second turn: the whole first turn, then the new question.
const SECOND_TURN_SEEN: [&str; 5] = [
    "user: What is the top song on WZPZ?",
    "assistant: use top_song",
    "user: result",
    "assistant: Elemental Hotel by 8 Storey Hike.",
    "user: Who sings it?",
];

/// A model that takes `ms` to answer each call (long enough for a Python client to start
/// under load while a session is held: a few seconds).
fn slow(fake: &FakeBedrock, ms: u64) {
    fake.fallback(move |_| {
        Script::Delay(
            Duration::from_millis(ms),
            Box::new(Script::Turn(Turn::text("done"))),
        )
    });
}

/// Starts a `/v1/invoke` call on session `id` that holds it while the model is slow, and
/// waits until the session is running.
async fn hold(rt: &RuntimeUnderTest, id: &str) -> tokio::task::JoinHandle<u16> {
    let base = rt.url.clone();
    let body = json!({"sessionId": id, "input": "hold it"});
    let held = tokio::spawn(async move { ask(&base, body).await.0 });
    let running = eventually(Duration::from_secs(5), async || {
        get(&rt.url, id).await.1["running"] == true
    })
    .await;
    assert!(running, "the first call holds the session");
    held
}

// --- OpenAI chat completions -------------------------------------------------------------

async fn chat(rt: &RuntimeUnderTest, call: &str, kwargs: Value) -> Value {
    openai::run(json!({"base_url": format!("{}/v1", rt.url), "call": call, "kwargs": kwargs})).await
}

fn on_session(id: &str, messages: Value) -> Value {
    json!({"model": "radio", "messages": messages,
           "extra_headers": {"X-Agentry-Session-Id": id}})
}

#[tokio::test]
async fn a_chat_completion_with_the_session_header_continues_the_conversation_streamed_or_not() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[("/top_song", song())]).await;
    let (fake, rt) = start(&redis.url(), memory(60, 100), &tools).await;
    two_turns(&fake);
    let first = chat(
        &rt,
        "create",
        on_session("chat-1", json!([{"role": "user", "content": Q1}])),
    )
    .await;
    assert_eq!(first["content"], A1, "{first}");
    // The second turn streams, with a system message for this turn only.
    let second = chat(
        &rt,
        "stream",
        on_session(
            "chat-1",
            json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": Q2}]),
        ),
    )
    .await;
    assert_eq!(
        (&second["text"], &second["finish_reasons"]),
        (&json!(A2), &json!(["stop"])),
        "{second}"
    );
    let seen = &fake.captured()[2].body;
    assert_eq!(texts(&seen["messages"]), SECOND_TURN_SEEN);
    let system: Vec<&str> = seen["system"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"].as_str())
        .collect();
    assert_eq!(system.last(), Some(&"Be brief."), "{seen}");
    let (status, s) = get(&rt.url, "chat-1").await;
    assert_eq!((status, &s["version"]), (200, &json!(2)), "{s}");
    assert_eq!(s["messages"].as_array().unwrap().len(), 6, "{s}");
}

#[tokio::test]
async fn a_chat_completion_that_resends_the_conversation_on_a_session_is_refused_naming_the_fix() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[]).await;
    let (fake, rt) = start(&redis.url(), memory(60, 100), &tools).await;
    let resent = on_session(
        "chat-2",
        json!([{"role": "user", "content": Q1}, {"role": "assistant", "content": A1},
               {"role": "user", "content": Q2}]),
    );
    let r = chat(&rt, "create", resent).await;
    assert_eq!(
        (&r["exception"], &r["status"], &r["param"]),
        (
            &json!("BadRequestError"),
            &json!(400),
            &json!("messages[1]")
        ),
        "{r}"
    );
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("send only the new user message"),
        "{r}"
    );
    let bad = on_session("{bad}", json!([{"role": "user", "content": Q1}]));
    let r = chat(&rt, "create", bad).await;
    assert_eq!(
        (&r["status"], &r["code"]),
        (&json!(400), &json!("invalid_session_id")),
        "{r}"
    );
    assert!(fake.captured().is_empty(), "no model call");
}

#[tokio::test]
async fn a_chat_completion_on_a_busy_session_is_a_409_with_retry_after_streamed_or_not() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[]).await;
    let (fake, rt) = start(&redis.url(), memory(60, 100), &tools).await;
    slow(&fake, 6000);
    // The venv first (its creation can outlast the hold).
    tokio::task::spawn_blocking(openai::venv).await.unwrap();
    let held = hold(&rt, "chat-busy").await;
    for call in ["create", "stream"] {
        let r = chat(
            &rt,
            call,
            on_session("chat-busy", json!([{"role": "user", "content": Q1}])),
        )
        .await;
        assert_eq!(
            (&r["exception"], &r["status"], &r["code"]),
            (&json!("ConflictError"), &json!(409), &json!("session_busy")),
            "{call}: {r}"
        );
        let retry: u64 = r["retry_after"].as_str().unwrap().parse().unwrap();
        assert!((1..=15).contains(&retry), "{r}");
    }
    assert_eq!(held.await.unwrap(), 200);
    assert_eq!(
        fake.captured().len(),
        1,
        "only the holder reached the model"
    );
}

#[tokio::test]
async fn a_chat_completion_with_the_session_header_on_an_agent_without_memory_is_refused() {
    let (fake, _tools, rt) = setup(&[], limits()).await;
    let r = chat(
        &rt,
        "create",
        on_session("chat-3", json!([{"role": "user", "content": Q1}])),
    )
    .await;
    assert_eq!(
        (&r["exception"], &r["status"], &r["code"]),
        (
            &json!("BadRequestError"),
            &json!(400),
            &json!("sessions_not_enabled")
        ),
        "{r}"
    );
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("leave out the X-Agentry-Session-Id header"),
        "{r}"
    );
    assert!(fake.captured().is_empty(), "no model call");
}

#[tokio::test]
async fn a_chat_completion_on_a_session_while_the_store_is_down_is_a_503_with_retry_after() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[]).await;
    let (fake, rt) = start(&redis.url(), memory(60, 100), &tools).await;
    redis.pause();
    let r = chat(
        &rt,
        "create",
        on_session("chat-4", json!([{"role": "user", "content": Q1}])),
    )
    .await;
    redis.resume();
    assert_eq!(
        (&r["exception"], &r["status"], &r["code"], &r["retry_after"]),
        (
            &json!("InternalServerError"),
            &json!(503),
            &json!("session_store_unavailable"),
            &json!("1")
        ),
        "{r}"
    );
    assert!(fake.captured().is_empty(), "no model call");
}

// --- MCP -----------------------------------------------------------------------------------

/// The `mcp` SDK in `mode`: `session` (the handshake, answered by the direct path) or
/// `client` (2026-07-28, answered by rmcp).
async fn mcp_calls(rt: &RuntimeUnderTest, mode: &str, calls: Value) -> Value {
    mcp::client(json!({"url": format!("{}/mcp", rt.url), "mode": mode, "calls": calls})).await
}

fn mcp_call(input: &str, session: &str) -> Value {
    json!({"name": "radio", "arguments": {"input": input, "sessionId": session}})
}

async fn mcp_two_turns(mode: &str) {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[("/top_song", song())]).await;
    let (fake, rt) = start(&redis.url(), memory(60, 100), &tools).await;
    two_turns(&fake);
    let id = format!("mcp-{mode}");
    let r = mcp_calls(&rt, mode, json!([mcp_call(Q1, &id), mcp_call(Q2, &id)])).await;
    let schema = &r["tools"][0]["input_schema"];
    assert_eq!(
        (
            &schema["properties"]["sessionId"]["type"],
            &schema["required"]
        ),
        (&json!("string"), &json!(["input"])),
        "{r}"
    );
    assert_eq!(
        r["results"],
        json!([{"is_error": false, "texts": [A1]}, {"is_error": false, "texts": [A2]}]),
        "{r}"
    );
    assert_eq!(
        texts(&fake.captured()[2].body["messages"]),
        SECOND_TURN_SEEN
    );
    assert_eq!(get(&rt.url, &id).await.1["version"], 2);
}

#[tokio::test]
async fn an_mcp_call_with_a_session_id_continues_the_conversation_on_the_direct_path() {
    mcp_two_turns("session").await;
}

#[tokio::test]
async fn an_mcp_call_with_a_session_id_continues_the_conversation_through_rmcp() {
    mcp_two_turns("client").await;
}

#[tokio::test]
async fn an_mcp_call_on_a_busy_session_is_a_tool_error_saying_so_on_both_paths() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[]).await;
    let (fake, rt) = start(&redis.url(), memory(60, 100), &tools).await;
    slow(&fake, 6000);
    // The venv first (its creation can outlast the hold).
    tokio::task::spawn_blocking(|| mcp::venv(mcp::Sdk::Current))
        .await
        .unwrap();
    let held = hold(&rt, "mcp-busy").await;
    for mode in ["session", "client"] {
        let r = mcp_calls(&rt, mode, json!([mcp_call(Q1, "mcp-busy")])).await;
        let result = &r["results"][0];
        assert_eq!(result["is_error"], true, "{mode}: {r}");
        let text = result["texts"][0].as_str().unwrap();
        assert!(
            text.starts_with("another invocation is running on this session"),
            "{mode}: {text}"
        );
    }
    assert_eq!(held.await.unwrap(), 200);
    assert_eq!(
        fake.captured().len(),
        1,
        "only the holder reached the model"
    );
}

#[tokio::test]
async fn an_mcp_call_on_a_session_while_the_store_is_down_is_a_tool_error_saying_so() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[]).await;
    let (fake, rt) = start(&redis.url(), memory(60, 100), &tools).await;
    tokio::task::spawn_blocking(|| mcp::venv(mcp::Sdk::Current))
        .await
        .unwrap();
    redis.pause();
    let r = mcp_calls(&rt, "session", json!([mcp_call(Q1, "mcp-down")])).await;
    redis.resume();
    let result = &r["results"][0];
    assert_eq!(result["is_error"], true, "{r}");
    assert!(
        result["texts"][0]
            .as_str()
            .unwrap()
            .starts_with("the session store did not answer"),
        "{r}"
    );
    assert!(fake.captured().is_empty(), "no model call");
}

#[tokio::test]
async fn an_mcp_call_with_a_session_id_on_an_agent_without_memory_is_a_tool_error() {
    let (fake, _tools, rt) = setup(&[], limits()).await;
    for mode in ["session", "client"] {
        let r = mcp_calls(&rt, mode, json!([mcp_call(Q1, "mcp-3")])).await;
        let props = r["tools"][0]["input_schema"]["properties"]
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            props.keys().collect::<Vec<_>>(),
            ["input"],
            "no sessionId without memory: {r}"
        );
        assert_eq!(
            r["results"],
            json!([{"is_error": true, "texts": [
                "this agent keeps no sessions (it has no memory configured): call it without `sessionId`"
            ]}]),
            "{mode}: {r}"
        );
    }
    assert!(fake.captured().is_empty(), "no model call");
}

// --- A2A -----------------------------------------------------------------------------------

/// A runtime whose card advertises its loopback URL (the SDKs follow it), with memory on
/// `redis` when given.
async fn start_a2a(redis: Option<&RedisServer>) -> (FakeBedrock, ToolServer, RuntimeUnderTest) {
    let fake = FakeBedrock::start().await.unwrap();
    let tools = ToolServer::start(&[("/top_song", song())]).await;
    let mut cfg = fixtures::config(
        vec![fixtures::http_tool("top_song", tools.url("/top_song"), 5)],
        limits(),
    );
    let env = match redis {
        Some(r) => {
            cfg.memory = Some(memory(60, 100));
            env(&r.url())
        }
        None => fixtures::secrets(),
    };
    let rt = runtime::start_public(cfg, &fake, env).await;
    (fake, tools, rt)
}

async fn a2a_client(sdk: Sdk, rt: &RuntimeUnderTest, actions: Value) -> Vec<Value> {
    let out = a2a::client(
        sdk,
        json!({"url": format!("{}/", rt.url), "actions": actions}),
    )
    .await;
    out["results"].as_array().unwrap().clone()
}

/// A message without a context, then a streamed one in the context of the first.
fn a2a_two_messages() -> Value {
    json!([{"do": "send", "text": Q1}, {"do": "stream", "text": Q2, "context_id": "last"}])
}

/// The final state and the answer's texts of a streamed send, from its events (the 1.3 SDK's
/// task is the first event's snapshot).
fn streamed_answer(sent: &Value) -> (Option<&str>, Vec<&str>) {
    let events = sent["events"].as_array().unwrap();
    let state = events.last().and_then(|e| e["state"].as_str());
    let texts = events
        .iter()
        .filter(|e| e["kind"] == "artifact-update")
        .flat_map(|e| e["texts"].as_array().unwrap())
        .filter_map(Value::as_str)
        .collect();
    (state, texts)
}

async fn a2a_two_turns(sdk: Sdk) {
    let redis = RedisServer::start();
    let (fake, _tools, rt) = start_a2a(Some(&redis)).await;
    two_turns(&fake);
    let r = a2a_client(sdk, &rt, a2a_two_messages()).await;
    let (first, second) = (&r[0]["task"], &r[1]["task"]);
    assert_eq!(
        (&first["state"], &first["artifacts"]),
        (&json!("completed"), &json!([[A1]])),
        "{r:?}"
    );
    assert_eq!(
        streamed_answer(&r[1]),
        (Some("completed"), vec![A2]),
        "{r:?}"
    );
    let context = first["context_id"].as_str().unwrap();
    assert_eq!(second["context_id"], context, "{r:?}");
    assert_ne!(first["id"], second["id"], "a task per message");
    assert_eq!(
        texts(&fake.captured()[2].body["messages"]),
        SECOND_TURN_SEEN
    );
    // The context's session is the one /v1/sessions shows.
    let (status, s) = get(&rt.url, context).await;
    assert_eq!((status, &s["version"]), (200, &json!(2)), "{s}");
}

#[tokio::test]
async fn a2a_messages_in_one_context_continue_its_conversation_with_the_1_3_client() {
    a2a_two_turns(Sdk::V13).await;
}

#[tokio::test]
async fn a2a_messages_in_one_context_continue_its_conversation_with_the_0_3_client() {
    a2a_two_turns(Sdk::V03).await;
}

async fn raw_send(rt: &RuntimeUnderTest, body: Value) -> (u16, Value, Option<String>) {
    let r = reqwest::Client::new()
        .post(format!("{}/", rt.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), r.json().await.unwrap(), retry)
}

fn send_v1(context: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {
        "messageId": "m1", "role": "ROLE_USER", "contextId": context, "parts": [{"text": Q1}]}}})
}

fn send_v03(context: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "message/send", "params": {"message": {
        "kind": "message", "messageId": "m2", "role": "user", "contextId": context,
        "parts": [{"kind": "text", "text": Q1}]}}})
}

#[tokio::test]
async fn an_a2a_message_in_a_busy_context_is_refused_with_409_retry_after_and_a_json_rpc_error() {
    let redis = RedisServer::start();
    let (fake, _tools, rt) = start_a2a(Some(&redis)).await;
    slow(&fake, 6000);
    for sdk in [Sdk::V13, Sdk::V03] {
        tokio::task::spawn_blocking(move || a2a::venv(sdk))
            .await
            .unwrap();
    }
    let held = hold(&rt, "a2a-busy").await;
    for body in [send_v1("a2a-busy"), send_v03("a2a-busy")] {
        let (status, r, retry) = raw_send(&rt, body.clone()).await;
        assert_eq!((status, &r["error"]["code"]), (409, &json!(-32603)), "{r}");
        assert_eq!(r["id"], body["id"], "{r}");
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("another invocation is running on this session"),
            "{r}"
        );
        let retry: u64 = retry.unwrap().parse().unwrap();
        assert!((1..=15).contains(&retry), "{retry}");
    }
    // The SDKs raise on it, naming the status.
    for sdk in [Sdk::V13, Sdk::V03] {
        let actions = json!([{"do": "send", "text": Q1, "context_id": "a2a-busy"}]);
        let r = a2a_client(sdk, &rt, actions).await;
        assert!(
            r[0]["error"].is_string() && r[0]["message"].as_str().unwrap().contains("409"),
            "{sdk:?}: {r:?}"
        );
    }
    assert_eq!(held.await.unwrap(), 200);
    assert_eq!(
        fake.captured().len(),
        1,
        "only the holder reached the model"
    );
}

#[tokio::test]
async fn an_a2a_context_id_that_cannot_name_a_session_is_invalid_params() {
    let redis = RedisServer::start();
    let (fake, _tools, rt) = start_a2a(Some(&redis)).await;
    let (status, r, _) = raw_send(&rt, send_v03("no spaces please")).await;
    assert_eq!((status, &r["error"]["code"]), (200, &json!(-32602)), "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot name a session"),
        "{r}"
    );
    assert!(fake.captured().is_empty(), "no model call");
}

#[tokio::test]
async fn without_memory_an_a2a_context_carries_no_history_as_before_sessions() {
    let (fake, _tools, rt) = start_a2a(None).await;
    fake.push([Script::Turn(Turn::text(A1)), Script::Turn(Turn::text(A2))]);
    let r = a2a_client(Sdk::V13, &rt, a2a_two_messages()).await;
    assert_eq!(
        r[1]["task"]["context_id"], r[0]["task"]["context_id"],
        "{r:?}"
    );
    assert_eq!(
        streamed_answer(&r[1]),
        (Some("completed"), vec![A2]),
        "{r:?}"
    );
    assert_eq!(
        texts(&fake.captured()[1].body["messages"]),
        ["user: Who sings it?"]
    );
    let context = r[0]["task"]["context_id"].as_str().unwrap();
    let (status, body) = get(&rt.url, context).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("sessions_not_enabled")),
        "{body}"
    );
}

#[tokio::test]
async fn an_a2a_message_while_the_store_is_down_is_refused_with_503_and_retry_after() {
    let redis = RedisServer::start();
    let (fake, _tools, rt) = start_a2a(Some(&redis)).await;
    redis.pause();
    let (status, r, retry) = raw_send(&rt, send_v1("a2a-down")).await;
    redis.resume();
    assert_eq!(
        (status, &r["error"]["code"], retry.as_deref()),
        (503, &json!(-32603), Some("1")),
        "{r}"
    );
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("the session store did not answer"),
        "{r}"
    );
    assert!(fake.captured().is_empty(), "no model call");
}
