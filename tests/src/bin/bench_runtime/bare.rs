//! The bare loop: the same tool round trip written directly against aws-sdk-bedrockruntime
//! and reqwest, no server in front, as the floor the runtime is measured against.

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ContentBlockStart, ConversationRole, ConverseOutput,
    ConverseStreamOutput, Message, SystemContentBlock, Tool, ToolConfiguration, ToolInputSchema,
    ToolResultBlock, ToolResultContentBlock, ToolSpecification, ToolUseBlock,
};
use aws_smithy_types::Document;

use super::drive::{Scenario, Side, callgrind_control, instructions, run_loops};
use agentry_tests::process::{cpu_seconds, proc_status_kb};

const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

fn tools() -> ToolConfiguration {
    let schema = Document::Object(
        [("type".to_string(), Document::String("object".into()))]
            .into_iter()
            .collect(),
    );
    ToolConfiguration::builder()
        .tools(Tool::ToolSpec(
            ToolSpecification::builder()
                .name("top_song")
                .description("Top song.")
                .input_schema(ToolInputSchema::Json(schema))
                .build()
                .unwrap(),
        ))
        .build()
        .unwrap()
}

/// One model call; the assistant message it produced.
async fn call(
    client: &Client,
    tools: &ToolConfiguration,
    messages: &[Message],
    stream: bool,
) -> Option<Message> {
    if !stream {
        let out = client
            .converse()
            .model_id(MODEL)
            .system(SystemContentBlock::Text("You help.".into()))
            .set_messages(Some(messages.to_vec()))
            .tool_config(tools.clone())
            .send()
            .await
            .ok()?;
        let Some(ConverseOutput::Message(m)) = out.output else {
            return None;
        };
        return Some(m);
    }
    let mut out = client
        .converse_stream()
        .model_id(MODEL)
        .system(SystemContentBlock::Text("You help.".into()))
        .set_messages(Some(messages.to_vec()))
        .tool_config(tools.clone())
        .send()
        .await
        .ok()?;
    let (mut text, mut tool, mut input) = (String::new(), None, String::new());
    while let Some(event) = out.stream.recv().await.ok()? {
        match event {
            ConverseStreamOutput::ContentBlockStart(e) => {
                if let Some(ContentBlockStart::ToolUse(t)) = e.start {
                    tool = Some((t.tool_use_id, t.name));
                }
            }
            ConverseStreamOutput::ContentBlockDelta(e) => match e.delta {
                Some(ContentBlockDelta::Text(t)) => text.push_str(&t),
                Some(ContentBlockDelta::ToolUse(d)) => input.push_str(&d.input),
                _ => {}
            },
            _ => {}
        }
    }
    let block = match tool {
        Some((id, name)) => ContentBlock::ToolUse(
            ToolUseBlock::builder()
                .tool_use_id(id)
                .name(name)
                .input(Document::Object(Default::default()))
                .build()
                .ok()?,
        ),
        None => ContentBlock::Text(text),
    };
    Message::builder()
        .role(ConversationRole::Assistant)
        .content(block)
        .build()
        .ok()
}

/// One invocation: model, tool, model.
async fn invocation(
    client: Client,
    http: reqwest::Client,
    tools: ToolConfiguration,
    tool_url: String,
    stream: bool,
) -> bool {
    let user = Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(
            "What is the most popular song on WZPZ?".into(),
        ))
        .build()
        .unwrap();
    let mut messages = vec![user];
    let Some(reply) = call(&client, &tools, &messages, stream).await else {
        return false;
    };
    let Some(use_block) = reply
        .content()
        .iter()
        .find_map(|b| b.as_tool_use().ok())
        .cloned()
    else {
        return false;
    };
    messages.push(reply);
    let Ok(r) = http
        .post(&tool_url)
        .header("content-type", "application/json")
        .body(r#"{"sign":"WZPZ"}"#)
        .send()
        .await
    else {
        return false;
    };
    let Ok(tool) = r.text().await else {
        return false;
    };
    let result = ToolResultBlock::builder()
        .tool_use_id(use_block.tool_use_id())
        .content(ToolResultContentBlock::Text(tool))
        .build()
        .unwrap();
    messages.push(
        Message::builder()
            .role(ConversationRole::User)
            .content(ContentBlock::ToolResult(result))
            .build()
            .unwrap(),
    );
    call(&client, &tools, &messages, stream).await.is_some()
}

/// Runs the scenario in this process and measures it.
pub async fn run(bedrock_url: String, tool_url: String, s: &Scenario) -> Side {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(bedrock_url)
        .test_credentials()
        .load()
        .await;
    let client = Client::new(&sdk);
    let http = reqwest::Client::new();
    let tools = tools();
    let stream = s.stream;
    let one = move || {
        invocation(
            client.clone(),
            http.clone(),
            tools.clone(),
            tool_url.clone(),
            stream,
        )
    };
    let me = std::process::id();
    // Under callgrind (BENCH_CALLGRIND=1), as the runtime: only the measured invocations count.
    let callgrind = std::env::var_os("BENCH_CALLGRIND").is_some();
    if callgrind {
        callgrind_control("-z", me);
    }
    let cpu0 = cpu_seconds(me);
    let (latencies, errors, elapsed) = run_loops(s.in_flight, s.invocations, one).await;
    let cpu = cpu_seconds(me) - cpu0;
    if callgrind {
        callgrind_control("-d", me);
    }
    if std::env::var_os("BENCH_METRICS").is_some() {
        eprintln!(
            "bare threads at the end: {}; VmRSS {} kB, RssAnon {} kB, RssFile {} kB",
            proc_status_kb(me, "Threads:"),
            proc_status_kb(me, "VmRSS:"),
            proc_status_kb(me, "RssAnon:"),
            proc_status_kb(me, "RssFile:")
        );
    }
    let mut side = Side::from_run(
        latencies,
        errors,
        elapsed,
        cpu,
        proc_status_kb(me, "VmHWM:"),
    );
    if callgrind {
        side.instructions_per_invocation = Some(instructions(me, side.invocations));
    }
    side
}
