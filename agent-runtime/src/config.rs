//! Where the runtime's configuration comes from: the operator's ConfigMap (`--config`), or an
//! Agent manifest on a laptop (`--agent`), where in-cluster targets must be given URLs with
//! `--resolve TOOL=URL`.

use std::collections::BTreeMap;
use std::path::Path;

use agentry_crds::runtime_config::{ConfigError, RuntimeConfig, ToolKindConfig};
use agentry_crds::{Agent, ToolKind};

/// Why the configuration cannot be used; the message names the file, field or tool.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The runtime configuration is invalid or of another version.
    #[error("{path}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        source: ConfigError,
    },
    /// The manifest is not an Agent.
    #[error("{path} is not a valid Agent manifest: {message}")]
    Manifest {
        /// The file.
        path: String,
        /// The parser's message, naming the field.
        message: String,
    },
    /// The API server would refuse the Agent.
    #[error(
        "{path}: the API server would refuse this Agent, so the local run does too:{}",
        errors.iter().map(|e| format!("\n{path}: {e}")).collect::<String>()
    )]
    Refused {
        /// The file.
        path: String,
        /// Every message, in the API server's words.
        errors: Vec<String>,
    },
    /// A value the local mode cannot use.
    #[error("{0}")]
    Local(String),
}

/// Reads the operator's runtime configuration.
pub fn from_config_file(path: &Path) -> Result<RuntimeConfig, LoadError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: p.clone(),
        source,
    })?;
    RuntimeConfig::from_json(&text).map_err(|source| LoadError::Config { path: p, source })
}

/// Parses `--resolve TOOL=URL` values.
pub fn parse_resolves(values: &[String]) -> Result<BTreeMap<String, String>, LoadError> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((tool, url)) if !tool.is_empty() && (url.starts_with("http://") || url.starts_with("https://")) => Ok((tool.to_string(), url.to_string())),
            _ => Err(LoadError::Local(format!("--resolve {v:?}: expected TOOL=URL with an http:// or https:// URL, e.g. get_weather=http://localhost:9000/v1/weather"))),
        })
        .collect()
}

/// Reads an Agent manifest the way the API server would take it: refused, with all of the
/// server's messages, when `kubectl apply --server-side` of it would fail (an unknown field, a
/// bound, a CEL rule), and with the server's defaults applied otherwise.
fn parse_agent(p: &str, text: &str) -> Result<Agent, LoadError> {
    let manifest = |message: String| LoadError::Manifest {
        path: p.to_string(),
        message,
    };
    let value: serde_json::Value =
        serde_yaml::from_str(text).map_err(|e| manifest(e.to_string()))?;
    let api_version = format!("{}/{}", agentry_crds::API_GROUP, agentry_crds::API_VERSION);
    let found = |field: &str| match value.get(field) {
        Some(serde_json::Value::String(s)) => format!("{s:?}"),
        Some(other) => other.to_string(),
        None => "missing".into(),
    };
    if value.get("apiVersion").and_then(|v| v.as_str()) != Some(api_version.as_str())
        || value.get("kind").and_then(|v| v.as_str()) != Some("Agent")
    {
        return Err(manifest(format!(
            "expected apiVersion {api_version:?} and kind \"Agent\", found apiVersion {} and kind {}",
            found("apiVersion"),
            found("kind")
        )));
    }
    let errors = agentry_crds::validate::agent(&value);
    if !errors.is_empty() {
        return Err(LoadError::Refused {
            path: p.to_string(),
            errors,
        });
    }
    serde_json::from_value(agentry_crds::validate::defaulted(&value))
        .map_err(|e| manifest(e.to_string()))
}

/// Builds the configuration from an Agent manifest, for running it locally.
pub fn from_agent_file(
    path: &Path,
    resolves: &BTreeMap<String, String>,
) -> Result<RuntimeConfig, LoadError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: p.clone(),
        source,
    })?;
    let agent = parse_agent(&p, &text)?;
    let name = agent
        .metadata
        .name
        .clone()
        .unwrap_or_else(|| "local".into());
    let namespace = agent
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let prompt = match (&agent.spec.system_prompt, &agent.spec.system_prompt_from) {
        (Some(p), _) => p.clone(),
        (None, Some(from)) => {
            return Err(LoadError::Local(format!(
                "{p}: spec.systemPromptFrom reads ConfigMap {}/{}, which a local run cannot; put the prompt in spec.systemPrompt to try the Agent locally",
                from.config_map_key_ref.name, from.config_map_key_ref.key
            )));
        }
        (None, None) => return Err(LoadError::Local(format!("{p}: set spec.systemPrompt"))),
    };
    let mut config = agentry_crds::config_builder::runtime_config(
        &name,
        &namespace,
        &agent.spec,
        &prompt,
        &Default::default(),
    );
    let mut unresolved = Vec::new();
    for (tool, spec) in config.tools.iter_mut().zip(&agent.spec.tools) {
        let in_cluster = match spec.kind() {
            Some(ToolKind::Http(h)) => h.service.is_some(),
            Some(ToolKind::OpenApi(o)) => {
                if let Some(key) = &o.document.config_map_key_ref {
                    return Err(LoadError::Local(format!(
                        "{p}: tool {}: openapi.document reads ConfigMap {}/{}, which a local run cannot; give the document's URL in openapi.document.url to try the Agent locally",
                        tool.name, key.name, key.key
                    )));
                }
                o.service.is_some()
            }
            Some(ToolKind::Mcp(m)) => m.service.is_some(),
            Some(ToolKind::A2a(a)) => a.service.is_some(),
            Some(ToolKind::Agent(_)) => true,
            Some(ToolKind::Lambda(_)) | None => false,
        };
        let url = match &mut tool.kind {
            ToolKindConfig::Http(h) => &mut h.url,
            ToolKindConfig::OpenApi(o) => &mut o.url,
            ToolKindConfig::Agent(a) => &mut a.url,
            ToolKindConfig::Mcp(m) => &mut m.url,
            ToolKindConfig::A2a(a) => &mut a.url,
            // A function is reached through the AWS SDK's endpoint (AWS_ENDPOINT_URL_LAMBDA).
            ToolKindConfig::Lambda(_) => continue,
        };
        match resolves.get(&tool.name) {
            Some(local) => *url = local.clone(),
            None if in_cluster => unresolved.push(format!("{} ({url})", tool.name)),
            None => {}
        }
    }
    if !unresolved.is_empty() {
        return Err(LoadError::Local(format!(
            "{p}: these tools call in-cluster targets a local run cannot reach: {}; give each a URL with --resolve TOOL=URL",
            unresolved.join(", ")
        )));
    }
    if let Some(unknown) = resolves
        .keys()
        .find(|k| !config.tools.iter().any(|t| &t.name == *k))
    {
        return Err(LoadError::Local(format!(
            "--resolve {unknown}=...: the Agent has no tool named {unknown:?}"
        )));
    }
    Ok(config)
}
#[cfg(test)]
mod tests;
