//! The reconciler's test harness: a Context wired to the mock API server, with caches the tests
//! fill as the watches would, and the Agents the tests use.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use super::mock_api::{MockApi, Recorded};
use agentry_crds::Agent;
use agentry_operator::apply::Child;
use agentry_operator::metrics::Metrics;
use agentry_operator::reconcile::{ChildCaches, Context, Error, reconcile};
use agentry_operator::resolve::Lookup;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher::Event;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub const WEATHER: &str = r#"
apiVersion: agentry.dev/v1alpha1
kind: Agent
metadata: {name: weather, namespace: demo, uid: 7f3a-uid, generation: 2}
spec:
  model: {id: us.anthropic.claude-3-7-sonnet-20250219-v1:0, maxTokens: 1024}
  systemPrompt: You answer weather questions with the get_weather tool.
  tools:
    - name: get_weather
      description: Current weather for a city.
      http:
        service: {name: weather-api, port: 80, path: /v1/weather}
        headers:
          - name: x-api-key
            valueFrom: {secretKeyRef: {name: weather-api, key: token}}
    - name: ask_travel_agent
      description: Ask the travel agent about trips.
      agent: {name: travel}
  replicas: 2
  serviceAccount:
    annotations: {eks.amazonaws.com/role-arn: "arn:aws:iam::111122223333:role/agentry-weather"}
"#;

pub const TRAVEL: &str = r#"
apiVersion: agentry.dev/v1alpha1
kind: Agent
metadata: {name: travel, namespace: demo, uid: 99-uid, generation: 1}
spec:
  model: {id: anthropic.claude-3-haiku-20240307-v1:0}
  systemPrompt: Plan trips.
"#;

pub struct Harness {
    pub api: MockApi,
    pub ctx: Arc<Context>,
    pub agents: Writer<Agent>,
    pub deployments: Writer<Deployment>,
    pub services: Writer<Service>,
    pub config_maps: Writer<ConfigMap>,
    pub service_accounts: Writer<ServiceAccount>,
    pub pdbs: Writer<PodDisruptionBudget>,
}

pub fn agent(yaml: &str) -> Agent {
    serde_yaml::from_str(yaml).unwrap()
}

impl Harness {
    /// Caches hold the travel Agent and the weather-api Service, so every reference resolves.
    pub fn new(api: MockApi) -> Self {
        let (agents_store, mut agents) = reflector::store::<Agent>();
        agents.apply_watcher_event(&Event::Apply(agent(TRAVEL)));
        let (svc_meta_store, mut svc_meta) = reflector::store::<PartialObjectMeta<Service>>();
        let meta: PartialObjectMeta<Service> = serde_json::from_value(json!({
            "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
            "metadata": {"name": "weather-api", "namespace": "demo"}
        }))
        .unwrap();
        svc_meta.apply_watcher_event(&Event::Apply(meta));
        // Child caches that finished their first list, as they are once the operator runs.
        fn synced<K: Child>() -> (reflector::Store<K>, Writer<K>) {
            let (store, mut writer) = reflector::store();
            writer.apply_watcher_event(&Event::Init);
            writer.apply_watcher_event(&Event::InitDone);
            (store, writer)
        }
        let (deployments_store, deployments) = synced();
        let (services_store, services) = synced();
        let (cms_store, config_maps) = synced();
        let (sas_store, service_accounts) = synced();
        let (pdbs_store, pdbs) = synced();
        let ctx = Arc::new(Context {
            client: api.client.clone(),
            runtime_image: agentry_operator::build::deployment::RuntimeImage {
                image: "registry.example/agentry-runtime:1.0.0".into(),
                ..Default::default()
            },
            children: ChildCaches {
                deployments: deployments_store,
                services: services_store,
                config_maps: cms_store,
                service_accounts: sas_store,
                pdbs: pdbs_store,
            },
            lookup: Lookup {
                client: api.client.clone(),
                agents: agents_store,
                services: svc_meta_store,
            },
            recorder: Recorder::new(
                api.client.clone(),
                Reporter {
                    controller: "agentry-operator".into(),
                    instance: Some("test".into()),
                },
            ),
            metrics: Arc::new(Metrics::new()),
            failures: Default::default(),
            written: Default::default(),
        });
        Self {
            api,
            ctx,
            agents,
            deployments,
            services,
            config_maps,
            service_accounts,
            pdbs,
        }
    }

    pub async fn reconcile(&self, agent: &Agent) -> Result<Action, Error> {
        reconcile(Arc::new(agent.clone()), self.ctx.clone()).await
    }

    /// Feeds what the server answered into the caches (as the watches would), and the written
    /// status into `agent`.
    pub fn feed_back(&mut self, requests: &[Recorded], agent: &mut Agent) {
        // As the watches do: the server's object, compacted.
        fn obj<K: DeserializeOwned + Child>(r: &Recorded) -> K {
            let mut v = r.body.clone();
            v["metadata"]["resourceVersion"] = "1".into();
            v["metadata"]["generation"] = 1.into();
            let mut k: K = serde_json::from_value(v).unwrap();
            k.compact();
            k
        }
        for r in requests.iter().filter(|r| r.method == "PATCH") {
            if r.path.ends_with("/status") {
                agent.status = Some(serde_json::from_value(r.body["status"].clone()).unwrap());
            } else if r.path.contains("/deployments/") {
                self.deployments.apply_watcher_event(&Event::Apply(obj(r)));
            } else if r.path.contains("/services/") {
                self.services.apply_watcher_event(&Event::Apply(obj(r)));
            } else if r.path.contains("/configmaps/") {
                self.config_maps.apply_watcher_event(&Event::Apply(obj(r)));
            } else if r.path.contains("/serviceaccounts/") {
                self.service_accounts
                    .apply_watcher_event(&Event::Apply(obj(r)));
            } else if r.path.contains("/poddisruptionbudgets/") {
                self.pdbs.apply_watcher_event(&Event::Apply(obj(r)));
            }
        }
    }
}

pub fn writes(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.method != "GET")
        .map(Recorded::line)
        .collect()
}

pub fn events(requests: &[Recorded]) -> Vec<(String, String)> {
    requests
        .iter()
        .filter(|r| r.path.ends_with("/events"))
        .map(|r| {
            (
                r.body["type"].as_str().unwrap().to_string(),
                r.body["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn status_patch(requests: &[Recorded]) -> Option<Value> {
    requests
        .iter()
        .find(|r| r.path.ends_with("/status"))
        .map(|r| r.body["status"].clone())
}

pub fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap()
}
