//! A2A tools: a remote A2A agent (a kagent agent, another vendor's) asked with the tool input
//! as a message. Its agent card is fetched in the background at start (retrying with backoff
//! while the agent is unreachable, [`MAX_CARD_ATTEMPTS`] times) and again by a call that finds
//! none yet; the card's 1.0 JSON-RPC interface is used when it has one, else its 0.3 one.
//! The answer is the final task's artifact text (else its status message, else a bare
//! message's text); a failed task, a JSON-RPC error, an unreachable agent or a timeout is an
//! error result. Hop count and deadline headers go along as for agent tools.

mod wire;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentry_crds::runtime_config::A2aToolConfig;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{
    Built, CALL_DEPTH_HEADER, Call, DEADLINE_HEADER, MAX_CALL_DEPTH, Setup, ToolKind,
    agent_input_schema, read_capped,
};
use crate::conversation::{ResultContent, ResultStatus, ToolResult};
use wire::{Answer, Endpoint};

/// The `/readyz` list A2A tools report in.
pub const READINESS_KEY: &str = "a2aAgents";

/// Background card fetches before giving up (a call still fetches it on demand).
pub const MAX_CARD_ATTEMPTS: u32 = 20;

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How often a task that is still running is fetched again.
const POLL_EVERY: Duration = Duration::from_millis(250);

#[derive(Clone, Debug, Default)]
struct Status {
    endpoint: Option<Endpoint>,
    error: Option<String>,
}

struct A2aAgent {
    name: String,
    client: reqwest::Client,
    base: String,
    status: Mutex<Status>,
}

pub(super) fn build(setup: &Setup<'_>, config: &A2aToolConfig) -> Built {
    let kind = Arc::new(A2aAgent {
        name: setup.name.to_string(),
        client: setup.client.clone(),
        base: config.url.trim_end_matches('/').to_string(),
        status: Mutex::default(),
    });
    setup.offer_one(
        kind.clone(),
        agent_input_schema(),
        config.timeout_seconds,
        "a2a",
    );
    let fetching = kind.clone();
    let task = tokio::spawn(async move { fetching.fetch_at_start().await });
    Built {
        kind,
        task: Some(task),
    }
}

impl A2aAgent {
    fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn set(&self, result: Result<Endpoint, String>) {
        if let Ok(mut s) = self.status.lock() {
            match result {
                Ok(e) => {
                    *s = Status {
                        endpoint: Some(e),
                        error: None,
                    }
                }
                Err(e) => s.error = Some(e),
            }
        }
    }

    async fn fetch_card(&self, timeout: Duration) -> Result<Endpoint, String> {
        let url = format!("{}/.well-known/agent-card.json", self.base);
        let response = self
            .client
            .get(&url)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| format!("fetching {url}: {}", crate::error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(format!(
                "fetching {url}: HTTP {}",
                response.status().as_u16()
            ));
        }
        let (body, _) = read_capped(response)
            .await
            .map_err(|e| format!("reading {url}: {}", crate::error_chain(&e)))?;
        let card: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("{url} is not an agent card: {e}"))?;
        wire::endpoint(&card)
    }

    async fn fetch_at_start(&self) {
        let mut backoff = MIN_BACKOFF;
        for attempt in 1..=MAX_CARD_ATTEMPTS {
            if self.status().endpoint.is_some() {
                return;
            }
            let result = self.fetch_card(Duration::from_secs(10)).await;
            let failed = result.as_ref().err().cloned();
            self.set(result);
            let Some(error) = failed else { return };
            tracing::warn!(tool = %self.name, url = %self.base, %error, attempt, retry_in = ?backoff, "A2A agent card unavailable");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn post(
        &self,
        endpoint: &Endpoint,
        body: &Value,
        depth: u32,
        left: Duration,
        trace: &http::HeaderMap,
    ) -> Result<Value, String> {
        let mut req = self
            .client
            .post(&endpoint.url)
            .timeout(left)
            .header(CALL_DEPTH_HEADER, depth.to_string())
            .header(DEADLINE_HEADER, left.as_millis().to_string())
            .headers(trace.clone())
            .json(body);
        if endpoint.version == wire::Version::V1 {
            req = req.header("A2A-Version", "1.0");
        }
        let response = req.send().await.map_err(|e| {
            if e.is_timeout() {
                format!("the agent did not answer within {} ms", left.as_millis())
            } else {
                format!(
                    "the agent at {} could not be reached: {}",
                    endpoint.url,
                    crate::error_chain(&e)
                )
            }
        })?;
        let status = response.status();
        let (bytes, _) = read_capped(response).await.map_err(|e| {
            format!(
                "reading the agent's answer failed: {}",
                crate::error_chain(&e)
            )
        })?;
        serde_json::from_slice(&bytes).map_err(|_| {
            let text = crate::bedrock::excerpt(&String::from_utf8_lossy(&bytes), 300);
            format!(
                "the agent answered HTTP {} without JSON-RPC: {text}",
                status.as_u16()
            )
        })
    }

    async fn ask(&self, call: Call<'_>) -> Result<String, String> {
        let depth = call.ctx.depth + 1;
        if depth > MAX_CALL_DEPTH {
            return Err(format!(
                "not called: this would be agent-to-agent hop {depth}, over the limit of {MAX_CALL_DEPTH} (do the agents call each other in a cycle?)"
            ));
        }
        let until = Instant::now() + call.timeout;
        let endpoint = match self.status().endpoint {
            Some(e) => e,
            None => {
                let result = self.fetch_card(call.timeout).await;
                self.set(result.clone());
                result.map_err(|e| format!("the agent's card could not be read: {e}"))?
            }
        };
        let text = call
            .input
            .get("input")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let body = wire::send(
            endpoint.version,
            call.id,
            &crate::server::a2a::new_id(),
            text,
        );
        let mut response = self
            .post(&endpoint, &body, depth, call.timeout, call.trace)
            .await?;
        // Bounded by the call's timeout: a server that answers before the task ends is polled.
        loop {
            match wire::answer(&response) {
                Answer::Text(t) => return Ok(t),
                Answer::Failed(why) => return Err(why),
                Answer::Pending(task_id) => {
                    let left = until.saturating_duration_since(Instant::now());
                    if left <= POLL_EVERY {
                        return Err(format!(
                            "the agent's task {task_id} did not end within the call's timeout"
                        ));
                    }
                    tokio::time::sleep(POLL_EVERY).await;
                    let get = wire::get(endpoint.version, call.id, &task_id);
                    response = self
                        .post(&endpoint, &get, depth, left - POLL_EVERY, call.trace)
                        .await?;
                }
            }
        }
    }
}

impl ToolKind for A2aAgent {
    fn kind(&self) -> &'static str {
        "a2a"
    }

    fn call<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, ToolResult> {
        Box::pin(async move {
            match self.ask(call).await {
                Ok(text) => ToolResult {
                    tool_use_id: call.id.into(),
                    content: vec![ResultContent::Text(text)],
                    status: Some(ResultStatus::Success),
                },
                Err(why) => ToolResult::error(call.id, why),
            }
        })
    }

    fn readiness(&self) -> Option<Value> {
        let s = self.status();
        let mut v = json!({"tool": self.name, "url": self.base});
        match (&s.endpoint, &s.error) {
            (Some(e), _) => {
                v["state"] = json!("ready");
                v["endpoint"] = json!(e.url);
                v["protocolVersion"] = json!(match e.version {
                    wire::Version::V1 => "1.0",
                    wire::Version::V03 => "0.3",
                });
            }
            (None, Some(err)) => {
                v["state"] = json!("unreachable");
                v["error"] = json!(err);
            }
            (None, None) => v["state"] = json!("fetching"),
        }
        Some(v)
    }

    fn readiness_key(&self) -> &'static str {
        READINESS_KEY
    }
}
