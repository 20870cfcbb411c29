//! Each invalid Agent in `tests/fixtures/invalid-agents.yaml` is refused by the generated schema
//! and its CEL rules, with a message naming the field and what is allowed. The cluster suite
//! sends the same cases to a real API server.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Case {
    case: String,
    expect: Vec<String>,
    agent: Value,
}

fn cases() -> Vec<Case> {
    let path = support::repo_root().join("tests/fixtures/invalid-agents.yaml");
    let text = std::fs::read_to_string(path).expect("fixture exists");
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Case::deserialize(doc).expect("a case"))
        .collect()
}

#[test]
fn every_invalid_agent_is_refused_with_a_message_naming_the_field() {
    let cases = cases();
    assert!(cases.len() >= 15, "only {} cases", cases.len());
    for case in cases {
        let errors = agentry_crds::validate::agent(&case.agent);
        assert!(
            !errors.is_empty(),
            "{}: accepted, should be refused",
            case.case
        );
        let joined = errors.join("\n");
        assert!(
            errors
                .iter()
                .any(|e| case.expect.iter().all(|want| e.contains(want.as_str()))),
            "{}: no error contains all of {:?}; got:\n{joined}",
            case.case,
            case.expect
        );
    }
}

#[test]
fn each_invalid_case_differs_from_a_valid_agent_only_in_what_it_breaks() {
    // The base every case is built from is itself valid, so each refusal is the case's own.
    let mut base = cases().remove(0).agent;
    base["spec"].as_object_mut().unwrap().remove("tools");
    assert_eq!(agentry_crds::validate::agent(&base), Vec::<String>::new());
}

#[test]
fn an_unknown_field_is_refused_like_server_side_apply_does() {
    let mut agent = cases().remove(0).agent;
    agent["spec"].as_object_mut().unwrap().remove("tools");
    agent["spec"]["systemPromt"] = "typo".into();
    let errors = agentry_crds::validate::agent(&agent);
    assert!(
        errors
            .iter()
            .any(|e| e.contains(".spec.systemPromt: field not declared in schema")),
        "{errors:?}"
    );
}

/// A valid Agent with one http tool, for the tests below to break.
fn one_tool_agent() -> Value {
    serde_json::json!({
        "apiVersion": "agentry.dev/v1alpha1", "kind": "Agent", "metadata": {"name": "x"},
        "spec": {
            "model": {"id": "anthropic.claude-3-haiku-20240307-v1:0"},
            "systemPrompt": "You help.",
            "tools": [{"name": "t", "description": "d", "http": {"url": "https://example.com"}}],
        },
    })
}

fn with_duplicate_tool(mut agent: Value) -> Value {
    let tool = serde_json::json!({"name": "t", "description": "d", "agent": {"name": "b"}});
    agent["spec"]["tools"].as_array_mut().unwrap().push(tool);
    agent
}

// The expected messages below are what a kube-apiserver 1.36 answered to server-side apply of
// the same objects.

#[test]
fn a_value_of_the_wrong_shape_is_all_the_server_reports_as_apply_stops_there() {
    let mut agent = with_duplicate_tool(one_tool_agent());
    agent["spec"]["model"]["maxTokens"] = "5".into();
    assert_eq!(
        agentry_crds::validate::agent(&agent),
        [".spec.model.maxTokens: expected numeric (int or float), got string"]
    );
}

#[test]
fn a_bound_error_still_lets_the_cel_rules_run() {
    let mut agent = with_duplicate_tool(one_tool_agent());
    agent["spec"]["model"]["maxTokens"] = 0.into();
    assert_eq!(
        agentry_crds::validate::agent(&agent),
        [
            "spec.model.maxTokens: Invalid value: 0: spec.model.maxTokens in body should be greater than or equal to 1",
            "spec.tools: Invalid value: tool names must be unique",
        ]
    );
}

#[test]
fn an_enum_error_stops_the_cel_rules_with_the_servers_note_saying_so() {
    let mut agent = with_duplicate_tool(one_tool_agent());
    agent["spec"]["tools"][0]["http"]["method"] = "FETCH".into();
    assert_eq!(
        agentry_crds::validate::agent(&agent),
        [
            "spec.tools[0].http.method: Unsupported value: \"FETCH\": supported values: \"GET\", \"POST\", \"PUT\", \"PATCH\", \"DELETE\"",
            "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
        ]
    );
}

#[test]
fn a_float_in_an_integer_field_is_refused_on_its_format_and_an_integral_one_accepted() {
    let mut agent = one_tool_agent();
    agent["spec"]["model"]["maxTokens"] = 2.0.into();
    assert_eq!(agentry_crds::validate::agent(&agent), Vec::<String>::new());
    agent["spec"]["tools"][0]["http"] = serde_json::json!({"service": {"name": "s", "port": 1.5}});
    let errors = agentry_crds::validate::agent(&agent);
    assert!(
        errors.contains(&"spec.tools[0].http.service.port: Invalid value: \"float64\": spec.tools[0].http.service.port in body must be of type int32: \"float64\"".to_string())
            && errors.contains(&"<nil>: Invalid value: \"\": Checked value must be of type integer with format int32 in spec.tools[0].http.service.port".to_string()),
        "{errors:?}"
    );
}

#[test]
fn metadata_is_checked_as_the_server_checks_it() {
    let mut agent = one_tool_agent();
    agent["metadata"]["name"] = "Bad_Name".into();
    agent["metadata"]["labels"] = serde_json::json!({"team": "a b"});
    let errors = agentry_crds::validate::agent(&agent);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with(
        "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of"
    ));
    assert!(errors[1].starts_with("metadata.labels: Invalid value: \"a b\": a valid label must be an empty string or consist of"));
    agent["metadata"]["lables"] = serde_json::json!({});
    assert_eq!(
        agentry_crds::validate::agent(&agent),
        [".metadata.lables: field not declared in schema"]
    );
}

#[test]
fn defaults_apply_as_on_the_server_and_the_status_is_dropped() {
    let mut agent = one_tool_agent();
    agent["spec"]["replicas"] = Value::Null;
    agent["status"] = serde_json::json!({"replicas": 3});
    assert_eq!(agentry_crds::validate::agent(&agent), Vec::<String>::new());
    let stored = agentry_crds::validate::defaulted(&agent);
    assert_eq!(stored["spec"]["replicas"], 1);
    assert!(stored.get("status").is_none());
}
