//! The forms of the AWS-native tool fields the schema accepts: every way AWS itself lets a
//! function be named, and SigV4 auth on http and openapi tools. (The refused forms are cases in
//! `tests/fixtures/invalid-agents.yaml`.)

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{Value, json};

fn agent(tool: Value) -> Value {
    json!({
        "apiVersion": "agentry.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": "forms"},
        "spec": {
            "model": {"id": "us.anthropic.claude-3-7-sonnet-20250219-v1:0"},
            "systemPrompt": "You help.",
            "tools": [tool],
        },
    })
}

fn lambda(fields: Value) -> Value {
    agent(json!({"name": "orders", "description": "Look up an order.", "lambda": fields}))
}

#[test]
fn a_function_is_accepted_by_name_partial_arn_or_full_arn_with_or_without_a_qualifier() {
    for name in [
        "orders",
        "orders:live",
        "orders:$LATEST",
        "function:orders",
        "123456789012:function:orders",
        "123456789012:function:orders:7",
        "arn:aws:lambda:us-east-1:123456789012:function:orders",
        "arn:aws:lambda:eu-west-1:123456789012:function:orders-v2_x:live",
        "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:orders",
        "arn:aws-cn:lambda:cn-north-1:123456789012:function:orders",
    ] {
        let errors = agentry_crds::validate::agent(&lambda(json!({"functionName": name})));
        assert_eq!(errors, Vec::<String>::new(), "{name}");
    }
}

#[test]
fn a_qualifier_and_a_matching_region_go_with_an_unqualified_name() {
    let ok = [
        json!({"functionName": "orders", "qualifier": "live", "region": "eu-west-1"}),
        json!({"functionName": "123456789012:function:orders", "qualifier": "$LATEST"}),
        json!({"functionName": "arn:aws:lambda:eu-west-1:123456789012:function:orders",
               "qualifier": "7", "region": "eu-west-1", "timeoutSeconds": 900}),
    ];
    for fields in ok {
        let errors = agentry_crds::validate::agent(&lambda(fields.clone()));
        assert_eq!(errors, Vec::<String>::new(), "{fields}");
    }
}

#[test]
fn a_qualified_name_refuses_a_second_qualifier_in_every_form() {
    for name in [
        "orders:live",
        "123456789012:function:orders:live",
        "arn:aws:lambda:us-east-1:123456789012:function:orders:live",
    ] {
        let errors =
            agentry_crds::validate::agent(&lambda(json!({"functionName": name, "qualifier": "7"})));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("already carries a qualifier")),
            "{name}: {errors:?}"
        );
    }
}

#[test]
fn sigv4_signs_http_and_openapi_tools_for_both_services() {
    for service in ["execute-api", "lambda"] {
        let http = agent(json!({
            "name": "billing", "description": "Bill a customer.",
            "http": {"url": "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/bill",
                     "headers": [{"name": "x-client", "value": "agentry"}],
                     "auth": {"awsSigV4": {"service": service, "region": "eu-west-1"}}},
        }));
        assert_eq!(agentry_crds::validate::agent(&http), Vec::<String>::new());
        let api = agent(json!({
            "name": "billing", "description": "Billing API.",
            "openapi": {"document": {"configMapKeyRef": {"name": "billing-api", "key": "openapi.yaml"}},
                        "url": "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
                        "operations": ["createInvoice"],
                        "auth": {"awsSigV4": {"service": service}}},
        }));
        assert_eq!(agentry_crds::validate::agent(&api), Vec::<String>::new());
    }
}

#[test]
fn an_openapi_tool_refuses_the_signers_headers_like_an_http_tool() {
    let api = agent(json!({
        "name": "billing", "description": "Billing API.",
        "openapi": {"document": {"url": "https://example.com/openapi.json"},
                    "service": {"name": "billing"},
                    "headers": [{"name": "X-Amz-Date", "value": "20260101T000000Z"}],
                    "auth": {"awsSigV4": {"service": "execute-api"}}},
    }));
    let errors = agentry_crds::validate::agent(&api);
    assert!(
        errors.iter().any(
            |e| e.contains("spec.tools[0].openapi") && e.contains("the SigV4 signer sets them")
        ),
        "{errors:?}"
    );
}
