//! Tests of the parent module.

use super::*;
use crate::{Agent, HttpMethod};

const WEATHER: &str = r#"
apiVersion: agentry.dev/v1alpha1
kind: Agent
metadata: {name: weather, namespace: demo}
spec:
  model: {id: us.anthropic.claude-3-7-sonnet-20250219-v1:0, maxTokens: 1024}
  systemPrompt: You answer weather questions.
  tools:
    - name: get_weather
      description: Current weather for a city.
      http:
        service: {name: weather-api, port: 80, path: /v1/weather}
        timeoutSeconds: 10
        headers:
          - name: x-api-key
            valueFrom: {secretKeyRef: {name: weather-api, key: token}}
          - name: x-client
            value: agentry
        inputSchema: {type: object, properties: {city: {type: string}}, required: [city]}
    - name: ask_travel_agent
      description: Ask the travel agent about trips.
      agent: {name: travel}
  limits: {timeoutSeconds: 60}
"#;

fn spec(yaml: &str) -> AgentSpec {
    serde_yaml::from_str::<Agent>(yaml).unwrap().spec
}

fn weather() -> RuntimeConfig {
    runtime_config(
        "weather",
        "demo",
        &spec(WEATHER),
        "prompt",
        &OpenApiOperations::new(),
    )
}

#[test]
fn a2a_tool_service_resolves_to_its_cluster_dns_base_url_and_default_timeout() {
    let yaml = WEATHER.replace(
        "      agent: {name: travel}",
        "      a2a: {service: {name: kagent-controller, namespace: kagent, port: 8083, \
             path: /api/a2a/kagent/k8s-agent/}}",
    );
    let c = runtime_config(
        "weather",
        "demo",
        &spec(&yaml),
        "p",
        &OpenApiOperations::new(),
    );
    let ToolKindConfig::A2a(a) = &c.tools[1].kind else {
        panic!("{:?}", c.tools[1].kind)
    };
    assert_eq!(
        a.url,
        "http://kagent-controller.kagent.svc.cluster.local:8083/api/a2a/kagent/k8s-agent/"
    );
    assert_eq!(
        a.timeout_seconds,
        spec(WEATHER).effective_limits().tool_timeout_seconds
    );
}

#[test]
fn the_description_is_carried_into_the_config_and_absent_when_unset() {
    assert_eq!(weather().agent.description, None);
    let mut s = spec(WEATHER);
    s.description = Some("Answers weather questions.".into());
    let c = runtime_config("weather", "demo", &s, "p", &OpenApiOperations::new());
    assert_eq!(
        c.agent.description.as_deref(),
        Some("Answers weather questions.")
    );
}

#[test]
fn service_tool_resolves_to_its_cluster_dns_url_with_port_and_path() {
    let ToolKindConfig::Http(http) = &weather().tools[0].kind else {
        panic!()
    };
    assert_eq!(
        http.url,
        "http://weather-api.demo.svc.cluster.local:80/v1/weather"
    );
    assert_eq!(http.method, HttpMethod::Post);
    assert_eq!(http.timeout_seconds, 10);
    assert_eq!(http.input_schema["required"], serde_json::json!(["city"]));
}

#[test]
fn tool_referring_to_another_agent_resolves_to_its_service_dns_name() {
    let ToolKindConfig::Agent(other) = &weather().tools[1].kind else {
        panic!()
    };
    assert_eq!(other.url, "http://travel.demo.svc.cluster.local");
    assert_eq!(
        other.timeout_seconds, 60,
        "another agent gets the invocation deadline"
    );
}

#[test]
fn secret_header_is_named_by_environment_variable_never_by_value() {
    let ToolKindConfig::Http(http) = &weather().tools[0].kind else {
        panic!()
    };
    assert_eq!(
        http.headers[0].value_from_env.as_deref(),
        Some("AGENTRY_TOOL0_HEADER0")
    );
    assert_eq!(http.headers[0].value, None);
    assert_eq!(http.headers[1].value.as_deref(), Some("agentry"));
    let secrets = secret_headers(&spec(WEATHER));
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].0, "AGENTRY_TOOL0_HEADER0");
    assert_eq!(
        (secrets[0].1.name.as_str(), secrets[0].1.key.as_str()),
        ("weather-api", "token")
    );
}

const MCP: &str = r#"
apiVersion: agentry.dev/v1alpha1
kind: Agent
metadata: {name: ops, namespace: demo}
spec:
  model: {id: us.anthropic.claude-3-7-sonnet-20250219-v1:0}
  systemPrompt: You run operations.
  limits: {toolTimeoutSeconds: 20}
  tools:
    - name: search
      description: Search.
      http: {url: "https://api.example.com/search"}
    - name: k8s
      description: Kubernetes tools.
      mcp:
        service: {name: kagent-tools, namespace: kagent, port: 8084, path: /mcp}
        allowedTools: [k8s_get_resources, k8s.describe]
        timeoutSeconds: 45
        headers:
          - name: authorization
            valueFrom: {secretKeyRef: {name: kagent-token, key: bearer}}
          - name: x-team
            value: ops
    - name: clock
      description: Time.
      mcp: {url: "http://clock.example.com/mcp"}
"#;

#[test]
fn mcp_tool_resolves_its_service_headers_and_timeout() {
    let c = runtime_config("ops", "demo", &spec(MCP), "p", &OpenApiOperations::new());
    let ToolKindConfig::Mcp(k8s) = &c.tools[1].kind else {
        panic!()
    };
    assert_eq!(
        k8s.url,
        "http://kagent-tools.kagent.svc.cluster.local:8084/mcp"
    );
    assert_eq!(k8s.allowed_tools, ["k8s_get_resources", "k8s.describe"]);
    assert_eq!(k8s.timeout_seconds, 45);
    assert_eq!(
        k8s.headers[0].value_from_env.as_deref(),
        Some("AGENTRY_TOOL1_HEADER0")
    );
    assert_eq!(k8s.headers[0].value, None);
    assert_eq!(k8s.headers[1].value.as_deref(), Some("ops"));
    let ToolKindConfig::Mcp(clock) = &c.tools[2].kind else {
        panic!()
    };
    assert_eq!(clock.url, "http://clock.example.com/mcp");
    assert_eq!(clock.timeout_seconds, 20, "the Agent's toolTimeoutSeconds");
    assert!(clock.allowed_tools.is_empty() && clock.headers.is_empty());
    let secrets = secret_headers(&spec(MCP));
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].0, "AGENTRY_TOOL1_HEADER0");
    assert_eq!(secrets[0].1.name, "kagent-token");
}

#[test]
fn limits_and_model_defaults_are_applied_in_the_config_not_the_spec() {
    let s = spec(WEATHER);
    let c = runtime_config("weather", "demo", &s, "p", &OpenApiOperations::new());
    assert_eq!(c.model.max_tokens, 1024);
    assert_eq!(c.limits.max_iterations, 10);
    assert_eq!(
        s.limits.as_ref().unwrap().max_iterations,
        None,
        "the spec is left as written"
    );
}

#[test]
fn service_in_another_namespace_and_default_port_and_path() {
    let svc = ServiceRef {
        name: "api".into(),
        namespace: Some("tools".into()),
        port: None,
        path: None,
    };
    assert_eq!(
        service_url(&svc, "demo"),
        "http://api.tools.svc.cluster.local:80/"
    );
}

#[test]
fn input_schema_defaults_to_an_empty_object_schema() {
    let yaml = WEATHER.replace("        inputSchema: {type: object, properties: {city: {type: string}}, required: [city]}\n", "");
    let c = runtime_config(
        "weather",
        "demo",
        &spec(&yaml),
        "p",
        &OpenApiOperations::new(),
    );
    let ToolKindConfig::Http(http) = &c.tools[0].kind else {
        panic!()
    };
    assert_eq!(
        http.input_schema,
        serde_json::json!({"type": "object", "properties": {}})
    );
}

#[test]
fn memory_names_the_url_variable_never_the_secret_and_applies_its_defaults() {
    let c = runtime_config(
        "weather",
        "demo",
        &spec(WEATHER),
        "p",
        &OpenApiOperations::new(),
    );
    assert_eq!(c.memory, None, "no spec.memory: stateless");
    let yaml = format!(
        "{WEATHER}  memory:\n    url: {{secretKeyRef: {{name: weather-store, key: url}}}}\n    maxMessages: 40\n    maxContextTokens: 150000\n"
    );
    let c = runtime_config(
        "weather",
        "demo",
        &spec(&yaml),
        "p",
        &OpenApiOperations::new(),
    );
    assert_eq!(
        c.memory,
        Some(MemoryConfig {
            url_from_env: "AGENTRY_MEMORY_URL".into(),
            ttl_seconds: 86_400,
            max_messages: 40,
            ca_pem: None,
            max_context_tokens: Some(150_000),
            approval_timeout_seconds: 3_600,
        })
    );
    assert!(!c.to_json().contains("weather-store"), "{}", c.to_json());
}

#[test]
fn memory_approval_timeout_reaches_the_runtime_config_and_defaults_to_an_hour() {
    let with = |extra: &str| {
        let yaml = format!(
            "{WEATHER}  memory:\n    url: {{secretKeyRef: {{name: weather-store, key: url}}}}\n{extra}"
        );
        runtime_config(
            "weather",
            "demo",
            &spec(&yaml),
            "p",
            &OpenApiOperations::new(),
        )
        .memory
        .map(|m| m.approval_timeout_seconds)
    };
    assert_eq!(with("    approvalTimeoutSeconds: 900\n"), Some(900));
    assert_eq!(with(""), Some(3_600));
}

#[test]
fn a_tool_with_approval_required_is_marked_in_the_config_and_the_others_are_not() {
    let yaml = WEATHER.replace(
        "      agent: {name: travel}",
        "      agent: {name: travel}\n      approval: Required",
    );
    let mut s = spec(&yaml);
    assert_eq!(s.tools[1].approval, Some(crate::tool::Approval::Required));
    s.tools[0].approval = Some(crate::tool::Approval::None);
    let c = runtime_config("weather", "demo", &s, "prompt", &OpenApiOperations::new());
    let marked: Vec<(&str, bool)> = c
        .tools
        .iter()
        .map(|t| (t.name.as_str(), t.approval_required))
        .collect();
    assert_eq!(marked, [("get_weather", false), ("ask_travel_agent", true)]);
    // Only a marked tool says so in the configuration the runtime reads.
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(json.matches("\"approvalRequired\":true").count(), 1);
    assert!(!json.contains("\"approvalRequired\":false"));
}
