//! The AWS side of tools: the pod's AWS configuration (the default chain: environment, IRSA web
//! identity, EKS Pod Identity, IMDS), loaded once at start and only when a tool needs it, and the
//! credentials SigV4 signing takes from it, refreshed before they expire.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use agentry_crds::runtime_config::{AuthConfig, RuntimeConfig, ToolKindConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

/// Credentials closer than this to their expiry are loaded again before use, so a signature is
/// never made with credentials that expire in flight.
const REFRESH_BEFORE: Duration = Duration::from_secs(60);
/// Longest a credentials load may take (the chain may wait on STS, the Pod Identity agent or IMDS).
const LOAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether any configured tool calls AWS with the pod's credentials (lambda tools, SigV4 auth).
pub fn needs_aws(config: &RuntimeConfig) -> bool {
    config.tools.iter().any(|t| uses_aws(&t.kind))
}

/// Whether one tool calls AWS with the pod's credentials.
pub(super) fn uses_aws(kind: &ToolKindConfig) -> bool {
    match kind {
        ToolKindConfig::Lambda(_) => true,
        ToolKindConfig::Http(h) => h.auth.is_some(),
        ToolKindConfig::OpenApi(o) => o.auth.is_some(),
        ToolKindConfig::Agent(_) | ToolKindConfig::Mcp(_) | ToolKindConfig::A2a(_) => false,
    }
}

/// Whether a tool that calls AWS takes its region from the chain (it names none itself, and a
/// lambda tool's function is not a full ARN).
pub(super) fn needs_chain_region(kind: &ToolKindConfig) -> bool {
    let signs_without_region = |auth: Option<&AuthConfig>| matches!(auth, Some(AuthConfig::AwsSigV4(s)) if s.region.is_none());
    match kind {
        ToolKindConfig::Lambda(l) => l.region.is_none() && !l.function_name.starts_with("arn:"),
        ToolKindConfig::Http(h) => signs_without_region(h.auth.as_ref()),
        ToolKindConfig::OpenApi(o) => signs_without_region(o.auth.as_ref()),
        ToolKindConfig::Agent(_) | ToolKindConfig::Mcp(_) | ToolKindConfig::A2a(_) => false,
    }
}

/// The AWS configuration tools use: the pod's default chain, without the model's region
/// override. `None` (and no work at all) when no tool needs AWS.
pub async fn load_aws(config: &RuntimeConfig) -> Option<aws_config::SdkConfig> {
    if !needs_aws(config) {
        return None;
    }
    Some(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await,
    )
}

/// Why credentials could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The AWS configuration has no credentials provider at all.
    #[error("the AWS configuration has no credentials provider")]
    NoProvider,
    /// The provider chain failed.
    #[error("loading AWS credentials failed")]
    Load(#[source] aws_credential_types::provider::error::CredentialsError),
    /// The provider chain did not answer in time.
    #[error("loading AWS credentials took longer than {} s", .0.as_secs())]
    TimedOut(Duration),
}

/// The chain's credentials, loaded on first use and again shortly before they expire. One load
/// at a time: concurrent calls wait for it rather than each asking STS.
pub(super) struct CachedCredentials {
    provider: Option<SharedCredentialsProvider>,
    current: tokio::sync::Mutex<Option<Credentials>>,
}

impl CachedCredentials {
    pub(super) fn new(provider: Option<SharedCredentialsProvider>) -> Self {
        Self {
            provider,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// Credentials valid for at least [`REFRESH_BEFORE`] (or without expiry).
    pub(super) async fn get(&self) -> Result<Credentials, CredentialsError> {
        let provider = self.provider.as_ref().ok_or(CredentialsError::NoProvider)?;
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref()
            && fresh(c, SystemTime::now())
        {
            return Ok(c.clone());
        }
        let loaded = tokio::time::timeout(LOAD_TIMEOUT, provider.provide_credentials())
            .await
            .map_err(|_| CredentialsError::TimedOut(LOAD_TIMEOUT))?
            .map_err(CredentialsError::Load)?;
        *current = Some(loaded.clone());
        Ok(loaded)
    }
}

fn fresh(c: &Credentials, now: SystemTime) -> bool {
    c.expiry().is_none_or(|e| e > now + REFRESH_BEFORE)
}

/// What AWS tools share: the SDK configuration and one credentials cache.
pub(super) struct AwsTools {
    pub(super) sdk: aws_config::SdkConfig,
    pub(super) credentials: Arc<CachedCredentials>,
}

impl AwsTools {
    pub(super) fn new(sdk: aws_config::SdkConfig) -> Self {
        let credentials = Arc::new(CachedCredentials::new(sdk.credentials_provider()));
        Self { sdk, credentials }
    }

    /// The chain's region, if it has one.
    pub(super) fn region(&self) -> Option<String> {
        self.sdk.region().map(|r| r.to_string())
    }

    /// One attempt to load the credentials in the background, so a pod without a usable AWS
    /// identity says so in its log at start (the calls then fail with error results); and a
    /// warning now if tools that need the chain's region (`regionless`) have none.
    pub(super) fn check_at_start(
        &self,
        tools: Vec<String>,
        regionless: Vec<String>,
    ) -> tokio::task::JoinHandle<()> {
        if self.region().is_none() && !regionless.is_empty() {
            tracing::warn!(tools = %regionless.join(", "), "no AWS region is configured (AWS_REGION) and these tools name none: their calls fail until one is");
        }
        let credentials = self.credentials.clone();
        tokio::spawn(async move {
            match credentials.get().await {
                Ok(_) => {
                    tracing::debug!(tools = %tools.join(", "), "AWS credentials for tools loaded")
                }
                Err(e) => tracing::warn!(
                    tools = %tools.join(", "),
                    error = %crate::error_chain(&e),
                    "AWS credentials cannot be loaded: calls of these tools fail until they can (check the ServiceAccount's IRSA role or the EKS Pod Identity association)"
                ),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expiring_in(secs: u64) -> Credentials {
        Credentials::new(
            "AKID",
            "secret",
            Some("token".into()),
            Some(SystemTime::now() + Duration::from_secs(secs)),
            "test",
        )
    }

    #[test]
    fn credentials_are_reused_until_shortly_before_they_expire() {
        let now = SystemTime::now();
        assert!(fresh(&expiring_in(3600), now));
        assert!(!fresh(&expiring_in(30), now));
        assert!(fresh(
            &Credentials::new("AKID", "secret", None, None, "static"),
            now
        ));
    }

    #[tokio::test]
    async fn a_configuration_without_a_provider_is_a_clear_error() {
        let err = CachedCredentials::new(None).get().await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "the AWS configuration has no credentials provider"
        );
    }
}
