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
        let errors = support::validate(&case.agent);
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
    assert_eq!(support::validate(&base), Vec::<String>::new());
}

#[test]
fn an_unknown_field_is_refused_like_server_side_apply_does() {
    let mut agent = cases().remove(0).agent;
    agent["spec"].as_object_mut().unwrap().remove("tools");
    agent["spec"]["systemPromt"] = "typo".into();
    let errors = support::validate(&agent);
    assert!(
        errors
            .iter()
            .any(|e| e.contains(".spec.systemPromt: field not declared in schema")),
        "{errors:?}"
    );
}
