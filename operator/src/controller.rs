//! The controller: watches Agents, their children, and what Agents refer to, and runs the
//! [`reconcile`](crate::reconcile) pipeline on every change.
//!
//! Children are watched by Agentry's `managed-by` label and cached compacted (identity,
//! versions, owner references, a Deployment's status), so `apply` can skip writes that would
//! change nothing while thousands of Agents fit in a few tens of megabytes. Referenced Agents,
//! Services and ConfigMaps are watched as metadata only: a change to one reconciles every Agent
//! that refers to it.

use std::fmt::Debug;
use std::sync::Arc;

use agentry_crds::Agent;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::apply::Child;
use crate::build::labels::MANAGED_SELECTOR;
use crate::metrics::Metrics;
use crate::metrics::ready::{ReadyCounts, ReadyWatch};
use crate::reconcile::{ChildCaches, Context, error_policy, reconcile};
use crate::resolve::{Lookup, Target, config_maps, references};

fn api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// A cached, label-filtered watch of one child kind: the cache, and the stream of changed
/// children for `Controller::owns_stream`.
fn child_watch<K>(
    client: &kube::Client,
    namespace: Option<&str>,
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Child,
{
    let (store, writer) = reflector::store();
    let stream = watcher(
        api::<K>(client, namespace),
        watcher::Config::default().labels(MANAGED_SELECTOR),
    )
    .default_backoff()
    .modify(|o: &mut K| o.compact())
    .reflect(writer)
    .touched_objects();
    (store, stream)
}

/// The Agents in `agents` whose tools refer to `target` `namespace/name`.
fn referrers(
    agents: &Store<Agent>,
    target: Target,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<Agent>> {
    agents
        .state()
        .iter()
        .filter(|a| {
            references(a)
                .iter()
                .any(|r| r.target == target && r.namespace == namespace && r.name == name)
        })
        .map(|a| ObjectRef::from_obj(a.as_ref()))
        .collect()
}

/// The Agents that read ConfigMap `namespace/name` (their system prompt or an OpenAPI document).
fn config_map_referrers(
    agents: &Store<Agent>,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<Agent>> {
    agents
        .state()
        .iter()
        .filter(|a| {
            config_maps(a)
                .iter()
                .any(|(ns, n)| ns == namespace && n == name)
        })
        .map(|a| ObjectRef::from_obj(a.as_ref()))
        .collect()
}

/// How long the controller waits for more events about an Agent before reconciling it.
pub const DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(300);

/// Most reconciles running at once. Reconciles wait on the API server, so a few per core keep
/// it busy; unbounded, a start-up over thousands of Agents holds every one's intermediate
/// objects at once and the heap never shrinks back.
pub const CONCURRENCY: u16 = 16;

/// Settings of one controller.
pub struct ControllerSettings {
    /// Namespace to watch, or `None` for all.
    pub namespace: Option<String>,
    /// Runtime image for Agents that set none.
    pub runtime_image: crate::build::deployment::RuntimeImage,
    /// This replica's identity, for Events.
    pub identity: String,
}

/// Clears a controller's cache gauges when it stops, also when its future is dropped (this
/// replica lost the lease): a standby must not report the Agents it no longer watches.
struct ClearOnDrop<'a> {
    metrics: &'a Metrics,
    scope: Option<&'a str>,
}

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.metrics.clear_scope(self.scope);
    }
}

/// Runs one controller until SIGTERM or Ctrl-C, then finishes in-flight reconciles and returns.
pub async fn run(client: kube::Client, settings: ControllerSettings, metrics: Arc<Metrics>) {
    let ns = settings.namespace.as_deref();
    let _clear = ClearOnDrop {
        metrics: &metrics,
        scope: ns,
    };
    // Debounce: the watch events of our own writes (a child created, the status written) arrive
    // right after them; coalescing them means the next reconcile sees warm caches instead of
    // repeating writes the cache has not caught up with.
    // The Agents are cached without their managedFields: nothing reads them, and held as
    // nested JSON values they were the largest part of the cache.
    // The readiness clock starts at the watch event, before the debounce and the queue.
    let (agent_store, agent_writer) = reflector::store();
    let mut ready_watch = ReadyWatch::new(settings.namespace.clone());
    let ready_metrics = metrics.clone();
    let agent_stream = watcher(api::<Agent>(&client, ns), watcher::Config::default())
        .default_backoff()
        .map_ok(move |event| {
            ready_watch.on_event(
                ready_metrics.ready_latency(),
                &event,
                std::time::Instant::now(),
            );
            event
        })
        .modify(|a: &mut Agent| a.metadata.managed_fields = None)
        .reflect(agent_writer)
        .touched_objects();
    let controller = Controller::for_stream(agent_stream, agent_store).with_config(
        kube::runtime::controller::Config::default()
            .debounce(DEBOUNCE)
            .concurrency(CONCURRENCY),
    );
    let agents = controller.store();

    let (deployments, deployment_stream) = child_watch::<Deployment>(&client, ns);
    let (services, service_stream) = child_watch::<Service>(&client, ns);
    let (config_maps, config_map_stream) = child_watch::<ConfigMap>(&client, ns);
    let (service_accounts, service_account_stream) = child_watch::<ServiceAccount>(&client, ns);
    let (pdbs, pdb_stream) = child_watch::<PodDisruptionBudget>(&client, ns);

    let (all_services, all_services_writer) = reflector::store::<PartialObjectMeta<Service>>();
    let referenced_services = watcher(
        api::<PartialObjectMeta<Service>>(&client, ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(|s: &mut PartialObjectMeta<Service>| s.metadata.managed_fields = None)
    .reflect(all_services_writer)
    .touched_objects();
    let referenced_agents = watcher(
        api::<PartialObjectMeta<Agent>>(&client, ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects();
    let referenced_config_maps = watcher(
        api::<PartialObjectMeta<ConfigMap>>(&client, ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects();

    let ctx = Arc::new(Context {
        client: client.clone(),
        runtime_image: settings.runtime_image,
        children: ChildCaches {
            deployments,
            services,
            config_maps,
            service_accounts,
            pdbs,
        },
        lookup: Lookup {
            client: client.clone(),
            agents: agents.clone(),
            services: all_services,
        },
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "agentry-operator".into(),
                instance: Some(settings.identity),
            },
        ),
        metrics: metrics.clone(),
        failures: Default::default(),
        written: Default::default(),
    });

    let (a1, a2, a3) = (agents.clone(), agents.clone(), agents.clone());
    tracing::info!(
        namespace = ns.unwrap_or("<all>"),
        "starting the Agent controller"
    );
    controller
        .owns_stream(deployment_stream)
        .owns_stream(service_stream)
        .owns_stream(config_map_stream)
        .owns_stream(service_account_stream)
        .owns_stream(pdb_stream)
        .watches_stream(referenced_agents, move |o: PartialObjectMeta<Agent>| {
            referrers(
                &a1,
                Target::Agent,
                &o.namespace().unwrap_or_default(),
                &o.name_any(),
            )
        })
        .watches_stream(referenced_services, move |o: PartialObjectMeta<Service>| {
            referrers(
                &a2,
                Target::Service,
                &o.namespace().unwrap_or_default(),
                &o.name_any(),
            )
        })
        .watches_stream(
            referenced_config_maps,
            move |o: PartialObjectMeta<ConfigMap>| {
                config_map_referrers(&a3, &o.namespace().unwrap_or_default(), &o.name_any())
            },
        )
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            let state = agents.state();
            metrics.set_watched(ns, "Agent", state.len());
            metrics.set_agents(ns, ReadyCounts::of(state.iter().map(|a| a.as_ref())));
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
            futures::future::ready(())
        })
        .await;
    tracing::info!(
        namespace = ns.unwrap_or("<all>"),
        "Agent controller stopped"
    );
}

#[cfg(test)]
mod tests {
    use kube::runtime::watcher::Event;

    use super::*;
    use crate::build::fixtures::{WEATHER, agent};

    fn store_with(agents: &[&str]) -> Store<Agent> {
        let (store, mut writer) = reflector::store();
        for yaml in agents {
            writer.apply_watcher_event(&Event::Apply(agent(yaml)));
        }
        store
    }

    #[test]
    fn a_change_to_a_referenced_agent_reconciles_its_referrers() {
        let store = store_with(&[WEATHER, crate::build::fixtures::MINIMAL]);
        let refs = referrers(&store, Target::Agent, "demo", "travel");
        assert_eq!(refs, vec![ObjectRef::new("weather").within("demo")]);
        assert!(referrers(&store, Target::Agent, "other", "travel").is_empty());
    }

    #[test]
    fn a_change_to_a_referenced_service_reconciles_its_referrers() {
        let store = store_with(&[WEATHER]);
        assert_eq!(
            referrers(&store, Target::Service, "demo", "weather-api").len(),
            1
        );
    }

    #[test]
    fn a_change_to_a_prompt_config_map_reconciles_the_agents_using_it() {
        let yaml = WEATHER.replace(
            "systemPrompt: You answer weather questions with the get_weather tool.",
            "systemPromptFrom: {configMapKeyRef: {name: prompts, key: weather}}",
        );
        let store = store_with(&[&yaml]);
        assert_eq!(config_map_referrers(&store, "demo", "prompts").len(), 1);
        assert!(config_map_referrers(&store, "demo", "other").is_empty());
    }

    #[test]
    fn a_change_to_an_openapi_document_config_map_reconciles_the_agents_using_it() {
        let yaml = WEATHER.replace(
            "      agent: {name: travel}\n",
            "      agent: {name: travel}\n    - name: pets\n      description: Pets.\n      openapi:\n        \
             document: {configMapKeyRef: {name: pet-api, key: openapi.yaml}}\n        url: https://pets.example.com\n",
        );
        let store = store_with(&[&yaml, crate::build::fixtures::MINIMAL]);
        assert_eq!(
            config_map_referrers(&store, "demo", "pet-api"),
            vec![ObjectRef::new("weather").within("demo")]
        );
        assert!(config_map_referrers(&store, "other", "pet-api").is_empty());
    }
}
