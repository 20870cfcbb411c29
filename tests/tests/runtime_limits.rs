//! The runtime against the Bedrock imitation through the real SDK: the loop's limits, Bedrock
//! errors and throttling, the HTTP API's errors, and graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;

use std::time::{Duration, Instant};

use agentry_crds::limits::EffectiveLimits;
use agentry_tests::bedrock::{Script, Turn};
use fixtures::*;
use serde_json::json;

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
