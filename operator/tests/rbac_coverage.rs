//! Every request the operator sends is declared in `rbac::API_ACCESS`, which the Helm chart's
//! RBAC must match: the reconciler scenarios and the leader elector run against the mock API
//! server, and each request is mapped to the (group, resource, verb) RBAC would check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use kube::runtime::watcher::Event;
use serde_json::json;
use support::harness::*;
use support::mock_api::{MockApi, Recorded};

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
