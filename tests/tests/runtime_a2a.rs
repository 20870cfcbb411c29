//! The runtime as an A2A server, in-process, with the official `a2a-sdk` Python client in the
//! current release (1.3, A2A 1.0) and in kagent 0.10's (0.3.26, A2A 0.3)
//! (`tests/python/a2a_client.py`), and the Bedrock imitation scripting the model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;

use std::time::Duration;

use agentry_tests::a2a::{self, Sdk};
use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::runtime::{self, RuntimeUnderTest, ToolServer};
use fixtures::{config, http_tool, limits, secrets, song};
use serde_json::{Value, json};

const ANSWER: &str = "The most popular song on WZPZ is Elemental Hotel by 8 Storey Hike.";
const QUESTION: &str = "What is the top song on WZPZ?";
const DESCRIPTION: &str = "Tells you the most popular song on a radio station.";

async fn setup() -> (FakeBedrock, ToolServer, RuntimeUnderTest) {
    let fake = FakeBedrock::start().await.unwrap();
    let tools = ToolServer::start(&[("/top_song", song())]).await;
    let mut cfg = config(
        vec![http_tool("top_song", tools.url("/top_song"), 2)],
        limits(),
    );
    cfg.agent.description = Some(DESCRIPTION.into());
    let rt = runtime::start_public(cfg, &fake, secrets()).await;
    (fake, tools, rt)
}

fn round_trip(fake: &FakeBedrock) {
    fake.push([
        Script::Turn(Turn::tools(&[("t1", "top_song", json!({"sign": "WZPZ"}))])),
        Script::Turn(Turn::text(ANSWER)),
    ]);
}

async fn client(sdk: Sdk, rt: &RuntimeUnderTest, actions: Value) -> Vec<Value> {
    let out = a2a::client(
        sdk,
        json!({"url": format!("{}/", rt.url), "actions": actions}),
    )
    .await;
    out["results"].as_array().unwrap().clone()
}

async fn metrics(rt: &RuntimeUnderTest) -> String {
    reqwest::get(format!("{}/metrics", rt.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn rpc(rt: &RuntimeUnderTest, version: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/", rt.url))
        .json(&body);
    if let Some(v) = version {
        req = req.header("A2A-Version", v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn both_sdks_read_the_card_naming_the_agent_its_description_streaming_and_both_versions() {
    let (_fake, _tools, rt) = setup().await;
    let base = format!("{}/", rt.url);
    let card = &client(Sdk::V13, &rt, json!([{"do": "card"}])).await[0];
    assert_eq!(card["name"], "radio", "{card}");
    assert_eq!(card["description"], DESCRIPTION);
    assert_eq!(card["streaming"], true);
    assert_eq!(card["interfaces"], json!([["1.0", base], ["0.3", base]]));
    assert_eq!(
        card["skills"],
        json!([{"id": "radio", "description": DESCRIPTION, "tags": ["agentry", "top_song"]}])
    );
    let card = &client(Sdk::V03, &rt, json!([{"do": "card"}])).await[0];
    assert_eq!(
        (card["name"].as_str(), card["url"].as_str()),
        (Some("radio"), Some(base.as_str()))
    );
    assert_eq!(card["protocol_version"], "0.3");
    let old = reqwest::get(format!("{}/.well-known/agent.json", rt.url))
        .await
        .unwrap();
    assert_eq!(old.json::<Value>().await.unwrap()["name"], "radio");
}

async fn send_then_get(sdk: Sdk) {
    let (fake, tools, rt) = setup().await;
    round_trip(&fake);
    let r = client(
        sdk,
        &rt,
        json!([{"do": "send", "text": QUESTION}, {"do": "get"}]),
    )
    .await;
    let task = &r[0]["task"];
    assert_eq!(task["state"], "completed", "{r:?}");
    assert_eq!(task["artifacts"], json!([[ANSWER]]));
    assert_eq!(task["history"], json!([[QUESTION]]));
    assert_eq!(tools.seen().len(), 1, "the tool round trip ran");
    assert_eq!(
        fake.captured()[0].body["messages"],
        json!([{"role": "user", "content": [{"text": QUESTION}]}])
    );
    let fetched = &r[1];
    assert_eq!(fetched["id"], task["id"]);
    assert_eq!(fetched["context_id"], task["context_id"]);
    assert_eq!(fetched["state"], "completed");
    assert_eq!(fetched["artifacts"], json!([[ANSWER]]));
    let m = metrics(&rt).await;
    assert!(
        m.contains(r#"agentry_runtime_invocations_total{protocol="a2a",outcome="end_turn"} 1"#),
        "{m}"
    );
}

#[tokio::test]
async fn a_message_from_the_1_3_client_is_answered_after_a_tool_round_trip_and_its_task_fetched() {
    send_then_get(Sdk::V13).await;
}

#[tokio::test]
async fn a_message_from_the_0_3_client_is_answered_after_a_tool_round_trip_and_its_task_fetched() {
    send_then_get(Sdk::V03).await;
}

async fn stream(sdk: Sdk) -> Vec<Value> {
    let (fake, _tools, rt) = setup().await;
    round_trip(&fake);
    let r = client(sdk, &rt, json!([{"do": "stream", "text": QUESTION}])).await;
    r[0]["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_stream_to_the_1_3_client_is_the_task_working_the_answer_and_completed() {
    assert_eq!(
        stream(Sdk::V13).await,
        [
            json!({"kind": "task", "state": "submitted"}),
            json!({"kind": "status-update", "state": "working"}),
            json!({"kind": "artifact-update", "texts": [ANSWER]}),
            json!({"kind": "status-update", "state": "completed"}),
        ]
    );
}

#[tokio::test]
async fn a_stream_to_the_0_3_client_ends_with_a_final_completed_status() {
    assert_eq!(
        stream(Sdk::V03).await,
        [
            json!({"kind": "task", "state": "submitted"}),
            json!({"kind": "status-update", "state": "working", "final": false}),
            json!({"kind": "artifact-update", "texts": [ANSWER]}),
            json!({"kind": "status-update", "state": "completed", "final": true}),
        ]
    );
}

async fn cancel(sdk: Sdk) -> (Value, String) {
    let (fake, _tools, rt) = setup().await;
    fake.push([Script::Delay(
        Duration::from_secs(15),
        Box::new(Script::Turn(Turn::text(ANSWER))),
    )]);
    let started = std::time::Instant::now();
    let r = client(sdk, &rt, json!([{"do": "cancel_slow", "text": QUESTION}])).await;
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "the cancel did not wait for the model"
    );
    (r[0].clone(), metrics(&rt).await)
}

#[tokio::test]
async fn the_1_3_client_cancels_a_slow_task_and_cannot_cancel_it_again() {
    let (r, m) = cancel(Sdk::V13).await;
    assert_eq!(r["cancelled"]["task"]["state"], "canceled", "{r}");
    assert_eq!(
        r["events"].as_array().unwrap().last().unwrap()["state"],
        "canceled",
        "{r}"
    );
    assert_eq!(r["again"]["error"], "TaskNotCancelableError", "{r}");
    assert_eq!(r["fetched"]["state"], "canceled");
    assert!(
        m.contains(r#"agentry_runtime_invocations_total{protocol="a2a",outcome="cancelled"} 1"#),
        "{m}"
    );
}

#[tokio::test]
async fn the_0_3_client_cancels_a_slow_task_and_cancelling_it_again_is_error_32002() {
    let (r, _) = cancel(Sdk::V03).await;
    assert_eq!(r["cancelled"]["task"]["state"], "canceled", "{r}");
    let last = r["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last,
        json!({"kind": "status-update", "state": "canceled", "final": true}),
        "{r}"
    );
    assert_eq!(r["again"]["code"], -32002, "{r}");
    assert_eq!(r["fetched"]["state"], "canceled");
}

async fn failure(sdk: Sdk) -> Value {
    let (fake, _tools, rt) = setup().await;
    fake.push([Script::Error(
        400,
        "ValidationException".into(),
        "The model id is not valid.".into(),
    )]);
    let r = client(sdk, &rt, json!([{"do": "send", "text": QUESTION}])).await;
    r[0]["task"].clone()
}

#[tokio::test]
async fn a_model_error_is_a_failed_task_whose_status_says_why_in_both_versions() {
    for sdk in [Sdk::V13, Sdk::V03] {
        let task = failure(sdk).await;
        assert_eq!(task["state"], "failed", "{sdk:?}: {task}");
        assert_eq!(task["artifacts"], json!([]));
        let why = task["status_text"][0].as_str().unwrap();
        assert!(why.contains("The model id is not valid."), "{why}");
    }
}

#[tokio::test]
async fn a_limit_stop_is_a_failed_task_naming_the_limit() {
    let fake = FakeBedrock::start().await.unwrap();
    let tools = ToolServer::start(&[("/top_song", song())]).await;
    let mut l = limits();
    l.max_iterations = 1;
    let cfg = config(vec![http_tool("top_song", tools.url("/top_song"), 2)], l);
    let rt = runtime::start_public(cfg, &fake, secrets()).await;
    round_trip(&fake);
    let task = &client(Sdk::V13, &rt, json!([{"do": "send", "text": QUESTION}])).await[0]["task"];
    assert_eq!(task["state"], "failed", "{task}");
    let why = task["status_text"][0].as_str().unwrap();
    assert!(
        why.starts_with("the agent stopped before finishing its answer: max_iterations"),
        "{why}"
    );
}

#[tokio::test]
async fn json_rpc_errors_carry_the_a2a_codes_of_each_version() {
    let (_fake, _tools, rt) = setup().await;
    let (status, r) = rpc(
        &rt,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "message/sned"}),
    )
    .await;
    assert_eq!((status, &r["error"]["code"]), (200, &json!(-32601)), "{r}");
    let file = json!({"jsonrpc": "2.0", "id": 2, "method": "message/send", "params": {"message": {
        "kind": "message", "messageId": "m", "role": "user",
        "parts": [{"kind": "file", "file": {"uri": "s3://b/k", "mimeType": "image/png"}}]}}});
    let (_, r) = rpc(&rt, None, file).await;
    assert_eq!(r["error"]["code"], -32005, "{r}");
    assert_eq!(r["id"], 2);
    let (_, r) = rpc(
        &rt,
        Some("1.0"),
        json!({"jsonrpc": "2.0", "id": "g", "method": "GetTask", "params": {"id": "nope"}}),
    )
    .await;
    assert_eq!(r["error"]["code"], -32001, "{r}");
    assert_eq!(r["error"]["data"][0]["reason"], "TASK_NOT_FOUND");
    let (_, r) = rpc(
        &rt,
        Some("2.0"),
        json!({"jsonrpc": "2.0", "id": 3, "method": "GetTask", "params": {"id": "x"}}),
    )
    .await;
    assert_eq!(r["error"]["code"], -32009, "{r}");
    let (_, r) = rpc(
        &rt,
        None,
        json!({"jsonrpc": "2.0", "id": 4, "method": "tasks/pushNotificationConfig/set"}),
    )
    .await;
    assert_eq!(r["error"]["code"], -32003, "{r}");
    let r = reqwest::Client::new()
        .post(format!("{}/", rt.url))
        .body("{not json")
        .send()
        .await
        .unwrap();
    let r: Value = r.json().await.unwrap();
    assert_eq!(
        (&r["error"]["code"], &r["id"]),
        (&json!(-32700), &Value::Null),
        "{r}"
    );
    let m = metrics(&rt).await;
    assert!(
        m.contains(r#"protocol="a2a",outcome="invalid_request"} 1"#),
        "{m}"
    );
}

#[tokio::test]
async fn a_draining_runtime_refuses_a2a_messages_with_503_and_retry_after() {
    let (fake, _tools, rt) = fixtures::draining().await;
    let send = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {
        "messageId": "m", "role": "ROLE_USER", "parts": [{"text": QUESTION}]}}});
    let mut got = (0, Value::Null, None);
    for _ in 0..100 {
        let r = reqwest::Client::new()
            .post(format!("{}/", rt.url))
            .json(&send)
            .send()
            .await
            .unwrap();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        got = (r.status().as_u16(), r.json().await.unwrap(), retry);
        if got.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got.0, 503, "{got:?}");
    assert_eq!(got.2.as_deref(), Some("1"));
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("shutting down"),
        "{got:?}"
    );
    assert!(fake.captured().is_empty(), "no model call");
}

#[tokio::test]
async fn a_message_sent_to_return_immediately_answers_submitted_and_its_task_completes_later() {
    let (fake, _tools, rt) = setup().await;
    round_trip(&fake);
    let send = json!({"jsonrpc": "2.0", "id": "s", "method": "SendMessage", "params": {
        "message": {"messageId": "m1", "role": "ROLE_USER", "contextId": "ctx-1",
                    "parts": [{"text": QUESTION}]},
        "configuration": {"returnImmediately": true}}});
    let (status, r) = rpc(&rt, Some("1.0"), send).await;
    assert_eq!(status, 200);
    let task = &r["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_SUBMITTED", "{r}");
    assert_eq!(
        task["contextId"], "ctx-1",
        "the client's context id is echoed"
    );
    let get =
        json!({"jsonrpc": "2.0", "id": "g", "method": "tasks/get", "params": {"id": task["id"]}});
    let mut got = Value::Null;
    for _ in 0..250 {
        got = rpc(&rt, None, get.clone()).await.1;
        if got["result"]["status"]["state"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = &got["result"];
    assert_eq!(t["status"]["state"], "completed", "{got}");
    assert_eq!(
        (t["kind"].as_str(), t["contextId"].as_str()),
        (Some("task"), Some("ctx-1"))
    );
    assert_eq!(
        t["artifacts"][0]["parts"],
        json!([{"kind": "text", "text": ANSWER}])
    );
}

#[tokio::test]
async fn a_blocking_message_whose_client_goes_away_still_runs_its_task_to_the_end() {
    let (fake, tools, rt) = setup().await;
    fake.push([
        Script::Delay(
            Duration::from_millis(800),
            Box::new(Script::Turn(Turn::tools(&[(
                "t1",
                "top_song",
                json!({"sign": "WZPZ"}),
            )]))),
        ),
        Script::Turn(Turn::text(ANSWER)),
    ]);
    let send = json!({"jsonrpc": "2.0", "id": "s", "method": "message/send", "params": {
        "message": {"messageId": "m1", "role": "user", "kind": "message",
                    "parts": [{"kind": "text", "text": QUESTION}]}}});
    // The client gives up while the model still thinks, closing its connection.
    let gone = reqwest::Client::new()
        .post(format!("{}/", rt.url))
        .header("content-type", "application/json")
        .body(send.to_string())
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(gone.is_err(), "answered before the model did: {gone:?}");
    let done = r#"agentry_runtime_invocations_total{protocol="a2a",outcome="end_turn"} 1"#;
    let mut m = String::new();
    for _ in 0..100 {
        m = metrics(&rt).await;
        if m.contains(done) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(m.contains(done), "the task did not run to its end: {m}");
    assert_eq!(fake.captured().len(), 2, "both model calls were made");
    assert_eq!(tools.seen().len(), 1, "the tool ran once");
}
