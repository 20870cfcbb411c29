//! The Agentry agent runtime: the Claude tool-use loop on Amazon Bedrock, served over HTTP.
//!
//! - [`config`]: the configuration, from the operator's ConfigMap or an Agent manifest;
//! - [`machine`]: the loop as a state machine without I/O; [`invoke`] drives it;
//! - [`bedrock`]: Converse and ConverseStream through the AWS SDK;
//! - [`tools`]: the tools (HTTP, agent, MCP, Lambda) and their execution;
//! - [`server`]: the HTTP API; [`listener`]: connections, their timeouts and the drain;
//!   [`metrics`]: Prometheus;
//! - [`session`]: conversations kept in a Redis-compatible store (`sessionId`).

pub mod bedrock;
pub mod config;
pub mod conversation;
pub mod document;
pub mod invoke;
pub mod listener;
pub mod machine;
pub mod metrics;
pub mod prices;
pub mod server;
pub mod session;
pub mod telemetry;
pub mod tools;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

pub use agentry_crds::error_chain;

/// Flags of `agentry-runtime`.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "agentry-runtime",
    version,
    about = "Serves one Claude agent over HTTP: the tool-use loop on Amazon Bedrock."
)]
pub struct Cli {
    /// The runtime configuration the operator wrote (in a pod).
    #[arg(
        long,
        env = "AGENTRY_CONFIG",
        conflicts_with = "agent",
        required_unless_present = "agent"
    )]
    pub config: Option<PathBuf>,

    /// Run an Agent manifest directly, with your own AWS credentials (on a laptop).
    #[arg(long)]
    pub agent: Option<PathBuf>,

    /// With --agent: the URL to use for a tool that targets an in-cluster Service or Agent,
    /// as TOOL=URL (repeatable).
    #[arg(long = "resolve", requires = "agent")]
    pub resolve: Vec<String>,

    /// Address to listen on.
    #[arg(long, env = "AGENTRY_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Log format: text or json.
    #[arg(long, env = "AGENTRY_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// Most open client connections; more wait in the listen backlog.
    #[arg(long, env = "AGENTRY_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Seconds a client has from the first byte of a request to the end of its headers.
    #[arg(long, env = "AGENTRY_HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10.0, value_parser = seconds)]
    pub header_read_timeout_seconds: f64,

    /// Seconds a client has to send a request body once its headers arrived.
    #[arg(long, env = "AGENTRY_BODY_READ_TIMEOUT_SECONDS", default_value_t = 30.0, value_parser = seconds)]
    pub body_read_timeout_seconds: f64,

    /// Seconds a kept-alive connection may wait for its next request.
    #[arg(long, env = "AGENTRY_IDLE_TIMEOUT_SECONDS", default_value_t = 60.0, value_parser = seconds)]
    pub idle_timeout_seconds: f64,

    /// Seconds between SIGTERM and closing the listener: `/readyz` answers 503 meanwhile, so
    /// Kubernetes takes the pod out of its Service before connections are refused.
    #[arg(long, env = "AGENTRY_DRAIN_DELAY_SECONDS", default_value_t = 5.0, value_parser = seconds)]
    pub drain_delay_seconds: f64,

    /// Most bytes one model reply may hold (a Converse body, or a stream's text and tool input).
    #[arg(long, env = "AGENTRY_MAX_REPLY_BYTES", default_value_t = bedrock::DEFAULT_MAX_REPLY_BYTES, value_parser = clap::value_parser!(usize))]
    pub max_reply_bytes: usize,

    /// The base URL the A2A agent card advertises (where A2A clients send their requests).
    /// Default: the Agent's Service, `http://<name>.<namespace>.svc.cluster.local/`; set it
    /// when clients reach the runtime another way (a port-forward, an Ingress, a laptop).
    #[arg(long, env = "AGENTRY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Prices (US dollars per million tokens) for `agentry_runtime_estimated_cost_usd_total`,
    /// beside or over the built-in table: a JSON object of model id →
    /// `{"input", "output", "cacheRead", "cacheWrite"}` (the chart's `telemetry.modelPrices`).
    #[arg(long, env = "AGENTRY_MODEL_PRICES")]
    pub model_prices: Option<String>,

    /// Seconds a session's lease lasts unless renewed (renewed every third of it while an
    /// invocation runs): how long a session stays busy after its replica died.
    #[arg(long, env = "AGENTRY_SESSION_LEASE_SECONDS", default_value_t = 15.0, value_parser = seconds)]
    pub session_lease_seconds: f64,
}

fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds between 0 and 86400"
        )),
    }
}

/// How the runtime serves: connection limits, timeouts, and the shutdown drain.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Connection count and per-connection timeouts.
    pub connections: listener::ConnectionLimits,
    /// Time to send a request body.
    pub body_read_timeout: Duration,
    /// Time between the shutdown signal and closing the listener.
    pub drain_delay: Duration,
    /// Time in-flight invocations get after the listener closed.
    pub grace: Duration,
    /// The base URL the A2A agent card advertises; `None`: the Agent's cluster DNS name,
    /// `http://<name>.<namespace>.svc.cluster.local/`.
    pub public_url: Option<String>,
}

impl ServeOptions {
    /// The options the flags give, for an Agent whose invocations last up to `timeout_seconds`.
    pub fn from_cli(cli: &Cli, timeout_seconds: u32) -> Self {
        Self {
            connections: listener::ConnectionLimits {
                max_connections: cli.max_connections as usize,
                header_read_timeout: Duration::from_secs_f64(cli.header_read_timeout_seconds),
                idle_timeout: Duration::from_secs_f64(cli.idle_timeout_seconds),
            },
            body_read_timeout: Duration::from_secs_f64(cli.body_read_timeout_seconds),
            drain_delay: Duration::from_secs_f64(cli.drain_delay_seconds),
            grace: Duration::from_secs(u64::from(timeout_seconds) + 5),
            public_url: cli.public_url.clone(),
        }
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            connections: listener::ConnectionLimits::default(),
            body_read_timeout: Duration::from_secs(30),
            drain_delay: Duration::from_secs(5),
            grace: Duration::from_secs(125),
            public_url: None,
        }
    }
}

/// Why the runtime stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration cannot be used.
    #[error("configuration")]
    Config(#[from] config::LoadError),
    /// The tools cannot be set up.
    #[error("tools")]
    Tools(#[from] tools::ToolsError),
    /// The Bedrock client cannot be built.
    #[error("bedrock client")]
    Bedrock(#[from] bedrock::BedrockError),
    /// The telemetry settings cannot be used.
    #[error("telemetry")]
    Telemetry(#[from] agentry_crds::telemetry::TelemetryError),
    /// The price table override cannot be used.
    #[error("model prices")]
    Prices(#[from] prices::PricesError),
    /// The session store settings cannot be used.
    #[error("sessions")]
    Sessions(#[from] session::StoreError),
    /// The listener cannot be opened.
    #[error("listening on {0}")]
    Listen(SocketAddr, #[source] std::io::Error),
}

/// Loads the configuration named by the flags.
pub fn load(cli: &Cli) -> Result<agentry_crds::runtime_config::RuntimeConfig, config::LoadError> {
    match (&cli.config, &cli.agent) {
        (_, Some(agent)) => config::from_agent_file(agent, &config::parse_resolves(&cli.resolve)?),
        (Some(path), None) => config::from_config_file(path),
        (None, None) => Err(config::LoadError::Local(
            "give --config FILE (in a pod) or --agent MANIFEST (locally)".into(),
        )),
    }
}

async fn terminated() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Runs the runtime until SIGTERM, then drains (see [`serve`]).
pub async fn run(cli: Cli) -> Result<(), RunError> {
    let config = load(&cli)?;
    let aws = tools::load_aws(&config).await;
    let tools = tools::Toolbox::with_aws(&config, |v| std::env::var(v).ok(), aws)?;
    let bedrock = bedrock::Bedrock::connect(&config, cli.max_reply_bytes).await?;
    let options = ServeOptions::from_cli(&cli, config.limits.timeout_seconds);
    let telemetry = telemetry::Telemetry::from_env(&config)?;
    let overrides = match &cli.model_prices {
        Some(text) => prices::parse(text)?,
        None => Default::default(),
    };
    let price = prices::price(&config.model.id, &overrides);
    if price.is_none() {
        tracing::info!(model = %config.model.id, "no price for this model: agentry_runtime_estimated_cost_usd_total stays empty (add it to AGENTRY_MODEL_PRICES)");
    }
    let store_metrics = session::StoreMetrics::default();
    let sessions = match &config.memory {
        Some(memory) => Some(session::Sessions::from_config(
            memory,
            &config.agent,
            |v| std::env::var(v).ok(),
            Duration::from_secs_f64(cli.session_lease_seconds),
            store_metrics.clone(),
        )?),
        None => None,
    };
    let metrics = metrics::Metrics::with_mcp(tools.mcp_metrics())
        .with_store(&store_metrics)
        .for_agent(
            &config.model.id,
            price,
            config.limits.max_concurrent_invocations,
        );
    let rt = Arc::new(invoke::Runtime {
        config,
        bedrock,
        metrics,
        tools,
        telemetry,
        sessions,
    });
    let listener = listener::bind(cli.listen, options.connections.max_connections as u32)
        .map_err(|e| RunError::Listen(cli.listen, e))?;
    let bound = listener.local_addr().unwrap_or(cli.listen);
    tracing::info!(agent = %rt.config.agent.name, model = %rt.config.model.id, tools = rt.tools.offered().specs.len(), listen = %bound, "ready");
    serve(listener, rt.clone(), terminated(), options).await;
    rt.telemetry.shutdown().await;
    Ok(())
}

/// Serves until `shutdown` completes, then drains: `/readyz` answers 503 and new invocations
/// are refused with 503 while the listener stays open for `drain_delay` (so Kubernetes can take
/// the pod out of its Service); then the listener closes, idle and half-sent connections close
/// at once, and the invocations in flight get up to `grace` to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    rt: Arc<invoke::Runtime>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    options: ServeOptions,
) {
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    let state = server::AppState::new(rt, closing.clone(), options.body_read_timeout)
        .with_public_url(options.public_url.clone());
    let app = server::router(state.clone());
    let served = tokio::spawn(listener::serve(
        listener,
        app,
        options.connections,
        closing,
        options.grace,
    ));
    shutdown.await;
    state.begin_drain();
    tracing::info!(
        drain_delay_ms = options.drain_delay.as_millis() as u64,
        in_flight = state.in_flight().count(),
        "shutting down: /readyz answers 503; the listener closes after the drain delay"
    );
    tokio::time::sleep(options.drain_delay).await;
    let _ = closing_tx.send(true);
    let finished = tokio::time::timeout(options.grace, state.idle())
        .await
        .is_ok();
    if !finished {
        tracing::warn!(
            in_flight = state.in_flight().count(),
            grace_ms = options.grace.as_millis() as u64,
            "in-flight invocations did not finish within the grace period"
        );
        return;
    }
    // Every invocation has ended; their last response bytes get a moment to be written.
    if !matches!(
        tokio::time::timeout(Duration::from_secs(1), served).await,
        Ok(Ok(true))
    ) {
        tracing::debug!("connections still open at exit were closed");
    }
}
