//! The Agentry operator: reconciles Agents into running, discoverable workloads.
//!
//! [`run`] is the whole process: metrics and health endpoints, waiting for the Agent CRD,
//! leader election, and one [`controller`] per watched namespace (or one for all). Each
//! reconcile is the pipeline described in [`reconcile`].

pub mod apply;
pub mod build;
pub mod config;
pub mod controller;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod rbac;
pub mod reconcile;
pub mod resolve;
pub mod status;
pub mod telemetry;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use kube::runtime::wait::{await_condition, conditions};

use crate::config::OperatorConfig;
use crate::controller::ControllerSettings;
use crate::leader::{LeaderElector, LeaderError};

pub use agentry_crds::error_chain;

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The telemetry settings for the runtimes contradict each other.
    #[error("checking the runtimes' telemetry settings")]
    RuntimeTelemetry(#[from] config::telemetry::TelemetryError),
    /// No Kubernetes client could be configured (no kubeconfig, not in a cluster).
    #[error("configuring the Kubernetes client")]
    Client(#[source] kube::Error),
    /// Waiting for the Agent CRD failed.
    #[error(
        "waiting for the Agent CRD {0} (install it with the Helm chart, or `kubectl apply --server-side -f charts/agentry/crds/`)"
    )]
    Crd(String, #[source] kube::runtime::wait::Error),
    /// Leader election failed or the Lease was lost.
    #[error("leader election")]
    Leader(#[from] LeaderError),
    /// The metrics and health endpoints could not be served.
    #[error("serving metrics and health endpoints")]
    Http(#[source] std::io::Error),
    /// The telemetry settings cannot be used.
    #[error("telemetry")]
    Telemetry(#[from] agentry_crds::telemetry::TelemetryError),
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn wait_for_crd(client: &kube::Client) -> Result<(), RunError> {
    let name = "agents.agentry.dev";
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut logged = false;
    loop {
        let check = await_condition(crds.clone(), name, conditions::is_crd_established());
        match tokio::time::timeout(Duration::from_secs(10), check).await {
            Ok(Ok(_)) => {
                tracing::info!(crd = name, "the Agent CRD is established");
                return Ok(());
            }
            Ok(Err(e)) => return Err(RunError::Crd(name.into(), e)),
            Err(_) if !logged => {
                tracing::warn!(
                    crd = name,
                    "waiting for the Agent CRD to be established; is it installed?"
                );
                logged = true;
            }
            Err(_) => {}
        }
    }
}

fn identity(config: &OperatorConfig) -> String {
    config
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("agentry-operator-{}", std::process::id()))
}

/// The runtime image, resources and environment of Agents that set none, from the flags.
///
/// # Errors
/// When the telemetry settings contradict each other.
pub fn runtime_defaults(
    config: &OperatorConfig,
) -> Result<build::deployment::RuntimeImage, RunError> {
    Ok(build::deployment::RuntimeImage {
        image: config.runtime_image.clone(),
        pull_policy: config.runtime_image_pull_policy.clone(),
        pull_secrets: config
            .runtime_image_pull_secrets
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        resources: config.runtime_resources.clone(),
        env: config.telemetry.runtime_env()?,
    })
}

/// Runs the operator until SIGTERM (`Ok`) or a fatal error.
pub async fn run(config: OperatorConfig) -> Result<(), RunError> {
    let settings = config.telemetry.runtime_env()?;
    if telemetry::init_tracing(&settings)? {
        tracing::info!("exporting traces over OTLP");
    }
    let result = serve(config).await;
    telemetry::shutdown().await;
    result
}

async fn serve(config: OperatorConfig) -> Result<(), RunError> {
    let runtime = runtime_defaults(&config)?;
    let client = kube::Client::try_default()
        .await
        .map_err(RunError::Client)?;
    let metrics = Arc::new(metrics::Metrics::new());
    let health = Arc::new(http::Health::default());
    let server = http::serve(config.listen, metrics.clone(), health.clone());
    tokio::pin!(server);

    let startup = async {
        wait_for_crd(&client).await?;
        health.set_ready();
        let identity = identity(&config);
        let elector = config.leader_election.then(|| {
            let namespace = config
                .lease_namespace
                .clone()
                .or_else(|| std::env::var("POD_NAMESPACE").ok())
                .unwrap_or_else(|| "default".into());
            LeaderElector::new(client.clone(), &namespace, &config.lease_name, &identity)
        });
        Ok::<_, RunError>((identity, elector))
    };
    let (identity, elector) = tokio::select! {
        r = startup => r?,
        r = &mut server => return r.map_err(RunError::Http),
        _ = terminated() => return Ok(()),
    };

    // Lead, reconcile until the Lease is lost (say the API server was unreachable for longer
    // than a renewal allows), stop every write, and try to lead again: no process restart.
    loop {
        if let Some(elector) = &elector {
            tokio::select! {
                r = elector.acquire() => r?,
                r = &mut server => return r.map_err(RunError::Http),
                _ = terminated() => return Ok(()),
            }
        }
        let lost = async {
            match &elector {
                Some(e) => e.hold().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = controllers(&client, &config, &runtime, &identity, &metrics) => return Ok(()),
            e = lost => tracing::warn!(
                error = %error_chain(&e),
                "stopped reconciling: this replica no longer holds the leader-election lease"
            ),
            r = &mut server => return r.map_err(RunError::Http),
        }
    }
}

/// The Agent controllers, one per watched namespace (or one for the cluster); they end on
/// SIGTERM.
async fn controllers(
    client: &kube::Client,
    config: &OperatorConfig,
    runtime: &build::deployment::RuntimeImage,
    identity: &str,
    metrics: &Arc<metrics::Metrics>,
) {
    let namespaces = config.watched_namespaces();
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    futures::future::join_all(scopes.into_iter().map(|namespace| {
        let settings = ControllerSettings {
            namespace,
            runtime_image: runtime.clone(),
            identity: identity.to_string(),
        };
        controller::run(client.clone(), settings, metrics.clone())
    }))
    .await;
}
