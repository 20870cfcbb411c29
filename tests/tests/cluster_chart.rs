//! Cluster suite for the Helm chart: the rendered chart passes server-side dry-run apply, and
//! once its RBAC is installed `kubectl auth can-i` as the operator's ServiceAccount allows every
//! declared verb and denies what it must not have (Secrets; anything namespaced outside the
//! watched namespaces in namespaced mode).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use agentry_operator::rbac::{API_ACCESS, Scope};
use agentry_tests::chart;
use agentry_tests::cluster::{TestNamespace, unique_name};
use agentry_tests::k8s::Cluster;

fn kubectl(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("kubectl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn render_yaml(helm: &std::path::Path, ns: &str, args: &[&str]) -> String {
    let out = Command::new(helm)
        .args(["template", "agentry", "charts/agentry", "-n", ns])
        .args(args)
        .current_dir(agentry_tests::fixtures::repo_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn can_i(sa: &str, verb: &str, resource: &str, ns: Option<&str>) -> bool {
    let mut args = vec!["auth", "can-i", verb, resource, "--as", sa];
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    kubectl(&args, None).1.trim() == "yes"
}

fn resource_arg(group: &str, resource: &str) -> String {
    match resource.split_once('/') {
        Some((res, sub)) if group.is_empty() => format!("{res} --subresource={sub}"),
        Some((res, sub)) => format!("{res}.{group} --subresource={sub}"),
        None if group.is_empty() => resource.to_string(),
        None => format!("{resource}.{group}"),
    }
}

#[tokio::test]
async fn rendered_chart_passes_server_dry_run_and_rbac_is_least_privilege() {
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    let Some(helm) = chart::helm_or_skip("cluster_chart") else {
        return;
    };
    let release_ns = TestNamespace::create(&client, "agentry-chart")
        .await
        .expect("namespace");
    let watched = TestNamespace::create(&client, "agentry-watched")
        .await
        .expect("namespace");
    let other = TestNamespace::create(&client, "agentry-other")
        .await
        .expect("namespace");
    let name = unique_name("agentry-t");
    let sa = format!("system:serviceaccount:{}:{name}", release_ns.name);
    let mut failures = Vec::new();

    // Default shape, whole chart (CRD included): the API server accepts it.
    let all = render_yaml(
        &helm,
        &release_ns.name,
        &[
            "--include-crds",
            "--set",
            &format!("fullnameOverride={name}"),
        ],
    );
    let (ok, out) = kubectl(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=agentry-tests",
            "-f",
            "-",
        ],
        Some(&all),
    );
    if !ok {
        failures.push(format!(
            "server dry-run of the default chart failed:\n{out}"
        ));
    }

    // Namespaced shape, RBAC installed for real.
    let watch = format!("watchNamespaces={{{}}}", watched.name);
    let namespaced = render_yaml(
        &helm,
        &release_ns.name,
        &[
            "--set",
            &watch,
            "--set",
            &format!("fullnameOverride={name}"),
        ],
    );
    let (ok, out) = kubectl(
        &[
            "apply",
            "--server-side",
            "--field-manager=agentry-tests",
            "-f",
            "-",
        ],
        Some(&namespaced),
    );
    assert!(ok, "applying the namespaced chart failed:\n{out}");
    for a in API_ACCESS {
        let ns = match a.scope {
            Scope::Watched => Some(watched.name.as_str()),
            Scope::Own => Some(release_ns.name.as_str()),
            Scope::Cluster => None,
        };
        for verb in a.verbs {
            let mut res = resource_arg(a.group, a.resource);
            if let Some(n) = a.resource_names.first() {
                res = format!("{res}/{n}");
            }
            let parts: Vec<&str> = res.split(' ').collect();
            let mut args = vec!["auth", "can-i", *verb];
            args.extend(parts.iter().copied());
            args.extend(["--as", sa.as_str()]);
            if let Some(ns) = ns {
                args.extend(["-n", ns]);
            }
            if kubectl(&args, None).1.trim() != "yes" {
                failures.push(format!("denied: {verb} {res} in {ns:?}"));
            }
        }
    }
    for (verb, res, ns) in [
        ("get", "secrets", Some(watched.name.as_str())),
        ("list", "secrets", None),
        ("list", "deployments.apps", Some(other.name.as_str())),
        ("patch", "agents.agentry.dev", Some(other.name.as_str())),
        ("list", "configmaps", None),
        ("delete", "deployments.apps", Some(watched.name.as_str())),
    ] {
        if can_i(&sa, verb, res, ns) {
            failures.push(format!("allowed but must not be: {verb} {res} in {ns:?}"));
        }
    }

    // Clean up the cluster-scoped objects; namespaced ones go with their namespaces.
    let _ = kubectl(
        &[
            "delete",
            "clusterrole,clusterrolebinding",
            &format!("{name}-crd"),
            "--ignore-not-found",
        ],
        None,
    );
    for ns in [release_ns, watched, other] {
        ns.delete().await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
