//! Benchmark: the release `agentry-operator` reconciling many Agents, against the in-memory
//! API imitation (no cluster here). Reports the time until every Agent has a status, the
//! operator's resident memory once settled, and its CPU time per reconcile.
//!
//! `cargo run --release -p agentry-tests --bin bench-operator -- [AGENTS]` (default 1000).
//! `BENCH_WRAPPER="valgrind --tool=massif"` runs the operator under a profiler.

// A benchmark: when its setup fails, stopping loudly is the right outcome.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use agentry_tests::fake_kube::FakeKube;
use agentry_tests::process::{Process, cpu_seconds, proc_status_kb, release_binary};
use serde_json::json;

const AGENTS: &str = "/apis/agentry.dev/v1alpha1/agents";
const METRICS_PORT: u16 = 18190;

fn metric(name: &str) -> f64 {
    let mut out = String::new();
    if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", METRICS_PORT)) {
        let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
        let _ = s.read_to_string(&mut out);
    }
    out.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn agent(i: usize) -> serde_json::Value {
    let ns = format!("team-{}", i % 10);
    let mut tools = vec![
        json!({"name": "get_weather", "description": "Weather for a city.",
        "http": {"service": {"name": "weather-api", "port": 80, "path": "/v1/weather"},
                 "headers": [{"name": "x-api-key", "valueFrom": {"secretKeyRef": {"name": "weather-api", "key": "token"}}}],
                 "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}),
    ];
    if i >= 10 {
        tools.push(json!({"name": "ask_peer", "description": "Ask a peer agent.", "agent": {"name": format!("agent-{}", i - 10)}}));
    }
    json!({"apiVersion": "agentry.dev/v1alpha1", "kind": "Agent",
           "metadata": {"name": format!("agent-{i}"), "namespace": ns},
           "spec": {"model": {"id": "us.anthropic.claude-3-7-sonnet-20250219-v1:0", "maxTokens": 1024},
                    "systemPrompt": format!("You are agent {i}. Answer briefly."),
                    "tools": tools, "replicas": 2, "limits": {"maxIterations": 8}}})
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let fake = FakeKube::start().await.expect("fake API server");
    fake.insert(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "agents.agentry.dev"},
               "spec": {}, "status": {"conditions": [{"type": "Established", "status": "True"}]}}),
    );
    for ns in 0..10 {
        fake.insert("/api/v1/services", json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "weather-api", "namespace": format!("team-{ns}")}, "spec": {}}));
    }
    for i in 0..n {
        fake.insert(AGENTS, agent(i));
    }
    let dir = std::env::temp_dir().join(format!("agentry-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kubeconfig = dir.join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig).expect("kubeconfig");

    let bin = release_binary("agentry-operator", "agentry-operator");
    let listen = format!("127.0.0.1:{METRICS_PORT}");
    let start = Instant::now();
    // BENCH_WRAPPER runs the operator under a tool, e.g. "valgrind --tool=massif".
    let wrapper = std::env::var("BENCH_WRAPPER").unwrap_or_default();
    let mut words: Vec<String> = wrapper.split_whitespace().map(String::from).collect();
    let program = if words.is_empty() {
        bin.clone()
    } else {
        std::path::PathBuf::from(words.remove(0))
    };
    let bin_arg = bin.to_string_lossy().into_owned();
    let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
    if !words.is_empty() || !wrapper.is_empty() {
        args.push(&bin_arg);
    }
    args.extend(["--leader-election", "false", "--listen", &listen]);
    let op = Process::start(
        "operator",
        &program,
        &args,
        &[
            ("KUBECONFIG", kubeconfig.to_str().unwrap_or_default()),
            ("RUST_LOG", "warn"),
        ],
    );
    let pid = op.pid();
    let mut peak_rss = 0;
    while fake.counts().status_writes < n as u64 {
        peak_rss = peak_rss.max(proc_status_kb(pid, "VmRSS:"));
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "not every Agent got a status in 5 min:\n{}",
            op.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_status = start.elapsed();
    // Let the reconciles triggered by the operator's own child writes die down.
    let mut last = metric("agentry_operator_reconciliations_total");
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        peak_rss = peak_rss.max(proc_status_kb(pid, "VmRSS:"));
        let now = metric("agentry_operator_reconciliations_total");
        if now == last {
            break;
        }
        last = now;
    }
    let settled_rss = proc_status_kb(pid, "VmRSS:");
    let hwm = proc_status_kb(pid, "VmHWM:");
    let cpu = cpu_seconds(pid);
    let reconciles = metric("agentry_operator_reconciliations_total");
    let counts = fake.counts();

    // Steady state: one more full pass (a restart would do the same), measured on its own.
    println!("agents: {n}");
    println!(
        "children in the API: {} deployments, {} services, {} configmaps",
        fake.count("/apis/apps/v1/deployments"),
        fake.count("/api/v1/services") - 10,
        fake.count("/api/v1/configmaps")
    );
    println!(
        "time until every Agent had a status: {:.2} s",
        all_status.as_secs_f64()
    );
    println!("reconciles: {reconciles}");
    println!(
        "operator CPU: {cpu:.2} s total, {:.2} ms per reconcile",
        cpu * 1000.0 / reconciles.max(1.0)
    );
    println!(
        "operator RSS: {:.1} MB settled, {:.1} MB peak (VmHWM)",
        settled_rss as f64 / 1024.0,
        hwm.max(peak_rss) as f64 / 1024.0
    );
    println!(
        "API requests: {:?}, status writes {}",
        counts.by_method, counts.status_writes
    );
    let mut op = op;
    let code = op.terminate(Duration::from_secs(60));
    println!("operator exit code after SIGTERM: {code:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
