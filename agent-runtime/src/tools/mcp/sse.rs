//! The HTTP+SSE transport of MCP 2024-11-05, for servers that offer only it: a GET opens an
//! event stream whose first event, `endpoint`, names the URL to POST messages to, and the
//! server's messages arrive as `message` events on that stream. rmcp no longer ships it, so it
//! is written here against rmcp's [`Transport`] trait and the rmcp client runs over it as over
//! Streamable HTTP.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue};
use rmcp::RoleClient;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::sync::mpsc;

use super::transport::call_headers;

/// How long the server may take to name its message endpoint.
const ENDPOINT_WAIT: Duration = Duration::from_secs(10);

/// A connected HTTP+SSE transport.
pub struct SseTransport {
    client: reqwest::Client,
    post_url: Arc<str>,
    headers: Arc<Vec<(HeaderName, HeaderValue)>>,
    incoming: mpsc::Receiver<ServerJsonRpcMessage>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for SseTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Why posting a message failed.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    /// The request failed.
    #[error("posting to the server's message endpoint")]
    Post(#[source] reqwest::Error),
    /// The server refused it.
    #[error("the server's message endpoint answered HTTP {0}")]
    Status(u16),
}

/// Opens the event stream at `url` and waits for the `endpoint` event; an error says why
/// this is not an HTTP+SSE server.
pub async fn connect(
    client: &reqwest::Client,
    url: &str,
    headers: Arc<Vec<(HeaderName, HeaderValue)>>,
) -> Result<SseTransport, String> {
    let mut request = client.get(url).header(ACCEPT, "text/event-stream");
    for (k, v) in headers.iter() {
        request = request.header(k, v);
    }
    let mut response = request.send().await.map_err(|e| crate::error_chain(&e))?;
    let is_sse = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !response.status().is_success() || !is_sse {
        return Err(format!(
            "a GET for an HTTP+SSE event stream got HTTP {} ({})",
            response.status().as_u16(),
            if is_sse {
                "an event stream"
            } else {
                "not an event stream"
            }
        ));
    }
    let mut parser = Parser::default();
    let wait = async {
        loop {
            if let Some(e) = parser.next_event() {
                if e.0 == "endpoint" {
                    return Ok(e.1);
                }
                continue;
            }
            match response.chunk().await {
                Ok(Some(chunk)) => parser.feed(&chunk),
                Ok(None) => return Err("the event stream ended before naming an endpoint".into()),
                Err(e) => return Err(crate::error_chain(&e)),
            }
        }
    };
    let endpoint = tokio::time::timeout(ENDPOINT_WAIT, wait)
        .await
        .map_err(|_| "no endpoint event within 10 s".to_string())??;
    let post_url = reqwest::Url::parse(url)
        .and_then(|base| base.join(endpoint.trim()))
        .map_err(|e| format!("the endpoint {endpoint:?} is not a URL: {e}"))?;
    let (tx, incoming) = mpsc::channel(64);
    let reader = tokio::spawn(async move {
        loop {
            while let Some((event, data)) = parser.next_event() {
                if event != "message" {
                    continue;
                }
                match serde_json::from_str::<ServerJsonRpcMessage>(&data) {
                    Ok(m) => {
                        if tx.send(m).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "an MCP server sent a message that is not JSON-RPC; ignored")
                    }
                }
            }
            match response.chunk().await {
                Ok(Some(chunk)) => parser.feed(&chunk),
                // The stream ended: dropping `tx` tells rmcp the transport closed.
                _ => return,
            }
        }
    });
    Ok(SseTransport {
        client: client.clone(),
        post_url: post_url.as_str().into(),
        headers,
        incoming,
        reader,
    })
}

impl Transport<RoleClient> for SseTransport {
    type Error = SseError;

    fn send(
        &mut self,
        item: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), SseError>> + Send + 'static {
        let mut request = self
            .client
            .post(self.post_url.as_ref())
            .header(CONTENT_TYPE, "application/json");
        for (k, v) in self.headers.iter() {
            request = request.header(k, v);
        }
        if let Some(extra) = call_headers(&item) {
            for (k, v) in &extra.0 {
                request = request.header(k, v);
            }
        }
        let request = request.json(&item);
        async move {
            let response = request.send().await.map_err(SseError::Post)?;
            if !response.status().is_success() {
                return Err(SseError::Status(response.status().as_u16()));
            }
            Ok(())
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ServerJsonRpcMessage>> + Send {
        self.incoming.recv()
    }

    async fn close(&mut self) -> Result<(), SseError> {
        self.reader.abort();
        Ok(())
    }
}

/// A server-sent events parser: bytes in, `(event, data)` out.
#[derive(Default)]
struct Parser {
    buf: Vec<u8>,
    event: String,
    data: Vec<String>,
    ready: std::collections::VecDeque<(String, String)>,
}

impl Parser {
    fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        while let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    let event = std::mem::take(&mut self.event);
                    let event = if event.is_empty() {
                        "message".into()
                    } else {
                        event
                    };
                    self.ready.push_back((event, self.data.join("\n")));
                }
                self.data.clear();
                self.event.clear();
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event = value.to_string(),
                "data" => self.data.push(value.to_string()),
                _ => {} // comments (`: ping`), `id`, `retry`
            }
        }
    }

    fn next_event(&mut self) -> Option<(String, String)> {
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_parsed_across_chunk_boundaries() {
        let mut p = Parser::default();
        let stream = b"event: endpoint\r\ndata: /messages/?session_id=ab12\r\n\r\n: ping\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\ndata: \"id\":1}\n\n";
        for chunk in stream.chunks(7) {
            p.feed(chunk);
        }
        assert_eq!(
            p.next_event(),
            Some(("endpoint".into(), "/messages/?session_id=ab12".into()))
        );
        assert_eq!(
            p.next_event(),
            Some(("message".into(), "{\"jsonrpc\":\"2.0\",\n\"id\":1}".into()))
        );
        assert_eq!(p.next_event(), None);
    }
}
