//! The chart's `runtimeResources` reach the operator as a value its `--runtime-resources` parser
//! takes, and the Deployments it builds carry them for Agents that set no `spec.resources`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentry_operator::build::deployment::{RuntimeImage, default_resources};
use agentry_operator::config::OperatorConfig;
use agentry_tests::chart;
use clap::Parser;
use serde_json::Value;

/// The operator container's `AGENTRY_RUNTIME_RESOURCES`, as the chart renders it.
fn rendered(args: &[&str]) -> Option<String> {
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
        .find(|e| e["name"] == "AGENTRY_RUNTIME_RESOURCES")
        .and_then(|e| e["value"].as_str())
        .map(str::to_string)
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
