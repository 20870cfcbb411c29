//! Between validate and build: finds what the Agent refers to. The system prompt from
//! `systemPromptFrom`, and whether each tool's target (another Agent, a Service) exists.
//!
//! A missing tool target does not stop the rollout: its URL is a deterministic DNS name, and the
//! runtime turns a failed call into a tool error Claude can work around. It is reported as
//! `ToolsResolved=False` and clears by itself when the target appears (the controller watches
//! targets). A missing system prompt does stop it: there is nothing correct to deploy.
//!
//! ConfigMap-held OpenAPI documents are read and converted in [`openapi`].

pub mod descriptions;
pub mod openapi;

use std::collections::BTreeMap;

use agentry_crds::config_builder::OpenApiOperations;
use agentry_crds::{Agent, ToolKind};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::validate::ValidatedAgent;

/// What a tool points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Another Agent.
    Agent,
    /// A Service (http, openapi, mcp or a2a tool).
    Service,
}

/// One reference from an Agent to another object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The tool holding it.
    pub tool: String,
    /// What it points at.
    pub target: Target,
    /// Namespace of the target.
    pub namespace: String,
    /// Name of the target.
    pub name: String,
}

/// Every in-cluster object `agent`'s tools refer to. Pure, so the watch mappers use it too.
pub fn references(agent: &Agent) -> Vec<Reference> {
    let own_ns = agent.metadata.namespace.clone().unwrap_or_default();
    let mut out = Vec::new();
    for tool in &agent.spec.tools {
        let (target, name, ns) = match tool.kind() {
            Some(ToolKind::Agent(a)) => (Target::Agent, &a.name, &a.namespace),
            Some(ToolKind::Http(h)) => match &h.service {
                Some(s) => (Target::Service, &s.name, &s.namespace),
                None => continue,
            },
            Some(ToolKind::OpenApi(o)) => match &o.service {
                Some(s) => (Target::Service, &s.name, &s.namespace),
                None => continue,
            },
            Some(ToolKind::Mcp(m)) => match &m.service {
                Some(s) => (Target::Service, &s.name, &s.namespace),
                None => continue,
            },
            Some(ToolKind::A2a(a)) => match &a.service {
                Some(s) => (Target::Service, &s.name, &s.namespace),
                None => continue,
            },
            Some(ToolKind::Lambda(_)) | None => continue,
        };
        out.push(Reference {
            tool: tool.name.clone(),
            target,
            namespace: ns.clone().unwrap_or_else(|| own_ns.clone()),
            name: name.clone(),
        });
    }
    out
}

/// The ConfigMap `agent`'s system prompt comes from, as (namespace, name), if any.
pub fn prompt_config_map(agent: &Agent) -> Option<(String, String)> {
    let from = agent.spec.system_prompt_from.as_ref()?;
    Some((
        agent.metadata.namespace.clone().unwrap_or_default(),
        from.config_map_key_ref.name.clone(),
    ))
}

/// Every ConfigMap `agent` reads (its system prompt, its OpenAPI documents), as
/// (namespace, name).
pub fn config_maps(agent: &Agent) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = prompt_config_map(agent).into_iter().collect();
    all.extend(openapi::document_config_maps(agent));
    all
}

/// A reference that could not be resolved, for the `ToolsResolved` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// PascalCase reason: `AgentNotFound`, `ServiceNotFound`, `ConfigMapNotFound`,
    /// `ConfigMapKeyNotFound`, `OpenApiDocumentInvalid`, `ToolNameConflict`,
    /// `ToolDescriptionMissing`.
    pub reason: &'static str,
    /// What is missing, naming the tool and the object.
    pub message: String,
}

/// What resolve found.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolution {
    /// The system prompt, or why it cannot be had.
    pub system_prompt: Result<String, Problem>,
    /// Tool targets that do not exist.
    pub missing_targets: Vec<Problem>,
    /// The operations of each ConfigMap-held OpenAPI document that could be read and converted.
    pub openapi: OpenApiOperations,
    /// OpenAPI documents that could not be read or used, and operation name conflicts.
    pub openapi_problems: Vec<Problem>,
    /// The named Agent's description of each agent tool that sets none, by tool name.
    pub agent_tool_descriptions: BTreeMap<String, String>,
    /// Agent tools with no description of their own whose Agent has none either.
    pub description_problems: Vec<Problem>,
}

impl Resolution {
    /// Every problem, the prompt's first.
    pub fn problems(&self) -> Vec<Problem> {
        let mut all: Vec<Problem> = self.system_prompt.clone().err().into_iter().collect();
        all.extend(self.missing_targets.iter().cloned());
        all.extend(self.openapi_problems.iter().cloned());
        all.extend(self.description_problems.iter().cloned());
        all
    }
}

/// Read access to what references point at: the controller's caches, with the API server
/// behind them for objects outside the watched namespaces.
#[derive(Clone)]
pub struct Lookup {
    /// The client, for reads the caches cannot answer.
    pub client: kube::Client,
    /// Every watched Agent.
    pub agents: Store<Agent>,
    /// Metadata of every watched Service.
    pub services: Store<PartialObjectMeta<Service>>,
}

/// Errors reading what an Agent refers to.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Reading a referenced object failed for a reason other than its absence.
    #[error("reading {kind} {namespace}/{name}")]
    Read {
        /// Kind read.
        kind: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The API error.
        source: kube::Error,
    },
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404 || s.code == 403)
}

async fn exists<K>(
    client: &kube::Client,
    cached: bool,
    namespace: &str,
    name: &str,
    kind: &'static str,
) -> Result<bool, ResolveError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    if cached {
        return Ok(true);
    }
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.get_metadata_opt(name).await {
        Ok(found) => Ok(found.is_some()),
        // Forbidden: outside the namespaces this operator may read; to the user it is missing.
        Err(e) if is_not_found(&e) => Ok(false),
        Err(source) => Err(ResolveError::Read {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            source,
        }),
    }
}

/// Resolves `agent`'s system prompt and checks its tool targets.
pub async fn resolve(
    agent: &Agent,
    validated: &ValidatedAgent,
    lookup: &Lookup,
) -> Result<Resolution, ResolveError> {
    let system_prompt = match (
        &validated.spec.system_prompt,
        &validated.spec.system_prompt_from,
    ) {
        (Some(text), _) => Ok(text.clone()),
        (None, Some(from)) => {
            let key = &from.config_map_key_ref;
            let api: Api<ConfigMap> = Api::namespaced(lookup.client.clone(), &validated.namespace);
            match api.get_opt(&key.name).await {
                Ok(Some(cm)) => match cm.data.as_ref().and_then(|d| d.get(&key.key)) {
                    Some(text) => Ok(text.clone()),
                    None => Err(Problem {
                        reason: "ConfigMapKeyNotFound",
                        message: format!(
                            "systemPromptFrom: ConfigMap {}/{} has no key {:?}",
                            validated.namespace, key.name, key.key
                        ),
                    }),
                },
                Ok(None) => Err(Problem {
                    reason: "ConfigMapNotFound",
                    message: format!(
                        "systemPromptFrom: ConfigMap {}/{} not found",
                        validated.namespace, key.name
                    ),
                }),
                Err(source) => {
                    return Err(ResolveError::Read {
                        kind: "ConfigMap",
                        namespace: validated.namespace.clone(),
                        name: key.name.clone(),
                        source,
                    });
                }
            }
        }
        // The schema requires one of the two; an object that bypassed it gets a clear problem.
        (None, None) => Err(Problem {
            reason: "SystemPromptMissing",
            message: "set spec.systemPrompt or spec.systemPromptFrom".into(),
        }),
    };

    let mut missing_targets = Vec::new();
    for r in references(agent) {
        let found = match r.target {
            Target::Agent => {
                let cached = lookup
                    .agents
                    .get(&ObjectRef::new(&r.name).within(&r.namespace))
                    .is_some();
                exists::<Agent>(&lookup.client, cached, &r.namespace, &r.name, "Agent").await?
            }
            Target::Service => {
                let cached = lookup
                    .services
                    .get(&ObjectRef::new(&r.name).within(&r.namespace))
                    .is_some();
                exists::<Service>(&lookup.client, cached, &r.namespace, &r.name, "Service").await?
            }
        };
        if !found {
            let (reason, kind) = match r.target {
                Target::Agent => ("AgentNotFound", "Agent"),
                Target::Service => ("ServiceNotFound", "Service"),
            };
            missing_targets.push(Problem {
                reason,
                message: format!(
                    "tool {}: {kind} {}/{} not found",
                    r.tool, r.namespace, r.name
                ),
            });
        }
    }
    let (openapi, openapi_problems) =
        openapi::resolve(&lookup.client, &validated.namespace, &validated.spec).await?;
    let (agent_tool_descriptions, description_problems) =
        descriptions::resolve(agent, lookup).await?;
    Ok(Resolution {
        system_prompt,
        missing_targets,
        openapi,
        openapi_problems,
        agent_tool_descriptions,
        description_problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::{WEATHER, agent};

    #[test]
    fn references_name_each_in_cluster_target_with_the_agents_namespace_as_default() {
        let refs = references(&agent(WEATHER));
        assert_eq!(
            refs,
            vec![
                Reference {
                    tool: "get_weather".into(),
                    target: Target::Service,
                    namespace: "demo".into(),
                    name: "weather-api".into()
                },
                Reference {
                    tool: "ask_travel_agent".into(),
                    target: Target::Agent,
                    namespace: "demo".into(),
                    name: "travel".into()
                },
            ]
        );
    }

    #[test]
    fn a2a_tool_on_a_service_refers_to_that_service_and_one_on_a_url_to_nothing() {
        let yaml = WEATHER.replace(
            "      agent: {name: travel}\n",
            "      agent: {name: travel}\n    - name: k8s_agent\n      description: Kubernetes help.\n      \
             a2a: {service: {name: kagent-controller, namespace: kagent, port: 8083}}\n    \
             - name: remote\n      description: A remote agent.\n      a2a: {url: \"http://a.example.com/\"}\n",
        );
        let refs = references(&agent(&yaml));
        assert_eq!(refs.len(), 3, "{refs:?}");
        assert_eq!(
            refs[2],
            Reference {
                tool: "k8s_agent".into(),
                target: Target::Service,
                namespace: "kagent".into(),
                name: "kagent-controller".into()
            }
        );
    }

    #[test]
    fn mcp_tool_on_a_service_refers_to_that_service_like_an_http_tool() {
        let yaml = WEATHER.replace(
            "      agent: {name: travel}\n",
            "      agent: {name: travel}\n    - name: k8s\n      description: Kubernetes tools.\n      mcp:\n        \
             service: {name: kagent-tools, namespace: kagent, port: 8084, path: /mcp}\n    \
             - name: clock\n      description: Time.\n      mcp: {url: \"http://clock.example.com/mcp\"}\n"
        );
        let refs = references(&agent(&yaml));
        assert_eq!(
            refs.len(),
            3,
            "the url mcp tool refers to nothing: {refs:?}"
        );
        assert_eq!(
            refs[2],
            Reference {
                tool: "k8s".into(),
                target: Target::Service,
                namespace: "kagent".into(),
                name: "kagent-tools".into()
            }
        );
    }

    #[test]
    fn url_tools_refer_to_nothing_in_the_cluster() {
        let yaml = WEATHER.replace(
            "service: {name: weather-api, port: 80, path: /v1/weather}",
            "url: https://api.example.com/w",
        );
        assert_eq!(references(&agent(&yaml)).len(), 1);
    }

    #[test]
    fn prompt_problem_comes_first() {
        let r = Resolution {
            system_prompt: Err(Problem {
                reason: "ConfigMapNotFound",
                message: "m".into(),
            }),
            missing_targets: vec![Problem {
                reason: "AgentNotFound",
                message: "n".into(),
            }],
            openapi: OpenApiOperations::new(),
            openapi_problems: vec![Problem {
                reason: "OpenApiDocumentInvalid",
                message: "o".into(),
            }],
            agent_tool_descriptions: BTreeMap::new(),
            description_problems: vec![descriptions::missing("t", "demo", "travel")],
        };
        let reasons: Vec<_> = r.problems().iter().map(|p| p.reason).collect();
        assert_eq!(
            reasons,
            [
                "ConfigMapNotFound",
                "AgentNotFound",
                "OpenApiDocumentInvalid",
                "ToolDescriptionMissing"
            ]
        );
    }
}
