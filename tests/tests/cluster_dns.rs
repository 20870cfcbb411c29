//! Cluster suite: Agents talk by cluster DNS, driven by what the operator wrote.
//!
//! The real `agentry-operator` reconciles two Agents, `front` (which uses `back` as an agent
//! tool) and `back`. Each runtime is then started as a process the way the kubelet would start
//! its pod: from its own ConfigMap and its Deployment's container args and env. The one change
//! to what the Deployment says: a path under a ConfigMap volume mount (`/etc/agentry/...`)
//! becomes the same file in a temporary folder, where the test writes the ConfigMap's keys as
//! the kubelet would project them.
//!
//! The network is a small imitation of a node, all in network namespaces the test creates and
//! deletes: a "node" namespace with a bridge (the Bedrock imitation listens on its address), and
//! one namespace per pod with its own `eth0` on that bridge, so both runtimes listen on
//! `0.0.0.0:8080` as their args say. In front's namespace, `/etc/netns/<ns>/hosts` maps back's
//! Service DNS name to the ClusterIP the API server gave back's Service, and an nft DNAT rule in
//! the output hook maps ClusterIP:port to back's pod address and target port, as kube-proxy
//! does. Front reaches back by the URL in its configuration through a name lookup, and only so.
//! No traffic goes to any address of the root namespace: the test drives front from the node
//! namespace with `curl`.
//!
//! Needs root, `ip` (iproute2), `nft` (nftables) and `curl`. Leftovers of an interrupted run:
//! `ip netns list | grep adns-`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use agentry_crds::Agent;
use agentry_crds::runtime_config::{RuntimeConfig, ToolKindConfig};
use agentry_tests::cluster::eventually;
use agentry_tests::cluster::{self, FIELD_MANAGER, TestNamespace, unique_name};
use agentry_tests::k8s::Cluster;
use agentry_tests::process::{Process, binary};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);

/// The imitated node's pod network: 198.18.0.0/15 is reserved for network benchmarks
/// (RFC 2544), so it is neither a real destination nor a cluster's Service range.
const GATEWAY: &str = "198.18.0.1";
const FRONT_IP: &str = "198.18.0.2";
const BACK_IP: &str = "198.18.0.3";

const FRONT_PROMPT: &str = "You are the front desk of the city museum.";
const BACK_PROMPT: &str = "You know the museum's opening hours.";
const QUESTION: &str = "When does the museum open on Sundays?";
const DELEGATED: &str = "Opening hours on Sundays?";
const BACK_ANSWER: &str = "On Sundays the museum opens at 10:00.";
const FINAL_ANSWER: &str = "The museum opens at 10:00 on Sundays.";

/// Runs `program args`, failing the test unless it succeeds; returns its stdout.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The namespaces and files of one run, removed when dropped (also when the test fails). Drop
/// it after the processes inside: a namespace lives on while a process is in it.
struct Sandbox {
    netns: Vec<String>,
    dirs: Vec<PathBuf>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for ns in self.netns.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(ns));
        }
        for dir in &self.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Where a Service sends traffic, as kube-proxy learns it: the ClusterIP and port, and the
/// target port resolved against the pods' container ports when it is a name.
struct ServiceRoute {
    cluster_ip: String,
    port: i32,
    target_port: i32,
}

fn service_route(service: &Service, pod: &Container) -> ServiceRoute {
    let spec = service.spec.as_ref().expect("a Service spec");
    let cluster_ip = spec.cluster_ip.clone().expect("a ClusterIP");
    assert!(
        cluster_ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv4()),
        "ClusterIP {cluster_ip:?}"
    );
    let port = &spec.ports.as_ref().expect("Service ports")[0];
    let target_port = match &port.target_port {
        None => port.port,
        Some(IntOrString::Int(p)) => *p,
        Some(IntOrString::String(name)) => {
            pod.ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("no container port named {name}"))
                .container_port
        }
    };
    ServiceRoute {
        cluster_ip,
        port: port.port,
        target_port,
    }
}

/// Builds the imitated node: `<base>-node` with bridge `br0` at [`GATEWAY`], and per pod a
/// namespace `<base>-<pod>` whose `eth0` is on that bridge. In front's namespace, `back_name`
/// resolves to back's ClusterIP (through `/etc/netns/.../hosts`, with no name server) and a
/// DNAT rule sends ClusterIP:port to back's pod.
fn build_network(base: &str, tmp: &Path, back_name: &str, route: &ServiceRoute) -> Sandbox {
    let node = format!("{base}-node");
    let mut sandbox = Sandbox {
        netns: Vec::new(),
        dirs: vec![tmp.to_path_buf()],
    };
    let ip = |args: &[&str]| run("ip", args);
    for ns in [
        node.clone(),
        format!("{base}-front"),
        format!("{base}-back"),
    ] {
        ip(&["netns", "add", &ns]);
        sandbox.netns.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
    }
    ip(&["-n", &node, "link", "add", "br0", "type", "bridge"]);
    ip(&[
        "-n",
        &node,
        "addr",
        "add",
        &format!("{GATEWAY}/24"),
        "dev",
        "br0",
    ]);
    ip(&["-n", &node, "link", "set", "br0", "up"]);
    for (pod, addr) in [("front", FRONT_IP), ("back", BACK_IP)] {
        let ns = format!("{base}-{pod}");
        let veth = format!("v{pod}");
        ip(&[
            "-n", &node, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        ip(&["-n", &node, "link", "set", &veth, "master", "br0", "up"]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&["-n", &ns, "route", "add", "default", "via", GATEWAY]);
    }

    let front = format!("{base}-front");
    let etc = Path::new("/etc/netns").join(&front);
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("hosts"),
        format!("127.0.0.1 localhost\n{} {back_name}\n", route.cluster_ip),
    )
    .unwrap();
    // No name server: a name the hosts file lacks does not resolve (glibc then asks the
    // namespace's own loopback, where nothing listens).
    std::fs::write(etc.join("resolv.conf"), "# names come from hosts only\n").unwrap();
    let rules = tmp.join("service.nft");
    std::fs::write(
        &rules,
        format!(
            "table ip agentry {{\n  chain output {{\n    type nat hook output priority -100; policy accept;\n    ip daddr {} tcp dport {} counter dnat to {BACK_IP}:{}\n  }}\n}}\n",
            route.cluster_ip, route.port, route.target_port
        ),
    )
    .unwrap();
    run(
        "ip",
        &[
            "netns",
            "exec",
            &front,
            "nft",
            "-f",
            rules.to_str().unwrap(),
        ],
    );
    sandbox
}

/// The packets front sent through the Service's DNAT rule.
fn dnat_packets(front_ns: &str) -> u64 {
    let out = run(
        "ip",
        &[
            "netns", "exec", front_ns, "nft", "list", "chain", "ip", "agentry", "output",
        ],
    );
    out.split("counter packets ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter in\n{out}"))
}

/// What the kubelet would run for `deployment`'s only container: its args and env, with each
/// ConfigMap volume projected into `dir/<volume>/<key>` and every path under such a mount
/// moved there. Env from Secrets or `envFrom` is not served here (the Agents use none).
async fn pod_command(
    client: &Client,
    ns: &str,
    deployment: &Deployment,
    dir: &Path,
) -> (Vec<String>, Vec<(String, String)>) {
    let pod = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a pod template");
    assert_eq!(pod.containers.len(), 1, "one container");
    let container = &pod.containers[0];
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let mut moved: Vec<(String, String)> = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .expect("the mounted volume");
        let Some(source) = &volume.config_map else {
            continue;
        };
        let cm = config_maps.get(&source.name).await.expect("the ConfigMap");
        let target = dir.join(&volume.name);
        std::fs::create_dir_all(&target).unwrap();
        for (key, value) in cm.data.iter().flatten() {
            std::fs::write(target.join(key), value).unwrap();
        }
        moved.push((
            mount.mount_path.clone(),
            target.to_str().unwrap().to_string(),
        ));
    }
    let relocate = |s: &str| {
        moved
            .iter()
            .find_map(|(from, to)| {
                s.strip_prefix(from.as_str())
                    .filter(|rest| rest.starts_with('/'))
                    .map(|rest| format!("{to}{rest}"))
            })
            .unwrap_or_else(|| s.to_string())
    };
    assert!(container.command.is_none(), "the image's entrypoint runs");
    assert!(container.env_from.is_none(), "no envFrom");
    let args = container
        .args
        .iter()
        .flatten()
        .map(|a| relocate(a))
        .collect();
    let env = container
        .env
        .iter()
        .flatten()
        .map(|e| {
            let value = e
                .value
                .as_deref()
                .unwrap_or_else(|| panic!("env {} has no literal value", e.name));
            (e.name.clone(), relocate(value))
        })
        .collect();
    (args, env)
}

/// Starts `agentry-runtime` in namespace `netns` with exactly `env` (`env -i`: a pod does not
/// inherit the host's environment) and `args`, and waits until it is ready.
fn start_runtime(name: &str, netns: &str, args: &[String], env: &[(String, String)]) -> Process {
    let bin = binary("agentry-runtime", "agentry-runtime");
    let assignments: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut argv: Vec<&str> = vec!["netns", "exec", netns, "env", "-i"];
    argv.extend(assignments.iter().map(String::as_str));
    argv.push(bin.to_str().unwrap());
    argv.extend(args.iter().map(String::as_str));
    let p = Process::start(name, &PathBuf::from("ip"), &argv, &[]);
    assert!(
        p.wait_for_log(" ready ", Duration::from_secs(30)),
        "{name} did not start:\n{}",
        p.log()
    );
    p
}

/// `curl` from the node namespace: the HTTP status and the body.
fn curl(node_ns: &str, url: &str, body: Option<&Value>) -> (u16, String) {
    let mut args = vec!["netns", "exec", node_ns, "curl", "-sS", "-m", "60"];
    let text = body.map(Value::to_string);
    if let Some(text) = &text {
        args.extend([
            "-H",
            "content-type: application/json",
            "--data-binary",
            text,
        ]);
    }
    args.extend(["-w", "\n%{http_code}", url]);
    let out = run("ip", &args);
    let (body, status) = out.rsplit_once('\n').expect("a status line");
    (
        status.trim().parse().expect("an HTTP status"),
        body.to_string(),
    )
}

async fn apply_agent(client: &Client, ns: &str, doc: Value) {
    let name = doc["metadata"]["name"].as_str().unwrap().to_string();
    let mut doc = doc;
    doc["metadata"]["namespace"] = ns.into();
    Api::<Agent>::namespaced(client.clone(), ns)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&doc),
        )
        .await
        .expect("agent applies");
}

fn agent(name: &str, prompt: &str, tools: Value) -> Value {
    json!({
        "apiVersion": "agentry.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": name},
        "spec": {
            "model": {"id": "anthropic.claude-3-haiku-20240307-v1:0"},
            "systemPrompt": prompt,
            "replicas": 1,
            "tools": tools,
        }
    })
}

/// The `model call N: {...}` lines of the Bedrock imitation, parsed.
fn model_calls(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| l.strip_prefix("model call "))
        .map(|l| serde_json::from_str(l.split_once(": ").expect("a call line").1).unwrap())
        .collect()
}

fn fail_unless_tools_exist() {
    for (tool, check) in [("ip", "-V"), ("nft", "--version"), ("curl", "--version")] {
        let ok = Command::new(tool)
            .arg(check)
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "this suite needs {tool} (packages iproute2, nftables, curl) and root"
        );
    }
}

#[tokio::test]
async fn front_reaches_back_by_its_cluster_dns_name_as_the_operator_configured_it() {
    let started = Instant::now();
    fail_unless_tools_exist();
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client).await.expect("CRD");
    let ns = TestNamespace::create(&client, "agentry-dns")
        .await
        .expect("namespace");
    let n = ns.name.clone();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let op = Process::start(
        "operator",
        &binary("agentry-operator", "agentry-operator"),
        &[
            "--namespaces",
            &n,
            "--leader-election",
            "false",
            "--listen",
            &listen,
        ],
        &[
            ("RUST_LOG", "info,kube=warn"),
            ("KUBECONFIG", cluster.kubeconfig().to_str().unwrap()),
        ],
    );
    assert!(
        op.wait_for_log("starting the Agent controller", TIMEOUT),
        "operator did not start:\n{}",
        op.log()
    );
    apply_agent(&client, &n, agent("back", BACK_PROMPT, json!([]))).await;
    apply_agent(
        &client,
        &n,
        agent(
            "front",
            FRONT_PROMPT,
            json!([{"name": "ask_back", "description": "Ask the back office.", "agent": {"name": "back"}}]),
        ),
    )
    .await;

    // What the operator wrote: front's configuration names back by its DNS name.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &n);
    let back_url = format!("http://back.{n}.svc.cluster.local");
    let front_config: RuntimeConfig =
        eventually("front's config with its tool", TIMEOUT, || async {
            let cm = config_maps.get_opt("front-config").await.ok().flatten()?;
            let text = cm
                .data?
                .get(agentry_crds::runtime_config::RUNTIME_CONFIG_KEY)?
                .clone();
            RuntimeConfig::from_json(&text)
                .ok()
                .filter(|c| !c.tools.is_empty())
        })
        .await;
    let ToolKindConfig::Agent(tool) = &front_config.tools[0].kind else {
        panic!("front's tool is not an agent tool: {front_config:?}");
    };
    assert_eq!(tool.url, back_url);
    let host = tool.url.trim_start_matches("http://");
    assert!(host.parse::<IpAddr>().is_err(), "{host} is a name");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &n);
    let services: Api<Service> = Api::namespaced(client.clone(), &n);
    let (front_d, back_d, back_svc) =
        eventually("the Deployments and back's Service", TIMEOUT, || async {
            Some((
                deployments.get_opt("front").await.ok().flatten()?,
                deployments.get_opt("back").await.ok().flatten()?,
                services.get_opt("back").await.ok().flatten()?,
            ))
        })
        .await;
    eventually("back's config", TIMEOUT, || async {
        config_maps.get_opt("back-config").await.ok().flatten()
    })
    .await;

    let back_container = &back_d
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    let route = service_route(&back_svc, back_container);
    let base = unique_name("adns");
    let tmp = std::env::temp_dir().join(&base);
    std::fs::create_dir_all(&tmp).unwrap();
    let sandbox = build_network(&base, &tmp, host, &route);
    let (node_ns, front_ns, back_ns) = (
        format!("{base}-node"),
        format!("{base}-front"),
        format!("{base}-back"),
    );

    // The Bedrock imitation, on the node: three model calls in order.
    let script = json!([
        {"toolUse": {"toolUseId": "tooluse_front_1", "name": "ask_back", "input": {"input": DELEGATED}}},
        {"text": BACK_ANSWER},
        {"text": FINAL_ANSWER},
    ]);
    // A binary of this package: cargo builds it for this test and names it.
    let imitation = PathBuf::from(env!("CARGO_BIN_EXE_bedrock-imitation"));
    let listen = format!("{GATEWAY}:0");
    let script_text = script.to_string();
    let bedrock = Process::start(
        "bedrock",
        &PathBuf::from("ip"),
        &[
            "netns",
            "exec",
            &node_ns,
            imitation.to_str().unwrap(),
            "--listen",
            &listen,
            "--script",
            &script_text,
        ],
        &[],
    );
    assert!(
        bedrock.wait_for_log("runtime env ", TIMEOUT),
        "the Bedrock imitation did not start:\n{}",
        bedrock.log()
    );
    let bedrock_env: BTreeMap<String, String> = bedrock
        .log()
        .lines()
        .find_map(|l| l.strip_prefix("runtime env "))
        .map(|j| serde_json::from_str(j).unwrap())
        .unwrap();

    // Each runtime as its pod would run it.
    let mut runtimes = Vec::new();
    for (name, d, netns) in [("back", &back_d, &back_ns), ("front", &front_d, &front_ns)] {
        let dir = tmp.join(name);
        let (args, mut env) = pod_command(&client, &n, d, &dir).await;
        assert!(
            args.windows(2)
                .any(|w| w[0] == "--config" && w[1].starts_with(dir.to_str().unwrap())),
            "{name}'s config path is relocated: {args:?}"
        );
        env.extend(bedrock_env.clone());
        env.push(("RUST_LOG".into(), "info".into()));
        runtimes.push(start_runtime(name, netns, &args, &env));
    }

    // Drive front from the node, as a client in the cluster would.
    let (status, body) = curl(
        &node_ns,
        &format!("http://{FRONT_IP}:8080/v1/invoke"),
        Some(&json!({"input": QUESTION})),
    );
    let logs = || {
        format!(
            "bedrock:\n{}\nback:\n{}\nfront:\n{}",
            bedrock.log(),
            runtimes[0].log(),
            runtimes[1].log()
        )
    };
    assert_eq!(status, 200, "{body}\n{}", logs());
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["output"], FINAL_ANSWER, "{}", logs());
    assert_eq!(body["toolCalls"][0]["name"], "ask_back");
    assert_eq!(body["toolCalls"][0]["status"], "success", "{}", logs());

    // The imitation counted three calls: front asks for the tool, back answers, front answers.
    let deadline = Instant::now() + Duration::from_secs(5);
    while model_calls(&bedrock.log()).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let calls = model_calls(&bedrock.log());
    assert_eq!(calls.len(), 3, "{}", logs());
    let system = |c: &Value| {
        c["system"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(system(&calls[0]), FRONT_PROMPT);
    assert_eq!(calls[0]["lastMessage"]["content"][0]["text"], QUESTION);
    assert_eq!(system(&calls[1]), BACK_PROMPT);
    assert_eq!(calls[1]["lastMessage"]["content"][0]["text"], DELEGATED);
    assert_eq!(system(&calls[2]), FRONT_PROMPT);
    let result = &calls[2]["lastMessage"]["content"][0]["toolResult"];
    assert_eq!(result["toolUseId"], "tooluse_front_1");
    assert_eq!(result["content"][0]["text"], BACK_ANSWER, "{}", logs());

    // Back served it, and through the Service address front looked up.
    let (_, metrics) = curl(&node_ns, &format!("http://{BACK_IP}:8080/metrics"), None);
    assert!(
        metrics.contains(
            "agentry_runtime_invocations_total{protocol=\"invoke\",outcome=\"end_turn\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        dnat_packets(&front_ns) > 0,
        "no packet went to the ClusterIP"
    );

    drop(runtimes);
    drop(bedrock);
    drop(sandbox);
    drop(op);
    ns.delete().await;
    eprintln!("cluster_dns: {:.1} s", started.elapsed().as_secs_f64());
}
