//! Cluster suite: the chart's CRD on a real API server (the local control plane, or
//! `AGENTRY_TEST_KUBECONFIG`'s). It is Established, every example is accepted, every invalid
//! case is refused with a message naming the field, the server adds no defaults to the spec
//! beyond `replicas`, `kubectl scale agent` works, and an `autoscaling/v2` HPA targeting an
//! Agent reads its scale.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use agentry_crds::Agent;
use agentry_tests::cluster::{self, TestNamespace};
use agentry_tests::fixtures;
use agentry_tests::k8s::Cluster;
use kube::api::{Api, DynamicObject};
use serde_json::Value;

async fn apply(client: &kube::Client, ns: &str, doc: &Value) -> Result<DynamicObject, kube::Error> {
    cluster::apply_document(client, ns, doc).await
}

#[tokio::test]
async fn generated_crd_accepts_the_examples_and_refuses_each_invalid_agent() {
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client)
        .await
        .expect("the CRD installs and is Established");
    let ns = TestNamespace::create(&client, "agentry-crd")
        .await
        .expect("test namespace");
    let mut failures = Vec::new();

    for (file, doc) in fixtures::example_documents().expect("examples load") {
        if let Err(e) = apply(&client, &ns.name, &doc).await {
            failures.push(format!("{file} {}: refused: {e}", doc["metadata"]["name"]));
        }
    }

    for case in fixtures::invalid_agent_cases().expect("cases load") {
        match apply(&client, &ns.name, &case.agent).await {
            Ok(_) => failures.push(format!("{}: accepted, should be refused", case.case)),
            Err(kube::Error::Api(status)) => {
                let named = case
                    .expect
                    .iter()
                    .all(|want| status.message.contains(want.as_str()));
                if status.code != 422 || !named {
                    failures.push(format!(
                        "{}: refused with {} but the message lacks {:?}: {}",
                        case.case, status.code, case.expect, status.message
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: transport error: {e}", case.case)),
        }
    }

    // The server fills in replicas (the scale subresource needs it) and nothing else, so a
    // GitOps tool comparing its manifest sees no drift.
    let agents: Api<Agent> = Api::namespaced(client.clone(), &ns.name);
    match agents.get("hello").await {
        Ok(hello) => {
            let spec = serde_json::to_value(&hello.spec).unwrap();
            let keys: Vec<&String> = spec.as_object().unwrap().keys().collect();
            if keys != ["model", "replicas", "systemPrompt"] || hello.spec.replicas != 1 {
                failures.push(format!("server-side defaults changed the spec: {spec}"));
            }
        }
        Err(e) => failures.push(format!("reading back the minimal Agent: {e}")),
    }

    match agents.get_scale("hello").await {
        Ok(scale) => {
            if scale.spec.and_then(|s| s.replicas) != Some(1) {
                failures.push("the scale subresource does not report spec.replicas".into());
            }
        }
        Err(e) => failures.push(format!("the scale subresource: {e}")),
    }

    // `kubectl scale` goes through the scale subresource into spec.replicas.
    let (ok, out) = cluster.kubectl(
        &["scale", "agent/hello", "--replicas=3", "-n", &ns.name],
        None,
    );
    if !ok {
        failures.push(format!("kubectl scale agent: {out}"));
    } else if agents.get("hello").await.map(|a| a.spec.replicas).ok() != Some(3) {
        failures.push("kubectl scale agent did not set spec.replicas to 3".into());
    }

    // The HPA controller reads the Agent's scale: AbleToScale becomes True.
    let hpa = serde_json::json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "hello", "namespace": ns.name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "agentry.dev/v1alpha1", "kind": "Agent", "name": "hello"},
            "minReplicas": 1, "maxReplicas": 4,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}],
        },
    });
    cluster.kubectl_ok(&["apply", "-f", "-"], Some(&hpa.to_string()));
    let jsonpath = "jsonpath={.status.conditions[?(@.type==\"AbleToScale\")].status}";
    let start = std::time::Instant::now();
    loop {
        let (_, status) = cluster.kubectl(
            &["get", "hpa", "hello", "-n", &ns.name, "-o", jsonpath],
            None,
        );
        if status.trim() == "True" {
            break;
        }
        if start.elapsed() > std::time::Duration::from_secs(60) {
            let (_, all) =
                cluster.kubectl(&["get", "hpa", "hello", "-n", &ns.name, "-o", "yaml"], None);
            failures.push(format!("the HPA never reported AbleToScale=True:\n{all}"));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }

    ns.delete().await;
    assert!(
        failures.is_empty(),
        "cluster CRD suite:\n{}",
        failures.join("\n")
    );
}
