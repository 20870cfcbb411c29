//! How an Agent's runtime pods run: their identity and image pull policy.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The Kubernetes ServiceAccount the runtime pods run as. It is the pod's AWS identity too:
/// annotate the account for IRSA, or associate it with an EKS Pod Identity.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!(has(self.name) && has(self.annotations))",
    "message": "set either name (to use an existing ServiceAccount) or annotations (for the ServiceAccount Agentry creates), not both",
}]))]
pub struct ServiceAccountSpec {
    /// Use this existing ServiceAccount instead of creating one. Agentry does not change it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: Option<String>,

    /// Annotations of the ServiceAccount Agentry creates for the Agent, for example
    /// `eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/my-agent` for IRSA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// When to pull the runtime image: `Always`, `IfNotPresent` or `Never`. Default: Kubernetes' own
/// default for the image tag.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ImagePullPolicy {
    /// Pull on every pod start.
    Always,
    /// Pull only when the image is not on the node.
    IfNotPresent,
    /// Never pull; the image must be on the node.
    Never,
}

impl ImagePullPolicy {
    /// The policy as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}
