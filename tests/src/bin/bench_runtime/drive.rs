//! Scenarios, the load driver for agentry-runtime over HTTP, and the figures of one side.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentry_tests::process::{cpu_seconds, proc_status_kb};
use serde::{Deserialize, Serialize};

/// One measured scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Model latency per call.
    pub latency: Duration,
    /// Invocations in flight.
    pub in_flight: usize,
    /// Invocations measured.
    pub invocations: usize,
    /// ConverseStream and Server-Sent Events instead of Converse and JSON.
    pub stream: bool,
}

impl Scenario {
    /// The default matrix.
    pub fn matrix() -> Vec<Self> {
        let s = |ms, in_flight, invocations, stream| Self {
            latency: Duration::from_millis(ms),
            in_flight,
            invocations,
            stream,
        };
        vec![
            s(1000, 256, 3072, false),
            s(1000, 256, 3072, true),
            s(1000, 1024, 6144, false),
            s(1000, 1024, 6144, true),
            s(0, 16, 16_000, false),
            s(0, 16, 16_000, true),
        ]
    }

    /// From `LATENCY_MS IN_FLIGHT INVOCATIONS json|stream`.
    pub fn parse(words: &[&str]) -> Result<Self, String> {
        let usage = "expected: LATENCY_MS IN_FLIGHT INVOCATIONS json|stream";
        let [ms, n, total, mode] = words else {
            return Err(usage.into());
        };
        let num = |w: &str| w.parse::<usize>().map_err(|_| format!("{w:?}: {usage}"));
        Ok(Self {
            latency: Duration::from_millis(num(ms)? as u64),
            in_flight: num(n)?.max(1),
            invocations: num(total)?.max(1),
            stream: match *mode {
                "json" => false,
                "stream" => true,
                other => return Err(format!("{other:?}: {usage}")),
            },
        })
    }

    /// As one command-line argument for the bare loop's process.
    pub fn arg(&self) -> String {
        format!(
            "{},{},{},{}",
            self.latency.as_millis(),
            self.in_flight,
            self.invocations,
            if self.stream { "stream" } else { "json" }
        )
    }

    /// From [`Scenario::arg`].
    pub fn parse_arg(arg: &str) -> Result<Self, String> {
        Self::parse(&arg.split(',').collect::<Vec<_>>())
    }
}

/// The figures of one side of a scenario.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Side {
    /// Invocations completed.
    pub invocations: usize,
    /// Invocations that failed.
    pub errors: usize,
    /// Completed per second, over the whole run.
    pub per_second: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Slowest invocation.
    pub max_ms: f64,
    /// Process CPU seconds per 1,000 invocations.
    pub cpu_s_per_1000: f64,
    /// Peak resident memory of the process.
    pub peak_rss_mb: f64,
    /// Instructions per invocation, counted by callgrind (`BENCH_CALLGRIND=1`).
    #[serde(default)]
    pub instructions_per_invocation: Option<f64>,
}

impl Side {
    /// Figures from per-invocation latencies.
    pub fn from_run(
        mut latencies: Vec<Duration>,
        errors: usize,
        elapsed: Duration,
        cpu: f64,
        rss_kb: u64,
    ) -> Self {
        latencies.sort();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        let n = latencies.len();
        Self {
            invocations: n,
            errors,
            per_second: n as f64 / elapsed.as_secs_f64(),
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
            max_ms: pct(1.0),
            cpu_s_per_1000: cpu * 1000.0 / n.max(1) as f64,
            peak_rss_mb: rss_kb as f64 / 1024.0,
            instructions_per_invocation: None,
        }
    }
}

/// Runs `count` invocations as `workers` concurrent loops of `one`; returns latencies, errors
/// and the elapsed time.
pub async fn run_loops<F, Fut>(
    workers: usize,
    count: usize,
    one: F,
) -> (Vec<Duration>, usize, Duration)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let one = Arc::new(one);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (one, next) = (one.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                    let t = Instant::now();
                    if one().await {
                        latencies.push(t.elapsed());
                    } else {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(count);
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("worker");
        latencies.extend(l);
        errors += e;
    }
    (latencies, errors, start.elapsed())
}

const QUESTION: &str = "What is the most popular song on WZPZ?";

/// The protocol the load generator speaks to the runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `POST /v1/invoke` (JSON, or SSE when streaming).
    Invoke,
    /// `POST /v1/invoke` with a new `sessionId` each time (the runtime needs memory).
    InvokeSession,
    /// `POST /v1/chat/completions` (a completion, or chunks when streaming).
    OpenAi,
    /// `POST /mcp`, one stateless `tools/call` (never streamed).
    Mcp,
    /// `POST /`, A2A 1.0 `SendMessage` (or `SendStreamingMessage` when streaming).
    A2a,
}

impl Protocol {
    /// Every protocol, `/v1/invoke` first (the others are compared with it).
    pub const ALL: [Protocol; 4] = [
        Protocol::Invoke,
        Protocol::OpenAi,
        Protocol::Mcp,
        Protocol::A2a,
    ];

    /// Its name in the tables (the `protocol` metric label).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Invoke => "invoke",
            Protocol::InvokeSession => "invoke+session",
            Protocol::OpenAi => "openai",
            Protocol::Mcp => "mcp",
            Protocol::A2a => "a2a",
        }
    }

    /// One request of this protocol to `base`, for an Agent named `agent`.
    fn request(
        self,
        client: &reqwest::Client,
        base: &str,
        agent: &str,
        stream: bool,
    ) -> reqwest::RequestBuilder {
        match self {
            Protocol::Invoke | Protocol::InvokeSession => {
                let body = if self == Protocol::InvokeSession {
                    static NEXT: std::sync::atomic::AtomicU64 =
                        std::sync::atomic::AtomicU64::new(0);
                    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    serde_json::json!({"input": QUESTION, "sessionId": format!("bench-{n}")})
                } else {
                    serde_json::json!({"input": QUESTION})
                };
                let r = client
                    .post(format!("{base}/v1/invoke"))
                    .body(body.to_string());
                if stream {
                    r.header("accept", "text/event-stream")
                } else {
                    r
                }
            }
            Protocol::OpenAi => client
                .post(format!("{base}/v1/chat/completions"))
                .header("content-type", "application/json")
                .body(
                    serde_json::json!({"model": agent, "stream": stream,
                        "messages": [{"role": "user", "content": QUESTION}]})
                    .to_string(),
                ),
            Protocol::Mcp => client
                .post(format!("{base}/mcp"))
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-11-25")
                .body(
                    serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                        "params": {"name": agent, "arguments": {"input": QUESTION}}})
                    .to_string(),
                ),
            Protocol::A2a => client
                .post(format!("{base}/"))
                .header("content-type", "application/json")
                .header("a2a-version", "1.0")
                .body(
                    serde_json::json!({"jsonrpc": "2.0", "id": 1,
                        "method": if stream { "SendStreamingMessage" } else { "SendMessage" },
                        "params": {"message": {"messageId": "m1", "role": "ROLE_USER",
                                               "parts": [{"text": QUESTION}]}}})
                    .to_string(),
                ),
        }
    }

    /// Whether a 200 answer's body is a complete, successful answer.
    fn complete(self, body: &[u8], stream: bool) -> bool {
        let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
        match (self, stream) {
            (Protocol::Invoke | Protocol::InvokeSession, true) => has(b"event: done"),
            (Protocol::Invoke | Protocol::InvokeSession, false) => {
                has(b"\"stopReason\":\"end_turn\"")
            }
            (Protocol::OpenAi, true) => has(b"data: [DONE]"),
            (Protocol::OpenAi, false) => has(b"\"finish_reason\":\"stop\""),
            (Protocol::Mcp, _) => has(b"\"isError\":false"),
            (Protocol::A2a, _) => has(b"TASK_STATE_COMPLETED"),
        }
    }
}

/// The scenario against agentry-runtime at `url` (process `pid`, Agent `agent`), over
/// `protocol`.
pub async fn runtime(url: &str, pid: u32, agent: &str, protocol: Protocol, s: &Scenario) -> Side {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .expect("client");
    let base = url.to_string();
    let stream = s.stream && protocol != Protocol::Mcp;
    let agent = agent.to_string();
    let one = {
        let base = base.clone();
        move || {
            let req = protocol.request(&client, &base, &agent, stream);
            async move {
                let Ok(r) = req.send().await else {
                    return false;
                };
                let ok = r.status() == 200;
                let Ok(body) = r.bytes().await else {
                    return false;
                };
                ok && protocol.complete(&body, stream)
            }
        }
    };
    // With BENCH_CALLGRIND=1 the runtime runs under callgrind (see `callgrind_out`): its counts
    // are zeroed before the measured invocations and dumped after, so the dump holds their
    // instructions only, a count that does not depend on what else the machine runs.
    let callgrind = std::env::var_os("BENCH_CALLGRIND").is_some();
    if callgrind {
        callgrind_control("-z", pid);
    }
    let cpu0 = cpu_seconds(pid);
    let (latencies, errors, elapsed) = run_loops(s.in_flight, s.invocations, one).await;
    let cpu = cpu_seconds(pid) - cpu0;
    if callgrind {
        callgrind_control("-d", pid);
    }
    if std::env::var_os("BENCH_METRICS").is_some() {
        eprintln!(
            "runtime threads at the end: {}; VmRSS {} kB, RssAnon {} kB, RssFile {} kB",
            proc_status_kb(pid, "Threads:"),
            proc_status_kb(pid, "VmRSS:"),
            proc_status_kb(pid, "RssAnon:"),
            proc_status_kb(pid, "RssFile:")
        );
        if let Ok(r) = reqwest::get(format!("{base}/metrics")).await {
            eprintln!("{}", r.text().await.unwrap_or_default());
        }
    }
    let mut side = Side::from_run(
        latencies,
        errors,
        elapsed,
        cpu,
        proc_status_kb(pid, "VmHWM:"),
    );
    if protocol == Protocol::InvokeSession {
        let text = reqwest::get(format!("{base}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        eprintln!(
            "session store requests per invocation: {}",
            store_requests(&text, side.invocations)
        );
    }
    if callgrind {
        side.instructions_per_invocation = Some(instructions(pid, side.invocations));
    }
    side
}

/// Instructions per invocation in process `pid`'s first callgrind dump (see `callgrind_out`).
pub fn instructions(pid: u32, invocations: usize) -> f64 {
    let dump = format!("{}.{pid}.1", callgrind_out().display());
    let text = std::fs::read_to_string(&dump).unwrap_or_else(|e| panic!("{dump}: {e}"));
    let total: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("totals: "))
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{dump} has no totals line"));
    total / invocations.max(1) as f64
}

/// `agentry_runtime_session_store_requests_total` by operation, per invocation.
fn store_requests(metrics: &str, invocations: usize) -> String {
    let mut by_op = std::collections::BTreeMap::<String, f64>::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("agentry_runtime_session_store_requests_total{") else {
            continue;
        };
        let op = rest
            .split("op=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("?");
        let n: f64 = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *by_op.entry(op.to_string()).or_default() += n;
    }
    by_op
        .iter()
        .map(|(op, n)| format!("{op} {:.2}", n / invocations.max(1) as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where callgrind writes (`<this>.<pid>` at exit, `<this>.<pid>.1` for the measured run).
pub fn callgrind_out() -> std::path::PathBuf {
    std::env::temp_dir().join("agentry-bench-callgrind")
}

/// The command a process runs under for `BENCH_CALLGRIND=1`, writing to `callgrind_out`.
pub fn callgrind_command() -> Vec<String> {
    vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        format!("--callgrind-out-file={}.%p", callgrind_out().display()),
    ]
}

/// Runs `callgrind_control <what> <pid>`, loudly failing.
pub fn callgrind_control(what: &str, pid: u32) {
    let status = std::process::Command::new("callgrind_control")
        .args([what, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("callgrind_control");
    assert!(status.success(), "callgrind_control {what} {pid}: {status}");
}

/// The table's header.
pub const HEADER: &str = "| latency | in flight | mode | side | invocations | errors | inv/s | p50 ms | p99 ms | max ms | CPU s / 1,000 | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|";

/// One table row.
pub fn row(s: &Scenario, name: &str, side: &Side) -> String {
    format!(
        "| {} ms | {} | {} | {name} | {} | {} | {:.1} | {:.0} | {:.0} | {:.0} | {:.2} | {:.1} |",
        s.latency.as_millis(),
        s.in_flight,
        if s.stream { "stream" } else { "json" },
        side.invocations,
        side.errors,
        side.per_second,
        side.p50_ms,
        side.p99_ms,
        side.max_ms,
        side.cpu_s_per_1000,
        side.peak_rss_mb
    )
}

/// How the runtime compares with the bare loop.
pub fn compare(runtime: &Side, bare: &Side) -> String {
    format!(
        "|  |  |  | runtime / bare | | | {:.1}% | {:+.0} ms | {:+.0} ms | {:+.0} ms | {:.2}x | {:+.1} MB |",
        100.0 * runtime.per_second / bare.per_second.max(f64::MIN_POSITIVE),
        runtime.p50_ms - bare.p50_ms,
        runtime.p99_ms - bare.p99_ms,
        runtime.max_ms - bare.max_ms,
        runtime.cpu_s_per_1000 / bare.cpu_s_per_1000.max(f64::MIN_POSITIVE),
        runtime.peak_rss_mb - bare.peak_rss_mb
    )
}
