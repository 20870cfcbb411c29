//! Cluster suite: `spec.memory` on a real API server, through the real operator, into a runtime
//! that keeps sessions in a real redis-server.
//!
//! The API server refuses memory settings that cannot work, with the message saying why, and
//! stores a valid `spec.memory` as written (no defaults filled in). The operator turns an Agent
//! with `spec.memory` into a ConfigMap whose runtime configuration has the memory block and a
//! Deployment whose container reads the store's URL from the Secret key; a changed Secret value
//! does not touch the Deployment, and `kubectl rollout restart` (what picks it up) is not undone
//! by the operator. Then the runtime is started as a process the way the kubelet would start the
//! pod (the ConfigMap's key written to a file, the Secret key resolved into the variable) against
//! a redis-server with an ACL user and the Bedrock imitation: three turns on one session, each
//! sent to the model with the history read from the store, the TTL and message limit from the
//! spec (and its compaction threshold, which these short turns stay far below).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use agentry_crds::runtime_config::{RUNTIME_CONFIG_KEY, RuntimeConfig};
use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::cluster::{self, TestNamespace, eventually};
use agentry_tests::k8s::Cluster;
use agentry_tests::process::{Process, binary};
use agentry_tests::redis::RedisServer;
use agentry_tests::runtime;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Secret};
use kube::Client;
use kube::api::Api;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);

/// The operator watching only `ns`, as the admin, without leader election.
fn operator(cluster: &Cluster, ns: &str) -> Process {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
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

fn agent(name: &str, memory: Value, env: Option<Value>) -> Value {
    let mut a = json!({
        "apiVersion": "agentry.dev/v1alpha1", "kind": "Agent", "metadata": {"name": name},
        "spec": {
            "model": {"id": "anthropic.claude-3-haiku-20240307-v1:0"},
            "systemPrompt": "You are the museum's front desk.",
            "memory": memory,
        },
    });
    if let Some(env) = env {
        a["spec"]["env"] = env;
    }
    a
}

fn secret(name: &str, url: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "stringData": {"url": url}})
}

async fn refusal(client: &Client, ns: &str, doc: &Value) -> String {
    match cluster::apply_document(client, ns, doc).await {
        Ok(_) => panic!("accepted, should be refused: {doc}"),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{}", status.message);
            status.message
        }
        Err(e) => panic!("transport error: {e}"),
    }
}

#[tokio::test]
async fn memory_that_cannot_work_is_refused_naming_the_fix_and_a_valid_one_is_kept_as_written() {
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client).await.expect("CRD");
    let ns = TestNamespace::create(&client, "agentry-memory-api")
        .await
        .expect("namespace");
    let url = json!({"secretKeyRef": {"name": "store", "key": "url"}});

    let clash = agent(
        "clash",
        json!({"url": url}),
        Some(json!([{"name": "AGENTRY_MEMORY_URL", "value": "redis://store:6379/0"}])),
    );
    let message = refusal(&client, &ns.name, &clash).await;
    assert!(
        message.contains("spec.env sets AGENTRY_MEMORY_URL, which Agentry fills from spec.memory.url.secretKeyRef: remove that env entry"),
        "{message}"
    );
    let key = agent(
        "key",
        json!({"url": url, "caPem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n"}),
        None,
    );
    let message = refusal(&client, &ns.name, &key).await;
    assert!(
        message.contains("spec.memory.caPem") && message.contains("holds a private key"),
        "{message}"
    );
    let short = agent("short", json!({"url": url, "maxMessages": 1}), None);
    let message = refusal(&client, &ns.name, &short).await;
    assert!(
        message.contains("spec.memory.maxMessages")
            && message.contains("should be greater than or equal to 2"),
        "{message}"
    );

    let tiny = agent("tiny", json!({"url": url, "maxContextTokens": 999}), None);
    let message = refusal(&client, &ns.name, &tiny).await;
    assert!(
        message.contains("spec.memory.maxContextTokens")
            && message.contains("should be greater than or equal to 1000"),
        "{message}"
    );

    // The session would expire before the approval does.
    let outlived = agent(
        "outlived",
        json!({"url": url, "ttlSeconds": 600, "approvalTimeoutSeconds": 900}),
        None,
    );
    let message = refusal(&client, &ns.name, &outlived).await;
    assert!(
        message.contains("memory.approvalTimeoutSeconds is longer than memory.ttlSeconds"),
        "{message}"
    );

    // Another name in spec.env is the user's own; defaults stay out of the stored spec.
    let ok = agent(
        "ok",
        json!({"url": url}),
        Some(json!([{"name": "LOG", "value": "debug"}])),
    );
    cluster::apply_document(&client, &ns.name, &ok)
        .await
        .expect("a valid memory is accepted");
    let stored = Api::<agentry_crds::Agent>::namespaced(client.clone(), &ns.name)
        .get("ok")
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(stored.spec.memory).unwrap(),
        json!({"url": url}),
        "the server filled in defaults"
    );
    ns.delete().await;
}

/// The kubelet's part for the runtime container: its env with literal values as they are and
/// Secret keys read from the Secret (`config_dir` standing for the ConfigMap mount).
async fn pod_env(
    client: &Client,
    ns: &str,
    c: &Container,
    config_dir: &str,
) -> Vec<(String, String)> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut env = Vec::new();
    for var in c.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(v), None) => v.replace("/etc/agentry", config_dir),
            (None, Some(from)) => {
                let key = from
                    .secret_key_ref
                    .as_ref()
                    .unwrap_or_else(|| panic!("env {} from {from:?}: not simulated", var.name));
                let s = secrets.get(&key.name).await.expect("the Secret");
                let bytes = &s.data.unwrap()[&key.key].0;
                String::from_utf8(bytes.clone()).unwrap()
            }
            other => panic!("env {}: {other:?}", var.name),
        };
        env.push((var.name.clone(), value));
    }
    env
}

#[tokio::test]
async fn an_agent_with_memory_runs_a_runtime_that_keeps_its_sessions_in_the_store_the_secret_names()
{
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client).await.expect("CRD");
    let ns = TestNamespace::create(&client, "agentry-memory")
        .await
        .expect("namespace");
    let n = ns.name.clone();
    let op = operator(&cluster, &n);

    // The store has an ACL user limited to Agentry's keys: its password is only in the Secret.
    let redis =
        RedisServer::start_with(&["--user", "desk", "on", ">s3cret-pw", "~agentry:*", "+@all"]);
    let url = format!("redis://desk:s3cret-pw@127.0.0.1:{}/0", redis.port);
    cluster::apply_document(&client, &n, &secret("desk-store", &url))
        .await
        .expect("the Secret");
    let memory = json!({"url": {"secretKeyRef": {"name": "desk-store", "key": "url"}},
        "ttlSeconds": 3600, "maxMessages": 4, "maxContextTokens": 150000,
        "approvalTimeoutSeconds": 1200});
    cluster::apply_document(&client, &n, &agent("desk", memory, None))
        .await
        .expect("the Agent");

    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &n);
    let text = eventually("desk's ConfigMap", TIMEOUT, || async {
        config_maps
            .get_opt("desk-config")
            .await
            .ok()
            .flatten()?
            .data?
            .get(RUNTIME_CONFIG_KEY)
            .cloned()
    })
    .await;
    let config: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        config["memory"],
        json!({"urlFromEnv": "AGENTRY_MEMORY_URL", "ttlSeconds": 3600, "maxMessages": 4,
            "maxContextTokens": 150000, "approvalTimeoutSeconds": 1200})
    );
    assert!(
        !text.contains("s3cret") && !text.contains("desk-store"),
        "{text}"
    );
    RuntimeConfig::from_json(&text).expect("the runtime reads it");

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &n);
    let d = eventually("desk's Deployment", TIMEOUT, || async {
        deployments.get_opt("desk").await.ok().flatten()
    })
    .await;
    let container = d
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .clone();
    let var = container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "AGENTRY_MEMORY_URL")
        .expect("the memory URL variable");
    assert_eq!(var.value, None);
    let key = var
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (key.name.as_str(), key.key.as_str(), key.optional),
        ("desk-store", "url", Some(false))
    );
    assert_eq!(
        container.args.as_deref().unwrap(),
        [
            "--config",
            "/etc/agentry/config.json",
            "--listen",
            "0.0.0.0:8080"
        ]
    );

    // A new value in the Secret changes nothing the operator wrote: running pods keep the URL
    // they started with until they restart.
    let generation = d.metadata.generation;
    cluster::apply_document(
        &client,
        &n,
        &secret("desk-store", &format!("{url}?rotated=1")),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = deployments.get("desk").await.unwrap();
    assert_eq!(
        after.metadata.generation, generation,
        "the Deployment changed"
    );
    cluster::apply_document(&client, &n, &secret("desk-store", &url))
        .await
        .unwrap();
    // What picks the new value up, as the README says: a restart, which the operator's next
    // apply leaves in place (the annotation is kubectl's field, not the operator's).
    cluster.kubectl_ok(&["rollout", "restart", "deployment/desk", "-n", &n], None);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let restarted = deployments.get("desk").await.unwrap();
    let annotations = restarted
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .annotations
        .unwrap();
    assert!(
        annotations.contains_key("kubectl.kubernetes.io/restartedAt")
            && annotations.contains_key("agentry.dev/config-hash"),
        "{annotations:?}"
    );

    // The pod, as the kubelet would start it.
    let dir = std::env::temp_dir().join(cluster::unique_name("agentry-memory-pod"));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join(RUNTIME_CONFIG_KEY);
    std::fs::write(&config_path, &text).unwrap();
    let mut env = pod_env(&client, &n, &container, dir.to_str().unwrap()).await;
    assert!(
        env.contains(&("AGENTRY_MEMORY_URL".into(), url.clone())),
        "{env:?}"
    );
    let fake = FakeBedrock::start().await.unwrap();
    env.extend(
        fake.process_env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
    );
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let (rt, base) = runtime::start_process("desk", &config_path, &env, &[]);
    fake.push(
        ["Welcome, Ada.", "You are Ada.", "Room 3 is on the left."]
            .map(|t| Script::Turn(Turn::text(t))),
    );

    let http = reqwest::Client::new();
    let mut outputs = Vec::new();
    for input in ["My name is Ada.", "What is my name?", "Where is room 3?"] {
        let r = http
            .post(format!("{base}/v1/invoke"))
            .json(&json!({"sessionId": "visit-1", "input": input}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{body}\n{}", rt.log());
        assert_eq!(body["sessionId"], "visit-1");
        outputs.push(body["output"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(
        outputs,
        ["Welcome, Ada.", "You are Ada.", "Room 3 is on the left."]
    );
    // The second turn went to the model with the first one's history, read from the store.
    let second = &fake.captured()[1].body["messages"];
    let texts: Vec<&str> = second
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["My name is Ada.", "Welcome, Ada.", "What is my name?"]
    );

    // maxMessages 4: the third turn pushed the first out; ttlSeconds 3600 on the keys.
    let session: Value = http
        .get(format!("{base}/v1/sessions/visit-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kept: Vec<&str> = session["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        kept,
        [
            "What is my name?",
            "You are Ada.",
            "Where is room 3?",
            "Room 3 is on the left."
        ],
        "{session}"
    );
    let keys = redis.keys();
    let prefix = format!("agentry:{{{n}/desk/visit-1}}");
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k.starts_with(&prefix)),
        "{keys:?}"
    );
    for k in &keys {
        let ttl: u64 = redis.cli(&["TTL", k]).parse().unwrap();
        assert!((3590..=3600).contains(&ttl), "{k}: TTL {ttl}");
    }

    drop(rt);
    drop(op);
    let _ = std::fs::remove_dir_all(&dir);
    ns.delete().await;
}
