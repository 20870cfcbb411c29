//! The `a2a` tool kind through the real runtime, against A2A agents built with `a2a-sdk`'s
//! server side (`tests/python/a2a_server.py`): a 1.3 agent (A2A 1.0 and 0.3 on one URL) and
//! a 0.3.26 one shaped like a kagent 0.10 agent, with the Bedrock imitation scripting the call.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;

use std::time::Duration;

use agentry_crds::runtime_config::{A2aToolConfig, ToolConfig, ToolKindConfig};
use agentry_tests::a2a::{PyA2aServer, Sdk};
use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::runtime::{self, RuntimeUnderTest};
use fixtures::{config, limits, secrets, tool_results};
use serde_json::{Value, json};

fn a2a_tool(url: &str) -> ToolConfig {
    ToolConfig {
        approval_required: false,
        name: "echo".into(),
        description: "Ask the echo agent.".into(),
        kind: ToolKindConfig::A2a(A2aToolConfig {
            url: url.into(),
            timeout_seconds: 10,
        }),
    }
}

async fn start(url: &str) -> (FakeBedrock, RuntimeUnderTest) {
    let fake = FakeBedrock::start().await.unwrap();
    let rt = runtime::start(config(vec![a2a_tool(url)], limits()), &fake, secrets()).await;
    (fake, rt)
}

async fn readiness(rt: &RuntimeUnderTest) -> Value {
    let mut last = Value::Null;
    for _ in 0..250 {
        last = reqwest::get(format!("{}/readyz", rt.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if last["a2aAgents"][0]["state"] != "fetching" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    last["a2aAgents"][0].clone()
}

/// Claude calls the tool with `text`; the tool result the runtime sent back to the model.
async fn call(fake: &FakeBedrock, rt: &RuntimeUnderTest, text: &str) -> Value {
    fake.push([
        Script::Turn(Turn::tools(&[("t1", "echo", json!({"input": text}))])),
        Script::Turn(Turn::text("Done.")),
    ]);
    let r = reqwest::Client::new()
        .post(format!("{}/v1/invoke", rt.url))
        .header("traceparent", TRACEPARENT)
        .body(json!({"input": "Ask the echo agent."}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    tool_results(&fake.captured()[1].body)[0].clone()
}

/// The caller's trace context, which reaches the remote agent.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn answers_with_the_remote_agents_text(sdk: Sdk, version: &str) {
    let server = PyA2aServer::start(sdk).await;
    let (fake, rt) = start(&server.url).await;
    let ready = readiness(&rt).await;
    assert_eq!(ready["state"], "ready", "{ready}");
    assert_eq!(ready["protocolVersion"], version);
    let r = call(&fake, &rt, "hello").await;
    assert_eq!(r["status"], "success", "{r}");
    assert_eq!(r["content"], json!([{"text": "echo: hello"}]));
    let sent: Vec<String> = server.requests();
    let want = match version {
        "1.0" => "REQ SendMessage depth=1 version=1.0",
        _ => "REQ message/send depth=1 version=None",
    };
    assert_eq!(sent, [want], "{}", server.requests().join("\n"));
    assert_eq!(server.traceparents(), [TRACEPARENT]);
}

#[tokio::test]
async fn an_a2a_1_3_agent_is_asked_over_a2a_1_0_and_its_artifact_text_is_the_result() {
    answers_with_the_remote_agents_text(Sdk::V13, "1.0").await;
}

#[tokio::test]
async fn a_kagent_like_0_3_agent_is_asked_over_a2a_0_3_and_its_artifact_text_is_the_result() {
    answers_with_the_remote_agents_text(Sdk::V03, "0.3").await;
}

#[tokio::test]
async fn a_failed_remote_task_is_an_error_result_with_the_agents_reason_in_both_versions() {
    for sdk in [Sdk::V13, Sdk::V03] {
        let server = PyA2aServer::start(sdk).await;
        let (fake, rt) = start(&server.url).await;
        assert_eq!(readiness(&rt).await["state"], "ready");
        let r = call(&fake, &rt, "please fail").await;
        assert_eq!(r["status"], "error", "{sdk:?}: {r}");
        let text = r["content"][0]["text"].as_str().unwrap();
        assert_eq!(
            text, "the agent's task ended failed: the echo agent refuses: please fail",
            "{sdk:?}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_agent_is_reported_in_readyz_and_a_call_is_an_error_result() {
    let port = agentry_tests::process::free_port();
    let (fake, rt) = start(&format!("http://127.0.0.1:{port}/")).await;
    let ready = readiness(&rt).await;
    assert_eq!(ready["state"], "unreachable", "{ready}");
    assert!(
        ready["error"].as_str().unwrap().contains("agent-card.json"),
        "{ready}"
    );
    let r = call(&fake, &rt, "hello").await;
    assert_eq!(r["status"], "error", "{r}");
    let text = r["content"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("the agent's card could not be read"),
        "{text}"
    );
}
