//! The runtime against the Bedrock imitation through the real SDK: tool round trips, tool
//! failures as error results, settings passed to Bedrock, and agent-to-agent calls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use agentry_crds::HttpMethod;
use agentry_crds::runtime_config::*;
use agentry_tests::bedrock::{self, FakeBedrock, Script, Turn};
use agentry_tests::runtime::{self, ToolBehaviour, ToolServer};
use fixtures::*;
use serde_json::{Value, json};

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
