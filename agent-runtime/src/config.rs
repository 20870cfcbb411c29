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
    let agent: Agent = serde_yaml::from_str(&text).map_err(|e| LoadError::Manifest {
        path: p.clone(),
        message: e.to_string(),
    })?;
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
    let mut config =
        agentry_crds::config_builder::runtime_config(&name, &namespace, &agent.spec, &prompt);
    let mut unresolved = Vec::new();
    for (tool, spec) in config.tools.iter_mut().zip(&agent.spec.tools) {
        let in_cluster = match spec.kind() {
            Some(ToolKind::Http(h)) => h.service.is_some(),
            Some(ToolKind::Mcp(m)) => m.service.is_some(),
            Some(ToolKind::Agent(_)) => true,
            None => false,
        };
        let url = match &mut tool.kind {
            ToolKindConfig::Http(h) => &mut h.url,
            ToolKindConfig::Agent(a) => &mut a.url,
            ToolKindConfig::Mcp(m) => &mut m.url,
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
mod tests {
    use super::*;

    fn write(content: &str) -> tempfile_path::TempFile {
        tempfile_path::TempFile::new(content)
    }

    /// A file removed on drop (no tempfile dependency for two tests).
    mod tempfile_path {
        pub struct TempFile(pub std::path::PathBuf);
        impl TempFile {
            pub fn new(content: &str) -> Self {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let p = std::env::temp_dir()
                    .join(format!("agentry-runtime-test-{}-{n}", std::process::id()));
                std::fs::write(&p, content).unwrap();
                Self(p)
            }
        }
        impl Drop for TempFile {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    const AGENT: &str = r#"
apiVersion: agentry.dev/v1alpha1
kind: Agent
metadata: {name: weather}
spec:
  model: {id: anthropic.claude-3-haiku-20240307-v1:0}
  systemPrompt: You answer weather questions.
  tools:
    - name: get_weather
      description: Weather.
      http: {service: {name: weather-api, path: /v1/weather}}
    - name: search
      description: Search.
      http: {url: "https://api.example.com/search"}
"#;

    #[test]
    fn in_cluster_tools_are_refused_locally_without_a_resolve() {
        let f = write(AGENT);
        let err = from_agent_file(&f.0, &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "get_weather (http://weather-api.default.svc.cluster.local:80/v1/weather)"
            ),
            "{err}"
        );
        assert!(err.contains("--resolve TOOL=URL"), "{err}");
    }

    #[test]
    fn resolves_replace_in_cluster_urls_and_url_tools_work_as_they_are() {
        let f = write(AGENT);
        let r = parse_resolves(&["get_weather=http://localhost:9000/w".into()]).unwrap();
        let c = from_agent_file(&f.0, &r).unwrap();
        let urls: Vec<String> = c
            .tools
            .iter()
            .map(|t| match &t.kind {
                ToolKindConfig::Http(h) => h.url.clone(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(
            urls,
            ["http://localhost:9000/w", "https://api.example.com/search"]
        );
    }

    #[test]
    fn bad_resolves_and_bad_manifests_name_the_problem() {
        assert!(
            parse_resolves(&["nourl".into()])
                .unwrap_err()
                .to_string()
                .contains("expected TOOL=URL")
        );
        let f = write(AGENT);
        let err = from_agent_file(
            &f.0,
            &parse_resolves(&["get_weather=http://x".into(), "nope=http://y".into()]).unwrap(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no tool named \"nope\""));
        let bad = write(
            "apiVersion: agentry.dev/v1alpha1\nkind: Agent\nmetadata: {name: x}\nspec: {model: {}}\n",
        );
        let err = from_agent_file(&bad.0, &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `id`"), "{err}");
    }

    #[test]
    fn config_file_errors_name_the_field() {
        let f = write(
            r#"{"apiVersion": "agentry.dev/runtime-config/v1", "agent": {"name": "a", "namespace": "b"}}"#,
        );
        let err = crate::error_chain(&from_config_file(&f.0).unwrap_err());
        assert!(err.contains("missing field `model`"), "{err}");
    }
}
