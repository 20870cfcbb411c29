//! Cluster suite: the real `agentry-operator` process against the cluster `KUBECONFIG` names.
//! It checks children and owner references, the endpoint in status, config-hash rolls, repair of
//! deleted and hand-edited children, `ToolsResolved` for a missing and then created Agent,
//! garbage collection, and that of two replicas only the Lease holder reconciles.
//!
//! The runtime image need not be pullable: nothing here waits for pods to be Ready.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use agentry_crds::Agent;
use agentry_tests::cluster::{self, FIELD_MANAGER, TestNamespace};
use agentry_tests::k8s::Cluster;
use agentry_tests::process::{Process, binary};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Polls `check` every half second until it returns `Some`, or fails after `timeout`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn operator(cluster: &Cluster, ns: &str, identity: &str, port: u16, lease: &str) -> Process {
    let bin = binary("agentry-operator", "agentry-operator");
    let listen = format!("127.0.0.1:{port}");
    Process::start(
        identity,
        &bin,
        &[
            "--namespaces",
            ns,
            "--identity",
            identity,
            "--listen",
            &listen,
            "--lease-namespace",
            ns,
            "--lease-name",
            lease,
        ],
        &[
            ("RUST_LOG", "info,kube=warn"),
            ("KUBECONFIG", cluster.kubeconfig().to_str().unwrap()),
        ],
    )
}

async fn apply_agent(client: &Client, ns: &str, yaml: &str) {
    let mut doc: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
    doc["metadata"]["namespace"] = ns.into();
    let name = doc["metadata"]["name"].as_str().unwrap().to_string();
    Api::<Agent>::namespaced(client.clone(), ns)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&doc),
        )
        .await
        .expect("agent applies");
}

fn agent_yaml(name: &str, prompt: &str, tool_agent: Option<&str>) -> String {
    let tools = tool_agent
        .map(|t| format!("  tools:\n    - name: ask\n      description: Ask another agent.\n      agent: {{name: {t}}}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: agentry.dev/v1alpha1\nkind: Agent\nmetadata: {{name: {name}}}\nspec:\n  model: {{id: anthropic.claude-3-haiku-20240307-v1:0}}\n  systemPrompt: {prompt:?}\n  replicas: 2\n{tools}"
    )
}

fn condition(agent: &Agent, type_: &str) -> Option<(String, String)> {
    let c = agent
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

fn config_hash(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap()["agentry.dev/config-hash"]
        .clone()
}

#[tokio::test]
async fn operator_reconciles_agents_into_children_and_keeps_them_in_place() {
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client).await.expect("CRD");
    let ns = TestNamespace::create(&client, "agentry-op")
        .await
        .expect("namespace");
    let n = ns.name.clone();
    let op = operator(&cluster, &n, "op-solo", 18181, "agentry-test-solo");
    assert!(
        op.wait_for_log("starting the Agent controller", TIMEOUT),
        "operator did not start:\n{}",
        op.log()
    );

    let agents: Api<Agent> = Api::namespaced(client.clone(), &n);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &n);
    let services: Api<Service> = Api::namespaced(client.clone(), &n);

    // A referrer whose target does not exist yet.
    apply_agent(
        &client,
        &n,
        &agent_yaml("concierge", "Help guests.", Some("travel")),
    )
    .await;
    let (status, reason) = eventually("ToolsResolved=False on concierge", TIMEOUT, || async {
        agents
            .get("concierge")
            .await
            .ok()
            .and_then(|a| condition(&a, "ToolsResolved"))
            .filter(|(s, _)| s == "False")
    })
    .await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "AgentNotFound")
    );

    // Creating the target clears it, without touching the referrer.
    apply_agent(&client, &n, &agent_yaml("travel", "Plan trips.", None)).await;
    eventually("ToolsResolved=True on concierge", TIMEOUT, || async {
        agents
            .get("concierge")
            .await
            .ok()
            .and_then(|a| condition(&a, "ToolsResolved"))
            .filter(|(s, _)| s == "True")
    })
    .await;

    // Children with controller owner references, and the endpoint in status.
    let travel = eventually("travel's endpoint", TIMEOUT, || async {
        agents.get("travel").await.ok().filter(|a| {
            a.status
                .as_ref()
                .and_then(|s| s.endpoint.as_ref())
                .is_some()
        })
    })
    .await;
    assert_eq!(
        travel.status.as_ref().unwrap().endpoint.as_deref(),
        Some(format!("http://travel.{n}.svc.cluster.local").as_str())
    );
    let uid = travel.uid().unwrap();
    let d = eventually("travel's Deployment", TIMEOUT, || async {
        deployments.get_opt("travel").await.ok().flatten()
    })
    .await;
    for owners in [
        d.owner_references().to_vec(),
        services
            .get("travel")
            .await
            .unwrap()
            .owner_references()
            .to_vec(),
        Api::<ConfigMap>::namespaced(client.clone(), &n)
            .get("travel-config")
            .await
            .unwrap()
            .owner_references()
            .to_vec(),
        Api::<ServiceAccount>::namespaced(client.clone(), &n)
            .get("travel")
            .await
            .unwrap()
            .owner_references()
            .to_vec(),
    ] {
        assert!(
            owners
                .iter()
                .any(|o| o.uid == uid && o.controller == Some(true)),
            "{owners:?}"
        );
    }

    // A changed system prompt changes the pod-template hash.
    let before = config_hash(&d);
    apply_agent(
        &client,
        &n,
        &agent_yaml("travel", "Plan trips on a budget.", None),
    )
    .await;
    eventually("a new config hash", TIMEOUT, || async {
        deployments
            .get("travel")
            .await
            .ok()
            .filter(|d| config_hash(d) != before)
    })
    .await;

    // A deleted Deployment comes back; a hand edit is undone.
    let old_uid = deployments.get("travel").await.unwrap().uid();
    deployments
        .delete("travel", &DeleteParams::foreground())
        .await
        .unwrap();
    eventually("the Deployment to come back", TIMEOUT, || async {
        deployments
            .get_opt("travel")
            .await
            .ok()
            .flatten()
            .filter(|d| d.uid() != old_uid)
    })
    .await;
    deployments
        .patch(
            "travel",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    eventually("replicas restored to 2", TIMEOUT, || async {
        deployments
            .get("travel")
            .await
            .ok()
            .filter(|d| d.spec.as_ref().unwrap().replicas == Some(2))
    })
    .await;

    // Deleting the Agent deletes its children (garbage collection through owner references).
    agents
        .delete("travel", &DeleteParams::foreground())
        .await
        .unwrap();
    eventually(
        "children garbage-collected",
        Duration::from_secs(120),
        || async {
            let gone = deployments.get_opt("travel").await.ok()?.is_none()
                && services.get_opt("travel").await.ok()?.is_none();
            gone.then_some(())
        },
    )
    .await;

    drop(op);
    ns.delete().await;
}

#[tokio::test]
async fn of_two_operator_replicas_only_the_lease_holder_reconciles() {
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client).await.expect("CRD");
    let ns = TestNamespace::create(&client, "agentry-le")
        .await
        .expect("namespace");
    let n = ns.name.clone();
    let lease_name = "agentry-test-pair";
    let mut a = operator(&cluster, &n, "op-a", 18182, lease_name);
    let mut b = operator(&cluster, &n, "op-b", 18183, lease_name);
    let leases: Api<Lease> = Api::namespaced(client.clone(), &n);
    let holder = eventually("a lease holder", TIMEOUT, || async {
        leases
            .get_opt(lease_name)
            .await
            .ok()
            .flatten()?
            .spec?
            .holder_identity
    })
    .await;
    let (leader, follower) = if holder == "op-a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert!(
        leader.wait_for_log("starting the Agent controller", TIMEOUT),
        "{}",
        leader.log()
    );
    apply_agent(&client, &n, &agent_yaml("solo", "Hi.", None)).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &n);
    eventually("the leader to reconcile", TIMEOUT, || async {
        deployments.get_opt("solo").await.ok().flatten()
    })
    .await;
    assert!(
        follower.log().contains("waiting to become leader"),
        "{}",
        follower.log()
    );
    assert!(
        !follower.log().contains("starting the Agent controller"),
        "the follower reconciles too:\n{}",
        follower.log()
    );

    // The leader dies without releasing the Lease; the follower takes over once it expires.
    leader.kill();
    let follower_name = follower.name().to_string();
    eventually("the follower to take the lease", TIMEOUT, || async {
        let h = leases
            .get_opt(lease_name)
            .await
            .ok()
            .flatten()?
            .spec?
            .holder_identity?;
        (h == follower_name).then_some(())
    })
    .await;
    assert!(
        follower.wait_for_log("starting the Agent controller", TIMEOUT),
        "{}",
        follower.log()
    );
    apply_agent(&client, &n, &agent_yaml("second", "Hi.", None)).await;
    eventually("the new leader to reconcile", TIMEOUT, || async {
        deployments.get_opt("second").await.ok().flatten()
    })
    .await;

    drop(a);
    drop(b);
    ns.delete().await;
}
