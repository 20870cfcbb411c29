//! The operator's configuration: command-line flags, each with an environment fallback so the
//! Helm chart can set them either way.

pub mod telemetry;

use std::net::SocketAddr;

use clap::{Parser, ValueEnum};
use k8s_openapi::api::core::v1::ResourceRequirements;

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

    /// Requests and limits of the runtime container for Agents that set no `spec.resources`, as
    /// JSON (`{"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}`).
    /// Default: those values.
    #[arg(long, env = "AGENTRY_RUNTIME_RESOURCES", value_parser = parse_resources)]
    pub runtime_resources: Option<ResourceRequirements>,

    /// Telemetry settings of every runtime container.
    #[command(flatten)]
    pub telemetry: telemetry::RuntimeTelemetry,

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

/// A Kubernetes quantity (`100m`, `64Mi`, `1.5`, `2e3`), as the API server's own pattern.
fn is_quantity(text: &str) -> bool {
    let number_end = text
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '+' || *c == '-'))))
        .map_or(text.len(), |(i, _)| i);
    let (number, suffix) = text.split_at(number_end);
    let digits = number.trim_start_matches(['+', '-']);
    let number_ok = !digits.is_empty()
        && digits != "."
        && digits.matches('.').count() <= 1
        && digits.chars().any(|c| c.is_ascii_digit());
    let suffix_ok = matches!(
        suffix,
        "" | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
            | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .map(|exp| exp.trim_start_matches(['+', '-']))
        .is_some_and(|exp| !exp.is_empty() && exp.chars().all(|c| c.is_ascii_digit()));
    number_ok && suffix_ok
}

/// Parses `--runtime-resources`, refusing what the API server would refuse in every
/// Deployment, so a typo stops the operator at start rather than every Agent's rollout.
fn parse_resources(text: &str) -> Result<ResourceRequirements, String> {
    let resources: ResourceRequirements = serde_json::from_str(text).map_err(|e| {
        format!(
            "not a ResourceRequirements object ({e}); expected JSON like \
             {{\"requests\": {{\"cpu\": \"100m\", \"memory\": \"64Mi\"}}, \"limits\": {{\"memory\": \"256Mi\"}}}}"
        )
    })?;
    for (section, map) in [
        ("requests", &resources.requests),
        ("limits", &resources.limits),
    ] {
        for (name, quantity) in map.iter().flatten() {
            if !is_quantity(&quantity.0) {
                return Err(format!(
                    "{section}.{name}: {:?} is not a Kubernetes quantity (for example 100m, 64Mi, 1)",
                    quantity.0
                ));
            }
        }
    }
    Ok(resources)
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
    fn runtime_resources_take_json_and_refuse_a_bad_quantity_naming_it() {
        let c = OperatorConfig::parse_from([
            "x",
            "--runtime-resources",
            r#"{"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}"#,
        ]);
        let r = c.runtime_resources.unwrap();
        assert_eq!(r.requests.unwrap()["cpu"].0, "250m");
        assert_eq!(r.limits.unwrap()["memory"].0, "1Gi");
        assert!(OperatorConfig::defaults().runtime_resources.is_none());

        let err = OperatorConfig::try_parse_from([
            "x",
            "--runtime-resources",
            r#"{"requests": {"memory": "64 MB"}}"#,
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("requests.memory: \"64 MB\" is not a Kubernetes quantity"),
            "{err}"
        );
        let err = OperatorConfig::try_parse_from(["x", "--runtime-resources", "cpu=1"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a ResourceRequirements object"), "{err}");
    }

    #[test]
    fn quantities_are_checked_like_the_api_server_does() {
        for ok in ["1", "100m", "0.5", "64Mi", "1Gi", "2e3", "1E+2", "+1", ".5"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "m", "64 Mi", "64MB", "1.2.3", "1e", "Mi64", "."] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn leader_election_can_be_turned_off() {
        let c = OperatorConfig::parse_from(["x", "--leader-election", "false"]);
        assert!(!c.leader_election);
        assert!(OperatorConfig::defaults().leader_election);
    }
}
