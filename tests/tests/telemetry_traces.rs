//! Traces end to end with the real binaries: agent A (an `agentry-runtime` process) asks agent
//! B, which calls an HTTP tool; both export OTLP/HTTP to a receiver that decodes the protobuf
//! with the official `opentelemetry-proto` package. One trace, GenAI attributes, no prompt text
//! unless asked; trace ids in the logs; the trace context passed on when tracing is off; bad
//! settings refused at start. Also the token and cost metrics for a known usage.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use agentry_crds::HttpMethod;
use agentry_crds::runtime_config::*;
use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::otlp::OtlpReceiver;
use agentry_tests::process::Process;
use agentry_tests::runtime::{ToolBehaviour, ToolServer};
use serde_json::{Value, json};

const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";
/// The caller's own span: the trace every span must join.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn write_config(name: &str, tools: Vec<ToolConfig>) -> PathBuf {
    let mut config = agentry_tests::runtime::process_config(name, "traces", tools);
    config.model.temperature = Some(0.5);
    config.system_prompt = format!("You are the secret agent {name}.");
    agentry_tests::runtime::write_config(&config)
}

fn http_tool(url: String) -> ToolConfig {
    ToolConfig {
        approval_required: false,
        name: "top_song".into(),
        description: "Top song on a station.".into(),
        kind: ToolKindConfig::Http(HttpToolConfig {
            url,
            method: HttpMethod::Post,
            headers: vec![],
            auth: None,
            timeout_seconds: 5,
            input_schema: json!({"type": "object", "properties": {"sign": {"type": "string"}}, "required": ["sign"]}),
        }),
    }
}

fn start(
    name: &str,
    config: &std::path::Path,
    bedrock: &FakeBedrock,
    env: &[(&str, String)],
) -> (Process, String) {
    let mut all = bedrock.process_env();
    all.extend(env.iter().map(|(k, v)| (*k, v.clone())));
    if !env.iter().any(|(k, _)| *k == "AGENTRY_LOG_FORMAT") {
        all.push(("AGENTRY_LOG_FORMAT", "json".into()));
    }
    agentry_tests::runtime::start_process(name, config, &all, &[])
}

fn traced(receiver: &OtlpReceiver) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".into()),
    ]
}

/// `POST /v1/invoke` with `input`, carrying `traceparent` when given; the status.
async fn ask(url: &str, input: &str, traceparent: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/v1/invoke"))
        .body(json!({ "input": input }).to_string());
    if let Some(tp) = traceparent {
        request = request.header("traceparent", tp);
    }
    request.send().await.unwrap().status().as_u16()
}

fn named<'a>(spans: &'a [Value], name: &str) -> Vec<&'a Value> {
    spans.iter().filter(|s| s["name"] == name).collect()
}

fn one<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    let found = named(spans, name);
    assert_eq!(found.len(), 1, "one {name} span: {spans:#?}");
    found[0]
}

/// OTLP span kinds.
const INTERNAL: u64 = 1;
const SERVER: u64 = 2;
const CLIENT: u64 = 3;

#[tokio::test]
async fn a_front_agent_a_back_agent_and_its_tool_are_one_trace_in_the_genai_conventions() {
    let receiver = OtlpReceiver::start().await;
    let bedrock = FakeBedrock::start().await.unwrap();
    let tools = ToolServer::start(&[(
        "/top_song",
        ToolBehaviour::Json(json!({"song": "Elemental Hotel"})),
    )])
    .await;
    let b_config = write_config("b", vec![http_tool(tools.url("/top_song"))]);
    let (b, b_url) = start("b", &b_config, &bedrock, &traced(&receiver));
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
    let (a, a_url) = start("a", &a_config, &bedrock, &traced(&receiver));
    bedrock.push([
        Script::Turn(
            Turn::tools(&[("a1", "ask_b", json!({"input": "What is on WZPZ?"}))])
                .with_usage(101, 11),
        ),
        Script::Turn(
            Turn::tools(&[("b1", "top_song", json!({"sign": "WZPZ"}))]).with_usage(202, 22),
        ),
        Script::Turn(Turn::text("Elemental Hotel.").with_usage(303, 33)),
        Script::Turn(Turn::text("B says: Elemental Hotel.").with_usage(404, 44)),
    ]);
    let tp = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    assert_eq!(ask(&a_url, "Ask B about WZPZ.", Some(&tp)).await, 200);
    let spans = receiver.spans(8, Duration::from_secs(15)).await;
    assert_eq!(
        spans.len(),
        8,
        "8 spans: {spans:#?}\nA:\n{}\nB:\n{}",
        a.log(),
        b.log()
    );
    for s in &spans {
        assert_eq!(
            s["traceId"], TRACE_ID,
            "every span in the caller's trace: {s:#}"
        );
        assert_eq!(s["scope"], "agentry-runtime");
        assert!(s["end"].as_u64().unwrap() >= s["start"].as_u64().unwrap());
    }
    // The tree: caller → A's invoke_agent → (chat, chat, execute_tool ask_b → B's invoke_agent
    // → (chat, chat, execute_tool top_song → the HTTP tool)).
    let inv_a = one(&spans, "invoke_agent a");
    let inv_b = one(&spans, "invoke_agent b");
    let ask_b = one(&spans, "execute_tool ask_b");
    let top_song = one(&spans, "execute_tool top_song");
    assert_eq!(inv_a["parentSpanId"], CALLER_SPAN);
    assert_eq!(ask_b["parentSpanId"], inv_a["spanId"]);
    assert_eq!(inv_b["parentSpanId"], ask_b["spanId"]);
    assert_eq!(top_song["parentSpanId"], inv_b["spanId"]);
    let chats = named(&spans, &format!("chat {MODEL}"));
    assert_eq!(chats.len(), 4);
    let under = |parent: &Value| {
        chats
            .iter()
            .filter(|c| c["parentSpanId"] == parent["spanId"])
            .count()
    };
    assert_eq!((under(inv_a), under(inv_b)), (2, 2));
    // Resources name each agent.
    assert_eq!(inv_a["resource"]["service.name"], "a");
    assert_eq!(inv_b["resource"]["service.name"], "b");
    assert_eq!(inv_b["resource"]["service.namespace"], "traces");
    // Kinds and attributes.
    assert_eq!(
        (inv_a["kind"].as_u64(), ask_b["kind"].as_u64()),
        (Some(SERVER), Some(INTERNAL))
    );
    let attrs = &inv_a["attributes"];
    assert_eq!(attrs["gen_ai.operation.name"], "invoke_agent");
    assert_eq!(attrs["gen_ai.agent.name"], "a");
    assert_eq!(attrs["gen_ai.provider.name"], "aws.bedrock");
    assert_eq!(attrs["agentry.protocol"], "invoke");
    assert_eq!(attrs["http.response.status_code"], 200);
    assert_eq!(attrs["gen_ai.usage.input_tokens"], 101 + 404);
    assert_eq!(attrs["gen_ai.usage.output_tokens"], 11 + 44);
    let t = &top_song["attributes"];
    assert_eq!(t["gen_ai.operation.name"], "execute_tool");
    assert_eq!(t["gen_ai.tool.name"], "top_song");
    assert_eq!(t["gen_ai.tool.call.id"], "b1");
    assert_eq!(t["gen_ai.tool.type"], "extension");
    assert_eq!(t["agentry.tool.kind"], "http");
    assert_eq!(ask_b["attributes"]["agentry.tool.kind"], "agent");
    let first_b = chats
        .iter()
        .find(|c| c["attributes"]["gen_ai.usage.input_tokens"] == 202)
        .expect("B's first chat span");
    assert_eq!(first_b["parentSpanId"], inv_b["spanId"]);
    assert_eq!(first_b["kind"].as_u64(), Some(CLIENT));
    let c = &first_b["attributes"];
    assert_eq!(c["gen_ai.operation.name"], "chat");
    assert_eq!(c["gen_ai.request.model"], MODEL);
    assert_eq!(c["gen_ai.request.max_tokens"], 512);
    assert_eq!(c["gen_ai.request.temperature"], 0.5);
    assert_eq!(c["gen_ai.usage.output_tokens"], 22);
    assert_eq!(c["gen_ai.response.finish_reasons"], json!(["tool_use"]));
    assert_eq!(c["aws.request_id"], "00000000-0000-0000-0000-000000000000");
    // No content without the opt-in: no prompt, input, answer or tool argument anywhere.
    let all = serde_json::to_string(&spans).unwrap();
    for secret in ["secret agent", "WZPZ", "Elemental", "gen_ai.input.messages"] {
        assert!(!all.contains(secret), "{secret} in the spans");
    }
    // The HTTP tool got B's execute_tool span as its parent.
    let seen = tools.seen();
    assert_eq!(
        seen[0].headers["traceparent"],
        format!("00-{TRACE_ID}-{}-01", top_song["spanId"].as_str().unwrap())
    );
    // The access log lines carry the trace and their span.
    let line = a
        .log()
        .lines()
        .find(|l| l.contains("agentry_runtime::access"))
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .expect("A's access log line");
    assert_eq!(line["trace_id"], TRACE_ID);
    assert_eq!(line["span_id"], inv_a["spanId"]);
}

#[tokio::test]
async fn content_is_recorded_only_when_opted_in_and_errors_carry_their_type() {
    let receiver = OtlpReceiver::start().await;
    let bedrock = FakeBedrock::start().await.unwrap();
    let tools = ToolServer::start(&[(
        "/top_song",
        ToolBehaviour::Json(json!({"song": "Elemental Hotel"})),
    )])
    .await;
    let config = write_config("b", vec![http_tool(tools.url("/top_song"))]);
    let mut env = traced(&receiver);
    env.push((
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        "true".into(),
    ));
    env.push(("OTEL_SERVICE_NAME", "radio-desk".into()));
    let (b, url) = start("b", &config, &bedrock, &env);
    bedrock.push([
        Script::Turn(Turn::tools(&[("b1", "top_song", json!({"sign": "WZPZ"}))])),
        Script::Turn(Turn::text("Elemental Hotel.")),
        Script::Error(400, "ValidationException".into(), "bad input".into()),
    ]);
    assert_eq!(ask(&url, "Top song on WZPZ?", None).await, 200);
    assert_eq!(ask(&url, "again", None).await, 502);
    let spans = receiver.spans(6, Duration::from_secs(15)).await;
    assert_eq!(spans.len(), 6, "{spans:#?}\n{}", b.log());
    assert_eq!(spans[0]["resource"]["service.name"], "radio-desk");
    // Two traces: without a traceparent each invocation starts its own.
    let invocations = named(&spans, "invoke_agent b");
    assert_eq!(invocations.len(), 2);
    assert_ne!(invocations[0]["traceId"], invocations[1]["traceId"]);
    assert!(invocations.iter().all(|s| s["parentSpanId"] == ""));
    let chats = named(&spans, &format!("chat {MODEL}"));
    let first = chats
        .iter()
        .find(|c| c["attributes"]["gen_ai.response.finish_reasons"] == json!(["tool_use"]))
        .unwrap();
    let input: Value = serde_json::from_str(
        first["attributes"]["gen_ai.input.messages"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        input,
        json!([{"role": "user", "parts": [{"type": "text", "content": "Top song on WZPZ?"}]}])
    );
    let system: Value = serde_json::from_str(
        first["attributes"]["gen_ai.system_instructions"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(system[0]["content"], "You are the secret agent b.");
    let output: Value = serde_json::from_str(
        first["attributes"]["gen_ai.output.messages"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        output[0]["parts"][0],
        json!({"type": "tool_call", "id": "b1", "name": "top_song", "arguments": {"sign": "WZPZ"}})
    );
    let tool = one(&spans, "execute_tool top_song");
    assert_eq!(
        tool["attributes"]["gen_ai.tool.call.arguments"],
        r#"{"sign":"WZPZ"}"#
    );
    assert!(
        tool["attributes"]["gen_ai.tool.call.result"]
            .as_str()
            .unwrap()
            .contains("Elemental Hotel")
    );
    // The failed call: error.type is the AWS error code, on the chat span and its invocation.
    let bad = chats
        .iter()
        .find(|c| c["attributes"]["error.type"].is_string())
        .expect("the failed chat span");
    assert_eq!(bad["attributes"]["error.type"], "ValidationException");
    assert_eq!(bad["status"]["code"], 2, "STATUS_CODE_ERROR");
    let failed_inv = invocations
        .iter()
        .find(|s| s["traceId"] == bad["traceId"])
        .unwrap();
    assert_eq!(failed_inv["attributes"]["error.type"], "model_error");
    assert_eq!(failed_inv["attributes"]["http.response.status_code"], 502);
}

#[tokio::test]
async fn a_failed_tool_call_is_a_span_error_without_its_text_unless_content_is_captured() {
    let receiver = OtlpReceiver::start().await;
    let bedrock = FakeBedrock::start().await.unwrap();
    let tools = ToolServer::start(&[(
        "/top_song",
        ToolBehaviour::Status(500, "internal secret-body".into()),
    )])
    .await;
    let config = write_config("b", vec![http_tool(tools.url("/top_song"))]);
    let (b, url) = start("b", &config, &bedrock, &traced(&receiver));
    bedrock.push([
        Script::Turn(Turn::tools(&[("b1", "top_song", json!({"sign": "WZPZ"}))])),
        Script::Turn(Turn::text("The station is down.")),
    ]);
    assert_eq!(ask(&url, "q", None).await, 200);
    let spans = receiver.spans(4, Duration::from_secs(15)).await;
    let tool = one(&spans, "execute_tool top_song");
    assert_eq!(
        tool["attributes"]["error.type"],
        "tool_error",
        "{}",
        b.log()
    );
    assert_eq!(tool["status"]["code"], 2);
    assert_eq!(
        tool["status"]["message"],
        "the tool call returned an error result"
    );
    assert!(
        !serde_json::to_string(&spans)
            .unwrap()
            .contains("secret-body")
    );
}

#[tokio::test]
async fn switched_off_nothing_is_exported_and_the_callers_trace_is_passed_on() {
    let receiver = OtlpReceiver::start().await;
    let bedrock = FakeBedrock::start().await.unwrap();
    let tools =
        ToolServer::start(&[("/top_song", ToolBehaviour::Json(json!({"song": "x"})))]).await;
    let config = write_config("b", vec![http_tool(tools.url("/top_song"))]);
    let (b, url) = start(
        "b",
        &config,
        &bedrock,
        &[
            // An endpoint that works, and the SDK switch off: nothing may reach it.
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            ("OTEL_SDK_DISABLED", "true".into()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50".into()),
            ("AGENTRY_LOG_FORMAT", "text".into()),
        ],
    );
    bedrock.push([
        Script::Turn(Turn::tools(&[("b1", "top_song", json!({"sign": "WZPZ"}))])),
        Script::Turn(Turn::text("x")),
    ]);
    let tp = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    assert_eq!(ask(&url, "q", Some(&tp)).await, 200);
    assert_eq!(tools.seen()[0].headers["traceparent"], tp);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().await["spans"], json!([]));
    // The text access line carries the caller's trace (there is no span of its own).
    let line = b
        .log()
        .lines()
        .find(|l| l.contains("agentry_runtime::access"))
        .map(String::from)
        .expect("the access line");
    assert!(
        line.ends_with(&format!(" trace_id={TRACE_ID} span_id={CALLER_SPAN}")),
        "{line}"
    );
}

#[tokio::test]
async fn telemetry_settings_this_build_cannot_honour_stop_the_start_naming_the_variable() {
    let bedrock = FakeBedrock::start().await.unwrap();
    let config = write_config("b", vec![]);
    let bin = agentry_tests::process::binary("agentry-runtime", "agentry-runtime");
    for (var, value, says) in [
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "grpc",
            "OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\"",
        ),
        (
            "OTEL_TRACES_SAMPLER",
            "xray",
            "OTEL_TRACES_SAMPLER=\"xray\"",
        ),
        (
            "AGENTRY_MODEL_PRICES",
            r#"{"m": {"input": -1, "output": 1}}"#,
            "AGENTRY_MODEL_PRICES: m.input is -1",
        ),
    ] {
        let mut env: Vec<(&str, String)> = bedrock.process_env();
        env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9".into()));
        env.push((var, value.into()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut p = Process::start(
            "bad",
            &bin,
            &[
                "--config",
                config.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ],
            &env,
        );
        let start = std::time::Instant::now();
        while p.is_running() && start.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!p.is_running(), "{var}: still running: {}", p.log());
        assert_eq!(
            p.terminate(Duration::from_secs(1)),
            Some(2),
            "{var}: {}",
            p.log()
        );
        assert!(p.log().contains(says), "{var}: {}", p.log());
    }
}

#[tokio::test]
async fn tokens_and_the_estimated_cost_are_metrics_and_the_price_table_can_be_overridden() {
    let bedrock = FakeBedrock::start().await.unwrap();
    let config = write_config("b", vec![]);
    let (_d, default_url) = start("default", &config, &bedrock, &[]);
    let prices = json!({MODEL: {"input": 2.0, "output": 10.0}}).to_string();
    let (_o, override_url) = start(
        "override",
        &config,
        &bedrock,
        &[("AGENTRY_MODEL_PRICES", prices)],
    );
    for url in [&default_url, &override_url] {
        bedrock.push([Script::Turn(Turn::text("hi").with_usage(1_000, 100))]);
        assert_eq!(ask(url, "q", None).await, 200);
    }
    let metric = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in\n{text}"))
    };
    let default = reqwest::get(format!("{default_url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cost = format!("agentry_runtime_estimated_cost_usd_total{{model=\"{MODEL}\"}}");
    // Claude 3 Haiku: $0.25 in, $1.25 out per million tokens.
    let want = 1_000.0 * 0.25 / 1e6 + 100.0 * 1.25 / 1e6;
    assert!((metric(&default, &cost) - want).abs() < 1e-12, "{default}");
    let overridden = reqwest::get(format!("{override_url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let want = 1_000.0 * 2.0 / 1e6 + 100.0 * 10.0 / 1e6;
    assert!(
        (metric(&overridden, &cost) - want).abs() < 1e-12,
        "{overridden}"
    );
    let labels = format!(
        "gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"aws.bedrock\",gen_ai_request_model=\"{MODEL}\""
    );
    assert_eq!(
        metric(
            &default,
            &format!("gen_ai_client_token_usage_sum{{{labels},gen_ai_token_type=\"input\"}}")
        ),
        1_000.0
    );
    assert_eq!(
        metric(
            &default,
            &format!("gen_ai_client_token_usage_sum{{{labels},gen_ai_token_type=\"output\"}}")
        ),
        100.0
    );
    assert_eq!(
        metric(
            &default,
            &format!("gen_ai_client_operation_duration_seconds_count{{{labels}}}")
        ),
        1.0
    );
    assert_eq!(
        metric(&default, "agentry_runtime_max_concurrent_invocations"),
        128.0
    );
}
