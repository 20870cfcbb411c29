//! Context compaction (`memory.maxContextTokens`) against a real redis-server and the Bedrock
//! imitation: a session grown past the limit has its oldest turns summarised in one Converse
//! call with the documented prompt, the next model calls start with the summary, tool pairs
//! stay whole, and the answer, the stream's `done` and the metrics show it; a failed summary
//! call or a failed invocation leaves the stored history as it was.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;
#[path = "support/session_fixtures.rs"]
mod sessions;

use agentry_crds::runtime_config::MemoryConfig;
use agentry_runtime::session::compact::PROMPT;
use agentry_tests::bedrock::{Captured, Script, Turn};
use agentry_tests::redis::RedisServer;
use agentry_tests::runtime::ToolServer;
use fixtures::*;
use serde_json::{Value, json};
use sessions::*;

fn compacting(max: u32) -> MemoryConfig {
    MemoryConfig {
        max_context_tokens: Some(max),
        ..memory(60, 100)
    }
}

async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The one text of a summary request (a single user message), checked to offer no tools.
fn summary_request(c: &Captured) -> String {
    assert!(!c.stream, "the summary call is a plain Converse call");
    assert!(c.body.get("toolConfig").is_none(), "{}", c.body);
    let messages = c.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{}", c.body);
    assert_eq!(messages[0]["role"], "user");
    messages[0]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string()
}

fn summary_block(s: &str) -> String {
    format!("<conversation_summary>\n{s}\n</conversation_summary>")
}

#[test]
fn the_readme_quotes_the_summary_prompt_verbatim() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    assert!(
        readme.contains(PROMPT),
        "README.md must quote compact::PROMPT"
    );
}

#[tokio::test]
async fn a_session_past_the_limit_is_summarised_keeping_the_newest_turn_and_its_tool_pair() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[("/top_song", song())]).await;
    let (fake, rt) = start(&redis.url(), compacting(2000), &tools).await;
    fake.push([
        Script::Turn(Turn::tools(&[("t1", "top_song", json!({"sign": "WZPZ"}))])),
        Script::Turn(Turn::text("Elemental Hotel.").with_usage(300, 20)),
        Script::Turn(Turn::text("8 Storey Hike.").with_usage(600, 20)),
        Script::Turn(Turn::tools(&[("t2", "top_song", json!({"sign": "WKRP"}))])),
        // The model counts 4980 + 20: the next input passes 2000.
        Script::Turn(Turn::text("Night Owl.").with_usage(4980, 20)),
    ]);
    for q in ["Top song on WZPZ?", "By whom?", "And on WKRP?"] {
        let (status, body, _) = ask(&rt.url, json!({"sessionId": "c", "input": q})).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("compaction").is_none(), "{body}");
    }
    let before = get(&rt.url, "c").await.1;
    assert_eq!(before["messages"].as_array().unwrap().len(), 10);
    fake.push([
        Script::Turn(Turn::text("The user asked for WZPZ's top song.").with_usage(400, 60)),
        Script::Turn(Turn::text("Elemental Hotel came first.")),
    ]);
    let input = "Thanks, which was first?";
    let (status, body, _) = ask(&rt.url, json!({"sessionId": "c", "input": input})).await;
    assert_eq!(status, 200, "{body}");
    // Only the newest turn fits in half the limit: the two before it (6 messages) are replaced.
    assert_eq!(
        body["compaction"],
        json!({
            "summarizedMessages": 6,
            "keptMessages": 4,
            "estimatedTokens": 5000 + input.len().div_ceil(4),
            "maxContextTokens": 2000,
            "usage": {"inputTokens": 400, "outputTokens": 60},
        })
    );
    // The summary call is one of the invocation's model calls and in its usage.
    assert_eq!(body["iterations"], 2);
    assert_eq!(
        body["usage"],
        json!({"inputTokens": 410, "outputTokens": 65})
    );
    let captured = fake.captured();
    assert_eq!(captured.len(), 7);
    let asked = summary_request(&captured[5]);
    assert_eq!(
        asked,
        format!(
            "{PROMPT}\n\n<transcript>\n\
             [user] Top song on WZPZ?\n\
             [assistant calls tool top_song (call t1)] {{\"sign\":\"WZPZ\"}}\n\
             [tool result of call t1, success] {}\n\
             [assistant] Elemental Hotel.\n\
             [user] By whom?\n\
             [assistant] 8 Storey Hike.\n\
             </transcript>",
            before["messages"][2]["content"][0]["toolResult"]["content"][0]["json"]
        )
    );
    // The turn's model call starts with the summary, then the newest turn verbatim, tool pair
    // included.
    let summary = "The user asked for WZPZ's top song.";
    assert_eq!(
        texts(&captured[6].body["messages"]),
        [
            format!("user: {} + And on WKRP?", summary_block(summary)),
            "assistant: use top_song".into(),
            "user: result".into(),
            "assistant: Night Owl.".into(),
            format!("user: {input}"),
        ]
    );
    let after = get(&rt.url, "c").await.1;
    assert_eq!(after["summary"], summary);
    assert_eq!(after["version"], 4);
    let kept = after["messages"].as_array().unwrap();
    assert_eq!(kept[..4], before["messages"].as_array().unwrap()[6..]);
    assert_eq!(kept.len(), 6);
    let m = metrics(&rt.url).await;
    assert!(
        m.contains(r#"agentry_runtime_session_compactions_total{outcome="compacted"} 1"#),
        "{m}"
    );
    assert!(
        m.contains("agentry_runtime_session_compacted_messages_total 6"),
        "{m}"
    );
    // The next turn fits again (the model counted 15 tokens) and starts with the summary.
    fake.push([Script::Turn(Turn::text("You are welcome."))]);
    let (status, body, _) = ask(&rt.url, json!({"sessionId": "c", "input": "Bye"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("compaction").is_none(), "{body}");
    let next = &fake.captured()[7].body["messages"];
    assert_eq!(
        texts(next)[0],
        format!("user: {} + And on WKRP?", summary_block(summary))
    );
    assert_eq!(texts(next).len(), 7);
}

#[tokio::test]
async fn a_streamed_turn_reports_its_compaction_in_done_and_a_single_turn_is_never_summarised() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[]).await;
    let (fake, rt) = start(&redis.url(), compacting(1000), &tools).await;
    fake.push([
        Script::Turn(Turn::text("one").with_usage(3000, 10)),
        // Over the limit with one turn stored: nothing older to summarise.
        Script::Turn(Turn::text("two").with_usage(3000, 10)),
        Script::Turn(Turn::text("Turn one said one.")),
        Script::Turn(Turn::text("three")),
    ]);
    for q in ["1", "2"] {
        let (status, body, _) = ask(&rt.url, json!({"sessionId": "s", "input": q})).await;
        assert_eq!((status, body.get("compaction")), (200, None), "{body}");
    }
    assert!(
        metrics(&rt.url)
            .await
            .contains(r#"agentry_runtime_session_compactions_total{outcome="newest_turn_only"} 1"#)
    );
    let r = reqwest::Client::new()
        .post(format!("{}/v1/invoke", rt.url))
        .header("accept", "text/event-stream")
        .body(json!({"sessionId": "s", "input": "3"}).to_string())
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    let done = text
        .split("\n\n")
        .find(|f| f.starts_with("event: done"))
        .expect(&text);
    let data: Value = serde_json::from_str(done.split_once("data: ").unwrap().1).unwrap();
    assert_eq!(data["output"], "three");
    assert_eq!(data["compaction"]["summarizedMessages"], 2);
    assert_eq!(data["compaction"]["keptMessages"], 2);
    let captured = fake.captured();
    assert!(summary_request(&captured[2]).ends_with("[user] 1\n[assistant] one\n</transcript>"));
    assert!(captured[3].stream);
    assert_eq!(
        texts(&captured[3].body["messages"]),
        [
            format!("user: {} + 2", summary_block("Turn one said one.")),
            "assistant: two".into(),
            "user: 3".into(),
        ]
    );
}

#[tokio::test]
async fn a_failed_summary_call_leaves_the_history_whole_and_the_turn_still_runs() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[]).await;
    let (fake, rt) = start(&redis.url(), compacting(1000), &tools).await;
    fake.push([
        Script::Turn(Turn::text("one")),
        Script::Turn(Turn::text("two").with_usage(3000, 10)),
        Script::Error(
            400,
            "ValidationException".into(),
            "Input is too long for requested model.".into(),
        ),
        Script::Turn(Turn::text("three")),
    ]);
    for q in ["1", "2"] {
        assert_eq!(
            ask(&rt.url, json!({"sessionId": "f", "input": q})).await.0,
            200
        );
    }
    let before = get(&rt.url, "f").await.1;
    let (status, body, _) = ask(&rt.url, json!({"sessionId": "f", "input": "3"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("compaction").is_none(), "{body}");
    let captured = fake.captured();
    assert!(summary_request(&captured[2]).contains("[user] 1\n[assistant] one\n"));
    // The turn ran on the whole history, which is stored as it was with the turn after it.
    assert_eq!(
        texts(&captured[3].body["messages"]),
        [
            "user: 1",
            "assistant: one",
            "user: 2",
            "assistant: two",
            "user: 3"
        ]
    );
    let after = get(&rt.url, "f").await.1;
    assert_eq!(after["summary"], Value::Null);
    let stored = after["messages"].as_array().unwrap();
    assert_eq!(stored[..4], before["messages"].as_array().unwrap()[..]);
    assert_eq!(stored.len(), 6);
    let m = metrics(&rt.url).await;
    assert!(
        m.contains(r#"agentry_runtime_session_compactions_total{outcome="model_error"} 1"#),
        "{m}"
    );
    assert!(
        m.contains("agentry_runtime_session_compacted_messages_total 0"),
        "{m}"
    );
}

#[tokio::test]
async fn a_compaction_whose_invocation_fails_is_not_saved() {
    let redis = RedisServer::start();
    let tools = ToolServer::start(&[]).await;
    let (fake, rt) = start(&redis.url(), compacting(1000), &tools).await;
    fake.push([
        Script::Turn(Turn::text("one")),
        Script::Turn(Turn::text("two").with_usage(3000, 10)),
        Script::Turn(Turn::text("A summary.")),
        Script::Error(403, "AccessDeniedException".into(), "no access".into()),
    ]);
    for q in ["1", "2"] {
        assert_eq!(
            ask(&rt.url, json!({"sessionId": "n", "input": q})).await.0,
            200
        );
    }
    let before = get(&rt.url, "n").await.1;
    let (status, body, _) = ask(&rt.url, json!({"sessionId": "n", "input": "3"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("model_error"))
    );
    // The turn's call got the summary, but nothing of it was written.
    assert_eq!(
        texts(&fake.captured()[3].body["messages"]),
        [
            format!("user: {} + 2", summary_block("A summary.")),
            "assistant: two".into(),
            "user: 3".into(),
        ]
    );
    let after = get(&rt.url, "n").await.1;
    assert_eq!(
        (&after["version"], &after["summary"], &after["messages"]),
        (&before["version"], &Value::Null, &before["messages"])
    );
    assert!(
        metrics(&rt.url)
            .await
            .contains(r#"agentry_runtime_session_compactions_total{outcome="not_saved"} 1"#)
    );
}
