//! `agentry-operator`: parses flags, starts logging, runs the operator.

use std::process::ExitCode;

use agentry_operator::config::OperatorConfig;
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
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
