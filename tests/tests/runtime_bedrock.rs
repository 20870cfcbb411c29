//! The runtime against the Bedrock imitation through the real aws-sdk-bedrockruntime client:
//! tool round trips, tool failures, limits, throttling, streaming, agent-to-agent calls, the
//! HTTP API's errors and graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use agentry_crds::HttpMethod;
use agentry_crds::limits::EffectiveLimits;
use agentry_crds::runtime_config::*;
use agentry_tests::bedrock::{self, Block, FakeBedrock, Script, Turn};
use agentry_tests::runtime::{self, RuntimeUnderTest, ToolBehaviour, ToolServer};
use serde_json::{Value, json};

fn config(tools: Vec<ToolConfig>, limits: EffectiveLimits) -> RuntimeConfig {
    RuntimeConfig {
        api_version: RUNTIME_CONFIG_API_VERSION.into(),
        agent: AgentIdentity {
            name: "radio".into(),
            namespace: "demo".into(),
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
    }
}

fn http_tool(name: &str, url: String, timeout_seconds: u32) -> ToolConfig {
    ToolConfig {
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
            timeout_seconds,
            input_schema: bedrock::aws_docs_top_song_schema(),
        }),
    }
}

fn agent_tool(name: &str, url: &str) -> ToolConfig {
    ToolConfig {
        name: name.into(),
        description: "Ask another agent.".into(),
        kind: ToolKindConfig::Agent(AgentToolConfig {
            url: url.into(),
            timeout_seconds: 30,
        }),
    }
}

fn limits() -> EffectiveLimits {
    EffectiveLimits {
        max_iterations: 6,
        max_tokens_per_invocation: 100_000,
        timeout_seconds: 20,
        tool_timeout_seconds: 5,
        max_concurrent_invocations: 8,
    }
}

fn secrets() -> BTreeMap<String, String> {
    BTreeMap::from([(
        "AGENTRY_TOOL0_HEADER0".to_string(),
        "s3cr3t-key".to_string(),
    )])
}

async fn setup(
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

async fn invoke(rt: &RuntimeUnderTest, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
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

fn song() -> ToolBehaviour {
    ToolBehaviour::Json(json!({"song": "Elemental Hotel", "artist": "8 Storey Hike"}))
}

fn tool_results(body: &Value) -> Vec<Value> {
    let last = body["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["role"], "user");
    last["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["toolResult"].clone())
        .collect()
}

#[tokio::test]
async fn the_aws_documentation_tool_use_exchange_round_trips() {
    let (fake, tools, rt) = setup(&[("/top_song", song())], limits()).await;
    fake.push([
        Script::Json(bedrock::aws_docs_tool_use_reply()),
        Script::Json(bedrock::aws_docs_final_reply()),
    ]);
    let (status, body, _) = invoke(
        &rt,
        json!({"input": "What is the most popular song on WZPZ?"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["output"],
        "The most popular song on WZPZ is Elemental Hotel by 8 Storey Hike."
    );
    assert_eq!(body["stopReason"], "end_turn");
    assert_eq!(body["iterations"], 2);
    assert_eq!(
        body["usage"],
        json!({"inputTokens": 809, "outputTokens": 62})
    );
    assert_eq!(body["toolCalls"][0]["name"], "top_song");
    assert_eq!(body["toolCalls"][0]["status"], "success");

    // The tool got the model's input as its JSON body, with the secret header.
    let seen = tools.seen();
    assert_eq!(seen[0].body, json!({"sign": "WZPZ"}));
    assert_eq!(seen[0].headers["x-api-key"], "s3cr3t-key");

    // What Bedrock saw: model id, system prompt, tool spec, then the paired tool result.
    let calls = fake.captured();
    assert_eq!(
        calls[0].model_id,
        "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
    );
    assert_eq!(
        calls[0].body["system"][0]["text"],
        "You tell people the top song on a radio station."
    );
    let spec = &calls[0].body["toolConfig"]["tools"][0]["toolSpec"];
    assert_eq!(spec["name"], "top_song");
    assert_eq!(spec["inputSchema"]["json"]["required"], json!(["sign"]));
    assert_eq!(calls[0].body["inferenceConfig"]["maxTokens"], 1024);
    let results = tool_results(&calls[1].body);
    assert_eq!(results[0]["toolUseId"], "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q");
    assert_eq!(
        results[0]["content"][0]["json"],
        json!({"song": "Elemental Hotel", "artist": "8 Storey Hike"})
    );
    assert_eq!(results[0]["status"], "success");
}

#[tokio::test]
async fn two_tool_uses_in_one_reply_run_concurrently_and_return_in_one_message() {
    let slow = ToolBehaviour::Slow(Duration::from_millis(300), json!({"song": "x"}));
    let (fake, tools, rt) = setup(&[("/top_song", slow)], limits()).await;
    fake.push([
        Script::Turn(Turn::tools(&[
            ("a", "top_song", json!({"sign": "WZPZ"})),
            ("b", "top_song", json!({"sign": "WKRP"})),
        ])),
        Script::Turn(Turn::text("Both done.")),
    ]);
    let started = Instant::now();
    let (status, body, _) = invoke(&rt, json!({"input": "both stations?"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(tools.max_in_flight(), 2, "the two calls overlapped");
    assert!(
        started.elapsed() < Duration::from_millis(550),
        "{:?}",
        started.elapsed()
    );
    let results = tool_results(&fake.captured()[1].body);
    let ids: Vec<&str> = results
        .iter()
        .map(|r| r["toolUseId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"]);
}

async fn one_failing_call(
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

#[tokio::test]
async fn an_unknown_tool_gets_an_error_result_naming_the_real_tools() {
    let (result, _) = one_failing_call(
        &[("/top_song", song())],
        Turn::tools(&[("u1", "play_song", json!({}))]),
    )
    .await;
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("unknown tool \"play_song\"") && text.contains("top_song"),
        "{text}"
    );
}

#[tokio::test]
async fn a_tool_answering_500_gives_an_error_result_with_an_excerpt() {
    let routes = [(
        "/top_song",
        ToolBehaviour::Status(500, "database is down".into()),
    )];
    let (result, _) = one_failing_call(
        &routes,
        Turn::tools(&[("t", "top_song", json!({"sign": "WZPZ"}))]),
    )
    .await;
    assert_eq!(
        result["content"][0]["text"],
        "the tool answered HTTP 500: database is down"
    );
}

#[tokio::test]
async fn a_tool_that_outlives_its_timeout_gives_an_error_result() {
    let routes = [(
        "/top_song",
        ToolBehaviour::Slow(Duration::from_secs(5), json!({})),
    )];
    let started = Instant::now();
    let (result, _) = one_failing_call(
        &routes,
        Turn::tools(&[("t", "top_song", json!({"sign": "WZPZ"}))]),
    )
    .await;
    assert_eq!(
        result["content"][0]["text"],
        "top_song timed out after 2000 ms"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn invalid_tool_input_is_refused_without_calling_the_tool() {
    let (result, seen) = one_failing_call(
        &[("/top_song", song())],
        Turn::tools(&[("t", "top_song", json!({"station": "WZPZ"}))]),
    )
    .await;
    assert_eq!(
        result["content"][0]["text"],
        "invalid input for top_song: input.sign: required"
    );
    assert!(seen.is_empty());
}

#[tokio::test]
async fn max_iterations_stops_the_loop_with_its_own_stop_reason() {
    let (fake, _tools, rt) = setup(
        &[("/top_song", song())],
        EffectiveLimits {
            max_iterations: 3,
            ..limits()
        },
    )
    .await;
    fake.fallback(|_| {
        Script::Turn(Turn::tools(&[(
            "again",
            "top_song",
            json!({"sign": "WZPZ"}),
        )]))
    });
    let (status, body, _) = invoke(&rt, json!({"input": "loop forever"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["stopReason"].as_str(), body["iterations"].as_u64()),
        (Some("max_iterations"), Some(3))
    );
    assert_eq!(fake.captured().len(), 3);
}

#[tokio::test]
async fn the_token_budget_stops_the_loop_with_its_own_stop_reason() {
    let (fake, _tools, rt) = setup(
        &[("/top_song", song())],
        EffectiveLimits {
            max_tokens_per_invocation: 250,
            ..limits()
        },
    )
    .await;
    fake.fallback(|_| {
        Script::Turn(Turn::tools(&[("t", "top_song", json!({"sign": "WZPZ"}))]).with_usage(100, 50))
    });
    let (_, body, _) = invoke(&rt, json!({"input": "q"})).await;
    assert_eq!(
        (body["stopReason"].as_str(), body["iterations"].as_u64()),
        (Some("token_budget"), Some(2))
    );
    assert_eq!(
        body["usage"],
        json!({"inputTokens": 200, "outputTokens": 100})
    );
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_and_then_succeeds() {
    let (fake, _tools, rt) = setup(&[], limits()).await;
    fake.push([
        Script::throttled(),
        Script::Turn(Turn::text("Hello after a retry.")),
    ]);
    let (status, body, _) = invoke(&rt, json!({"input": "hi"})).await;
    assert_eq!(
        (status, body["output"].as_str()),
        (200, Some("Hello after a retry."))
    );
    assert_eq!(fake.captured().len(), 2);
}

#[tokio::test]
async fn throttling_past_the_retries_is_a_429_with_retry_after() {
    let (fake, _tools, rt) = setup(&[], limits()).await;
    fake.fallback(|_| Script::throttled());
    let (status, body, headers) = invoke(&rt, json!({"input": "hi"})).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "throttled");
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(fake.captured().len(), 3, "the SDK's three attempts");
}

#[tokio::test]
async fn model_side_errors_are_502_with_the_aws_code() {
    let (fake, _tools, rt) = setup(&[], limits()).await;
    fake.push([Script::Error(400, "ValidationException".into(), "Invocation of model ID anthropic.claude-3-7-sonnet with on-demand throughput isn't supported.".into())]);
    let (status, body, _) = invoke(&rt, json!({"input": "hi"})).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "model_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ValidationException: Invocation of model ID"),
        "{body}"
    );
}

#[tokio::test]
async fn the_deadline_gives_504() {
    let (fake, _tools, rt) = setup(
        &[],
        EffectiveLimits {
            timeout_seconds: 1,
            ..limits()
        },
    )
    .await;
    fake.push([Script::Delay(
        Duration::from_secs(3),
        Box::new(Script::Turn(Turn::text("too late"))),
    )]);
    let started = Instant::now();
    let (status, body, _) = invoke(&rt, json!({"input": "hi"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (504, Some("deadline_exceeded"))
    );
    assert!(started.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_problem_named() {
    let (_fake, _tools, rt) = setup(&[], limits()).await;
    let (status, body, _) = invoke(&rt, json!({"inptu": "hi"})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `inptu`"),
        "{body}"
    );
    let (status, body, _) = invoke(&rt, json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body, _) = invoke(&rt, json!({"input": "x".repeat(2 * 1024 * 1024)})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("body_too_large"))
    );
}

#[tokio::test]
async fn over_the_concurrency_limit_is_a_429() {
    let (fake, _tools, rt) = setup(
        &[],
        EffectiveLimits {
            max_concurrent_invocations: 1,
            ..limits()
        },
    )
    .await;
    fake.fallback(|_| {
        Script::Delay(
            Duration::from_millis(400),
            Box::new(Script::Turn(Turn::text("ok"))),
        )
    });
    let first = invoke(&rt, json!({"input": "one"}));
    let second = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        invoke(&rt, json!({"input": "two"})).await
    };
    let ((s1, _, _), (s2, b2, h2)) = tokio::join!(first, second);
    assert_eq!((s1, s2), (200, 429));
    assert_eq!(b2["error"]["code"], "too_many_requests");
    assert_eq!(h2["retry-after"], "1");
}

/// Server-Sent Events of one streaming invocation: (event name, JSON data).
async fn stream(rt: &RuntimeUnderTest, input: &str) -> Vec<(String, Value)> {
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

#[tokio::test]
async fn streaming_sends_text_deltas_tool_events_and_a_final_summary_in_order() {
    let (fake, tools, rt) = setup(&[("/top_song", song())], limits()).await;
    let intro = Turn {
        blocks: vec![
            Block::Text("Let me look that up.".into()),
            Block::ToolUse {
                id: "t1".into(),
                name: "top_song".into(),
                input: json!({"sign": "WZPZ", "note": "a \"quoted\" value"}),
            },
        ],
        stop_reason: "tool_use".into(),
        usage: (30, 12),
    };
    fake.push([
        Script::Turn(intro),
        Script::Turn(Turn::text(
            "The most popular song on WZPZ is Elemental Hotel by 8 Storey Hike.",
        )),
    ]);
    let events = stream(&rt, "top song on WZPZ?").await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let first_tool = names
        .iter()
        .position(|n| *n == "tool_call_started")
        .unwrap();
    assert!(
        names[..first_tool].iter().all(|n| *n == "text") && first_tool > 1,
        "{names:?}"
    );
    assert_eq!(names[first_tool + 1], "tool_call_finished");
    assert_eq!(*names.last().unwrap(), "done");
    let after: String = events[first_tool + 2..events.len() - 1]
        .iter()
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    let done = &events.last().unwrap().1;
    assert_eq!(
        after,
        done["output"].as_str().unwrap(),
        "text deltas reassemble into the output"
    );
    assert_eq!(
        (done["stopReason"].as_str(), done["iterations"].as_u64()),
        (Some("end_turn"), Some(2))
    );
    // The streamed toolUse input, sent in fragments, arrived whole.
    assert_eq!(
        tools.seen()[0].body,
        json!({"sign": "WZPZ", "note": "a \"quoted\" value"})
    );
    assert!(fake.captured().iter().all(|c| c.stream));
}

#[tokio::test]
async fn malformed_streamed_tool_input_becomes_an_error_result_and_the_conversation_stays_valid() {
    let (fake, tools, rt) = setup(&[("/top_song", song())], limits()).await;
    let bad = Turn {
        blocks: vec![Block::RawToolUse {
            id: "t1".into(),
            name: "top_song".into(),
            raw: "{\"sign\": \"WZ".into(),
        }],
        stop_reason: "tool_use".into(),
        usage: (5, 5),
    };
    fake.push([
        Script::Turn(bad),
        Script::Turn(Turn::text("Let me try again later.")),
    ]);
    let events = stream(&rt, "top song?").await;
    assert_eq!(events.last().unwrap().0, "done");
    assert!(tools.seen().is_empty());
    let second = &fake.captured()[1].body;
    let messages = second["messages"].as_array().unwrap();
    assert_eq!(
        messages[1]["content"][0]["toolUse"]["input"]
            .as_object()
            .unwrap()
            .len(),
        1,
        "sent back as a JSON object"
    );
    let result = tool_results(second).remove(0);
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{result}"
    );
}

#[tokio::test]
async fn a_throttling_exception_in_the_stream_ends_with_an_error_event() {
    let (fake, _tools, rt) = setup(&[], limits()).await;
    fake.fallback(|_| {
        Script::StreamException(
            Turn::text("partial answer that will not finish"),
            "throttlingException".into(),
        )
    });
    let events = stream(&rt, "hi").await;
    let (name, data) = events.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(data["error"]["code"], "throttled", "{data}");
}

#[tokio::test]
async fn an_agent_calls_another_agent_and_a_cycle_ends_at_the_depth_limit() {
    let fake = FakeBedrock::start().await.unwrap();
    // B answers questions directly.
    let b = runtime::start(config(vec![], limits()), &fake, BTreeMap::new()).await;
    // A asks B once, then answers.
    let a = runtime::start(
        config(vec![agent_tool("ask_b", &b.url)], limits()),
        &fake,
        BTreeMap::new(),
    )
    .await;
    fake.push([
        Script::Turn(Turn::tools(&[(
            "ab",
            "ask_b",
            json!({"input": "What plays on WZPZ?"}),
        )])),
        Script::Turn(Turn::text("Elemental Hotel, mostly.")),
        Script::Turn(Turn::text("B says: Elemental Hotel.")),
    ]);
    let (status, body, _) = invoke(&a, json!({"input": "Ask B what plays on WZPZ."})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"], "B says: Elemental Hotel.");
    let calls = fake.captured();
    assert_eq!(
        calls[1].body["messages"][0]["content"][0]["text"], "What plays on WZPZ?",
        "B got A's question"
    );
    assert_eq!(
        tool_results(&calls[2].body)[0]["content"][0]["text"],
        "Elemental Hotel, mostly."
    );

    // C uses itself as a tool: every hop asks again until the depth limit refuses.
    let fake = FakeBedrock::start().await.unwrap();
    let selfish = start_self_calling(&fake).await;
    fake.fallback(|body| {
        let last = &body["messages"].as_array().unwrap().last().unwrap()["content"][0];
        if last.get("toolResult").is_some() {
            Script::Turn(Turn::text("done"))
        } else {
            Script::Turn(Turn::tools(&[(
                "again",
                "ask_self",
                json!({"input": "and again"}),
            )]))
        }
    });
    let (status, body, _) = invoke(&selfish, json!({"input": "start"})).await;
    assert_eq!(status, 200, "{body}");
    let refusals: Vec<String> = fake
        .captured()
        .iter()
        .filter_map(|c| tool_results_opt(&c.body))
        .filter(|t| t.contains("over the limit of 5"))
        .collect();
    assert_eq!(refusals.len(), 1, "exactly the sixth hop is refused");
    assert_eq!(
        fake.captured().len(),
        12,
        "six invocations, two model calls each"
    );
}

fn tool_results_opt(body: &Value) -> Option<String> {
    let last = body["messages"].as_array()?.last()?;
    last["content"][0]["toolResult"]["content"][0]["text"]
        .as_str()
        .map(String::from)
}

/// A runtime whose only tool is itself.
async fn start_self_calling(fake: &FakeBedrock) -> RuntimeUnderTest {
    // Bind first to learn the URL, then serve the runtime on that listener.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let cfg = config(vec![agent_tool("ask_self", &url)], limits());
    runtime::start_on(listener, cfg, fake, BTreeMap::new()).await
}

#[tokio::test]
async fn shutdown_lets_an_invocation_in_flight_finish() {
    let (fake, _tools, mut rt) = setup(&[], limits()).await;
    fake.push([Script::Delay(
        Duration::from_millis(600),
        Box::new(Script::Turn(Turn::text("finished anyway"))),
    )]);
    let url = rt.url.clone();
    let request = tokio::spawn(async move {
        let r = reqwest::Client::new()
            .post(format!("{url}/v1/invoke"))
            .body(json!({"input": "slow"}).to_string())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    rt.shutdown();
    let (status, text) = request.await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("finished anyway"));
    tokio::time::timeout(Duration::from_secs(5), &mut rt.task)
        .await
        .expect("the server stops after the request")
        .unwrap();
    assert!(
        reqwest::Client::new()
            .get(format!("{}/healthz", rt.url))
            .send()
            .await
            .is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn guardrail_and_prompt_caching_settings_reach_bedrock() {
    let fake = FakeBedrock::start().await.unwrap();
    let mut cfg = config(
        vec![http_tool(
            "top_song",
            "http://127.0.0.1:9/top_song".into(),
            2,
        )],
        limits(),
    );
    cfg.model.prompt_caching = true;
    cfg.model.stop_sequences = vec!["\n\nHuman:".into()];
    cfg.model.guardrail = Some(GuardrailConfig {
        identifier: "gr-abc123".into(),
        version: "2".into(),
        trace: Some(agentry_crds::GuardrailTrace::Enabled),
    });
    let rt = runtime::start(cfg, &fake, secrets()).await;
    fake.push([Script::Turn(Turn::text("ok"))]);
    let (status, _, _) = invoke(&rt, json!({"input": "hi"})).await;
    assert_eq!(status, 200);
    let body = &fake.captured()[0].body;
    assert_eq!(
        body["guardrailConfig"],
        json!({"guardrailIdentifier": "gr-abc123", "guardrailVersion": "2", "trace": "enabled"})
    );
    assert_eq!(
        body["system"][1],
        json!({"cachePoint": {"type": "default"}}),
        "a cache point after the system prompt"
    );
    assert_eq!(
        body["toolConfig"]["tools"][1],
        json!({"cachePoint": {"type": "default"}}),
        "and after the tools"
    );
    assert_eq!(
        body["inferenceConfig"]["stopSequences"],
        json!(["\n\nHuman:"])
    );
    assert!((body["inferenceConfig"]["temperature"].as_f64().unwrap() - 0.2).abs() < 1e-6);
}

#[tokio::test]
async fn a_get_tool_sends_the_input_as_query_parameters() {
    let fake = FakeBedrock::start().await.unwrap();
    let tools = ToolServer::start(&[("/top_song", song())]).await;
    let mut tool = http_tool("top_song", tools.url("/top_song"), 2);
    if let ToolKindConfig::Http(h) = &mut tool.kind {
        h.method = HttpMethod::Get;
    }
    let rt = runtime::start(config(vec![tool], limits()), &fake, secrets()).await;
    fake.push([
        Script::Turn(Turn::tools(&[(
            "t",
            "top_song",
            json!({"sign": "WZPZ", "limit": 3}),
        )])),
        Script::Turn(Turn::text("ok")),
    ]);
    let (status, _, _) = invoke(&rt, json!({"input": "q"})).await;
    assert_eq!(status, 200);
    let seen = tools.seen();
    assert_eq!(seen[0].query, "limit=3&sign=WZPZ");
    assert_eq!(seen[0].body, Value::Null);
}

#[tokio::test]
async fn content_blocks_the_loop_does_not_use_are_ignored_without_failing() {
    let (fake, _tools, rt) = setup(&[], limits()).await;
    fake.push([Script::Json(json!({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "Thinking about radio.", "signature": "sig"}}},
            {"text": "Radio is fun."}
        ]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7},
        "metrics": {"latencyMs": 1}
    }))]);
    let (status, body, _) = invoke(&rt, json!({"input": "hi"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"], "Radio is fun.");
}

#[tokio::test]
async fn an_agent_call_passes_the_hop_count_and_the_remaining_deadline() {
    let fake = FakeBedrock::start().await.unwrap();
    let callee = ToolServer::start(&[(
        "/v1/invoke",
        ToolBehaviour::Json(json!({"output": "hello from B"})),
    )])
    .await;
    let rt = runtime::start(
        config(
            vec![agent_tool("ask_b", &format!("http://{}", callee.addr))],
            limits(),
        ),
        &fake,
        BTreeMap::new(),
    )
    .await;
    fake.push([
        Script::Turn(Turn::tools(&[("x", "ask_b", json!({"input": "hi B"}))])),
        Script::Turn(Turn::text("ok")),
    ]);
    let r = reqwest::Client::new()
        .post(format!("{}/v1/invoke", rt.url))
        .header("x-agentry-call-depth", "2")
        .body(json!({"input": "q"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = callee.seen();
    assert_eq!(seen[0].body, json!({"input": "hi B"}));
    assert_eq!(seen[0].headers["x-agentry-call-depth"], "3");
    let ms: u64 = seen[0].headers["x-agentry-deadline-ms"].parse().unwrap();
    assert!(ms > 0 && ms <= 30_000, "{ms}");
}

#[tokio::test]
async fn other_aws_errors_map_to_502_with_their_code_after_the_sdks_retries_where_it_retries() {
    for (status, code, attempts) in [
        (408, "ModelTimeoutException", 1),
        (403, "AccessDeniedException", 1),
        (503, "ServiceUnavailableException", 3),
    ] {
        let (fake, _tools, rt) = setup(&[], limits()).await;
        fake.fallback(move |_| {
            Script::Error(status, code.into(), format!("{code} from the test server"))
        });
        let (s, body, _) = invoke(&rt, json!({"input": "hi"})).await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (502, Some("model_error")),
            "{code}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().contains(code),
            "{body}"
        );
        assert_eq!(fake.captured().len(), attempts, "{code}");
    }
}
