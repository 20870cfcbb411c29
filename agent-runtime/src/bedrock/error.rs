//! Why a model call failed, classified by what the client should do about it: the SDK's error
//! kinds tell "could not connect" from "answered with something unreadable", and an answer that
//! parsed but is not a whole reply (a stream without its end, a body without a stop reason) is
//! an error of its own, never a made-up `end_turn`.

use aws_sdk_bedrockruntime::config::http::HttpResponse;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::types::error::ConverseStreamOutputError;
use aws_smithy_types::event_stream::RawMessage;

/// Why a model call failed.
#[derive(Debug, thiserror::Error)]
pub enum BedrockError {
    /// Throttled beyond the SDK's retries: try again later (HTTP 429).
    #[error("Bedrock throttled the request: {0}")]
    Throttled(String),
    /// Bedrock or the model refused or failed the request (HTTP 502), with its error code.
    #[error("Bedrock returned {code}: {message}")]
    Model {
        /// AWS error code, e.g. `ValidationException`.
        code: String,
        /// Its message.
        message: String,
        /// The AWS request id, when Bedrock gave one.
        request_id: Option<String>,
    },
    /// No answer: the connection failed or timed out (HTTP 502).
    #[error("cannot reach Bedrock: {0}")]
    Unreachable(String),
    /// Something answered, but not with a Bedrock reply the SDK could read (HTTP 502): an HTML
    /// page, truncated JSON, a corrupt event-stream frame.
    #[error("Bedrock answered{} with a response that could not be read{}: {detail}", status.map(|s| format!(" HTTP {s}")).unwrap_or_default(), request_id.as_ref().map(|r| format!(" (request id {r})")).unwrap_or_default())]
    Unreadable {
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// The AWS request id, when there was one.
        request_id: Option<String>,
        /// What could not be read.
        detail: String,
    },
    /// The reply was read but is not a whole one (HTTP 502): a stream that ended before its
    /// `messageStop`, a body without `output` or `stopReason`.
    #[error("the model reply was incomplete: {0}")]
    Incomplete(String),
    /// The reply was over the runtime's cap (HTTP 502).
    #[error("the model reply is over the runtime's limit of {limit} bytes (--max-reply-bytes)")]
    ReplyTooLarge {
        /// The cap.
        limit: usize,
    },
    /// A request could not be built from the conversation (HTTP 400).
    #[error("invalid conversation: {0}")]
    Request(String),
}

impl BedrockError {
    /// Bounded metric label.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Throttled(_) => "throttled",
            Self::Model { .. } => "model_error",
            Self::Unreachable(_) => "unreachable",
            Self::Unreadable { .. } => "bad_response",
            Self::Incomplete(_) => "incomplete_reply",
            Self::ReplyTooLarge { .. } => "reply_too_large",
            Self::Request(_) => "invalid_request",
        }
    }

    /// The AWS request id of the failed call, when there was one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Model { request_id, .. } | Self::Unreadable { request_id, .. } => {
                request_id.as_deref()
            }
            _ => None,
        }
    }

    /// The error code clients see in `{"error": {"code"}}`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Throttled(_) => "throttled",
            Self::Model { .. } => "model_error",
            Self::Unreachable(_) => "bedrock_unreachable",
            Self::Unreadable { .. } => "bedrock_bad_response",
            Self::Incomplete(_) => "model_reply_incomplete",
            Self::ReplyTooLarge { .. } => "model_reply_too_large",
            Self::Request(_) => "invalid_conversation",
        }
    }

    /// The AWS error code, for the log.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Self::Throttled(_) => Some("ThrottlingException"),
            Self::Model { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// What a raw response tells about the failure.
pub(super) trait Raw {
    fn status(&self) -> Option<u16>;
    fn request_id(&self) -> Option<String>;
}

impl Raw for HttpResponse {
    fn status(&self) -> Option<u16> {
        Some(self.status().as_u16())
    }
    fn request_id(&self) -> Option<String> {
        self.headers().get("x-amzn-requestid").map(String::from)
    }
}

impl Raw for RawMessage {
    fn status(&self) -> Option<u16> {
        None
    }
    fn request_id(&self) -> Option<String> {
        None
    }
}

fn throttling(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException" | "ServiceQuotaExceededException" | "TooManyRequestsException"
    )
}

/// Classifies an SDK error of a Converse or ConverseStream call.
pub(super) fn classify<E, R>(e: SdkError<E, R>) -> BedrockError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: Raw + std::fmt::Debug + Send + Sync + 'static,
{
    if let Some(r) = super::limit::find::<super::limit::ReplyTooLarge>(&e) {
        return BedrockError::ReplyTooLarge { limit: r.limit };
    }
    let status = e.raw_response().and_then(Raw::status);
    let request_id = e.raw_response().and_then(Raw::request_id);
    // Found before the kind: the SDK reports a body error of a stream as a dispatch failure.
    if let Some(cut) = super::limit::find::<super::limit::CutStream>(&e) {
        return BedrockError::Unreadable {
            status,
            request_id,
            detail: cut.to_string(),
        };
    }
    let chain = || crate::error_chain(&e);
    match &e {
        SdkError::ConstructionFailure(_) => BedrockError::Request(chain()),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            BedrockError::Unreachable(chain())
        }
        SdkError::ResponseError(_) => BedrockError::Unreadable {
            status,
            request_id,
            detail: chain(),
        },
        SdkError::ServiceError(_) => {
            let message = e.message().map(String::from).unwrap_or_else(chain);
            match e.code() {
                Some(code) if throttling(code) => BedrockError::Throttled(message),
                Some(code) => BedrockError::Model {
                    code: code.into(),
                    message,
                    request_id,
                },
                // An error status without an AWS error shape: a proxy's or load balancer's page.
                None => BedrockError::Unreadable {
                    status,
                    request_id,
                    detail: "no AWS error code in the response".into(),
                },
            }
        }
        _ => BedrockError::Unreachable(chain()),
    }
}

/// Errors inside a ConverseStream response: exception frames name their type in a header, so
/// the SDK reports them as enum variants without an error code.
pub(super) fn classify_stream(e: SdkError<ConverseStreamOutputError, RawMessage>) -> BedrockError {
    use ConverseStreamOutputError as E;
    let Some(service) = e.as_service_error() else {
        return classify(e);
    };
    let message = service
        .message()
        .map(String::from)
        .unwrap_or_else(|| crate::error_chain(&e));
    let code = match service {
        E::ThrottlingException(_) => return BedrockError::Throttled(message),
        E::ServiceUnavailableException(_) => "ServiceUnavailableException",
        E::ValidationException(_) => "ValidationException",
        E::InternalServerException(_) => "InternalServerException",
        E::ModelStreamErrorException(_) => "ModelStreamErrorException",
        _ => service.code().unwrap_or("StreamException"),
    };
    BedrockError::Model {
        code: code.into(),
        message,
        request_id: None,
    }
}
