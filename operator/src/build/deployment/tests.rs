//! Tests of the parent module.

use super::*;
use crate::build::fixtures::{MINIMAL, WEATHER, validated};

fn runtime() -> RuntimeImage {
    RuntimeImage {
        image: "registry.example/agentry-runtime:1.0.0".into(),
        pull_policy: None,
        pull_secrets: vec![],
        resources: None,
        env: vec![],
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
fn mcp_secret_headers_reach_the_pod_like_http_ones() {
    let yaml = WEATHER.replace(
        "      agent: {name: travel}\n",
        "      agent: {name: travel}\n    - name: k8s\n      description: Kubernetes tools.\n      mcp:\n        \
         url: http://tools.example.com/mcp\n        headers:\n          - name: authorization\n            \
         valueFrom: {secretKeyRef: {name: kagent-token, key: bearer}}\n"
    );
    let d = build(&yaml);
    let env = pod(&d).containers[0].env.clone().unwrap();
    let var = env
        .iter()
        .find(|e| e.name == "AGENTRY_TOOL2_HEADER0")
        .expect("the mcp tool's header variable");
    let key = var
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (key.name.as_str(), key.key.as_str()),
        ("kagent-token", "bearer")
    );
}

const MEMORY: &str = "  memory:\n    url: {secretKeyRef: {name: hello-store, key: url}}\n";

#[test]
fn memory_url_reaches_the_pod_from_its_secret_key_and_never_as_a_value() {
    let d = build(&format!("{MINIMAL}{MEMORY}"));
    let env = pod(&d).containers[0].env.clone().unwrap();
    let vars: Vec<&EnvVar> = env
        .iter()
        .filter(|e| e.name == "AGENTRY_MEMORY_URL")
        .collect();
    assert_eq!(vars.len(), 1, "{env:?}");
    assert!(vars[0].value.is_none());
    assert_eq!(
        vars[0].value_from.as_ref().unwrap().secret_key_ref,
        Some(SecretKeySelector {
            name: "hello-store".into(),
            key: "url".into(),
            optional: Some(false),
        })
    );
}

#[test]
fn an_agent_without_memory_gets_no_memory_url_variable() {
    let env = pod(&build(MINIMAL)).containers[0].env.clone().unwrap();
    assert!(
        env.iter().all(|e| e.name != "AGENTRY_MEMORY_URL"),
        "{env:?}"
    );
}

#[test]
fn a_chart_default_named_like_the_memory_url_variable_does_not_duplicate_it() {
    let r = RuntimeImage {
        env: vec![("AGENTRY_MEMORY_URL".into(), "redis://chart:6379".into())],
        ..runtime()
    };
    let d = build_with(&format!("{MINIMAL}{MEMORY}"), &r);
    let env = pod(&d).containers[0].env.clone().unwrap();
    let vars: Vec<&EnvVar> = env
        .iter()
        .filter(|e| e.name == "AGENTRY_MEMORY_URL")
        .collect();
    assert_eq!(vars.len(), 1, "{env:?}");
    assert!(
        vars[0].value_from.is_some(),
        "the Secret's, not the chart's"
    );
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
fn termination_grace_covers_the_drain_delay_and_the_invocation_deadline() {
    let d = build(WEATHER);
    assert_eq!(pod(&d).termination_grace_period_seconds, Some(75));
}

#[test]
fn chart_runtime_resources_apply_when_the_agent_sets_none_and_the_agents_own_win() {
    let requests = |d: &Deployment| {
        let c = &pod(d).containers[0];
        let r = c.resources.as_ref().unwrap();
        (
            r.requests.as_ref().unwrap()["cpu"].0.clone(),
            r.requests.as_ref().unwrap()["memory"].0.clone(),
        )
    };
    assert_eq!(
        requests(&build(MINIMAL)),
        ("100m".to_string(), "64Mi".to_string())
    );
    let chart: ResourceRequirements =
        serde_json::from_str(r#"{"requests": {"cpu": "250m", "memory": "128Mi"}}"#).unwrap();
    let r = RuntimeImage {
        resources: Some(chart),
        ..runtime()
    };
    assert_eq!(
        requests(&build_with(MINIMAL, &r)),
        ("250m".to_string(), "128Mi".to_string())
    );
    let own = format!("{MINIMAL}  resources: {{requests: {{cpu: 1, memory: 1Gi}}}}\n");
    assert_eq!(
        requests(&build_with(&own, &r)),
        ("1".to_string(), "1Gi".to_string())
    );
}

fn telemetry() -> RuntimeImage {
    RuntimeImage {
        env: vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                "http://collector:4318".into(),
            ),
            ("OTEL_TRACES_SAMPLER".into(), "always_on".into()),
        ],
        ..runtime()
    }
}

fn plain_env(d: &Deployment) -> Vec<(String, Option<String>)> {
    pod(d).containers[0]
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect()
}

#[test]
fn the_operators_telemetry_settings_reach_every_runtime_container_as_plain_variables() {
    let env = plain_env(&build_with(MINIMAL, &telemetry()));
    assert_eq!(
        env,
        [
            (
                "AGENTRY_CONFIG".to_string(),
                Some("/etc/agentry/config.json".to_string())
            ),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(),
                Some("http://collector:4318".to_string())
            ),
            (
                "OTEL_TRACES_SAMPLER".to_string(),
                Some("always_on".to_string())
            ),
        ]
    );
    let none = plain_env(&build(MINIMAL));
    assert_eq!(none.len(), 1, "{none:?}");
}

#[test]
fn an_agents_own_variable_wins_over_the_operators_and_appears_once() {
    let yaml = format!(
        "{MINIMAL}  env:\n    - {{name: OTEL_TRACES_SAMPLER, value: always_off}}\n    - name: \
         OTEL_EXPORTER_OTLP_HEADERS\n      valueFrom: {{secretKeyRef: {{name: otlp, key: headers}}}}\n"
    );
    let d = build_with(&yaml, &telemetry());
    let env = pod(&d).containers[0].env.clone().unwrap();
    let named = |n: &str| env.iter().filter(|e| e.name == n).collect::<Vec<_>>();
    let sampler = named("OTEL_TRACES_SAMPLER");
    assert_eq!(sampler.len(), 1);
    assert_eq!(sampler[0].value.as_deref(), Some("always_off"));
    let headers = named("OTEL_EXPORTER_OTLP_HEADERS");
    assert_eq!(headers.len(), 1);
    assert!(headers[0].value_from.is_some());
    // The operator's endpoint is still there, before the Agent's own (which may use $(NAME)).
    let position = |n: &str| env.iter().position(|e| e.name == n).unwrap();
    assert!(position("OTEL_EXPORTER_OTLP_ENDPOINT") < position("OTEL_TRACES_SAMPLER"));
}

#[test]
fn an_agent_with_its_own_collector_does_not_get_the_operators_otlp_headers() {
    let mut image = telemetry();
    image
        .env
        .push(("OTEL_EXPORTER_OTLP_HEADERS".into(), "api-key=chart".into()));
    let yaml = format!(
        "{MINIMAL}  env:\n    - {{name: OTEL_EXPORTER_OTLP_ENDPOINT, value: \"http://own:4318\"}}\n"
    );
    let env = plain_env(&build_with(&yaml, &image));
    let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
    assert!(!names.contains(&"OTEL_EXPORTER_OTLP_HEADERS"), "{env:?}");
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "OTEL_EXPORTER_OTLP_ENDPOINT")
            .count(),
        1
    );
    // Without its own endpoint it gets them.
    let env = plain_env(&build_with(MINIMAL, &image));
    assert!(env.iter().any(|(n, _)| n == "OTEL_EXPORTER_OTLP_HEADERS"));
}
