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

/// The runtime image the operator was installed with, for Agents that set none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeImage {
    /// Image reference.
    pub image: String,
    /// Pull policy; `None` leaves Kubernetes' default.
    pub pull_policy: Option<String>,
    /// Names of image pull secrets.
    pub pull_secrets: Vec<String>,
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

/// Requests and limits when the Agent sets none: small, as the runtime is.
fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), quantity("50m")),
            ("memory".to_string(), quantity("32Mi")),
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

fn env(agent: &ValidatedAgent) -> Vec<EnvVar> {
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
            .map(|(name, key)| EnvVar {
                name,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: key.name,
                        key: key.key,
                        optional: Some(false),
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            }),
    );
    env.extend(agent.spec.env.iter().flatten().cloned());
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
        env: Some(env(agent)),
        env_from: spec.env_from.clone(),
        resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
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
    // In-flight invocations get their whole deadline to finish on shutdown.
    let grace = i64::from(spec.effective_limits().timeout_seconds) + 10;

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
mod tests {
    use super::*;
    use crate::build::fixtures::{MINIMAL, WEATHER, validated};

    fn runtime() -> RuntimeImage {
        RuntimeImage {
            image: "registry.example/agentry-runtime:1.0.0".into(),
            pull_policy: None,
            pull_secrets: vec![],
        }
    }

    fn build_with(yaml: &str, runtime: &RuntimeImage) -> Deployment {
        deployment(
            &validated(yaml),
            &DeploymentInputs {
                runtime,
                config_hash: "abc123",
                service_account: "weather",
            },
        )
    }

    fn build(yaml: &str) -> Deployment {
        build_with(yaml, &runtime())
    }

    #[test]
    fn operator_default_pull_policy_and_secrets_apply_when_the_agent_sets_none() {
        let r = RuntimeImage {
            pull_policy: Some("Always".into()),
            pull_secrets: vec!["regcred".into()],
            ..runtime()
        };
        let d = build_with(MINIMAL, &r);
        let p = pod(&d);
        assert_eq!(p.containers[0].image_pull_policy.as_deref(), Some("Always"));
        assert_eq!(p.image_pull_secrets.as_ref().unwrap()[0].name, "regcred");
        let own = build_with(
            &format!("{MINIMAL}  imagePullPolicy: Never\n  imagePullSecrets: [{{name: mine}}]\n"),
            &r,
        );
        assert_eq!(
            pod(&own).containers[0].image_pull_policy.as_deref(),
            Some("Never")
        );
        assert_eq!(
            pod(&own).image_pull_secrets.as_ref().unwrap()[0].name,
            "mine"
        );
    }

    fn pod(d: &Deployment) -> &PodSpec {
        d.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
    }

    #[test]
    fn deployment_is_named_after_the_agent_and_owned_by_it() {
        let d = build(WEATHER);
        assert_eq!(d.metadata.name.as_deref(), Some("weather"));
        assert_eq!(d.metadata.namespace.as_deref(), Some("demo"));
        let owner = &d.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("Agent", Some(true))
        );
        assert_eq!(d.spec.as_ref().unwrap().replicas, Some(2));
    }

    #[test]
    fn config_hash_goes_into_the_pod_template_so_a_change_rolls_the_pods() {
        let d = build(WEATHER);
        let ann = d
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .annotations
            .unwrap();
        assert_eq!(ann[CONFIG_HASH_ANNOTATION], "abc123");
    }

    #[test]
    fn pods_meet_the_restricted_pod_security_profile() {
        let d = build(MINIMAL);
        let pod = pod(&d);
        let psc = pod.security_context.as_ref().unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(
            psc.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
        let sc = pod.containers[0].security_context.as_ref().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop,
            Some(vec!["ALL".to_string()])
        );
    }

    #[test]
    fn config_is_mounted_read_only_and_probes_hit_the_health_endpoints() {
        let d = build(MINIMAL);
        let c = &pod(&d).containers[0];
        let mount = &c.volume_mounts.as_ref().unwrap()[0];
        assert_eq!(
            (mount.mount_path.as_str(), mount.read_only),
            ("/etc/agentry", Some(true))
        );
        assert_eq!(
            pod(&d).volumes.as_ref().unwrap()[0]
                .config_map
                .as_ref()
                .unwrap()
                .name,
            "hello-config"
        );
        let path = |p: &Option<Probe>| {
            p.as_ref()
                .unwrap()
                .http_get
                .as_ref()
                .unwrap()
                .path
                .clone()
                .unwrap()
        };
        assert_eq!(path(&c.readiness_probe), "/readyz");
        assert_eq!(path(&c.liveness_probe), "/healthz");
        assert_eq!(
            c.image.as_deref(),
            Some("registry.example/agentry-runtime:1.0.0")
        );
    }

    #[test]
    fn secret_headers_reach_the_pod_as_secret_key_ref_environment_variables() {
        let d = build(WEATHER);
        let env = pod(&d).containers[0].env.clone().unwrap();
        let var = env
            .iter()
            .find(|e| e.name == "AGENTRY_TOOL0_HEADER0")
            .unwrap();
        let key = var
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(
            (key.name.as_str(), key.key.as_str()),
            ("weather-api", "token")
        );
        assert!(var.value.is_none());
    }

    #[test]
    fn pod_level_overrides_from_the_spec_are_passed_through() {
        let yaml = format!(
            "{MINIMAL}  image: my/runtime:dev\n  imagePullPolicy: Always\n  priorityClassName: high\n  \
             nodeSelector: {{pool: agents}}\n  podLabels: {{team: a, agentry.dev/agent: spoof}}\n  \
             podAnnotations: {{note: x}}\n  tolerations: [{{key: dedicated, operator: Exists}}]\n  \
             resources: {{limits: {{memory: 1Gi}}}}\n  env: [{{name: LOG, value: debug}}]\n"
        );
        let d = build(&yaml);
        let template = d.spec.as_ref().unwrap().template.clone();
        let labels = template.metadata.as_ref().unwrap().labels.clone().unwrap();
        assert_eq!(labels["team"], "a");
        assert_eq!(
            labels["agentry.dev/agent"], "hello",
            "Agentry's selector label wins"
        );
        assert_eq!(template.metadata.unwrap().annotations.unwrap()["note"], "x");
        let pod = template.spec.unwrap();
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("my/runtime:dev"));
        assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
        assert_eq!(
            c.resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"].0,
            "1Gi"
        );
        assert!(c.env.as_ref().unwrap().iter().any(|e| e.name == "LOG"));
        assert_eq!(pod.priority_class_name.as_deref(), Some("high"));
        assert_eq!(pod.node_selector.unwrap()["pool"], "agents");
        assert_eq!(
            pod.tolerations.unwrap()[0].key.as_deref(),
            Some("dedicated")
        );
    }

    #[test]
    fn termination_grace_covers_the_invocation_deadline() {
        let d = build(WEATHER);
        assert_eq!(pod(&d).termination_grace_period_seconds, Some(70));
    }
}
