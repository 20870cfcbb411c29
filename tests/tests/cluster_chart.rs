//! Cluster suite for the Helm chart: `helm install` (Helm v3) into the control plane, in the
//! cluster-wide and the `watchNamespaces` shape, with the operator process running as the
//! chart's ServiceAccount (a TokenRequest token), so the chart's RBAC is exactly what it has.
//! In namespaces that enforce the restricted Pod Security profile the operator's pod and every
//! example Agent's pods are admitted and become Ready; in namespaced mode the operator leaves
//! other namespaces alone and `kubectl auth can-i` shows least privilege; `helm uninstall`
//! leaves nothing of the release behind, and the Agents' children go with their Agents.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use agentry_operator::rbac::{API_ACCESS, Scope};
use agentry_tests::chart;
use agentry_tests::cluster::{self, RESTRICTED, TestNamespace};
use agentry_tests::k8s::Cluster;
use agentry_tests::operator::OperatorProcess;
use agentry_tests::process::Process;

fn helm(helm: &Path, cluster: &Cluster, args: &[&str]) -> (bool, String) {
    chart::helm_with_kubeconfig(helm, cluster.kubeconfig(), args)
}

/// `kubectl get` of `what` with `selector`, as `kind/name` lines (empty when none).
fn names(cluster: &Cluster, what: &str, selector: &str, ns: Option<&str>) -> Vec<String> {
    let mut args = vec!["get", what, "-l", selector, "-o", "name"];
    match ns {
        Some(ns) => args.extend(["-n", ns]),
        None => args.push("-A"),
    }
    let (ok, out) = cluster.kubectl(&args, None);
    assert!(ok, "kubectl get {what}: {out}");
    out.lines().map(str::to_string).collect()
}

fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("timed out after {timeout:?} waiting for {what}");
    false
}

fn resource_arg(group: &str, resource: &str) -> Vec<String> {
    match resource.split_once('/') {
        Some((res, sub)) if group.is_empty() => vec![res.into(), format!("--subresource={sub}")],
        Some((res, sub)) => vec![format!("{res}.{group}"), format!("--subresource={sub}")],
        None if group.is_empty() => vec![resource.into()],
        None => vec![format!("{resource}.{group}")],
    }
}

fn can_i(cluster: &Cluster, sa: &str, verb: &str, resource: &[String], ns: Option<&str>) -> bool {
    let mut args = vec!["auth", "can-i", verb];
    args.extend(resource.iter().map(String::as_str));
    args.extend(["--as", sa]);
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    // stdout first; kubectl may add a warning on stderr.
    cluster.kubectl(&args, None).1.lines().next() == Some("yes")
}

/// The namespaced shape's permissions: every declared verb allowed where it is needed, and
/// nothing more (Secrets; other namespaces).
fn check_least_privilege(
    cluster: &Cluster,
    sa: &str,
    release_ns: &str,
    watched: &str,
    other: &str,
    failures: &mut Vec<String>,
) {
    for a in API_ACCESS {
        let ns = match a.scope {
            Scope::Watched => Some(watched),
            Scope::Own => Some(release_ns),
            Scope::Cluster => None,
        };
        for verb in a.verbs {
            let mut res = resource_arg(a.group, a.resource);
            if let Some(n) = a.resource_names.first() {
                res[0] = format!("{}/{n}", res[0]);
            }
            if !can_i(cluster, sa, verb, &res, ns) {
                failures.push(format!("denied: {verb} {res:?} in {ns:?}"));
            }
        }
    }
    for (verb, res, ns) in [
        ("get", "secrets", Some(watched)),
        ("list", "secrets", None),
        ("list", "deployments.apps", Some(other)),
        ("patch", "agents.agentry.dev", Some(other)),
        ("list", "configmaps", None),
        ("delete", "deployments.apps", Some(watched)),
    ] {
        if can_i(cluster, sa, verb, &[res.to_string()], ns) {
            failures.push(format!("allowed but must not be: {verb} {res} in {ns:?}"));
        }
    }
}

/// One install, use and uninstall of the chart; `watch` selects the namespaced shape.
async fn install_use_uninstall(cluster: &Cluster, release: &str, namespaced: bool) -> Vec<String> {
    let helm_bin = chart::helm();
    let client = cluster.client().await;
    let mut failures = Vec::new();
    let release_ns = TestNamespace::create_with_labels(&client, "agentry-sys", &[RESTRICTED])
        .await
        .unwrap();
    let team = TestNamespace::create_with_labels(&client, "agentry-team", &[RESTRICTED])
        .await
        .unwrap();
    let other = TestNamespace::create_with_labels(&client, "agentry-other", &[RESTRICTED])
        .await
        .unwrap();

    // The restricted profile is enforced for real: a pod that sets no security context (fine
    // under the baseline profile) is refused.
    let privileged = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unhardened"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    });
    let (ok, out) = cluster.kubectl(
        &["apply", "-n", &team.name, "-f", "-"],
        Some(&privileged.to_string()),
    );
    if ok || !out.contains("violates PodSecurity") {
        failures.push(format!(
            "PodSecurity did not refuse an unhardened pod: {out}"
        ));
    }

    let mut args = vec![
        "install",
        release,
        "charts/agentry",
        "-n",
        &release_ns.name,
        "--wait",
        "--timeout",
        "120s",
    ];
    let watch = format!("watchNamespaces={{{}}}", team.name);
    if namespaced {
        args.extend(["--set", &watch]);
    }
    let (ok, out) = helm(&helm_bin, cluster, &args);
    assert!(ok, "helm install {release} failed:\n{out}");

    let operator = OperatorProcess {
        namespace: &release_ns.name,
        deployment: release,
        identity: &format!("{release}-0"),
        listen: "127.0.0.1:18281",
    }
    .start(cluster)
    .await;
    assert!(
        operator.wait_for_log("starting the Agent controller", Duration::from_secs(60)),
        "the operator did not start as the chart's ServiceAccount:\n{}",
        operator.log()
    );

    let agents = cluster::apply_examples(&client, &team.name).await;
    for agent in &agents {
        let (ok, out) = cluster.kubectl(
            &[
                "wait",
                "--for=condition=Ready",
                &format!("agent/{agent}"),
                "-n",
                &team.name,
                "--timeout=120s",
            ],
            None,
        );
        if !ok {
            let (_, status) = cluster.kubectl(
                &["get", "agent", agent, "-n", &team.name, "-o", "yaml"],
                None,
            );
            failures.push(format!("agent {agent} not Ready: {out}\n{status}"));
        }
    }
    // Every runtime pod was admitted by the restricted profile and runs.
    let pods = names(cluster, "pods", "agentry.dev/agent", Some(&team.name));
    let (_, phases) = cluster.kubectl(
        &[
            "get",
            "pods",
            "-n",
            &team.name,
            "-l",
            "agentry.dev/agent",
            "-o",
            "jsonpath={.items[*].status.phase}",
        ],
        None,
    );
    if pods.is_empty() || phases.split_whitespace().any(|p| p != "Running") {
        failures.push(format!("runtime pods not all Running: {pods:?} {phases}"));
    }

    // An Agent outside the watched namespaces: reconciled cluster-wide, left alone otherwise.
    let outsider = serde_json::json!({
        "apiVersion": "agentry.dev/v1alpha1", "kind": "Agent", "metadata": {"name": "outsider"},
        "spec": {"model": {"id": "anthropic.claude-3-haiku-20240307-v1:0"}, "systemPrompt": "Hi."},
    });
    cluster::apply_document(&client, &other.name, &outsider)
        .await
        .expect("outsider applies");
    let reconciled = eventually("the outsider's Deployment", Duration::from_secs(10), || {
        cluster
            .kubectl(&["get", "deployment", "outsider", "-n", &other.name], None)
            .0
    });
    if reconciled == namespaced {
        failures.push(format!(
            "an Agent outside watchNamespaces was {} (namespaced: {namespaced})",
            if reconciled { "reconciled" } else { "ignored" }
        ));
    }
    let log = operator.log();
    if log.contains("forbidden") {
        failures.push(format!("the operator hit RBAC denials:\n{log}"));
    }

    if namespaced {
        let sa = format!("system:serviceaccount:{}:{release}", release_ns.name);
        check_least_privilege(
            cluster,
            &sa,
            &release_ns.name,
            &team.name,
            &other.name,
            &mut failures,
        );
    }

    // Uninstall: nothing of the release is left; the Agents' children go with their Agents.
    drop::<Process>(operator);
    let (ok, out) = helm(
        &helm_bin,
        cluster,
        &["uninstall", release, "-n", &release_ns.name, "--wait"],
    );
    assert!(ok, "helm uninstall failed:\n{out}");
    let instance = format!("app.kubernetes.io/instance={release}");
    let left = names(
        cluster,
        "deployments,services,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings",
        &instance,
        None,
    );
    if !left.is_empty() {
        failures.push(format!("helm uninstall left {left:?}"));
    }
    for ns in [&team.name, &other.name] {
        cluster.kubectl_ok(
            &["delete", "agents", "--all", "-n", ns, "--wait=false"],
            None,
        );
    }
    let selector = "app.kubernetes.io/managed-by=agentry-operator";
    let kinds = "deployments,services,configmaps,serviceaccounts,poddisruptionbudgets";
    let collected = eventually(
        "children garbage-collected",
        Duration::from_secs(60),
        || {
            [&team.name, &other.name]
                .iter()
                .all(|ns| names(cluster, kinds, selector, Some(ns)).is_empty())
        },
    );
    if !collected {
        failures.push(format!(
            "children left after their Agents were deleted: {:?}",
            names(cluster, kinds, selector, None)
        ));
    }
    for ns in [release_ns, team, other] {
        ns.delete().await;
    }
    failures
}

#[tokio::test]
async fn chart_installs_with_helm_and_its_operator_runs_the_examples_in_both_shapes() {
    let cluster = Cluster::shared();
    let mut failures = Vec::new();
    for (release, namespaced) in [("agentry-wide", false), ("agentry-scoped", true)] {
        for f in install_use_uninstall(&cluster, release, namespaced).await {
            failures.push(format!("[{release}] {f}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
