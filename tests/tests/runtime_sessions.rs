//! Sessions on `/v1/invoke` against a real redis-server and the Bedrock imitation: a
//! conversation kept across invocations, a busy session refused with 409, TTL expiry, failed,
//! late and limit-stopped invocations that write nothing, streaming, maxMessages, and the
//! refusals of bad session requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;
#[path = "support/session_fixtures.rs"]
mod sessions;

use std::collections::BTreeMap;
use std::time::Duration;

use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::redis::RedisServer;
use agentry_tests::runtime::{self, ToolServer};
use fixtures::*;
use serde_json::{Value, json};
use sessions::*;

#[tokio::test]
async fn a_session_keeps_the_conversation_across_invocations_until_it_is_deleted() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[("/top_song", song())]).await;
    let (fake, rt) = start(&redis.url(), memory(60, 100), &tools).await;
    fake.push([
        Script::Turn(Turn::tools(&[("t1", "top_song", json!({"sign": "WZPZ"}))])),
        Script::Turn(Turn::text("Elemental Hotel.")),
        Script::Turn(Turn::text("8 Storey Hike.")),
    ]);
    let (status, body, _) = ask(&rt.url, json!({"sessionId": "s-1", "input": "Top song?"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["output"].as_str(), body["sessionId"].as_str()),
        (Some("Elemental Hotel."), Some("s-1"))
    );
    let (status, body, _) = ask(&rt.url, json!({"sessionId": "s-1", "input": "By whom?"})).await;
    assert_eq!(status, 200, "{body}");
    // The third model call got the whole first turn, tool pair included, then the new input.
    assert_eq!(
        texts(&fake.captured()[2].body["messages"]),
        [
            "user: Top song?",
            "assistant: use top_song",
            "user: result",
            "assistant: Elemental Hotel.",
            "user: By whom?"
        ]
    );
    let (status, s) = get(&rt.url, "s-1").await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(
        (
            s["version"].as_u64(),
            s["turns"].as_u64(),
            s["running"].as_bool()
        ),
        (Some(2), Some(2), Some(false))
    );
    assert_eq!(s["messages"].as_array().unwrap().len(), 6);
    assert!(
        s["expiresAt"].as_str().unwrap() > s["updatedAt"].as_str().unwrap(),
        "{s}"
    );
    let metrics = reqwest::get(format!("{}/metrics", rt.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"agentry_runtime_session_store_requests_total{op="commit",outcome="success"} 2"#
        ),
        "{metrics}"
    );
    let (status, _, _) = send(
        reqwest::Method::DELETE,
        format!("{}/v1/sessions/s-1", rt.url),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = get(&rt.url, "s-1").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("session_not_found"))
    );
    assert!(redis.keys().is_empty(), "{:?}", redis.keys());
}

#[tokio::test]
async fn a_second_invocation_on_a_busy_session_is_refused_with_409_and_retry_after() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[]).await;
    let (fake, rt) = start(&redis.url(), memory(60, 100), &tools).await;
    fake.fallback(|_| {
        Script::Delay(
            Duration::from_millis(800),
            Box::new(Script::Turn(Turn::text("done"))),
        )
    });
    let calls = (0..6).map(|_| ask(&rt.url, json!({"sessionId": "busy", "input": "hi"})));
    let answers = futures::future::join_all(calls).await;
    let ok = answers.iter().filter(|(s, _, _)| *s == 200).count();
    let busy: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 409).collect();
    assert_eq!(
        (ok, busy.len()),
        (1, 5),
        "{:?}",
        answers.iter().map(|a| &a.1).collect::<Vec<_>>()
    );
    let (_, body, headers) = busy[0];
    assert_eq!(body["error"]["code"], "session_busy");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=15).contains(&retry), "{retry}");
    // Another session is not held up, and once the first ended the session takes the next turn.
    let (status, _, _) = ask(&rt.url, json!({"sessionId": "other", "input": "hi"})).await;
    assert_eq!(status, 200);
    let (status, body, _) = ask(&rt.url, json!({"sessionId": "busy", "input": "again"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(get(&rt.url, "busy").await.1["version"], 2);
}

#[tokio::test]
async fn a_session_expires_its_ttl_after_the_last_turn() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[]).await;
    let (fake, rt) = start(&redis.url(), memory(1, 100), &tools).await;
    fake.fallback(|_| Script::Turn(Turn::text("ok")));
    assert_eq!(
        ask(&rt.url, json!({"sessionId": "ttl", "input": "one"}))
            .await
            .0,
        200
    );
    assert_eq!(get(&rt.url, "ttl").await.0, 200);
    assert!(
        eventually(Duration::from_secs(3), async || get(&rt.url, "ttl").await.0
            == 404)
        .await
    );
    assert_eq!(
        ask(&rt.url, json!({"sessionId": "ttl", "input": "two"}))
            .await
            .0,
        200
    );
    // It started over: the model saw only the new input.
    assert_eq!(texts(&fake.captured()[1].body["messages"]), ["user: two"]);
}

#[tokio::test]
async fn a_failed_model_call_leaves_the_session_as_it_was() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[("/top_song", song())]).await;
    let (fake, rt) = start(&redis.url(), memory(60, 100), &tools).await;
    fake.push([
        Script::Turn(Turn::text("Hello.")),
        Script::Turn(Turn::tools(&[("t1", "top_song", json!({"sign": "WZPZ"}))])),
        Script::Error(
            424,
            "ModelErrorException".into(),
            "The model failed.".into(),
        ),
    ]);
    assert_eq!(
        ask(&rt.url, json!({"sessionId": "f", "input": "hi"}))
            .await
            .0,
        200
    );
    let before = get(&rt.url, "f").await.1;
    let (status, body, _) = ask(&rt.url, json!({"sessionId": "f", "input": "Top song?"})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(tools.seen().len(), 1, "the tool did run");
    let after = get(&rt.url, "f").await.1;
    assert_eq!(
        (after["version"].clone(), after["messages"].clone()),
        (before["version"].clone(), before["messages"].clone())
    );
    assert_eq!(after["running"], false);
    // No lease and no checkpoint left behind: only the state hash and the messages.
    let keys = redis.keys();
    assert_eq!(
        keys,
        ["agentry:{demo/radio/f}:m", "agentry:{demo/radio/f}:s"],
        "{keys:?}"
    );
}

#[tokio::test]
async fn a_streamed_invocation_sends_done_only_after_its_turn_is_committed() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[]).await;
    let (fake, rt) = start(&redis.url(), memory(60, 100), &tools).await;
    fake.fallback(|_| Script::Turn(Turn::text("streamed")));
    let r = reqwest::Client::new()
        .post(format!("{}/v1/invoke", rt.url))
        .header("accept", "text/event-stream")
        .body(json!({"sessionId": "sse", "input": "hi"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let done = text
        .split("\n\n")
        .find(|f| f.starts_with("event: done"))
        .expect(&text);
    let data: Value = serde_json::from_str(done.split_once("data: ").unwrap().1).unwrap();
    assert_eq!(
        (data["sessionId"].as_str(), data["output"].as_str()),
        (Some("sse"), Some("streamed"))
    );
    assert_eq!(get(&rt.url, "sse").await.1["version"], 1);
}

#[tokio::test]
async fn max_messages_drops_the_oldest_whole_turns() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[("/top_song", song())]).await;
    let (fake, rt) = start(&redis.url(), memory(60, 4), &tools).await;
    fake.push([
        Script::Turn(Turn::text("a1")),
        Script::Turn(Turn::tools(&[("t1", "top_song", json!({"sign": "WZPZ"}))])),
        Script::Turn(Turn::text("a2")),
        Script::Turn(Turn::text("a3")),
    ]);
    for q in ["q1", "q2", "q3"] {
        assert_eq!(
            ask(&rt.url, json!({"sessionId": "m", "input": q})).await.0,
            200
        );
    }
    // q2's turn (4 messages, a tool pair inside) does not fit beside q3's: only whole turns go.
    assert_eq!(
        texts(&get(&rt.url, "m").await.1["messages"]),
        ["user: q3", "assistant: a3"]
    );
}

#[tokio::test]
async fn bad_session_requests_are_refused_with_what_to_fix() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[]).await;
    let (_fake, rt) = start(&redis.url(), memory(60, 100), &tools).await;
    let with_messages =
        json!({"sessionId": "s", "messages": [{"role": "user", "content": [{"text": "hi"}]}]});
    let (status, body, _) = ask(&rt.url, with_messages).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("send only input"),
        "{body}"
    );
    let (status, body, _) = ask(&rt.url, json!({"sessionId": "a/b", "input": "hi"})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sessionId \"a/b\" must be"),
        "{body}"
    );
    assert_eq!(get(&rt.url, "a{b").await.0, 400);
    assert_eq!(get(&rt.url, "never-made").await.0, 404);

    let fake = FakeBedrock::start().await.unwrap();
    let stateless = runtime::start(config(vec![], limits()), &fake, BTreeMap::new()).await;
    let (status, body, _) = ask(&stateless.url, json!({"sessionId": "s", "input": "hi"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("sessions_not_enabled")),
        "{body}"
    );
    assert_eq!(get(&stateless.url, "s").await.0, 400);
    assert!(fake.captured().is_empty());
}

#[tokio::test]
async fn an_invocation_past_its_deadline_writes_nothing() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[]).await;
    let quick = agentry_crds::limits::EffectiveLimits {
        timeout_seconds: 1,
        ..limits()
    };
    let (fake, rt) = start_limited(&redis.url(), memory(60, 100), &tools, quick).await;
    fake.push([
        Script::Turn(Turn::text("first")),
        Script::Delay(
            Duration::from_secs(3),
            Box::new(Script::Turn(Turn::text("late"))),
        ),
    ]);
    assert_eq!(
        ask(&rt.url, json!({"sessionId": "d", "input": "one"}))
            .await
            .0,
        200
    );
    let (status, body, _) = ask(&rt.url, json!({"sessionId": "d", "input": "two"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (504, Some("deadline_exceeded"))
    );
    let s = get(&rt.url, "d").await.1;
    assert_eq!(
        (s["version"].as_u64(), s["running"].as_bool()),
        (Some(1), Some(false))
    );
    assert_eq!(texts(&s["messages"]), ["user: one", "assistant: first"]);
}

#[tokio::test]
async fn a_turn_stopped_by_a_limit_inside_a_tool_round_is_not_kept() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[("/top_song", song())]).await;
    let one_call = agentry_crds::limits::EffectiveLimits {
        max_iterations: 1,
        ..limits()
    };
    let (fake, rt) = start_limited(&redis.url(), memory(60, 100), &tools, one_call).await;
    fake.push([
        Script::Turn(Turn::text("first")),
        Script::Turn(Turn::tools(&[("t1", "top_song", json!({"sign": "WZPZ"}))])),
    ]);
    assert_eq!(
        ask(&rt.url, json!({"sessionId": "l", "input": "one"}))
            .await
            .0,
        200
    );
    let (status, body, _) = ask(&rt.url, json!({"sessionId": "l", "input": "two"})).await;
    assert_eq!(
        (status, body["stopReason"].as_str()),
        (200, Some("max_iterations")),
        "{body}"
    );
    // Its unanswered toolUse would make the next input invalid: the session keeps whole
    // turns only, so the turn that ended without an answer is left out.
    let s = get(&rt.url, "l").await.1;
    assert_eq!(texts(&s["messages"]), ["user: one", "assistant: first"]);
    assert_eq!(s["version"], 1);
}
