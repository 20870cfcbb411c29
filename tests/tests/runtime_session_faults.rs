//! Sessions across replicas and store faults: two runtime processes on one redis-server, a
//! lease renewed through a long invocation, a client gone mid-invocation, a store paused or
//! down at start and back, and a store behind TLS with a private CA.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;
#[path = "support/session_fixtures.rs"]
mod sessions;

use std::time::{Duration, Instant};

use agentry_crds::runtime_config::*;
use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::redis::RedisServer;
use agentry_tests::runtime::{self, ToolServer};
use serde_json::{Value, json};
use sessions::*;

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
