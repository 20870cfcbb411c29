//! The real `agentry-runtime --agent FILE`: a manifest the API server would refuse does not
//! run; the process exits non-zero and prints the server's messages, each naming the file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use agentry_tests::process::binary;

const MANIFEST: &str = r#"
apiVersion: agentry.dev/v1alpha1
kind: Agent
metadata: {name: typo}
spec:
  model:
    id: anthropic.claude-3-haiku-20240307-v1:0
    maxTokkens: 5
  systemPromt: You help.
  systemPrompt: You help.
  tools:
    - name: search
      description: Search.
      http:
        url: https://api.example.com/search
        retries: 3
"#;

fn write(name: &str, text: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("agentry-local-{name}-{}.yaml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn run(path: &Path) -> Output {
    std::process::Command::new(binary("agentry-runtime", "agentry-runtime"))
        .args(["--agent", path.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .output()
        .unwrap()
}

#[test]
fn a_manifest_with_typos_exits_non_zero_with_each_of_the_api_servers_messages() {
    let path = write("typos", MANIFEST);
    let out = run(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let p = path.display();
    for line in [
        format!("{p}: the API server would refuse this Agent, so the local run does too:"),
        format!("{p}: .spec.model.maxTokkens: field not declared in schema"),
        format!("{p}: .spec.systemPromt: field not declared in schema"),
        format!("{p}: .spec.tools[0].http.retries: field not declared in schema"),
    ] {
        assert!(
            stderr.lines().any(|l| l.ends_with(&line)),
            "no line ends with {line:?}:\n{stderr}"
        );
    }
    // Refused before anything starts: nothing was served, nothing was called.
    assert!(!stderr.contains(" ready "), "{stderr}");
    std::fs::remove_file(path).ok();
}

#[test]
fn a_manifest_breaking_a_cel_rule_exits_non_zero_with_the_rules_message() {
    let fixed = MANIFEST
        .replace("    maxTokkens: 5\n", "")
        .replace("  systemPromt: You help.\n", "")
        .replace("        retries: 3\n", "        service: {name: search}\n");
    let path = write("cel", &fixed);
    let out = run(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let want = format!(
        "{}: spec.tools[0].http: Invalid value: an http tool sets exactly one of url or service",
        path.display()
    );
    assert!(stderr.lines().any(|l| l == want), "{stderr}");
    std::fs::remove_file(path).ok();
}
