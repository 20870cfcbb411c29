//! The HTTP client under rmcp's Streamable HTTP transport: rmcp's own reqwest client, plus the
//! headers of one call (hop count and deadline), which differ per `tools/call` while rmcp's
//! custom headers are fixed per transport. They ride on the request's rmcp extensions, which
//! rmcp hands to the HTTP client with the message, and never reach the JSON body.

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, GetExtensions};
use rmcp::transport::common::client_side_sse::BoxedSseResponse;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};

/// Headers of one call, carried as an rmcp request extension.
#[derive(Clone, Debug, Default)]
pub struct CallHeaders(pub Vec<(HeaderName, HeaderValue)>);

/// The call headers a message carries, if any.
pub fn call_headers(message: &ClientJsonRpcMessage) -> Option<&CallHeaders> {
    match message {
        ClientJsonRpcMessage::Request(r) => r.request.extensions().get::<CallHeaders>(),
        _ => None,
    }
}

/// rmcp's reqwest client with per-call headers added.
#[derive(Clone, Debug)]
pub struct Client(pub reqwest::Client);

type Error = StreamableHttpError<reqwest::Error>;

impl StreamableHttpClient for Client {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, Error> {
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            StreamableHttpResponseLimits::default(),
        )
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        mut custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, Error> {
        if let Some(extra) = call_headers(&message) {
            custom_headers.extend(extra.0.iter().cloned());
        }
        StreamableHttpClient::post_message_with_response_limits(
            &self.0,
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            limits,
        )
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), Error> {
        StreamableHttpClient::delete_session(&self.0, uri, session_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxedSseResponse, Error> {
        StreamableHttpClient::get_stream(
            &self.0,
            uri,
            session_id,
            last_event_id,
            auth_header,
            custom_headers,
        )
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxedSseResponse, Error> {
        StreamableHttpClient::get_stream_with_max_sse_event_size(
            &self.0,
            uri,
            session_id,
            last_event_id,
            auth_header,
            custom_headers,
            max_sse_event_size,
        )
        .await
    }
}
