//! The description of each `agent` tool that sets none: the named Agent's `spec.description`,
//! read from the controller's cache (or the API server, for an Agent outside the watched
//! namespaces). The controller already re-reconciles an Agent when one it names changes, so a
//! new description reaches its callers' tools.

use std::collections::BTreeMap;

use agentry_crds::{Agent, ToolKind};
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;

use super::{Lookup, Problem, ResolveError, is_not_found};

/// Descriptions of `agent`'s description-less agent tools, by tool name, and a problem for
/// each such tool whose Agent exists but has no description (a missing Agent is reported as
/// `AgentNotFound` already).
pub async fn resolve(
    agent: &Agent,
    lookup: &Lookup,
) -> Result<(BTreeMap<String, String>, Vec<Problem>), ResolveError> {
    let own_ns = agent.metadata.namespace.clone().unwrap_or_default();
    let mut found = BTreeMap::new();
    let mut problems = Vec::new();
    for tool in &agent.spec.tools {
        let (Some(ToolKind::Agent(other)), None) = (tool.kind(), &tool.description) else {
            continue;
        };
        let ns = other.namespace.clone().unwrap_or_else(|| own_ns.clone());
        let target = match lookup.agents.get(&ObjectRef::new(&other.name).within(&ns)) {
            Some(a) => Some((*a).clone()),
            None => {
                let api: Api<Agent> = Api::namespaced(lookup.client.clone(), &ns);
                match api.get_opt(&other.name).await {
                    Ok(a) => a,
                    Err(e) if is_not_found(&e) => None,
                    Err(source) => {
                        return Err(ResolveError::Read {
                            kind: "Agent",
                            namespace: ns,
                            name: other.name.clone(),
                            source,
                        });
                    }
                }
            }
        };
        let Some(target) = target else { continue };
        match target.spec.description {
            Some(d) => {
                found.insert(tool.name.clone(), d);
            }
            None => problems.push(missing(&tool.name, &ns, &other.name)),
        }
    }
    Ok((found, problems))
}

/// The problem of agent tool `tool` naming Agent `namespace/name`, which has no description.
pub fn missing(tool: &str, namespace: &str, name: &str) -> Problem {
    Problem {
        reason: "ToolDescriptionMissing",
        message: format!(
            "tool {tool}: set its description, or spec.description on Agent {namespace}/{name} \
             (an agent tool without a description takes the named Agent's)"
        ),
    }
}
