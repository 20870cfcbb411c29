//! The in-process HTTP client the reply properties answer the real SDK with: a canned
//! response (status, headers, body in chosen HTTP chunks) or a connection that fails, and the
//! runtime's Bedrock client wired to it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use agentry_crds::limits::EffectiveLimits;
use agentry_crds::runtime_config::{
    AgentIdentity, ModelConfig, RUNTIME_CONFIG_API_VERSION, RuntimeConfig,
};
use agentry_runtime::bedrock::{Bedrock, BedrockError, Overrides};
use agentry_runtime::conversation::Message;
use agentry_runtime::machine::ModelReply;
use agentry_runtime::tools::Offered;
use aws_sdk_bedrockruntime::config::{Credentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use proptest::sample::Index;

/// What the next call gets: a response, or a connection that fails.
#[derive(Clone, Debug)]
pub enum Answer {
    Http {
        status: u16,
        headers: Vec<(&'static str, String)>,
        /// The body, in the HTTP chunks it arrives in.
        chunks: Vec<Vec<u8>>,
    },
    ConnectionFails,
}

impl Answer {
    pub fn new(status: u16, content_type: Option<&str>, body: Vec<u8>, cuts: &[Index]) -> Self {
        let mut headers = vec![(
            "x-amzn-requestid",
            "5f0c1e5a-7b0e-4c2b-9a61-0d3c6f1e2a11".to_string(),
        )];
        if let Some(t) = content_type {
            headers.push(("content-type", t.to_string()));
        }
        Answer::Http {
            status,
            headers,
            chunks: chunked(body, cuts),
        }
    }

    pub fn header(mut self, name: &'static str, value: String) -> Self {
        if let Answer::Http { headers, .. } = &mut self {
            headers.push((name, value));
        }
        self
    }
}

pub fn chunked(body: Vec<u8>, cuts: &[Index]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
    at.push(0);
    at.push(body.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| body[w[0]..w[1]].to_vec()).collect()
}

/// Answers every request with the canned [`Answer`]; no sockets.
#[derive(Clone, Debug, Default)]
pub struct Replay(Arc<Mutex<Option<Answer>>>);

impl HttpConnector for Replay {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        let answer = self.0.lock().unwrap().clone();
        HttpConnectorFuture::ready(match answer {
            Some(Answer::Http {
                status,
                headers,
                chunks,
            }) => {
                let body =
                    SdkBody::from_body_1_x(Chunks(chunks.into_iter().map(Bytes::from).collect()));
                let mut response = HttpResponse::new(StatusCode::try_from(status).unwrap(), body);
                for (name, value) in headers {
                    response.headers_mut().insert(name, value);
                }
                Ok(response)
            }
            _ => Err(ConnectorError::io("connection refused".into())),
        })
    }
}

impl HttpClient for Replay {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

/// A response body delivered in the given chunks.
pub struct Chunks(VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(
            self.get_mut()
                .0
                .pop_front()
                .map(|c| Ok(http_body::Frame::data(c))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}

/// The runtime's Bedrock client wired to a [`Replay`], with a reply cap.
pub struct Harness {
    replay: Replay,
    bedrock: Bedrock,
    rt: tokio::runtime::Runtime,
}

pub fn runtime_config() -> RuntimeConfig {
    RuntimeConfig {
        api_version: RUNTIME_CONFIG_API_VERSION.into(),
        agent: AgentIdentity {
            name: "radio".into(),
            namespace: "demo".into(),
            description: None,
        },
        model: ModelConfig {
            id: "us.anthropic.claude-3-7-sonnet-20250219-v1:0".into(),
            region: None,
            max_tokens: 1024,
            temperature: None,
            top_p: None,
            stop_sequences: vec![],
            guardrail: None,
            prompt_caching: false,
        },
        system_prompt: "You tell people the top song on a radio station.".into(),
        limits: EffectiveLimits::default(),
        tools: vec![],
        memory: None,
    }
}

impl Harness {
    pub fn new(cap: usize) -> Self {
        let replay = Replay::default();
        let sdk_config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                None,
                None,
                "fuzz",
            )))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .http_client(replay.clone())
            .build();
        let bedrock = Bedrock::with_sdk_config(&runtime_config(), &sdk_config, cap).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self {
            replay,
            bedrock,
            rt,
        }
    }

    pub fn messages() -> Vec<Message> {
        vec![Message::user_text("What is the most popular song on WZPZ?")]
    }

    pub fn converse(&self, answer: Answer) -> Result<ModelReply, BedrockError> {
        *self.replay.0.lock().unwrap() = Some(answer);
        self.rt.block_on(self.bedrock.converse(
            &Self::messages(),
            &Offered::default(),
            &Overrides::default(),
        ))
    }

    /// The outcome, and the text passed on as it streamed.
    pub fn stream(&self, answer: Answer) -> (Result<ModelReply, BedrockError>, String) {
        *self.replay.0.lock().unwrap() = Some(answer);
        let mut seen = String::new();
        let outcome = self.rt.block_on(self.bedrock.converse_stream(
            &Self::messages(),
            &Offered::default(),
            &Overrides::default(),
            |t| seen.push_str(t),
        ));
        (outcome, seen)
    }
}
