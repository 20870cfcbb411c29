//! The reconciler against a mock API server: the exact requests it makes for a new Agent, none
//! for an unchanged one, and the repairs, deletions and conditions of the other cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use agentry_crds::Agent;
use agentry_operator::reconcile::{Error, error_policy, reconcile};
use kube::runtime::controller::Action;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};
use support::harness::*;
use support::mock_api::{MockApi, Recorded};

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

/// WEATHER with an openapi tool whose document is ConfigMap `pet-api` key `openapi.yaml`.
fn with_openapi_tool() -> String {
    WEATHER.replace(
        "      agent: {name: travel}\n",
        "      agent: {name: travel}\n    - name: pets\n      description: The pet store.\n      openapi:\n        \
         document: {configMapKeyRef: {name: pet-api, key: openapi.yaml}}\n        \
         url: https://pets.example.com/v1\n        operations: [listPets, createPet]\n",
    )
}

#[tokio::test]
async fn an_openapi_document_from_a_config_map_reaches_the_runtime_config_as_operations() {
    let petstore = include_str!("../../tests/fixtures/openapi/petstore.yaml");
    let h = Harness::new(MockApi::new(move |r| {
        (r.path == "/api/v1/namespaces/demo/configmaps/pet-api").then(|| {
            (200, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pet-api", "namespace": "demo"}, "data": {"openapi.yaml": petstore}}))
        })
    }));
    h.reconcile(&agent(&with_openapi_tool())).await.unwrap();
    let requests = h.api.take();
    let reads: Vec<String> = requests
        .iter()
        .filter(|r| r.method == "GET")
        .map(Recorded::line)
        .collect();
    assert_eq!(reads, ["GET /api/v1/namespaces/demo/configmaps/pet-api"]);
    let cm = &requests
        .iter()
        .find(|r| r.method == "PATCH" && r.path.contains("/configmaps/weather-config"))
        .unwrap()
        .body;
    let config: Value = serde_json::from_str(cm["data"]["config.json"].as_str().unwrap()).unwrap();
    let tool = &config["tools"][2]["kind"]["openapi"];
    assert_eq!(tool["url"], "https://pets.example.com/v1");
    let names: Vec<&str> = tool["document"]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pets_listPets", "pets_createPet"]);
    let status = status_patch(&requests).unwrap();
    assert_eq!(condition(&status, "ToolsResolved")["status"], "True");
}

#[tokio::test]
async fn a_missing_openapi_document_is_reported_but_the_rest_of_the_agent_rolls_out() {
    let h = Harness::new(MockApi::default_answers());
    h.reconcile(&agent(&with_openapi_tool())).await.unwrap();
    let requests = h.api.take();
    let status = status_patch(&requests).unwrap();
    let c = condition(&status, "ToolsResolved");
    assert_eq!(c["status"], "False");
    assert_eq!(c["reason"], "ConfigMapNotFound");
    assert_eq!(
        c["message"],
        "tool pets: openapi document: ConfigMap demo/pet-api not found"
    );
    let cm = &requests
        .iter()
        .find(|r| r.method == "PATCH" && r.path.contains("/configmaps/weather-config"))
        .expect("the runtime config is still written")
        .body;
    let config: Value = serde_json::from_str(cm["data"]["config.json"].as_str().unwrap()).unwrap();
    assert_eq!(
        config["tools"][2]["kind"]["openapi"]["document"]["operations"],
        json!([]),
        "the tool offers nothing"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.method == "PATCH" && r.path.ends_with("/deployments/weather"))
    );
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

fn described_travel(description: Option<&str>) -> Agent {
    let mut travel = agent(TRAVEL);
    travel.spec.description = description.map(str::to_string);
    travel
}

fn written_tools(requests: &[Recorded]) -> Vec<Value> {
    let cm = &requests
        .iter()
        .find(|r| r.method == "PATCH" && r.path.contains("/configmaps/weather-config"))
        .unwrap()
        .body;
    let config: Value = serde_json::from_str(cm["data"]["config.json"].as_str().unwrap()).unwrap();
    config["tools"].as_array().unwrap().clone()
}

const WITHOUT_DESCRIPTION: (&str, &str) =
    ("      description: Ask the travel agent about trips.\n", "");

#[tokio::test]
async fn an_agent_tool_without_a_description_takes_the_named_agents_from_the_cache() {
    let mut h = Harness::new(MockApi::default_answers());
    h.agents
        .apply_watcher_event(&Event::Apply(described_travel(Some(
            "Plans trips with dates and costs.",
        ))));
    let yaml = WEATHER.replace(WITHOUT_DESCRIPTION.0, WITHOUT_DESCRIPTION.1);
    h.reconcile(&agent(&yaml)).await.unwrap();
    let requests = h.api.take();
    assert!(
        requests.iter().all(|r| r.method != "GET"),
        "read from the cache"
    );
    let tools = written_tools(&requests);
    assert_eq!(tools[1]["name"], "ask_travel_agent");
    assert_eq!(tools[1]["description"], "Plans trips with dates and costs.");
    let status = status_patch(&requests).unwrap();
    assert_eq!(condition(&status, "ToolsResolved")["status"], "True");
}

#[tokio::test]
async fn the_tools_own_description_wins_over_the_named_agents() {
    let mut h = Harness::new(MockApi::default_answers());
    h.agents
        .apply_watcher_event(&Event::Apply(described_travel(Some(
            "Plans trips with dates and costs.",
        ))));
    h.reconcile(&agent(WEATHER)).await.unwrap();
    let tools = written_tools(&h.api.take());
    assert_eq!(tools[1]["description"], "Ask the travel agent about trips.");
}

#[tokio::test]
async fn an_agent_tool_whose_agent_has_no_description_either_is_a_tools_resolved_problem() {
    let h = Harness::new(MockApi::default_answers());
    let yaml = WEATHER.replace(WITHOUT_DESCRIPTION.0, WITHOUT_DESCRIPTION.1);
    h.reconcile(&agent(&yaml)).await.unwrap();
    let requests = h.api.take();
    let status = status_patch(&requests).unwrap();
    let c = condition(&status, "ToolsResolved");
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("False"), Some("ToolDescriptionMissing"))
    );
    assert_eq!(
        c["message"],
        "tool ask_travel_agent: set its description, or spec.description on Agent demo/travel \
         (an agent tool without a description takes the named Agent's)"
    );
    // The tool still works meanwhile, described by a phrase naming the Agent.
    let tools = written_tools(&requests);
    assert!(
        tools[1]["description"]
            .as_str()
            .unwrap()
            .starts_with("Ask the agent travel (namespace demo)"),
        "{}",
        tools[1]["description"]
    );
}
