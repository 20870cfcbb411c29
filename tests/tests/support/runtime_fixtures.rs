//! Shared fixtures of the runtime suites: configurations, the runtime and tool server set up
//! against the Bedrock imitation, and request helpers.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use agentry_crds::HttpMethod;
use agentry_crds::limits::EffectiveLimits;
use agentry_crds::runtime_config::*;
use agentry_tests::bedrock::{self, FakeBedrock, Script, Turn};
use agentry_tests::runtime::{self, RuntimeUnderTest, ToolBehaviour, ToolServer};
use serde_json::{Value, json};

pub fn config(tools: Vec<ToolConfig>, limits: EffectiveLimits) -> RuntimeConfig {
    RuntimeConfig {
        api_version: RUNTIME_CONFIG_API_VERSION.into(),
        agent: AgentIdentity {
            name: "radio".into(),
            namespace: "demo".into(),
            description: None,
        },
        model: ModelConfig {
            id: "us.anthropic.claude-3-7-sonnet-20250219-v1:0".into(),
            region: None,
            max_tokens: 1024,
            temperature: Some(0.2),
            top_p: None,
            stop_sequences: vec![],
            guardrail: None,
            prompt_caching: false,
        },
        system_prompt: "You tell people the top song on a radio station.".into(),
        limits,
        tools,
        memory: None,
    }
}

pub fn http_tool(name: &str, url: String, timeout_seconds: u32) -> ToolConfig {
    ToolConfig {
        approval_required: false,
        name: name.into(),
        description: "Get the most popular song played on a radio station.".into(),
        kind: ToolKindConfig::Http(HttpToolConfig {
            url,
            method: HttpMethod::Post,
            headers: vec![HeaderConfig {
                name: "x-api-key".into(),
                value: None,
                value_from_env: Some("AGENTRY_TOOL0_HEADER0".into()),
            }],
            auth: None,
            timeout_seconds,
            input_schema: bedrock::aws_docs_top_song_schema(),
        }),
    }
}

pub fn agent_tool(name: &str, url: &str) -> ToolConfig {
    ToolConfig {
        approval_required: false,
        name: name.into(),
        description: "Ask another agent.".into(),
        kind: ToolKindConfig::Agent(AgentToolConfig {
            url: url.into(),
            timeout_seconds: 30,
        }),
    }
}

pub fn limits() -> EffectiveLimits {
    EffectiveLimits {
        max_iterations: 6,
        max_tokens_per_invocation: 100_000,
        timeout_seconds: 20,
        tool_timeout_seconds: 5,
        max_concurrent_invocations: 8,
    }
}

pub fn secrets() -> BTreeMap<String, String> {
    BTreeMap::from([(
        "AGENTRY_TOOL0_HEADER0".to_string(),
        "s3cr3t-key".to_string(),
    )])
}

pub async fn setup(
    routes: &[(&str, ToolBehaviour)],
    limits: EffectiveLimits,
) -> (FakeBedrock, ToolServer, RuntimeUnderTest) {
    let fake = FakeBedrock::start().await.unwrap();
    let tools = ToolServer::start(routes).await;
    let rt = runtime::start(
        config(
            vec![http_tool("top_song", tools.url("/top_song"), 2)],
            limits,
        ),
        &fake,
        secrets(),
    )
    .await;
    (fake, tools, rt)
}

/// A runtime already told to stop, in a 300 s drain: every protocol must refuse new work with 503
/// while it lasts. The imitation and tool server are returned so they outlive the test.
pub async fn draining() -> (FakeBedrock, ToolServer, RuntimeUnderTest) {
    let fake = FakeBedrock::start().await.unwrap();
    let tools = ToolServer::start(&[]).await;
    let cfg = config(
        vec![http_tool("top_song", tools.url("/top_song"), 2)],
        limits(),
    );
    // Draining lasts past any test's end (the runtime stops with the test): a Python SDK's
    // first call may wait for another test to make its virtual environment, which took over
    // the 15 s this was on a busy machine.
    let options = agentry_runtime::ServeOptions {
        drain_delay: std::time::Duration::from_secs(300),
        ..agentry_runtime::ServeOptions::default()
    };
    let max = agentry_runtime::bedrock::DEFAULT_MAX_REPLY_BYTES;
    let mut rt = runtime::start_with(cfg, &fake, secrets(), options, max).await;
    rt.shutdown();
    (fake, tools, rt)
}

pub async fn invoke(
    rt: &RuntimeUnderTest,
    body: Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = reqwest::Client::new()
        .post(format!("{}/v1/invoke", rt.url))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        headers,
    )
}

pub fn song() -> ToolBehaviour {
    ToolBehaviour::Json(json!({"song": "Elemental Hotel", "artist": "8 Storey Hike"}))
}

pub fn tool_results(body: &Value) -> Vec<Value> {
    let last = body["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["role"], "user");
    last["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["toolResult"].clone())
        .collect()
}

pub async fn one_failing_call(
    routes: &[(&str, ToolBehaviour)],
    turn: Turn,
) -> (Value, Vec<agentry_tests::runtime::ToolRequest>) {
    let (fake, tools, rt) = setup(routes, limits()).await;
    fake.push([
        Script::Turn(turn),
        Script::Turn(Turn::text("Sorry, I could not find out.")),
    ]);
    let (status, body, _) = invoke(&rt, json!({"input": "top song?"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["toolCalls"][0]["status"], "error");
    let result = tool_results(&fake.captured()[1].body).remove(0);
    assert_eq!(result["status"], "error");
    (result, tools.seen())
}

/// Server-Sent Events of one streaming invocation: (event name, JSON data).
pub async fn stream(rt: &RuntimeUnderTest, input: &str) -> Vec<(String, Value)> {
    let r = reqwest::Client::new()
        .post(format!("{}/v1/invoke", rt.url))
        .header("accept", "text/event-stream")
        .body(json!({"input": input}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty() && !f.starts_with(':'))
        .map(|frame| {
            let event = frame
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_default()
                .to_string();
            let data = frame
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect::<Vec<_>>()
                .join("\n");
            (event, serde_json::from_str(&data).unwrap_or(Value::Null))
        })
        .collect()
}

pub fn tool_results_opt(body: &Value) -> Option<String> {
    let last = body["messages"].as_array()?.last()?;
    last["content"][0]["toolResult"]["content"][0]["text"]
        .as_str()
        .map(String::from)
}

/// A runtime whose only tool is itself.
pub async fn start_self_calling(fake: &FakeBedrock) -> RuntimeUnderTest {
    // Bind first to learn the URL, then serve the runtime on that listener.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let cfg = config(vec![agent_tool("ask_self", &url)], limits());
    runtime::start_on(listener, cfg, fake, BTreeMap::new()).await
}
