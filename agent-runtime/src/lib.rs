//! The Agentry agent runtime: the Claude tool-use loop on Amazon Bedrock, served over HTTP.
//!
//! - [`config`]: the configuration, from the operator's ConfigMap or an Agent manifest;
//! - [`machine`]: the loop as a state machine without I/O; [`invoke`] drives it;
//! - [`bedrock`]: Converse and ConverseStream through the AWS SDK;
//! - [`tools`]: HTTP and agent tools;
//! - [`server`]: the HTTP API; [`metrics`]: Prometheus.

pub mod bedrock;
pub mod config;
pub mod conversation;
pub mod document;
pub mod invoke;
pub mod machine;
pub mod metrics;
pub mod server;
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

/// Runs the runtime until SIGTERM; in-flight invocations then get their deadline to finish.
pub async fn run(cli: Cli) -> Result<(), RunError> {
    let config = load(&cli)?;
    let tools = tools::Toolbox::new(&config, |v| std::env::var(v).ok())?;
    let bedrock = bedrock::Bedrock::connect(&config).await?;
    let grace = Duration::from_secs(u64::from(config.limits.timeout_seconds) + 5);
    let rt = Arc::new(invoke::Runtime {
        config,
        bedrock,
        tools,
        metrics: metrics::Metrics::new(),
    });
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .map_err(|e| RunError::Listen(cli.listen, e))?;
    let bound = listener.local_addr().unwrap_or(cli.listen);
    tracing::info!(agent = %rt.config.agent.name, model = %rt.config.model.id, tools = rt.tools.offered().specs.len(), listen = %bound, "ready");
    serve(listener, rt, terminated(), grace).await;
    Ok(())
}

/// Serves until `shutdown` completes, then stops accepting and lets in-flight requests finish
/// for up to `grace`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    rt: Arc<invoke::Runtime>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) {
    let state = server::AppState::new(rt);
    let app = server::router(state.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop_rx.await;
    });
    let server = tokio::spawn(async move { server.await });
    shutdown.await;
    tracing::info!("shutting down: finishing in-flight invocations");
    state.set_not_ready();
    let _ = stop_tx.send(());
    if tokio::time::timeout(grace, server).await.is_err() {
        tracing::warn!(
            ?grace,
            "in-flight invocations did not finish within the grace period"
        );
    }
}
