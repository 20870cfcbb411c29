//! Cluster suite: the real `agentry-operator` process on the local control plane (pods
//! simulated by kwok, so Deployments become Available). Every example Agent becomes Ready with
//! its endpoint, as `kubectl wait` and kstatus read it; children carry controller owner
//! references; nothing is written while nothing changes; a prompt change rolls the pods; a
//! deleted or hand-edited child (labels only, too) comes back; `ToolsResolved` follows a
//! referenced Agent away and back; deleting an Agent deletes its children through the garbage
//! collector; an OpenAPI document in a ConfigMap reaches the runtime configuration, and its
//! absence or a document the runtime could not use shows in `ToolsResolved` until fixed. Each
//! test has its own namespace and its own operator watching only it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use agentry_crds::Agent;
use agentry_crds::runtime_config::RUNTIME_CONFIG_KEY;
use agentry_tests::cluster::eventually;
use agentry_tests::cluster::{self, RESTRICTED, TestNamespace};
use agentry_tests::k8s::Cluster;
use agentry_tests::process::{Process, binary};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(90);

/// The operator watching only `ns`, as the admin, without leader election.
fn operator(cluster: &Cluster, ns: &str, port: u16) -> Process {
    let p = Process::start(
        "operator",
        &binary("agentry-operator", "agentry-operator"),
        &[
            "--namespaces",
            ns,
            "--leader-election",
            "false",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        &[
            ("RUST_LOG", "info,kube=warn"),
            ("KUBECONFIG", cluster.kubeconfig().to_str().unwrap()),
        ],
    );
    assert!(
        p.wait_for_log("starting the Agent controller", TIMEOUT),
        "operator did not start:\n{}",
        p.log()
    );
    p
}

async fn apply_agent(client: &Client, ns: &str, yaml: &str) {
    let doc: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
    cluster::apply_document(client, ns, &doc)
        .await
        .expect("agent applies");
}

fn agent_yaml(name: &str, prompt: &str, tool_agent: Option<&str>) -> String {
    let tools = tool_agent
        .map(|t| format!("  tools:\n    - name: ask\n      description: Ask another agent.\n      agent: {{name: {t}}}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: agentry.dev/v1alpha1\nkind: Agent\nmetadata: {{name: {name}}}\nspec:\n  model: {{id: anthropic.claude-3-haiku-20240307-v1:0}}\n  systemPrompt: {prompt:?}\n  replicas: 2\n{tools}"
    )
}

fn condition(agent: &Agent, type_: &str) -> Option<(String, String)> {
    let c = agent
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

fn config_hash(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap()["agentry.dev/config-hash"]
        .clone()
}

/// `kind/name@resourceVersion` of the Agent and every child of it.
async fn versions(client: &Client, ns: &str, agent: &str) -> Vec<String> {
    let mut out = Vec::new();
    let a: Api<Agent> = Api::namespaced(client.clone(), ns);
    out.push(format!(
        "Agent@{}",
        a.get(agent).await.unwrap().resource_version().unwrap()
    ));
    macro_rules! child {
        ($k:ty, $name:expr) => {
            if let Some(o) = Api::<$k>::namespaced(client.clone(), ns)
                .get_opt($name)
                .await
                .unwrap()
            {
                out.push(format!(
                    "{}/{}@{}",
                    stringify!($k),
                    $name,
                    o.resource_version().unwrap()
                ));
            }
        };
    }
    child!(ServiceAccount, agent);
    child!(ConfigMap, &format!("{agent}-config"));
    child!(Deployment, agent);
    child!(Service, agent);
    child!(PodDisruptionBudget, agent);
    out
}

async fn ready_pods(client: &Client, ns: &str, agent: &str) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods
        .list(&ListParams::default().labels(&format!("agentry.dev/agent={agent}")))
        .await
        .unwrap();
    list.items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .map(|p| p.name_any())
        .collect()
}

#[tokio::test]
async fn every_example_becomes_ready_with_its_endpoint_and_then_nothing_is_written() {
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client).await.expect("CRD");
    let ns = TestNamespace::create_with_labels(&client, "agentry-examples", &[RESTRICTED])
        .await
        .expect("namespace");
    let n = ns.name.clone();
    let op = operator(&cluster, &n, 18301);
    let agents_api: Api<Agent> = Api::namespaced(client.clone(), &n);

    let names = cluster::apply_examples(&client, &n).await;
    assert!(names.len() >= 4, "{names:?}");
    for name in &names {
        let (ok, out) = cluster.kubectl(
            &[
                "wait",
                "--for=condition=Ready",
                &format!("agent/{name}"),
                "-n",
                &n,
                "--timeout=90s",
            ],
            None,
        );
        assert!(ok, "kubectl wait agent/{name}: {out}\n{}", op.log());
        let agent = agents_api.get(name).await.unwrap();
        let status = agent.status.as_ref().unwrap();
        assert_eq!(
            status.endpoint.as_deref(),
            Some(format!("http://{name}.{n}.svc.cluster.local").as_str())
        );
        assert_eq!(status.observed_generation, agent.metadata.generation);
        // kstatus: Current means Reconciling and Stalled both False.
        assert_eq!(
            condition(&agent, "Reconciling").unwrap().0,
            "False",
            "{name}"
        );
        assert_eq!(condition(&agent, "Stalled").unwrap().0, "False", "{name}");
        // apply_examples creates what the examples refer to: every tool resolves.
        assert_eq!(
            condition(&agent, "ToolsResolved").unwrap().0,
            "True",
            "{name}"
        );
        assert_eq!(
            ready_pods(&client, &n, name).await.len() as i32,
            agent.spec.replicas,
            "{name}'s pods"
        );

        // Every child has the Agent as its controller owner.
        let uid = agent.uid().unwrap();
        let d = Api::<Deployment>::namespaced(client.clone(), &n)
            .get(name)
            .await
            .unwrap();
        let s = Api::<Service>::namespaced(client.clone(), &n)
            .get(name)
            .await
            .unwrap();
        let c = Api::<ConfigMap>::namespaced(client.clone(), &n)
            .get(&format!("{name}-config"))
            .await
            .unwrap();
        let mut owners = vec![d.owner_references().to_vec(), s.owner_references().to_vec()];
        owners.push(c.owner_references().to_vec());
        if agent
            .spec
            .service_account
            .as_ref()
            .and_then(|s| s.name.as_ref())
            .is_none()
        {
            let sa = Api::<ServiceAccount>::namespaced(client.clone(), &n)
                .get(name)
                .await
                .unwrap();
            owners.push(sa.owner_references().to_vec());
        }
        for o in owners {
            assert!(
                o.iter().any(|o| o.uid == uid && o.controller == Some(true)),
                "{name}: {o:?}"
            );
        }
    }

    // Converged: over 10 s neither the Agents nor any child changes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut before = Vec::new();
    for name in &names {
        before.extend(versions(&client, &n, name).await);
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut after = Vec::new();
    for name in &names {
        after.extend(versions(&client, &n, name).await);
    }
    assert_eq!(before, after, "writes while nothing changed:\n{}", op.log());

    // A stuck Agent reads as Stalled to kstatus: its ServiceAccount does not exist.
    let stuck = "apiVersion: agentry.dev/v1alpha1\nkind: Agent\nmetadata: {name: stuck}\nspec:\n  model: {id: anthropic.claude-3-haiku-20240307-v1:0}\n  systemPrompt: Hi.\n  serviceAccount: {name: no-such-account}\n";
    apply_agent(&client, &n, stuck).await;
    let (status, reason) = eventually("Stalled=True on stuck", TIMEOUT, || async {
        agents_api
            .get("stuck")
            .await
            .ok()
            .and_then(|a| condition(&a, "Stalled"))
            .filter(|(s, _)| s == "True")
    })
    .await;
    assert_eq!((status.as_str(), reason.as_str()), ("True", "FailedCreate"));
    let ready = condition(&agents_api.get("stuck").await.unwrap(), "Ready").unwrap();
    assert_eq!(ready.0, "False");

    drop(op);
    ns.delete().await;
}

#[tokio::test]
async fn children_roll_come_back_follow_references_and_go_with_their_agent() {
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client).await.expect("CRD");
    let ns = TestNamespace::create_with_labels(&client, "agentry-op", &[RESTRICTED])
        .await
        .expect("namespace");
    let n = ns.name.clone();
    let op = operator(&cluster, &n, 18302);
    let agents: Api<Agent> = Api::namespaced(client.clone(), &n);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &n);
    let services: Api<Service> = Api::namespaced(client.clone(), &n);

    apply_agent(&client, &n, &agent_yaml("travel", "Plan trips.", None)).await;
    apply_agent(
        &client,
        &n,
        &agent_yaml("concierge", "Help guests.", Some("travel")),
    )
    .await;
    let wait_ready = |name: &'static str| {
        let cluster = cluster.clone();
        let n = n.clone();
        move || {
            let (ok, out) = cluster.kubectl(
                &[
                    "wait",
                    "--for=condition=Ready",
                    &format!("agent/{name}"),
                    "-n",
                    &n,
                    "--timeout=90s",
                ],
                None,
            );
            assert!(ok, "agent/{name} not Ready: {out}");
        }
    };
    wait_ready("travel")();
    wait_ready("concierge")();

    // A prompt change rolls the pods: a new config hash, new pods Ready, the old ones gone.
    let old_pods = ready_pods(&client, &n, "travel").await;
    let before = config_hash(&deployments.get("travel").await.unwrap());
    apply_agent(
        &client,
        &n,
        &agent_yaml("travel", "Plan trips on a budget.", None),
    )
    .await;
    eventually("a new config hash", TIMEOUT, || async {
        deployments
            .get("travel")
            .await
            .ok()
            .filter(|d| config_hash(d) != before)
    })
    .await;
    eventually("new pods Ready, old ones gone", TIMEOUT, || async {
        let now = ready_pods(&client, &n, "travel").await;
        (now.len() == 2 && now.iter().all(|p| !old_pods.contains(p))).then_some(())
    })
    .await;
    wait_ready("travel")();

    // A deleted Deployment and a deleted Service come back.
    let old = deployments.get("travel").await.unwrap().uid();
    deployments
        .delete("travel", &DeleteParams::foreground())
        .await
        .unwrap();
    eventually("the Deployment to come back", TIMEOUT, || async {
        deployments
            .get_opt("travel")
            .await
            .ok()
            .flatten()
            .filter(|d| d.uid() != old)
    })
    .await;
    let old = services.get("travel").await.unwrap().uid();
    services
        .delete("travel", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Service to come back", TIMEOUT, || async {
        services
            .get_opt("travel")
            .await
            .ok()
            .flatten()
            .filter(|s| s.uid() != old)
    })
    .await;

    // Hand edits are undone: a spec field, a ConfigMap's data, and a label alone.
    deployments
        .patch(
            "travel",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    eventually("replicas restored to 2", TIMEOUT, || async {
        deployments
            .get("travel")
            .await
            .ok()
            .filter(|d| d.spec.as_ref().unwrap().replicas == Some(2))
    })
    .await;
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), &n);
    let original = configs.get("travel-config").await.unwrap().data;
    configs
        .patch(
            "travel-config",
            &PatchParams::apply("someone-else").force(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {RUNTIME_CONFIG_KEY: "{}"}})),
        )
        .await
        .unwrap();
    eventually("the ConfigMap restored", TIMEOUT, || async {
        configs
            .get("travel-config")
            .await
            .ok()
            .filter(|c| c.data == original)
    })
    .await;
    deployments
        .patch(
            "travel",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"agentry.dev/agent": "hijacked"}}})),
        )
        .await
        .unwrap();
    eventually("the label restored", TIMEOUT, || async {
        deployments
            .get("travel")
            .await
            .ok()
            .filter(|d| d.labels()["agentry.dev/agent"] == "travel")
    })
    .await;

    // The referenced Agent goes away and comes back: ToolsResolved follows.
    agents
        .delete("travel", &DeleteParams::default())
        .await
        .unwrap();
    let (_, reason) = eventually("ToolsResolved=False on concierge", TIMEOUT, || async {
        agents
            .get("concierge")
            .await
            .ok()
            .and_then(|a| condition(&a, "ToolsResolved"))
            .filter(|(s, _)| s == "False")
    })
    .await;
    assert_eq!(reason, "AgentNotFound");
    apply_agent(&client, &n, &agent_yaml("travel", "Plan trips.", None)).await;
    eventually("ToolsResolved=True on concierge", TIMEOUT, || async {
        agents
            .get("concierge")
            .await
            .ok()
            .and_then(|a| condition(&a, "ToolsResolved"))
            .filter(|(s, _)| s == "True")
    })
    .await;

    // Deleting an Agent deletes its children: the garbage collector follows the owner references.
    drop(op); // not the operator's doing
    agents
        .delete("concierge", &DeleteParams::background())
        .await
        .unwrap();
    eventually(
        "concierge's children collected",
        Duration::from_secs(120),
        || async {
            let gone = deployments.get_opt("concierge").await.ok()?.is_none()
                && services.get_opt("concierge").await.ok()?.is_none()
                && configs.get_opt("concierge-config").await.ok()?.is_none()
                && Api::<ServiceAccount>::namespaced(client.clone(), &n)
                    .get_opt("concierge")
                    .await
                    .ok()?
                    .is_none();
            gone.then_some(())
        },
    )
    .await;
    ns.delete().await;
}

/// `ToolsResolved` (status, reason, message) of Agent `name`, once `pred` holds for it.
async fn tools_resolved_until(
    agents: &Api<Agent>,
    name: &str,
    what: &str,
    pred: impl Fn(&str, &str) -> bool,
) -> (String, String, String) {
    eventually(what, TIMEOUT, || async {
        let a = agents.get(name).await.ok()?;
        let c = a
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "ToolsResolved")?;
        pred(&c.status, &c.reason).then_some((c.status, c.reason, c.message))
    })
    .await
}

/// The operations the runtime ConfigMap of `agent` gives its first tool, by name.
async fn offered_operations(configs: &Api<ConfigMap>, agent: &str) -> Option<Vec<String>> {
    use agentry_crds::runtime_config::{OpenApiDocumentConfig, RuntimeConfig, ToolKindConfig};
    let cm = configs.get(&format!("{agent}-config")).await.ok()?;
    let config = RuntimeConfig::from_json(cm.data?.get(RUNTIME_CONFIG_KEY)?).ok()?;
    match &config.tools.first()?.kind {
        ToolKindConfig::OpenApi(o) => match &o.document {
            OpenApiDocumentConfig::Operations(ops) => {
                Some(ops.iter().map(|op| op.name.clone()).collect())
            }
            OpenApiDocumentConfig::Url { .. } => None,
        },
        _ => None,
    }
}

#[tokio::test]
async fn an_openapi_document_in_a_config_map_reaches_the_runtime_config_and_its_problems_show() {
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client).await.expect("CRD");
    let ns = TestNamespace::create_with_labels(&client, "agentry-openapi", &[RESTRICTED])
        .await
        .expect("namespace");
    let n = ns.name.clone();
    let op = operator(&cluster, &n, 18303);
    let agents: Api<Agent> = Api::namespaced(client.clone(), &n);
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), &n);
    let document = |text: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pet-api"},
            "data": {"openapi.yaml": text}})
    };

    // The Agent first: its document's ConfigMap does not exist yet.
    apply_agent(
        &client,
        &n,
        "apiVersion: agentry.dev/v1alpha1\nkind: Agent\nmetadata: {name: shop}\nspec:\n  \
         model: {id: anthropic.claude-3-haiku-20240307-v1:0}\n  systemPrompt: Sell pets.\n  tools:\n    \
         - name: pets\n      description: The pet store.\n      openapi:\n        \
         document: {configMapKeyRef: {name: pet-api, key: openapi.yaml}}\n        \
         url: https://pets.example.com/v1\n",
    )
    .await;
    let (_, reason, message) =
        tools_resolved_until(&agents, "shop", "ConfigMapNotFound", |s, r| {
            s == "False" && r == "ConfigMapNotFound"
        })
        .await;
    assert_eq!(
        message,
        format!("tool pets: openapi document: ConfigMap {n}/pet-api not found"),
        "{reason}"
    );

    // A document the runtime could not use: the conversion's message, nothing offered.
    cluster::apply_document(&client, &n, &document("swagger: '2.0'\npaths: {}\n"))
        .await
        .unwrap();
    let (_, _, message) =
        tools_resolved_until(&agents, "shop", "OpenApiDocumentInvalid", |s, r| {
            s == "False" && r == "OpenApiDocumentInvalid"
        })
        .await;
    assert!(
        message.starts_with("tool pets: the document is Swagger 2.0; only OpenAPI 3.0 and 3.1"),
        "{message}"
    );
    assert!(message.ends_with(&format!("(ConfigMap {n}/pet-api, key \"openapi.yaml\")")));
    assert_eq!(
        offered_operations(&configs, "shop").await,
        Some(vec![]),
        "{}",
        op.log()
    );

    // Fixed: the condition clears and the operations reach the runtime's configuration.
    let petstore = std::fs::read_to_string(format!(
        "{}/fixtures/openapi/petstore.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    cluster::apply_document(&client, &n, &document(&petstore))
        .await
        .unwrap();
    tools_resolved_until(&agents, "shop", "ToolsResolved=True", |s, _| s == "True").await;
    let names = eventually("the operations in the runtime config", TIMEOUT, || async {
        offered_operations(&configs, "shop")
            .await
            .filter(|o| !o.is_empty())
    })
    .await;
    assert_eq!(
        names,
        [
            "pets_listPets",
            "pets_createPet",
            "pets_showPetById",
            "pets_deletePet",
            "pets_updatePet"
        ]
    );
    drop(op);
    ns.delete().await;
}
