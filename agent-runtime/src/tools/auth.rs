//! How a tool's HTTP requests authenticate beyond their configured headers. Every kind that calls
//! HTTP APIs (http, openapi) sends through [`super::http::execute`], which applies the tool's
//! [`Auth`] to the finished request last, so a signature covers exactly what goes on the wire.
//! A kind gets its [`Auth`] from [`super::Setup::auth`].

use super::sigv4::SigV4;

/// A tool's request authentication.
#[derive(Debug, Default)]
pub(super) enum Auth {
    /// Only the configured headers.
    #[default]
    None,
    /// AWS Signature Version 4 with the pod's credentials.
    SigV4(SigV4),
}

impl Auth {
    /// No authentication beyond the headers.
    pub(super) fn none() -> Self {
        Self::None
    }

    /// Authenticates a finished request; an error is the message of the call's error result.
    pub(super) async fn apply(
        &self,
        request: reqwest::Request,
    ) -> Result<reqwest::Request, String> {
        match self {
            Self::None => Ok(request),
            Self::SigV4(signer) => signer.sign(request).await,
        }
    }
}
