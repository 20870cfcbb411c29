//! What each tool kind's builder works from: the tool's place, name and description, the
//! shared HTTP client, catalog and metrics, the pod's AWS configuration; and the pieces every
//! builder uses (headers with secrets from the environment, timeouts, SigV4 auth, a one-tool
//! offer).

use std::sync::Arc;
use std::time::Duration;

use agentry_crds::runtime_config::{AuthConfig, HeaderConfig};
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;

use super::auth::Auth;
use super::aws::AwsTools;
use super::catalog::{Catalog, Entry};
use super::{ToolKind, ToolsError, sigv4};
use crate::bedrock::ToolSpec;
use crate::metrics::McpMetrics;

/// What every kind's builder gets.
pub(super) struct Setup<'a> {
    pub(super) index: usize,
    pub(super) name: &'a str,
    pub(super) description: &'a str,
    pub(super) client: &'a reqwest::Client,
    pub(super) catalog: &'a Arc<Catalog>,
    pub(super) metrics: &'a McpMetrics,
    /// The pod's AWS configuration, when a tool needs it.
    pub(super) aws: Option<&'a AwsTools>,
}

/// A kind built from its configuration, and its background work if it has any.
pub(super) struct Built {
    pub(super) kind: Arc<dyn ToolKind>,
    pub(super) task: Option<tokio::task::JoinHandle<()>>,
}

/// A tool's headers, with secret values taken from the environment.
pub(super) fn headers(
    tool: &str,
    configured: &[HeaderConfig],
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, ToolsError> {
    let mut out = Vec::new();
    for header in configured {
        let bad = || ToolsError::BadHeader {
            tool: tool.to_string(),
            header: header.name.clone(),
        };
        let value = match (&header.value, &header.value_from_env) {
            (Some(v), _) => v.clone(),
            (None, Some(var)) => env(var).ok_or_else(|| ToolsError::MissingSecret {
                tool: tool.to_string(),
                header: header.name.clone(),
                var: var.clone(),
            })?,
            (None, None) => String::new(),
        };
        let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| bad())?;
        let mut value = HeaderValue::from_str(&value).map_err(|_| bad())?;
        // Never printed by Debug, so never in logs.
        value.set_sensitive(header.value_from_env.is_some());
        out.push((name, value));
    }
    Ok(out)
}

/// A tool's timeout from its configuration (at least a second).
pub(super) fn seconds(timeout: u32) -> Duration {
    Duration::from_secs(u64::from(timeout.max(1)))
}

impl Setup<'_> {
    /// The authentication of a tool's HTTP requests, from its `auth` configuration: SigV4 with
    /// the pod's credentials (one cache for every tool), for the configured region, else the
    /// chain's. For every kind that sends through [`http::execute`].
    pub(super) fn auth(&self, config: Option<&AuthConfig>) -> Result<Auth, ToolsError> {
        match config {
            None => Ok(Auth::none()),
            Some(AuthConfig::AwsSigV4(sig)) => {
                let aws = self
                    .aws
                    .ok_or_else(|| ToolsError::NoAws(self.name.to_string()))?;
                Ok(Auth::SigV4(sigv4::SigV4::new(
                    aws.credentials.clone(),
                    sig.region.clone().or_else(|| aws.region()),
                    sig.service,
                )))
            }
        }
    }

    /// The single entry of a one-tool kind (http, agent), offered from the start.
    pub(super) fn offer_one(
        &self,
        kind: Arc<dyn ToolKind>,
        input_schema: Value,
        timeout: u32,
        what: &str,
    ) {
        self.catalog.set(
            self.index,
            vec![Entry {
                source: 0,
                spec: ToolSpec {
                    name: self.name.to_string(),
                    description: self.description.to_string(),
                    input_schema,
                },
                kind,
                target: self.name.to_string(),
                timeout: seconds(timeout),
                origin: format!("{what} tool {}", self.name),
                plain: true,
            }],
        );
    }
}
