//! The chart's PrometheusRule through Prometheus' own promtool: `check rules` on what the chart
//! renders, and `test rules` (tests/fixtures/alert-rules-test.yaml) showing each alert fires on
//! the series it is for, with its labels and annotations, and stays quiet below its threshold
//! or before its `for`; with a threshold of the values raised, the error alert no longer fires.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use agentry_tests::{chart, cluster, fixtures, prometheus};

/// Renders the chart's rules with `args` as a promtool rule file next to a copy of the rule
/// tests, in a fresh folder.
fn rules_dir(args: &[&str]) -> PathBuf {
    let mut all = vec!["--set", "prometheusRule.enabled=true"];
    all.extend_from_slice(args);
    let docs = chart::render(&chart::helm(), "agentry-system", &all);
    let rule = docs
        .iter()
        .find(|d| d["kind"] == "PrometheusRule")
        .expect("a PrometheusRule");
    let dir = std::env::temp_dir().join(cluster::unique_name("agentry-rules"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("agentry-rules.yaml"),
        serde_yaml::to_string(&rule["spec"]).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        fixtures::repo_root().join("tests/fixtures/alert-rules-test.yaml"),
        dir.join("alert-rules-test.yaml"),
    )
    .unwrap();
    dir
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn promtool_checks_the_rendered_rules() {
    let dir = rules_dir(&[]);
    let out = prometheus::promtool(&dir, &["check", "rules", "agentry-rules.yaml"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("SUCCESS: 6 rules found"), "{said}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn each_alert_fires_on_its_series_and_not_below_its_threshold_or_before_its_for() {
    let dir = rules_dir(&[]);
    let out = prometheus::promtool(&dir, &["test", "rules", "alert-rules-test.yaml"]);
    assert!(out.status.success(), "{}", text(&out));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_rule_tests_fail_when_a_threshold_is_raised_over_the_series() {
    let dir = rules_dir(&["--set", "prometheusRule.thresholds.errorRatio=0.5"]);
    let out = prometheus::promtool(&dir, &["test", "rules", "alert-rules-test.yaml"]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("alertname: AgentryAgentErrors"), "{said}");
    let _ = std::fs::remove_dir_all(dir);
}
