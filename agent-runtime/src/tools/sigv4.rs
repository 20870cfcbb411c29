//! AWS Signature Version 4 for tools' HTTP requests, with the official `aws-sigv4` signer and the
//! pod's credentials: `execute-api` for API Gateway with IAM authorization, `lambda` for Lambda
//! function URLs with `AWS_IAM` auth (which also need the payload hash in `x-amz-content-sha256`).

use std::sync::Arc;
use std::time::SystemTime;

use agentry_crds::SigV4Service;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_smithy_runtime_api::client::identity::Identity;
use reqwest::header::{HeaderName, HeaderValue};

use super::aws::CachedCredentials;

/// Signs requests for one service and region with the chain's current credentials.
pub(super) struct SigV4 {
    credentials: Arc<CachedCredentials>,
    /// `None` when neither the tool nor the chain names a region: every call then says so.
    region: Option<String>,
    service: SigV4Service,
}

impl std::fmt::Debug for SigV4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigV4")
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl SigV4 {
    pub(super) fn new(
        credentials: Arc<CachedCredentials>,
        region: Option<String>,
        service: SigV4Service,
    ) -> Self {
        Self {
            credentials,
            region,
            service,
        }
    }

    /// Adds `x-amz-date`, `authorization` (and `x-amz-security-token`, `x-amz-content-sha256`
    /// where they apply) to the finished request; the signature covers its method, URL with
    /// query, headers and body. An error is the message of the call's error result.
    pub(super) async fn sign(
        &self,
        mut request: reqwest::Request,
    ) -> Result<reqwest::Request, String> {
        let service = self.service.as_str();
        let region = self.region.as_deref().ok_or_else(|| {
            format!(
                "the request cannot be signed for {service}: no AWS region is configured (set auth.awsSigV4.region, or AWS_REGION in the pod)"
            )
        })?;
        if request.url().host_str().is_none() {
            return Err("the request cannot be signed: its URL has no host".into());
        }
        rfc3986_query(request.url_mut());
        let credentials = self.credentials.get().await.map_err(|e| {
            format!(
                "the request cannot be signed for {service}: {}",
                crate::error_chain(&e)
            )
        })?;
        let identity: Identity = credentials.into();
        let mut settings = SigningSettings::default();
        if self.service == SigV4Service::Lambda {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| format!("the request cannot be signed: {e}"))?
            .into();
        let body: &[u8] = match request.body() {
            None => &[],
            Some(b) => b
                .as_bytes()
                .ok_or("the request cannot be signed: its body is a stream")?,
        };
        let mut headers = Vec::with_capacity(request.headers().len());
        for (name, value) in request.headers() {
            let value = value.to_str().map_err(|_| {
                format!("the request cannot be signed: header {name} is not visible ASCII")
            })?;
            headers.push((name.as_str(), value));
        }
        let signable = SignableRequest::new(
            request.method().as_str(),
            request.url().as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| format!("the request cannot be signed: {}", crate::error_chain(&e)))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| format!("the request cannot be signed: {}", crate::error_chain(&e)))?
            .into_parts();
        let (added, _query) = instructions.into_parts();
        for header in added {
            let mut value = HeaderValue::from_str(header.value())
                .map_err(|_| format!("the signature header {} is invalid", header.name()))?;
            // Never printed by Debug, so never in logs.
            value.set_sensitive(header.sensitive());
            let name = HeaderName::from_bytes(header.name().as_bytes())
                .map_err(|_| format!("the signature header {} is invalid", header.name()))?;
            request.headers_mut().insert(name, value);
        }
        Ok(request)
    }
}

/// Re-encodes the query in the form SigV4 signs (RFC 3986: every byte but `A-Z a-z 0-9 - _ . ~`
/// percent-encoded, a space as `%20`), so the query sent is the query signed. A form-encoded
/// query (`a+b`, as built from a tool's input) would otherwise be signed by one reading (space)
/// and checked by AWS under another (`+`).
fn rfc3986_query(url: &mut reqwest::Url) {
    if url.query().is_none_or(str::is_empty) {
        return;
    }
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let encoded: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    url.set_query(Some(&encoded.join("&")));
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_encoded_query_is_re_encoded_as_sigv4_signs_it() {
        let mut url = reqwest::Url::parse(
            "https://api.example.com/prod/x?note=a+b%26c%3Dd%2F%C3%A9&limit=5&flag",
        )
        .unwrap();
        rfc3986_query(&mut url);
        assert_eq!(
            url.query(),
            Some("note=a%20b%26c%3Dd%2F%C3%A9&limit=5&flag=")
        );
        let mut plain = reqwest::Url::parse("https://api.example.com/prod/x").unwrap();
        rfc3986_query(&mut plain);
        assert_eq!(plain.as_str(), "https://api.example.com/prod/x");
    }
}
