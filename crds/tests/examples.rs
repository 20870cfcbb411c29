//! Every manifest in `examples/` is a valid Agent: it deserializes into the Rust types without
//! losing a field, and passes the generated schema's structural checks and CEL rules.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use agentry_crds::{Agent, ToolKind};
use serde::Deserialize;
use serde_json::Value;

/// Every YAML document of every file in `examples/`, with the file it came from.
fn example_documents() -> Vec<(String, Value)> {
    let dir = support::repo_root().join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable example");
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc).expect("example is valid YAML");
            if !value.is_null() {
                docs.push((file.display().to_string(), value));
            }
        }
    }
    docs
}

fn agents() -> Vec<(String, Value)> {
    example_documents()
        .into_iter()
        .filter(|(_, v)| v["kind"] == "Agent")
        .collect()
}

#[test]
fn examples_hold_at_least_a_minimal_an_http_tool_and_an_agent_pair() {
    let agents: Vec<Agent> = agents()
        .into_iter()
        .map(|(_, v)| serde_json::from_value(v).expect("an Agent"))
        .collect();
    assert!(agents.len() >= 4, "found {} example Agents", agents.len());
    assert!(
        agents.iter().any(|a| a.spec.tools.is_empty()),
        "a minimal Agent"
    );
    let kinds: Vec<ToolKind<'_>> = agents
        .iter()
        .flat_map(|a| a.spec.tools.iter())
        .map(|t| t.kind().expect("one kind"))
        .collect();
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, ToolKind::Http(h) if h.service.is_some()))
    );
    assert!(kinds.iter().any(|k| matches!(k, ToolKind::Agent(_))));
    // The agent tools point at Agents the examples define.
    for agent_ref in kinds.iter().filter_map(|k| match k {
        ToolKind::Agent(a) => Some(a),
        _ => None,
    }) {
        assert!(
            agents
                .iter()
                .any(|a| a.metadata.name.as_deref() == Some(agent_ref.name.as_str())),
            "agent tool {} names an Agent no example defines",
            agent_ref.name
        );
    }
}

#[test]
fn every_example_agent_round_trips_through_the_rust_types_without_losing_a_field() {
    for (file, value) in agents() {
        let agent: Agent = serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("{file}: not an Agent: {e}"));
        let back = serde_json::to_value(&agent).expect("serializes");
        // The server fills replicas: 1 when unset; everything else must come back unchanged.
        let mut expected = value.clone();
        if expected["spec"].get("replicas").is_none() {
            expected["spec"]["replicas"] = 1.into();
        }
        assert_eq!(
            back, expected,
            "{file}: {:?} changed in a round trip",
            agent.metadata.name
        );
    }
}

#[test]
fn every_example_agent_passes_the_schema_and_its_cel_rules() {
    for (file, value) in agents() {
        let errors = agentry_crds::validate::agent(&value);
        assert!(
            errors.is_empty(),
            "{file}: {:?} refused:\n{}",
            value["metadata"]["name"],
            errors.join("\n")
        );
    }
}

#[test]
fn other_example_documents_are_kubernetes_objects_the_agents_need() {
    for (file, value) in example_documents()
        .into_iter()
        .filter(|(_, v)| v["kind"] != "Agent")
    {
        assert_eq!(value["kind"], "ConfigMap", "{file}: unexpected kind");
        let _: k8s_openapi::api::core::v1::ConfigMap =
            serde_json::from_value(value).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

#[test]
fn the_api_contract_example_reads_into_the_documented_fields() {
    let agent: Agent = serde_yaml::from_str(CONTRACT).expect("the contract example parses");
    let errors = agentry_crds::validate::agent(&serde_json::to_value(&agent).unwrap());
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let spec = &agent.spec;
    assert_eq!(
        spec.model.id,
        "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
    );
    assert_eq!(spec.model.region.as_deref(), Some("us-east-1"));
    assert_eq!(spec.model.max_tokens, Some(1024));
    assert_eq!(spec.model.temperature, Some(0.2));
    let Some(ToolKind::Http(http)) = spec.tools[0].kind() else {
        panic!("http tool")
    };
    let svc = http.service.as_ref().expect("service");
    assert_eq!(
        (svc.name.as_str(), svc.port, svc.path.as_deref()),
        ("weather-api", Some(80), Some("/v1/weather"))
    );
    assert_eq!(http.timeout_seconds, Some(10));
    let from = http.headers[0].value_from.as_ref().expect("valueFrom");
    assert_eq!(
        (
            from.secret_key_ref.name.as_str(),
            from.secret_key_ref.key.as_str()
        ),
        ("weather-api", "token")
    );
    assert_eq!(
        http.input_schema.as_ref().unwrap()["required"],
        serde_json::json!(["city"])
    );
    let Some(ToolKind::Agent(other)) = spec.tools[1].kind() else {
        panic!("agent tool")
    };
    assert_eq!(
        (other.name.as_str(), other.namespace.as_deref()),
        ("travel", None)
    );
    let limits = spec.effective_limits();
    assert_eq!(
        (
            limits.max_iterations,
            limits.max_tokens_per_invocation,
            limits.timeout_seconds,
            limits.tool_timeout_seconds,
            limits.max_concurrent_invocations
        ),
        (8, 50_000, 60, 15, 32)
    );
    assert_eq!(spec.replicas, 2);
    let sa = spec.service_account.as_ref().expect("serviceAccount");
    assert_eq!(
        sa.annotations.as_ref().unwrap()["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::111122223333:role/agentry-weather"
    );
}

/// The example from the foundation issue, verbatim: its field names are the API contract.
const CONTRACT: &str = r#"
apiVersion: agentry.dev/v1alpha1
kind: Agent
metadata:
  name: weather
  namespace: demo
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
