//! The chart's `runtimeResources` reach the operator as a value its `--runtime-resources` parser
//! takes, and the Deployments it builds carry them for Agents that set no `spec.resources`; its
//! `telemetry` values reach the operator as the variables it reads and passes on to every
//! runtime container. (`cluster_observability` runs the same through a real install.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentry_operator::build::deployment::{RuntimeImage, default_resources};
use agentry_operator::config::OperatorConfig;
use agentry_tests::chart;
use clap::{CommandFactory, Parser};
use serde_json::Value;

/// The operator container's plain environment, as the chart renders it.
fn operator_env(args: &[&str]) -> Vec<(String, String)> {
    let helm = chart::helm();
    let docs = chart::render(&helm, "agentry-system", args);
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("the chart renders the operator Deployment");
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("the operator container has env");
    env.iter()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_string(),
                e["value"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// The operator container's `AGENTRY_RUNTIME_RESOURCES`, as the chart renders it.
fn rendered(args: &[&str]) -> Option<String> {
    operator_env(args)
        .into_iter()
        .find(|(name, _)| name == "AGENTRY_RUNTIME_RESOURCES")
        .map(|(_, value)| value)
}

/// The operator's configuration from `env`: each variable given as the flag that reads it (the
/// test process' own environment is left alone).
fn config_from(env: &[(String, String)]) -> Result<OperatorConfig, String> {
    let command = OperatorConfig::command();
    let mut args = vec!["agentry-operator".to_string()];
    for (name, value) in env {
        let flag = command
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == name.as_str()))
            .and_then(|a| a.get_long());
        if let Some(flag) = flag {
            args.push(format!("--{flag}={value}"));
        }
    }
    OperatorConfig::try_parse_from(args).map_err(|e| e.to_string())
}

fn parsed(value: &str) -> RuntimeImage {
    let config = OperatorConfig::try_parse_from(["agentry-operator", "--runtime-resources", value])
        .unwrap_or_else(|e| panic!("the operator refuses the chart's value {value}: {e}"));
    RuntimeImage {
        resources: config.runtime_resources,
        ..RuntimeImage::default()
    }
}

#[test]
fn the_default_values_give_the_operator_its_own_measured_defaults() {
    let value = rendered(&[]).expect("runtimeResources is rendered by default");
    assert_eq!(parsed(&value).resources, Some(default_resources()));
}

#[test]
fn overridden_values_reach_the_operator_and_a_chart_without_them_leaves_the_defaults() {
    let value = rendered(&[
        "--set",
        "runtimeResources.requests.cpu=250m",
        "--set",
        "runtimeResources.requests.memory=128Mi",
    ])
    .unwrap();
    let resources = parsed(&value).resources.unwrap();
    let requests = resources.requests.unwrap();
    assert_eq!(requests["cpu"].0, "250m");
    assert_eq!(requests["memory"].0, "128Mi");
    assert_eq!(resources.limits.unwrap()["memory"].0, "256Mi");

    assert_eq!(rendered(&["--set", "runtimeResources=null"]), None);
    let value: Value = serde_json::from_str(&rendered(&[]).unwrap()).unwrap();
    assert_eq!(value["requests"]["cpu"], "100m");
}

#[test]
fn telemetry_values_reach_the_operator_as_the_variables_it_passes_to_every_runtime() {
    assert!(
        config_from(&operator_env(&[]))
            .unwrap()
            .telemetry
            .runtime_env()
            .unwrap()
            .is_empty(),
        "no telemetry by default"
    );
    let env = operator_env(&[
        "--set",
        "telemetry.otlpEndpoint=http://otel-collector.observability:4318",
        "--set",
        "telemetry.headers.x-tenant=team-a",
        "--set",
        "telemetry.headers.x-env=prod",
        "--set",
        "telemetry.sampler=parentbased_traceidratio",
        "--set",
        "telemetry.samplerArg=0.25",
        "--set",
        "telemetry.captureContent=true",
        "--set",
        "telemetry.modelPrices.anthropic\\.claude-3-haiku-20240307-v1:0.input=0.25",
        "--set",
        "telemetry.modelPrices.anthropic\\.claude-3-haiku-20240307-v1:0.output=1.25",
        "--set",
        "telemetry.modelPrices.anthropic\\.claude-3-haiku-20240307-v1:0.cacheRead=0.03",
    ]);
    let config = config_from(&env).unwrap_or_else(|e| panic!("the operator refuses {env:?}: {e}"));
    let passed = config.telemetry.runtime_env().unwrap();
    let get = |name: &str| {
        passed
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{name} is not passed on: {passed:?}"))
    };
    assert_eq!(
        get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        "http://otel-collector.observability:4318"
    );
    assert_eq!(
        get("OTEL_EXPORTER_OTLP_HEADERS"),
        "x-env=prod,x-tenant=team-a"
    );
    assert_eq!(get("OTEL_TRACES_SAMPLER"), "parentbased_traceidratio");
    assert_eq!(get("OTEL_TRACES_SAMPLER_ARG"), "0.25");
    assert_eq!(
        get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"),
        "true"
    );
    let prices: Value = serde_json::from_str(get("AGENTRY_MODEL_PRICES")).unwrap();
    assert_eq!(
        prices,
        serde_json::json!({"anthropic.claude-3-haiku-20240307-v1:0":
            {"input": 0.25, "output": 1.25, "cacheRead": 0.03}})
    );
    // Every telemetry variable the chart renders is one the operator reads.
    let telemetry: Vec<&(String, String)> = env
        .iter()
        .filter(|(n, _)| n.starts_with("OTEL_") || n == "AGENTRY_MODEL_PRICES")
        .collect();
    assert_eq!(telemetry.len(), passed.len(), "{telemetry:?}");
}

#[test]
fn telemetry_that_would_be_ignored_fails_the_install_naming_the_value() {
    let helm = chart::helm();
    for (args, says) in [
        (
            vec!["--set", "telemetry.sampler=always_on"],
            "telemetry.sampler needs telemetry.otlpEndpoint",
        ),
        (
            vec!["--set", "telemetry.captureContent=true"],
            "telemetry.captureContent needs telemetry.otlpEndpoint",
        ),
        (
            vec![
                "--set",
                "telemetry.otlpEndpoint=http://c:4318",
                "--set",
                "telemetry.samplerArg=0",
            ],
            "telemetry.samplerArg needs telemetry.sampler",
        ),
        (
            vec![
                "--set",
                "telemetry.otlpEndpoint=http://c:4318",
                "--set",
                "telemetry.sampler=traceidratio",
            ],
            "telemetry.sampler traceidratio needs telemetry.samplerArg",
        ),
    ] {
        let err = chart::try_render(&helm, "agentry-system", &args).unwrap_err();
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // Prices alone are fine: the cost metric is scraped, not exported.
    let env = operator_env(&[
        "--set",
        "telemetry.modelPrices.m.input=1",
        "--set",
        "telemetry.modelPrices.m.output=2",
    ]);
    let passed = config_from(&env).unwrap().telemetry.runtime_env().unwrap();
    assert_eq!(
        passed,
        [(
            "AGENTRY_MODEL_PRICES".to_string(),
            r#"{"m":{"input":1,"output":2}}"#.to_string()
        )]
    );
}
