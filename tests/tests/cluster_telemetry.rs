//! Cluster suite: the real `agentry-operator` on the local control plane exporting its
//! reconciles as OTLP/HTTP spans to a receiver that decodes them with the official
//! `opentelemetry-proto` package; its JSON log lines carry the same trace ids.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use agentry_tests::cluster::{self, RESTRICTED, TestNamespace};
use agentry_tests::k8s::Cluster;
use agentry_tests::otlp::OtlpReceiver;
use agentry_tests::process::{Process, binary};
use serde_json::Value;

#[tokio::test]
async fn each_reconcile_is_a_span_naming_the_agent_and_its_outcome_and_the_logs_carry_it() {
    let receiver = OtlpReceiver::start().await;
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client).await.expect("CRD");
    let ns = TestNamespace::create_with_labels(&client, "agentry-traces", &[RESTRICTED])
        .await
        .expect("namespace");
    let port = agentry_tests::process::free_port().to_string();
    let endpoint = receiver.endpoint();
    let op = Process::start(
        "operator",
        &binary("agentry-operator", "agentry-operator"),
        &[
            "--namespaces",
            &ns.name,
            "--leader-election",
            "false",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        &[
            ("RUST_LOG", "info,agentry_operator=debug,kube=warn"),
            ("AGENTRY_LOG_FORMAT", "json"),
            ("KUBECONFIG", cluster.kubeconfig().to_str().unwrap()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ],
    );
    assert!(
        op.wait_for_log("starting the Agent controller", Duration::from_secs(90)),
        "operator did not start:\n{}",
        op.log()
    );
    let doc: Value = serde_yaml::from_str(
        "apiVersion: agentry.dev/v1alpha1\nkind: Agent\nmetadata: {name: radio}\nspec:\n  model: {id: anthropic.claude-3-haiku-20240307-v1:0}\n  systemPrompt: You pick songs.\n  replicas: 0\n",
    )
    .unwrap();
    cluster::apply_document(&client, &ns.name, &doc)
        .await
        .expect("agent applies");
    let mut reconciles = Vec::new();
    for _ in 0..300 {
        let spans = receiver.spans(1, Duration::from_millis(100)).await;
        reconciles = spans
            .into_iter()
            .filter(|s| {
                s["name"] == "reconcile"
                    && s["attributes"]["agentry.agent"] == "radio"
                    && s["attributes"]["agentry.outcome"] == "success"
            })
            .collect();
        if !reconciles.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let span = reconciles
        .first()
        .unwrap_or_else(|| panic!("no reconcile span:\n{}", op.log()));
    assert_eq!(span["resource"]["service.name"], "agentry-operator");
    assert_eq!(span["scope"], "agentry-operator");
    assert_eq!(span["parentSpanId"], "", "each reconcile starts a trace");
    assert_eq!(span["attributes"]["k8s.namespace.name"], ns.name.as_str());
    assert_eq!(span["attributes"]["agentry.agent.generation"], 1);
    assert_eq!(span["attributes"]["agentry.outcome"], "success");
    let trace_id = span["traceId"].as_str().unwrap();
    let logged = op.log().lines().any(|l| {
        serde_json::from_str::<Value>(l)
            .is_ok_and(|v| v["fields"]["message"] == "reconciled" || v["message"] == "reconciled")
            && l.contains(&format!("\"trace_id\":\"{trace_id}\""))
    });
    assert!(logged, "a log line with trace_id {trace_id}:\n{}", op.log());
}
