//! Cluster suite: the operator under faults, on the local control plane. Of two replicas only
//! the Lease holder reconciles, and when the holder is SIGKILLed the other takes over about one
//! Lease duration after the last renewal; an operator SIGKILLed while it creates 200 Agents
//! converges after a restart with no duplicate or orphaned child and no write afterwards; and
//! an API server stopped for 10 s and started again is survived without a process restart
//! (that test has a control plane of its own, since it stops the API server).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use agentry_crds::Agent;
use agentry_operator::leader::{LEASE_DURATION, RENEW_EVERY};
use agentry_tests::cluster::eventually;
use agentry_tests::cluster::{self, TestNamespace};
use agentry_tests::k8s::Cluster;
use agentry_tests::process::{Process, binary};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, Resource, ResourceExt};

const TIMEOUT: Duration = Duration::from_secs(90);
const MANAGED: &str = "app.kubernetes.io/managed-by=agentry-operator";

/// An operator watching `ns`; with `lease`, elected through that Lease in `ns`.
fn operator(
    cluster: &Cluster,
    ns: &str,
    identity: &str,
    port: u16,
    lease: Option<&str>,
) -> Process {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "--namespaces",
        ns,
        "--identity",
        identity,
        "--listen",
        &listen,
    ];
    match lease {
        Some(l) => args.extend(["--lease-namespace", ns, "--lease-name", l]),
        None => args.extend(["--leader-election", "false"]),
    }
    Process::start(
        identity,
        &binary("agentry-operator", "agentry-operator"),
        &args,
        &[
            ("RUST_LOG", "info,kube=warn"),
            ("KUBECONFIG", cluster.kubeconfig().to_str().unwrap()),
        ],
    )
}

fn agent(name: &str, prompt: &str, replicas: i32) -> Agent {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "agentry.dev/v1alpha1", "kind": "Agent", "metadata": {"name": name},
        "spec": {"model": {"id": "anthropic.claude-3-haiku-20240307-v1:0"}, "systemPrompt": prompt, "replicas": replicas},
    }))
    .unwrap()
}

async fn create(client: &Client, ns: &str, a: &Agent) {
    Api::<Agent>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), a)
        .await
        .expect("agent created");
}

async fn has_deployment(client: &Client, ns: &str, name: &str) -> Option<()> {
    Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .map(|_| ())
}

async fn holder(client: &Client, ns: &str, lease: &str) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), ns)
        .get_opt(lease)
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
}

#[tokio::test]
async fn a_killed_lease_holder_is_replaced_one_lease_duration_after_its_last_renewal() {
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client).await.expect("CRD");
    let ns = TestNamespace::create(&client, "agentry-le")
        .await
        .expect("namespace");
    let n = ns.name.clone();
    let lease = "agentry-pair";
    let mut a = operator(&cluster, &n, "op-a", 18401, Some(lease));
    let mut b = operator(&cluster, &n, "op-b", 18402, Some(lease));
    let first = eventually("a lease holder", TIMEOUT, || holder(&client, &n, lease)).await;
    let (leader, follower) = if first == "op-a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert!(
        leader.wait_for_log("starting the Agent controller", TIMEOUT),
        "{}",
        leader.log()
    );
    create(&client, &n, &agent("solo", "Hi.", 0)).await;
    eventually("the leader to reconcile", TIMEOUT, || {
        has_deployment(&client, &n, "solo")
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

    // SIGKILL the holder just after it renewed (the worst case: the Lease has its whole
    // duration left), then time the follower's takeover and first reconcile.
    let renewed = |c: &Client| {
        let (c, n) = (c.clone(), n.clone());
        async move {
            Api::<Lease>::namespaced(c, &n)
                .get(lease)
                .await
                .ok()?
                .spec?
                .renew_time
        }
    };
    let last = renewed(&client).await;
    eventually("a renewal", RENEW_EVERY * 2, || async {
        (renewed(&client).await != last).then_some(())
    })
    .await;
    leader.kill();
    let killed = Instant::now();
    create(&client, &n, &agent("second", "Hi.", 0)).await;
    let follower_name = follower.name().to_string();
    eventually("the follower to take the lease", TIMEOUT, || async {
        (holder(&client, &n, lease).await? == follower_name).then_some(())
    })
    .await;
    let took_over = killed.elapsed();
    eventually("the new leader to reconcile", TIMEOUT, || {
        has_deployment(&client, &n, "second")
    })
    .await;
    let reconciled = killed.elapsed();
    eprintln!(
        "leader killed: lease taken over after {:.1} s, first reconcile after {:.1} s (lease duration {} s)",
        took_over.as_secs_f64(),
        reconciled.as_secs_f64(),
        LEASE_DURATION.as_secs()
    );
    // The takeover waits for the Lease to expire (its full duration here), and no longer.
    assert!(
        took_over >= LEASE_DURATION - Duration::from_secs(1),
        "{took_over:?}"
    );
    assert!(
        took_over <= LEASE_DURATION + Duration::from_secs(1),
        "{took_over:?}"
    );
    assert!(
        reconciled <= LEASE_DURATION + Duration::from_secs(3),
        "{reconciled:?}"
    );
    drop(a);
    drop(b);
    ns.delete().await;
}

/// Every child of the Agents in `ns`: (kind, name) to (owner uid, resourceVersion).
async fn children(client: &Client, ns: &str) -> BTreeMap<(String, String), (String, String)> {
    async fn of<K>(
        client: &Client,
        ns: &str,
        out: &mut BTreeMap<(String, String), (String, String)>,
    ) where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let list = Api::<K>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(MANAGED))
            .await
            .unwrap();
        for o in list.items {
            let owner = o
                .owner_references()
                .iter()
                .find(|r| r.controller == Some(true))
                .map(|r| r.uid.clone())
                .unwrap_or_default();
            out.insert(
                (K::kind(&()).into_owned(), o.name_any()),
                (owner, o.resource_version().unwrap_or_default()),
            );
        }
    }
    let mut out = BTreeMap::new();
    of::<ServiceAccount>(client, ns, &mut out).await;
    of::<ConfigMap>(client, ns, &mut out).await;
    of::<Deployment>(client, ns, &mut out).await;
    of::<Service>(client, ns, &mut out).await;
    of::<PodDisruptionBudget>(client, ns, &mut out).await;
    out
}

#[tokio::test]
async fn an_operator_killed_while_creating_200_agents_converges_after_a_restart() {
    const N: usize = 200;
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client).await.expect("CRD");
    let ns = TestNamespace::create(&client, "agentry-crash")
        .await
        .expect("namespace");
    let n = ns.name.clone();
    let mut op = operator(&cluster, &n, "op-1", 18403, None);
    assert!(
        op.wait_for_log("starting the Agent controller", TIMEOUT),
        "{}",
        op.log()
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &n);
    let count = || async {
        deployments
            .list_metadata(&ListParams::default().labels(MANAGED))
            .await
            .map(|l| l.items.len())
            .unwrap_or(0)
    };
    futures::future::join_all((0..N).map(|i| {
        let (client, n) = (client.clone(), n.clone());
        async move {
            create(
                &client,
                &n,
                &agent(&format!("a-{i}"), &format!("Agent {i}."), 0),
            )
            .await
        }
    }))
    .await;
    // Killed mid-way: some Agents have every child, some a few, some none.
    let at_kill = eventually("a quarter of the Deployments", TIMEOUT, || async {
        let c = count().await;
        (c >= N / 4).then_some(c)
    })
    .await;
    op.kill();
    assert!(
        at_kill < N,
        "the operator finished all {N} before it was killed: nothing was tested"
    );
    eprintln!("operator SIGKILLed with {at_kill}/{N} Deployments written");

    let op = operator(&cluster, &n, "op-2", 18404, None);
    let agents: Api<Agent> = Api::namespaced(client.clone(), &n);
    let converged = |a: &Agent| {
        let s = a.status.as_ref();
        let has = |type_: &str, status: &str, reason: Option<&str>| {
            s.is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == type_ && c.status == status && reason.is_none_or(|r| c.reason == r)
                })
            })
        };
        s.is_some_and(|s| s.observed_generation == a.metadata.generation)
            && has("Ready", "True", None)
            && has("Reconciling", "False", None)
            // The deployment controller is done with the Deployment too (with 200 at once it
            // lags the operator by seconds), and the Agent's status says so.
            && has("Progressing", "True", Some("NewReplicaSetAvailable"))
    };
    let list = eventually(
        "all 200 Agents Ready and no longer Reconciling",
        Duration::from_secs(240),
        || async {
            let list = agents.list(&ListParams::default()).await.ok()?;
            list.items.iter().all(converged).then_some(list)
        },
    )
    .await;
    assert_eq!(list.items.len(), N);
    let uids: BTreeMap<String, String> = list
        .items
        .iter()
        .map(|a| (a.name_any(), a.uid().unwrap()))
        .collect();

    // Exactly one of each child per Agent, each owned by the Agent of its name.
    let kids = children(&client, &n).await;
    let mut per_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for ((kind, name), (owner, _)) in &kids {
        *per_kind.entry(kind.as_str()).or_default() += 1;
        let agent = name.strip_suffix("-config").unwrap_or(name);
        assert_eq!(
            uids.get(agent),
            Some(owner),
            "{kind}/{name} is orphaned or misowned"
        );
    }
    for kind in ["ServiceAccount", "ConfigMap", "Deployment", "Service"] {
        assert_eq!(per_kind.get(kind), Some(&N), "{kind}: {per_kind:?}");
    }
    // replicas: 0 needs no disruption budget.
    assert_eq!(per_kind.get("PodDisruptionBudget"), None, "{per_kind:?}");

    // Converged: nothing is written for 10 s.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let statuses = |l: kube::core::ObjectList<Agent>| -> BTreeMap<String, (String, String)> {
        l.items
            .into_iter()
            .map(|a| {
                let status = serde_json::to_string(&a.status).unwrap();
                (a.name_any(), (a.resource_version().unwrap(), status))
            })
            .collect()
    };
    let before = (
        statuses(agents.list(&ListParams::default()).await.unwrap()),
        children(&client, &n).await,
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = (
        statuses(agents.list(&ListParams::default()).await.unwrap()),
        children(&client, &n).await,
    );
    let rewritten: Vec<String> = after
        .0
        .iter()
        .filter(|(k, v)| before.0.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}: {:?}\n  now {v:?}", before.0.get(k)))
        .collect();
    assert!(
        rewritten.is_empty(),
        "Agent status written after convergence:\n{}\n{}",
        rewritten.join("\n"),
        op.log()
    );
    let changed: Vec<_> = after
        .1
        .iter()
        .filter(|(k, v)| before.1.get(*k) != Some(*v))
        .collect();
    assert!(
        changed.is_empty(),
        "children written after convergence: {changed:?}\n{}",
        op.log()
    );
    drop(op);
    ns.delete().await;
}

#[tokio::test]
async fn the_operator_rides_out_a_10_second_api_server_outage_without_restarting() {
    let cluster = Cluster::private();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client).await.expect("CRD");
    let ns = TestNamespace::create(&client, "agentry-outage")
        .await
        .expect("namespace");
    let n = ns.name.clone();
    // With leader election, as deployed: the outage outlasts what a renewal allows, so the
    // operator stops reconciling, and must lead again by itself once the server is back.
    let mut op = operator(&cluster, &n, "op", 18405, Some("agentry-outage"));
    assert!(
        op.wait_for_log("starting the Agent controller", TIMEOUT),
        "{}",
        op.log()
    );
    create(&client, &n, &agent("before", "Hi.", 0)).await;
    eventually("a Deployment before the outage", TIMEOUT, || {
        has_deployment(&client, &n, "before")
    })
    .await;
    drop(client);

    cluster
        .control_plane()
        .expect("a local control plane")
        .stop_apiserver();
    tokio::time::sleep(Duration::from_secs(10)).await;
    cluster.control_plane().unwrap().start_apiserver();

    let client = cluster.client().await;
    create(&client, &n, &agent("after", "Hi.", 0)).await;
    eventually("a Deployment after the outage", TIMEOUT, || {
        has_deployment(&client, &n, "after")
    })
    .await;
    assert!(op.is_running(), "the operator exited:\n{}", op.log());
    eprintln!(
        "operator after the outage:\n{}",
        op.log()
            .lines()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(op);
    ns.delete().await;
}
