//! The runtime against the Bedrock imitation through the real SDK: Server-Sent Events from
//! ConverseStream, streamed tool input, and exceptions inside a stream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;

use agentry_tests::bedrock::{Block, Script, Turn};
use fixtures::*;
use serde_json::json;

#[tokio::test]
async fn streaming_sends_text_deltas_tool_events_and_a_final_summary_in_order() {
    let (fake, tools, rt) = setup(&[("/top_song", song())], limits()).await;
    let intro = Turn {
        blocks: vec![
            Block::Text("Let me look that up.".into()),
            Block::ToolUse {
                id: "t1".into(),
                name: "top_song".into(),
                input: json!({"sign": "WZPZ", "note": "a \"quoted\" value"}),
            },
        ],
        stop_reason: "tool_use".into(),
        usage: (30, 12),
    };
    fake.push([
        Script::Turn(intro),
        Script::Turn(Turn::text(
            "The most popular song on WZPZ is Elemental Hotel by 8 Storey Hike.",
        )),
    ]);
    let events = stream(&rt, "top song on WZPZ?").await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let first_tool = names
        .iter()
        .position(|n| *n == "tool_call_started")
        .unwrap();
    assert!(
        names[..first_tool].iter().all(|n| *n == "text") && first_tool > 1,
        "{names:?}"
    );
    assert_eq!(names[first_tool + 1], "tool_call_finished");
    assert_eq!(*names.last().unwrap(), "done");
    let after: String = events[first_tool + 2..events.len() - 1]
        .iter()
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    let done = &events.last().unwrap().1;
    assert_eq!(
        after,
        done["output"].as_str().unwrap(),
        "text deltas reassemble into the output"
    );
    assert_eq!(
        (done["stopReason"].as_str(), done["iterations"].as_u64()),
        (Some("end_turn"), Some(2))
    );
    // The streamed toolUse input, sent in fragments, arrived whole.
    assert_eq!(
        tools.seen()[0].body,
        json!({"sign": "WZPZ", "note": "a \"quoted\" value"})
    );
    assert!(fake.captured().iter().all(|c| c.stream));
}

#[tokio::test]
async fn malformed_streamed_tool_input_becomes_an_error_result_and_the_conversation_stays_valid() {
    let (fake, tools, rt) = setup(&[("/top_song", song())], limits()).await;
    let bad = Turn {
        blocks: vec![Block::RawToolUse {
            id: "t1".into(),
            name: "top_song".into(),
            raw: "{\"sign\": \"WZ".into(),
        }],
        stop_reason: "tool_use".into(),
        usage: (5, 5),
    };
    fake.push([
        Script::Turn(bad),
        Script::Turn(Turn::text("Let me try again later.")),
    ]);
    let events = stream(&rt, "top song?").await;
    assert_eq!(events.last().unwrap().0, "done");
    assert!(tools.seen().is_empty());
    let second = &fake.captured()[1].body;
    let messages = second["messages"].as_array().unwrap();
    assert_eq!(
        messages[1]["content"][0]["toolUse"]["input"]
            .as_object()
            .unwrap()
            .len(),
        1,
        "sent back as a JSON object"
    );
    let result = tool_results(second).remove(0);
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{result}"
    );
}

#[tokio::test]
async fn a_throttling_exception_in_the_stream_ends_with_an_error_event() {
    let (fake, _tools, rt) = setup(&[], limits()).await;
    fake.fallback(|_| {
        Script::StreamException(
            Turn::text("partial answer that will not finish"),
            "throttlingException".into(),
        )
    });
    let events = stream(&rt, "hi").await;
    let (name, data) = events.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(data["error"]["code"], "throttled", "{data}");
}
