//! Benchmark: the release `agentry-runtime` against a bare aws-sdk-bedrockruntime loop, on
//! one tool round trip (2 model calls and 1 HTTP tool call) with the Bedrock imitation and the
//! tool answering at once. Each side runs as its own process, so its CPU time and memory are
//! its own; the load generator and the imitations live in this process.
//!
//! `cargo run --release -p agentry-tests --bin bench-runtime -- [SECONDS]` (default 5 per run)

// A benchmark: when its setup fails, stopping loudly is the right outcome.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agentry_crds::HttpMethod;
use agentry_crds::limits::EffectiveLimits;
use agentry_crds::runtime_config::*;
use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::process::{Process, cpu_seconds, proc_status_kb, release_binary};
use agentry_tests::runtime::{ToolBehaviour, ToolServer};
use serde_json::{Value, json};

/// The scripted model: a tool call first, the answer once the tool result is there.
fn model(body: &Value) -> Script {
    let last = &body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or_default()["content"][0];
    if last.get("toolResult").is_some() {
        Script::Turn(Turn::text(
            "The most popular song on WZPZ is Elemental Hotel by 8 Storey Hike.",
        ))
    } else {
        Script::Turn(Turn::tools(&[(
            "tooluse_1",
            "top_song",
            json!({"sign": "WZPZ"}),
        )]))
    }
}

struct Run {
    invocations: u64,
    per_second: f64,
    cpu_ms_per_invocation: f64,
}

/// Drives `url` (agentry-runtime) with `concurrency` clients for `secs`.
async fn drive_runtime(url: &str, pid: u32, concurrency: usize, secs: u64) -> Run {
    let client = reqwest::Client::new();
    let count = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_seconds(pid);
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, count, url) = (client.clone(), count.clone(), url.to_string());
            tokio::spawn(async move {
                while Instant::now() < end {
                    let r = client
                        .post(format!("{url}/v1/invoke"))
                        .body(r#"{"input":"What is the most popular song on WZPZ?"}"#)
                        .send()
                        .await
                        .expect("request");
                    assert_eq!(r.status(), 200);
                    let _ = r.bytes().await;
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = count.load(Ordering::Relaxed);
    Run {
        invocations: n,
        per_second: n as f64 / elapsed,
        cpu_ms_per_invocation: (cpu_seconds(pid) - cpu0) * 1000.0 / n.max(1) as f64,
    }
}

/// The bare loop, run as a child process: `bench-runtime --bare BEDROCK_URL TOOL_URL CONCURRENCY SECS`.
async fn bare_loop(bedrock_url: String, tool_url: String, concurrency: usize, secs: u64) {
    use aws_sdk_bedrockruntime::types::{
        ContentBlock, ConversationRole, Message, SystemContentBlock, Tool, ToolConfiguration,
        ToolInputSchema, ToolResultBlock, ToolResultContentBlock, ToolSpecification,
    };
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(bedrock_url)
        .test_credentials()
        .load()
        .await;
    let client = aws_sdk_bedrockruntime::Client::new(&sdk);
    let http = reqwest::Client::new();
    let schema = aws_smithy_types::Document::Object(
        [(
            "type".to_string(),
            aws_smithy_types::Document::String("object".into()),
        )]
        .into_iter()
        .collect(),
    );
    let tools = ToolConfiguration::builder()
        .tools(Tool::ToolSpec(
            ToolSpecification::builder()
                .name("top_song")
                .description("Top song.")
                .input_schema(ToolInputSchema::Json(schema))
                .build()
                .unwrap(),
        ))
        .build()
        .unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, http, tools, count, tool_url) = (
                client.clone(),
                http.clone(),
                tools.clone(),
                count.clone(),
                tool_url.clone(),
            );
            tokio::spawn(async move {
                while Instant::now() < end {
                    let user = Message::builder()
                        .role(ConversationRole::User)
                        .content(ContentBlock::Text(
                            "What is the most popular song on WZPZ?".into(),
                        ))
                        .build()
                        .unwrap();
                    let mut messages = vec![user];
                    let first = client
                        .converse()
                        .model_id("anthropic.claude-3-haiku-20240307-v1:0")
                        .system(SystemContentBlock::Text("You help.".into()))
                        .set_messages(Some(messages.clone()))
                        .tool_config(tools.clone())
                        .send()
                        .await
                        .unwrap();
                    let Some(aws_sdk_bedrockruntime::types::ConverseOutput::Message(reply)) =
                        first.output
                    else {
                        panic!("no message")
                    };
                    let use_block = reply
                        .content()
                        .iter()
                        .find_map(|b| b.as_tool_use().ok())
                        .cloned()
                        .unwrap();
                    messages.push(reply);
                    let tool = http
                        .post(&tool_url)
                        .header("content-type", "application/json")
                        .body(r#"{"sign":"WZPZ"}"#)
                        .send()
                        .await
                        .unwrap()
                        .text()
                        .await
                        .unwrap();
                    let result = ToolResultBlock::builder()
                        .tool_use_id(use_block.tool_use_id())
                        .content(ToolResultContentBlock::Text(tool))
                        .build()
                        .unwrap();
                    messages.push(
                        Message::builder()
                            .role(ConversationRole::User)
                            .content(ContentBlock::ToolResult(result))
                            .build()
                            .unwrap(),
                    );
                    let _ = client
                        .converse()
                        .model_id("anthropic.claude-3-haiku-20240307-v1:0")
                        .system(SystemContentBlock::Text("You help.".into()))
                        .set_messages(Some(messages))
                        .tool_config(tools.clone())
                        .send()
                        .await
                        .unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    println!(
        "{} {}",
        count.load(Ordering::Relaxed),
        cpu_seconds(std::process::id())
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--bare") {
        bare_loop(
            args[2].clone(),
            args[3].clone(),
            args[4].parse().unwrap(),
            args[5].parse().unwrap(),
        )
        .await;
        return;
    }
    let secs: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let bedrock = FakeBedrock::start().await.expect("fake bedrock");
    bedrock.fallback(model);
    let tools = ToolServer::start(&[(
        "/top_song",
        ToolBehaviour::Json(json!({"song": "Elemental Hotel", "artist": "8 Storey Hike"})),
    )])
    .await;

    let config = RuntimeConfig {
        api_version: RUNTIME_CONFIG_API_VERSION.into(),
        agent: AgentIdentity {
            name: "bench".into(),
            namespace: "bench".into(),
        },
        model: ModelConfig {
            id: "anthropic.claude-3-haiku-20240307-v1:0".into(),
            region: Some("us-east-1".into()),
            max_tokens: 512,
            temperature: None,
            top_p: None,
            stop_sequences: vec![],
            guardrail: None,
            prompt_caching: false,
        },
        system_prompt: "You help.".into(),
        limits: EffectiveLimits {
            max_concurrent_invocations: 64,
            ..EffectiveLimits::default()
        },
        tools: vec![ToolConfig {
            name: "top_song".into(),
            description: "Top song.".into(),
            kind: ToolKindConfig::Http(HttpToolConfig {
                url: tools.url("/top_song"),
                method: HttpMethod::Post,
                headers: vec![],
                timeout_seconds: 5,
                input_schema: json!({"type": "object"}),
            }),
        }],
    };
    let path =
        std::env::temp_dir().join(format!("agentry-bench-runtime-{}.json", std::process::id()));
    std::fs::write(&path, config.to_json()).expect("config");
    let bin = release_binary("agentry-runtime", "agentry-runtime");
    let owned = bedrock.process_env();
    let mut env: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("RUST_LOG", "warn"));

    // Start to ready: from spawn until /readyz answers 200.
    let mut ready_ms = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let p = Process::start(
            "runtime",
            &bin,
            &[
                "--config",
                path.to_str().unwrap(),
                "--listen",
                "127.0.0.1:18280",
            ],
            &env,
        );
        loop {
            if let Ok(r) = reqwest::get("http://127.0.0.1:18280/readyz").await
                && r.status() == 200
            {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "not ready:\n{}",
                p.log()
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        ready_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(p);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ready_ms.sort_by(f64::total_cmp);

    let p = Process::start(
        "runtime",
        &bin,
        &[
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:18281",
        ],
        &env,
    );
    let url = "http://127.0.0.1:18281";
    while reqwest::get(format!("{url}/readyz"))
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _warm = drive_runtime(url, p.pid(), 4, 1).await;
    let c1 = drive_runtime(url, p.pid(), 1, secs).await;
    let c16 = drive_runtime(url, p.pid(), 16, secs).await;
    let rss_kb = proc_status_kb(p.pid(), "VmHWM:");
    drop(p);

    // The bare SDK loop, as its own process, same scenario and concurrency.
    let me = std::env::current_exe().expect("own path");
    let mut bare = Vec::new();
    for c in [1usize, 16] {
        let t = Instant::now();
        let child = std::process::Command::new(&me)
            .args([
                "--bare",
                &bedrock.url(),
                &tools.url("/top_song"),
                &c.to_string(),
                &secs.to_string(),
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("bare loop");
        let out =
            tokio::task::spawn_blocking(move || child.wait_with_output().expect("bare output"))
                .await
                .expect("join");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut words = text.split_whitespace();
        let n: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let cpu: f64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0.0);
        let elapsed = t.elapsed().as_secs_f64();
        bare.push((
            c,
            n,
            n as f64 / secs as f64,
            cpu * 1000.0 / n.max(1) as f64,
            elapsed,
        ));
    }
    let _ = std::fs::remove_file(&path);

    println!(
        "scenario: 1 tool round trip = 2 Converse calls + 1 HTTP tool call; Bedrock imitation and tool answer at once"
    );
    println!(
        "start to ready: median {:.1} ms (min {:.1}, max {:.1})",
        ready_ms[2], ready_ms[0], ready_ms[4]
    );
    println!(
        "agentry-runtime c=1:  {:>7.0} inv/s, CPU {:.3} ms/inv ({} invocations)",
        c1.per_second, c1.cpu_ms_per_invocation, c1.invocations
    );
    println!(
        "agentry-runtime c=16: {:>7.0} inv/s, CPU {:.3} ms/inv ({} invocations)",
        c16.per_second, c16.cpu_ms_per_invocation, c16.invocations
    );
    println!("agentry-runtime peak RSS: {:.1} MB", rss_kb as f64 / 1024.0);
    for (c, n, rate, cpu, _) in &bare {
        println!(
            "bare SDK loop c={c:<2}:    {rate:>7.0} inv/s, CPU {cpu:.3} ms/inv ({n} invocations)"
        );
    }
    println!(
        "CPU ratio runtime/bare: c=1 {:.2}x, c=16 {:.2}x (target <= 2.5x)",
        c1.cpu_ms_per_invocation / bare[0].3,
        c16.cpu_ms_per_invocation / bare[1].3
    );
}
