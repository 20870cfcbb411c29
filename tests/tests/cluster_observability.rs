//! Cluster suite for observability: a chart installed with `telemetry` values gives every
//! runtime pod those variables, an Agent's own `spec.env` winning; the operator's
//! `ready_latency_seconds` and `agents{ready}` follow Agents becoming Ready; and every metric
//! the chart's dashboard and alerts query is one the live operator or the live runtime binary
//! describes on its `/metrics`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod runtime_fixtures;

use agentry_tests::process::free_port;
use std::collections::BTreeMap;
use std::time::Duration;

use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::cluster::{self, TestNamespace, eventually};
use agentry_tests::k8s::Cluster;
use agentry_tests::operator::OperatorProcess;
use agentry_tests::process::{Process, binary};
use agentry_tests::runtime::{self, ToolBehaviour, ToolServer};
use agentry_tests::{chart, fixtures, prometheus};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);
const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

fn agent(name: &str, env: Option<Value>) -> Value {
    let mut spec = json!({"model": {"id": MODEL}, "systemPrompt": "Be brief.", "replicas": 1});
    if let Some(env) = env {
        spec["env"] = env;
    }
    json!({"apiVersion": "agentry.dev/v1alpha1", "kind": "Agent",
           "metadata": {"name": name}, "spec": spec})
}

/// The plain variables of the runtime container of Agent `name`'s first pod, once it exists.
async fn pod_env(client: &kube::Client, ns: &str, name: &str) -> Vec<(String, Option<String>)> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector = format!("agentry.dev/agent={name}");
    eventually(&format!("a pod of Agent {name}"), TIMEOUT, || {
        let pods = pods.clone();
        let selector = selector.clone();
        async move {
            let list = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .ok()?;
            let pod = list.items.into_iter().next()?;
            let container = pod.spec?.containers.into_iter().next()?;
            Some(
                container
                    .env
                    .unwrap_or_default()
                    .into_iter()
                    .map(|e| (e.name, e.value))
                    .collect(),
            )
        }
    })
    .await
}

#[tokio::test]
async fn chart_telemetry_values_reach_every_runtime_pod_and_an_agents_own_variable_wins() {
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    let helm = chart::helm();
    let release_ns = TestNamespace::create(&client, "agentry-obs-sys")
        .await
        .unwrap();
    let team = TestNamespace::create(&client, "agentry-obs-team")
        .await
        .unwrap();
    let release = "agentry-obs";
    let watch = format!("watchNamespaces={{{}}}", team.name);
    let model_key = MODEL.replace('.', "\\.");
    let prices = [
        format!("telemetry.modelPrices.{model_key}.input=0.25"),
        format!("telemetry.modelPrices.{model_key}.output=1.25"),
    ];
    let (ok, out) = chart::helm_with_kubeconfig(
        &helm,
        cluster.kubeconfig(),
        &[
            "install",
            release,
            "charts/agentry",
            "-n",
            &release_ns.name,
            "--wait",
            "--timeout",
            "120s",
            "--set",
            &watch,
            // Nothing listens there: the runtimes never run in this suite, and loopback keeps
            // any export attempt on the machine.
            "--set",
            "telemetry.otlpEndpoint=http://127.0.0.1:4318",
            "--set-string",
            "telemetry.headers.x-tenant=team-a",
            "--set",
            "telemetry.sampler=parentbased_traceidratio",
            "--set",
            "telemetry.samplerArg=0.25",
            "--set",
            "telemetry.captureContent=true",
            "--set",
            &prices[0],
            "--set",
            &prices[1],
        ],
    );
    assert!(ok, "helm install failed:\n{out}");
    let listen = format!("127.0.0.1:{}", free_port());
    let operator = OperatorProcess {
        namespace: &release_ns.name,
        deployment: release,
        identity: &format!("{release}-0"),
        listen: &listen,
    }
    .start(&cluster)
    .await;
    assert!(
        operator.wait_for_log("starting the Agent controller", TIMEOUT),
        "the operator did not start:\n{}",
        operator.log()
    );

    let own = json!([
        {"name": "OTEL_TRACES_SAMPLER", "value": "always_off"},
        {"name": "AGENT_SETTING", "value": "$(OTEL_EXPORTER_OTLP_ENDPOINT)/v1/traces"},
    ]);
    for a in [agent("plain", None), agent("own", Some(own))] {
        cluster::apply_document(&client, &team.name, &a)
            .await
            .unwrap();
    }
    let expected = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=team-a"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true"),
        (
            "AGENTRY_MODEL_PRICES",
            r#"{"anthropic.claude-3-haiku-20240307-v1:0":{"input":0.25,"output":1.25}}"#,
        ),
    ];
    let plain = pod_env(&client, &team.name, "plain").await;
    for (name, value) in expected {
        let got: Vec<_> = plain.iter().filter(|(n, _)| n == name).collect();
        assert_eq!(
            got,
            [&(name.to_string(), Some(value.to_string()))],
            "{plain:?}"
        );
    }
    let own = pod_env(&client, &team.name, "own").await;
    let samplers: Vec<_> = own
        .iter()
        .filter(|(n, _)| n == "OTEL_TRACES_SAMPLER")
        .collect();
    assert_eq!(
        samplers,
        [&(
            "OTEL_TRACES_SAMPLER".to_string(),
            Some("always_off".to_string())
        )],
        "the Agent's own value, once: {own:?}"
    );
    let names: Vec<&str> = own.iter().map(|(n, _)| n.as_str()).collect();
    let position = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(
        position("OTEL_EXPORTER_OTLP_ENDPOINT") < position("AGENT_SETTING"),
        "the operator's variables come first, so the Agent's can use $(NAME): {names:?}"
    );
    assert!(!operator.log().contains("forbidden"), "{}", operator.log());

    drop::<Process>(operator);
    let (ok, out) = chart::helm_with_kubeconfig(
        &helm,
        cluster.kubeconfig(),
        &["uninstall", release, "-n", &release_ns.name, "--wait"],
    );
    assert!(ok, "helm uninstall failed:\n{out}");
    team.delete().await;
    release_ns.delete().await;
}

/// The operator watching only `ns`, as the admin, without leader election, serving /metrics on
/// loopback; and its metrics URL.
fn operator(cluster: &Cluster, ns: &str) -> (Process, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let p = Process::start(
        "operator",
        &binary("agentry-operator", "agentry-operator"),
        &[
            "--namespaces",
            ns,
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
        p.wait_for_log("starting the Agent controller", TIMEOUT),
        "operator did not start:\n{}",
        p.log()
    );
    (p, format!("http://{listen}/metrics"))
}

async fn get(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// The value of the series `series` (name and labels exactly as printed) on a metrics page.
fn value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn ready(cluster: &Cluster, ns: &str, name: &str) {
    let (ok, out) = cluster.kubectl(
        &[
            "wait",
            "--for=condition=Ready",
            &format!("agent/{name}"),
            "-n",
            ns,
            "--timeout=90s",
        ],
        None,
    );
    assert!(ok, "agent {name} not Ready: {out}");
}

#[tokio::test]
async fn ready_latency_and_agents_by_ready_follow_agents_becoming_ready() {
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, "agentry-ready")
        .await
        .unwrap();
    let (operator, metrics) = operator(&cluster, &ns.name);
    let before = get(&metrics).await;
    assert_eq!(
        value(&before, "agentry_operator_ready_latency_seconds_count"),
        Some(0.0)
    );
    for name in ["one", "two"] {
        cluster::apply_document(&client, &ns.name, &agent(name, None))
            .await
            .unwrap();
    }
    for name in ["one", "two"] {
        ready(&cluster, &ns.name, name).await;
    }
    let page = eventually("both Agents counted Ready", TIMEOUT, || async {
        let page = get(&metrics).await;
        (value(&page, r#"agentry_operator_agents{ready="True"}"#) == Some(2.0)).then_some(page)
    })
    .await;
    assert_eq!(
        value(&page, "agentry_operator_ready_latency_seconds_count"),
        Some(2.0),
        "one observation per Agent:\n{page}"
    );
    let sum = value(&page, "agentry_operator_ready_latency_seconds_sum").unwrap();
    assert!(sum > 0.0 && sum < 90.0, "{sum}");

    // A new generation is timed again; the status writes in between are not.
    let mut changed = agent("one", None);
    changed["spec"]["systemPrompt"] = "Be very brief.".into();
    cluster::apply_document(&client, &ns.name, &changed)
        .await
        .unwrap();
    eventually("the new generation's Ready latency", TIMEOUT, || async {
        let page = get(&metrics).await;
        (value(&page, "agentry_operator_ready_latency_seconds_count") == Some(3.0)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let page = get(&metrics).await;
    assert_eq!(
        value(&page, "agentry_operator_ready_latency_seconds_count"),
        Some(3.0),
        "{page}"
    );
    assert_eq!(
        value(&page, r#"agentry_operator_watched_objects{kind="Agent"}"#),
        Some(2.0)
    );
    drop(operator);
    ns.delete().await;
}

/// Every PromQL expression of the dashboard (panel targets, and the metric of each
/// `label_values` variable) and of the rendered PrometheusRule, with Grafana's variables
/// replaced so Prometheus' parser reads them: (where, expression).
fn queries() -> Vec<(String, String)> {
    let grafana = |e: &str| {
        e.replace("$__rate_interval", "5m")
            .replace("$__range", "1h")
            .replace("$namespace", ".*")
            .replace("$agent", ".*")
    };
    let path = fixtures::repo_root().join("charts/agentry/dashboards/agentry.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|q| q.rsplit_once(','))
                .map(|(metric, _)| metric)
                .unwrap_or_else(|| panic!("variable {}: {q}", v["name"]));
            out.push((format!("variable {}", v["name"]), grafana(inner)));
        }
    }
    for p in dashboard["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                format!("panel {:?}", p["title"].as_str().unwrap()),
                grafana(t["expr"].as_str().unwrap()),
            ));
        }
    }
    let docs = chart::render(
        &chart::helm(),
        "agentry-system",
        &["--set", "prometheusRule.enabled=true"],
    );
    let rule = docs.iter().find(|d| d["kind"] == "PrometheusRule").unwrap();
    for g in rule["spec"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            out.push((
                format!("alert {}", r["alert"].as_str().unwrap()),
                r["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

/// The runtime binary's /metrics after a tool-using invocation and a streamed one, with prices
/// for its model (so the estimated cost has a series).
async fn runtime_metrics() -> String {
    let bedrock = FakeBedrock::start().await.unwrap();
    let tools = ToolServer::start(&[(
        "/top_song",
        ToolBehaviour::Json(json!({"song": "Elemental Hotel", "artist": "8 Storey Hike"})),
    )])
    .await;
    let mut config = runtime_fixtures::config(
        vec![runtime_fixtures::http_tool(
            "top_song",
            tools.url("/top_song"),
            5,
        )],
        runtime_fixtures::limits(),
    );
    config.model.region = Some("us-east-1".into());
    let model = config.model.id.clone();
    let path = std::env::temp_dir().join(format!("{}.json", cluster::unique_name("agentry-obs")));
    std::fs::write(&path, config.to_json()).unwrap();
    let mut env = bedrock.process_env();
    env.push(("AGENTRY_TOOL0_HEADER0", "key".into()));
    env.push((
        "AGENTRY_MODEL_PRICES",
        json!({model: {"input": 3, "output": 15, "cacheRead": 0.3, "cacheWrite": 3.75}})
            .to_string(),
    ));
    let (process, url) = runtime::start_process("obs-runtime", &path, &env, &[]);
    bedrock.push([
        Script::Turn(Turn::tools(&[("t1", "top_song", json!({"sign": "WZPZ"}))])),
        Script::Turn(Turn::text("Elemental Hotel, by 8 Storey Hike.")),
        Script::Turn(Turn::text("Still Elemental Hotel.")),
    ]);
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/v1/invoke"))
        .body(json!({"input": "Top song on WZPZ?"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = http
        .post(format!("{url}/v1/invoke"))
        .header("accept", "text/event-stream")
        .body(json!({"input": "And now?"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let streamed = r.text().await.unwrap();
    assert!(streamed.contains("Still Elemental Hotel."), "{streamed}");
    let page = get(&format!("{url}/metrics")).await;
    drop(process);
    let _ = std::fs::remove_file(path);
    page
}

/// Series Prometheus itself adds to every target: not on any /metrics page.
const SYNTHETIC: [&str; 1] = ["up"];

#[tokio::test]
async fn every_metric_the_dashboard_and_the_alerts_use_is_exported_by_the_live_operator_or_runtime()
{
    let queries = queries();
    let exprs: Vec<String> = queries.iter().map(|(_, e)| e.clone()).collect();
    let names = prometheus::metric_names(&exprs);
    let mut used: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut unparsable = Vec::new();
    for ((place, expr), result) in queries.iter().zip(names) {
        match result {
            Ok(names) => {
                for n in names {
                    used.entry(n).or_default().push(place.clone());
                }
            }
            Err(e) => unparsable.push(format!("{place}: {e}\n  {expr}")),
        }
    }
    assert!(
        unparsable.is_empty(),
        "Prometheus' parser refuses:\n{}",
        unparsable.join("\n")
    );

    let cluster = Cluster::shared();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, "agentry-metric-names")
        .await
        .unwrap();
    let (operator, metrics) = operator(&cluster, &ns.name);
    cluster::apply_document(&client, &ns.name, &agent("named", None))
        .await
        .unwrap();
    ready(&cluster, &ns.name, "named").await;
    let operator_page = get(&metrics).await;
    drop(operator);
    ns.delete().await;
    let runtime_page = runtime_metrics().await;

    let operator_families = prometheus::families(&operator_page);
    let runtime_families = prometheus::families(&runtime_page);
    let missing: Vec<String> = used
        .iter()
        .filter(|(name, _)| !SYNTHETIC.contains(&name.as_str()))
        .filter(|(name, _)| {
            !prometheus::exported(name, &operator_families)
                && !prometheus::exported(name, &runtime_families)
        })
        .map(|(name, places)| format!("{name} (used by {})", places.join(", ")))
        .collect();
    assert!(
        used.len() > 15,
        "the queries name {} metrics: {used:?}",
        used.len()
    );
    assert!(
        missing.is_empty(),
        "queried but exported by neither the operator nor the runtime:\n  {}\n\
         operator families: {:?}\nruntime families: {:?}",
        missing.join("\n  "),
        operator_families.keys().collect::<Vec<_>>(),
        runtime_families.keys().collect::<Vec<_>>()
    );
}
