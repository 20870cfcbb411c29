//! Shared pieces of the session suites: a runtime with memory on a real redis-server, request
//! helpers, and a compact view of conversations.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use agentry_crds::runtime_config::*;
use agentry_tests::bedrock::FakeBedrock;
use agentry_tests::runtime::{self, RuntimeUnderTest, ToolServer};
use serde_json::Value;

use crate::fixtures::*;

pub const URL_ENV: &str = "AGENTRY_MEMORY_URL";

pub fn memory(ttl_seconds: u32, max_messages: u32) -> MemoryConfig {
    MemoryConfig {
        url_from_env: URL_ENV.into(),
        ttl_seconds,
        max_messages,
        ca_pem: None,
        max_context_tokens: None,
        approval_timeout_seconds: 3600,
    }
}

pub fn env(redis_url: &str) -> BTreeMap<String, String> {
    let mut e = secrets();
    e.insert(URL_ENV.into(), redis_url.into());
    e
}

/// A runtime with memory on `redis`, a top_song tool on `tools`.
pub async fn start(
    redis_url: &str,
    memory: MemoryConfig,
    tools: &ToolServer,
) -> (FakeBedrock, RuntimeUnderTest) {
    start_limited(redis_url, memory, tools, limits()).await
}

/// The same, with other limits.
pub async fn start_limited(
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

pub async fn send(
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

pub async fn ask(base: &str, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
    send(
        reqwest::Method::POST,
        format!("{base}/v1/invoke"),
        Some(body),
    )
    .await
}

pub async fn get(base: &str, id: &str) -> (u16, Value) {
    let (s, b, _) = send(
        reqwest::Method::GET,
        format!("{base}/v1/sessions/{id}"),
        None,
    )
    .await;
    (s, b)
}

/// The roles and texts of a Converse request's (or a session's) messages, compactly.
pub fn texts(messages: &Value) -> Vec<String> {
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

/// The tool results of a Converse request's last message: (id, status, text).
pub fn results(request: &Value) -> Vec<(String, String, String)> {
    let last = request["messages"].as_array().unwrap().last().unwrap();
    last["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let r = &b["toolResult"];
            (
                r["toolUseId"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap_or("success").to_string(),
                r["content"][0]["text"]
                    .as_str()
                    .map_or_else(|| r["content"][0]["json"].to_string(), str::to_string),
            )
        })
        .collect()
}

/// Polls `f` every 50 ms until it is true, for at most `limit`.
pub async fn eventually(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
