//! The reconciler against a mock API server: the exact requests it makes for a new Agent, none
//! for an unchanged one, and the repairs, deletions and conditions of the other cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mock_api.rs"]
mod mock_api;

use std::sync::Arc;
use std::time::Duration;

use agentry_crds::Agent;
use agentry_operator::apply::Child;
use agentry_operator::metrics::Metrics;
use agentry_operator::reconcile::{ChildCaches, Context, Error, error_policy, reconcile};
use agentry_operator::resolve::Lookup;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher::Event;
use mock_api::{MockApi, Recorded};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const WEATHER: &str = r#"
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

const TRAVEL: &str = r#"
apiVersion: agentry.dev/v1alpha1
kind: Agent
metadata: {name: travel, namespace: demo, uid: 99-uid, generation: 1}
spec:
  model: {id: anthropic.claude-3-haiku-20240307-v1:0}
  systemPrompt: Plan trips.
"#;

struct Harness {
    api: MockApi,
    ctx: Arc<Context>,
    agents: Writer<Agent>,
    deployments: Writer<Deployment>,
    services: Writer<Service>,
    config_maps: Writer<ConfigMap>,
    service_accounts: Writer<ServiceAccount>,
    pdbs: Writer<PodDisruptionBudget>,
}

fn agent(yaml: &str) -> Agent {
    serde_yaml::from_str(yaml).unwrap()
}

impl Harness {
    /// Caches hold the travel Agent and the weather-api Service, so every reference resolves.
    fn new(api: MockApi) -> Self {
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

    async fn reconcile(&self, agent: &Agent) -> Result<Action, Error> {
        reconcile(Arc::new(agent.clone()), self.ctx.clone()).await
    }

    /// Feeds what the server answered into the caches (as the watches would), and the written
    /// status into `agent`.
    fn feed_back(&mut self, requests: &[Recorded], agent: &mut Agent) {
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

fn writes(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.method != "GET")
        .map(Recorded::line)
        .collect()
}

fn events(requests: &[Recorded]) -> Vec<(String, String)> {
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

fn status_patch(requests: &[Recorded]) -> Option<Value> {
    requests
        .iter()
        .find(|r| r.path.ends_with("/status"))
        .map(|r| r.body["status"].clone())
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap()
}

#[tokio::test]
async fn new_agent_gets_every_child_by_server_side_apply_under_one_field_manager() {
    let h = Harness::new(MockApi::default_answers());
    h.reconcile(&agent(WEATHER)).await.unwrap();
    let requests = h.api.take();
    assert!(
        requests.iter().all(|r| r.method != "GET"),
        "synced caches say the children are missing: no reads"
    );
    let children: Vec<String> = writes(&requests)
        .into_iter()
        .filter(|w| !w.ends_with("/events"))
        .collect();
    assert_eq!(
        children,
        [
            "PATCH /api/v1/namespaces/demo/serviceaccounts/weather",
            "PATCH /api/v1/namespaces/demo/configmaps/weather-config",
            "PATCH /apis/apps/v1/namespaces/demo/deployments/weather",
            "PATCH /api/v1/namespaces/demo/services/weather",
            "PATCH /apis/policy/v1/namespaces/demo/poddisruptionbudgets/weather",
            "PATCH /apis/agentry.dev/v1alpha1/namespaces/demo/agents/weather/status",
        ]
    );
    for r in requests.iter().filter(|r| r.method == "PATCH") {
        assert!(
            r.query.contains("fieldManager=agentry-operator"),
            "{}: {}",
            r.line(),
            r.query
        );
        assert!(r.query.contains("force=true"), "{}: {}", r.line(), r.query);
        if !r.path.ends_with("/status") {
            let owner = &r.body["metadata"]["ownerReferences"][0];
            assert_eq!(owner["uid"], "7f3a-uid", "{}", r.line());
            assert_eq!(owner["kind"], "Agent");
            assert_eq!(owner["controller"], true);
            assert_eq!(r.body["metadata"]["labels"]["agentry.dev/agent"], "weather");
        }
    }
    let patch_of = |kind: &str| {
        &requests
            .iter()
            .find(|r| r.method == "PATCH" && r.path.contains(kind))
            .unwrap()
            .body
    };
    let sa = patch_of("/serviceaccounts/");
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::111122223333:role/agentry-weather"
    );
    let cm = &requests
        .iter()
        .find(|r| r.method == "PATCH" && r.path.contains("/configmaps/"))
        .unwrap()
        .body;
    let config: Value = serde_json::from_str(cm["data"]["config.json"].as_str().unwrap()).unwrap();
    assert_eq!(
        config["tools"][0]["kind"]["http"]["url"],
        "http://weather-api.demo.svc.cluster.local:80/v1/weather"
    );
    assert_eq!(
        config["tools"][1]["kind"]["agent"]["url"],
        "http://travel.demo.svc.cluster.local"
    );
    assert!(
        !cm.to_string().contains("token\""),
        "secret values never pass through the ConfigMap"
    );

    let status = status_patch(&requests).unwrap();
    assert_eq!(status["endpoint"], "http://weather.demo.svc.cluster.local");
    assert_eq!(status["observedGeneration"], 2);
    assert_eq!(condition(&status, "ToolsResolved")["status"], "True");
    assert_eq!(condition(&status, "Ready")["status"], "False");
    assert_eq!(condition(&status, "Ready")["reason"], "RolloutInProgress");
    assert_eq!(
        events(&requests),
        Vec::<(String, String)>::new(),
        "a first rollout raises no Event"
    );
}

/// Reconciles once and feeds the answers back, as the watches would.
async fn settled() -> (Harness, Agent) {
    let mut h = Harness::new(MockApi::default_answers());
    let mut a = agent(WEATHER);
    h.reconcile(&a).await.unwrap();
    let first = h.api.take();
    h.feed_back(&first, &mut a);
    (h, a)
}

#[tokio::test]
async fn unchanged_agent_makes_no_writes_at_all() {
    let (h, a) = settled().await;
    let action = h.reconcile(&a).await.unwrap();
    assert_eq!(
        h.api.take().iter().map(Recorded::line).collect::<Vec<_>>(),
        Vec::<String>::new()
    );
    assert_eq!(action, Action::requeue(Duration::from_secs(1800)));
}

#[tokio::test]
async fn deployment_edited_by_hand_is_put_back() {
    let (mut h, a) = settled().await;
    // A spec edit: the server stores it and bumps the generation; the watch brings the new one.
    let path = "/apis/apps/v1/namespaces/demo/deployments/weather";
    h.api.edit(path, |d| {
        d["spec"]["replicas"] = 7.into();
        d["metadata"]["generation"] = 2.into();
    });
    let mut cached = h.ctx.children.deployments.state()[0].as_ref().clone();
    cached.metadata.generation = Some(2);
    h.deployments.apply_watcher_event(&Event::Apply(cached));
    h.reconcile(&a).await.unwrap();
    let requests = h.api.take();
    assert_eq!(writes(&requests), [format!("PATCH {path}")]);
    let patch = requests.iter().find(|r| r.method == "PATCH").unwrap();
    assert_eq!(patch.body["spec"]["replicas"], 2);
}

#[tokio::test]
async fn after_a_restart_unchanged_children_are_read_once_and_not_written() {
    let (h, a) = settled().await;
    // A new process remembers no writes.
    h.ctx
        .written
        .forget("demo", &["weather".into(), "weather-config".into()]);
    h.reconcile(&a).await.unwrap();
    let requests = h.api.take();
    assert_eq!(writes(&requests), Vec::<String>::new());
    assert_eq!(
        requests.iter().filter(|r| r.method == "GET").count(),
        5,
        "one read per child"
    );
    // And from then on, not even reads.
    h.reconcile(&a).await.unwrap();
    assert!(h.api.take().is_empty());
}

#[tokio::test]
async fn deleted_service_is_recreated() {
    let (mut h, a) = settled().await;
    let svc = h.ctx.children.services.state()[0].as_ref().clone();
    h.services.apply_watcher_event(&Event::Delete(svc));
    h.reconcile(&a).await.unwrap();
    assert_eq!(
        writes(&h.api.take()),
        ["PATCH /api/v1/namespaces/demo/services/weather"]
    );
}

#[tokio::test]
async fn changed_system_prompt_rewrites_the_config_and_changes_the_pod_template_hash() {
    let (h, mut a) = settled().await;
    let live = h
        .api
        .stored("/apis/apps/v1/namespaces/demo/deployments/weather")
        .unwrap();
    let old_hash =
        live["spec"]["template"]["metadata"]["annotations"]["agentry.dev/config-hash"].clone();
    a.spec.system_prompt = Some("You answer weather questions, in French.".into());
    a.metadata.generation = Some(3);
    h.reconcile(&a).await.unwrap();
    let requests = h.api.take();
    let w = writes(&requests);
    assert_eq!(
        &w[..2],
        [
            "PATCH /api/v1/namespaces/demo/configmaps/weather-config",
            "PATCH /apis/apps/v1/namespaces/demo/deployments/weather"
        ]
    );
    let d = requests
        .iter()
        .find(|r| r.method == "PATCH" && r.path.contains("/deployments/"))
        .unwrap();
    let new_hash =
        &d.body["spec"]["template"]["metadata"]["annotations"]["agentry.dev/config-hash"];
    assert_ne!(*new_hash, old_hash);
    assert_eq!(status_patch(&requests).unwrap()["observedGeneration"], 3);
}

#[tokio::test]
async fn missing_referenced_agent_gives_tools_resolved_false_and_a_warning() {
    let mut h = Harness::new(MockApi::default_answers());
    h.agents.apply_watcher_event(&Event::Delete(agent(TRAVEL)));
    h.reconcile(&agent(WEATHER)).await.unwrap();
    let requests = h.api.take();
    // Not in the cache, so it is read from the server: 404.
    assert!(
        requests
            .iter()
            .any(|r| r.line() == "GET /apis/agentry.dev/v1alpha1/namespaces/demo/agents/travel")
    );
    let status = status_patch(&requests).unwrap();
    let c = condition(&status, "ToolsResolved");
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("False"), Some("AgentNotFound"))
    );
    assert_eq!(
        c["message"],
        "tool ask_travel_agent: Agent demo/travel not found"
    );
    assert!(events(&requests).contains(&("Warning".into(), "AgentNotFound".into())));
    // The URL is a DNS name: the rollout goes on, and the call fails softly until travel exists.
    assert!(
        requests
            .iter()
            .any(|r| r.line() == "PATCH /apis/apps/v1/namespaces/demo/deployments/weather")
    );
}

#[tokio::test]
async fn missing_prompt_config_map_key_writes_no_children() {
    let h = Harness::new(MockApi::new(|r| {
        (r.path == "/api/v1/namespaces/demo/configmaps/prompts").then(|| {
            (200, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "prompts", "namespace": "demo"}, "data": {"other": "x"}}))
        })
    }));
    let yaml = WEATHER.replace(
        "systemPrompt: You answer weather questions with the get_weather tool.",
        "systemPromptFrom: {configMapKeyRef: {name: prompts, key: weather}}",
    );
    h.reconcile(&agent(&yaml)).await.unwrap();
    let requests = h.api.take();
    assert_eq!(
        writes(&requests)
            .into_iter()
            .filter(|w| !w.ends_with("/events"))
            .collect::<Vec<_>>(),
        ["PATCH /apis/agentry.dev/v1alpha1/namespaces/demo/agents/weather/status"]
    );
    let status = status_patch(&requests).unwrap();
    let c = condition(&status, "ToolsResolved");
    assert_eq!(c["reason"], "ConfigMapKeyNotFound");
    assert_eq!(
        c["message"],
        "systemPromptFrom: ConfigMap demo/prompts has no key \"weather\""
    );
}

#[tokio::test]
async fn prompt_from_a_config_map_reaches_the_runtime_config() {
    let h = Harness::new(MockApi::new(|r| {
        (r.path == "/api/v1/namespaces/demo/configmaps/prompts").then(|| {
            (200, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "prompts", "namespace": "demo"}, "data": {"weather": "Be a meteorologist."}}))
        })
    }));
    let yaml = WEATHER.replace(
        "systemPrompt: You answer weather questions with the get_weather tool.",
        "systemPromptFrom: {configMapKeyRef: {name: prompts, key: weather}}",
    );
    h.reconcile(&agent(&yaml)).await.unwrap();
    let requests = h.api.take();
    let cm = &requests
        .iter()
        .find(|r| r.method == "PATCH" && r.path.contains("/configmaps/weather-config"))
        .unwrap()
        .body;
    let config: Value = serde_json::from_str(cm["data"]["config.json"].as_str().unwrap()).unwrap();
    assert_eq!(config["systemPrompt"], "Be a meteorologist.");
}

#[tokio::test]
async fn invalid_agent_name_gets_a_condition_and_an_event_and_waits_for_a_change() {
    let h = Harness::new(MockApi::default_answers());
    let action = h
        .reconcile(&agent(
            &WEATHER.replace("name: weather,", "name: weather.v2,"),
        ))
        .await
        .unwrap();
    assert_eq!(action, Action::await_change());
    let requests = h.api.take();
    assert_eq!(
        writes(&requests),
        [
            "PATCH /apis/agentry.dev/v1alpha1/namespaces/demo/agents/weather.v2/status",
            "POST /apis/events.k8s.io/v1/namespaces/demo/events",
        ]
    );
    let status = status_patch(&requests).unwrap();
    assert_eq!(condition(&status, "Ready")["reason"], "InvalidName");
    assert_eq!(
        events(&requests),
        [("Warning".to_string(), "InvalidName".to_string())]
    );
}

#[tokio::test]
async fn scaling_down_to_one_replica_deletes_the_budget_and_naming_an_existing_account_deletes_ours()
 {
    let (h, mut a) = settled().await;
    a.spec.replicas = 1;
    a.spec.service_account = Some(agentry_crds::ServiceAccountSpec {
        name: Some("bedrock-invoker".into()),
        annotations: None,
    });
    h.reconcile(&a).await.unwrap();
    let w = writes(&h.api.take());
    assert!(
        w.contains(
            &"DELETE /apis/policy/v1/namespaces/demo/poddisruptionbudgets/weather".to_string()
        ),
        "{w:?}"
    );
    assert!(
        w.contains(&"DELETE /api/v1/namespaces/demo/serviceaccounts/weather".to_string()),
        "{w:?}"
    );
}

#[tokio::test]
async fn api_error_fails_the_reconcile_and_backs_off_exponentially() {
    let h = Harness::new(MockApi::new(|r| {
        r.path.contains("/deployments/").then(|| (500, json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500, "message": "etcd timeout"})))
    }));
    let a = Arc::new(agent(WEATHER));
    let err = reconcile(a.clone(), h.ctx.clone()).await.unwrap_err();
    assert!(matches!(err, Error::Apply(_)), "{err}");
    assert_eq!(
        error_policy(a.clone(), &err, h.ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );
    assert_eq!(
        error_policy(a.clone(), &err, h.ctx.clone()),
        Action::requeue(Duration::from_secs(10))
    );
    let requests = h.api.take();
    assert!(events(&requests).contains(&("Warning".into(), "ReconcileFailed".into())));
    assert!(
        h.ctx
            .metrics
            .render()
            .contains("agentry_operator_reconcile_errors_total{category=\"apply\"} 1")
    );
}

/// (group, resource[/subresource], verb) of a request, as RBAC sees it.
fn rbac_of(r: &Recorded) -> (String, String, String) {
    let parts: Vec<&str> = r.path.trim_matches('/').split('/').collect();
    let (group, rest) = if parts[0] == "api" {
        ("", &parts[2..])
    } else {
        (parts[1], &parts[3..])
    };
    let rest = if rest.first() == Some(&"namespaces") && rest.len() > 2 {
        &rest[2..]
    } else {
        rest
    };
    let resource = match rest {
        [res, _name, sub] => format!("{res}/{sub}"),
        [res, ..] => res.to_string(),
        [] => String::new(),
    };
    let verb = match (r.method.as_str(), rest.len()) {
        ("GET", 1) if r.query.contains("watch=true") => "watch",
        ("GET", 1) => "list",
        ("GET", _) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", _) => "delete",
        (m, _) => m,
    };
    (group.to_string(), resource, verb.to_string())
}

#[tokio::test]
async fn every_request_the_operator_sends_is_declared_for_rbac() {
    let mut seen = Vec::new();
    // Reconciles: a new Agent with a missing target (reads), a settled one changed by hand, a
    // scale-down (deletes), a prompt from a ConfigMap, an invalid one (Events).
    let mut h = Harness::new(MockApi::new(|r| {
        (r.path == "/api/v1/namespaces/demo/configmaps/prompts").then(|| {
            (200, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "prompts", "namespace": "demo"}, "data": {"p": "x"}}))
        })
    }));
    h.agents.apply_watcher_event(&Event::Delete(agent(TRAVEL)));
    let mut a = agent(WEATHER);
    h.reconcile(&a).await.unwrap();
    let first = h.api.take();
    h.feed_back(&first, &mut a);
    seen.extend(first);
    h.ctx
        .written
        .forget("demo", &["weather".into(), "weather-config".into()]);
    a.spec.replicas = 1;
    a.spec.service_account = Some(agentry_crds::ServiceAccountSpec {
        name: Some("existing".into()),
        annotations: None,
    });
    h.reconcile(&a).await.unwrap();
    let prompt = WEATHER.replace(
        "systemPrompt: You answer weather questions with the get_weather tool.",
        "systemPromptFrom: {configMapKeyRef: {name: prompts, key: p}}",
    );
    h.reconcile(&agent(&prompt)).await.unwrap();
    h.reconcile(&agent(
        &WEATHER.replace("name: weather,", "name: weather.v2,"),
    ))
    .await
    .unwrap();
    seen.extend(h.api.take());

    // Leader election: create the Lease, then renew it.
    let api = MockApi::default_answers();
    let elector = agentry_operator::leader::LeaderElector::new(
        api.client.clone(),
        "agentry-system",
        "agentry-operator",
        "me",
    );
    assert!(elector.try_acquire_or_renew().await.unwrap());
    seen.extend(api.take());
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "agentry-operator", "namespace": "agentry-system", "resourceVersion": "5"},
                       "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15, "renewTime": "2026-01-01T00:00:00.000000Z"}});
    let api = MockApi::new(move |r| {
        (r.method == "GET" || r.method == "PUT").then(|| (200, lease.clone()))
    });
    let elector = agentry_operator::leader::LeaderElector::new(
        api.client.clone(),
        "agentry-system",
        "agentry-operator",
        "me",
    );
    assert!(elector.try_acquire_or_renew().await.unwrap());
    seen.extend(api.take());

    let mut undeclared: Vec<String> = seen
        .iter()
        .map(rbac_of)
        .filter(|(g, res, verb)| !agentry_operator::rbac::declared(g, res, verb))
        .map(|(g, res, verb)| format!("{verb} {g}/{res}"))
        .collect();
    undeclared.dedup();
    assert!(
        undeclared.is_empty(),
        "requests missing from rbac::API_ACCESS: {undeclared:?}"
    );
    let verbs: std::collections::BTreeSet<String> = seen.iter().map(|r| rbac_of(r).2).collect();
    assert_eq!(
        verbs.into_iter().collect::<Vec<_>>(),
        ["create", "delete", "get", "patch", "update"],
        "the scenarios exercise every write verb"
    );
}
