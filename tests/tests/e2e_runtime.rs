//! End to end with the real binaries: the Bedrock imitation and a tool server in this test,
//! agent A and agent B as `agentry-runtime` processes, A using B as a tool and B calling an
//! HTTP tool; a bad configuration; SIGTERM with a request in flight.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use agentry_crds::HttpMethod;
use agentry_crds::runtime_config::*;
use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::process::{Process, binary};
use agentry_tests::runtime::{ToolBehaviour, ToolServer};
use serde_json::{Value, json};

fn write_config(name: &str, tools: Vec<ToolConfig>) -> PathBuf {
    agentry_tests::runtime::write_config(&agentry_tests::runtime::process_config(
        name, "e2e", tools,
    ))
}

/// Starts `agentry-runtime --config <file>` on a free port and returns it with its URL.
fn start_runtime(
    name: &str,
    config: &std::path::Path,
    bedrock: &FakeBedrock,
    extra_env: &[(&str, &str)],
) -> (Process, String) {
    let mut env = bedrock.process_env();
    env.extend(extra_env.iter().map(|(k, v)| (*k, (*v).to_string())));
    agentry_tests::runtime::start_process(name, config, &env, &[])
}

#[tokio::test]
async fn agent_a_asks_agent_b_which_calls_an_http_tool_all_as_processes() {
    let bedrock = FakeBedrock::start().await.unwrap();
    let tools = ToolServer::start(&[(
        "/top_song",
        ToolBehaviour::Json(json!({"song": "Elemental Hotel", "artist": "8 Storey Hike"})),
    )])
    .await;
    let b_config = write_config(
        "b",
        vec![ToolConfig {
            approval_required: false,
            name: "top_song".into(),
            description: "Top song on a station.".into(),
            kind: ToolKindConfig::Http(HttpToolConfig {
                url: tools.url("/top_song"),
                method: HttpMethod::Post,
                headers: vec![HeaderConfig {
                    name: "x-api-key".into(),
                    value: None,
                    value_from_env: Some("AGENTRY_TOOL0_HEADER0".into()),
                }],
                auth: None,
                timeout_seconds: 5,
                input_schema: json!({"type": "object", "properties": {"sign": {"type": "string"}}, "required": ["sign"]}),
            }),
        }],
    );
    let (b, b_url) = start_runtime(
        "b",
        &b_config,
        &bedrock,
        &[("AGENTRY_TOOL0_HEADER0", "s3cr3t-key")],
    );
    let a_config = write_config(
        "a",
        vec![ToolConfig {
            approval_required: false,
            name: "ask_b".into(),
            description: "Ask agent B.".into(),
            kind: ToolKindConfig::Agent(AgentToolConfig {
                url: b_url.clone(),
                timeout_seconds: 15,
            }),
        }],
    );
    let (a, a_url) = start_runtime("a", &a_config, &bedrock, &[]);

    bedrock.push([
        Script::Turn(Turn::tools(&[(
            "a1",
            "ask_b",
            json!({"input": "What is the top song on WZPZ?"}),
        )])),
        Script::Turn(Turn::tools(&[("b1", "top_song", json!({"sign": "WZPZ"}))])),
        Script::Turn(Turn::text("Elemental Hotel by 8 Storey Hike.")),
        Script::Turn(Turn::text(
            "Agent B says: Elemental Hotel by 8 Storey Hike.",
        )),
    ]);
    let r = reqwest::Client::new()
        .post(format!("{a_url}/v1/invoke"))
        .body(json!({"input": "Ask B about WZPZ."}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(
        body["output"],
        "Agent B says: Elemental Hotel by 8 Storey Hike."
    );
    assert_eq!(
        body["toolCalls"][0],
        json!({"name": "ask_b", "status": "success", "durationMs": body["toolCalls"][0]["durationMs"]})
    );
    let seen = tools.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["x-api-key"], "s3cr3t-key");
    assert_eq!(bedrock.captured().len(), 4);
    // The secret never reaches a log.
    assert!(!a.log().contains("s3cr3t") && !b.log().contains("s3cr3t"));
    // Prometheus metrics count what happened.
    let metrics = reqwest::get(format!("{b_url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .contains("agentry_runtime_tool_calls_total{tool=\"top_song\",outcome=\"success\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "agentry_runtime_invocations_total{protocol=\"invoke\",outcome=\"end_turn\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_bad_configuration_exits_non_zero_naming_the_field() {
    let path = std::env::temp_dir().join(format!("agentry-e2e-bad-{}.json", std::process::id()));
    std::fs::write(&path, r#"{"apiVersion": "agentry.dev/runtime-config/v1", "agent": {"name": "a", "namespace": "b"}, "model": {"id": "x", "maxTokens": "lots"}}"#).unwrap();
    let out = std::process::Command::new(binary("agentry-runtime", "agentry-runtime"))
        .args(["--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid runtime configuration: model.maxTokens: invalid type"),
        "{stderr}"
    );

    let newer = std::env::temp_dir().join(format!("agentry-e2e-newer-{}.json", std::process::id()));
    std::fs::write(&newer, r#"{"apiVersion": "agentry.dev/runtime-config/v2"}"#).unwrap();
    let out = std::process::Command::new(binary("agentry-runtime", "agentry-runtime"))
        .args(["--config", newer.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("run a runtime image that matches the operator")
    );
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_complete_then_exits_cleanly() {
    let bedrock = FakeBedrock::start().await.unwrap();
    let config = write_config("slow", vec![]);
    let (mut p, url) = start_runtime("slow", &config, &bedrock, &[]);
    bedrock.push([Script::Delay(
        Duration::from_millis(800),
        Box::new(Script::Turn(Turn::text("done despite SIGTERM"))),
    )]);
    let request = tokio::spawn(async move {
        let r = reqwest::Client::new()
            .post(format!("{url}/v1/invoke"))
            .body(json!({"input": "slow"}).to_string())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    tokio::time::sleep(Duration::from_millis(250)).await;
    let code = tokio::task::spawn_blocking(move || p.terminate(Duration::from_secs(10)))
        .await
        .unwrap();
    let (status, text) = request.await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("done despite SIGTERM"));
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn an_agent_manifest_runs_locally_once_in_cluster_tools_are_resolved() {
    let bin = binary("agentry-runtime", "agentry-runtime");
    let weather = agentry_tests::fixtures::repo_root().join("examples/weather.yaml");
    let out = std::process::Command::new(&bin)
        .args([
            "--agent",
            weather.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("get_weather (http://weather-api.default.svc.cluster.local:80/v1/weather)")
            && stderr.contains("ask_travel_agent"),
        "{stderr}"
    );
    assert!(stderr.contains("--resolve TOOL=URL"), "{stderr}");

    let bedrock = FakeBedrock::start().await.unwrap();
    let owned = bedrock.process_env();
    let mut local_env: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    local_env.push(("AGENTRY_TOOL0_HEADER0", "local-key"));
    let p = Process::start(
        "local",
        &bin,
        &[
            "--agent",
            weather.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--resolve",
            "get_weather=http://127.0.0.1:9/v1/weather",
            "--resolve",
            "ask_travel_agent=http://127.0.0.1:9",
        ],
        &local_env,
    );
    assert!(
        p.wait_for_log(" ready ", Duration::from_secs(30)),
        "{}",
        p.log()
    );
    let addr = p
        .log()
        .split("listen=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    bedrock.push([Script::Turn(Turn::text("Sunny."))]);
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/v1/invoke"))
        .body(json!({"input": "Weather in Paris?"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The manifest's model and region reach Bedrock.
    assert_eq!(
        bedrock.captured()[0].model_id,
        "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
    );
}
