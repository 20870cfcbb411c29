//! Resume after a pod dies (issue 13): a runtime process SIGKILLed mid-loop, its invocation
//! resumed by another process on the same redis-server, each tool called exactly once and the
//! call that was running reported to the model as interrupted; a resume while the holder
//! lives, with nothing to resume, and after a failed (not crashed) invocation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;
#[path = "support/session_fixtures.rs"]
mod sessions;

use std::time::Duration;

use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::redis::RedisServer;
use agentry_tests::runtime::{self, ToolBehaviour, ToolServer};
use fixtures::http_tool;
use serde_json::{Value, json};
use sessions::*;

async fn resume(base: &str, id: &str) -> (u16, Value, reqwest::header::HeaderMap) {
    send(
        reqwest::Method::POST,
        format!("{base}/v1/sessions/{id}/resume"),
        None,
    )
    .await
}

/// A resume answered as Server-Sent Events: the status and the `done` event's data (or the
/// JSON error), and the names of the events before it.
async fn resume_streamed(base: &str, id: &str) -> (u16, Value, Vec<String>) {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/sessions/{id}/resume"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    if status != 200 {
        return (status, serde_json::from_str(&text).unwrap(), vec![]);
    }
    let mut names = vec![];
    let mut done = Value::Null;
    for event in text.split("\n\n") {
        let field = |k: &str| event.lines().find_map(|l| l.strip_prefix(k)).map(str::trim);
        if let Some(name) = field("event:") {
            names.push(name.to_string());
            if name == "done" {
                done = serde_json::from_str(field("data:").unwrap()).unwrap();
            }
        }
    }
    (status, done, names)
}

#[tokio::test]
async fn a_runtime_killed_mid_loop_is_resumed_on_another_without_running_any_tool_twice() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[
        ("/forecast", ToolBehaviour::Json(json!({"paris": "sunny"}))),
        (
            "/book",
            ToolBehaviour::Slow(Duration::from_secs(30), json!({"booked": true})),
        ),
    ])
    .await;
    let fake = FakeBedrock::start().await.unwrap();
    let mut cfg = runtime::process_config(
        "desk",
        "demo",
        vec![
            http_tool("forecast", tools.url("/forecast"), 60),
            http_tool("book", tools.url("/book"), 60),
        ],
    );
    cfg.limits.timeout_seconds = 60;
    cfg.limits.tool_timeout_seconds = 60;
    cfg.memory = Some(memory(60, 100));
    let path = runtime::write_config(&cfg);
    let replica = |name: &str| {
        let mut env = fake.process_env();
        env.push((URL_ENV, redis.url()));
        env.push(("HOSTNAME", name.to_string()));
        env.push(("AGENTRY_TOOL0_HEADER0", "k".to_string()));
        runtime::start_process(name, &path, &env, &["--session-lease-seconds", "1"])
    };
    let (mut a, a_url) = replica("replica-a");
    let (b, b_url) = replica("replica-b");
    fake.push([
        Script::Turn(Turn::tools(&[("t1", "forecast", json!({"sign": "WZPZ"}))])),
        Script::Turn(Turn::tools(&[("t2", "book", json!({"sign": "WZPZ"}))])),
        Script::Turn(Turn::text(
            "Paris is sunny; the booking may not have gone through.",
        )),
    ]);
    let on_a = tokio::spawn({
        let a_url = a_url.clone();
        async move {
            ask(
                &a_url,
                json!({"sessionId": "trip", "input": "Plan my day."}),
            )
            .await
        }
    });
    // A is running the slow booking, after the forecast of an earlier round returned.
    assert!(
        eventually(Duration::from_secs(10), async || tools
            .seen()
            .iter()
            .any(|r| r.path == "/book"))
        .await,
        "{}",
        a.log()
    );
    let (_, during) = get(&a_url, "trip").await;
    assert_eq!(
        (
            during["running"].as_bool(),
            &during["checkpoint"]["messages"]
        ),
        (Some(true), &json!(4)),
        "input, forecast call, its result, booking call: {during}"
    );
    a.kill();
    // A's client lost its connection with A: no answer.
    assert!(on_a.await.is_err());

    // The dead holder's lease (1 s) runs out, then B takes the turn over (streaming, as
    // /v1/invoke does).
    let mut answer = Value::Null;
    let mut events = vec![];
    let mut busy = false;
    assert!(
        eventually(Duration::from_secs(10), async || {
            let (status, body, names) = resume_streamed(&b_url, "trip").await;
            busy |= status == 409 && body["error"]["code"] == "session_busy";
            answer = body;
            events = names;
            status == 200
        })
        .await,
        "{answer}\n{}",
        b.log()
    );
    assert!(busy, "the dead holder's lease was not waited for");
    assert_eq!(
        answer["output"],
        "Paris is sunny; the booking may not have gone through."
    );
    assert_eq!(answer["sessionId"], "trip");
    assert_eq!(
        (
            events.first().map(String::as_str),
            events.last().map(String::as_str)
        ),
        (Some("text"), Some("done")),
        "{events:?}"
    );
    // The answer counts the whole turn's model calls, the two before the crash included.
    assert_eq!(answer["iterations"], 3, "{answer}");

    let calls = |p: &str| tools.seen().iter().filter(|r| r.path == p).count();
    assert_eq!((calls("/forecast"), calls("/book")), (1, 1));
    let requests = fake.captured();
    assert_eq!(requests.len(), 3);
    // The resumed model call: the saved round as it was, the booking answered as interrupted.
    let last = &requests[2].body;
    assert_eq!(
        texts(&last["messages"]),
        [
            "user: Plan my day.",
            "assistant: use forecast",
            "user: result",
            "assistant: use book",
            "user: result"
        ]
    );
    let forecast = results(&{
        let mut r = last.clone();
        r["messages"].as_array_mut().unwrap().truncate(3);
        r
    });
    assert_eq!(
        forecast,
        [("t1".into(), "success".into(), r#"{"paris":"sunny"}"#.into())]
    );
    let booking = results(last);
    assert_eq!(booking.len(), 1);
    assert_eq!(
        (booking[0].0.as_str(), booking[0].1.as_str()),
        ("t2", "error")
    );
    assert!(
        booking[0]
            .2
            .contains("the call to tool book was interrupted")
            && booking[0].2.contains("was not run again"),
        "{booking:?}"
    );

    // The whole turn is committed once; nothing is left to resume.
    let (status, session) = get(&b_url, "trip").await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            &session["version"],
            &session["turns"],
            &session["checkpoint"]
        ),
        (&json!(1), &json!(1), &Value::Null),
        "{session}"
    );
    assert_eq!(
        texts(&session["messages"]),
        [
            "user: Plan my day.",
            "assistant: use forecast",
            "user: result",
            "assistant: use book",
            "user: result",
            "assistant: Paris is sunny; the booking may not have gone through."
        ]
    );
    let (status, body, _) = resume(&b_url, "trip").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("nothing_to_resume")),
        "{body}"
    );
}

#[tokio::test]
async fn a_resume_while_the_holder_lives_is_busy_and_a_failed_invocation_leaves_nothing_to_resume()
{
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[(
        "/top_song",
        ToolBehaviour::Json(json!({"song": "Elemental Hotel"})),
    )])
    .await;
    let (fake, rt) = start(&redis.url(), memory(60, 100), &tools).await;
    let song = || Turn::tools(&[("s1", "top_song", json!({"sign": "WZPZ"}))]);
    fake.push([
        Script::Turn(song()),
        Script::Delay(
            Duration::from_millis(1500),
            Box::new(Script::Turn(Turn::text("Elemental Hotel."))),
        ),
    ]);
    let running = tokio::spawn({
        let url = rt.url.clone();
        async move { ask(&url, json!({"sessionId": "live", "input": "Top song?"})).await }
    });
    // The tool round's results are saved while the second model call runs.
    assert!(
        eventually(Duration::from_secs(5), async || get(&rt.url, "live")
            .await
            .1["checkpoint"]["messages"]
            == 3)
        .await
    );
    let (status, body, headers) = resume(&rt.url, "live").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("session_busy")),
        "{body}"
    );
    assert!(headers.contains_key("retry-after"));
    let (status, body, _) = running.await.unwrap();
    assert_eq!(
        (status, body["output"].as_str()),
        (200, Some("Elemental Hotel."))
    );
    let (status, body, _) = resume(&rt.url, "live").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("nothing_to_resume")),
        "{body}"
    );
    let (status, body, _) = resume(&rt.url, "never-seen").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("session_not_found")),
        "{body}"
    );

    // A model error after a checkpointed tool round is a failure, not a crash: the session
    // stays as it was (a new one is not created) and there is nothing to resume.
    fake.push([
        Script::Turn(song()),
        Script::Error(400, "ValidationException".into(), "bad request".into()),
    ]);
    let (status, body, _) = ask(
        &rt.url,
        json!({"sessionId": "failed", "input": "Top song?"}),
    )
    .await;
    assert!(status >= 400, "{status} {body}");
    assert_eq!(tools.seen().len(), 2);
    assert_eq!(get(&rt.url, "failed").await.0, 404);
    assert_eq!(resume(&rt.url, "failed").await.0, 404);
    assert!(
        redis.keys().iter().all(|k| !k.contains("failed")),
        "{:?}",
        redis.keys()
    );
}

#[tokio::test]
async fn a_checkpoint_the_store_does_not_take_fails_the_invocation_before_its_tools_run() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[(
        "/top_song",
        ToolBehaviour::Json(json!({"song": "Elemental Hotel"})),
    )])
    .await;
    let (fake, rt) = start(&redis.url(), memory(60, 100), &tools).await;
    fake.push([Script::Delay(
        Duration::from_millis(500),
        Box::new(Script::Turn(Turn::tools(&[(
            "s1",
            "top_song",
            json!({"sign": "WZPZ"}),
        )]))),
    )]);
    let asked = tokio::spawn({
        let url = rt.url.clone();
        async move { ask(&url, json!({"sessionId": "down", "input": "Top song?"})).await }
    });
    // The lease is taken and the model is thinking: the store stops answering.
    assert!(eventually(Duration::from_secs(5), async || !fake.captured().is_empty()).await);
    redis.pause();
    let (status, body, _) = asked.await.unwrap();
    redis.resume();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("session_store_unavailable")),
        "{body}"
    );
    assert!(tools.seen().is_empty(), "a tool ran without a checkpoint");
}
