//! Sessions on `/v1/invoke` against a real redis-server and the Bedrock imitation: a
//! conversation continued across invocations and across two runtime processes, a busy session
//! refused with 409, TTL expiry, a store that is paused, down at start or back, a failed model
//! call that writes nothing, streaming, maxMessages, and the refusals of bad session requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use agentry_crds::runtime_config::*;
use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::redis::RedisServer;
use agentry_tests::runtime::{self, RuntimeUnderTest, ToolServer};
use fixtures::*;
use serde_json::{Value, json};

const URL_ENV: &str = "AGENTRY_MEMORY_URL";

fn memory(ttl_seconds: u32, max_messages: u32) -> MemoryConfig {
    MemoryConfig {
        url_from_env: URL_ENV.into(),
        ttl_seconds,
        max_messages,
        ca_pem: None,
    }
}

fn env(redis_url: &str) -> BTreeMap<String, String> {
    let mut e = secrets();
    e.insert(URL_ENV.into(), redis_url.into());
    e
}

/// A runtime with memory on `redis`, a top_song tool on `tools`.
async fn start(
    redis_url: &str,
    memory: MemoryConfig,
    tools: &ToolServer,
) -> (FakeBedrock, RuntimeUnderTest) {
    start_limited(redis_url, memory, tools, limits()).await
}

/// The same, with other limits.
async fn start_limited(
    redis_url: &str,
    memory: MemoryConfig,
    tools: &ToolServer,
    limits: agentry_crds::limits::EffectiveLimits,
) -> (FakeBedrock, RuntimeUnderTest) {
    let fake = FakeBedrock::start().await.unwrap();
    let mut cfg = config(
        vec![http_tool("top_song", tools.url("/top_song"), 5)],
        limits,
    );
    cfg.memory = Some(memory);
    let rt = runtime::start(cfg, &fake, env(redis_url)).await;
    (fake, rt)
}

async fn send(
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut r = reqwest::Client::new().request(method, url);
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        headers,
    )
}

async fn ask(base: &str, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
    send(
        reqwest::Method::POST,
        format!("{base}/v1/invoke"),
        Some(body),
    )
    .await
}

async fn get(base: &str, id: &str) -> (u16, Value) {
    let (s, b, _) = send(
        reqwest::Method::GET,
        format!("{base}/v1/sessions/{id}"),
        None,
    )
    .await;
    (s, b)
}

/// The roles and texts of a Converse request's (or a session's) messages, compactly.
fn texts(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let blocks: Vec<String> = m["content"]
                .as_array()
                .unwrap()
                .iter()
                .map(
                    |b| match (b["text"].as_str(), b.get("toolUse"), b.get("toolResult")) {
                        (Some(t), _, _) => t.to_string(),
                        (_, Some(u), _) => {
                            format!("use {}", u["name"].as_str().unwrap_or_default())
                        }
                        (_, _, Some(_)) => "result".into(),
                        _ => "?".into(),
                    },
                )
                .collect();
            format!("{}: {}", m["role"].as_str().unwrap(), blocks.join(" + "))
        })
        .collect()
}

/// Polls `f` every 50 ms until it is true, for at most `limit`.
async fn eventually(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

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
async fn a_paused_store_fails_session_calls_fast_while_stateless_calls_work() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[]).await;
    let (fake, rt) = start(&redis.url(), memory(60, 100), &tools).await;
    fake.fallback(|_| Script::Turn(Turn::text("ok")));
    assert_eq!(
        ask(&rt.url, json!({"sessionId": "p", "input": "one"}))
            .await
            .0,
        200
    );
    redis.pause();
    let started = Instant::now();
    let (status, body, headers) = ask(&rt.url, json!({"sessionId": "p", "input": "two"})).await;
    let took = started.elapsed();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("session_store_unavailable")),
        "{body}"
    );
    assert_eq!(headers["retry-after"], "1");
    assert!(took < Duration::from_millis(2600), "{took:?}");
    assert_eq!(ask(&rt.url, json!({"input": "stateless"})).await.0, 200);
    redis.resume();
    let (status, body, _) = ask(&rt.url, json!({"sessionId": "p", "input": "three"})).await;
    assert_eq!(status, 200, "{body}");
    let last = fake.captured().last().unwrap().body["messages"].clone();
    assert_eq!(texts(&last), ["user: one", "assistant: ok", "user: three"]);
}

#[tokio::test]
async fn the_runtime_starts_without_its_store_and_sessions_work_once_it_is_up() {
    let mut redis = RedisServer::start();
    redis.stop();
    let tools = ToolServer::start(&[]).await;
    let (fake, rt) = start(&redis.url(), memory(60, 100), &tools).await;
    fake.fallback(|_| Script::Turn(Turn::text("ok")));
    assert_eq!(
        reqwest::get(format!("{}/readyz", rt.url))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(ask(&rt.url, json!({"input": "stateless"})).await.0, 200);
    let started = Instant::now();
    let (status, body, _) = ask(&rt.url, json!({"sessionId": "d", "input": "hi"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("session_store_unavailable"))
    );
    assert!(
        started.elapsed() < Duration::from_millis(2600),
        "{:?}",
        started.elapsed()
    );
    redis.restart();
    assert!(
        eventually(Duration::from_secs(5), async || ask(
            &rt.url,
            json!({"sessionId": "d", "input": "hi"})
        )
        .await
        .0 == 200)
        .await,
        "sessions did not work once the store was up"
    );
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
async fn a_session_started_on_one_replica_continues_on_another() {
    let redis = RedisServer::start();
    let fake = FakeBedrock::start().await.unwrap();
    let mut cfg = runtime::process_config("radio", "demo", vec![]);
    cfg.memory = Some(memory(60, 100));
    let path = runtime::write_config(&cfg);
    let replica = |name: &str| {
        let mut env = fake.process_env();
        env.push((URL_ENV, redis.url()));
        env.push(("HOSTNAME", name.to_string()));
        runtime::start_process(name, &path, &env, &[])
    };
    let (_a, a) = replica("replica-a");
    let (_b, b) = replica("replica-b");
    fake.push([
        Script::Turn(Turn::text("Paris is sunny.")),
        Script::Delay(
            Duration::from_millis(1500),
            Box::new(Script::Turn(Turn::text("Lyon too."))),
        ),
    ]);
    assert_eq!(
        ask(
            &a,
            json!({"sessionId": "trip", "input": "Weather in Paris?"})
        )
        .await
        .0,
        200
    );
    let on_b = tokio::spawn({
        let b = b.clone();
        async move { ask(&b, json!({"sessionId": "trip", "input": "And in Lyon?"})).await }
    });
    // While B runs the second turn (its model call has arrived), A refuses the session and
    // names B as the holder.
    assert!(eventually(Duration::from_secs(5), async || fake.captured().len() == 2).await);
    let mut refused = Value::Null;
    assert!(
        eventually(Duration::from_secs(5), async || {
            let (s, body, _) = ask(&a, json!({"sessionId": "trip", "input": "x"})).await;
            refused = body;
            s == 409
        })
        .await
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("replica-b"),
        "{refused}"
    );
    let (status, body, _) = on_b.await.unwrap();
    assert_eq!(
        (status, body["output"].as_str()),
        (200, Some("Lyon too.")),
        "{body}"
    );
    assert_eq!(
        texts(&fake.captured()[1].body["messages"]),
        [
            "user: Weather in Paris?",
            "assistant: Paris is sunny.",
            "user: And in Lyon?"
        ]
    );
    let (_, s) = get(&a, "trip").await;
    assert_eq!(
        (
            s["version"].as_u64(),
            s["messages"].as_array().unwrap().len()
        ),
        (Some(2), 4)
    );
}

#[tokio::test]
async fn a_lease_is_renewed_while_a_long_invocation_runs() {
    let redis = RedisServer::start();
    let fake = FakeBedrock::start().await.unwrap();
    let mut cfg = runtime::process_config("radio", "demo", vec![]);
    cfg.memory = Some(memory(60, 100));
    let path = runtime::write_config(&cfg);
    let mut env = fake.process_env();
    env.push((URL_ENV, redis.url()));
    let (_p, url) = runtime::start_process("lease", &path, &env, &["--session-lease-seconds", "1"]);
    fake.push([Script::Delay(
        Duration::from_millis(2500),
        Box::new(Script::Turn(Turn::text("slow"))),
    )]);
    let started = Instant::now();
    let long = tokio::spawn({
        let url = url.clone();
        async move { ask(&url, json!({"sessionId": "long", "input": "hi"})).await }
    });
    assert!(eventually(Duration::from_secs(5), async || !fake.captured().is_empty()).await);
    // Past the 1 s lease the session is still held: renewed, not run out.
    tokio::time::sleep(Duration::from_millis(1500).saturating_sub(started.elapsed())).await;
    let (status, body, _) = ask(&url, json!({"sessionId": "long", "input": "meanwhile"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("session_busy")),
        "{body}"
    );
    let (status, body, _) = long.await.unwrap();
    assert_eq!(
        (status, body["output"].as_str()),
        (200, Some("slow")),
        "{body}"
    );
    assert_eq!(get(&url, "long").await.1["version"], 1);
}

#[tokio::test]
async fn a_client_that_goes_away_gives_the_session_back_at_once_and_writes_nothing() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[]).await;
    let (fake, rt) = start(&redis.url(), memory(60, 100), &tools).await;
    fake.push([
        Script::Turn(Turn::text("first")),
        Script::Delay(
            Duration::from_secs(10),
            Box::new(Script::Turn(Turn::text("never seen"))),
        ),
    ]);
    fake.fallback(|_| Script::Turn(Turn::text("after")));
    assert_eq!(
        ask(&rt.url, json!({"sessionId": "gone", "input": "one"}))
            .await
            .0,
        200
    );
    let gone = tokio::spawn({
        let url = rt.url.clone();
        async move { ask(&url, json!({"sessionId": "gone", "input": "two"})).await }
    });
    assert!(eventually(Duration::from_secs(5), async || fake.captured().len() == 2).await);
    gone.abort();
    // The 15 s lease is given back when the invocation is cancelled, not when it runs out.
    assert!(
        eventually(Duration::from_secs(3), async || {
            ask(&rt.url, json!({"sessionId": "gone", "input": "three"}))
                .await
                .0
                == 200
        })
        .await,
        "the session stayed busy after its client went away"
    );
    let s = get(&rt.url, "gone").await.1;
    assert_eq!(
        texts(&s["messages"]),
        [
            "user: one",
            "assistant: first",
            "user: three",
            "assistant: after"
        ]
    );
}

#[tokio::test]
async fn a_tls_store_with_a_private_ca_from_the_runtime_config_keeps_sessions() {
    let (redis, ca) = RedisServer::start_tls();
    let tools = ToolServer::start(&[]).await;
    let url = format!("rediss://127.0.0.1:{}/0", redis.port);
    let tls = MemoryConfig {
        ca_pem: Some(ca),
        ..memory(60, 100)
    };
    let (fake, rt) = start(&url, tls, &tools).await;
    fake.fallback(|_| Script::Turn(Turn::text("over TLS")));
    for q in ["one", "two"] {
        let (status, body, _) = ask(&rt.url, json!({"sessionId": "tls", "input": q})).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(get(&rt.url, "tls").await.1["version"], 2);
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
