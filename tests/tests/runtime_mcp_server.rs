//! The runtime as an MCP server (`/mcp`), in-process, with the official `mcp` Python SDK's
//! client (`tests/python/mcp_client.py`: the `ClientSession` handshake and the high-level
//! `Client`) and the Bedrock imitation scripting the model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;

use std::time::Duration;

use agentry_tests::bedrock::{Block, FakeBedrock, Script, Turn};
use agentry_tests::mcp;
use agentry_tests::runtime::RuntimeUnderTest;
use fixtures::{limits, setup, song};
use serde_json::{Value, json};

const ANSWER: &str = "The most popular song on WZPZ is Elemental Hotel by 8 Storey Hike.";

async fn client(rt: &RuntimeUnderTest, mode: &str, calls: Value) -> Value {
    mcp::client(json!({"url": format!("{}/mcp", rt.url), "mode": mode, "calls": calls})).await
}

fn call(input: Value) -> Value {
    json!([{"name": "radio", "arguments": {"input": input}}])
}

fn round_trip(fake: &FakeBedrock, narration: Option<&str>) {
    let mut turn = Turn::tools(&[("t1", "top_song", json!({"sign": "WZPZ"}))]);
    if let Some(text) = narration {
        turn.blocks.insert(0, Block::Text(text.into()));
    }
    fake.push([Script::Turn(turn), Script::Turn(Turn::text(ANSWER))]);
}

async fn metrics(rt: &RuntimeUnderTest) -> String {
    reqwest::get(format!("{}/metrics", rt.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_agent_is_one_tool_whose_call_answers_after_the_agents_own_tool_round_trip() {
    let (fake, tools, rt) = setup(&[("/top_song", song())], limits()).await;
    round_trip(&fake, None);
    let r = client(&rt, "session", call(json!("What is the top song on WZPZ?"))).await;
    assert_eq!(r["server_name"], "radio", "{r}");
    assert_eq!(
        r["protocol_version"], "2025-11-25",
        "the handshake's newest: {r}"
    );
    let listed = r["tools"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{r}");
    assert_eq!(listed[0]["name"], "radio");
    assert!(
        listed[0]["description"]
            .as_str()
            .unwrap()
            .contains("agent radio"),
        "{r}"
    );
    assert_eq!(
        listed[0]["input_schema"]["properties"]["input"]["type"],
        "string"
    );
    assert_eq!(listed[0]["input_schema"]["required"], json!(["input"]));
    assert_eq!(
        r["results"],
        json!([{"is_error": false, "texts": [ANSWER]}]),
        "{r}"
    );
    assert_eq!(tools.seen().len(), 1);
    assert_eq!(
        fake.captured()[0].body["messages"],
        json!([{"role": "user", "content": [{"text": "What is the top song on WZPZ?"}]}])
    );
    let m = metrics(&rt).await;
    assert!(
        m.contains("agentry_runtime_invocations_total{protocol=\"mcp\",outcome=\"end_turn\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn the_high_level_client_lists_and_calls_the_tool_too() {
    let (fake, _tools, rt) = setup(&[("/top_song", song())], limits()).await;
    round_trip(&fake, None);
    let r = client(&rt, "client", call(json!("top song?"))).await;
    assert_eq!(
        r["protocol_version"], "2026-07-28",
        "server/discover, stateless: {r}"
    );
    assert_eq!(r["tools"][0]["name"], "radio", "{r}");
    assert_eq!(
        r["results"],
        json!([{"is_error": false, "texts": [ANSWER]}]),
        "{r}"
    );
}

#[tokio::test]
async fn limit_stops_model_errors_and_a_missing_input_are_tool_errors() {
    let mut l = limits();
    l.max_iterations = 1;
    let (fake, _tools, rt) = setup(&[("/top_song", song())], l).await;
    let mut turn = Turn::tools(&[("t1", "top_song", json!({"sign": "WZPZ"}))]);
    turn.blocks.insert(0, Block::Text("Let me check.".into()));
    fake.push([Script::Turn(turn)]);
    fake.push([Script::Error(
        400,
        "ValidationException".into(),
        "The model id is invalid.".into(),
    )]);
    let r = client(
        &rt,
        "session",
        json!([
            {"name": "radio", "arguments": {"input": "top song?"}},
            {"name": "radio", "arguments": {"input": "again?"}},
            {"name": "radio", "arguments": {"question": "no input"}},
        ]),
    )
    .await;
    let results = r["results"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(
        results[0],
        json!({"is_error": true, "texts": ["the agent stopped before finishing its answer: max_iterations. Partial answer: Let me check."]})
    );
    assert_eq!(results[1]["is_error"], true);
    assert!(
        results[1]["texts"][0]
            .as_str()
            .unwrap()
            .contains("The model id is invalid."),
        "{r}"
    );
    assert_eq!(results[2]["is_error"], true);
    assert!(
        results[2]["texts"][0].as_str().unwrap().contains("`input`"),
        "{r}"
    );
    assert_eq!(
        fake.captured().len(),
        2,
        "the call without input reaches no model"
    );
}

#[tokio::test]
async fn a_full_runtime_answers_a_tool_call_with_an_error_naming_the_limit() {
    let mut l = limits();
    l.max_concurrent_invocations = 2;
    let (fake, _tools, rt) = setup(&[], l).await;
    let slow = || {
        Script::Delay(
            Duration::from_millis(5000),
            Box::new(Script::Turn(Turn::text("late"))),
        )
    };
    fake.push([slow(), slow()]);
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let url = format!("{}/v1/invoke", rt.url);
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(url)
                    .body(json!({"input": "slow"}).to_string())
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let want = "agentry_runtime_invocations_in_flight{protocol=\"invoke\"} 2";
    let mut filled = false;
    for _ in 0..100 {
        if metrics(&rt).await.contains(want) {
            filled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(filled, "never {want}");
    let r = client(&rt, "session", call(json!("hi"))).await;
    assert_eq!(r["results"][0]["is_error"], true, "{r}");
    assert!(
        r["results"][0]["texts"][0]
            .as_str()
            .unwrap()
            .contains("limit of 2 concurrent invocations"),
        "{r}"
    );
    for t in busy {
        assert_eq!(t.await.unwrap(), 200);
    }
    let m = metrics(&rt).await;
    assert!(
        m.contains(
            "agentry_runtime_invocations_total{protocol=\"mcp\",outcome=\"over_capacity\"} 1"
        ),
        "{m}"
    );
}

fn initialize() -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "curl", "version": "1"}}})
    .to_string()
}

async fn post(rt: &RuntimeUnderTest, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/mcp", rt.url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(initialize());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_service_dns_host_is_served_and_a_browser_origin_refused() {
    let (_fake, _tools, rt) = setup(&[], limits()).await;
    let (status, body) = post(&rt, &[("host", "radio.demo.svc.cluster.local")]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"serverInfo\""), "{body}");
    let (status, body) = post(&rt, &[("origin", "http://evil.example")]).await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn a_draining_runtime_refuses_mcp_requests_with_503() {
    let (_fake, _tools, rt) = fixtures::draining().await;
    let mut got = (0, String::new());
    for _ in 0..100 {
        got = post(&rt, &[]).await;
        if got.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got.0, 503, "{}", got.1);
    assert!(got.1.contains("shutting_down"), "{}", got.1);
}

#[tokio::test]
async fn a_client_that_goes_away_mid_call_is_counted_as_disconnected() {
    let (fake, _tools, rt) = setup(&[], limits()).await;
    fake.push([Script::Delay(
        Duration::from_millis(1500),
        Box::new(Script::Turn(Turn::text("too late"))),
    )]);
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "radio", "arguments": {"input": "slow"}}});
    let sent = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .post(format!("{}/mcp", rt.url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .body(call.to_string())
        .send()
        .await;
    match sent {
        Ok(r) => panic!("answered before the model: {}", r.text().await.unwrap()),
        Err(e) => assert!(e.is_timeout(), "{e}"),
    }
    let want =
        "agentry_runtime_invocations_total{protocol=\"mcp\",outcome=\"client_disconnected\"} 1";
    let mut m = String::new();
    for _ in 0..100 {
        m = metrics(&rt).await;
        if m.contains(want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(m.contains(want), "{m}");
    assert!(
        m.contains("agentry_runtime_invocations_in_flight{protocol=\"mcp\"} 0"),
        "{m}"
    );
}

/// One raw `tools/call`: the status, the content type and the body as JSON.
async fn raw_call(
    rt: &RuntimeUnderTest,
    id: Value,
    extra: &[(&str, &str)],
) -> (u16, String, Value) {
    let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "radio", "arguments": {"input": "top song?"}}});
    let mut req = reqwest::Client::new()
        .post(format!("{}/mcp", rt.url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .body(call.to_string());
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let kind = r.headers()["content-type"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, kind, body)
}

#[tokio::test]
async fn the_direct_tools_call_answers_exactly_as_the_sdk_does() {
    let (fake, _tools, rt) = setup(&[], limits()).await;
    fake.push([
        Script::Turn(Turn::text(ANSWER)),
        Script::Turn(Turn::text(ANSWER)),
    ]);
    // An `Mcp-Session-Id` (ignored by the stateless SDK server) keeps a request off the
    // direct path, so the second call is rmcp's own answer.
    let direct = raw_call(&rt, json!(7), &[]).await;
    let sdk = raw_call(&rt, json!(7), &[("mcp-session-id", "ignored")]).await;
    assert_eq!(direct, sdk);
    assert_eq!(
        direct.2,
        json!({"jsonrpc": "2.0", "id": 7, "result": {
            "content": [{"type": "text", "text": ANSWER}], "isError": false}})
    );
    assert_eq!(fake.captured().len(), 2, "both calls reached the model");
    let m = metrics(&rt).await;
    assert!(
        m.contains("agentry_runtime_invocations_total{protocol=\"mcp\",outcome=\"end_turn\"} 2"),
        "{m}"
    );
}
