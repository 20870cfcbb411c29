//! The real binary's access log (text and JSON, one line per invocation of any protocol, never the
//! prompt), its warning for each failed Bedrock call, an unreachable Bedrock, and the memory
//! eight oversized replies cost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;

use std::time::Duration;

use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::process::{Process, proc_status_kb};
use agentry_tests::runtime;
use fixtures::*;
use serde_json::{Value, json};

const PROMPT: &str = "SECRET-PROMPT-7f3a: what is the top song on WZPZ?";

fn start(env_over: &[(&str, String)], args: &[&str]) -> (Process, String) {
    let path = std::env::temp_dir().join(format!(
        "agentry-ops-{}-{}.json",
        std::process::id(),
        args.join("_").replace(['/', ' '], "")
    ));
    let mut cfg = config(vec![], limits());
    cfg.model.region = Some("us-east-1".into());
    std::fs::write(&path, cfg.to_json()).unwrap();
    runtime::start_process("ops", &path, env_over, args)
}

async fn post(url: &str, input: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/invoke"))
        .header("x-request-id", "req-from-client-1")
        .body(json!({"input": input}).to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(r.headers()["x-request-id"], "req-from-client-1");
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap(),
    )
}

#[tokio::test]
async fn every_invocation_has_one_json_access_line_without_the_prompt_and_failures_warn_with_the_aws_code()
 {
    let bedrock = FakeBedrock::start().await.unwrap();
    bedrock.push([
        Script::Turn(Turn::text("Elemental Hotel.").with_usage(12, 3)),
        Script::Error(
            400,
            "ValidationException".into(),
            "The model returned a bad request".into(),
        ),
    ]);
    let (mut p, url) = start(&bedrock.process_env(), &["--log-format", "json"]);
    assert_eq!(post(&url, PROMPT).await.0, 200);
    assert_eq!(post(&url, PROMPT).await.0, 502);
    tokio::time::sleep(Duration::from_millis(200)).await;
    p.kill();
    let log = p.log();
    assert!(
        !log.contains("SECRET-PROMPT-7f3a"),
        "the prompt reached the log:\n{log}"
    );
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "agentry_runtime::access")
        .collect();
    assert_eq!(access.len(), 2, "{log}");
    let ok = access[0];
    for (field, want) in [
        ("request_id", json!("req-from-client-1")),
        ("method", json!("POST")),
        ("path", json!("/v1/invoke")),
        ("protocol", json!("invoke")),
        ("status", json!(200)),
        ("outcome", json!("end_turn")),
        ("model_calls", json!(1)),
        ("tool_calls", json!(0)),
        ("input_tokens", json!(12)),
        ("output_tokens", json!(3)),
    ] {
        assert_eq!(ok[field], want, "{field} in {ok}");
    }
    assert!(ok["duration_ms"].is_u64(), "{ok}");
    assert_eq!(
        (access[1]["status"].clone(), access[1]["outcome"].clone()),
        (json!(502), json!("model_error"))
    );
    let warning = lines
        .iter()
        .find(|l| l["level"] == "WARN" && l["message"] == "Bedrock call failed")
        .unwrap_or_else(|| panic!("no warning:\n{log}"));
    assert_eq!(warning["error_code"], "ValidationException", "{warning}");
    assert_eq!(warning["request_id"], "req-from-client-1");
}

#[tokio::test]
async fn the_text_access_line_carries_the_same_fields_and_an_unreachable_bedrock_is_named_so() {
    // Nothing listens on port 1 of loopback: the SDK cannot connect.
    let env = vec![
        (
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
            "http://127.0.0.1:1".to_string(),
        ),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE".into()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        ),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_MAX_ATTEMPTS", "1".into()),
    ];
    let (mut p, url) = start(&env, &[]);
    let (status, body) = post(&url, PROMPT).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("bedrock_unreachable")),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    p.kill();
    let log = p.log();
    let line = log
        .lines()
        .find(|l| l.contains("agentry_runtime::access"))
        .unwrap_or_else(|| panic!("{log}"));
    for want in [
        "request_id=req-from-client-1",
        "status=502",
        "outcome=unreachable",
        "model_calls=1",
        "protocol=\"invoke\"",
    ] {
        assert!(
            line.contains(want) || line.contains(&want.replace('"', "")),
            "{want} missing in {line}"
        );
    }
    assert!(!log.contains("SECRET-PROMPT-7f3a"));
}

#[tokio::test]
async fn eight_oversized_replies_at_once_are_refused_without_holding_them() {
    let bedrock = FakeBedrock::start().await.unwrap();
    let huge = "z".repeat(10 * 1024 * 1024);
    bedrock.fallback(move |_| Script::Turn(Turn::text(&huge)));
    let (mut p, url) = start(&bedrock.process_env(), &[]);
    let calls = (0..8).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { post(&url, "write ten megabytes").await })
    });
    for call in futures::future::join_all(calls).await {
        let (status, body) = call.unwrap();
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (502, Some("model_reply_too_large")),
            "{body}"
        );
    }
    let peak_mb = proc_status_kb(p.pid(), "VmHWM") as f64 / 1024.0;
    eprintln!("peak RSS with 8 replies of 10 MiB refused: {peak_mb:.1} MB");
    p.kill();
    assert!(
        peak_mb < 48.0,
        "peak RSS {peak_mb:.1} MB with 8 replies of 10 MiB"
    );
}

#[tokio::test]
async fn each_protocol_names_itself_in_the_access_line_with_its_request_id_and_stream_flag() {
    let bedrock = FakeBedrock::start().await.unwrap();
    bedrock.fallback(|_| Script::Turn(Turn::text("Elemental Hotel.")));
    let (mut p, url) = start(
        &bedrock.process_env(),
        &["--log-format", "json", "--idle-timeout-seconds", "61"],
    );
    let client = reqwest::Client::new();
    let send = |path: &str, id: &str, body: Value| {
        client
            .post(format!("{url}{path}"))
            .header("x-request-id", id)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .body(body.to_string())
            .send()
    };
    let streamed = send(
        "/v1/chat/completions",
        "req-openai-1",
        json!({"model": "radio", "stream": true,
            "messages": [{"role": "user", "content": PROMPT}]}),
    )
    .await
    .unwrap();
    assert_eq!(streamed.headers()["x-request-id"], "req-openai-1");
    let text = streamed.text().await.unwrap();
    assert!(text.contains("\"id\":\"chatcmpl-req-openai-1\""), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let called = send(
        "/mcp",
        "req-mcp-1",
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "radio", "arguments": {"input": PROMPT}}}),
    )
    .await
    .unwrap();
    let text = called.text().await.unwrap();
    assert!(text.contains("Elemental Hotel."), "{text}");
    assert_eq!(post(&url, PROMPT).await.0, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    p.kill();
    let log = p.log();
    assert!(
        !log.contains("SECRET-PROMPT-7f3a"),
        "the prompt reached the log:\n{log}"
    );
    let access: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "agentry_runtime::access")
        .collect();
    let line = |id: &str| {
        access
            .iter()
            .find(|l| l["request_id"] == id)
            .unwrap_or_else(|| panic!("no access line for {id}:\n{log}"))
            .clone()
    };
    for (id, path, protocol, stream) in [
        ("req-openai-1", "/v1/chat/completions", "openai", true),
        ("req-mcp-1", "/mcp", "mcp", false),
        ("req-from-client-1", "/v1/invoke", "invoke", false),
    ] {
        let l = line(id);
        assert_eq!(
            (
                &l["path"],
                &l["protocol"],
                &l["stream"],
                &l["status"],
                &l["outcome"]
            ),
            (
                &json!(path),
                &json!(protocol),
                &json!(stream),
                &json!(200),
                &json!("end_turn")
            ),
            "{l}"
        );
        assert_eq!(l["model_calls"], 1, "{l}");
    }
}
