//! `agentry-operator`: parses flags, starts logging, runs the operator.

use std::process::ExitCode;

use agentry_operator::config::OperatorConfig;
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    // One TLS crypto provider for the whole process, chosen here rather than left to rustls,
    // which panics at the first HTTPS connection when a build unifies more than one. It fails
    // only when a provider is installed already, which is then the one in use.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = OperatorConfig::parse();
    agentry_operator::telemetry::init(config.log_format);
    match agentry_operator::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %agentry_operator::error_chain(&e), "agentry-operator stopped");
            ExitCode::FAILURE
        }
    }
}
