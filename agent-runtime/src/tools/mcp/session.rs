//! One connection to an MCP server through rmcp: Streamable HTTP first, negotiating the
//! protocol version (`server/discover` for 2026-07-28 servers, the `initialize` handshake for
//! older ones), and the HTTP+SSE transport when the server offers only that. Plus the three
//! things the runtime asks of a server: its tools, `tools/call`, and word of list changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientCapabilities, ClientConfig, ClientRequest,
    Implementation, InitializeRequestParams, ProtocolVersion, ServerResult, SubscriptionFilter,
};
use rmcp::service::{
    ClientLifecycleMode, ClientServiceExt, NotificationContext, PeerRequestOptions, RunningService,
    ServiceError, Subscription,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient};
use serde_json::Value;
use tokio::sync::Notify;

use super::transport::{CallHeaders, Client};

/// Receives the server's notifications: a tools list change wakes the server's task.
#[derive(Clone)]
pub struct Handler {
    config: ClientConfig,
    changed: Arc<Notify>,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        self.config.clone()
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.changed.notify_one();
    }
}

/// A live session.
pub struct Session {
    service: RunningService<RoleClient, Handler>,
    /// `streamable-http` or `http+sse`.
    pub transport: &'static str,
    /// The protocol version agreed on.
    pub protocol: String,
    /// Counts sessions of one server, so a caller can wait for a newer one.
    pub generation: u64,
}

/// How a call failed.
pub enum CallError {
    /// The server answered with a JSON-RPC error.
    Refused(String),
    /// The session is gone (connection dropped, session expired and not recovered).
    Broken(String),
    /// No answer in time.
    Timeout,
    /// Anything else.
    Other(String),
}

/// Where and how to connect.
pub struct Target<'a> {
    pub client: &'a reqwest::Client,
    pub url: &'a str,
    pub headers: &'a Arc<Vec<(HeaderName, HeaderValue)>>,
    pub changed: &'a Arc<Notify>,
}

fn client_config() -> ClientConfig {
    InitializeRequestParams::new(
        ClientCapabilities::default(),
        Implementation::new("agentry-runtime", env!("CARGO_PKG_VERSION")),
    )
}

/// Whether `error` (or a source of it) is a failure to reach the server at all.
fn unreachable(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut e = Some(error);
    while let Some(cur) = e {
        if cur
            .downcast_ref::<reqwest::Error>()
            .is_some_and(|r| r.is_connect() || r.is_timeout())
        {
            return true;
        }
        e = cur.source();
    }
    false
}

/// Connects; the error says what failed, in words for `/readyz` and the logs.
pub async fn connect(target: Target<'_>, generation: u64) -> Result<Session, String> {
    let handler = Handler {
        config: client_config(),
        changed: target.changed.clone(),
    };
    let fixed: HashMap<HeaderName, HeaderValue> = target.headers.iter().cloned().collect();
    let config = StreamableHttpClientTransportConfig::with_uri(target.url)
        .custom_headers(fixed)
        .reinit_on_expired_session(true);
    let transport =
        StreamableHttpClientTransport::with_client(Client(target.client.clone()), config);
    let mode = ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        legacy_version: Some(ProtocolVersion::LATEST_WITH_INITIALIZE),
    };
    let streamable = match handler.clone().serve_with_lifecycle(transport, mode).await {
        Ok(service) => return Ok(session(service, "streamable-http", generation)),
        Err(e) if unreachable(&e) => return Err(crate::error_chain(&e)),
        Err(e) => crate::error_chain(&e),
    };
    // Not Streamable HTTP: perhaps a server of the older HTTP+SSE transport.
    let sse = match super::sse::connect(target.client, target.url, target.headers.clone()).await {
        Ok(t) => t,
        Err(why) => {
            return Err(format!(
                "Streamable HTTP failed ({streamable}), and so did HTTP+SSE: {why}"
            ));
        }
    };
    let legacy = ClientLifecycleMode::Initialize;
    let mut config = client_config();
    config.protocol_version = ProtocolVersion::V_2024_11_05;
    let handler = Handler { config, ..handler };
    match handler.serve_with_lifecycle(sse, legacy).await {
        Ok(service) => Ok(session(service, "http+sse", generation)),
        Err(e) => Err(format!(
            "the HTTP+SSE server did not complete the handshake: {}",
            crate::error_chain(&e)
        )),
    }
}

fn session(
    service: RunningService<RoleClient, Handler>,
    transport: &'static str,
    generation: u64,
) -> Session {
    let protocol = service
        .peer()
        .peer_info()
        .map(|i| i.protocol_version.to_string())
        .unwrap_or_default();
    Session {
        service,
        transport,
        protocol,
        generation,
    }
}

impl Session {
    /// Every tool the server lists (all pages), as the JSON the specification defines.
    pub async fn tools(&self) -> Result<Vec<Value>, String> {
        let tools = self
            .service
            .peer()
            .list_all_tools()
            .await
            .map_err(|e| crate::error_chain(&e))?;
        Ok(tools
            .iter()
            .filter_map(|t| serde_json::to_value(t).ok())
            .collect())
    }

    /// Whether the session has ended (its transport closed).
    pub fn is_closed(&self) -> bool {
        self.service.is_closed() || self.service.peer().is_transport_closed()
    }

    /// On 2026-07-28 servers list changes arrive on a `subscriptions/listen` stream, not as
    /// plain notifications; `None` when the server has no such stream (older protocols, which
    /// notify the [`Handler`]).
    pub async fn subscribe(&self) -> Option<Subscription> {
        let peer = self.service.peer();
        let modern = peer
            .peer_info()
            .is_some_and(|i| !i.protocol_version.has_initialize());
        if !modern {
            return None;
        }
        let filter = SubscriptionFilter::builder().tools_list_changed().build();
        match peer.listen(filter).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), "the MCP server refused subscriptions/listen; tool list changes will not be seen");
                None
            }
        }
    }

    /// One `tools/call`, answered within `timeout`; the result as JSON.
    pub async fn call(
        &self,
        name: &str,
        input: &Value,
        headers: CallHeaders,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        let mut params = CallToolRequestParams::new(name.to_string());
        if let Value::Object(map) = input {
            params = params.with_arguments(map.clone());
        }
        let mut request = CallToolRequest::new(params);
        request.extensions.insert(headers);
        let peer = self.service.peer();
        let mut handle = peer
            .send_request_with_option(
                ClientRequest::CallToolRequest(request),
                PeerRequestOptions::no_options(),
            )
            .await
            .map_err(|e| classify(&e))?;
        let answer = tokio::select! {
            a = &mut handle.rx => a,
            () = tokio::time::sleep(timeout) => {
                // Tell the server to stop; the caller does not wait for that.
                tokio::spawn(handle.cancel(Some("timed out".into())));
                return Err(CallError::Timeout);
            }
        };
        let result = match answer {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(classify(&e)),
            Err(_) => return Err(CallError::Broken("the session closed".into())),
        };
        match result {
            ServerResult::CallToolResult(r) => {
                serde_json::to_value(&r).map_err(|e| CallError::Other(e.to_string()))
            }
            ServerResult::InputRequiredResult(_) => Err(CallError::Other(
                "the server asked for more input (elicitation), which this runtime does not support"
                    .into(),
            )),
            ServerResult::CreateTaskResult(_) => Err(CallError::Other(
                "the server answered with a task, which this runtime does not support".into(),
            )),
            _ => Err(CallError::Other("the server sent an unexpected answer".into())),
        }
    }

    /// Ends the session (deletes it on the server where the transport has sessions).
    pub async fn close(mut self) {
        let _ = self
            .service
            .close_with_timeout(Duration::from_secs(2))
            .await;
    }
}

fn classify(e: &ServiceError) -> CallError {
    match e {
        ServiceError::McpError(data) => CallError::Refused(data.message.to_string()),
        ServiceError::TransportClosed => CallError::Broken("the session closed".into()),
        ServiceError::TransportSend(t) => CallError::Broken(crate::error_chain(t)),
        ServiceError::Timeout { .. } => CallError::Timeout,
        other => CallError::Other(crate::error_chain(other)),
    }
}
