//! Step 2 of reconcile: pure functions from a validated Agent (and what `resolve` found) to the
//! children the operator applies. No client, no I/O: everything here is tested from YAML.

pub mod config_map;
pub mod deployment;
pub mod labels;
pub mod pdb;
pub mod runtime_config;
pub mod service;
pub mod service_account;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::validate::ValidatedAgent;

/// Port the runtime container listens on.
pub const RUNTIME_PORT: i32 = 8080;

/// Name of the Agent's ConfigMap.
pub fn config_map_name(agent_name: &str) -> String {
    format!("{agent_name}-config")
}

pub use agentry_crds::config_builder::agent_url;

/// Metadata of a child: its name, the Agent's namespace, Agentry's labels and the controller
/// owner reference (so deleting the Agent garbage-collects it).
pub fn child_meta(agent: &ValidatedAgent, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(agent.namespace.clone()),
        labels: Some(labels::labels(&agent.name)),
        owner_references: Some(vec![agent.owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// A stable 64-bit FNV-1a hash, hex-encoded. Stable across Rust releases (unlike
/// `DefaultHasher`), so upgrading the operator does not roll every Agent's pods.
pub fn stable_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Agents for builder tests.
    use agentry_crds::Agent;

    use crate::validate::{ValidatedAgent, validate};

    /// The issue's weather Agent, as read from the API server.
    pub const WEATHER: &str = r#"
apiVersion: agentry.dev/v1alpha1
kind: Agent
metadata: {name: weather, namespace: demo, uid: 7f3a-uid, generation: 2}
spec:
  model:
    id: us.anthropic.claude-3-7-sonnet-20250219-v1:0
    region: us-east-1
    maxTokens: 1024
    temperature: 0.2
  systemPrompt: You answer weather questions with the get_weather tool.
  tools:
    - name: get_weather
      description: Current weather for a city.
      http:
        service: {name: weather-api, port: 80, path: /v1/weather}
        method: POST
        timeoutSeconds: 10
        headers:
          - name: x-api-key
            valueFrom: {secretKeyRef: {name: weather-api, key: token}}
          - name: x-client
            value: agentry
        inputSchema:
          type: object
          properties: {city: {type: string}}
          required: [city]
    - name: ask_travel_agent
      description: Ask the travel agent about trips.
      agent: {name: travel}
  limits: {maxIterations: 8, maxTokensPerInvocation: 50000, timeoutSeconds: 60, toolTimeoutSeconds: 15, maxConcurrentInvocations: 32}
  replicas: 2
  serviceAccount:
    annotations: {eks.amazonaws.com/role-arn: "arn:aws:iam::111122223333:role/agentry-weather"}
"#;

    /// The smallest Agent.
    pub const MINIMAL: &str = r#"
apiVersion: agentry.dev/v1alpha1
kind: Agent
metadata: {name: hello, namespace: demo, uid: 11aa-uid, generation: 1}
spec:
  model: {id: anthropic.claude-3-haiku-20240307-v1:0}
  systemPrompt: Be brief.
  replicas: 1
"#;

    pub fn agent(yaml: &str) -> Agent {
        serde_yaml::from_str(yaml).unwrap()
    }

    pub fn validated(yaml: &str) -> ValidatedAgent {
        validate(&agent(yaml)).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_hash_is_fnv1a_and_changes_with_input() {
        // FNV-1a 64 of "a" is af63dc4c8601ec8c: a known vector, so the hash never drifts.
        assert_eq!(stable_hash(b"a"), "af63dc4c8601ec8c");
        assert_ne!(stable_hash(b"prompt 1"), stable_hash(b"prompt 2"));
    }

    #[test]
    fn agent_url_is_the_service_dns_name() {
        assert_eq!(
            agent_url("travel", "demo"),
            "http://travel.demo.svc.cluster.local"
        );
    }
}
