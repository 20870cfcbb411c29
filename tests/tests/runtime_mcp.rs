//! MCP tools against an independent MCP implementation: the official Python SDK's server
//! (`tests/python/mcp_server.py`), with the runtime driven through the Bedrock imitation, or its
//! toolbox driven directly where the test is about offers, readiness and metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use agentry_crds::runtime_config::*;
use agentry_runtime::conversation::ToolUse;
use agentry_runtime::metrics::Metrics;
use agentry_runtime::tools::{CallContext, Toolbox};
use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::mcp::{Options, PyMcpServer, Sdk};
use agentry_tests::process::free_port;
use agentry_tests::runtime::{self, RuntimeUnderTest};
use fixtures::{config, invoke, limits, tool_results};
use serde_json::{Value, json};

fn mcp_tool(name: &str, url: &str, allowed: &[&str], timeout_seconds: u32) -> ToolConfig {
    ToolConfig {
        approval_required: false,
        name: name.into(),
        description: "The test MCP server.".into(),
        kind: ToolKindConfig::Mcp(McpToolConfig {
            url: url.into(),
            allowed_tools: allowed.iter().map(|s| s.to_string()).collect(),
            headers: vec![],
            timeout_seconds,
        }),
    }
}

/// The names Bedrock was offered in request `body`.
fn offered(body: &Value) -> Vec<String> {
    body["toolConfig"]["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["toolSpec"]["name"].as_str().map(String::from))
        .collect()
}

/// Invokes with a text-only reply until the model is offered every name in `names`
/// (at most 20 s): the offer grows once the MCP server answers.
async fn wait_offered(rt: &RuntimeUnderTest, fake: &FakeBedrock, names: &[&str]) -> Value {
    let start = Instant::now();
    loop {
        fake.push([Script::Turn(Turn::text("ok"))]);
        let (status, body, _) = invoke(rt, json!({"input": "ready?"})).await;
        assert_eq!(status, 200, "{body}");
        let last = fake.captured().last().unwrap().body.clone();
        let have = offered(&last);
        if names.iter().all(|n| have.iter().any(|h| h == n)) {
            return last;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not offered {names:?}; offered {have:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A toolbox of its own (for readiness, offers and metrics), and how long until `pred` holds
/// for its readiness body (at most `within`).
async fn wait_ready(tb: &Toolbox, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let r = tb.readiness();
        if pred(&r) {
            return r;
        }
        assert!(start.elapsed() < within, "readiness never matched: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn connected(r: &Value) -> bool {
    r["mcpServers"]
        .as_array()
        .is_some_and(|s| s.iter().all(|s| s["state"] == "connected"))
}

fn ctx() -> CallContext {
    CallContext {
        depth: 0,
        deadline: Instant::now() + Duration::from_secs(20),
    }
}

async fn call(tb: &Toolbox, name: &str, input: Value) -> agentry_runtime::conversation::ToolResult {
    let u = ToolUse {
        tool_use_id: "t1".into(),
        name: name.into(),
        input,
    };
    tb.call(&u, ctx(), &Default::default()).await.result
}

fn text_of(result: &Value) -> String {
    result["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn tool_uses_reach_the_mcp_server_and_its_results_reach_the_next_converse_request() {
    let server = PyMcpServer::start(Options::default()).await;
    let fake = FakeBedrock::start().await.unwrap();
    let rt = runtime::start(
        config(vec![mcp_tool("py", &server.url(), &[], 5)], limits()),
        &fake,
        BTreeMap::new(),
    )
    .await;
    let first = wait_offered(&rt, &fake, &["py_echo", "py_add", "py_describe"]).await;
    let spec = first["toolConfig"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["toolSpec"]["name"] == "py_describe")
        .unwrap()["toolSpec"]
        .clone();
    assert_eq!(spec["description"], "Describes a place given as an object.");
    assert_eq!(
        spec["inputSchema"]["json"]["required"],
        json!(["place"]),
        "{spec}"
    );
    fake.push([
        Script::Turn(Turn::tools(&[
            ("s", "py_echo", json!({"text": "hello"})),
            ("n", "py_add", json!({"a": 2, "b": 3.5})),
            (
                "o",
                "py_describe",
                json!({"place": {"city": "Lyon", "country": "FR"}, "days": 3}),
            ),
            ("a", "py_total", json!({"values": [1, 2, 3]})),
        ])),
        Script::Turn(Turn::text("Done.")),
    ]);
    let (status, body, _) = invoke(&rt, json!({"input": "use the tools"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"], "Done.");
    let results = tool_results(&fake.captured().last().unwrap().body);
    let by_id = |id: &str| {
        results
            .iter()
            .find(|r| r["toolUseId"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("s")["status"], "success");
    assert_eq!(text_of(&by_id("s")), "echo: hello");
    assert_eq!(text_of(&by_id("n")), "5.5");
    assert_eq!(
        by_id("o")["content"][0]["json"],
        json!({"summary": "Lyon (FR) for 3 days", "days": 3})
    );
    assert_eq!(text_of(&by_id("a")), "the total is 6");
}

#[tokio::test]
async fn a_raising_tool_and_a_slow_tool_become_error_results_and_the_loop_goes_on() {
    let server = PyMcpServer::start(Options::default()).await;
    let fake = FakeBedrock::start().await.unwrap();
    let rt = runtime::start(
        config(vec![mcp_tool("py", &server.url(), &[], 1)], limits()),
        &fake,
        BTreeMap::new(),
    )
    .await;
    wait_offered(&rt, &fake, &["py_fail", "py_slow"]).await;
    fake.push([
        Script::Turn(Turn::tools(&[
            ("f", "py_fail", json!({"reason": "no luck"})),
            ("w", "py_slow", json!({"seconds": 3})),
        ])),
        Script::Turn(Turn::tools(&[(
            "e",
            "py_echo",
            json!({"text": "still here"}),
        )])),
        Script::Turn(Turn::text("Recovered.")),
    ]);
    let started = Instant::now();
    let (status, body, _) = invoke(&rt, json!({"input": "try"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"], "Recovered.");
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "the slow call was cut at 1 s, took {took:?}"
    );
    let captured = fake.captured();
    let results = tool_results(&captured[captured.len() - 2].body);
    let failed = results.iter().find(|r| r["toolUseId"] == "f").unwrap();
    assert_eq!(failed["status"], "error");
    assert!(
        text_of(failed).contains("failed on purpose: no luck"),
        "{failed}"
    );
    let slow = results.iter().find(|r| r["toolUseId"] == "w").unwrap();
    assert_eq!(slow["status"], "error");
    assert_eq!(text_of(slow), "py_slow timed out after 1000 ms");
    let last = tool_results(&captured.last().unwrap().body);
    assert_eq!(text_of(&last[0]), "echo: still here");
}

#[tokio::test]
async fn a_tool_added_at_run_time_is_offered_after_the_list_changed_notification() {
    let server = PyMcpServer::start(Options::default()).await;
    let fake = FakeBedrock::start().await.unwrap();
    let rt = runtime::start(
        config(vec![mcp_tool("py", &server.url(), &[], 5)], limits()),
        &fake,
        BTreeMap::new(),
    )
    .await;
    let before = wait_offered(&rt, &fake, &["py_add_tool"]).await;
    assert!(!offered(&before).contains(&"py_late".to_string()));
    fake.push([
        Script::Turn(Turn::tools(&[(
            "x",
            "py_add_tool",
            json!({"name": "late"}),
        )])),
        Script::Turn(Turn::text("Added.")),
    ]);
    let (status, body, _) = invoke(&rt, json!({"input": "add one"})).await;
    assert_eq!(status, 200, "{body}");
    wait_offered(&rt, &fake, &["py_late"]).await;
    fake.push([
        Script::Turn(Turn::tools(&[("l", "py_late", json!({}))])),
        Script::Turn(Turn::text("Called.")),
    ]);
    invoke(&rt, json!({"input": "call it"})).await;
    let results = tool_results(&fake.captured().last().unwrap().body);
    assert_eq!(text_of(&results[0]), "I am late");
}

#[tokio::test]
async fn allowed_tools_filter_names_are_derived_and_collisions_are_refused_naming_both() {
    let server = PyMcpServer::start(Options::default()).await;
    let clash = fixtures::http_tool("py_echo", "http://127.0.0.1:9/".into(), 2);
    let cfg = config(
        vec![
            mcp_tool(
                "py",
                &server.url(),
                &["echo", "search.issues", "add", "nope"],
                5,
            ),
            clash,
        ],
        limits(),
    );
    let tb = Toolbox::new(&cfg, |_| Some("key".into())).unwrap();
    let r = wait_ready(&tb, Duration::from_secs(20), connected).await;
    let names: Vec<String> = tb.offered().specs.iter().map(|s| s.name.clone()).collect();
    let dotted = agentry_runtime::tools::mcp::naming::derive("py", "search.issues");
    assert!(
        dotted.starts_with("py_search_issues_") && dotted.len() == 25,
        "{dotted}"
    );
    assert_eq!(
        names,
        ["py_add", dotted.as_str(), "py_echo"],
        "allowedTools keeps three, in the server's order; the http tool keeps its own name"
    );
    let server_state = &r["mcpServers"][0];
    assert_eq!(server_state["toolsOffered"], 2);
    assert_eq!(server_state["missingTools"], json!(["nope"]));
    assert_eq!(
        server_state["refused"],
        json!([
            "tool echo of MCP server py is not offered: its name py_echo is already taken by http tool py_echo"
        ])
    );
    // The name Claude sees reaches the server under the MCP tool's own name.
    let found = call(&tb, &dotted, json!({"query": "bug"})).await;
    assert_eq!(
        found.content,
        [agentry_runtime::conversation::ResultContent::Text(
            "no issues match bug".into()
        )]
    );
}

#[tokio::test]
async fn a_server_down_at_start_does_not_stop_the_agent_and_its_tools_come_when_it_answers() {
    let port = free_port();
    let mut server = PyMcpServer::stopped(port, Options::default());
    let fake = FakeBedrock::start().await.unwrap();
    let cfg = config(
        vec![
            mcp_tool("py", &server.url(), &[], 5),
            fixtures::http_tool("top_song", "http://127.0.0.1:9/".into(), 2),
        ],
        limits(),
    );
    let tb = Toolbox::new(&cfg, |_| Some("key".into())).unwrap();
    let rt = runtime::start(cfg, &fake, fixtures::secrets()).await;
    let down = wait_ready(&tb, Duration::from_secs(10), |r| {
        r["mcpServers"][0]["state"] == "failed"
    })
    .await;
    assert!(
        down["mcpServers"][0]["error"]
            .as_str()
            .unwrap()
            .contains("onnect"),
        "{down}"
    );
    assert_eq!(down["mcpServers"][0]["toolsOffered"], 0);
    // The Agent serves its other tools meanwhile.
    let meanwhile = wait_offered(&rt, &fake, &["top_song"]).await;
    assert_eq!(offered(&meanwhile), ["top_song"]);
    server.restart().await;
    wait_ready(&tb, Duration::from_secs(40), connected).await;
    assert_eq!(
        call(&tb, "py_echo", json!({"text": "up"}))
            .await
            .content
            .len(),
        1
    );
    wait_offered(&rt, &fake, &["top_song", "py_echo"]).await;
    let m = Metrics::with_mcp(tb.mcp_metrics()).render();
    assert!(m.contains("agentry_runtime_mcp_servers_connected 1"), "{m}");
    assert!(
        m.contains("agentry_runtime_mcp_tools_offered{tool=\"py\"} 9"),
        "{m}"
    );
    assert!(
        m.contains("agentry_runtime_mcp_calls_total{tool=\"py_echo\",outcome=\"success\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn a_server_that_restarts_mid_session_is_reconnected_and_calls_go_on() {
    let mut server = PyMcpServer::start(Options::default()).await;
    // 20 s per call: on a busy machine the Python server's first call took longer than 5 s (a
    // CI failure); calls to the stopped server fail at once, whatever the timeout.
    let cfg = config(vec![mcp_tool("py", &server.url(), &[], 20)], limits());
    let tb = Toolbox::new(&cfg, |_| None).unwrap();
    wait_ready(&tb, Duration::from_secs(20), connected).await;
    assert_eq!(
        text_of(&serde_json::to_value(call(&tb, "py_echo", json!({"text": "one"})).await).unwrap()),
        "echo: one"
    );
    server.stop();
    let down = call(&tb, "py_echo", json!({"text": "two"})).await;
    assert!(down.is_error());
    let message = text_of(&serde_json::to_value(&down).unwrap());
    assert!(message.contains("MCP server py"), "{message}");
    server.restart().await;
    // Within a few seconds the same tool answers again, through a new session if need be.
    let start = Instant::now();
    loop {
        let again = call(&tb, "py_echo", json!({"text": "three"})).await;
        if !again.is_error() {
            assert_eq!(
                text_of(&serde_json::to_value(&again).unwrap()),
                "echo: three"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "never answered again: {again:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn secret_headers_and_the_hop_headers_reach_the_server() {
    let server = PyMcpServer::start(Options::default()).await;
    let mut tool = mcp_tool("py", &server.url(), &["headers"], 5);
    if let ToolKindConfig::Mcp(m) = &mut tool.kind {
        m.headers = vec![
            HeaderConfig {
                name: "authorization".into(),
                value: None,
                value_from_env: Some("AGENTRY_TOOL0_HEADER0".into()),
            },
            HeaderConfig {
                name: "x-team".into(),
                value: Some("ops".into()),
                value_from_env: None,
            },
        ];
    }
    let cfg = config(vec![tool], limits());
    let env = BTreeMap::from([(
        "AGENTRY_TOOL0_HEADER0".to_string(),
        "Bearer s3cr3t".to_string(),
    )]);
    let tb = Toolbox::new(&cfg, |v| env.get(v).cloned()).unwrap();
    wait_ready(&tb, Duration::from_secs(20), connected).await;
    let u = ToolUse {
        tool_use_id: "h".into(),
        name: "py_headers".into(),
        input: json!({}),
    };
    let ctx = CallContext {
        depth: 2,
        deadline: Instant::now() + Duration::from_secs(3),
    };
    let mut trace = reqwest::header::HeaderMap::new();
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    trace.insert("traceparent", tp.parse().unwrap());
    let result = serde_json::to_value(tb.call(&u, ctx, &trace).await.result).unwrap();
    let seen = &result["content"][0]["json"];
    assert_eq!(seen["traceparent"], tp, "the trace context is passed on");
    assert_eq!(seen["authorization"], "Bearer s3cr3t", "{result}");
    assert_eq!(seen["x-team"], "ops");
    assert_eq!(seen["x-agentry-call-depth"], "3");
    let deadline: u64 = seen["x-agentry-deadline-ms"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3000).contains(&deadline), "{deadline}");
}

#[tokio::test]
async fn a_server_of_the_older_http_sse_transport_is_reached_through_it() {
    let server = PyMcpServer::start(Options {
        transport: "sse",
        ..Options::default()
    })
    .await;
    let cfg = config(vec![mcp_tool("old", &server.url(), &[], 5)], limits());
    let tb = Toolbox::new(&cfg, |_| None).unwrap();
    let r = wait_ready(&tb, Duration::from_secs(30), connected).await;
    assert_eq!(r["mcpServers"][0]["transport"], "http+sse", "{r}");
    let echoed = call(&tb, "old_echo", json!({"text": "legacy"})).await;
    assert_eq!(
        text_of(&serde_json::to_value(&echoed).unwrap()),
        "echo: legacy"
    );
}

#[tokio::test]
async fn an_mcp_1_server_gets_the_handshake_and_a_session_expired_by_a_restart_is_renewed() {
    let mut server = PyMcpServer::start(Options {
        sdk: Sdk::V1,
        ..Options::default()
    })
    .await;
    let cfg = config(vec![mcp_tool("v1", &server.url(), &[], 5)], limits());
    let tb = Toolbox::new(&cfg, |_| None).unwrap();
    let r = wait_ready(&tb, Duration::from_secs(30), connected).await;
    // No server/discover on mcp 1: the initialize handshake agreed on its newest version.
    assert_eq!(r["mcpServers"][0]["protocolVersion"], "2025-11-25", "{r}");
    assert_eq!(r["mcpServers"][0]["transport"], "streamable-http");
    let one = call(&tb, "v1_echo", json!({"text": "one"})).await;
    assert_eq!(text_of(&serde_json::to_value(&one).unwrap()), "echo: one");

    // A notification on the session's stream announces the new tool.
    call(&tb, "v1_add_tool", json!({"name": "later"})).await;
    let start = Instant::now();
    while !tb.offered().specs.iter().any(|s| s.name == "v1_later") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "v1_later never offered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The restarted server does not know the session: the first call after it gets HTTP 404,
    // and still succeeds, on a new session.
    server.restart().await;
    let after = call(&tb, "v1_echo", json!({"text": "after restart"})).await;
    assert!(!after.is_error(), "{after:?}");
    assert_eq!(
        text_of(&serde_json::to_value(&after).unwrap()),
        "echo: after restart"
    );
}

const LOCAL_AGENT: &str = r#"
apiVersion: agentry.dev/v1alpha1
kind: Agent
metadata: {name: ops}
spec:
  model: {id: anthropic.claude-3-haiku-20240307-v1:0}
  systemPrompt: You run operations.
  tools:
    - name: py
      description: The team's MCP tools.
      mcp:
        service: {name: team-tools, port: 8000, path: /mcp}
        allowedTools: [echo]
"#;

#[tokio::test]
async fn the_local_agent_mode_runs_mcp_tools_with_resolve_for_in_cluster_services() {
    use agentry_tests::process::{Process, binary};
    let server = PyMcpServer::start(Options::default()).await;
    let fake = FakeBedrock::start().await.unwrap();
    let manifest =
        std::env::temp_dir().join(format!("agentry-mcp-local-{}.yaml", std::process::id()));
    std::fs::write(&manifest, LOCAL_AGENT).unwrap();
    let bin = binary("agentry-runtime", "agentry-runtime");
    let env = fake.process_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let manifest_arg = manifest.to_str().unwrap();

    // Without --resolve the in-cluster Service cannot be reached, and the runtime says so.
    let mut refused = Process::start(
        "local",
        &bin,
        &["--agent", manifest_arg, "--listen", "127.0.0.1:0"],
        &env,
    );
    assert!(
        refused.wait_for_log("--resolve TOOL=URL", Duration::from_secs(20)),
        "{}",
        refused.log()
    );
    assert!(
        refused
            .log()
            .contains("py (http://team-tools.default.svc.cluster.local:8000/mcp)"),
        "{}",
        refused.log()
    );
    refused.kill();

    let listen = format!("127.0.0.1:{}", free_port());
    let resolve = format!("py={}", server.url());
    let _rt = Process::start(
        "local",
        &bin,
        &[
            "--agent",
            manifest_arg,
            "--resolve",
            &resolve,
            "--listen",
            &listen,
        ],
        &env,
    );
    let client = reqwest::Client::new();
    let url = format!("http://{listen}");
    let start = Instant::now();
    loop {
        fake.push([
            Script::Turn(Turn::tools(&[(
                "e",
                "py_echo",
                json!({"text": "from a laptop"}),
            )])),
            Script::Turn(Turn::text("Done.")),
        ]);
        let answer = client
            .post(format!("{url}/v1/invoke"))
            .header("content-type", "application/json")
            .body(r#"{"input":"echo"}"#)
            .send()
            .await;
        if let Ok(r) = answer
            && let Ok(body) = r.json::<Value>().await
            && body["toolCalls"][0]["status"] == "success"
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "the local runtime never served py_echo"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let results = tool_results(&fake.captured().last().unwrap().body);
    assert_eq!(text_of(&results[0]), "echo: from a laptop");
    let _ = std::fs::remove_file(manifest);
}
