//! The Agentry API.
//!
//! This crate is the contract shared by the operator, the runtime, the Helm chart and users'
//! manifests: the `Agent` custom resource (`agentry.dev/v1alpha1`) and the generator of its
//! CustomResourceDefinition. Validation lives in the schema itself (types, bounds, patterns and
//! CEL rules), so the API server refuses an invalid Agent before any controller sees it.

pub mod agent;
pub mod config_builder;
pub mod crd;
pub mod limits;
pub mod memory;
pub mod model;
pub mod naming;
pub mod openapi;
pub mod runtime_config;
mod schema;
#[cfg(feature = "telemetry")]
pub mod telemetry;
pub mod tool;
#[cfg(feature = "validate")]
pub mod validate;
pub mod workload;

pub use agent::{Agent, AgentSpec, AgentStatus, KeyRef, SystemPromptSource};
pub use limits::{EffectiveLimits, Limits};
pub use memory::{Memory, MemoryUrlSource};
pub use model::{Guardrail, GuardrailTrace, ModelSpec};
pub use tool::{
    A2aTool, AgentToolRef, AwsSigV4, HeaderValueSource, HttpAuth, HttpHeader, HttpMethod, HttpTool,
    LambdaTool, McpTool, OpenApiDocumentSource, OpenApiTool, ServiceRef, SigV4Service, Tool,
    ToolKind,
};
pub use workload::ServiceAccountSpec;

/// The API group of every Agentry resource.
pub const API_GROUP: &str = "agentry.dev";
/// The served and stored API version.
pub const API_VERSION: &str = "v1alpha1";

/// An error and its whole chain of sources, on one line (`applying Deployment x: ApiError: ...`),
/// for logs, Events and exit messages of every Agentry binary.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
