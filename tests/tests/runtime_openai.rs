//! OpenAI chat completions against the real runtime, in-process, with the official `openai`
//! Python SDK as the client (`tests/python/openai_client.py`, retries off) and the Bedrock
//! imitation scripting the model, tool round trips included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;

use std::time::Duration;

use agentry_tests::bedrock::{Block, FakeBedrock, Script, Turn};
use agentry_tests::openai;
use agentry_tests::runtime::RuntimeUnderTest;
use fixtures::{invoke, limits, setup, song};
use serde_json::{Value, json};

const PROMPT: &str = "You tell people the top song on a radio station.";
const ANSWER: &str = "The most popular song on WZPZ is Elemental Hotel by 8 Storey Hike.";

async fn sdk(rt: &RuntimeUnderTest, call: &str, kwargs: Value) -> Value {
    openai::run(json!({"base_url": format!("{}/v1", rt.url), "call": call, "kwargs": kwargs})).await
}

fn ask(text: &str) -> Value {
    json!({"model": "radio", "messages": [{"role": "user", "content": text}]})
}

/// The tool round trip of the AWS example: a top_song call, then the answer.
fn round_trip(fake: &FakeBedrock, narration: Option<&str>) {
    let mut call = Turn::tools(&[("t1", "top_song", json!({"sign": "WZPZ"}))]);
    if let Some(text) = narration {
        call.blocks.insert(0, Block::Text(text.into()));
    }
    fake.push([
        Script::Turn(call.with_usage(20, 10)),
        Script::Turn(Turn::text(ANSWER).with_usage(40, 12)),
    ]);
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
async fn a_completion_answers_after_the_agents_tool_round_trip_with_usage_summed_over_calls() {
    let (fake, tools, rt) = setup(&[("/top_song", song())], limits()).await;
    round_trip(&fake, None);
    let r = sdk(&rt, "create", ask("What is the top song on WZPZ?")).await;
    assert_eq!(r["content"], ANSWER, "{r}");
    assert_eq!(
        (
            &r["object"],
            &r["model"],
            &r["role"],
            &r["finish_reason"],
            &r["choices"]
        ),
        (
            &json!("chat.completion"),
            &json!("radio"),
            &json!("assistant"),
            &json!("stop"),
            &json!(1)
        ),
        "{r}"
    );
    assert!(r["id"].as_str().unwrap().starts_with("chatcmpl-"), "{r}");
    let usage = &r["usage"];
    assert_eq!(
        (
            &usage["prompt_tokens"],
            &usage["completion_tokens"],
            &usage["total_tokens"]
        ),
        (&json!(60), &json!(22), &json!(82)),
        "{r}"
    );
    assert_eq!(tools.seen()[0].body, json!({"sign": "WZPZ"}));
    let captured = fake.captured();
    assert_eq!(captured.len(), 2);
    assert!(!captured[0].stream);
    let m = metrics(&rt).await;
    assert!(
        m.contains("agentry_runtime_invocations_total{protocol=\"openai\",outcome=\"end_turn\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn a_stream_with_include_usage_concatenates_to_the_answer_and_ends_with_a_usage_chunk() {
    let (fake, _tools, rt) = setup(&[("/top_song", song())], limits()).await;
    round_trip(&fake, None);
    let mut kwargs = ask("What is the top song on WZPZ?");
    kwargs["stream_options"] = json!({"include_usage": true});
    let r = sdk(&rt, "stream", kwargs).await;
    assert_eq!(r["text"], ANSWER, "{r}");
    assert_eq!(r["roles"], json!(["assistant"]), "{r}");
    assert_eq!(r["finish_reasons"], json!(["stop"]), "{r}");
    assert_eq!(r["usage_chunks"], 1, "{r}");
    assert_eq!(r["usage"]["total_tokens"], 82, "{r}");
    assert_eq!(
        r["ids"].as_array().unwrap().len(),
        1,
        "one id for every chunk: {r}"
    );
    assert!(fake.captured().iter().all(|c| c.stream));
}

#[tokio::test]
async fn text_before_a_tool_call_is_part_of_the_answer_streamed_or_not() {
    let (fake, _tools, rt) = setup(&[("/top_song", song())], limits()).await;
    let want = format!("Let me look that up.\n\n{ANSWER}");
    round_trip(&fake, Some("Let me look that up."));
    let whole = sdk(&rt, "create", ask("top song?")).await;
    assert_eq!(whole["content"], want, "{whole}");
    round_trip(&fake, Some("Let me look that up."));
    let streamed = sdk(&rt, "stream", ask("top song?")).await;
    assert_eq!(streamed["text"], want, "{streamed}");
    assert_eq!(
        streamed["usage"],
        Value::Null,
        "no usage chunk unless asked: {streamed}"
    );
}

#[tokio::test]
async fn client_system_messages_follow_the_agents_prompt_and_bounds_reach_bedrock() {
    let (fake, _tools, rt) = setup(&[], limits()).await;
    fake.push([Script::Turn(Turn::text("Bonjour."))]);
    let r = sdk(
        &rt,
        "create",
        json!({"model": "radio", "max_tokens": 100, "temperature": 0.5, "messages": [
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r["content"], "Bonjour.", "{r}");
    let body = &fake.captured()[0].body;
    assert_eq!(
        body["system"],
        json!([{"text": PROMPT}, {"text": "Answer in French."}]),
        "{body}"
    );
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"text": "hi"}]}])
    );
    assert_eq!(body["inferenceConfig"]["maxTokens"], 100, "{body}");
    assert_eq!(body["inferenceConfig"]["temperature"], 0.5, "{body}");
}

#[tokio::test]
async fn the_models_list_holds_the_agent() {
    let (_fake, _tools, rt) = setup(&[], limits()).await;
    let r = sdk(&rt, "models", json!({})).await;
    assert_eq!(r, json!({"ids": ["radio"], "owned_by": ["agentry"]}));
}

#[tokio::test]
async fn refusals_raise_the_sdks_exception_classes_with_param_and_code_before_any_model_call() {
    let (fake, _tools, rt) = setup(&[], limits()).await;
    let mut with_tools = ask("hi");
    with_tools["tools"] = json!([{"type": "function",
        "function": {"name": "x", "parameters": {"type": "object"}}}]);
    let e = sdk(&rt, "create", with_tools).await;
    assert_eq!(
        (
            &e["exception"],
            &e["status"],
            &e["param"],
            &e["code"],
            &e["type"]
        ),
        (
            &json!("BadRequestError"),
            &json!(400),
            &json!("tools"),
            &json!("unsupported_parameter"),
            &json!("invalid_request_error")
        ),
        "{e}"
    );
    assert!(
        e["message"].as_str().unwrap().contains("owns its tools"),
        "{e}"
    );
    let mut too_long = ask("hi");
    too_long["max_completion_tokens"] = json!(5000);
    let e = sdk(&rt, "create", too_long).await;
    assert_eq!(
        (&e["exception"], &e["param"]),
        (&json!("BadRequestError"), &json!("max_completion_tokens")),
        "{e}"
    );
    assert!(e["message"].as_str().unwrap().contains("1 to 1024"), "{e}");
    let mut other = ask("hi");
    other["model"] = json!("gpt-4o");
    let e = sdk(&rt, "create", other).await;
    assert_eq!(
        (&e["exception"], &e["status"], &e["code"]),
        (
            &json!("NotFoundError"),
            &json!(404),
            &json!("model_not_found")
        ),
        "{e}"
    );
    assert!(
        fake.captured().is_empty(),
        "no refused request reaches Bedrock"
    );
}

#[tokio::test]
async fn a_limit_stop_finishes_with_length() {
    let mut l = limits();
    l.max_iterations = 1;
    let (fake, tools, rt) = setup(&[("/top_song", song())], l).await;
    round_trip(&fake, Some("Let me look that up."));
    let r = sdk(&rt, "create", ask("top song?")).await;
    assert_eq!(
        (&r["finish_reason"], &r["content"]),
        (&json!("length"), &json!("Let me look that up.")),
        "{r}"
    );
    assert!(
        tools.seen().is_empty(),
        "no tool runs when no model call may follow"
    );
}

#[tokio::test]
async fn model_failures_are_server_errors_and_inside_a_stream_an_error_event() {
    let (fake, _tools, rt) = setup(&[], limits()).await;
    let refused = || {
        Script::Error(
            400,
            "ValidationException".into(),
            "The model id is invalid.".into(),
        )
    };
    fake.push([refused()]);
    let e = sdk(&rt, "create", ask("hi")).await;
    assert_eq!(
        (&e["exception"], &e["status"], &e["code"], &e["type"]),
        (
            &json!("InternalServerError"),
            &json!(502),
            &json!("model_error"),
            &json!("server_error")
        ),
        "{e}"
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("The model id is invalid."),
        "{e}"
    );
    fake.push([refused()]);
    let e = sdk(&rt, "stream", ask("hi")).await;
    assert_eq!(e["exception"], "APIError", "{e}");
    assert_eq!(e["body"]["code"], "model_error", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("The model id is invalid."),
        "{e}"
    );
}

/// Fills the runtime's two slots with slow invocations on `path` (5 s: past the Python
/// client's start while the other tests of the suite start theirs); returns their tasks.
fn fill(
    rt: &RuntimeUnderTest,
    fake: &FakeBedrock,
    path: &str,
    body: Value,
) -> Vec<tokio::task::JoinHandle<u16>> {
    let slow = || {
        Script::Delay(
            Duration::from_millis(5000),
            Box::new(Script::Turn(Turn::text("late"))),
        )
    };
    fake.push([slow(), slow()]);
    (0..2)
        .map(|_| {
            let url = format!("{}{path}", rt.url);
            let body = body.to_string();
            tokio::spawn(async move {
                let r = reqwest::Client::new()
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                r.status().as_u16()
            })
        })
        .collect()
}

async fn until_in_flight(rt: &RuntimeUnderTest, protocol: &str, n: u32) {
    let want = format!("agentry_runtime_invocations_in_flight{{protocol=\"{protocol}\"}} {n}");
    for _ in 0..100 {
        if metrics(rt).await.contains(&want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never {want}");
}

#[tokio::test]
async fn max_concurrent_invocations_counts_invoke_and_chat_completions_together() {
    let mut l = limits();
    l.max_concurrent_invocations = 2;
    let (fake, _tools, rt) = setup(&[], l).await;
    let busy = fill(&rt, &fake, "/v1/invoke", json!({"input": "slow"}));
    until_in_flight(&rt, "invoke", 2).await;
    let e = sdk(&rt, "create", ask("hi")).await;
    assert_eq!(
        (&e["exception"], &e["status"], &e["code"], &e["retry_after"]),
        (
            &json!("RateLimitError"),
            &json!(429),
            &json!("rate_limit_exceeded"),
            &json!("1")
        ),
        "{e}"
    );
    for t in busy {
        assert_eq!(t.await.unwrap(), 200);
    }
    let busy = fill(&rt, &fake, "/v1/chat/completions", ask("slow"));
    until_in_flight(&rt, "openai", 2).await;
    let (status, body, headers) = invoke(&rt, json!({"input": "hi"})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (429, &json!("too_many_requests")),
        "{body}"
    );
    assert_eq!(headers["retry-after"], "1");
    for t in busy {
        assert_eq!(t.await.unwrap(), 200);
    }
    let m = metrics(&rt).await;
    for want in [
        "agentry_runtime_invocations_total{protocol=\"openai\",outcome=\"over_capacity\"} 1",
        "agentry_runtime_invocations_total{protocol=\"invoke\",outcome=\"over_capacity\"} 1",
        "agentry_runtime_invocations_total{protocol=\"openai\",outcome=\"end_turn\"} 2",
        "agentry_runtime_invocations_total{protocol=\"invoke\",outcome=\"end_turn\"} 2",
        "agentry_runtime_invocations_in_flight{protocol=\"openai\"} 0",
    ] {
        assert!(m.contains(want), "{want} missing:\n{m}");
    }
}

#[tokio::test]
async fn a_draining_runtime_refuses_chat_completions_with_503() {
    let (fake, _tools, rt) = fixtures::draining().await;
    let mut ready = 0;
    for _ in 0..100 {
        ready = reqwest::get(format!("{}/readyz", rt.url))
            .await
            .unwrap()
            .status()
            .as_u16();
        if ready == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ready, 503);
    let e = sdk(&rt, "create", ask("hi")).await;
    assert_eq!(
        (&e["exception"], &e["status"], &e["code"], &e["retry_after"]),
        (
            &json!("InternalServerError"),
            &json!(503),
            &json!("shutting_down"),
            &json!("1")
        ),
        "{e}"
    );
    assert!(fake.captured().is_empty());
}

#[tokio::test]
async fn a_client_that_goes_away_is_counted_as_disconnected_streamed_or_not() {
    for stream in [false, true] {
        let (fake, _tools, rt) = setup(&[], limits()).await;
        fake.push([Script::Delay(
            Duration::from_millis(1500),
            Box::new(Script::Turn(Turn::text("too late"))),
        )]);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let mut body = ask("slow");
        body["stream"] = json!(stream);
        match client
            .post(format!("{}/v1/chat/completions", rt.url))
            .body(body.to_string())
            .send()
            .await
        {
            Ok(r) => drop(r.text().await),
            Err(e) => assert!(e.is_timeout(), "{e}"),
        }
        let want = "agentry_runtime_invocations_total{protocol=\"openai\",outcome=\"client_disconnected\"} 1";
        let mut m = String::new();
        for _ in 0..100 {
            m = metrics(&rt).await;
            if m.contains(want) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(m.contains(want), "stream={stream}\n{m}");
        assert!(
            m.contains("agentry_runtime_invocations_in_flight{protocol=\"openai\"} 0"),
            "stream={stream}\n{m}"
        );
    }
}
