//! The runtime configuration of a validated Agent (the conversion itself lives in
//! `agentry_crds::config_builder`, shared with the runtime's local mode).

use agentry_crds::config_builder::OpenApiOperations;
use agentry_crds::runtime_config::RuntimeConfig;

use crate::validate::ValidatedAgent;

pub use agentry_crds::config_builder::{header_env_name, secret_headers, service_url};

/// The runtime configuration of `agent`, with `system_prompt` and the ConfigMap-held OpenAPI
/// documents already resolved.
pub fn runtime_config(
    agent: &ValidatedAgent,
    system_prompt: &str,
    openapi: &OpenApiOperations,
) -> RuntimeConfig {
    agentry_crds::config_builder::runtime_config(
        &agent.name,
        &agent.namespace,
        &agent.spec,
        system_prompt,
        openapi,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::{WEATHER, validated};

    #[test]
    fn the_validated_agent_identity_goes_into_the_config() {
        let a = validated(WEATHER);
        let c = runtime_config(&a, "p", &OpenApiOperations::new());
        assert_eq!(
            (c.agent.name.as_str(), c.agent.namespace.as_str()),
            ("weather", "demo")
        );
        assert_eq!(c.system_prompt, "p");
    }
}
