//! Agent tools: another Agent's `/v1/invoke`, with the hop count and the remaining deadline
//! passed along, so cycles end at [`MAX_CALL_DEPTH`](super::MAX_CALL_DEPTH) and a callee never
//! outlives its caller.

use std::sync::Arc;
use std::time::Duration;

use agentry_crds::runtime_config::AgentToolConfig;
use futures::future::BoxFuture;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use super::{
    Built, CALL_DEPTH_HEADER, Call, CallContext, DEADLINE_HEADER, MAX_CALL_DEPTH, Setup, ToolKind,
    agent_input_schema, read_capped,
};
use crate::bedrock::excerpt;
use crate::conversation::{ResultContent, ResultStatus, ToolResult};

/// Another Agent, by the base URL of its Service.
struct AgentTool {
    client: reqwest::Client,
    url: String,
}

pub(super) fn build(setup: &Setup<'_>, config: &AgentToolConfig) -> Built {
    let kind = Arc::new(AgentTool {
        client: setup.client.clone(),
        url: config.url.trim_end_matches('/').to_string(),
    });
    setup.offer_one(
        kind.clone(),
        agent_input_schema(),
        config.timeout_seconds,
        "agent",
    );
    Built { kind, task: None }
}

impl ToolKind for AgentTool {
    fn kind(&self) -> &'static str {
        "agent"
    }

    fn call<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, ToolResult> {
        Box::pin(ask(
            &self.client,
            call.id,
            &self.url,
            call.input,
            call.ctx,
            call.timeout,
            call.trace,
        ))
    }
}

async fn ask(
    client: &reqwest::Client,
    id: &str,
    url: &str,
    input: &Value,
    ctx: CallContext,
    timeout: Duration,
    trace: &http::HeaderMap,
) -> ToolResult {
    let depth = ctx.depth + 1;
    if depth > MAX_CALL_DEPTH {
        return ToolResult::error(
            id,
            format!(
                "not called: this would be agent-to-agent hop {depth}, over the limit of {MAX_CALL_DEPTH} (do the agents call each other in a cycle?)"
            ),
        );
    }
    let text = input
        .get("input")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let response = client
        .post(format!("{url}/v1/invoke"))
        .header(CONTENT_TYPE, "application/json")
        .header(CALL_DEPTH_HEADER, depth.to_string())
        .header(DEADLINE_HEADER, timeout.as_millis().to_string())
        .headers(trace.clone())
        .body(json!({ "input": text }).to_string())
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            return ToolResult::error(
                id,
                format!(
                    "the agent at {url} could not be reached: {}",
                    crate::error_chain(&e)
                ),
            );
        }
    };
    let status = response.status();
    let body = match read_capped(response).await {
        Ok((b, _)) => b,
        Err(e) => {
            return ToolResult::error(
                id,
                format!(
                    "reading the agent's answer failed: {}",
                    crate::error_chain(&e)
                ),
            );
        }
    };
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !status.is_success() {
        let message = parsed["error"]["message"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| excerpt(&String::from_utf8_lossy(&body), 300));
        return ToolResult::error(
            id,
            format!("the agent answered HTTP {}: {message}", status.as_u16()),
        );
    }
    match parsed["output"].as_str() {
        Some(output) => ToolResult {
            tool_use_id: id.into(),
            content: vec![ResultContent::Text(output.into())],
            status: Some(ResultStatus::Success),
        },
        None => ToolResult::error(id, "the agent's answer had no output"),
    }
}
