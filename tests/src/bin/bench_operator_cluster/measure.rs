//! What `bench-operator-cluster` measures with, beside its clocks: watches that see the
//! milestones, the API server's request counters, the control plane's CPU time, the operator's
//! own metrics, and the Events and object sizes left in a namespace.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentry_crds::Agent;
use agentry_operator::build::labels::MANAGED_SELECTOR;
use agentry_tests::k8s::Cluster;
use agentry_tests::process::cpu_seconds;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams, PartialObjectMeta};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// The moments a run reached its two milestones, as its watches saw them.
#[derive(Default)]
pub struct Milestones {
    pub deployments: Option<Instant>,
    pub statuses: Option<Instant>,
}

impl Milestones {
    /// Both milestones, from `start`, once reached.
    pub fn reached(&self, start: Instant) -> Option<(Duration, Duration)> {
        Some((
            self.deployments?.duration_since(start),
            self.statuses?.duration_since(start),
        ))
    }
}

/// Watches the namespace's Deployments (metadata) and Agents, recording when N of each are
/// there (and current). Returns once both watches have listed, so the clock can start.
pub async fn watch_milestones(client: &kube::Client, ns: &str, n: usize) -> Arc<Mutex<Milestones>> {
    let milestones = Arc::new(Mutex::new(Milestones::default()));
    let (tx, rx) = tokio::sync::mpsc::channel::<()>(2);
    let deployments: Api<PartialObjectMeta<Deployment>> = Api::namespaced(client.clone(), ns);
    let cfg = watcher::Config::default().labels(MANAGED_SELECTOR);
    let (m, ready) = (milestones.clone(), tx.clone());
    tokio::spawn(async move {
        let mut names = HashSet::new();
        let mut stream = std::pin::pin!(watcher(deployments, cfg).default_backoff());
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(d) | watcher::Event::InitApply(d)) => {
                    names.insert(d.name_any());
                }
                Ok(watcher::Event::InitDone) => drop(ready.try_send(())),
                _ => {}
            }
            if names.len() >= n {
                m.lock()
                    .unwrap()
                    .deployments
                    .get_or_insert_with(Instant::now);
            }
        }
    });
    let agents: Api<Agent> = Api::namespaced(client.clone(), ns);
    let m = milestones.clone();
    tokio::spawn(async move {
        let mut current = HashMap::new();
        let mut stream =
            std::pin::pin!(watcher(agents, watcher::Config::default()).default_backoff());
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(a) | watcher::Event::InitApply(a)) => {
                    let done = a.metadata.generation.is_some()
                        && a.status.as_ref().and_then(|s| s.observed_generation)
                            == a.metadata.generation;
                    current.insert(a.name_any(), done);
                }
                Ok(watcher::Event::InitDone) => drop(tx.try_send(())),
                _ => {}
            }
            if current.values().filter(|d| **d).count() >= n {
                m.lock().unwrap().statuses.get_or_insert_with(Instant::now);
            }
        }
    });
    let mut rx = rx;
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("the watches listed within 30 s");
    }
    milestones
}

/// One value of the operator's `/metrics` (summed over labels starting with `name`).
pub fn operator_metric(port: u16, name: &str) -> f64 {
    let mut out = String::new();
    if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
        let _ = s.read_to_string(&mut out);
    }
    out.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// CPU seconds so far of this process's children by command name (kube-apiserver, etcd,
/// kube-controller-manager, …; the local control plane runs them), so a phase can say how hard
/// it made the API server work.
pub fn children_cpu() -> BTreeMap<String, f64> {
    let me = std::process::id().to_string();
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        // After the command: state, then the parent's pid.
        if stat[close + 1..].split_whitespace().nth(1) == Some(me.as_str()) {
            *out.entry(stat[open + 1..close].to_string()).or_default() += cpu_seconds(pid);
        }
    }
    out
}

/// CPU seconds of each control-plane process between two [`children_cpu`] readings (the
/// operator left out: it is measured on its own).
pub fn cpu_delta(
    after: &BTreeMap<String, f64>,
    before: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter(|(k, _)| !k.starts_with("agentry"))
        .map(|(k, v)| {
            (
                k.clone(),
                ((v - before.get(k).unwrap_or(&0.0)) * 100.0).round() / 100.0,
            )
        })
        .collect()
}

/// API server plus etcd CPU seconds of a [`cpu_delta`].
pub fn server_cpu(cpu: &BTreeMap<String, f64>) -> f64 {
    ["kube-apiserver", "etcd"]
        .iter()
        .filter_map(|k| cpu.get(*k))
        .sum()
}

/// Verbs that write.
pub const WRITES: [&str; 6] = [
    "POST",
    "PUT",
    "PATCH",
    "APPLY",
    "DELETE",
    "DELETECOLLECTION",
];

/// The API server's request counters (writes, GETs, LISTs, WATCHes; the last two include the
/// bench's own), `verb group/resource[/subresource]` → requests. Empty when `/metrics` cannot be
/// read (a cluster that does not let the admin see it).
pub fn server_requests(cluster: &Cluster) -> BTreeMap<String, f64> {
    let (ok, text) = cluster.kubectl(&["get", "--raw", "/metrics"], None);
    let mut out = BTreeMap::new();
    if !ok {
        return out;
    }
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |key: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                .map(|v| v.trim_end_matches('"'))
                .unwrap_or_default()
        };
        let verb = label("verb");
        if !WRITES.contains(&verb) && !["GET", "LIST", "WATCH"].contains(&verb) {
            continue;
        }
        let group = label("group");
        let mut key = format!(
            "{verb} {}{}",
            if group.is_empty() {
                String::new()
            } else {
                format!("{group}/")
            },
            label("resource")
        );
        if !label("subresource").is_empty() {
            key = format!("{key}/{}", label("subresource"));
        }
        *out.entry(key).or_default() += value.parse::<f64>().unwrap_or(0.0);
    }
    out
}

pub fn delta(
    after: &BTreeMap<String, f64>,
    before: &BTreeMap<String, f64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                (v - before.get(k).copied().unwrap_or(0.0)) as u64,
            )
        })
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// Writes the bench or the operator made but for Events: server-side applies (no controller or
/// kwok uses them) and Agent creates.
pub fn own_writes(requests: &BTreeMap<String, u64>) -> u64 {
    requests
        .iter()
        .filter(|(k, _)| k.starts_with("APPLY ") || k.as_str() == "POST agentry.dev/agents")
        .map(|(_, v)| v)
        .sum()
}

/// Event writes `controller` made in `ns`: its Events, counting each repeat of a series (the
/// API server's counters cannot tell them from the scheduler's).
pub async fn events_of(client: &kube::Client, ns: &str, controller: &str) -> u64 {
    use k8s_openapi::api::events::v1::Event;
    let events = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("listing Events");
    events
        .items
        .iter()
        .filter(|e| e.reporting_controller.as_deref() == Some(controller))
        .map(|e| e.series.as_ref().map_or(1, |s| s.count.max(1) as u64))
        .sum()
}

/// Waits until the Deployment controller has caught up with the `n` Deployments in `ns` (each
/// one's `status.observedGeneration` is its generation), so that one phase's backlog does not
/// load the next.
pub async fn wait_for_deployment_controller(
    client: &kube::Client,
    ns: &str,
    n: usize,
    bound: Duration,
) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let start = Instant::now();
    loop {
        let list = api
            .list(&ListParams::default())
            .await
            .expect("listing Deployments");
        let caught_up = list
            .items
            .iter()
            .filter(|d| {
                d.status.as_ref().and_then(|s| s.observed_generation) == d.metadata.generation
            })
            .count();
        if caught_up >= n {
            return;
        }
        assert!(
            start.elapsed() < bound,
            "the Deployment controller saw {caught_up}/{n} Deployments in {ns} within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Drains a watch of `api`, decoding every event as the operator would and dropping it.
pub fn drain<K>(api: Api<K>, cfg: watcher::Config) -> tokio::task::JoinHandle<()>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    K::DynamicType: Default,
{
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher(api, cfg).default_backoff());
        while stream.next().await.is_some() {}
    })
}

/// The watches the operator opens on its namespace (`controller::run`): Agents in full and as
/// metadata, the five child kinds by Agentry's label, every Service and ConfigMap as metadata.
/// For `BENCH_FLOOR_WATCHES=1`, which runs the floor beside them to show what serving them
/// costs the API server.
pub fn operator_watches(client: &kube::Client, ns: &str) -> Vec<tokio::task::JoinHandle<()>> {
    use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let c = || client.clone();
    let all = watcher::Config::default;
    let managed = || watcher::Config::default().labels(MANAGED_SELECTOR);
    vec![
        drain(Api::<Agent>::namespaced(c(), ns), all()),
        drain(Api::<PartialObjectMeta<Agent>>::namespaced(c(), ns), all()),
        drain(Api::<Deployment>::namespaced(c(), ns), managed()),
        drain(Api::<Service>::namespaced(c(), ns), managed()),
        drain(Api::<ConfigMap>::namespaced(c(), ns), managed()),
        drain(Api::<ServiceAccount>::namespaced(c(), ns), managed()),
        drain(Api::<PodDisruptionBudget>::namespaced(c(), ns), managed()),
        drain(
            Api::<PartialObjectMeta<Service>>::namespaced(c(), ns),
            all(),
        ),
        drain(
            Api::<PartialObjectMeta<ConfigMap>>::namespaced(c(), ns),
            all(),
        ),
    ]
}

/// JSON bytes of Agent `bench-0` and of its Service's metadata, whole and their managedFields
/// alone: what the operator's uncompacted caches (Agents, every Service's metadata) hold.
pub async fn object_sizes(client: &kube::Client, ns: &str) -> [(usize, usize); 2] {
    use k8s_openapi::api::core::v1::Service;
    let size = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
                whole: String| {
        let managed = serde_json::to_string(&meta.managed_fields).map_or(0, |m| m.len());
        (whole.len(), managed)
    };
    let agent = Api::<Agent>::namespaced(client.clone(), ns)
        .get("bench-0")
        .await
        .expect("an Agent");
    let service = Api::<PartialObjectMeta<Service>>::namespaced(client.clone(), ns)
        .get_metadata("bench-0")
        .await
        .expect("a Service");
    [
        size(&agent.metadata, serde_json::to_string(&agent).unwrap()),
        size(&service.metadata, serde_json::to_string(&service).unwrap()),
    ]
}
