//! Human approval of tool calls (issue 13) over `/v1/invoke`, against a real redis-server and
//! the Bedrock imitation: a call to an `approval: Required` tool stops the turn with
//! `approval_required` and the pending calls; `POST /v1/sessions/{id}/approvals` approves
//! (the tool runs once) or denies (the model gets the reason, the tool never runs); an
//! approval that expired is 410 and its turn dropped; the session refuses other work
//! meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;
#[path = "support/session_fixtures.rs"]
mod sessions;

use std::collections::BTreeMap;
use std::time::Duration;

use agentry_crds::runtime_config::MemoryConfig;
use agentry_tests::a2a::{self, Sdk};
use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::redis::RedisServer;
use agentry_tests::runtime::{self, RuntimeUnderTest, ToolBehaviour, ToolServer};
use fixtures::{config, http_tool, limits};
use serde_json::{Value, json};
use sessions::*;

/// A runtime with memory whose `book` tool needs approval and `top_song` does not.
async fn desk(redis: &RedisServer, tools: &ToolServer) -> (FakeBedrock, RuntimeUnderTest) {
    desk_waiting(redis, tools, 3600).await
}

/// The same, its turns waiting `approval_timeout_seconds` (`memory.approvalTimeoutSeconds`).
async fn desk_waiting(
    redis: &RedisServer,
    tools: &ToolServer,
    approval_timeout_seconds: u32,
) -> (FakeBedrock, RuntimeUnderTest) {
    let fake = FakeBedrock::start().await.unwrap();
    let mut book = http_tool("book", tools.url("/book"), 5);
    book.approval_required = true;
    let mut cfg = config(
        vec![http_tool("top_song", tools.url("/top_song"), 5), book],
        limits(),
    );
    cfg.memory = Some(MemoryConfig {
        approval_timeout_seconds,
        ..memory(60, 100)
    });
    let mut env: BTreeMap<String, String> = sessions::env(&redis.url());
    env.insert("AGENTRY_TOOL1_HEADER0".into(), "k".into());
    // The A2A card advertises the loopback URL, so the SDK clients reach the runtime.
    let rt = runtime::start_public(cfg, &fake, env).await;
    (fake, rt)
}

fn tools_routes() -> [(&'static str, ToolBehaviour); 2] {
    [
        (
            "/top_song",
            ToolBehaviour::Json(json!({"song": "Blue Monday"})),
        ),
        ("/book", ToolBehaviour::Json(json!({"booked": "table 4"}))),
    ]
}

async fn decide(base: &str, id: &str, body: Value) -> (u16, Value) {
    let (s, b, _) = send(
        reqwest::Method::POST,
        format!("{base}/v1/sessions/{id}/approvals"),
        Some(body),
    )
    .await;
    (s, b)
}

fn calls(tools: &ToolServer, path: &str) -> usize {
    tools.seen().iter().filter(|r| r.path == path).count()
}

#[tokio::test]
async fn an_approved_call_runs_once_after_the_decision_and_the_turn_goes_on_to_the_answer() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&tools_routes()).await;
    let (fake, rt) = desk(&redis, &tools).await;
    fake.push([
        Script::Turn(Turn::tools(&[("t1", "book", json!({"sign": "T4"}))])),
        Script::Turn(Turn::text("Your table is booked.")),
    ]);
    let (status, stopped, _) = ask(
        &rt.url,
        json!({"sessionId": "dinner", "input": "Book a table."}),
    )
    .await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["stopReason"], "approval_required");
    assert_eq!(stopped["sessionId"], "dinner");
    assert_eq!(
        stopped["pendingApprovals"],
        json!([{"toolUseId": "t1", "name": "book", "input": {"sign": "T4"}}])
    );
    assert_eq!(
        calls(&tools, "/book"),
        0,
        "the call ran before its approval"
    );

    let (_, session) = get(&rt.url, "dinner").await;
    assert_eq!(session["running"], false, "{session}");
    assert_eq!(
        session["pendingApproval"]["calls"][0]["toolUseId"], "t1",
        "{session}"
    );
    assert!(
        session["pendingApproval"]["expiresAt"].is_string(),
        "{session}"
    );
    assert_eq!(
        session["messages"],
        json!([]),
        "nothing is committed while it waits"
    );

    // Meanwhile the session takes no other turn and no resume.
    let (status, busy, _) = ask(&rt.url, json!({"sessionId": "dinner", "input": "Hello?"})).await;
    assert_eq!(
        (status, busy["error"]["code"].as_str()),
        (409, Some("approval_pending")),
        "{busy}"
    );
    let (status, body, _) = send(
        reqwest::Method::POST,
        format!("{}/v1/sessions/dinner/resume", rt.url),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("approval_pending")),
        "{body}"
    );

    // Every pending call must be decided, and only those.
    let (status, body) = decide(&rt.url, "dinner", json!({"decisions": []})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_decisions")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing: t1 (book)"),
        "{body}"
    );
    let (status, body) = decide(
        &rt.url,
        "dinner",
        json!({"decisions": [{"toolUseId": "t1", "decision": "approve"}, {"toolUseId": "t7", "decision": "deny"}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no pending call has toolUseId t7"),
        "{body}"
    );
    assert_eq!(calls(&tools, "/book"), 0);

    let (status, answer) = decide(
        &rt.url,
        "dinner",
        json!({"decisions": [{"toolUseId": "t1", "decision": "approve"}]}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["output"], "Your table is booked.");
    assert_eq!(answer["stopReason"], "end_turn");
    assert_eq!(answer["sessionId"], "dinner");
    assert_eq!(
        answer["iterations"], 2,
        "the turn's model calls, before the stop included"
    );
    let requests = fake.captured();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        calls(&tools, "/book"),
        1,
        "{:?}",
        results(&requests[1].body)
    );
    assert_eq!(
        results(&requests[1].body),
        [(
            "t1".to_string(),
            "success".to_string(),
            json!({"booked": "table 4"}).to_string()
        )]
    );

    let (_, session) = get(&rt.url, "dinner").await;
    assert_eq!(
        texts(&session["messages"]),
        [
            "user: Book a table.",
            "assistant: use book",
            "user: result",
            "assistant: Your table is booked."
        ]
    );
    assert_eq!(session["pendingApproval"], Value::Null);
    assert_eq!(session["checkpoint"], Value::Null);
    let (status, body) = decide(&rt.url, "dinner", json!({"decisions": []})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("no_pending_approval")),
        "{body}"
    );
    assert_eq!(calls(&tools, "/book"), 1);
}

#[tokio::test]
async fn a_denied_call_never_runs_and_the_model_reads_the_reason_while_the_rest_of_the_round_runs()
{
    let redis = RedisServer::start();
    let tools = ToolServer::start(&tools_routes()).await;
    let (fake, rt) = desk(&redis, &tools).await;
    fake.push([
        Script::Turn(Turn::tools(&[
            ("t1", "top_song", json!({"sign": "WZPZ"})),
            ("t2", "book", json!({"sign": "T9"})),
        ])),
        Script::Turn(Turn::text("I did not book; Blue Monday is top.")),
    ]);
    let (status, stopped, _) = ask(
        &rt.url,
        json!({"sessionId": "mixed", "input": "Song and a table."}),
    )
    .await;
    assert_eq!(
        (status, stopped["stopReason"].as_str()),
        (200, Some("approval_required")),
        "{stopped}"
    );
    // Only the call that needs approval is pending; the whole round waits for it.
    assert_eq!(
        stopped["pendingApprovals"],
        json!([{"toolUseId": "t2", "name": "book", "input": {"sign": "T9"}}])
    );
    assert_eq!((calls(&tools, "/top_song"), calls(&tools, "/book")), (0, 0));

    // The decision over Server-Sent Events.
    let r = reqwest::Client::new()
        .post(format!("{}/v1/sessions/mixed/approvals", rt.url))
        .header("accept", "text/event-stream")
        .header("content-type", "application/json")
        .body(json!({"decisions": [{"toolUseId": "t2", "decision": "deny", "reason": "not on a Monday"}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.unwrap();
    let done = text
        .split("\n\n")
        .find(|e| e.lines().any(|l| l == "event: done"))
        .and_then(|e| e.lines().find_map(|l| l.strip_prefix("data:")))
        .map(|d| serde_json::from_str::<Value>(d.trim()).unwrap())
        .unwrap_or_else(|| panic!("no done event: {text}"));
    assert_eq!(done["output"], "I did not book; Blue Monday is top.");
    assert!(text.contains("event: tool_call_started"), "{text}");
    assert_eq!((calls(&tools, "/top_song"), calls(&tools, "/book")), (1, 0));
    let requests = fake.captured();
    let got = results(&requests[1].body);
    assert_eq!(got[0].0, "t1");
    assert_eq!(got[0].1, "success");
    assert_eq!(
        got[1],
        (
            "t2".to_string(),
            "error".to_string(),
            "a person denied this call to tool book; it was not run. Reason: not on a Monday"
                .to_string()
        )
    );
}

#[tokio::test]
async fn an_expired_approval_is_gone_with_its_turn_and_the_session_goes_on_from_its_history() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&tools_routes()).await;
    // The least timeout the API takes; two sessions wait through it together, so the test
    // waits once: "late" goes on after the expiry, "later" gets its decision in too late.
    let (fake, rt) = desk_waiting(&redis, &tools, 10).await;
    fake.push([
        Script::Turn(Turn::text("Hello.")),
        Script::Turn(Turn::text("Hello again.")),
        Script::Turn(Turn::tools(&[("t1", "book", json!({"sign": "T1"}))])),
        Script::Turn(Turn::tools(&[("t2", "book", json!({"sign": "T2"}))])),
        Script::Turn(Turn::text("What next?")),
    ]);
    for id in ["late", "later"] {
        let (status, _, _) = ask(&rt.url, json!({"sessionId": id, "input": "Hi."})).await;
        assert_eq!(status, 200);
    }
    for (id, input) in [("late", "Book table 1."), ("later", "Book table 2.")] {
        let (_, stopped, _) = ask(&rt.url, json!({"sessionId": id, "input": input})).await;
        assert_eq!(stopped["stopReason"], "approval_required", "{stopped}");
    }
    let (_, waiting) = get(&rt.url, "late").await;
    assert!(waiting["pendingApproval"].is_object(), "{waiting}");
    tokio::time::sleep(Duration::from_millis(10_500)).await;

    let (_, session) = get(&rt.url, "late").await;
    assert_eq!(
        (&session["pendingApproval"], &session["checkpoint"]),
        (&Value::Null, &Value::Null),
        "{session}"
    );
    // A new invocation after the expiry goes on from the committed history, without the
    // turn that waited.
    let (status, next, _) = ask(
        &rt.url,
        json!({"sessionId": "late", "input": "Anything else?"}),
    )
    .await;
    assert_eq!(
        (status, next["output"].as_str()),
        (200, Some("What next?")),
        "{next}"
    );
    assert_eq!(
        texts(&fake.captured()[4].body["messages"]),
        ["user: Hi.", "assistant: Hello.", "user: Anything else?"]
    );

    let (status, body) = decide(
        &rt.url,
        "later",
        json!({"decisions": [{"toolUseId": "t2", "decision": "approve"}]}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("approval_expired")),
        "{body}"
    );
    let (_, session) = get(&rt.url, "later").await;
    assert_eq!(session["pendingApproval"], Value::Null, "{session}");
    assert_eq!(session["checkpoint"], Value::Null, "{session}");
    assert_eq!(session["turns"], 1);
    let (status, body) = decide(
        &rt.url,
        "later",
        json!({"decisions": [{"toolUseId": "t2", "decision": "approve"}]}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("no_pending_approval")),
        "{body}"
    );
    assert_eq!(calls(&tools, "/book"), 0);
    assert_eq!(fake.captured().len(), 5);
}

#[tokio::test]
async fn without_a_session_a_call_that_needs_approval_is_answered_as_not_run() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&tools_routes()).await;
    let (fake, rt) = desk(&redis, &tools).await;
    fake.push([
        Script::Turn(Turn::tools(&[
            ("t1", "book", json!({"sign": "T3"})),
            ("t2", "top_song", json!({"sign": "WZPZ"})),
        ])),
        Script::Turn(Turn::text("I cannot book without approval.")),
    ]);
    let (status, answer, _) = ask(&rt.url, json!({"input": "Book table 3."})).await;
    assert_eq!(
        (status, answer["output"].as_str()),
        (200, Some("I cannot book without approval.")),
        "{answer}"
    );
    assert_eq!((calls(&tools, "/book"), calls(&tools, "/top_song")), (0, 1));
    // Results in the order of the calls.
    let got = results(&fake.captured()[1].body);
    assert_eq!((got[0].0.as_str(), got[0].1.as_str()), ("t1", "error"));
    assert_eq!(
        got[0].2,
        "tool book runs only after a person approves the call, which needs a session (the client sends a sessionId); it was not run"
    );
    assert_eq!((got[1].0.as_str(), got[1].1.as_str()), ("t2", "success"));
}

#[test]
fn the_runtime_refuses_a_tool_that_needs_approval_without_memory() {
    let mut book = http_tool("book", "http://127.0.0.1:9/book".into(), 5);
    book.approval_required = true;
    let cfg = config(vec![book], limits());
    let e = agentry_runtime::tools::Toolbox::new(&cfg, |_| Some("k".into())).unwrap_err();
    assert_eq!(
        e.to_string(),
        "tool book has approval required, but approvals need memory (spec.memory), where the turn waiting for a decision is kept"
    );
}

async fn a2a_client(sdk: Sdk, rt: &RuntimeUnderTest, actions: Value) -> Vec<Value> {
    let out = a2a::client(
        sdk,
        json!({"url": format!("{}/", rt.url), "actions": actions}),
    )
    .await;
    out["results"].as_array().unwrap().clone()
}

/// Over A2A with the official SDK client: the task waits in input-required naming the call,
/// a message that is no decision is refused saying what the context waits for, and the
/// decision on the same context continues the turn on a new task.
async fn a2a_decision(sdk: Sdk, decision: &str, first: &str) {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&tools_routes()).await;
    let (fake, rt) = desk(&redis, &tools).await;
    fake.push([
        Script::Turn(Turn::tools(&[("t1", "book", json!({"sign": "T4"}))])),
        Script::Turn(Turn::text("Done as you decided.")),
    ]);
    let r = a2a_client(
        sdk,
        &rt,
        json!([
            {"do": first, "text": "Book a table."},
            {"do": "get"},
            {"do": "send", "text": "maybe later", "context_id": "last"},
            {"do": "send", "text": decision, "context_id": "last"},
        ]),
    )
    .await;
    // A stream ends at input-required.
    let events = r[0]["events"].as_array().unwrap();
    assert_eq!(events.last().unwrap()["state"], "input-required", "{r:?}");
    let waiting = &r[1];
    assert_eq!(waiting["state"], "input-required", "{r:?}");
    assert_eq!(
        waiting["status_text"],
        json!([
            r#"approval required before calling book (toolUseId t1, input {"sign":"T4"}). Reply on this context with "approve" to run it, or "deny: <reason>" to refuse"#
        ]),
        "{r:?}"
    );
    assert!(
        r[2]["message"]
            .as_str()
            .is_some_and(|m| m.contains("this context waits for a decision")),
        "{r:?}"
    );
    let done = &r[3]["task"];
    assert_eq!(
        (&done["state"], &done["artifacts"]),
        (&json!("completed"), &json!([["Done as you decided."]])),
        "{r:?}"
    );
    assert_eq!(done["context_id"], waiting["context_id"]);
    assert_ne!(done["id"], waiting["id"]);
    let requests = fake.captured();
    assert_eq!(requests.len(), 2, "the refused message called no model");
    let got = results(&requests[1].body);
    if decision == "approve" {
        assert_eq!(calls(&tools, "/book"), 1);
        assert_eq!(got[0].1, "success", "{got:?}");
    } else {
        assert_eq!(calls(&tools, "/book"), 0);
        assert_eq!(
            got[0].2,
            "a person denied this call to tool book; it was not run. Reason: not on a Monday"
        );
    }
}

#[tokio::test]
async fn a2a_approve_with_the_1_3_client_runs_the_call_after_input_required() {
    a2a_decision(Sdk::V13, "approve", "stream").await;
}

#[tokio::test]
async fn a2a_deny_with_the_0_3_client_gives_the_model_the_reason() {
    a2a_decision(Sdk::V03, "deny: not on a Monday", "send").await;
}
