//! Cluster suite: the local check of an Agent (`agentry_crds::validate`, what
//! `agentry-runtime --agent` runs before it serves) says what a real API server says. Every
//! case — each invalid Agent of `tests/fixtures/invalid-agents.yaml`, the typos of issue 8,
//! values of the wrong shape, floats in integer fields, nulls, metadata mistakes, and objects
//! the server accepts — is server-side applied (as `kubectl apply --server-side` does) and
//! checked locally, and the two lists of messages must be equal, in any order.
//!
//! What is normalised: the server's `Agent.agentry.dev "<name>" is invalid: ` prefix and its
//! `[a, b]` join (each cause is taken as `<field>: <message>`, and the joined message is checked
//! to be exactly those causes), and apply's `failed to create typed patch object (...): ` prefix
//! and its `errors:` list. Where a map holds several mistakes the server names only the first
//! one it meets, in random order, and the local check names them all: for those cases the
//! server's messages must be among the local ones.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use agentry_tests::cluster::{self, TestNamespace};
use agentry_tests::fixtures;
use agentry_tests::k8s::Cluster;
use serde_json::{Value, json};

/// A case: its name, whether it holds several mistakes in one map, and the Agent.
struct Case {
    name: String,
    several: bool,
    agent: Value,
}

fn base(name: &str) -> Value {
    json!({
        "apiVersion": "agentry.dev/v1alpha1", "kind": "Agent", "metadata": {"name": name},
        "spec": {
            "model": {"id": "anthropic.claude-3-haiku-20240307-v1:0"},
            "systemPrompt": "You help.",
            "tools": [{"name": "t", "description": "d", "http": {"url": "https://example.com"}}],
        },
    })
}

/// The base Agent with `edits` made.
fn edited(name: &str, edits: &[Edit<'_>]) -> Value {
    let mut agent = base(name);
    for (pointer, value) in edits {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let parent = agent
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("{name}: no {parent}"));
        match (parent, value) {
            (Value::Object(map), Some(v)) => {
                map.insert(key.to_string(), v.clone());
            }
            (Value::Object(map), None) => {
                map.remove(key);
            }
            // One past the end appends.
            (Value::Array(items), Some(v)) => match key.parse::<usize>().unwrap() {
                i if i == items.len() => items.push(v.clone()),
                i => items[i] = v.clone(),
            },
            _ => panic!("{name}: cannot edit {pointer}"),
        }
    }
    agent
}

/// A JSON pointer and the value to set there, or `None` to remove the field.
type Edit<'a> = (&'a str, Option<Value>);

fn set(pointer: &str, value: Value) -> Edit<'_> {
    (pointer, Some(value))
}

/// Cases beyond the fixture file, each found to behave as described on a kube-apiserver 1.36.
fn inline_cases() -> Vec<Case> {
    let tool = |extra: Value| {
        let mut t =
            json!({"name": "t", "description": "d", "http": {"url": "https://example.com"}});
        t.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        t
    };
    let long_name = "a".repeat(254);
    let cases: Vec<(&str, bool, Vec<Edit<'_>>)> = vec![
        // The typos of issue 8: refused by apply, naming the path.
        ("typo-maxtokkens", false, vec![set("/spec/model/maxTokkens", json!(5))]),
        ("typo-systempromt", false, vec![set("/spec/systemPromt", json!("x"))]),
        ("typo-tool-auth", false, vec![set("/spec/tools/0/http/auth", json!({"sigv4": true}))]),
        ("typo-metadata", false, vec![set("/metadata/lables", json!({"a": "b"}))]),
        ("typo-top-level", false, vec![set("/specs", json!({}))]),
        ("typo-env", false, vec![set("/spec/env", json!([{"name": "A", "valu": "b"}]))]),
        ("typo-header", false, vec![set("/spec/tools/0/http/headers", json!([{"name": "a", "value": "v", "valu": "x"}]))]),
        ("typo-in-two-tools", false, vec![set("/spec/tools", json!([tool(json!({"x1": 1})), tool(json!({"name": "u", "x2": 1}))]))]),
        // Values of the wrong shape: apply's messages, Go-formatted values included.
        ("string-for-int", false, vec![set("/spec/model/maxTokens", json!("5"))]),
        ("bool-for-int", false, vec![set("/spec/model/maxTokens", json!(true))]),
        ("list-for-int", false, vec![set("/spec/model/maxTokens", json!([1]))]),
        ("int-for-string", false, vec![set("/spec/systemPrompt", json!(5))]),
        ("float-for-string", false, vec![set("/spec/systemPrompt", json!(1.5))]),
        ("big-float-for-string", false, vec![set("/spec/systemPrompt", json!(1e21))]),
        ("list-for-string", false, vec![set("/spec/systemPrompt", json!([1, "x", {"a": null}]))]),
        ("map-for-string", false, vec![set("/spec/systemPrompt", json!({"b": {"c": 1}, "a": [true]}))]),
        ("list-for-map", false, vec![set("/spec/model", json!([1]))]),
        ("string-for-map", false, vec![set("/spec/model", json!("x"))]),
        ("map-for-list", false, vec![set("/spec/tools", json!({"a": 1}))]),
        ("string-for-bool", false, vec![set("/spec/envFrom", json!([{"configMapRef": {"name": "a", "optional": "yes"}}]))]),
        ("map-for-bool", false, vec![set("/spec/envFrom", json!([{"configMapRef": {"name": "a", "optional": {"a": [1, "x"]}}}]))]),
        ("int-label", false, vec![set("/metadata/labels", json!({"a": 1}))]),
        ("int-annotation-dotted-key", false, vec![set("/spec/serviceAccount", json!({"annotations": {"eks.amazonaws.com/role-arn": 5}}))]),
        ("string-input-schema", false, vec![set("/spec/tools/0/http/inputSchema", json!("x"))]),
        ("mistyped-then-undeclared", true, vec![set("/spec/model/id", json!(4)), set("/spec/model/zzz", json!(1))]),
        // Floats in integer fields, and floats in messages.
        ("fraction-for-int32", false, vec![set("/spec/model/maxTokens", json!(0.5))]),
        ("fraction-for-port", false, vec![set("/spec/tools/0/http", json!({"service": {"name": "s", "port": 1.5}}))]),
        ("port-beyond-int32", false, vec![set("/spec/tools/0/http", json!({"service": {"name": "s", "port": 3_000_000_000_u64}}))]),
        ("huge-float-for-int64", false, vec![set("/spec/limits", json!({"maxTokensPerInvocation": 1e21}))]),
        ("fraction-for-replicas", false, vec![set("/spec/replicas", json!(1.5))]),
        ("big-float-above-bound", false, vec![set("/spec/model/temperature", json!(1_234_567.5))]),
        ("small-float-below-bound", false, vec![set("/spec/model/temperature", json!(-0.00001))]),
        ("int-above-float-bound", false, vec![set("/spec/model/temperature", json!(2))]),
        ("two-bounds", false, vec![set("/spec/limits", json!({"maxIterations": 0, "timeoutSeconds": 0}))]),
        ("replicas-above-bound", false, vec![set("/spec/replicas", json!(5000))]),
        // Nulls, required fields, lengths and counts.
        ("null-model-id", false, vec![set("/spec/model/id", Value::Null)]),
        ("null-tool", false, vec![set("/spec/tools", json!([null]))]),
        ("null-spec", false, vec![set("/spec", Value::Null)]),
        ("null-in-nullable-enum", false, vec![set("/spec/imagePullPolicy", Value::Null)]),
        ("null-annotation-value", false, vec![set("/spec/serviceAccount", json!({"annotations": {"a": null}}))]),
        ("missing-model", false, vec![("/spec/model", None)]),
        ("missing-name-and-description", false, vec![set("/spec/tools/0", json!({"http": {"url": "https://e.com"}}))]),
        ("too-long", false, vec![set("/spec/tools/0/description", json!("é".repeat(4097)))]),
        ("too-many-tools", false, vec![set("/spec/tools", Value::Array((0..65).map(|i| json!({"name": format!("t{i}"), "description": "d", "http": {"url": "https://e.com"}})).collect()))]),
        ("empty-string-with-pattern", false, vec![set("/spec/tools/0/name", json!(""))]),
        ("escaped-characters-in-value", false, vec![set("/spec/tools/0/name", json!("a\"b\n\t\u{1}\u{200b}\u{a0}é"))]),
        ("int-or-string-float", false, vec![set("/spec/resources", json!({"limits": {"cpu": 1.5}}))]),
        ("int-or-string-map", false, vec![set("/spec/resources", json!({"limits": {"cpu": {"a": 1}}}))]),
        ("enum-and-cel", false, vec![set("/spec/tools/0/http/method", json!("FETCH")), set("/spec/tools/1", json!({"name": "t", "description": "d", "agent": {"name": "b"}}))]),
        ("bound-and-cel", false, vec![set("/spec/model/maxTokens", json!(0)), set("/spec/tools/1", json!({"name": "t", "description": "d", "agent": {"name": "b"}}))]),
        // metadata, which the API server checks itself.
        ("Bad_Name", false, vec![]),
        (&long_name, false, vec![]),
        ("bad-label-value", false, vec![set("/metadata/labels", json!({"a": "v!"}))]),
        ("long-label-value", false, vec![set("/metadata/labels", json!({"a": "v".repeat(64)}))]),
        ("label-key-with-two-slashes", false, vec![set("/metadata/labels", json!({"a/b/c": "v"}))]),
        ("label-key-without-name", false, vec![set("/metadata/labels", json!({"example.com/": "v"}))]),
        ("label-key-bad-prefix", false, vec![set("/metadata/labels", json!({"Bad_Prefix/name": "v"}))]),
        ("annotation-key-with-space", false, vec![set("/metadata/annotations", json!({"bad key": "v"}))]),
        // Accepted by both.
        ("integral-float-for-int", false, vec![set("/spec/model/maxTokens", json!(2.0))]),
        ("no-break-space-in-id", false, vec![set("/spec/model/id", json!("claude\u{a0}sonnet"))]),
        ("null-replicas-takes-the-default", false, vec![set("/spec/replicas", Value::Null)]),
        ("null-nullable-field", false, vec![set("/spec/model/maxTokens", Value::Null), set("/spec/systemPromptFrom", Value::Null)]),
        ("free-form-input-schema", false, vec![set("/spec/tools/0/http/inputSchema", json!({"type": "object", "x": [1, {"y": null}]}))]),
        ("dotted.name-ok", false, vec![]),
        // Several mistakes in one map: the server names one of them.
        ("two-typos-in-spec", true, vec![set("/spec/systemPromt", json!("x")), set("/spec/model/maxTokkens", json!(5))]),
        ("typos-and-types", true, vec![set("/spec/zeta", json!(1)), set("/spec/alpha", json!(2)), set("/spec/systemPrompt", json!(3)), set("/spec/model/id", json!(4))]),
    ];
    cases
        .into_iter()
        .map(|(name, several, edits)| Case {
            name: name.to_string(),
            several,
            agent: edited(name, &edits),
        })
        .collect()
}

/// The server's messages for applying `agent`; empty when it accepted it.
async fn server_messages(
    client: &kube::Client,
    ns: &str,
    agent: &Value,
) -> Result<Vec<String>, String> {
    let name = agent["metadata"]["name"].as_str().unwrap_or_default();
    let status = match cluster::apply_document(client, ns, agent).await {
        Ok(_) => return Ok(Vec::new()),
        Err(kube::Error::Api(status)) => status,
        Err(e) => return Err(format!("transport error: {e}")),
    };
    match status.code {
        422 => {
            let causes: Vec<String> = status
                .details
                .iter()
                .flat_map(|d| &d.causes)
                .map(|c| format!("{}: {}", c.field, c.message))
                .collect();
            let joined = match &causes[..] {
                [one] => one.clone(),
                many => format!("[{}]", many.join(", ")),
            };
            let expected = format!("Agent.agentry.dev \"{name}\" is invalid: {joined}");
            if status.message != expected {
                return Err(format!(
                    "the message is not its causes:\n  message: {}\n  causes:  {expected}",
                    status.message
                ));
            }
            Ok(causes)
        }
        500 => {
            let rest = status
                .message
                .strip_prefix("failed to create typed patch object (")
                .and_then(|m| m.split_once("): "))
                .map(|(_, rest)| rest)
                .ok_or_else(|| {
                    format!("500 that is not apply's typed check: {}", status.message)
                })?;
            Ok(match rest.strip_prefix("errors:\n") {
                Some(list) => list.lines().map(|l| l.trim().to_string()).collect(),
                None => vec![rest.to_string()],
            })
        }
        code => Err(format!("refused with {code}: {}", status.message)),
    }
}

#[tokio::test]
async fn the_local_check_of_an_agent_says_what_the_api_server_says() {
    let cluster = Cluster::shared();
    let client = cluster.client().await;
    cluster::install_agent_crd(&client)
        .await
        .expect("the CRD installs and is Established");
    let ns = TestNamespace::create(&client, "agentry-local-validation")
        .await
        .expect("test namespace");

    let mut cases: Vec<Case> = fixtures::invalid_agent_cases()
        .expect("cases load")
        .into_iter()
        .map(|c| Case {
            name: c.case,
            several: false,
            agent: c.agent,
        })
        .collect();
    let fixture_count = cases.len();
    cases.extend(inline_cases());
    assert!(
        fixture_count >= 20 && cases.len() >= 80,
        "only {} cases",
        cases.len()
    );

    let mut failures = Vec::new();
    let mut refused = 0;
    for case in &cases {
        let mut server = match server_messages(&client, &ns.name, &case.agent).await {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{}: {e}", case.name));
                continue;
            }
        };
        let mut local = agentry_crds::validate::agent(&case.agent);
        server.sort();
        local.sort();
        refused += usize::from(!server.is_empty());
        let same = if case.several {
            !server.is_empty() && server.iter().all(|m| local.contains(m))
        } else {
            server == local
        };
        if !same {
            failures.push(format!(
                "{}:\n  server: {server:#?}\n  local:  {local:#?}",
                case.name
            ));
        }
    }
    ns.delete().await;
    assert!(
        failures.is_empty(),
        "the local check differs from the API server:\n{}",
        failures.join("\n")
    );
    // The fixture cases and all but the accepted inline ones are refusals.
    assert!(refused >= cases.len() - 8, "only {refused} refusals");
}
