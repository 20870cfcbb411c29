//! The committed CRD is the generated one, and the API server would accept it: structural,
//! documented, CEL rules within budget, with the names, columns and subresources users rely on.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use agentry_crds::crd::{CRD_PATH, REGENERATE_COMMAND, agent_crd, agent_crd_yaml};
use serde_json::Value;

#[test]
fn committed_crd_matches_the_rust_types() {
    let path = support::repo_root().join(CRD_PATH);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = agent_crd_yaml().expect("the CRD serializes");
    assert!(
        committed == generated,
        "{CRD_PATH} is stale: it differs from the Agent types in crds/src.\n\
         Regenerate it from the repository root with:\n\n    {REGENERATE_COMMAND}\n"
    );
}

/// Visits every schema node with its path (`spec.tools[].name`).
fn walk(node: &Value, path: &str, visit: &mut dyn FnMut(&str, &Value)) {
    visit(path, node);
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            let p = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            walk(child, &p, visit);
        }
    }
    if let Some(items) = node.get("items") {
        walk(items, &format!("{path}[]"), visit);
    }
    if let Some(extra) = node.get("additionalProperties").filter(|a| a.is_object()) {
        walk(extra, &format!("{path}{{}}"), visit);
    }
}

#[test]
fn schema_is_structural() {
    let schema = support::agent_schema();
    let mut problems = Vec::new();
    let mut preserved = Vec::new();
    walk(&schema, "", &mut |path, node| {
        let int_or_string = node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
        let preserve = node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        if preserve {
            preserved.push(path.to_string());
        }
        if node.get("type").is_none() && !int_or_string && !preserve {
            problems.push(format!("{path}: no type"));
        }
        for banned in ["$ref", "oneOf", "allOf", "not", "definitions", "$defs"] {
            if node.get(banned).is_some() {
                problems.push(format!("{path}: uses {banned}"));
            }
        }
        // anyOf is allowed only as the int-or-string pattern, without types of its own inside.
        if let Some(any) = node.get("anyOf")
            && (!int_or_string
                || any
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|a| a.get("properties").is_some() || a.get("description").is_some()))
        {
            problems.push(format!("{path}: anyOf outside an int-or-string"));
        }
        if node.get("type") == Some(&Value::String("array".into())) && node.get("items").is_none() {
            problems.push(format!("{path}: array without items"));
        }
        if node.get("properties").is_some() && node.get("additionalProperties").is_some() {
            problems.push(format!("{path}: both properties and additionalProperties"));
        }
        // The server refuses a CRD whose defaults fail their own field's validation.
        if let Some(default) = node.get("default") {
            problems.extend(agentry_crds::validate::schema_value(node, default, path));
        }
    });
    assert!(
        problems.is_empty(),
        "non-structural schema:\n{}",
        problems.join("\n")
    );
    // Free-form JSON is meant in exactly one place: a tool's input JSON Schema.
    assert_eq!(
        preserved,
        vec![
            "spec.tools[].http.inputSchema".to_string(),
            "spec.tools[].lambda.inputSchema".to_string()
        ]
    );
}

#[test]
fn every_spec_and_status_field_has_a_description() {
    let schema = support::agent_schema();
    let mut missing = Vec::new();
    for top in ["spec", "status"] {
        walk(&schema["properties"][top], top, &mut |path, node| {
            let described = node
                .get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.trim().is_empty());
            // Array items and map values are described by their field.
            if !described && !path.ends_with("[]") && !path.ends_with("{}") {
                missing.push(path.to_string());
            }
        });
    }
    assert!(
        missing.is_empty(),
        "fields without a description:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_cel_rule_compiles_and_stays_within_the_api_server_cost_budget() {
    let schema = support::agent_schema();
    let mut rules = 0;
    let mut problems = Vec::new();
    walk(&schema, "", &mut |path, node| {
        let Some(list) = node
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
        else {
            return;
        };
        let compiled = kube_cel::compile_schema(node);
        for rule in list {
            rules += 1;
            let text = rule["rule"].as_str().expect("rule is a string");
            assert!(
                rule["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{path}: rule without message"
            );
            if let Err(e) = kube_cel::cel::Program::compile(text) {
                problems.push(format!("{path}: {text}: {e}"));
            }
            for warning in kube_cel::estimate_rule_cost(text, &compiled) {
                problems.push(format!("{path}: {text}: {}", warning.message));
            }
        }
    });
    assert!(
        problems.is_empty(),
        "CEL problems:\n{}",
        problems.join("\n")
    );
    // spec (system prompt, no env entry named like the memory URL's variable, approval only
    // with memory), tools (unique
    // names), tool (one kind, a description unless an agent tool), http (url or service, signed
    // headers), http header, http auth, lambda (qualifier, region), openapi (url or service,
    // signed headers), openapi document, openapi header, openapi auth, mcp (url or service,
    // transport headers), mcp header, a2a (url or service), serviceAccount, memory (approval
    // timeout within the session ttl), memory.caPem (a certificate, no private key).
    assert_eq!(rules, 25, "expected the 25 documented CEL rules");
}

#[test]
fn crd_declares_names_columns_and_subresources_users_rely_on() {
    let crd = agent_crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("agents.agentry.dev"));
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.short_names, Some(vec!["ag".to_string()]));
    assert_eq!(crd.spec.names.categories, Some(vec!["agentry".to_string()]));
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    let columns: Vec<&str> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(columns, ["Model", "Ready", "Replicas", "Endpoint", "Age"]);
    let sub = version.subresources.as_ref().expect("subresources");
    assert!(sub.status.is_some(), "status subresource");
    let scale = sub.scale.as_ref().expect("scale subresource");
    assert_eq!(scale.spec_replicas_path, ".spec.replicas");
    assert_eq!(scale.status_replicas_path, ".status.replicas");
    assert_eq!(
        scale.label_selector_path.as_deref(),
        Some(".status.selector")
    );
}

#[test]
fn conditions_are_a_list_map_keyed_by_type() {
    let schema = support::agent_schema();
    let conditions = &schema["properties"]["status"]["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(
        conditions["x-kubernetes-list-map-keys"],
        serde_json::json!(["type"])
    );
    let required = conditions["items"]["required"]
        .as_array()
        .expect("required");
    assert!(required.contains(&Value::String("type".into())));
}

#[test]
fn replicas_defaults_to_one_on_the_server_so_the_scale_subresource_always_finds_it() {
    let schema = support::agent_schema();
    assert_eq!(
        schema["properties"]["spec"]["properties"]["replicas"]["default"],
        1
    );
}
