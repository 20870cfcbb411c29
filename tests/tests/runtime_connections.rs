//! What hostile and stuck clients can do to the runtime's connections: bodies that never
//! arrive, half-sent headers, idle kept-alive connections, more connections than the bound,
//! and SIGTERM with idle, half-sent and in-flight connections (the real binary).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use agentry_crds::limits::EffectiveLimits;
use agentry_runtime::ServeOptions;
use agentry_runtime::listener::ConnectionLimits;
use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::process::Process;
use agentry_tests::runtime::{self, RuntimeUnderTest};
use fixtures::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn options(header: f64, idle: f64, body: f64, max_connections: usize) -> ServeOptions {
    ServeOptions {
        connections: ConnectionLimits {
            max_connections,
            header_read_timeout: Duration::from_secs_f64(header),
            idle_timeout: Duration::from_secs_f64(idle),
        },
        body_read_timeout: Duration::from_secs_f64(body),
        drain_delay: Duration::ZERO,
        grace: Duration::from_secs(10),
        public_url: None,
    }
}

async fn start(
    fake: &FakeBedrock,
    limits: EffectiveLimits,
    opts: ServeOptions,
) -> RuntimeUnderTest {
    runtime::start_with(
        config(vec![], limits),
        fake,
        Default::default(),
        opts,
        agentry_runtime::bedrock::DEFAULT_MAX_REPLY_BYTES,
    )
    .await
}

fn addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

/// Reads until EOF or `within` passes; returns what arrived and whether EOF came.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&out).into(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one response (headers and a Content-Length body) from a kept-alive connection.
async fn read_response(s: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let text = String::from_utf8_lossy(&out).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return text;
            }
        }
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => return String::from_utf8_lossy(&out).into(),
        }
    }
}

async fn get(url: &str, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("{url}{path}")).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

const SLOW_BODY: &[u8] = b"POST /v1/invoke HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"input\":";

#[tokio::test]
async fn clients_that_never_send_their_body_hold_no_slot_and_get_408() {
    let fake = FakeBedrock::start().await.unwrap();
    fake.fallback(|_| Script::Turn(Turn::text("hello")));
    let limits = EffectiveLimits {
        max_concurrent_invocations: 2,
        ..limits()
    };
    let rt = start(&fake, limits, options(10.0, 60.0, 1.0, 64)).await;
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(addr(&rt.url)).await.unwrap();
        s.write_all(SLOW_BODY).await.unwrap();
        slow.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        let (status, body, _) = invoke(&rt, json!({"input": "hi"})).await;
        assert_eq!(
            status, 200,
            "a legitimate invocation is served while 8 bodies hang: {body}"
        );
    }
    for mut s in slow {
        let (text, closed) = read_until_closed(&mut s, Duration::from_secs(3)).await;
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("\"code\":\"body_timeout\""), "{text}");
        assert!(closed, "the connection is closed after the 408");
    }
    let (_, metrics) = get(&rt.url, "/metrics").await;
    assert!(
        metrics.contains(
            "agentry_runtime_invocations_total{protocol=\"invoke\",outcome=\"body_timeout\"} 8"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("agentry_runtime_invocations_in_flight{protocol=\"invoke\"} 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn half_sent_headers_are_cut_off_at_the_header_read_timeout_even_when_dripped() {
    let fake = FakeBedrock::start().await.unwrap();
    let rt = start(&fake, limits(), options(0.4, 60.0, 30.0, 256)).await;
    let started = Instant::now();
    let mut conns = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(addr(&rt.url)).await.unwrap();
        s.write_all(b"POST /v1/invoke HTTP/1.1\r\nHost: t\r\n")
            .await
            .unwrap();
        conns.push(s);
    }
    // One more header line every 100 ms does not extend the deadline.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for s in &mut conns {
            let _ = s.write_all(b"X-Drip: 1\r\n").await;
        }
    }
    for s in &mut conns {
        let (text, closed) = read_until_closed(s, Duration::from_secs(3)).await;
        assert!(closed, "still open after {:?}: {text}", started.elapsed());
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(get(&rt.url, "/healthz").await.0, 200);
}

#[tokio::test]
async fn idle_connections_close_after_the_idle_timeout_and_a_slow_invocation_is_not_cut() {
    let fake = FakeBedrock::start().await.unwrap();
    let rt = start(&fake, limits(), options(10.0, 0.5, 30.0, 64)).await;
    // Kept alive after a request.
    let mut s = TcpStream::connect(addr(&rt.url)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let first = read_response(&mut s, Duration::from_secs(2)).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let t = Instant::now();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(closed);
    let idle = t.elapsed();
    assert!(
        idle >= Duration::from_millis(350) && idle < Duration::from_millis(1500),
        "{idle:?}"
    );
    // Never a byte sent.
    let mut silent = TcpStream::connect(addr(&rt.url)).await.unwrap();
    let t = Instant::now();
    assert!(
        read_until_closed(&mut silent, Duration::from_secs(3))
            .await
            .1
    );
    assert!(t.elapsed() < Duration::from_millis(1500));
    // A request in progress longer than the idle timeout is not idle.
    fake.push([Script::Delay(
        Duration::from_millis(1200),
        Box::new(Script::Turn(Turn::text("slow but fine"))),
    )]);
    let (status, body, _) = invoke(&rt, json!({"input": "slow"})).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn connections_over_the_bound_wait_until_one_closes() {
    let fake = FakeBedrock::start().await.unwrap();
    let rt = start(&fake, limits(), options(10.0, 30.0, 30.0, 3)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr(&rt.url)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fourth = TcpStream::connect(addr(&rt.url)).await.unwrap();
    fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let early = read_response(&mut fourth, Duration::from_millis(400)).await;
    assert!(early.is_empty(), "served over the bound: {early}");
    drop(held.pop());
    let late = read_response(&mut fourth, Duration::from_secs(2)).await;
    assert!(late.starts_with("HTTP/1.1 200"), "{late}");
}

fn start_binary(bedrock: &FakeBedrock, drain: &str) -> (Process, String) {
    let config =
        std::env::temp_dir().join(format!("agentry-conn-{}-{drain}.json", std::process::id()));
    let mut cfg = config_for_binary();
    cfg.limits.timeout_seconds = 20;
    std::fs::write(&config, cfg.to_json()).unwrap();
    runtime::start_process(
        "drain",
        &config,
        &bedrock.process_env(),
        &["--drain-delay-seconds", drain],
    )
}

fn config_for_binary() -> agentry_crds::runtime_config::RuntimeConfig {
    let mut c = config(vec![], limits());
    c.model.region = Some("us-east-1".into());
    c
}

fn sigterm(p: &Process) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &p.pid().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[tokio::test]
async fn sigterm_drains_closes_idle_and_half_sent_connections_at_once_and_waits_only_for_invocations()
 {
    let bedrock = FakeBedrock::start().await.unwrap();
    bedrock.push([Script::Delay(
        Duration::from_millis(2500),
        Box::new(Script::Turn(Turn::text("finished during the drain"))),
    )]);
    let (mut p, url) = start_binary(&bedrock, "1");
    let a = addr(&url);
    let mut idle = TcpStream::connect(a).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_response(&mut idle, Duration::from_secs(2))
            .await
            .starts_with("HTTP/1.1 200")
    );
    let mut kept = TcpStream::connect(a).await.unwrap();
    kept.write_all(b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_response(&mut kept, Duration::from_secs(2))
            .await
            .starts_with("HTTP/1.1 200")
    );
    let mut half_head = TcpStream::connect(a).await.unwrap();
    half_head
        .write_all(b"POST /v1/invoke HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let mut half_body = TcpStream::connect(a).await.unwrap();
    half_body.write_all(SLOW_BODY).await.unwrap();
    let in_flight = tokio::spawn({
        let url = url.clone();
        async move {
            let r = reqwest::Client::new()
                .post(format!("{url}/v1/invoke"))
                .body(json!({"input": "slow"}).to_string())
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap(), Instant::now())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    sigterm(&p);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Draining: the kept-alive connection gets 503 on /readyz; a new invocation 503 + Retry-After.
    kept.write_all(b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let readyz = read_response(&mut kept, Duration::from_secs(2)).await;
    assert!(readyz.starts_with("HTTP/1.1 503"), "{readyz}");
    assert!(readyz.contains("shutting_down"), "{readyz}");
    let refused = reqwest::Client::new()
        .post(format!("{url}/v1/invoke"))
        .body(json!({"input": "late"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert!(refused.text().await.unwrap().contains("shutting_down"));
    // After the drain delay (1 s): idle and half-sent connections close at once.
    for (name, s) in [("idle", &mut idle), ("half head", &mut half_head)] {
        let (_, closed) = read_until_closed(s, Duration::from_millis(1500)).await;
        assert!(closed, "{name} still open {:?} after SIGTERM", t0.elapsed());
    }
    let (text, closed) = read_until_closed(&mut half_body, Duration::from_millis(500)).await;
    assert!(text.starts_with("HTTP/1.1 503") && closed, "{text}");
    assert!(
        t0.elapsed() < Duration::from_millis(2000),
        "{:?}",
        t0.elapsed()
    );
    // The invocation in flight finishes; then the process exits, long before the grace period.
    let (status, body, at) = in_flight.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("finished during the drain"));
    let code = tokio::task::spawn_blocking(move || {
        let c = p.terminate(Duration::from_secs(10));
        (c, p.log())
    })
    .await
    .unwrap();
    assert_eq!(code.0, Some(0), "{}", code.1);
    assert!(at.duration_since(t0) < Duration::from_secs(4));
    assert!(!code.1.contains("did not finish"), "{}", code.1);
}

#[tokio::test]
async fn sigterm_with_only_idle_connections_exits_after_the_drain_delay() {
    let bedrock = FakeBedrock::start().await.unwrap();
    let (mut p, url) = start_binary(&bedrock, "0.5");
    let mut idle = TcpStream::connect(addr(&url)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_response(&mut idle, Duration::from_secs(2))
            .await
            .starts_with("HTTP/1.1 200")
    );
    let mut silent = TcpStream::connect(addr(&url)).await.unwrap();
    let t0 = Instant::now();
    sigterm(&p);
    let (code, log) =
        tokio::task::spawn_blocking(move || (p.terminate(Duration::from_secs(10)), p.log()))
            .await
            .unwrap();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        t0.elapsed() < Duration::from_millis(2000),
        "{:?}",
        t0.elapsed()
    );
    assert!(
        read_until_closed(&mut silent, Duration::from_millis(200))
            .await
            .1
    );
    assert!(!log.contains("did not finish"), "{log}");
}
