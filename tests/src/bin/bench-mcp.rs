//! Benchmark of MCP tools against the Python MCP SDK's server:
//!
//! 1. The runtime's own CPU per MCP tool call: the release `agentry-runtime` as a process of its
//!    own (so its CPU time is its own; the MCP server's time is the Python process's), driven
//!    through the Bedrock imitation with invocations of 1 and of 5 tool calls in one reply. The
//!    difference over 4 is the CPU of one call, without the model calls around it. The same for
//!    an HTTP tool answering at once, for comparison.
//! 2. Time to ready with three MCP servers of 50 tools each, already up: from `Toolbox::new`
//!    until all three are connected and their 150 tools offered (in this process, release).
//!
//! `cargo run --release -p agentry-tests --bin bench-mcp -- [INVOCATIONS]` (default 400 each)

// A benchmark: when its setup fails, stopping loudly is the right outcome.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use agentry_crds::HttpMethod;
use agentry_crds::limits::EffectiveLimits;
use agentry_crds::runtime_config::*;
use agentry_runtime::tools::Toolbox;
use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::mcp::{Options, PyMcpServer};
use agentry_tests::process::free_port;
use agentry_tests::process::{Process, cpu_seconds, release_binary};
use agentry_tests::runtime::{ToolBehaviour, ToolServer};
use serde_json::{Value, json};

/// The scripted model: the user's input says which tool to call and how often
/// (`call py_echo 5`); the answer comes once the results are there.
fn model(body: &Value) -> Script {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last = &messages.last().cloned().unwrap_or_default()["content"][0];
    if last.get("toolResult").is_some() {
        return Script::Turn(Turn::text("Done."));
    }
    let ask = messages[0]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    let mut words = ask.split_whitespace().skip(1);
    let name = words.next().unwrap_or("none").to_string();
    let n: usize = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    if n == 0 {
        return Script::Turn(Turn::text("Done."));
    }
    let ids: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let input = if name == "py_echo" {
        json!({"text": "hello"})
    } else {
        json!({"sign": "WZPZ"})
    };
    let calls: Vec<(&str, &str, Value)> = ids
        .iter()
        .map(|id| (id.as_str(), name.as_str(), input.clone()))
        .collect();
    Script::Turn(Turn::tools(&calls))
}

fn config(tools: Vec<ToolConfig>) -> RuntimeConfig {
    RuntimeConfig {
        api_version: RUNTIME_CONFIG_API_VERSION.into(),
        agent: AgentIdentity {
            name: "bench".into(),
            namespace: "demo".into(),
            description: None,
        },
        model: ModelConfig {
            id: "anthropic.claude-3-haiku-20240307-v1:0".into(),
            region: None,
            max_tokens: 1024,
            temperature: None,
            top_p: None,
            stop_sequences: vec![],
            guardrail: None,
            prompt_caching: false,
        },
        system_prompt: "You help.".into(),
        limits: EffectiveLimits {
            max_iterations: 4,
            max_tokens_per_invocation: 1_000_000,
            timeout_seconds: 30,
            tool_timeout_seconds: 10,
            max_concurrent_invocations: 16,
        },
        tools,
        memory: None,
    }
}

fn mcp(name: &str, url: String) -> ToolConfig {
    ToolConfig {
        approval_required: false,
        name: name.into(),
        description: "The benchmark MCP server.".into(),
        kind: ToolKindConfig::Mcp(McpToolConfig {
            url,
            allowed_tools: vec![],
            headers: vec![],
            timeout_seconds: 10,
        }),
    }
}

async fn invoke(client: &reqwest::Client, url: &str, input: &str) -> Value {
    let r = client
        .post(format!("{url}/v1/invoke"))
        .header("content-type", "application/json")
        .body(json!({ "input": input }).to_string())
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

/// Runtime CPU in ms per invocation of `input`, over `n` sequential invocations.
async fn cpu_per_invocation(url: &str, pid: u32, input: &str, n: usize) -> f64 {
    let client = reqwest::Client::new();
    for _ in 0..20 {
        invoke(&client, url, input).await;
    }
    let cpu0 = cpu_seconds(pid);
    for _ in 0..n {
        let body = invoke(&client, url, input).await;
        let calls = body["toolCalls"].as_array().cloned().unwrap_or_default();
        assert!(
            calls.iter().all(|c| c["status"] == "success"),
            "a benchmark call failed: {body}"
        );
    }
    (cpu_seconds(pid) - cpu0) * 1000.0 / n as f64
}

async fn cpu_per_call(n: usize) {
    let py = PyMcpServer::start(Options::default()).await;
    let tool = ToolServer::start(&[(
        "/top_song",
        ToolBehaviour::Json(json!({"song": "Elemental Hotel", "artist": "8 Storey Hike"})),
    )])
    .await;
    let fake = FakeBedrock::start().await.expect("bedrock imitation");
    fake.fallback(model);
    let http = ToolConfig {
        approval_required: false,
        name: "top_song".into(),
        description: "Top song.".into(),
        kind: ToolKindConfig::Http(HttpToolConfig {
            url: tool.url("/top_song"),
            method: HttpMethod::Post,
            headers: vec![],
            auth: None,
            timeout_seconds: 10,
            input_schema: json!({"type": "object"}),
        }),
    };
    let cfg = config(vec![mcp("py", py.url()), http]);
    let path = std::env::temp_dir().join(format!("agentry-bench-mcp-{}.json", std::process::id()));
    std::fs::write(&path, cfg.to_json()).expect("write config");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let bin = release_binary("agentry-runtime", "agentry-runtime");
    let env = fake.process_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let rt = Process::start(
        "agentry-runtime",
        &bin,
        &["--config", path.to_str().unwrap(), "--listen", &listen],
        &env,
    );
    let url = format!("http://{listen}");
    let client = reqwest::Client::new();
    let start = Instant::now();
    loop {
        let ok = match client
            .post(format!("{url}/v1/invoke"))
            .body(r#"{"input":"call py_echo 1"}"#)
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => {
                let b: Value = r.json().await.unwrap_or_default();
                b["toolCalls"][0]["status"] == "success"
            }
            _ => false,
        };
        if ok {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the runtime never served the MCP tool:\n{}",
            rt.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = rt.pid();
    let none = cpu_per_invocation(&url, pid, "call none 0", n).await;
    let mcp1 = cpu_per_invocation(&url, pid, "call py_echo 1", n).await;
    let mcp5 = cpu_per_invocation(&url, pid, "call py_echo 5", n).await;
    let http1 = cpu_per_invocation(&url, pid, "call top_song 1", n).await;
    let http5 = cpu_per_invocation(&url, pid, "call top_song 5", n).await;
    println!("runtime CPU per invocation ({n} each, sequential, release build):");
    println!("  text only (1 model call)                 {none:7.3} ms");
    println!("  1 MCP call  (2 model calls)              {mcp1:7.3} ms");
    println!("  5 MCP calls (2 model calls)              {mcp5:7.3} ms");
    println!("  1 HTTP call (2 model calls)              {http1:7.3} ms");
    println!("  5 HTTP calls (2 model calls)             {http5:7.3} ms");
    println!(
        "runtime CPU of one MCP tool call:  {:.3} ms  (HTTP tool call: {:.3} ms)",
        (mcp5 - mcp1) / 4.0,
        (http5 - http1) / 4.0
    );
    drop(rt);
    let _ = std::fs::remove_file(path);
}

async fn time_to_ready() {
    let options = Options {
        // 9 fixed tools + 41 generated = 50 per server.
        extra_tools: 41,
        ..Options::default()
    };
    let servers =
        futures::future::join_all((0..3).map(|_| PyMcpServer::start(options.clone()))).await;
    let cfg = config(
        servers
            .iter()
            .enumerate()
            .map(|(i, s)| mcp(&format!("s{i}"), s.url()))
            .collect(),
    );
    let mut times = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let tb = Toolbox::new(&cfg, |_| None).expect("toolbox");
        loop {
            let all = tb.readiness()["mcpServers"]
                .as_array()
                .is_some_and(|s| s.iter().all(|s| s["state"] == "connected"));
            if all && tb.offered().specs.len() == 150 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "not ready: {}",
                tb.readiness()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        times.push(start.elapsed());
        drop(tb);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    times.sort();
    println!(
        "time to ready, 3 MCP servers x 50 tools (7 runs): median {:.0} ms, max {:.0} ms",
        times[3].as_secs_f64() * 1000.0,
        times[6].as_secs_f64() * 1000.0
    );
}

#[tokio::main]
async fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(400);
    cpu_per_call(n).await;
    time_to_ready().await;
}
