//! Renders the Helm chart with the `helm` binary: from `PATH`, else `.tools/bin/helm` (what
//! `.ci/install-tools` installs). Without Helm a suite skips with a printed reason, except in CI
//! (`CI` set), where a missing Helm is a failure.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// The helm binary, or `None` after printing why the suite skips.
///
/// # Panics
/// In CI, when Helm is missing.
pub fn helm_or_skip(suite: &str) -> Option<PathBuf> {
    let local = crate::fixtures::repo_root().join(".tools/bin/helm");
    let found = if local.exists() {
        Some(local)
    } else if Command::new("helm")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        Some(PathBuf::from("helm"))
    } else {
        None
    };
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "helm is required in CI: run .ci/install-tools first"
        );
        let _ = writeln!(
            std::io::stderr(),
            "skipping `{suite}`: helm not found; run .ci/install-tools to install it into .tools/bin"
        );
    }
    found
}

/// `helm template agentry charts/agentry -n <namespace> <args>`, as JSON documents.
///
/// # Panics
/// When rendering fails.
pub fn render(helm: &PathBuf, namespace: &str, args: &[&str]) -> Vec<Value> {
    let root = crate::fixtures::repo_root();
    let out = Command::new(helm)
        .args(["template", "agentry", "charts/agentry", "-n", namespace])
        .args(args)
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run helm: {e}"));
    assert!(
        out.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let dir = std::env::temp_dir().join(format!(
        "agentry-chart-{}-{}",
        std::process::id(),
        crate::cluster::unique_name("r")
    ));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("rendered.yaml");
    let _ = std::fs::write(&path, text.as_bytes());
    let docs = crate::fixtures::yaml_documents(&path)
        .unwrap_or_else(|e| panic!("rendered chart is not YAML: {e}"));
    let _ = std::fs::remove_dir_all(&dir);
    docs
}
