//! What the cluster suites do on whichever cluster [`crate::k8s::Cluster`] gives them: unique
//! names, the Agent CRD, and throwaway namespaces.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, ResourceExt};

/// Field manager of everything the suites apply.
pub const FIELD_MANAGER: &str = "agentry-tests";

/// Label on every namespace a suite creates, so leftovers of an interrupted run can be found:
/// `kubectl delete ns -l agentry.dev/test=true`.
pub const TEST_LABEL: &str = "agentry.dev/test";

/// Polls `check` every 200 ms until it returns `Some`, and returns that value.
///
/// # Panics
/// After `timeout`, naming `what` it waited for.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A name unique to this run: `<prefix>-<hex>`.
pub fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{:x}",
        (nanos as u64) ^ (u64::from(std::process::id()) << 40)
    )
    .chars()
    .take(63)
    .collect()
}

/// Server-side applies the chart's Agent CRD (`charts/agentry/crds/`, what `helm install`
/// installs) and waits until the API server serves it.
pub async fn install_agent_crd(client: &Client) -> Result<(), String> {
    let path = crate::fixtures::repo_root().join("charts/agentry/crds/agents.agentry.dev.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let crd: CustomResourceDefinition =
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.name_any();
    crds.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await
    .map_err(|e| format!("applying the Agent CRD: {e}"))?;
    let established = await_condition(crds, &name, conditions::is_crd_established());
    match tokio::time::timeout(Duration::from_secs(60), established).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("waiting for the Agent CRD: {e}")),
        Err(_) => Err("the Agent CRD was not Established within 60 s".into()),
    }
}

/// Server-side applies one manifest (an Agent, or a core/v1 object such as a ConfigMap) into
/// `namespace`, as `kubectl apply --server-side` would.
pub async fn apply_document(
    client: &Client,
    namespace: &str,
    doc: &serde_json::Value,
) -> Result<DynamicObject, kube::Error> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let resource = match kind {
        "Agent" => ApiResource::erase::<agentry_crds::Agent>(&()),
        other => ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", other)),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    let mut doc = doc.clone();
    doc["metadata"]["namespace"] = namespace.into();
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&doc),
    )
    .await
}

/// Applies every document of every example (`examples/*.yaml`) into `namespace`, with what the
/// examples' comments ask for first (weather's API Service and its key Secret, travel-desk's
/// existing ServiceAccount).
///
/// Returns the names of the Agents.
///
/// # Panics
/// When an example is refused.
pub async fn apply_examples(client: &Client, namespace: &str) -> Vec<String> {
    let prerequisites = [
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "weather-api"},
            "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "weather-api"}}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "weather-api"},
            "stringData": {"token": "test-token"}}),
        serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "bedrock-invoker"}}),
        // examples/mcp-tools.yaml: the in-cluster MCP server and the hosted one's token.
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kagent-tools"},
            "spec": {"ports": [{"port": 8084, "targetPort": 8084}], "selector": {"app": "kagent-tools"}}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "docs-mcp"},
            "stringData": {"token": "Bearer test-token"}}),
    ];
    for doc in &prerequisites {
        apply_document(client, namespace, doc)
            .await
            .unwrap_or_else(|e| panic!("applying {}: {e}", doc["kind"]));
    }
    let mut agents = Vec::new();
    for (file, doc) in crate::fixtures::example_documents().expect("examples load") {
        apply_document(client, namespace, &doc)
            .await
            .unwrap_or_else(|e| panic!("applying {file} {}: {e}", doc["metadata"]["name"]));
        if doc["kind"] == "Agent" {
            agents.push(
                doc["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    agents
}

/// The PodSecurity admission label that makes a namespace enforce the restricted profile.
pub const RESTRICTED: (&str, &str) = ("pod-security.kubernetes.io/enforce", "restricted");

/// A namespace that lives for one test. Call [`TestNamespace::delete`] at the end.
pub struct TestNamespace {
    /// The namespace's name.
    pub name: String,
    client: Client,
}

impl TestNamespace {
    /// Creates a uniquely named, labelled namespace.
    pub async fn create(client: &Client, prefix: &str) -> Result<Self, String> {
        Self::create_with_labels(client, prefix, &[]).await
    }

    /// Creates a uniquely named namespace with `labels` besides the test label.
    pub async fn create_with_labels(
        client: &Client,
        prefix: &str,
        labels: &[(&str, &str)],
    ) -> Result<Self, String> {
        let name = unique_name(prefix);
        let mut all = serde_json::json!({TEST_LABEL: "true"});
        for (k, v) in labels {
            all[*k] = (*v).into();
        }
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": all}
        }))
        .map_err(|e| e.to_string())?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .map_err(|e| format!("creating namespace {name}: {e}"))?;
        Ok(Self {
            name,
            client: client.clone(),
        })
    }

    /// Deletes the namespace (and so everything in it).
    pub async fn delete(self) {
        let api: Api<Namespace> = Api::all(self.client);
        if let Err(e) = api.delete(&self.name, &DeleteParams::background()).await {
            eprintln!("could not delete test namespace {}: {e}", self.name);
        }
    }
}
