//! The runtime under test, in-process: served on a free port with an SDK configuration that
//! points the real `aws-sdk-bedrockruntime` client at a [`FakeBedrock`] (test credentials, fast
//! retries); the tools' own AWS configuration (lambda tools, SigV4 auth); and a scriptable HTTP
//! tool server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentry_crds::runtime_config::RuntimeConfig;
use agentry_runtime::bedrock::Bedrock;
use agentry_runtime::invoke::Runtime;
use agentry_runtime::tools::Toolbox;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::Value;

use crate::bedrock::FakeBedrock;

/// A runtime serving on loopback. Dropping it stops it.
pub struct RuntimeUnderTest {
    /// Base URL, e.g. `http://127.0.0.1:4711`.
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The server task; finishes after a stop once in-flight requests are done.
    pub task: tokio::task::JoinHandle<()>,
}

impl RuntimeUnderTest {
    /// Begins a graceful shutdown (as SIGTERM does).
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for RuntimeUnderTest {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The SDK configuration for a fake Bedrock: its endpoint, test credentials, quick retries.
pub async fn sdk_config(bedrock: &FakeBedrock) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(bedrock.url())
        .test_credentials()
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .load()
        .await
}

/// The AWS configuration of the tools (not the model's): region `us-east-1`, the given
/// credentials, every AWS endpoint at `endpoint` (a [`crate::lambda::FakeLambda`]) if given.
pub async fn tools_aws(
    endpoint: Option<String>,
    credentials: impl aws_credential_types::provider::ProvideCredentials + 'static,
) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(credentials);
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// Test credentials with a session token, as IRSA and EKS Pod Identity hand out.
pub fn session_credentials(key: &str, secret: &str) -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(
        key,
        secret,
        Some(format!("token-of-{key}")),
        None,
        "agentry-tests",
    )
}

/// Like [`start`], with the tools' AWS configuration (for lambda tools and SigV4 auth).
///
/// # Panics
/// When the runtime cannot be built or bound.
pub async fn start_with_aws(
    config: RuntimeConfig,
    bedrock: &FakeBedrock,
    env: BTreeMap<String, String>,
    aws: aws_config::SdkConfig,
) -> RuntimeUnderTest {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    serve_on(
        listener,
        config,
        bedrock,
        env,
        Some(aws),
        quick_options(),
        agentry_runtime::bedrock::DEFAULT_MAX_REPLY_BYTES,
    )
    .await
}

fn quick_options() -> agentry_runtime::ServeOptions {
    agentry_runtime::ServeOptions {
        drain_delay: Duration::ZERO,
        grace: Duration::from_secs(30),
        ..agentry_runtime::ServeOptions::default()
    }
}

/// Starts the runtime for `config` against `bedrock`; `env` provides secret header values.
///
/// # Panics
/// When the runtime cannot be built or bound.
pub async fn start(
    config: RuntimeConfig,
    bedrock: &FakeBedrock,
    env: BTreeMap<String, String>,
) -> RuntimeUnderTest {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    start_on(listener, config, bedrock, env).await
}

/// Like [`start`], with serving options and a reply cap of the caller's.
///
/// # Panics
/// When the runtime cannot be built or bound.
pub async fn start_with(
    config: RuntimeConfig,
    bedrock: &FakeBedrock,
    env: BTreeMap<String, String>,
    options: agentry_runtime::ServeOptions,
    max_reply_bytes: usize,
) -> RuntimeUnderTest {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    serve_on(
        listener,
        config,
        bedrock,
        env,
        None,
        options,
        max_reply_bytes,
    )
    .await
}

/// Like [`start`], with the A2A agent card advertising the runtime's loopback URL (as
/// `--public-url` does), so A2A clients that follow the card reach it.
///
/// # Panics
/// When the runtime cannot be built or bound.
pub async fn start_public(
    config: RuntimeConfig,
    bedrock: &FakeBedrock,
    env: BTreeMap<String, String>,
) -> RuntimeUnderTest {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let options = agentry_runtime::ServeOptions {
        public_url: Some(url),
        ..quick_options()
    };
    let max = agentry_runtime::bedrock::DEFAULT_MAX_REPLY_BYTES;
    serve_on(listener, config, bedrock, env, None, options, max).await
}

/// Like [`start`], on a listener the caller bound (to know the URL first).
///
/// # Panics
/// When the runtime cannot be built.
pub async fn start_on(
    listener: tokio::net::TcpListener,
    config: RuntimeConfig,
    bedrock: &FakeBedrock,
    env: BTreeMap<String, String>,
) -> RuntimeUnderTest {
    serve_on(
        listener,
        config,
        bedrock,
        env,
        None,
        quick_options(),
        agentry_runtime::bedrock::DEFAULT_MAX_REPLY_BYTES,
    )
    .await
}

async fn serve_on(
    listener: tokio::net::TcpListener,
    config: RuntimeConfig,
    bedrock: &FakeBedrock,
    env: BTreeMap<String, String>,
    aws: Option<aws_config::SdkConfig>,
    options: agentry_runtime::ServeOptions,
    max_reply_bytes: usize,
) -> RuntimeUnderTest {
    let tools = Toolbox::with_aws(&config, |v| env.get(v).cloned(), aws).expect("tools");
    let sdk = sdk_config(bedrock).await;
    let client = Bedrock::with_sdk_config(&config, &sdk, max_reply_bytes).expect("bedrock client");
    let store_metrics = agentry_runtime::session::StoreMetrics::default();
    // Sessions as the binary builds them, the store URL taken from `env`.
    let sessions = config.memory.as_ref().map(|m| {
        agentry_runtime::session::Sessions::from_config(
            m,
            &config.agent,
            |v| env.get(v).cloned(),
            agentry_runtime::session::Options::DEFAULT_LEASE,
            store_metrics.clone(),
        )
        .expect("session settings")
    });
    let rt = Arc::new(Runtime {
        config,
        bedrock: client,
        metrics: agentry_runtime::metrics::Metrics::with_mcp(tools.mcp_metrics())
            .with_store(&store_metrics),
        tools,
        telemetry: agentry_runtime::telemetry::Telemetry::off(),
        sessions,
    });
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agentry_runtime::serve(
        listener,
        rt,
        async move {
            let _ = rx.await;
        },
        options,
    ));
    RuntimeUnderTest {
        url,
        stop: Some(tx),
        task,
    }
}

/// What one tool endpoint does.
#[derive(Clone, Debug)]
pub enum ToolBehaviour {
    /// Answer 200 with this JSON.
    Json(Value),
    /// Answer with this status and text.
    Status(u16, String),
    /// Wait, then answer with the JSON.
    Slow(Duration, Value),
}

/// A request a tool endpoint received.
#[derive(Clone, Debug)]
pub struct ToolRequest {
    /// Path.
    pub path: String,
    /// Query string.
    pub query: String,
    /// Headers.
    pub headers: BTreeMap<String, String>,
    /// JSON body (`null` when none).
    pub body: Value,
}

#[derive(Default)]
struct ToolInner {
    routes: Mutex<BTreeMap<String, ToolBehaviour>>,
    seen: Mutex<Vec<ToolRequest>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// An HTTP server standing in for the services tools call.
#[derive(Clone)]
pub struct ToolServer {
    inner: Arc<ToolInner>,
    /// Its address.
    pub addr: SocketAddr,
}

impl ToolServer {
    /// Starts it; `routes` maps a path (`/top_song`) to its behaviour.
    ///
    /// # Panics
    /// When it cannot bind.
    pub async fn start(routes: &[(&str, ToolBehaviour)]) -> Self {
        // A deep backlog: benchmarks open a thousand connections at once.
        let listener =
            agentry_runtime::listener::bind(([127, 0, 0, 1], 0).into(), 4096).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let inner = Arc::new(ToolInner::default());
        inner
            .routes
            .lock()
            .expect("lock")
            .extend(routes.iter().map(|(p, b)| (p.to_string(), b.clone())));
        let server = Self { inner, addr };
        let app = Router::new()
            .route("/{*path}", any(tool_handler))
            .with_state(server.clone());
        // No Nagle delay: streamed frames go out as they are written, as from Bedrock.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        server
    }

    /// URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received so far.
    pub fn seen(&self) -> Vec<ToolRequest> {
        self.inner.seen.lock().expect("lock").clone()
    }

    /// The most requests that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight.load(Ordering::SeqCst)
    }
}

async fn tool_handler(
    State(s): State<ToolServer>,
    Path(path): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/{path}");
    let now = s.inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    s.inner.max_in_flight.fetch_max(now, Ordering::SeqCst);
    s.inner.seen.lock().expect("lock").push(ToolRequest {
        path: path.clone(),
        query: uri.query().unwrap_or_default().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let behaviour = s.inner.routes.lock().expect("lock").get(&path).cloned();
    let response = match behaviour {
        Some(ToolBehaviour::Json(v)) => axum::Json(v).into_response(),
        Some(ToolBehaviour::Status(code, text)) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            text,
        )
            .into_response(),
        Some(ToolBehaviour::Slow(d, v)) => {
            tokio::time::sleep(d).await;
            axum::Json(v).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such tool route").into_response(),
    };
    s.inner.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

/// Starts the `agentry-runtime` binary on a free loopback port with `--config config` and
/// `args`, `RUST_LOG=info` plus `env`; returns it with its URL once it logs that it is ready
/// (in the text or the JSON log format).
///
/// # Panics
/// When it does not become ready within 30 s.
pub fn start_process(
    name: &str,
    config: &std::path::Path,
    env: &[(&str, String)],
    args: &[&str],
) -> (crate::process::Process, String) {
    let mut all = vec![
        "--config",
        config.to_str().expect("a UTF-8 path"),
        "--listen",
        "127.0.0.1:0",
    ];
    all.extend_from_slice(args);
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("RUST_LOG", "info"));
    let bin = crate::process::binary("agentry-runtime", "agentry-runtime");
    let p = crate::process::Process::start(name, &bin, &all, &env);
    assert!(
        p.wait_for_log("ready", Duration::from_secs(30)),
        "{name} did not start:\n{}",
        p.log()
    );
    let log = p.log();
    let addr = log
        .split("listen=")
        .nth(1)
        .or_else(|| log.split("\"listen\":\"").nth(1))
        .and_then(|s| s.split(|c: char| c.is_whitespace() || c == '"').next())
        .expect("the listen address in the log")
        .to_string();
    (p, format!("http://{addr}"))
}

/// The configuration the process suites give a runtime `name` in `namespace`: Claude 3 Haiku
/// in us-east-1, 512 tokens, a 20 s timeout, `tools`.
pub fn process_config(
    name: &str,
    namespace: &str,
    tools: Vec<agentry_crds::runtime_config::ToolConfig>,
) -> RuntimeConfig {
    use agentry_crds::runtime_config::{AgentIdentity, ModelConfig, RUNTIME_CONFIG_API_VERSION};
    RuntimeConfig {
        api_version: RUNTIME_CONFIG_API_VERSION.into(),
        agent: AgentIdentity {
            name: name.into(),
            namespace: namespace.into(),
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
        system_prompt: format!("You are agent {name}."),
        limits: agentry_crds::limits::EffectiveLimits {
            timeout_seconds: 20,
            ..agentry_crds::limits::EffectiveLimits::default()
        },
        tools,
        memory: None,
    }
}

/// Writes `config` to a file of its own (tests of one binary run at once) for `--config`.
pub fn write_config(config: &RuntimeConfig) -> std::path::PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "agentry-config-{}-{n}-{}.json",
        std::process::id(),
        config.agent.name
    ));
    std::fs::write(&path, config.to_json()).expect("config file");
    path
}
