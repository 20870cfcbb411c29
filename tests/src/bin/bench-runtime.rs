//! Benchmark: the release `agentry-runtime` beside a bare aws-sdk-bedrockruntime loop on the
//! same scenario: one tool round trip (2 model calls and 1 HTTP tool call), the Bedrock
//! imitation answering after a set latency, a set number of invocations in flight, JSON or
//! streamed. Each side runs as its own fresh process, so its CPU time and peak memory are its
//! own; the load generator and the imitations live in this process.
//!
//! ```text
//! cargo run --release -p agentry-tests --bin bench-runtime                 # the whole matrix
//! cargo run --release -p agentry-tests --bin bench-runtime -- 1000 256 3072 json
//!                                            # latency ms, in flight, invocations, json|stream
//! cargo run --release -p agentry-tests --bin bench-runtime -- kinds [0 16 8000 json]
//!                     # the same scenario with the tool call as http, lambda and openapi tool
//! cargo run --release -p agentry-tests --bin bench-runtime -- protocols [0 16 8000 json]
//!                     # the same scenario over /v1/invoke, chat completions, MCP and A2A
//! cargo run --release -p agentry-tests --bin bench-runtime -- tracing [0 16 8000 json]
//!                     # tracing off, and on at full sampling exporting to an OTLP sink;
//!                     # BENCH_BEFORE_BIN=<an older agentry-runtime> adds it as the baseline
//! cargo run --release -p agentry-tests --bin bench-runtime -- sessions [0 16 8000 json]
//!                     # /v1/invoke without and with a session (a local redis-server)
//! BENCH_ROUNDS=5 BENCH_PROTOCOLS=invoke,a2a cargo run --release -p agentry-tests --bin bench-runtime -- protocols
//! BENCH_ROUNDS=5 cargo run --release -p agentry-tests --bin bench-runtime -- 1000 256 2048 json
//!                     # any comparison N times over, alternating the order: medians and the
//!                     # per-round ratios (CPU time on a shared machine varies by 10 % or more)
//! BENCH_CALLGRIND=1 cargo run --release -p agentry-tests --bin bench-runtime -- protocols 0 4 2000 json
//!                     # each runtime under valgrind's callgrind: instructions per invocation
//!                     # (repeatable to 0.1 % whatever else runs), and their ratios; with one
//!                     # scenario (`-- 0 16 2000 json`) the bare loop runs under callgrind too
//! ```

// A benchmark: when its setup fails, stopping loudly is the right outcome.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "bench_runtime/bare.rs"]
mod bare;
#[path = "bench_runtime/compare.rs"]
mod compare;
#[path = "bench_runtime/drive.rs"]
mod drive;
#[path = "bench_runtime/image.rs"]
mod image;
#[path = "bench_runtime/kinds.rs"]
mod kinds;
#[path = "bench_runtime/layout.rs"]
mod layout;
#[path = "bench_runtime/rounds.rs"]
mod rounds;
#[path = "bench_runtime/tracing.rs"]
mod tracing;

use std::time::{Duration, Instant};

use agentry_crds::limits::EffectiveLimits;
use agentry_crds::runtime_config::*;
use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::lambda::{FakeLambda, Function};
use agentry_tests::process::{Process, release_binary};
use agentry_tests::runtime::{ToolBehaviour, ToolServer};
use serde_json::{Value, json};

use drive::{Protocol, Scenario, Side};
use kinds::Kind;

/// The scripted model: a tool call first (through `kind`), the answer once the tool result is
/// there.
fn model(body: &Value, kind: Kind) -> Script {
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
            kind.tool_name(),
            kind.input(),
        )]))
    }
}

/// The runtime's configuration; with `memory`, sessions in the store `AGENTRY_MEMORY_URL` names.
fn config(tools_url: &str, kind: Kind, in_flight: usize, memory: bool) -> RuntimeConfig {
    RuntimeConfig {
        api_version: RUNTIME_CONFIG_API_VERSION.into(),
        agent: AgentIdentity {
            name: "bench".into(),
            namespace: "bench".into(),
            description: None,
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
            max_concurrent_invocations: u32::try_from(in_flight.max(32)).unwrap(),
            ..EffectiveLimits::default()
        },
        tools: vec![ToolConfig {
            approval_required: false,
            name: kind.configured_name().into(),
            description: "Top song.".into(),
            kind: kind.config(tools_url),
        }],
        memory: memory.then(|| MemoryConfig {
            url_from_env: "AGENTRY_MEMORY_URL".into(),
            ttl_seconds: 600,
            max_messages: 500,
            ca_pem: None,
            max_context_tokens: None,
            approval_timeout_seconds: 3600,
        }),
    }
}

struct Setup {
    bedrock: FakeBedrock,
    tools: ToolServer,
    lambda: FakeLambda,
    bin: std::path::PathBuf,
    /// What the next runtime runs as, when not `bin` and its usual environment (the tracing
    /// comparison sets these).
    variant: std::sync::Mutex<tracing::Variant>,
    /// The session store, once the sessions comparison started one.
    redis: std::sync::OnceLock<agentry_tests::redis::RedisServer>,
    /// The runtime image's environment, given to every runtime started.
    image_env: Vec<(String, String)>,
}

impl Setup {
    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.bedrock.process_env();
        env.push(("RUST_LOG", "warn".into()));
        env.push(("AWS_ENDPOINT_URL_LAMBDA", self.lambda.url()));
        env.extend(self.variant.lock().unwrap().1.iter().cloned());
        if let Some(redis) = self.redis.get() {
            env.push(("AGENTRY_MEMORY_URL", redis.url()));
        }
        env
    }

    /// Scripts the model for `s` with the tool call through `kind`.
    fn script(&self, s: &Scenario, kind: Kind) {
        let latency = s.latency;
        self.bedrock.fallback(move |body| {
            let step = model(body, kind);
            if latency.is_zero() {
                step
            } else {
                Script::Delay(latency, Box::new(step))
            }
        });
    }

    /// A fresh runtime for `s`, on a free port, once `/readyz` answers.
    async fn runtime(&self, s: &Scenario, kind: Kind) -> (Process, String, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "agentry-bench-runtime-{}-{}.json",
            std::process::id(),
            s.in_flight
        ));
        std::fs::write(
            &path,
            config(
                &self.tools.url(""),
                kind,
                s.in_flight,
                self.redis.get().is_some(),
            )
            .to_json(),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        // The image's environment first (what a pod runs), then the benchmark's own.
        let own = self.env();
        let env: Vec<(&str, &str)> = self
            .image_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(own.iter().map(|(k, v)| (*k, v.as_str())))
            .collect();
        let mut args = vec![
            "--config",
            path.to_str().unwrap(),
            "--listen",
            &listen,
            "--drain-delay-seconds",
            "0",
        ];
        // For profiling: BENCH_RUNTIME_PREFIX="heaptrack -o /tmp/ht" runs the runtime under a
        // tool (its CPU and memory figures are then the tool's). BENCH_CALLGRIND=1 runs it
        // under callgrind and reports instructions per invocation.
        let prefix = if std::env::var_os("BENCH_CALLGRIND").is_some() {
            drive::callgrind_command().join(" ")
        } else {
            std::env::var("BENCH_RUNTIME_PREFIX").unwrap_or_default()
        };
        let mut words: Vec<&str> = prefix.split_whitespace().collect();
        let chosen = self.variant.lock().unwrap().0.clone();
        let chosen = chosen.unwrap_or_else(|| self.bin.clone());
        let bin = chosen.to_str().unwrap();
        let program = if words.is_empty() {
            chosen.clone()
        } else {
            words.push(bin);
            words.append(&mut args);
            args = words.split_off(1);
            std::path::PathBuf::from(words[0])
        };
        let p = Process::start("runtime", &program, &args, &env);
        let url = format!("http://{listen}");
        let t = Instant::now();
        while reqwest::get(format!("{url}/readyz"))
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
        {
            // A runtime under a profiler (valgrind) starts tens of times slower.
            let limit = if prefix.is_empty() { 10 } else { 300 };
            assert!(
                t.elapsed() < Duration::from_secs(limit),
                "not ready:\n{}",
                p.log()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (p, url, path)
    }

    /// The scenario against agentry-runtime.
    async fn run_runtime(&self, s: &Scenario, kind: Kind, protocol: Protocol) -> Side {
        self.script(s, kind);
        let (p, url, path) = self.runtime(s, kind).await;
        let side = drive::runtime(&url, p.pid(), "bench", protocol, s).await;
        // A graceful stop, so a profiler the runtime runs under writes its data.
        let mut p = p;
        tokio::task::spawn_blocking(move || p.terminate(Duration::from_secs(30)))
            .await
            .unwrap();
        let _ = std::fs::remove_file(path);
        side
    }

    /// The scenario as a bare SDK loop in its own process.
    async fn run_bare(&self, s: &Scenario) -> Side {
        let me = std::env::current_exe().expect("own path");
        let mut args = vec![
            "--bare".to_string(),
            self.bedrock.url(),
            self.tools.url("/top_song"),
            s.arg(),
        ];
        // BENCH_CALLGRIND=1: the bare loop under callgrind too, for instructions per invocation.
        let program = if std::env::var_os("BENCH_CALLGRIND").is_some() {
            let mut command = drive::callgrind_command();
            let program = command.remove(0);
            command.push(me.display().to_string());
            args.splice(0..0, command);
            std::path::PathBuf::from(program)
        } else {
            me
        };
        let child = std::process::Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("bare loop");
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().expect("output"))
            .await
            .expect("join");
        serde_json::from_slice::<Side>(&out.stdout).expect("the bare loop's figures")
    }
}

/// Median start-to-ready of five fresh processes (`/readyz` 200).
async fn start_to_ready(setup: &Setup) -> (f64, f64, f64) {
    let s = Scenario::parse(&["0", "1", "1", "json"]).unwrap();
    let mut ms = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (p, _, path) = setup.runtime(&s, Kind::Http).await;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(p);
        let _ = std::fs::remove_file(path);
    }
    ms.sort_by(f64::total_cmp);
    (ms[0], ms[2], ms[4])
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--bare") {
        let s = Scenario::parse_arg(&args[3]).expect("scenario");
        let side = bare::run(args[1].clone(), args[2].clone(), &s).await;
        println!("{}", serde_json::to_string(&side).unwrap());
        return;
    }
    let mode = args.first().map(String::as_str);
    if let Some(mode @ ("kinds" | "protocols" | "tracing" | "sessions")) = mode {
        // The comparisons' scenario: the words after the mode, or 0 ms, 16 in flight.
        let words: Vec<&str> = args[1..].iter().map(String::as_str).collect();
        let words = if words.is_empty() {
            vec!["0", "16", "8000", "json"]
        } else {
            words
        };
        let s = Scenario::parse(&words).unwrap_or_else(|e| panic!("{e}"));
        let setup = setup().await;
        return match mode {
            "kinds" => compare::kinds(&setup, &s).await,
            "protocols" => compare::protocols(&setup, &s).await,
            "sessions" => compare::sessions(&setup, &s).await,
            _ => {
                tracing::compare(&s, |bin, env| {
                    *setup.variant.lock().unwrap() = (bin, env);
                    let setup = &setup;
                    let s = &s;
                    async move { setup.run_runtime(s, Kind::Http, Protocol::Invoke).await }
                })
                .await
            }
        };
    }
    let scenarios = if args.is_empty() {
        Scenario::matrix()
    } else {
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        vec![Scenario::parse(&words).unwrap_or_else(|e| panic!("{e}"))]
    };
    let setup = setup().await;
    println!(
        "one tool round trip = 2 model calls + 1 HTTP tool call; model latency per call as given; 2 cores shared with the load generator and imitations"
    );
    let (lo, med, hi) = start_to_ready(&setup).await;
    println!("start to ready: median {med:.1} ms (min {lo:.1}, max {hi:.1})");
    println!("{}", drive::HEADER);
    let rounds = rounds::count();
    for s in &scenarios {
        let (mut runtimes, mut bares) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Every other round the bare loop goes first, so a drift of the machine falls on
            // both sides alike.
            let (runtime, bare) = if round % 2 == 0 {
                let runtime = setup.run_runtime(s, Kind::Http, Protocol::Invoke).await;
                (runtime, setup.run_bare(s).await)
            } else {
                let bare = setup.run_bare(s).await;
                (
                    setup.run_runtime(s, Kind::Http, Protocol::Invoke).await,
                    bare,
                )
            };
            println!("{}", drive::row(s, "agentry-runtime", &runtime));
            println!("{}", drive::row(s, "bare SDK loop", &bare));
            println!("{}", drive::compare(&runtime, &bare));
            if let (Some(r), Some(b)) = (
                runtime.instructions_per_invocation,
                bare.instructions_per_invocation,
            ) {
                println!(
                    "|  |  |  | instructions per invocation (callgrind): runtime {r:.0}, bare {b:.0}, {:.2}x | | | | | | | | |",
                    r / b
                );
            }
            runtimes.push(runtime);
            bares.push(bare);
        }
        if rounds > 1 {
            for line in rounds::summary(s, &runtimes, &bares) {
                println!("{line}");
            }
        }
    }
}

/// The imitations and the release binary.
async fn setup() -> Setup {
    let song = json!({"song": "Elemental Hotel", "artist": "8 Storey Hike"});
    let bedrock = FakeBedrock::start().await.expect("fake bedrock");
    let tools = ToolServer::start(&[("/top_song", ToolBehaviour::Json(song.clone()))]).await;
    let lambda = FakeLambda::start(&[(
        "top_song",
        Function::Returns(serde_json::to_vec(&song).unwrap()),
    )])
    .await;
    let bin = release_binary("agentry-runtime", "agentry-runtime");
    layout::report(&bin);
    Setup {
        bedrock,
        tools,
        lambda,
        bin,
        variant: Default::default(),
        redis: Default::default(),
        image_env: image::env(),
    }
}
