//! The Agent's Deployment: runtime pods with the configuration mounted read-only, a hash of it
//! in the pod template (a changed prompt or tool rolls the pods), health probes, and the
//! restricted Pod Security profile.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HTTPGetAction, LocalObjectReference, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretKeySelector,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use agentry_crds::memory::MEMORY_URL_ENV;

use super::runtime_config::secret_headers;
use super::{RUNTIME_PORT, child_meta, config_map_name, labels};
use crate::validate::ValidatedAgent;

/// Pod-template annotation holding the hash of the runtime configuration.
pub const CONFIG_HASH_ANNOTATION: &str = "agentry.dev/config-hash";
/// Where the configuration is mounted.
pub const CONFIG_DIR: &str = "/etc/agentry";
/// Name of the runtime container.
pub const CONTAINER: &str = "runtime";
/// UID and GID the runtime runs as (non-root, as in distroless images).
pub const RUNTIME_UID: i64 = 65532;

/// The runtime image, pod resources and environment the operator was installed with, for
/// Agents that set none.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuntimeImage {
    /// Image reference.
    pub image: String,
    /// Pull policy; `None` leaves Kubernetes' default.
    pub pull_policy: Option<String>,
    /// Names of image pull secrets.
    pub pull_secrets: Vec<String>,
    /// Requests and limits of the runtime container; `None`: [`default_resources`].
    pub resources: Option<ResourceRequirements>,
    /// Plain variables of every runtime container (the telemetry settings), each unless the
    /// Agent's `spec.env` sets the same name.
    pub env: Vec<(String, String)>,
}

/// Inputs of the Deployment that do not come from the Agent.
#[derive(Clone, Debug)]
pub struct DeploymentInputs<'a> {
    /// The default runtime image.
    pub runtime: &'a RuntimeImage,
    /// Hash of the runtime configuration.
    pub config_hash: &'a str,
    /// ServiceAccount the pods run as.
    pub service_account: &'a str,
}

fn quantity(q: &str) -> Quantity {
    Quantity(q.to_string())
}

/// Requests and limits when neither the Agent nor the chart (`runtimeResources`) sets any. Set
/// from `bench-runtime`: a pod holding the default `maxConcurrentInvocations` (128) in flight
/// uses about 21 MB and, at 1 s per model call, 0.03 to 0.06 CPU; the memory limit leaves room for
/// large conversations and replies.
pub fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), quantity("100m")),
            ("memory".to_string(), quantity("64Mi")),
        ])),
        limits: Some(BTreeMap::from([("memory".to_string(), quantity("256Mi"))])),
        ..ResourceRequirements::default()
    }
}

fn probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

/// Variable `name` from key `key` of Secret `secret`, which must exist.
fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn env(agent: &ValidatedAgent, defaults: &[(String, String)]) -> Vec<EnvVar> {
    let mut env = vec![EnvVar {
        name: "AGENTRY_CONFIG".into(),
        value: Some(format!(
            "{CONFIG_DIR}/{}",
            agentry_crds::runtime_config::RUNTIME_CONFIG_KEY
        )),
        ..EnvVar::default()
    }];
    env.extend(
        secret_headers(&agent.spec)
            .into_iter()
            .map(|(name, key)| secret_env(&name, &key.name, &key.key)),
    );
    // The session store's URL carries its password: the pod reads it from the Secret key, the
    // operator never does. Not optional: a pod without it could not keep sessions, so it waits
    // for the Secret (CreateContainerConfigError names it) rather than start half-configured.
    if let Some(memory) = &agent.spec.memory {
        let key = &memory.url.secret_key_ref;
        env.push(secret_env(MEMORY_URL_ENV, &key.name, &key.key));
    }
    let own = agent.spec.env.as_deref().unwrap_or_default();
    // The Agent's own value wins, and a name must not appear twice: server-side apply refuses
    // a duplicate key in the list. Before the Agent's own, so those can refer to them as $(NAME).
    let mut taken: Vec<String> = env.iter().chain(own).map(|e| e.name.clone()).collect();
    // An Agent that exports to its own collector does not get the chart's headers (they are
    // the chart collector's credentials).
    if taken
        .iter()
        .any(|n| n == "OTEL_EXPORTER_OTLP_ENDPOINT" || n == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    {
        taken.push("OTEL_EXPORTER_OTLP_HEADERS".into());
    }
    env.extend(
        defaults
            .iter()
            .filter(|(name, _)| !taken.contains(name))
            .map(|(name, value)| EnvVar {
                name: name.clone(),
                value: Some(value.clone()),
                ..EnvVar::default()
            }),
    );
    env.extend(own.iter().cloned());
    env
}

fn container(agent: &ValidatedAgent, inputs: &DeploymentInputs<'_>) -> Container {
    let spec = &agent.spec;
    Container {
        name: CONTAINER.into(),
        image: Some(
            spec.image
                .clone()
                .unwrap_or_else(|| inputs.runtime.image.clone()),
        ),
        image_pull_policy: spec
            .image_pull_policy
            .map(|p| p.as_str().to_string())
            .or_else(|| inputs.runtime.pull_policy.clone()),
        args: Some(vec![
            "--config".into(),
            format!(
                "{CONFIG_DIR}/{}",
                agentry_crds::runtime_config::RUNTIME_CONFIG_KEY
            ),
            "--listen".into(),
            format!("0.0.0.0:{RUNTIME_PORT}"),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: RUNTIME_PORT,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env: Some(env(agent, &inputs.runtime.env)),
        env_from: spec.env_from.clone(),
        resources: Some(
            spec.resources
                .clone()
                .or_else(|| inputs.runtime.resources.clone())
                .unwrap_or_else(default_resources),
        ),
        readiness_probe: Some(probe("/readyz", 5)),
        liveness_probe: Some(probe("/healthz", 10)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "config".into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "tmp".into(),
                mount_path: "/tmp".into(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    }
}

/// The runtime Deployment of `agent`.
pub fn deployment(agent: &ValidatedAgent, inputs: &DeploymentInputs<'_>) -> Deployment {
    let spec = &agent.spec;
    // User labels first, so Agentry's own (which the selector needs) win on a clash.
    let mut pod_labels: BTreeMap<String, String> = spec.pod_labels.clone().unwrap_or_default();
    pod_labels.extend(labels::labels(&agent.name));
    let mut pod_annotations = spec.pod_annotations.clone().unwrap_or_default();
    pod_annotations.insert(CONFIG_HASH_ANNOTATION.into(), inputs.config_hash.into());
    // On SIGTERM the runtime drains for 5 s (its default --drain-delay-seconds) while
    // endpoints update, then gives in-flight invocations their whole deadline plus 5 s.
    let grace = i64::from(spec.effective_limits().timeout_seconds) + 15;

    Deployment {
        metadata: child_meta(agent, agent.name.clone()),
        spec: Some(DeploymentSpec {
            replicas: Some(spec.replicas),
            selector: LabelSelector {
                match_labels: Some(labels::selector(&agent.name)),
                match_expressions: None,
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::String("25%".into())),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(pod_annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(inputs.service_account.into()),
                    // The runtime never calls the Kubernetes API. IRSA and Pod Identity mount
                    // their own projected tokens, unaffected by this.
                    automount_service_account_token: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(RUNTIME_UID),
                        run_as_group: Some(RUNTIME_UID),
                        fs_group: Some(RUNTIME_UID),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            localhost_profile: None,
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container(agent, inputs)],
                    volumes: Some(vec![
                        Volume {
                            name: "config".into(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: config_map_name(&agent.name),
                                ..ConfigMapVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                        Volume {
                            name: "tmp".into(),
                            empty_dir: Some(EmptyDirVolumeSource {
                                size_limit: Some(quantity("64Mi")),
                                ..EmptyDirVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                    ]),
                    termination_grace_period_seconds: Some(grace),
                    image_pull_secrets: spec.image_pull_secrets.clone().or_else(|| {
                        let defaults = &inputs.runtime.pull_secrets;
                        (!defaults.is_empty()).then(|| {
                            defaults
                                .iter()
                                .map(|name| LocalObjectReference { name: name.clone() })
                                .collect()
                        })
                    }),
                    node_selector: spec.node_selector.clone(),
                    tolerations: spec.tolerations.clone(),
                    affinity: spec.affinity.clone(),
                    topology_spread_constraints: spec.topology_spread_constraints.clone(),
                    priority_class_name: spec.priority_class_name.clone(),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests;
