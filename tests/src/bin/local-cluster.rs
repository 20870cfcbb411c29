//! `local-cluster`: the tests' local control plane (etcd, kube-apiserver, controller-manager,
//! scheduler and kwok's simulated node) with the Agent CRD and the operator running against it,
//! so a newcomer can watch Agentry work without a cluster. Built on first use (the control plane
//! by `tests/k8s/build`, ~5 minutes on 2 cores, then cached). Stops everything on Ctrl-C.
//!
//! ```sh
//! cargo run -p agentry-tests --bin local-cluster            # prints: export KUBECONFIG=...
//! kubectl apply -f examples/ && kubectl get agents
//! ```
//!
//! `--no-operator` starts only the control plane (to run the operator yourself).

// A developer tool: when setting up fails, stopping loudly with the reason is the right outcome.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write;
use std::time::Duration;

use agentry_tests::cluster;
use agentry_tests::k8s::Cluster;
use agentry_tests::process::{Process, binary};

fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "local-cluster: {line}");
}

#[tokio::main]
async fn main() {
    let with_operator = !std::env::args().any(|a| a == "--no-operator");
    say("starting the control plane (the first run builds it: ~5 min)");
    let cluster = Cluster::private();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client)
        .await
        .expect("the Agent CRD installs");
    // The pods of the examples' namespace are checked by the restricted Pod Security profile,
    // as on a well-run cluster.
    cluster.kubectl_ok(
        &[
            "label",
            "namespace",
            "default",
            "pod-security.kubernetes.io/enforce=restricted",
            "--overwrite",
        ],
        None,
    );
    // A stable path, so a second shell can use the same export line.
    let stable = std::env::temp_dir().join("agentry-local-cluster.kubeconfig");
    std::fs::copy(cluster.kubeconfig(), &stable).expect("kubeconfig copied");
    let kubeconfig = stable.to_string_lossy().into_owned();

    let operator = with_operator.then(|| {
        let p = Process::start(
            "agentry-operator",
            &binary("agentry-operator", "agentry-operator"),
            &["--leader-election", "false", "--listen", "127.0.0.1:18080"],
            &[("KUBECONFIG", &kubeconfig), ("RUST_LOG", "info,kube=warn")],
        );
        assert!(
            p.wait_for_log("starting the Agent controller", Duration::from_secs(60)),
            "the operator did not start:\n{}",
            p.log()
        );
        p
    });

    println!("export KUBECONFIG={kubeconfig}");
    say("ready. In another shell:");
    say(&format!("  export KUBECONFIG={kubeconfig}"));
    say("  kubectl apply -f examples/ && kubectl get agents -w");
    if operator.is_some() {
        say("operator metrics: http://127.0.0.1:18080/metrics; its log follows here");
    }
    say("Ctrl-C stops everything");

    let mut printed = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if let Some(op) = &operator {
                    let log = op.log();
                    if log.len() > printed {
                        let _ = std::io::stderr().write_all(&log.as_bytes()[printed..]);
                        printed = log.len();
                    }
                }
            }
        }
    }
    say("stopping");
    drop(operator);
    drop(cluster);
    let _ = std::fs::remove_file(&stable);
}
