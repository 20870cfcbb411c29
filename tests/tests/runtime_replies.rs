//! Broken model replies, clients that go away, and requests that must be refused: each is
//! answered with its documented status and code, and counted in the metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;

use std::time::Duration;

use agentry_tests::bedrock::{FakeBedrock, Script, Turn, converse_body, stream_frames};
use agentry_tests::runtime::{self, RuntimeUnderTest};
use fixtures::*;
use serde_json::{Value, json};

fn json_headers() -> Vec<(&'static str, String)> {
    vec![("content-type", "application/json".into())]
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
async fn a_client_that_disconnects_is_counted_and_its_model_call_cancelled() {
    for streaming in [false, true] {
        let (fake, _tools, rt) = setup(&[], limits()).await;
        fake.push([Script::Delay(
            Duration::from_millis(1500),
            Box::new(Script::Turn(Turn::text("too late"))),
        )]);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let mut req = client
            .post(format!("{}/v1/invoke", rt.url))
            .body(json!({"input": "slow"}).to_string());
        if streaming {
            req = req.header("accept", "text/event-stream");
        }
        match req.send().await {
            Ok(r) => drop(r.text().await),
            Err(e) => assert!(e.is_timeout(), "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let m = metrics(&rt).await;
        assert!(
            m.contains("agentry_runtime_invocations_in_flight{protocol=\"invoke\"} 0"),
            "stream={streaming}\n{m}"
        );
        assert!(
            m.contains("agentry_runtime_invocations_total{protocol=\"invoke\",outcome=\"client_disconnected\"} 1"),
            "stream={streaming}\n{m}"
        );
        assert!(
            m.contains("outcome=\"cancelled\"} 1"),
            "the Bedrock call is counted as cancelled; stream={streaming}\n{m}"
        );
    }
}

#[tokio::test]
async fn a_repeated_tool_use_id_runs_one_call_and_keeps_its_own_result() {
    for streaming in [false, true] {
        let (fake, tools, rt) = setup(&[("/top_song", song())], limits()).await;
        fake.push([
            Script::Turn(Turn::tools(&[
                ("dup", "top_song", json!({"sign": "WZPZ"})),
                ("dup", "nope", json!({})),
            ])),
            Script::Turn(Turn::text("Elemental Hotel.")),
        ]);
        if streaming {
            let events = stream(&rt, "top song?").await;
            assert_eq!(
                events
                    .iter()
                    .filter(|(n, _)| n == "tool_call_finished")
                    .count(),
                1,
                "{events:?}"
            );
        } else {
            let (status, body, _) = invoke(&rt, json!({"input": "top song?"})).await;
            assert_eq!(status, 200, "{body}");
        }
        let second = &fake.captured()[1].body;
        let assistant = &second["messages"][1]["content"];
        assert_eq!(
            assistant.as_array().unwrap().len(),
            1,
            "the repeat is not sent back: {assistant}"
        );
        let results = tool_results(second);
        assert_eq!(results.len(), 1, "{results:?}");
        assert_eq!(results[0]["toolUseId"], "dup");
        assert_eq!(
            results[0]["status"], "success",
            "stream={streaming}: {results:?}"
        );
        assert_eq!(tools.seen().len(), 1);
    }
}

#[tokio::test]
async fn incomplete_replies_are_errors_never_a_made_up_end_turn() {
    let no_stop = json!({"output": {"message": {"role": "assistant", "content": [{"text": "half"}]}}, "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}});
    for (name, script) in [
        ("empty body", Script::Raw(200, json_headers(), vec![])),
        ("no stopReason", Script::Raw(200, json_headers(), no_stop.to_string().into_bytes())),
        ("no output", Script::Raw(200, json_headers(), br#"{"stopReason": "end_turn", "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}}"#.to_vec())),
    ] {
        let (fake, _tools, rt) = setup(&[], limits()).await;
        fake.push([script]);
        let (status, body, _) = invoke(&rt, json!({"input": "hi"})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (502, Some("model_reply_incomplete")), "{name}: {body}");
    }
    // A stream cut before its messageStop.
    let (fake, _tools, rt) = setup(&[], limits()).await;
    let mut frames = stream_frames(&Turn::text("the answer is"), None);
    frames.truncate(frames.len() - 2);
    fake.push([Script::Frames(frames)]);
    let events = stream(&rt, "hi").await;
    let (name, data) = events.last().unwrap();
    assert_eq!(name, "error", "{events:?}");
    assert_eq!(data["error"]["code"], "model_reply_incomplete");
}

#[tokio::test]
async fn a_bedrock_that_answered_unreadably_is_not_called_unreachable() {
    let html = |status: u16, extra: Vec<(&'static str, String)>| {
        let mut h = vec![("content-type", "text/html".to_string())];
        h.extend(extra);
        Script::Raw(
            status,
            h,
            b"<html><body><h1>Service Temporarily Unavailable</h1></body></html>".to_vec(),
        )
    };
    let mut truncated = converse_body(&Turn::text("hello")).to_string();
    truncated.truncate(30);
    let cases: Vec<(&str, Vec<Script>, Vec<&str>)> = vec![
        ("HTML with 200", vec![html(200, vec![])], vec!["HTTP 200"]),
        (
            "truncated JSON",
            vec![Script::Raw(200, json_headers(), truncated.into_bytes())],
            vec!["HTTP 200"],
        ),
        // Retried by the SDK as a transient error (3 attempts in the test configuration).
        (
            "a 503 page",
            (0..3).map(|_| html(503, vec![])).collect(),
            vec!["HTTP 503"],
        ),
        (
            "a 502 page with a request id",
            (0..3)
                .map(|_| html(502, vec![("x-amzn-requestid", "req-4711".into())]))
                .collect(),
            vec!["HTTP 502", "req-4711"],
        ),
    ];
    for (name, scripts, wants) in cases {
        let (fake, _tools, rt) = setup(&[], limits()).await;
        fake.push(scripts);
        let (status, body, _) = invoke(&rt, json!({"input": "hi"})).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (502, Some("bedrock_bad_response")),
            "{name}: {body}"
        );
        for want in wants {
            assert!(
                body["error"]["message"].as_str().unwrap().contains(want),
                "{name}: {body}"
            );
        }
        assert!(
            metrics(&rt).await.contains("outcome=\"bad_response\"} 1"),
            "{name}"
        );
    }
    // A corrupt event-stream frame.
    let (fake, _tools, rt) = setup(&[], limits()).await;
    let mut frames = stream_frames(&Turn::text("hello there"), None);
    let n = frames[1].len();
    frames[1][n - 1] ^= 0xff;
    fake.push([Script::Frames(frames)]);
    let events = stream(&rt, "hi").await;
    assert_eq!(
        events.last().unwrap().1["error"]["code"],
        "bedrock_bad_response",
        "{events:?}"
    );
}

#[tokio::test]
async fn streamed_events_use_camel_case_fields_as_documented() {
    let (fake, _tools, rt) = setup(&[("/top_song", song())], limits()).await;
    fake.push([
        Script::Turn(Turn::tools(&[("t1", "top_song", json!({"sign": "WZPZ"}))])),
        Script::Turn(Turn::text("Elemental Hotel.")),
    ]);
    let events = stream(&rt, "top song?").await;
    let data = |name: &str| events.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&data("text")), ["delta"]);
    assert_eq!(keys(&data("tool_call_started")), ["name", "toolUseId"]);
    assert_eq!(
        keys(&data("tool_call_finished")),
        ["durationMs", "name", "status", "toolUseId"]
    );
    let done = data("done");
    assert_eq!(
        keys(&done),
        ["iterations", "output", "stopReason", "toolCalls", "usage"]
    );
    assert_eq!(
        keys(&done["toolCalls"][0]),
        ["durationMs", "name", "status"]
    );
    assert_eq!(keys(&done["usage"]), ["inputTokens", "outputTokens"]);
}

#[tokio::test]
async fn a_bad_conversation_is_a_400_naming_the_message_and_bedrock_never_sees_it() {
    let (fake, _tools, rt) = setup(&[], limits()).await;
    let cases = [
        (
            json!({"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}),
            "messages[0]: the conversation must start with a user message",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"text": "a"}]}], "input": "b"}),
            "input: follows a user message",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"text": ""}]}]}),
            "messages[0].content[0]: is an empty text block",
        ),
        (
            json!({"messages": [
                {"role": "user", "content": [{"text": "q"}]},
                {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "top_song", "input": {}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "t2", "content": [{"text": "x"}]}}]}
            ]}),
            "messages[2].content[0]: toolResult \"t2\" answers no toolUse",
        ),
    ];
    for (body, want) in cases {
        let (status, answer, _) = invoke(&rt, body.clone()).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("invalid_conversation")),
            "{body}: {answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(want),
            "{answer}"
        );
    }
    assert!(fake.captured().is_empty());
}

#[tokio::test]
async fn arrays_unknown_paths_and_methods_get_the_json_error_body() {
    let (fake, _tools, rt) = setup(&[], limits()).await;
    let (status, body, _) = invoke(&rt, json!(["hi"])).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let r = reqwest::get(format!("{}/v2/nothing", rt.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = serde_json::from_str::<Value>(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let r = reqwest::get(format!("{}/v1/invoke", rt.url)).await.unwrap();
    assert_eq!(r.status(), 405);
    let body: Value = serde_json::from_str::<Value>(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    assert!(fake.captured().is_empty());
}

async fn invoke_with_deadline(rt: &RuntimeUnderTest, ms: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/v1/invoke", rt.url))
        .header("x-agentry-deadline-ms", ms)
        .body(json!({"input": "hi"}).to_string())
        .send()
        .await
        .unwrap();
    (
        r.status().as_u16(),
        serde_json::from_str::<Value>(&r.text().await.unwrap()).unwrap(),
    )
}

#[tokio::test]
async fn a_spent_caller_deadline_is_a_504_without_a_model_call_and_abandoned_calls_are_counted() {
    let (fake, _tools, rt) = setup(&[], limits()).await;
    let (status, body) = invoke_with_deadline(&rt, "0").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (504, Some("deadline_exceeded")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("after 0 model calls"),
        "{body}"
    );
    assert!(fake.captured().is_empty());
    fake.push([Script::Delay(
        Duration::from_secs(2),
        Box::new(Script::Turn(Turn::text("late"))),
    )]);
    let (status, body) = invoke_with_deadline(&rt, "300").await;
    assert_eq!(status, 504, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("after 1 model calls"),
        "{body}"
    );
    assert!(metrics(&rt).await.contains("outcome=\"deadline\"} 1"));
}

#[tokio::test]
async fn a_reply_over_the_cap_ends_the_invocation_with_a_clear_error() {
    let fake = FakeBedrock::start().await.unwrap();
    let cap = 64 * 1024;
    let rt = runtime::start_with(
        config(vec![], limits()),
        &fake,
        Default::default(),
        agentry_runtime::ServeOptions {
            drain_delay: Duration::ZERO,
            ..Default::default()
        },
        cap,
    )
    .await;
    let big = "x".repeat(100 * 1024);
    fake.push([
        Script::Turn(Turn::text(&big)),
        Script::Turn(Turn::text(&big)),
        Script::Turn(Turn::text(&"y".repeat(10 * 1024))),
    ]);
    let (status, body, _) = invoke(&rt, json!({"input": "write a lot"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("model_reply_too_large")),
        "{body}"
    );
    let events = stream(&rt, "write a lot").await;
    assert_eq!(
        events.last().unwrap().1["error"]["code"],
        "model_reply_too_large"
    );
    assert!(
        events
            .iter()
            .filter(|(n, _)| n == "text")
            .map(|(_, d)| d["delta"].as_str().unwrap().len())
            .sum::<usize>()
            <= cap
    );
    let (status, body, _) = invoke(&rt, json!({"input": "a little"})).await;
    assert_eq!(status, 200, "under the cap: {body}");
}
