//! The Agent's ConfigMap `<agent>-config`: the runtime configuration under one key.

use std::collections::BTreeMap;

use agentry_crds::runtime_config::{RUNTIME_CONFIG_KEY, RuntimeConfig};
use k8s_openapi::api::core::v1::ConfigMap;

use super::{child_meta, config_map_name};
use crate::validate::ValidatedAgent;

/// The ConfigMap holding `config` as JSON.
pub fn config_map(agent: &ValidatedAgent, config: &RuntimeConfig) -> ConfigMap {
    ConfigMap {
        metadata: child_meta(agent, config_map_name(&agent.name)),
        data: Some(BTreeMap::from([(
            RUNTIME_CONFIG_KEY.to_string(),
            config.to_json(),
        )])),
        ..ConfigMap::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::{WEATHER, validated};
    use crate::build::runtime_config::runtime_config;

    #[test]
    fn config_map_holds_the_runtime_config_the_runtime_can_parse() {
        let a = validated(WEATHER);
        let cm = config_map(
            &a,
            &runtime_config(&a, "prompt", &Default::default(), &Default::default()),
        );
        assert_eq!(cm.metadata.name.as_deref(), Some("weather-config"));
        assert_eq!(
            cm.metadata.owner_references.as_ref().unwrap()[0].uid,
            "7f3a-uid"
        );
        let text = &cm.data.unwrap()["config.json"];
        let parsed = RuntimeConfig::from_json(text).unwrap();
        assert_eq!(parsed.system_prompt, "prompt");
        assert_eq!(parsed.agent.namespace, "demo");
    }

    #[test]
    fn memory_reaches_the_config_as_the_url_variable_with_its_settings_and_no_secret_name() {
        let yaml = format!(
            "{WEATHER}  memory:\n    url: {{secretKeyRef: {{name: weather-store, key: url}}}}\n    \
             ttlSeconds: 3600\n    maxMessages: 50\n    approvalTimeoutSeconds: 900\n    caPem: \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"\n"
        );
        let a = validated(&yaml);
        let cm = config_map(
            &a,
            &runtime_config(&a, "prompt", &Default::default(), &Default::default()),
        );
        let text = &cm.data.unwrap()["config.json"];
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            json["memory"],
            serde_json::json!({
                "urlFromEnv": "AGENTRY_MEMORY_URL",
                "ttlSeconds": 3600,
                "maxMessages": 50,
                "approvalTimeoutSeconds": 900,
                "caPem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            })
        );
        assert!(!text.contains("weather-store"), "{text}");
        let parsed = RuntimeConfig::from_json(text).unwrap();
        let memory = parsed.memory.unwrap();
        assert_eq!(
            (memory.ttl_seconds, memory.approval_timeout_seconds),
            (3600, 900)
        );
    }

    #[test]
    fn an_agent_without_memory_gets_a_config_without_it() {
        let a = validated(WEATHER);
        let config = runtime_config(&a, "prompt", &Default::default(), &Default::default());
        let text = &config_map(&a, &config).data.unwrap()["config.json"];
        assert!(!text.contains("memory"), "{text}");
    }
}
