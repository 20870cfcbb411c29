//! Every Kubernetes API call the operator makes, declared in one place. The Helm chart's RBAC
//! rules must grant exactly these (a test renders the chart and compares), and the reconciler
//! tests check that every request the operator sends is declared here.

/// Where a permission is needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Namespaced resources in every watched namespace (all namespaces by default).
    Watched,
    /// Namespaced resources in the operator's own namespace (the leader-election Lease).
    Own,
    /// Cluster-scoped resources.
    Cluster,
}

/// Access to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiAccess {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// Resource, or `resource/subresource`.
    pub resource: &'static str,
    /// Verbs, as RBAC names them.
    pub verbs: &'static [&'static str],
    /// Object names the access is limited to; empty for any.
    pub resource_names: &'static [&'static str],
    /// Where it is needed.
    pub scope: Scope,
    /// Why, for the chart's comment.
    pub why: &'static str,
}

const CHILD_VERBS: &[&str] = &["get", "list", "watch", "create", "patch"];
const PRUNED_CHILD_VERBS: &[&str] = &["get", "list", "watch", "create", "patch", "delete"];

/// The operator's API access. Server-side apply that creates an object is authorised as
/// `create` as well as `patch`.
pub const API_ACCESS: &[ApiAccess] = &[
    ApiAccess {
        group: "agentry.dev",
        resource: "agents",
        verbs: &["get", "list", "watch"],
        resource_names: &[],
        scope: Scope::Watched,
        why: "watch Agents, and read the Agents that tools name",
    },
    ApiAccess {
        group: "agentry.dev",
        resource: "agents/status",
        verbs: &["patch"],
        resource_names: &[],
        scope: Scope::Watched,
        why: "report conditions, endpoint and replicas",
    },
    ApiAccess {
        group: "apps",
        resource: "deployments",
        verbs: CHILD_VERBS,
        resource_names: &[],
        scope: Scope::Watched,
        why: "run each Agent's runtime pods",
    },
    ApiAccess {
        group: "",
        resource: "services",
        verbs: CHILD_VERBS,
        resource_names: &[],
        scope: Scope::Watched,
        why: "give each Agent its DNS name, and check the Services http tools name",
    },
    ApiAccess {
        group: "",
        resource: "configmaps",
        verbs: CHILD_VERBS,
        resource_names: &[],
        scope: Scope::Watched,
        why: "write each runtime's configuration, and read systemPromptFrom",
    },
    ApiAccess {
        group: "",
        resource: "serviceaccounts",
        verbs: PRUNED_CHILD_VERBS,
        resource_names: &[],
        scope: Scope::Watched,
        why: "each Agent's pod identity (IRSA); removed when the Agent names an existing account",
    },
    ApiAccess {
        group: "policy",
        resource: "poddisruptionbudgets",
        verbs: PRUNED_CHILD_VERBS,
        resource_names: &[],
        scope: Scope::Watched,
        why: "keep Agents with several replicas serving through drains; removed at one replica",
    },
    ApiAccess {
        group: "events.k8s.io",
        resource: "events",
        verbs: &["create", "patch"],
        resource_names: &[],
        scope: Scope::Watched,
        why: "record Events on Agents",
    },
    ApiAccess {
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["get", "create", "update"],
        resource_names: &[],
        scope: Scope::Own,
        why: "leader election, so one replica reconciles at a time",
    },
    ApiAccess {
        group: "apiextensions.k8s.io",
        resource: "customresourcedefinitions",
        verbs: &["get", "list", "watch"],
        resource_names: &["agents.agentry.dev"],
        scope: Scope::Cluster,
        why: "wait until the Agent CRD is established",
    },
];

/// Whether `verb` on `group`/`resource` is declared.
pub fn declared(group: &str, resource: &str, verb: &str) -> bool {
    API_ACCESS
        .iter()
        .any(|a| a.group == group && a.resource == resource && a.verbs.contains(&verb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_resource_is_declared_once() {
        for (i, a) in API_ACCESS.iter().enumerate() {
            assert!(
                !API_ACCESS[i + 1..]
                    .iter()
                    .any(|b| b.group == a.group && b.resource == a.resource),
                "{}/{} declared twice",
                a.group,
                a.resource
            );
        }
    }

    #[test]
    fn secrets_are_never_needed() {
        assert!(!API_ACCESS.iter().any(|a| a.resource == "secrets"));
    }
}
