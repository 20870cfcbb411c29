//! The operator as a process, configured the way a cluster would run it: the flags and
//! environment of the chart's Deployment as installed, and the chart's ServiceAccount as its
//! identity (a TokenRequest token in its kubeconfig), so the RBAC it gets is exactly the chart's.

use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;

use crate::k8s::Cluster;
use crate::process::{Process, binary};

/// Identity and addresses of one operator process.
pub struct OperatorProcess<'a> {
    /// The release namespace (the pod's namespace).
    pub namespace: &'a str,
    /// The chart's operator Deployment.
    pub deployment: &'a str,
    /// This replica's identity (the pod name it stands for).
    pub identity: &'a str,
    /// Where it serves `/metrics` and health on loopback.
    pub listen: &'a str,
}

impl OperatorProcess<'_> {
    /// Starts the operator binary (built the way the README builds it: `--workspace`) with the
    /// container args and environment of the installed Deployment, as its ServiceAccount.
    ///
    /// # Panics
    /// When the Deployment cannot be read or the process started.
    pub async fn start(&self, cluster: &Cluster) -> Process {
        let client = cluster.client().await;
        let d = Api::<Deployment>::namespaced(client, self.namespace)
            .get(self.deployment)
            .await
            .unwrap_or_else(|e| panic!("reading Deployment {}: {e}", self.deployment));
        let pod = d.spec.and_then(|s| s.template.spec).expect("a pod spec");
        let sa = pod.service_account_name.clone().unwrap_or("default".into());
        let container = pod.containers.first().expect("a container").clone();
        let kubeconfig = cluster.service_account_kubeconfig(self.namespace, &sa);
        let env = self.environment(&container, &kubeconfig);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let args: Vec<&str> = container
            .args
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        Process::start(
            self.identity,
            &binary("agentry-operator", "agentry-operator"),
            &args,
            &env,
        )
    }

    fn environment(
        &self,
        container: &k8s_openapi::api::core::v1::Container,
        kubeconfig: &Path,
    ) -> Vec<(String, String)> {
        let mut env = Vec::new();
        for var in container.env.iter().flatten() {
            let field = var
                .value_from
                .as_ref()
                .and_then(|f| f.field_ref.as_ref())
                .map(|f| f.field_path.as_str());
            let value = match (var.value.as_deref(), field) {
                (_, Some("metadata.name")) => self.identity.to_string(),
                (_, Some("metadata.namespace")) => self.namespace.to_string(),
                (Some(v), None) => v.to_string(),
                // The API server drops an empty value.
                (None, None) => String::new(),
                (_, other) => panic!("env {} from {other:?}: not simulated", var.name),
            };
            env.push((var.name.clone(), value));
        }
        // The pod listens on its own IP; here a loopback port stands for it.
        env.retain(|(k, _)| k != "AGENTRY_LISTEN");
        env.push(("AGENTRY_LISTEN".into(), self.listen.into()));
        env.push(("KUBECONFIG".into(), kubeconfig.to_string_lossy().into()));
        if !env.iter().any(|(k, _)| k == "RUST_LOG") {
            env.push(("RUST_LOG".into(), "info,kube=warn".into()));
        }
        env
    }
}
