//! OpenAPI tools: each operation of an HTTP API's OpenAPI document is a tool of its own
//! ([`agentry_crds::openapi`] converts the document, the same code the operator runs). A
//! ConfigMap-held document arrives converted in the runtime configuration and is offered at
//! start; a URL-held one is fetched by a background task ([`fetch`]), converted and offered
//! then. A document that cannot be used offers nothing; the reason is logged and reported.
//!
//! `/readyz` reports every openapi tool under `openApiTools`:
//! `[{"tool", "document": "configMap" | <url>, "state": "fetching" | "ready" | "failed",
//! "error"?, "operationsOffered", "skipped"?, "refused"?}]`.
//!
//! A call is built by [`request`] and sent through [`super::http::execute`] (auth applied
//! last, the response turned into the result).

mod fetch;
mod request;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentry_crds::openapi::{self as conversion, Operation};
use agentry_crds::runtime_config::{OpenApiDocumentConfig, OpenApiToolConfig};
use futures::future::BoxFuture;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::auth::Auth;
use super::catalog::{Catalog, Entry};
use super::{Built, Call, Setup, ToolKind, http, seconds};
use crate::bedrock::ToolSpec;
use crate::conversation::ToolResult;

/// The `/readyz` key of openapi tools.
pub const READINESS_KEY: &str = "openApiTools";

/// Where a tool's operations stand.
#[derive(Clone, Debug, Default)]
struct Status {
    state: &'static str,
    error: Option<String>,
    skipped: Vec<String>,
}

/// One configured openapi tool.
pub struct OpenApiTool {
    name: String,
    base_url: String,
    /// `None`: the operator converted a ConfigMap-held document.
    document_url: Option<String>,
    headers: Vec<(HeaderName, HeaderValue)>,
    auth: Auth,
    client: reqwest::Client,
    timeout: Duration,
    index: usize,
    catalog: Arc<Catalog>,
    /// Offered operations by their Bedrock-visible name.
    operations: Mutex<HashMap<String, Arc<Operation>>>,
    status: Mutex<Status>,
}

pub(super) fn build(
    setup: &Setup<'_>,
    config: &OpenApiToolConfig,
    headers: Vec<(HeaderName, HeaderValue)>,
    auth: Auth,
) -> Built {
    let document_url = match &config.document {
        OpenApiDocumentConfig::Operations(_) => None,
        OpenApiDocumentConfig::Url { url, .. } => Some(url.clone()),
    };
    let tool = Arc::new(OpenApiTool {
        name: setup.name.to_string(),
        base_url: config.url.clone(),
        document_url,
        headers,
        auth,
        client: setup.client.clone(),
        timeout: seconds(config.timeout_seconds),
        index: setup.index,
        catalog: setup.catalog.clone(),
        operations: Mutex::new(HashMap::new()),
        status: Mutex::new(Status {
            state: "fetching",
            ..Status::default()
        }),
    });
    let task = match &config.document {
        // The operator leaves the list empty when it could not use the document.
        OpenApiDocumentConfig::Operations(ops) if ops.is_empty() => {
            tool.fail(
                "the operator could not use the document: see the Agent's ToolsResolved condition"
                    .into(),
            );
            None
        }
        OpenApiDocumentConfig::Operations(ops) => {
            tool.offer(ops.clone(), Vec::new());
            None
        }
        OpenApiDocumentConfig::Url { url, operations } => Some(tokio::spawn(
            tool.clone().load(url.clone(), operations.clone()),
        )),
    };
    Built { kind: tool, task }
}

impl OpenApiTool {
    fn set_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Offers `operations`; `skipped` are the reasons others were left out.
    fn offer(self: &Arc<Self>, operations: Vec<Operation>, skipped: Vec<String>) {
        let names: Vec<&str> = operations.iter().map(|o| o.name.as_str()).collect();
        tracing::info!(tool = %self.name, operations = ?names, ?skipped, "OpenAPI operations offered");
        for s in &skipped {
            tracing::warn!(tool = %self.name, skipped = %s, "OpenAPI operation not offered");
        }
        let entries = operations
            .iter()
            .map(|op| Entry {
                source: 0,
                spec: ToolSpec {
                    name: op.name.clone(),
                    description: op.description.clone(),
                    input_schema: op.input_schema.clone(),
                },
                kind: self.clone(),
                target: op.name.clone(),
                timeout: self.timeout,
                origin: format!(
                    "operation {} of openapi tool {}",
                    op.operation_id, self.name
                ),
                plain: false,
            })
            .collect();
        *self.operations.lock().unwrap_or_else(|p| p.into_inner()) = operations
            .into_iter()
            .map(|op| (op.name.clone(), Arc::new(op)))
            .collect();
        self.set_status(|s| {
            s.state = "ready";
            s.error = None;
            s.skipped = skipped;
        });
        self.catalog.set(self.index, entries);
    }

    fn fail(&self, error: String) {
        tracing::warn!(tool = %self.name, %error, "OpenAPI document not used; the tool offers nothing");
        self.set_status(|s| {
            s.state = "failed";
            s.error = Some(error);
        });
    }

    /// Fetches, converts and offers a URL-held document.
    async fn load(self: Arc<Self>, url: String, selected: Vec<String>) {
        let source = fetch::Source {
            client: &self.client,
            url: &url,
            headers: &self.headers,
            auth: &self.auth,
            timeout: self.timeout,
        };
        let mut backoff = fetch::MIN_BACKOFF;
        for attempt in 1..=fetch::MAX_ATTEMPTS {
            match fetch::once(&source).await {
                Ok(text) => {
                    match conversion::convert(&self.name, &text, &selected) {
                        Ok(c) => self.offer(
                            c.operations,
                            c.skipped.iter().map(ToString::to_string).collect(),
                        ),
                        Err(e) => self.fail(e.to_string()),
                    }
                    return;
                }
                Err(fetch::FetchError::Refused(why)) => return self.fail(why),
                Err(fetch::FetchError::Unreachable(why)) => {
                    tracing::warn!(tool = %self.name, %url, error = %why, attempt, retry_in = ?backoff, "OpenAPI document unreachable");
                    self.set_status(|s| s.error = Some(why));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(fetch::MAX_BACKOFF);
                }
            }
        }
        let last = self.status.lock().ok().and_then(|s| s.error.clone());
        self.fail(format!(
            "gave up after {} attempts: {}",
            fetch::MAX_ATTEMPTS,
            last.unwrap_or_default()
        ));
    }

    async fn run(&self, call: Call<'_>) -> ToolResult {
        let op = self
            .operations
            .lock()
            .ok()
            .and_then(|ops| ops.get(call.target).cloned());
        let Some(op) = op else {
            return ToolResult::error(
                call.id,
                format!("{} is no longer offered by {}", call.target, self.name),
            );
        };
        match request::build(&self.client, &self.base_url, &op, &self.headers, call.input) {
            Ok(mut r) => {
                *r.timeout_mut() = Some(call.timeout);
                http::execute(&self.client, call.id, r, &self.auth, call.trace).await
            }
            Err(message) => ToolResult::error(call.id, format!("{}: {message}", op.name)),
        }
    }
}

impl ToolKind for OpenApiTool {
    fn kind(&self) -> &'static str {
        "openapi"
    }

    fn call<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, ToolResult> {
        Box::pin(self.run(call))
    }

    fn readiness_key(&self) -> &'static str {
        READINESS_KEY
    }

    fn readiness(&self) -> Option<Value> {
        let s = self.status.lock().map(|s| s.clone()).unwrap_or_default();
        let mut v = json!({
            "tool": self.name,
            "document": self.document_url.as_deref().unwrap_or("configMap"),
            "state": s.state,
            "operationsOffered": self.catalog.offered_count(self.index),
        });
        let refused = self.catalog.refused(self.index);
        let extra = [
            ("error", s.error.map(Value::from)),
            (
                "skipped",
                Some(s.skipped).filter(|v| !v.is_empty()).map(Value::from),
            ),
            (
                "refused",
                Some(refused).filter(|v| !v.is_empty()).map(Value::from),
            ),
        ];
        for (k, val) in extra {
            if let Some(val) = val {
                v[k] = val;
            }
        }
        Some(v)
    }
}
