//! The chart's optional observability objects: the Grafana dashboard ConfigMap, the
//! PrometheusRule and the PodMonitor are off by default and rendered when enabled, from their
//! values; they and the ServiceMonitor decode strictly as the Prometheus Operator's own types;
//! the PodMonitor selects the pods and port the operator builds; the schema refuses wrong types
//! naming the value.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentry_operator::build::deployment::{self, DeploymentInputs, RuntimeImage};
use agentry_operator::build::labels::AGENT_LABEL;
use agentry_tests::{chart, prometheus};
use serde_json::Value;

fn render(args: &[&str]) -> Vec<Value> {
    chart::render(&chart::helm(), "agentry-system", args)
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn dashboard_file() -> Value {
    let path = agentry_tests::fixtures::repo_root().join("charts/agentry/dashboards/agentry.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every panel of the dashboard (rows hold none here; nested ones would count too).
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().unwrap() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

#[test]
fn dashboards_alerts_and_pod_monitor_are_off_by_default() {
    let docs = render(&[]);
    assert!(of_kind(&docs, "PrometheusRule").is_empty());
    assert!(of_kind(&docs, "PodMonitor").is_empty());
    assert!(
        of_kind(&docs, "ConfigMap").is_empty(),
        "no dashboard ConfigMap"
    );
}

#[test]
fn the_dashboard_configmap_carries_the_sidecar_label_and_the_dashboard_file_as_it_is() {
    let docs = render(&["--set", "dashboards.enabled=true"]);
    let cm = of_kind(&docs, "ConfigMap");
    assert_eq!(cm.len(), 1);
    let cm = cm[0];
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(cm["metadata"]["namespace"], "agentry-system");
    let json: Value = serde_json::from_str(cm["data"]["agentry.json"].as_str().unwrap()).unwrap();
    assert_eq!(json, dashboard_file());

    let docs = render(&[
        "--set",
        "dashboards.enabled=true",
        "--set",
        "dashboards.label=dashboards.example.com/grafana",
        "--set",
        "dashboards.labelValue=agentry",
        "--set",
        "dashboards.namespace=monitoring",
        "--set",
        "dashboards.annotations.grafana_folder=Agentry",
    ]);
    let cm = of_kind(&docs, "ConfigMap")[0];
    let labels = &cm["metadata"]["labels"];
    assert_eq!(labels["dashboards.example.com/grafana"], "agentry");
    assert!(labels.get("grafana_dashboard").is_none());
    assert_eq!(cm["metadata"]["namespace"], "monitoring");
    assert_eq!(cm["metadata"]["annotations"]["grafana_folder"], "Agentry");
}

#[test]
fn every_dashboard_query_uses_the_datasource_variable_and_runtime_panels_filter_by_namespace_and_agent()
 {
    let d = dashboard_file();
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(vars, ["datasource", "namespace", "agent"]);
    assert_eq!(d["templating"]["list"][0]["type"], "datasource");
    assert_eq!(d["templating"]["list"][0]["query"], "prometheus");
    let mut ids = Vec::new();
    let mut exprs = 0;
    for p in panels(&d) {
        ids.push(p["id"].as_u64().unwrap());
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
            let expr = t["expr"].as_str().unwrap();
            exprs += 1;
            if expr.contains("agentry_runtime_") || expr.contains("gen_ai_") {
                let selectors = expr.matches('{').count();
                let filtered = expr
                    .matches(r#"namespace=~"$namespace", agent=~"$agent""#)
                    .count();
                assert_eq!(selectors, filtered, "{}: {expr}", p["title"]);
            }
        }
    }
    assert!(exprs >= 20, "{exprs} queries");
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "panel ids are unique");
}

#[test]
fn the_dashboard_covers_what_the_issue_asks_for() {
    let d = dashboard_file();
    let all: String = panels(&d)
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        "agentry_runtime_invocations_total",
        "agentry_runtime_invocation_duration_seconds_bucket",
        "gen_ai_client_token_usage_sum",
        "agentry_runtime_estimated_cost_usd_total",
        "agentry_runtime_tool_calls_total",
        r#"outcome="throttled""#,
        "agentry_runtime_invocations_in_flight",
        "agentry_runtime_max_concurrent_invocations",
        "agentry_operator_reconciliations_total",
        "agentry_operator_reconcile_errors_total",
        "agentry_operator_ready_latency_seconds_bucket",
    ] {
        assert!(all.contains(needle), "no panel uses {needle}");
    }
}

#[test]
fn the_dashboard_and_the_error_alert_count_the_same_outcomes_as_errors() {
    let docs = render(&["--set", "prometheusRule.enabled=true"]);
    let rule = of_kind(&docs, "PrometheusRule")[0];
    let errors = rule["spec"]["groups"][0]["rules"][0]["expr"]
        .as_str()
        .unwrap();
    let set = errors
        .split(r#"outcome=~""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    let d = dashboard_file();
    let error_panel = panels(&d)
        .into_iter()
        .find(|p| p["title"] == "Error ratio")
        .unwrap();
    let expr = error_panel["targets"][0]["expr"].as_str().unwrap();
    assert!(expr.contains(&format!(r#"outcome=~"{set}""#)), "{expr}");
}

#[test]
fn the_prometheus_rule_takes_its_thresholds_and_durations_from_the_values() {
    let docs = render(&[
        "--set",
        "prometheusRule.enabled=true",
        "--set",
        "prometheusRule.labels.release=kube-prometheus-stack",
        "--set",
        "prometheusRule.for=15m",
        "--set",
        "prometheusRule.notReadyFor=30m",
        "--set",
        "prometheusRule.thresholds.errorRatio=0.2",
        "--set",
        "prometheusRule.thresholds.p95LatencySeconds=12.5",
    ]);
    let rule = of_kind(&docs, "PrometheusRule")[0];
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(
        rule["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    let rules: Vec<&Value> = rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    let alert = |name: &str| {
        *rules
            .iter()
            .find(|r| r["alert"] == name)
            .unwrap_or_else(|| panic!("no alert {name}"))
    };
    let names: Vec<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "AgentryAgentErrors",
            "AgentryBedrockThrottling",
            "AgentryInvocationLatencyHigh",
            "AgentryInvocationsOverCapacity",
            "AgentryOperatorReconcileErrors",
            "AgentryAgentsNotReady"
        ]
    );
    let error = alert("AgentryAgentErrors");
    assert!(
        error["expr"]
            .as_str()
            .unwrap()
            .trim_end()
            .ends_with("> 0.2")
    );
    assert_eq!(error["for"], "15m");
    let latency = alert("AgentryInvocationLatencyHigh")["expr"]
        .as_str()
        .unwrap();
    assert!(latency.trim_end().ends_with("> 12.5"), "{latency}");
    let throttling = alert("AgentryBedrockThrottling")["expr"].as_str().unwrap();
    assert!(throttling.trim_end().ends_with("> 0.05"), "the default");
    assert_eq!(alert("AgentryAgentsNotReady")["for"], "30m");
    for r in &rules {
        let summary = r["annotations"]["summary"].as_str().unwrap();
        assert!(
            !summary.contains("{{`") && summary.contains("{{ $"),
            "{summary}"
        );
    }
}

/// The pod template of an Agent's Deployment as the operator builds it.
fn runtime_pod() -> k8s_openapi::api::core::v1::PodTemplateSpec {
    let agent: agentry_crds::Agent = serde_yaml::from_str(
        "apiVersion: agentry.dev/v1alpha1\nkind: Agent\nmetadata: {name: weather, namespace: team-a, \
         uid: u1, generation: 1}\nspec: {model: {id: m}, systemPrompt: p, podLabels: {team: a}}\n",
    )
    .unwrap();
    let validated = agentry_operator::validate::validate(&agent).unwrap();
    let d = deployment::deployment(
        &validated,
        &DeploymentInputs {
            runtime: &RuntimeImage::default(),
            config_hash: "h",
            service_account: "weather",
        },
    );
    d.spec.unwrap().template
}

#[test]
fn the_pod_monitor_selects_the_runtime_pods_the_operator_builds_on_their_port_and_names_the_agent()
{
    let docs = render(&["--set", "podMonitor.enabled=true"]);
    let pm = of_kind(&docs, "PodMonitor");
    assert_eq!(pm.len(), 1);
    let spec = &pm[0]["spec"];
    let template = runtime_pod();
    let labels = template.metadata.unwrap().labels.unwrap();
    for (k, v) in spec["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(labels.get(k).map(String::as_str), v.as_str(), "{k}");
    }
    let expressions = spec["selector"]["matchExpressions"].as_array().unwrap();
    assert_eq!(expressions.len(), 1);
    assert_eq!(expressions[0]["key"], AGENT_LABEL);
    assert_eq!(expressions[0]["operator"], "Exists");
    assert!(labels.contains_key(AGENT_LABEL));
    // The operator's own pod is not an Agent's.
    let operator = &of_kind(&docs, "Deployment")[0]["spec"]["template"]["metadata"]["labels"];
    assert!(operator.get(AGENT_LABEL).is_none());

    let endpoint = &spec["podMetricsEndpoints"][0];
    let container = &template.spec.unwrap().containers[0];
    let ports: Vec<&str> = container
        .ports
        .iter()
        .flatten()
        .filter_map(|p| p.name.as_deref())
        .collect();
    assert_eq!(endpoint["port"].as_str(), ports.first().copied());
    assert_eq!(endpoint["path"], "/metrics");
    assert_eq!(endpoint["interval"], "30s");
    let relabel = &endpoint["relabelings"][0];
    // Prometheus' Kubernetes discovery turns every character that cannot be in a label name
    // into `_`.
    let sanitized: String = AGENT_LABEL
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    assert_eq!(
        relabel["sourceLabels"][0],
        format!("__meta_kubernetes_pod_label_{sanitized}")
    );
    assert_eq!(relabel["targetLabel"], "agent");
    assert_eq!(spec["namespaceSelector"]["any"], true);
}

#[test]
fn the_pod_monitor_looks_only_in_the_watched_namespaces_when_there_are_some() {
    let docs = render(&[
        "--set",
        "podMonitor.enabled=true",
        "--set",
        "watchNamespaces={team-a,team-b}",
        "--set",
        "podMonitor.labels.release=prom",
        "--set",
        "podMonitor.interval=15s",
    ]);
    let pm = of_kind(&docs, "PodMonitor")[0];
    assert_eq!(
        pm["spec"]["namespaceSelector"],
        serde_json::json!({"matchNames": ["team-a", "team-b"]})
    );
    assert_eq!(pm["metadata"]["labels"]["release"], "prom");
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["interval"], "15s");
}

#[test]
fn the_schema_refuses_wrong_types_naming_the_value() {
    let helm = chart::helm();
    for (set, names) in [
        ("dashboards.enabled=yes", "dashboards.enabled"),
        ("dashboards.label=not a label", "dashboards.label"),
        ("prometheusRule.enabled=1", "prometheusRule.enabled"),
        ("prometheusRule.for=ten minutes", "prometheusRule.for"),
        (
            "prometheusRule.thresholds.errorRatio=1.5",
            "prometheusRule.thresholds.errorRatio",
        ),
        (
            "prometheusRule.thresholds.p95LatencySeconds=slow",
            "prometheusRule.thresholds.p95LatencySeconds",
        ),
        (
            "prometheusRule.thresholds.typo=1",
            "prometheusRule.thresholds",
        ),
        ("podMonitor.enabled=on", "podMonitor.enabled"),
        ("podMonitor.interval=often", "podMonitor.interval"),
        (
            "telemetry.otlpEndpoint=collector:4318",
            "telemetry.otlpEndpoint",
        ),
        ("telemetry.sampler=sometimes", "telemetry.sampler"),
        ("telemetry.samplerArg=2", "telemetry.samplerArg"),
        ("telemetry.captureContent=maybe", "telemetry.captureContent"),
        ("telemetry.headers.x-a=1\\,2", "telemetry.headers"),
        (
            "telemetry.modelPrices.m.input=-1,telemetry.modelPrices.m.output=1",
            "telemetry.modelPrices.m.input",
        ),
        ("telemetry.modelPrices.m=3", "telemetry.modelPrices.m"),
    ] {
        let err = chart::try_render(&helm, "agentry-system", &["--set", set])
            .expect_err(&format!("the schema accepted {set}"));
        assert!(err.contains(names), "{set}: {err}");
    }
}

#[test]
fn the_monitors_and_the_rule_decode_strictly_as_the_prometheus_operators_types() {
    let docs = render(&[
        "--set",
        "prometheusRule.enabled=true",
        "--set",
        "podMonitor.enabled=true",
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "watchNamespaces={team-a}",
    ]);
    let objects: Vec<&Value> = docs
        .iter()
        .filter(|d| d["apiVersion"] == "monitoring.coreos.com/v1")
        .collect();
    let checked = prometheus::check_monitoring(&objects).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        checked,
        [
            "ok PodMonitor agentry-agents",
            "ok PrometheusRule agentry",
            "ok ServiceMonitor agentry"
        ]
    );
    // A misspelt field is refused, so the check can fail.
    let mut typo = objects[0].clone();
    typo["spec"]["podMetricsEndpoints"][0]["relabelling"] = serde_json::json!([]);
    let err = prometheus::check_monitoring(&[&typo]).unwrap_err();
    assert!(err.contains("relabelling"), "{err}");
}
