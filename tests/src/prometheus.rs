//! Prometheus' tools for the chart's dashboard, alerts and monitors: `promtool`,
//! `promql-metrics` (the metric names of PromQL expressions, by Prometheus' own parser) and
//! `monitoring-check` (Prometheus Operator objects decoded strictly into its own types), built by
//! `tests/prometheus/build` and cached outside the work tree; and the names a `/metrics` page
//! describes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// Where the binaries are: `AGENTRY_PROMETHEUS_BIN`, else what `tests/prometheus/build` built
/// (on first use, printing progress; about 5 minutes on 2 cores with empty Go caches).
///
/// # Panics
/// When they cannot be built: the message says what is missing.
pub fn binaries() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("AGENTRY_PROMETHEUS_BIN") {
            return PathBuf::from(dir);
        }
        let script = crate::fixtures::repo_root().join("tests/prometheus/build");
        let out = Command::new(&script)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "building promtool failed (tests/prometheus/build; it needs the Go toolchain and the \
             Go module proxy). Its output is above."
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
    })
    .clone()
}

/// `promtool <args>` in `dir`.
///
/// # Panics
/// When promtool cannot be started.
pub fn promtool(dir: &Path, args: &[&str]) -> Output {
    Command::new(binaries().join("promtool"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("promtool runs")
}

/// For each expression, the metric names it selects, or why Prometheus' parser refuses it.
///
/// # Panics
/// When promql-metrics cannot be run or answers something else than one result per expression.
pub fn metric_names(exprs: &[String]) -> Vec<Result<Vec<String>, String>> {
    let mut child = Command::new(binaries().join("promql-metrics"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promql-metrics runs");
    let input = serde_json::to_vec(exprs).expect("strings serialize");
    child
        .stdin
        .take()
        .expect("a stdin pipe")
        .write_all(&input)
        .expect("promql-metrics reads its input");
    let out = child.wait_with_output().expect("promql-metrics output");
    assert!(
        out.status.success(),
        "promql-metrics failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON array");
    assert_eq!(results.len(), exprs.len(), "one result per expression");
    results
        .into_iter()
        .map(|r| match r["error"].as_str() {
            Some(e) => Err(e.to_string()),
            None => Ok(r["metrics"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m.as_str().map(str::to_string))
                .collect()),
        })
        .collect()
}

/// Decodes Prometheus Operator objects strictly into the Prometheus Operator's Go types: `Ok`
/// with one `ok <kind> <name>` line per object, or `Err` naming each refused object and why.
///
/// # Panics
/// When monitoring-check cannot be run.
pub fn check_monitoring(objects: &[&Value]) -> Result<Vec<String>, String> {
    let mut child = Command::new(binaries().join("monitoring-check"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("monitoring-check runs");
    let input = serde_json::to_vec(objects).expect("objects serialize");
    child
        .stdin
        .take()
        .expect("a stdin pipe")
        .write_all(&input)
        .expect("monitoring-check reads its input");
    let out = child.wait_with_output().expect("monitoring-check output");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(said.lines().map(str::to_string).collect())
    } else {
        Err(format!("{said}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// The metric families a `/metrics` page describes, from its `# TYPE <name> <type>` lines:
/// name to type. (prometheus-client describes a family once it has a series.)
pub fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_string(), kind.trim().to_string()))
        .collect()
}

/// Whether a query's metric `name` is a series of one of `families`: a gauge or untyped family
/// by its own name, a counter by its name plus `_total` (OpenMetrics names the family without
/// it; the text format may keep it), a histogram's `_bucket`, `_sum` and `_count`, a summary's
/// `_sum` and `_count`.
pub fn exported(name: &str, families: &BTreeMap<String, String>) -> bool {
    let kind = |family: &str| families.get(family).map(String::as_str);
    if matches!(
        kind(name),
        Some("gauge" | "unknown" | "untyped" | "stateset" | "info")
    ) {
        return true;
    }
    // A counter's TYPE line may name it with or without `_total`; its series always have it.
    if let Some(family) = name.strip_suffix("_total")
        && (kind(family) == Some("counter") || kind(name) == Some("counter"))
    {
        return true;
    }
    if let Some(family) = name.strip_suffix("_bucket") {
        return matches!(kind(family), Some("histogram" | "gaugehistogram"));
    }
    for suffix in ["_sum", "_count"] {
        if let Some(family) = name.strip_suffix(suffix)
            && matches!(kind(family), Some("histogram" | "summary"))
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_names_match_their_family_by_type_and_suffix() {
        let page = "# HELP a_calls Calls.\n# TYPE a_calls counter\na_calls_total 1\n\
                    # TYPE a_seconds histogram\n# TYPE a_in_flight gauge\n\
                    # TYPE b_summary summary\n# TYPE c_total counter\n# EOF\n";
        let f = families(page);
        for yes in [
            "a_calls_total",
            "a_seconds_bucket",
            "a_seconds_sum",
            "a_seconds_count",
            "a_in_flight",
            "b_summary_sum",
            "c_total",
        ] {
            assert!(exported(yes, &f), "{yes}");
        }
        for no in [
            "a_calls",
            "a_seconds",
            "a_in_flight_total",
            "a_calls_bucket",
            "b_summary_bucket",
            "b_summary",
            "missing_total",
        ] {
            assert!(!exported(no, &f), "{no}");
        }
    }
}
