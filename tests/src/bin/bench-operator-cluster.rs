//! The operator benchmark on a real control plane: N Agents (default 200) created at once,
//! timed until all N Deployments exist and until every Agent reports a status for its
//! generation, beside a floor that makes the same API writes directly, in one run.
//!
//! ```text
//! cargo run --release -p agentry-tests --bin bench-operator-cluster -- [N] [--replicas R] [--no-floor]
//! ```
//!
//! `-- 200` checks the time target (operator ≤ 1.5× the floor), `-- 1000` the memory one
//! (operator RSS ≤ 50 MB). The cluster is [`Cluster::shared`]'s: the local control plane
//! (kube-apiserver, kube-controller-manager, kube-scheduler, kwok; private to this process,
//! gone when it ends), or `AGENTRY_TEST_KUBECONFIG`'s. Agents have `replicas: 0` unless
//! `--replicas` says otherwise, so no pods are involved and the time is the operator's and the
//! API server's; with `--replicas 2` or more every Agent also gets a PodDisruptionBudget, in the
//! floor too.
//!
//! **The floor** makes, for each Agent, the writes one pass of the operator's pipeline makes,
//! built with the operator's own code (`build`, `status::desired_status`, `status::write_status`,
//! `reconcile::transition_events`), in the same order, one chain per Agent, 16 chains at once
//! (the operator's reconcile concurrency), and no reads:
//!
//! 1. create the Agent (POST: in the operator run the bench makes the same creates, inside the
//!    clock);
//! 2. server-side apply its ServiceAccount, ConfigMap, Deployment and Service (and PDB), with
//!    the operator's field manager and the real controller owner reference to the Agent;
//! 3. server-side apply its status (`agents/status`), computed from the applied Deployment;
//! 4. publish, through kube's `Recorder`, the Events the operator raises on that status: one
//!    (`ScaledToZero`) at `replicas: 0`, none while a rollout is in progress.
//!
//! That is 7 writes per Agent at `replicas: 0`, 6 at 1. The floor runs with the same two
//! watches that time the operator run open (`BENCH_FLOOR_WATCHES=1` opens the operator's nine
//! watches too, to show what serving them costs the API server), and is timed by them.
//!
//! **The operator run** starts the release `agentry-operator` on a fresh namespace (no leader
//! election), waits for its controller and first lists, creates N Agents 16 at once, and times
//! from the first create until the watches see all N Deployments, and every Agent's
//! `status.observedGeneration` equal to its generation. It then waits until the Deployment
//! controller has written every Deployment's status (each write reconciles the Agent again)
//! and no reconcile has run for 3 s, and reads the operator's peak (VmHWM) and settled (VmRSS)
//! memory, CPU time and reconcile counters.
//!
//! **Order.** A fresh API server is slow on its first writes, and it gets slower as it holds
//! more objects: the run is an untimed warm-up (32 Agents), floor, operator, floor again, each
//! phase in its own namespace, kept to the end (deleting one would make the garbage collector
//! work during the next phase), and the next phase starts only once the Deployment controller
//! has caught up. Ratios are given against the faster floor (strict) and against the floors'
//! mean (the operator ran between them).
//!
//! **Counted, not assumed:** writes come from the API server's `apiserver_request_total`
//! (every server-side apply is the floor's or the operator's; no controller or kwok uses them),
//! Events from the Events left in the namespace by reporting controller; CPU of the API server
//! and etcd from `/proc` (the local control plane runs as this process's children).
//!
//! `BENCH_WRAPPER="valgrind --tool=massif --massif-out-file=…"` runs the operator under a tool
//! (its memory and CPU figures are then the tool's too); `--no-floor` runs the operator alone.

// A benchmark: when its setup fails, stopping loudly is the right outcome.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "bench_operator_cluster/measure.rs"]
mod measure;

use agentry_tests::process::free_port;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use agentry_crds::Agent;
use agentry_operator::build::{self, deployment};
use agentry_operator::reconcile::transition_events;
use agentry_operator::status::{Observed, desired_status, write_status};
use agentry_operator::validate::validate;
use agentry_tests::cluster::{self, TestNamespace};
use agentry_tests::k8s::Cluster;
use agentry_tests::process::{Process, cpu_seconds, proc_status_kb, release_binary};
use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::{Resource, ResourceExt};
use measure::{
    children_cpu, cpu_delta, delta, events_of, object_sizes, operator_metric, operator_watches,
    own_writes, server_cpu, server_requests, wait_for_deployment_controller, watch_milestones,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Writers at once: the operator's reconcile concurrency (`controller::CONCURRENCY`).
const CONCURRENCY: usize = agentry_operator::controller::CONCURRENCY as usize;

/// The floor's name as the reporting controller of its Events.
const FLOOR_REPORTER: &str = "agentry-bench-floor";

/// How long the operator may stay busy after the last status before it counts as settled.
const QUIET: Duration = Duration::from_secs(3);

fn agent(ns: &str, i: usize, replicas: i32) -> Agent {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "agentry.dev/v1alpha1", "kind": "Agent",
        "metadata": {"name": format!("bench-{i}"), "namespace": ns},
        "spec": {"model": {"id": "anthropic.claude-3-haiku-20240307-v1:0"},
                 "systemPrompt": format!("Agent {i}."), "replicas": replicas}
    }))
    .unwrap()
}

async fn apply<K>(client: &kube::Client, object: &K) -> K
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), &object.namespace().unwrap());
    let pp = PatchParams::apply(agentry_operator::apply::FIELD_MANAGER).force();
    api.patch(&object.name_any(), &pp, &Patch::Apply(object))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "floor: applying {} {}: {e}",
                K::kind(&()),
                object.name_any()
            )
        })
}

/// One pass of the operator's pipeline for Agent `i`, written directly.
async fn floor_chain(
    client: &kube::Client,
    recorder: &Recorder,
    ns: &str,
    i: usize,
    replicas: i32,
) {
    let agents: Api<Agent> = Api::namespaced(client.clone(), ns);
    let created = agents
        .create(&PostParams::default(), &agent(ns, i, replicas))
        .await
        .expect("floor: creating an Agent");
    let v = validate(&created).expect("a valid Agent");
    let prompt = v.spec.system_prompt.clone().unwrap_or_default();
    let config = build::runtime_config::runtime_config(
        &v,
        &prompt,
        &Default::default(),
        &Default::default(),
    );
    let config_hash = build::stable_hash(config.to_json().as_bytes());
    let runtime = deployment::RuntimeImage {
        image: agentry_operator::config::DEFAULT_RUNTIME_IMAGE.into(),
        ..Default::default()
    };
    let sa = build::service_account::service_account(&v).expect("an own ServiceAccount");
    apply(client, &sa).await;
    apply(client, &build::config_map::config_map(&v, &config)).await;
    let inputs = deployment::DeploymentInputs {
        runtime: &runtime,
        config_hash: &config_hash,
        service_account: &build::service_account::service_account_name(&v),
    };
    let live = apply(client, &deployment::deployment(&v, &inputs)).await;
    apply(client, &build::service::service(&v)).await;
    if let Some(pdb) = build::pdb::pod_disruption_budget(&v) {
        apply(client, &pdb).await;
    }
    let observed = Observed {
        agent: &created,
        deployment: Some(&live),
        problems: &[],
        invalid: None,
    };
    let status = desired_status(&observed, &Time(Timestamp::now()));
    let events = transition_events(&[], &status.conditions);
    write_status(client, &created, status)
        .await
        .expect("floor: writing a status");
    let reference = created.object_ref(&());
    for event in events {
        recorder
            .publish(&event, &reference)
            .await
            .expect("floor: publishing an Event");
    }
}

/// Command-line settings.
struct Args {
    /// Agents.
    n: usize,
    /// `spec.replicas` of each.
    replicas: i32,
    /// Whether to run the floor (`--no-floor`: the operator alone, for memory experiments).
    floor: bool,
}

fn args() -> Args {
    let usage = "usage: bench-operator-cluster [N] [--replicas R] [--no-floor]";
    let mut args = Args {
        n: 200,
        replicas: 0,
        floor: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--replicas" => args.replicas = it.next().and_then(|r| r.parse().ok()).expect(usage),
            "--no-floor" => args.floor = false,
            other => args.n = other.parse().expect(usage),
        }
    }
    args
}

/// One floor run.
struct Floor {
    /// Until all Deployments were seen.
    deployments: Duration,
    /// Until all statuses were seen current.
    statuses: Duration,
    /// Until its last write returned.
    all: Duration,
    /// Its requests (and the controllers' meanwhile), from the API server's counters.
    requests: BTreeMap<String, u64>,
    /// CPU seconds of each control-plane process until all statuses were current.
    control_plane_cpu: BTreeMap<String, f64>,
    /// This process's CPU seconds meanwhile (the floor's client and watches).
    bench_cpu: f64,
    /// Its Event writes.
    events: u64,
}

/// Runs the floor for `n` Agents in a new namespace `prefix-…`, then waits for the Deployment
/// controller. The namespace stays until the process ends: deleting it would make the
/// garbage collector delete thousands of objects during the next phase.
async fn floor(
    cluster: &Cluster,
    client: &kube::Client,
    prefix: &str,
    n: usize,
    replicas: i32,
    bound: Duration,
    settle: bool,
) -> (Floor, TestNamespace) {
    let ns = TestNamespace::create(client, prefix)
        .await
        .expect("namespace");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: FLOOR_REPORTER.into(),
            instance: None,
        },
    );
    // The same watches as in the operator run, so the API server serves the same watchers
    // and both runs are timed the same way.
    let milestones = watch_milestones(client, &ns.name, n).await;
    let extra = if std::env::var_os("BENCH_FLOOR_WATCHES").is_some() {
        let w = operator_watches(client, &ns.name);
        tokio::time::sleep(Duration::from_secs(2)).await; // their lists complete
        w
    } else {
        Vec::new()
    };
    let before = server_requests(cluster);
    let cpu_before = children_cpu();
    let bench_cpu_before = cpu_seconds(std::process::id());
    let start = Instant::now();
    let chains = futures::stream::iter(0..n)
        .map(|i| floor_chain(client, &recorder, &ns.name, i, replicas))
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>();
    tokio::time::timeout(bound, chains)
        .await
        .expect("the floor finished in time");
    let all = start.elapsed();
    let (deployments, statuses) = loop {
        if let Some(r) = milestones.lock().unwrap().reached(start) {
            break r;
        }
        assert!(start.elapsed() < bound, "the floor's watches saw it all");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let control_plane_cpu = cpu_delta(&children_cpu(), &cpu_before);
    let bench_cpu = cpu_seconds(std::process::id()) - bench_cpu_before;
    for w in extra {
        w.abort();
    }
    let requests = delta(&server_requests(cluster), &before);
    if settle {
        wait_for_deployment_controller(client, &ns.name, n, bound).await;
    }
    (
        Floor {
            deployments,
            statuses,
            all,
            requests,
            control_plane_cpu,
            bench_cpu,
            events: events_of(client, &ns.name, FLOOR_REPORTER).await,
        },
        ns,
    )
}

/// What the operator run measured.
struct OperatorRun {
    created: Duration,
    deployments: Duration,
    statuses: Duration,
    settled: Duration,
    requests: BTreeMap<String, u64>,
    reconciles: u64,
    errors: u64,
    cpu: f64,
    cpu_at_statuses: f64,
    /// Requests and reconciles from the first create until all statuses were current.
    requests_at_statuses: BTreeMap<String, u64>,
    reconciles_at_statuses: u64,
    control_plane_cpu: BTreeMap<String, f64>,
    bench_cpu_at_statuses: f64,
    rss_at_statuses: u64,
    idle_rss: u64,
    peak_rss: u64,
    settled_rss: u64,
    log: String,
    /// JSON bytes of one Agent and one Service's metadata as the operator's caches receive them,
    /// and of their managedFields.
    object_sizes: [(usize, usize); 2],
    /// Its Event writes.
    events: u64,
}

async fn operator(
    cluster: &Cluster,
    client: &kube::Client,
    n: usize,
    replicas: i32,
    bound: Duration,
) -> (OperatorRun, TestNamespace) {
    let ns = TestNamespace::create(client, "agentry-bench")
        .await
        .expect("namespace");
    let bin = release_binary("agentry-operator", "agentry-operator");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // BENCH_WRAPPER runs the operator under a tool, e.g. "valgrind --tool=massif"; its
    // memory and CPU figures are then the tool's too.
    let mut words: Vec<String> = std::env::var("BENCH_WRAPPER")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let bin_arg = bin.to_string_lossy().into_owned();
    let program = if words.is_empty() {
        bin.clone()
    } else {
        let program = std::path::PathBuf::from(words.remove(0));
        words.push(bin_arg);
        program
    };
    let mut op_args: Vec<&str> = words.iter().map(String::as_str).collect();
    op_args.extend([
        "--namespaces",
        &ns.name,
        "--leader-election",
        "false",
        "--listen",
        &listen,
    ]);
    let op = Process::start(
        "operator",
        &program,
        &op_args,
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
    let pid = op.pid();
    let milestones = watch_milestones(client, &ns.name, n).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // the operator's first lists complete
    let idle_rss = proc_status_kb(pid, "VmRSS:");
    let cpu_before = cpu_seconds(pid);
    let before = server_requests(cluster);
    let children_before = children_cpu();
    let bench_cpu_before = cpu_seconds(std::process::id());
    let agents: Api<Agent> = Api::namespaced(client.clone(), &ns.name);
    let start = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(CONCURRENCY, |i| {
            let (agents, ns) = (agents.clone(), ns.name.clone());
            async move {
                agents
                    .create(&PostParams::default(), &agent(&ns, i, replicas))
                    .await
                    .expect("creating an Agent");
            }
        })
        .await;
    let created = start.elapsed();
    let mut peak_rss = 0;
    let (deployments, statuses) = loop {
        peak_rss = peak_rss.max(proc_status_kb(pid, "VmRSS:"));
        if let Some(r) = milestones.lock().unwrap().reached(start) {
            break r;
        }
        assert!(
            start.elapsed() < bound,
            "the operator did not finish {n} Agents within {bound:?}:\n{}",
            op.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let cpu_at_statuses = cpu_seconds(pid) - cpu_before;
    let rss_at_statuses = proc_status_kb(pid, "VmRSS:");
    let control_plane_cpu = cpu_delta(&children_cpu(), &children_before);
    let bench_cpu_at_statuses = cpu_seconds(std::process::id()) - bench_cpu_before;
    let metric = |name| operator_metric(port, name) as u64;
    let reconciles_at_statuses = metric("agentry_operator_reconciliations_total");
    let requests_at_statuses = delta(&server_requests(cluster), &before);
    // Settled: the Deployment controller has written every Deployment's status (each one
    // reconciles the Agent again), then no reconcile for QUIET.
    let rss_sampler = async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            peak_rss = peak_rss.max(proc_status_kb(pid, "VmRSS:"));
        }
    };
    tokio::select! {
        () = wait_for_deployment_controller(client, &ns.name, n, bound) => {}
        () = rss_sampler => {}
    }
    let settle_start = Instant::now();
    let mut last = (
        metric("agentry_operator_reconciliations_total"),
        Instant::now(),
    );
    while last.1.elapsed() < QUIET && settle_start.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak_rss = peak_rss.max(proc_status_kb(pid, "VmRSS:"));
        let now = metric("agentry_operator_reconciliations_total");
        if now != last.0 {
            last = (now, Instant::now());
        }
    }
    let settled = start.elapsed() - last.1.elapsed();
    let object_sizes = object_sizes(client, &ns.name).await;
    let run = OperatorRun {
        object_sizes,
        events: events_of(client, &ns.name, "agentry-operator").await,
        created,
        deployments,
        statuses,
        settled,
        requests: delta(&server_requests(cluster), &before),
        reconciles: metric("agentry_operator_reconciliations_total"),
        errors: metric("agentry_operator_reconcile_errors_total"),
        cpu: cpu_seconds(pid) - cpu_before,
        cpu_at_statuses,
        requests_at_statuses,
        reconciles_at_statuses,
        control_plane_cpu,
        bench_cpu_at_statuses,
        rss_at_statuses,
        idle_rss,
        peak_rss: proc_status_kb(pid, "VmHWM:").max(peak_rss),
        settled_rss: proc_status_kb(pid, "VmRSS:"),
        log: op.log(),
    };
    // SIGTERM, as Kubernetes stops a pod (and so a wrapper can write its profile).
    let mut op = op;
    if op.terminate(Duration::from_secs(60)) != Some(0) {
        println!(
            "the operator did not exit cleanly on SIGTERM:\n{}",
            op.log()
        );
    }
    (run, ns)
}

#[tokio::main]
async fn main() {
    let Args {
        n,
        replicas,
        floor: with_floor,
    } = args();
    // Other work on the machine skews every figure: say how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    // Generous for 2 busy cores: a minute plus half a second per Agent, per phase.
    let bound = Duration::from_secs(60) + Duration::from_millis(500) * n as u32;
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    let version = client.apiserver_version().await.expect("server version");
    cluster::install_agent_crd(&client).await.expect("CRD");
    // Built before any clock runs.
    release_binary("agentry-operator", "agentry-operator");

    // A fresh API server is slower on its first writes of each kind (caches, schema
    // converters): warm it up untimed, then floor, operator, floor again, so that neither side
    // gains from the order.
    let mut namespaces = Vec::new();
    let mut floors = Vec::new();
    let warmup = 32.min(n);
    if with_floor {
        let (_, ns) = floor(
            &cluster,
            &client,
            "agentry-bench-warmup",
            warmup,
            replicas,
            bound,
            true,
        )
        .await;
        namespaces.push(ns);
        let (f, ns) = floor(
            &cluster,
            &client,
            "agentry-bench-floor",
            n,
            replicas,
            bound,
            true,
        )
        .await;
        floors.push(f);
        namespaces.push(ns);
    }
    let (op, ns) = operator(&cluster, &client, n, replicas, bound).await;
    namespaces.push(ns);
    if with_floor {
        let (f, ns) = floor(
            &cluster,
            &client,
            "agentry-bench-floor",
            n,
            replicas,
            bound,
            false,
        )
        .await;
        floors.push(f);
        namespaces.push(ns);
    }
    for ns in namespaces {
        ns.delete().await;
    }
    let header = format!(
        "{n} Agents, replicas {replicas}, kube-apiserver {}.{}, {} cores, load average at start {}",
        version.major,
        version.minor,
        std::thread::available_parallelism().map_or(0, |p| p.get()),
        load.join(" ")
    );
    report(&header, n, replicas, &floors, &op);
}

/// Prints the details, then the summary block the README quotes.
fn report(header: &str, n: usize, replicas: i32, floors: &[Floor], op: &OperatorRun) {
    let mb = |kb: u64| kb as f64 / 1024.0;
    let per = |x: u64| x as f64 / n as f64;
    if let Some(f) = floors.first() {
        println!("\nrequests during the first floor: {:?}", f.requests);
        println!(
            "control-plane CPU seconds during the first floor: {:?}",
            f.control_plane_cpu
        );
    }
    println!(
        "control-plane CPU seconds during the operator, until all statuses: {:?}",
        op.control_plane_cpu
    );
    println!(
        "requests during the operator, until all statuses: {:?}",
        op.requests_at_statuses
    );
    println!(
        "requests during the operator, until settled: {:?}",
        op.requests
    );
    let warnings: Vec<&str> = op.log.lines().filter(|l| l.contains("WARN")).collect();
    if !warnings.is_empty() {
        println!("operator warnings ({}), first ones:", warnings.len());
        for w in warnings.iter().take(5) {
            println!("  {w}");
        }
    }

    println!("\n== bench-operator-cluster: {header} ==");
    if let Some(f) = floors.first() {
        println!(
            "floor     {} writes ({:.1}/Agent: create, SA, ConfigMap, Deployment, Service{}, status; {} Events), {CONCURRENCY} chains at once",
            own_writes(&f.requests) + f.events,
            per(own_writes(&f.requests) + f.events),
            if replicas > 1 { ", PDB" } else { "" },
            f.events
        );
    }
    for (name, f) in ["before", "after "].iter().zip(floors) {
        println!(
            "  {name}  all Deployments exist   {:6.2} s   all statuses current {:6.2} s   (last write returned {:.2} s; CPU: API server + etcd {:.2} s, the bench {:.2} s)",
            f.deployments.as_secs_f64(),
            f.statuses.as_secs_f64(),
            f.all.as_secs_f64(),
            server_cpu(&f.control_plane_cpu),
            f.bench_cpu
        );
    }
    println!(
        "operator  {n} Agents created in {:.2} s; from the first create:",
        op.created.as_secs_f64()
    );
    // The faster floor is the one to beat. The API server gets slower as it holds more objects,
    // and the operator runs between the floors: their mean is the fair comparison.
    let ratios = |op: Duration, f: fn(&Floor) -> Duration| {
        let times: Vec<f64> = floors.iter().map(|x| f(x).as_secs_f64()).collect();
        if times.is_empty() {
            return String::new();
        }
        let fast = times.iter().copied().fold(f64::MAX, f64::min);
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        let op = op.as_secs_f64();
        format!(
            "= {:.2}x the faster floor, {:.2}x the floors' mean",
            op / fast,
            op / mean
        )
    };
    let target = if floors.is_empty() {
        ""
    } else {
        " (target <= 1.5x)"
    };
    println!(
        "          all Deployments exist   {:6.2} s   {}{target}",
        op.deployments.as_secs_f64(),
        ratios(op.deployments, |f| f.deployments)
    );
    println!(
        "          all statuses current    {:6.2} s   {}",
        op.statuses.as_secs_f64(),
        ratios(op.statuses, |f| f.statuses)
    );
    println!(
        "          last reconcile          {:6.2} s   (after the Deployment controller caught up)",
        op.settled.as_secs_f64()
    );
    let gets: u64 = op
        .requests
        .iter()
        .filter(|(k, _)| k.starts_with("GET ") && !k.starts_with("GET /"))
        .map(|(_, v)| v)
        .sum();
    let op_own = own_writes(&op.requests) + op.events;
    println!(
        "          writes {op_own} ({:.1}/Agent, the bench's creates included; {} Events), GETs {gets}; until all statuses: {} writes but Events, {} reconciles",
        per(op_own),
        op.events,
        own_writes(&op.requests_at_statuses),
        op.reconciles_at_statuses
    );
    let [(agent, agent_mf), (service, service_mf)] = op.object_sizes;
    println!(
        "          cached in full: an Agent {agent} B of JSON ({agent_mf} B managedFields), a Service's metadata {service} B ({service_mf} B managedFields)"
    );
    println!(
        "          reconciles {} ({:.1}/Agent), errors {}",
        op.reconciles,
        per(op.reconciles),
        op.errors
    );
    println!(
        "          CPU {:.2} s ({:.2} s until all statuses, when the API server + etcd had used {:.2} s, the bench {:.2} s), {:.2} ms per reconcile",
        op.cpu,
        op.cpu_at_statuses,
        server_cpu(&op.control_plane_cpu),
        op.bench_cpu_at_statuses,
        op.cpu * 1000.0 / op.reconciles.max(1) as f64
    );
    println!(
        "          RSS peak {:.1} MB (VmHWM), settled {:.1} MB (VmRSS; {:.1} MB when all statuses were current), idle before the Agents {:.1} MB{}",
        mb(op.peak_rss),
        mb(op.settled_rss),
        mb(op.rss_at_statuses),
        mb(op.idle_rss),
        if n >= 1000 {
            "  (target <= 50 MB at 1,000)"
        } else {
            ""
        }
    );
}
