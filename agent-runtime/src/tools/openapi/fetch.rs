//! A URL-held document, fetched at start with the tool's headers and auth. An unreachable
//! server (a connection error, HTTP 408, 429 or 5xx) is retried with backoff, at most
//! [`MAX_ATTEMPTS`] times; any other answer is final.

use std::time::Duration;

use agentry_crds::openapi::MAX_DOCUMENT_BYTES;
use reqwest::header::{ACCEPT, HeaderName, HeaderValue};

use crate::tools::auth::Auth;

/// First wait after a failed attempt; it doubles up to [`MAX_BACKOFF`].
pub(super) const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between attempts.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Most attempts: about 15 minutes of an unreachable server before the tool gives up.
pub(super) const MAX_ATTEMPTS: u32 = 36;

/// Why one attempt failed.
#[derive(Debug)]
pub(super) enum FetchError {
    /// Worth another attempt.
    Unreachable(String),
    /// Another attempt would get the same answer.
    Refused(String),
}

/// What a fetch needs.
pub(super) struct Source<'a> {
    pub client: &'a reqwest::Client,
    pub url: &'a str,
    pub headers: &'a [(HeaderName, HeaderValue)],
    pub auth: &'a Auth,
    pub timeout: Duration,
}

/// One attempt: the document's text, at most one byte over [`MAX_DOCUMENT_BYTES`] (so the
/// conversion can say it is too large without the runtime reading more).
pub(super) async fn once(s: &Source<'_>) -> Result<String, FetchError> {
    let mut request = s
        .client
        .get(s.url)
        .timeout(s.timeout)
        .build()
        .map_err(|e| FetchError::Refused(format!("the document URL is invalid: {e}")))?;
    request.headers_mut().insert(
        ACCEPT,
        HeaderValue::from_static("application/json, application/yaml;q=0.9, */*;q=0.5"),
    );
    for (name, value) in s.headers {
        request.headers_mut().insert(name.clone(), value.clone());
    }
    let request = s.auth.apply(request).await.map_err(FetchError::Refused)?;
    let mut response = s.client.execute(request).await.map_err(|e| {
        FetchError::Unreachable(format!("fetching {}: {}", s.url, crate::error_chain(&e)))
    })?;
    let status = response.status().as_u16();
    if status == 408 || status == 429 || status >= 500 {
        return Err(FetchError::Unreachable(format!(
            "fetching {} answered HTTP {status}",
            s.url
        )));
    }
    if status >= 400 {
        return Err(FetchError::Refused(format!(
            "fetching {} answered HTTP {status}",
            s.url
        )));
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_DOCUMENT_BYTES {
                    body.truncate(MAX_DOCUMENT_BYTES + 1);
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err(FetchError::Unreachable(format!(
                    "reading {}: {}",
                    s.url,
                    crate::error_chain(&e)
                )));
            }
        }
    }
    String::from_utf8(body)
        .map_err(|_| FetchError::Refused(format!("the document at {} is not UTF-8 text", s.url)))
}
