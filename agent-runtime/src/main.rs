//! `agentry-runtime`: parses flags, starts logging, serves the Agent.

use std::process::ExitCode;

use agentry_runtime::Cli;
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    // One TLS crypto provider for the whole process, chosen here rather than left to rustls,
    // which panics at the first HTTPS connection when a build unifies more than one. It fails
    // only when a provider is installed already, which is then the one in use.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    agentry_crds::telemetry::logs::init(cli.log_format == "json");
    match agentry_runtime::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agentry-runtime: {}", agentry_runtime::error_chain(&e));
            ExitCode::from(2)
        }
    }
}
