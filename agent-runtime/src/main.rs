//! `agentry-runtime`: parses flags, starts logging, serves the Agent.

use std::process::ExitCode;

use agentry_runtime::Cli;
use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // One TLS crypto provider for the whole process, chosen here rather than left to rustls,
    // which panics at the first HTTPS connection when a build unifies more than one. It fails
    // only when a provider is installed already, which is then the one in use.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: log pipelines (and kubectl logs) get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if cli.log_format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
    match agentry_runtime::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agentry-runtime: {}", agentry_runtime::error_chain(&e));
            ExitCode::from(2)
        }
    }
}
