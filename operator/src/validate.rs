//! Step 1 of reconcile: checks what the schema cannot, and gives the later steps an Agent whose
//! name, namespace and tools are known to be usable.
//!
//! Failures here are permanent: nothing changes until the user edits the Agent, so the
//! controller reports them in status and waits instead of retrying.

use agentry_crds::memory::MEMORY_URL_ENV;
use agentry_crds::{Agent, AgentSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};

/// An Agent that passed validation.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedAgent {
    /// `metadata.name`, a DNS-1035 label (it names the Service).
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// The controller owner reference every child carries.
    pub owner: OwnerReference,
    /// The spec.
    pub spec: AgentSpec,
}

/// Why an Agent cannot be reconciled.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAgent {
    /// The name cannot name a Service.
    #[error(
        "metadata.name {0:?} cannot name the Agent's Service: use at most 63 lowercase letters, \
         digits or '-', starting with a letter and ending with a letter or digit"
    )]
    Name(String),
    /// The object has no namespace or uid (not read from the API server).
    #[error("the Agent has no {0}: it was not read from the API server")]
    Metadata(&'static str),
    /// A tool sets no kind or several (only possible if the schema was bypassed).
    #[error(
        "spec.tools[{index}] ({name}) must set exactly one of http, lambda, openapi, agent, mcp or a2a"
    )]
    ToolKind {
        /// Position in `spec.tools`.
        index: usize,
        /// The tool's name.
        name: String,
    },
    /// `spec.env` sets the variable the store URL is given in (only possible if the schema was
    /// bypassed): the pod would get the name twice, which server-side apply refuses.
    #[error(
        "spec.env sets {MEMORY_URL_ENV}, which Agentry fills from spec.memory.url.secretKeyRef: \
         remove that env entry (put the store's URL in the Secret spec.memory.url names)"
    )]
    MemoryUrlEnv,
}

impl InvalidAgent {
    /// A PascalCase reason for conditions and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Name(_) => "InvalidName",
            Self::Metadata(_) => "InvalidMetadata",
            Self::ToolKind { .. } => "InvalidTool",
            Self::MemoryUrlEnv => "InvalidEnv",
        }
    }
}

/// Whether `name` is a DNS-1035 label, as a Service name must be.
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.last() != Some(&b'-')
}

/// Validates an Agent for reconciling.
pub fn validate(agent: &Agent) -> Result<ValidatedAgent, InvalidAgent> {
    let name = agent.name_any();
    if !is_dns_label(&name) {
        return Err(InvalidAgent::Name(name));
    }
    let namespace = agent
        .namespace()
        .ok_or(InvalidAgent::Metadata("namespace"))?;
    let owner = agent
        .controller_owner_ref(&())
        .ok_or(InvalidAgent::Metadata("uid"))?;
    if let Some((index, tool)) = agent
        .spec
        .tools
        .iter()
        .enumerate()
        .find(|(_, t)| t.kind().is_none())
    {
        return Err(InvalidAgent::ToolKind {
            index,
            name: tool.name.clone(),
        });
    }
    if agent.spec.memory.is_some()
        && agent
            .spec
            .env
            .iter()
            .flatten()
            .any(|e| e.name == MEMORY_URL_ENV)
    {
        return Err(InvalidAgent::MemoryUrlEnv);
    }
    Ok(ValidatedAgent {
        name,
        namespace,
        generation: agent.metadata.generation,
        owner,
        spec: agent.spec.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(yaml: &str) -> Agent {
        serde_yaml::from_str(yaml).unwrap()
    }

    const OK: &str = r#"
apiVersion: agentry.dev/v1alpha1
kind: Agent
metadata: {name: weather, namespace: demo, uid: 1b2c, generation: 3}
spec:
  model: {id: anthropic.claude-3-haiku-20240307-v1:0}
  systemPrompt: hi
"#;

    #[test]
    fn a_valid_agent_carries_a_controller_owner_reference() {
        let v = validate(&agent(OK)).unwrap();
        assert_eq!(
            (v.name.as_str(), v.namespace.as_str(), v.generation),
            ("weather", "demo", Some(3))
        );
        assert_eq!(v.owner.kind, "Agent");
        assert_eq!(v.owner.uid, "1b2c");
        assert_eq!(v.owner.controller, Some(true));
    }

    #[test]
    fn a_name_with_a_dot_is_refused_because_it_cannot_name_a_service() {
        let err = validate(&agent(&OK.replace("name: weather", "name: weather.v2"))).unwrap_err();
        assert_eq!(err.reason(), "InvalidName");
        assert!(err.to_string().contains("\"weather.v2\""));
    }

    #[test]
    fn a_name_starting_with_a_digit_is_refused() {
        assert!(!is_dns_label("1weather"));
        assert!(!is_dns_label("weather-"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_label("weather-2"));
    }

    #[test]
    fn a_tool_without_a_kind_is_refused_naming_its_index() {
        let yaml = format!("{OK}  tools: [{{name: t, description: d}}]\n");
        let err = validate(&agent(&yaml)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.tools[0] (t) must set exactly one of http, lambda, openapi, agent, mcp or a2a"
        );
    }

    #[test]
    fn an_env_entry_named_like_the_memory_url_variable_is_refused_only_with_memory() {
        let env = "  env: [{name: AGENTRY_MEMORY_URL, value: \"redis://h:6379\"}]\n";
        // Without spec.memory the variable is the user's own: nothing reads it.
        assert!(validate(&agent(&format!("{OK}{env}"))).is_ok());
        let memory = "  memory: {url: {secretKeyRef: {name: store, key: url}}}\n";
        let err = validate(&agent(&format!("{OK}{env}{memory}"))).unwrap_err();
        assert_eq!(err.reason(), "InvalidEnv");
        assert!(
            err.to_string().starts_with(
                "spec.env sets AGENTRY_MEMORY_URL, which Agentry fills from spec.memory.url.secretKeyRef"
            ),
            "{err}"
        );
        assert!(validate(&agent(&format!("{OK}{memory}"))).is_ok());
    }
}
