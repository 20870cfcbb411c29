//! The operator's configuration: command-line flags, each with an environment fallback so the
//! Helm chart can set them either way.

use std::net::SocketAddr;

use clap::{Parser, ValueEnum};

/// Default runtime image, used for Agents that set no `spec.image`.
pub const DEFAULT_RUNTIME_IMAGE: &str = concat!(
    "ghcr.io/agentry-dev/agentry-runtime:",
    env!("CARGO_PKG_VERSION")
);

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Flags of `agentry-operator`.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "agentry-operator",
    version,
    about = "Runs Claude agents on Kubernetes: reconciles Agent resources."
)]
pub struct OperatorConfig {
    /// Namespaces to watch, comma-separated. Empty: every namespace.
    #[arg(
        long,
        env = "AGENTRY_WATCH_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub namespaces: Vec<String>,

    /// Runtime image for Agents that set no `spec.image`.
    #[arg(long, env = "AGENTRY_RUNTIME_IMAGE", default_value = DEFAULT_RUNTIME_IMAGE)]
    pub runtime_image: String,

    /// Pull policy of the runtime image for Agents that set none: `Always`, `IfNotPresent` or
    /// `Never`. Default: Kubernetes' own default for the tag.
    #[arg(long, env = "AGENTRY_RUNTIME_IMAGE_PULL_POLICY", value_parser = ["Always", "IfNotPresent", "Never"])]
    pub runtime_image_pull_policy: Option<String>,

    /// Image pull secrets of the runtime pods for Agents that set none, comma-separated.
    #[arg(
        long,
        env = "AGENTRY_RUNTIME_IMAGE_PULL_SECRETS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub runtime_image_pull_secrets: Vec<String>,

    /// Log format.
    #[arg(long, env = "AGENTRY_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Address of the metrics and health endpoints (`/metrics`, `/healthz`, `/readyz`).
    #[arg(long, env = "AGENTRY_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Elect a leader through a Lease, so that only one replica reconciles at a time.
    #[arg(long, env = "AGENTRY_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,

    /// Namespace of the leader-election Lease. Default: the pod's namespace (`POD_NAMESPACE`),
    /// else `default`.
    #[arg(long, env = "AGENTRY_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// Name of the leader-election Lease.
    #[arg(long, env = "AGENTRY_LEASE_NAME", default_value = "agentry-operator")]
    pub lease_name: String,

    /// This replica's identity in the Lease. Default: the pod name (`POD_NAME`), else the host name.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
}

impl OperatorConfig {
    /// The namespaces to watch; empty means all.
    pub fn watched_namespaces(&self) -> Vec<String> {
        self.namespaces
            .iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect()
    }

    /// A configuration with every default, for tests and embedding.
    pub fn defaults() -> Self {
        Self::parse_from(["agentry-operator"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_namespaces_means_every_namespace() {
        assert!(OperatorConfig::defaults().watched_namespaces().is_empty());
    }

    #[test]
    fn namespaces_flag_takes_a_comma_separated_list() {
        let c = OperatorConfig::parse_from(["x", "--namespaces", "team-a, team-b"]);
        assert_eq!(c.watched_namespaces(), ["team-a", "team-b"]);
    }

    #[test]
    fn leader_election_can_be_turned_off() {
        let c = OperatorConfig::parse_from(["x", "--leader-election", "false"]);
        assert!(!c.leader_election);
        assert!(OperatorConfig::defaults().leader_election);
    }
}
