//! The `Agent` custom resource: one Claude agent, its tools and limits, and how its pods run.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvFromSource, EnvVar, LocalObjectReference, ResourceRequirements, Toleration,
    TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits::{EffectiveLimits, Limits};
use crate::memory::Memory;
use crate::model::ModelSpec;
use crate::tool::Tool;
use crate::workload::{ImagePullPolicy, ServiceAccountSpec};

/// Desired state of an Agent.
// clippy reads the repeated `type_ = ..` of the printcolumns as duplicated attributes; they are
// arguments of separate columns.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "agentry.dev",
    version = "v1alpha1",
    kind = "Agent",
    plural = "agents",
    namespaced,
    shortname = "ag",
    category = "agentry",
    status = "AgentStatus",
    derive = "PartialEq",
    doc = "An Agent is a Claude agent on Amazon Bedrock, served over HTTP inside the cluster at http://<name>.<namespace>.svc.cluster.local. Agentry runs it as a Deployment of runtime pods that execute the Claude tool-use loop with the tools listed in the spec.",
    printcolumn(
        name = "Model",
        type_ = "string",
        json_path = ".spec.model.id",
        description = "Bedrock model id or inference profile"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the Agent serves requests"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "Runtime pods ready to serve"
    ),
    printcolumn(
        name = "Endpoint",
        type_ = "string",
        json_path = ".status.endpoint",
        description = "In-cluster URL of the Agent"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.systemPrompt) != has(self.systemPromptFrom)",
    "message": "set exactly one of systemPrompt (inline text) or systemPromptFrom (a ConfigMap key)",
}, {
    "rule": "!has(self.memory) || !has(self.env) || self.env.all(e, e.name != 'AGENTRY_MEMORY_URL')",
    "message": "spec.env sets AGENTRY_MEMORY_URL, which Agentry fills from spec.memory.url.secretKeyRef: remove that env entry (put the store's URL in the Secret spec.memory.url names)",
}, {
    "rule": "has(self.memory) || !has(self.tools) || self.tools.all(t, !has(t.approval) || t.approval != 'Required')",
    "message": "a tool with approval: Required needs spec.memory: approvals need spec.memory, where the turn waiting for a decision is kept (set spec.memory, or remove approval)",
}]))]
pub struct AgentSpec {
    /// What the Agent does, in a sentence or a paragraph, for other agents and people (at most
    /// 1024 characters). It is the description of the Agent's A2A agent card and of its MCP
    /// tool, and the default description of an `agent` tool naming this Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub description: Option<String>,

    /// The Bedrock model and its inference settings.
    pub model: ModelSpec,

    /// The system prompt, inline. Set this or `systemPromptFrom`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 262144))]
    pub system_prompt: Option<String>,

    /// Take the system prompt from a ConfigMap key in the Agent's namespace. Set this or
    /// `systemPrompt`, not both. A change to the ConfigMap rolls the Agent's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt_from: Option<SystemPromptSource>,

    /// Tools Claude may call (at most 64, names unique).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.all(t, self.exists_one(u, u.name == t.name))",
        "message": "tool names must be unique",
    }]))]
    pub tools: Vec<Tool>,

    /// Per-invocation limits. Unset limits take the defaults given in each field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,

    /// Sessions: the runtime keeps each conversation, by the `sessionId` a client sends, in a
    /// Redis-compatible store shared by all replicas (Redis, Valkey, Amazon ElastiCache with
    /// cluster mode disabled; cluster mode, so MemoryDB, is not supported). Unset: the Agent is
    /// stateless and a `sessionId` is refused. With it, `spec.env` may not set
    /// `AGENTRY_MEMORY_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,

    /// Number of runtime pods (0 to 1000). Default 1. `kubectl scale` and HorizontalPodAutoscalers
    /// set it through the scale subresource.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,

    /// CPU and memory requests and limits of the runtime container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Runtime container image. Default: the image the operator was installed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^\S+$"))]
    pub image: Option<String>,

    /// When to pull the runtime image: `Always`, `IfNotPresent` or `Never`. Default: Kubernetes'
    /// own default for the image tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// Secrets used to pull the runtime image from a private registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,

    /// Extra environment variables of the runtime container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,

    /// Extra environment of the runtime container, taken from ConfigMaps or Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_from: Option<Vec<EnvFromSource>>,

    /// The ServiceAccount of the runtime pods, which is also their AWS identity (IRSA or EKS Pod
    /// Identity). Default: Agentry creates one named after the Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<ServiceAccountSpec>,

    /// Node labels the runtime pods must be scheduled on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,

    /// Tolerations of the runtime pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,

    /// Affinity rules of the runtime pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// How the runtime pods spread across zones or nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,

    /// PriorityClass of the runtime pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub priority_class_name: Option<String>,

    /// Extra labels of the runtime pods. Agentry's own labels win on a clash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_labels: Option<BTreeMap<String, String>>,

    /// Extra annotations of the runtime pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_annotations: Option<BTreeMap<String, String>>,
}

fn default_replicas() -> i32 {
    1
}

/// Where the system prompt comes from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemPromptSource {
    /// A key of a ConfigMap in the Agent's namespace.
    pub config_map_key_ref: KeyRef,
}

/// A key of a ConfigMap or Secret in the Agent's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyRef {
    /// Name of the ConfigMap or Secret.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,

    /// The key within it.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// Observed state of an Agent, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    /// The `metadata.generation` of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Current state: `Ready` (the Agent serves requests), `ToolsResolved` (every tool's target
    /// and the system prompt source exist), `Progressing` and `Degraded` (from the runtime
    /// Deployment), and `Reconciling` and `Stalled` (the kstatus convention that Flux, kpt and
    /// cli-utils read; abnormal when True).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// In-cluster URL of the Agent, `http://<name>.<namespace>.svc.cluster.local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,

    /// Runtime pods that exist (for the scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,

    /// Runtime pods ready to serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,

    /// Label selector of the runtime pods, in string form (for the scale subresource and
    /// HorizontalPodAutoscalers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

impl AgentSpec {
    /// The limits with defaults applied.
    pub fn effective_limits(&self) -> EffectiveLimits {
        Limits::effective(self.limits.as_ref())
    }
}
