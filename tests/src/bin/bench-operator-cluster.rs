//! Benchmark on a real cluster (`KUBECONFIG`): the time from applying N Agents (default 200)
//! until all their Deployments exist, beside the API server's own floor: server-side applying
//! the same N Deployments and N Services directly, with the same concurrency (16) the operator
//! uses. Target: the operator within 1.5x of the floor.
//!
//! `KUBECONFIG=... cargo run --release -p agentry-tests --bin bench-operator-cluster -- [N]`
//!
//! It creates and deletes its own namespaces, and runs the release operator as a process
//! watching only its namespace, without leader election.

// A benchmark: when its setup fails, stopping loudly is the right outcome.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use agentry_crds::Agent;
use agentry_operator::build::{deployment, service};
use agentry_operator::validate::validate;
use agentry_tests::cluster::{self, FIELD_MANAGER, TestNamespace};
use agentry_tests::k8s::Cluster;
use agentry_tests::process::{Process, release_binary};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

const CONCURRENCY: usize = 16;

fn agent(ns: &str, i: usize) -> Agent {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "agentry.dev/v1alpha1", "kind": "Agent",
        "metadata": {"name": format!("bench-{i}"), "namespace": ns, "uid": format!("00000000-0000-0000-0000-{i:012}")},
        "spec": {"model": {"id": "anthropic.claude-3-haiku-20240307-v1:0"}, "systemPrompt": format!("Agent {i}."), "replicas": 0}
    }))
    .unwrap()
}

async fn count_deployments(client: &kube::Client, ns: &str) -> usize {
    Api::<Deployment>::namespaced(client.clone(), ns)
        .list_metadata(
            &ListParams::default().labels("app.kubernetes.io/managed-by=agentry-operator"),
        )
        .await
        .map(|l| l.items.len())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client).await.expect("CRD");

    // The floor: the same Deployments and Services applied directly. Owner references would
    // point at Agents that do not exist in this namespace, so they are left out (the server
    // does not check them on write either way).
    let floor_ns = TestNamespace::create(&client, "agentry-bench-floor")
        .await
        .expect("namespace");
    let runtime = deployment::RuntimeImage {
        image: agentry_operator::config::DEFAULT_RUNTIME_IMAGE.into(),
        ..Default::default()
    };
    let objects: Vec<(Deployment, Service)> = (0..n)
        .map(|i| {
            let v = validate(&agent(&floor_ns.name, i)).unwrap();
            let inputs = deployment::DeploymentInputs {
                runtime: &runtime,
                config_hash: "0",
                service_account: "default",
            };
            let mut d = deployment::deployment(&v, &inputs);
            let mut s = service::service(&v);
            d.metadata.owner_references = None;
            s.metadata.owner_references = None;
            (d, s)
        })
        .collect();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &floor_ns.name);
    let services: Api<Service> = Api::namespaced(client.clone(), &floor_ns.name);
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let start = Instant::now();
    futures::stream::iter(objects.iter())
        .for_each_concurrent(CONCURRENCY, |(d, s)| {
            let (deployments, services, pp) = (deployments.clone(), services.clone(), pp.clone());
            async move {
                let name = d.metadata.name.clone().unwrap();
                deployments
                    .patch(&name, &pp, &Patch::Apply(d))
                    .await
                    .expect("deployment");
                services
                    .patch(&name, &pp, &Patch::Apply(s))
                    .await
                    .expect("service");
            }
        })
        .await;
    let floor = start.elapsed();
    floor_ns.delete().await;

    // The operator: apply N Agents, wait for N Deployments.
    let ns = TestNamespace::create(&client, "agentry-bench")
        .await
        .expect("namespace");
    let bin = release_binary("agentry-operator", "agentry-operator");
    let op = Process::start(
        "operator",
        &bin,
        &[
            "--namespaces",
            &ns.name,
            "--leader-election",
            "false",
            "--listen",
            "127.0.0.1:18191",
        ],
        &[
            ("RUST_LOG", "info,kube=warn"),
            ("KUBECONFIG", cluster.kubeconfig().to_str().unwrap()),
        ],
    );
    assert!(
        op.wait_for_log("starting the Agent controller", Duration::from_secs(60)),
        "operator did not start:\n{}",
        op.log()
    );
    tokio::time::sleep(Duration::from_secs(2)).await; // let its first lists complete
    let agents: Api<Agent> = Api::namespaced(client.clone(), &ns.name);
    let start = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(CONCURRENCY, |i| {
            let agents = agents.clone();
            let ns = ns.name.clone();
            async move {
                let mut a = agent(&ns, i);
                a.metadata.uid = None;
                agents
                    .create(&PostParams::default(), &a)
                    .await
                    .expect("agent");
            }
        })
        .await;
    let applied = start.elapsed();
    while count_deployments(&client, &ns.name).await < n {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "not all Deployments within 10 min:\n{}",
            op.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let operator = start.elapsed();
    drop(op);
    ns.delete().await;

    println!("agents: {n}");
    println!(
        "floor (apply {n} Deployments + {n} Services directly): {:.2} s",
        floor.as_secs_f64()
    );
    println!("agents created in: {:.2} s", applied.as_secs_f64());
    println!(
        "operator (create {n} Agents until {n} Deployments exist): {:.2} s",
        operator.as_secs_f64()
    );
    println!(
        "ratio: {:.2}x (target <= 1.5x)",
        operator.as_secs_f64() / floor.as_secs_f64()
    );
}
