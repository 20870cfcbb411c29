//! The runtime configuration of a validated Agent (the conversion itself lives in
//! `agentry_crds::config_builder`, shared with the runtime's local mode).

use std::collections::BTreeMap;

use agentry_crds::config_builder::OpenApiOperations;
use agentry_crds::runtime_config::RuntimeConfig;

use crate::validate::ValidatedAgent;

pub use agentry_crds::config_builder::{header_env_name, secret_headers, service_url};

/// The runtime configuration of `agent`, with `system_prompt`, the ConfigMap-held OpenAPI
/// documents and the descriptions of agent tools that set none (`agent_tool_descriptions`, by
/// tool name: the named Agents' `spec.description`) already resolved.
pub fn runtime_config(
    agent: &ValidatedAgent,
    system_prompt: &str,
    openapi: &OpenApiOperations,
    agent_tool_descriptions: &BTreeMap<String, String>,
) -> RuntimeConfig {
    let mut spec = agent.spec.clone();
    for tool in &mut spec.tools {
        if tool.description.is_none() {
            tool.description = agent_tool_descriptions.get(&tool.name).cloned();
        }
    }
    agentry_crds::config_builder::runtime_config(
        &agent.name,
        &agent.namespace,
        &spec,
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
        let c = runtime_config(&a, "p", &OpenApiOperations::new(), &BTreeMap::new());
        assert_eq!(
            (c.agent.name.as_str(), c.agent.namespace.as_str()),
            ("weather", "demo")
        );
        assert_eq!(c.system_prompt, "p");
    }

    const CALLER: &str = "apiVersion: agentry.dev/v1alpha1\nkind: Agent\nmetadata: {name: desk, \
        namespace: demo, uid: u1}\nspec:\n  model: {id: m}\n  systemPrompt: p\n  tools:\n    \
        - name: ask_travel\n      agent: {name: travel}\n    - name: ask_weather\n      \
        description: Ask the weather agent.\n      agent: {name: weather}\n";

    #[test]
    fn an_agent_tool_without_a_description_takes_the_named_agents_and_its_own_wins() {
        let a = validated(CALLER);
        let found = BTreeMap::from([
            ("ask_travel".to_string(), "Plans trips.".to_string()),
            (
                "ask_weather".to_string(),
                "Not used: the tool has its own.".to_string(),
            ),
        ]);
        let c = runtime_config(&a, "p", &OpenApiOperations::new(), &found);
        assert_eq!(c.tools[0].description, "Plans trips.");
        assert_eq!(c.tools[1].description, "Ask the weather agent.");
    }

    #[test]
    fn an_agent_tool_whose_agent_has_no_description_gets_a_phrase_naming_the_agent() {
        let c = runtime_config(
            &validated(CALLER),
            "p",
            &OpenApiOperations::new(),
            &BTreeMap::new(),
        );
        assert!(
            c.tools[0]
                .description
                .starts_with("Ask the agent travel (namespace demo)"),
            "{}",
            c.tools[0].description
        );
    }
}
