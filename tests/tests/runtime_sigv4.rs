//! SigV4-signed http tools against an independent verifier: botocore's own signer
//! (`tests/python/sigv4_server.py`) recomputes the signature of every request the runtime sends
//! and must agree, for `execute-api` and `lambda` (function URLs, with the payload hash header),
//! with and without a session token, for a GET with a query and a POST with a JSON body. Also:
//! a wrong secret is caught, credentials that cannot be loaded give a clear error result, and
//! credentials refreshed after expiry are used for later calls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use agentry_crds::runtime_config::*;
use agentry_crds::{HttpMethod, SigV4Service};
use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::runtime::{self, RuntimeUnderTest};
use agentry_tests::sigv4::{Key, SigV4Verifier};
use aws_credential_types::Credentials;
use aws_credential_types::credential_fn::provide_credentials_fn;
use aws_credential_types::provider::ProvideCredentials;
use fixtures::{config, invoke, limits, tool_results};
use serde_json::{Value, json};

fn signed_tool(
    name: &str,
    url: String,
    method: HttpMethod,
    service: SigV4Service,
    region: Option<&str>,
) -> ToolConfig {
    ToolConfig {
        approval_required: false,
        name: name.into(),
        description: "Look up an order.".into(),
        kind: ToolKindConfig::Http(HttpToolConfig {
            url,
            method,
            headers: vec![HeaderConfig {
                name: "x-tenant".into(),
                value: Some("acme".into()),
                value_from_env: None,
            }],
            auth: Some(AuthConfig::AwsSigV4(SigV4Config {
                service,
                region: region.map(String::from),
            })),
            timeout_seconds: 5,
            input_schema: json!({
                "type": "object",
                "properties": {"orderId": {"type": "string"}, "note": {"type": "string"}},
                "required": ["orderId"]
            }),
        }),
    }
}

/// The two tools of every case: a GET (input as query, on a path with an encoded space) and a
/// POST (input as JSON body).
fn tools(v: &SigV4Verifier, service: SigV4Service, region: Option<&str>) -> Vec<ToolConfig> {
    vec![
        signed_tool(
            "get_order",
            v.url("/prod/orders/open%20ones?view=full&limit=5"),
            HttpMethod::Get,
            service,
            region,
        ),
        signed_tool(
            "create_order",
            v.url("/prod/orders"),
            HttpMethod::Post,
            service,
            region,
        ),
    ]
}

async fn start(
    tools: Vec<ToolConfig>,
    credentials: impl ProvideCredentials + 'static,
) -> (FakeBedrock, RuntimeUnderTest) {
    let fake = FakeBedrock::start().await.unwrap();
    let aws = runtime::tools_aws(None, credentials).await;
    let rt = runtime::start_with_aws(config(tools, limits()), &fake, BTreeMap::new(), aws).await;
    (fake, rt)
}

/// One invocation in which the model calls `tool` with `input`; the tool result it got back.
async fn call_once(fake: &FakeBedrock, rt: &RuntimeUnderTest, tool: &str, input: Value) -> Value {
    fake.push([
        Script::Turn(Turn::tools(&[("call-1", tool, input)])),
        Script::Turn(Turn::text("Done.")),
    ]);
    let (status, body, _) = invoke(rt, json!({"input": "order 42?"})).await;
    assert_eq!(status, 200, "{body}");
    tool_results(&fake.captured().last().unwrap().body).remove(0)
}

fn key(access_key: &str, secret: &str, token: Option<&str>) -> Key {
    Key {
        access_key: access_key.into(),
        secret: secret.into(),
        token: token.map(String::from),
    }
}

/// Runs the GET and the POST of one case and returns the verifier's checks.
async fn both_calls_checked(
    service: SigV4Service,
    configured_region: Option<&str>,
    signing_region: &str,
    token: Option<&str>,
) -> Vec<Value> {
    let k = key("AKIDAGENTRYTEST", "agentry/test+secret", token);
    let verifier =
        SigV4Verifier::start(service.as_str(), signing_region, std::slice::from_ref(&k)).await;
    let credentials = Credentials::new(
        &k.access_key,
        &k.secret,
        k.token.clone(),
        None,
        "agentry-tests",
    );
    let (fake, rt) = start(tools(&verifier, service, configured_region), credentials).await;
    let got = call_once(
        &fake,
        &rt,
        "get_order",
        json!({"orderId": "42", "note": "a b&c=d/é"}),
    )
    .await;
    assert_eq!(got["status"], "success", "{got}");
    assert_eq!(got["content"][0]["json"]["ok"], true, "{got}");
    let posted = call_once(
        &fake,
        &rt,
        "create_order",
        json!({"orderId": "43", "note": "ünïcode and \"quotes\""}),
    )
    .await;
    assert_eq!(posted["status"], "success", "{posted}");
    let results = verifier.results().await;
    assert_eq!(results.len(), 2, "{results:?}");
    for r in &results {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["expected"], r["got"]);
        let scope = format!("/{signing_region}/{}/aws4_request", service.as_str());
        assert!(r["got"].as_str().unwrap().contains(&scope), "{r}");
        let signed_token = r["got"].as_str().unwrap().contains("x-amz-security-token");
        assert_eq!(signed_token, token.is_some(), "{r}");
        let hashed = r["canonicalRequest"]
            .as_str()
            .unwrap()
            .contains("x-amz-content-sha256");
        assert_eq!(hashed, service == SigV4Service::Lambda, "{r}");
    }
    assert_eq!(results[0]["method"], "GET");
    assert!(
        results[0]["path"].as_str().unwrap().starts_with(
            "/prod/orders/open%20ones?view=full&limit=5&note=a%20b%26c%3Dd%2F%C3%A9&orderId=42"
        ),
        "{}",
        results[0]["path"]
    );
    assert_eq!(results[1]["method"], "POST");
    results
}

#[tokio::test]
async fn execute_api_signatures_agree_with_botocore_with_a_session_token() {
    both_calls_checked(
        SigV4Service::ExecuteApi,
        Some("eu-west-1"),
        "eu-west-1",
        Some("FwoGZXIvYXdzEBYaDH+session/token=="),
    )
    .await;
}

#[tokio::test]
async fn execute_api_signatures_agree_with_botocore_without_a_session_token() {
    both_calls_checked(
        SigV4Service::ExecuteApi,
        Some("eu-west-1"),
        "eu-west-1",
        None,
    )
    .await;
}

#[tokio::test]
async fn function_url_signatures_carry_the_payload_hash_and_agree_with_botocore_with_a_session_token()
 {
    // No region configured: the chain's (us-east-1) is signed for.
    both_calls_checked(
        SigV4Service::Lambda,
        None,
        "us-east-1",
        Some("IQoJb3JpZ2luX2VjEAIaCXVzLWVhc3QtMSJH"),
    )
    .await;
}

#[tokio::test]
async fn function_url_signatures_carry_the_payload_hash_and_agree_with_botocore_without_a_session_token()
 {
    both_calls_checked(
        SigV4Service::Lambda,
        Some("ap-southeast-2"),
        "ap-southeast-2",
        None,
    )
    .await;
}

#[tokio::test]
async fn a_wrong_secret_makes_the_verifier_disagree() {
    let verifier = SigV4Verifier::start(
        "execute-api",
        "eu-west-1",
        &[key("AKIDAGENTRYTEST", "the-right-secret", Some("tok"))],
    )
    .await;
    let credentials = Credentials::new(
        "AKIDAGENTRYTEST",
        "a-wrong-secret",
        Some("tok".into()),
        None,
        "agentry-tests",
    );
    let (fake, rt) = start(
        tools(&verifier, SigV4Service::ExecuteApi, Some("eu-west-1")),
        credentials,
    )
    .await;
    let result = call_once(&fake, &rt, "create_order", json!({"orderId": "43"})).await;
    assert_eq!(result["status"], "error", "{result}");
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("the tool answered HTTP 403"), "{text}");
    let results = verifier.results().await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["ok"], false);
    assert_eq!(
        results[0]["problems"],
        json!(["the signature differs from botocore's"])
    );
    assert_ne!(results[0]["expected"], results[0]["got"]);
}

#[tokio::test]
async fn credentials_that_cannot_be_loaded_give_a_clear_error_result_and_nothing_is_sent() {
    let verifier = SigV4Verifier::start("execute-api", "eu-west-1", &[]).await;
    let failing = provide_credentials_fn(|| async {
        Err(
            aws_credential_types::provider::error::CredentialsError::provider_error(
                "the EKS Pod Identity agent refused the token",
            ),
        )
    });
    let (fake, rt) = start(
        tools(&verifier, SigV4Service::ExecuteApi, Some("eu-west-1")),
        failing,
    )
    .await;
    let result = call_once(&fake, &rt, "get_order", json!({"orderId": "42"})).await;
    assert_eq!(result["status"], "error", "{result}");
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "the request cannot be signed for execute-api: loading AWS credentials failed: "
        ),
        "{text}"
    );
    assert!(
        text.contains("the EKS Pod Identity agent refused the token"),
        "{text}"
    );
    assert!(verifier.results().await.is_empty());
}

#[tokio::test]
async fn credentials_refreshed_after_expiry_are_used_for_later_calls() {
    let verifier = SigV4Verifier::start(
        "execute-api",
        "eu-west-1",
        &[
            key("AKIDGENERATION1", "secret-1", Some("token-1")),
            key("AKIDGENERATION2", "secret-2", Some("token-2")),
        ],
    )
    .await;
    let loads = Arc::new(AtomicUsize::new(0));
    let counter = loads.clone();
    // The first session credentials expire 61.5 s from now, so they are within the refresh
    // margin (60 s) about 1.5 s from now; the second ones last an hour.
    let provider = provide_credentials_fn(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            let (expires_in, generation) = match n {
                1 => (Duration::from_millis(61_500), 1),
                _ => (Duration::from_secs(3600), 2),
            };
            Ok(Credentials::new(
                format!("AKIDGENERATION{generation}"),
                format!("secret-{generation}"),
                Some(format!("token-{generation}")),
                Some(SystemTime::now() + expires_in),
                "rotating",
            ))
        }
    });
    let (fake, rt) = start(
        tools(&verifier, SigV4Service::ExecuteApi, Some("eu-west-1")),
        provider,
    )
    .await;
    for id in ["1", "2"] {
        let r = call_once(&fake, &rt, "create_order", json!({"orderId": id})).await;
        assert_eq!(r["status"], "success", "{r}");
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let r = call_once(&fake, &rt, "create_order", json!({"orderId": "3"})).await;
    assert_eq!(r["status"], "success", "{r}");

    let results = verifier.results().await;
    let keys: Vec<&str> = results
        .iter()
        .map(|r| {
            let got = r["got"].as_str().unwrap();
            assert_eq!(r["ok"], true, "{r}");
            got.split("Credential=")
                .nth(1)
                .unwrap()
                .split('/')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(
        keys,
        ["AKIDGENERATION1", "AKIDGENERATION1", "AKIDGENERATION2"]
    );
    // Loaded once at start (reused by the first two calls), once more after expiry.
    assert_eq!(loads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn openapi_operations_sign_like_http_tools_and_agree_with_botocore() {
    use agentry_crds::openapi::{Operation, Parameter, ParameterLocation, RequestBody};
    let k = key("AKIDAGENTRYTEST", "agentry/test+secret", Some("tok/en=="));
    let verifier = SigV4Verifier::start("execute-api", "eu-west-1", std::slice::from_ref(&k)).await;
    let operation = Operation {
        name: "orders_updateOrder".into(),
        operation_id: "updateOrder".into(),
        description: "Update an order.".into(),
        method: "PATCH".into(),
        path: "/orders/{orderId}".into(),
        parameters: vec![
            Parameter {
                name: "orderId".into(),
                location: ParameterLocation::Path,
                property: "orderId".into(),
                required: true,
                explode: true,
            },
            Parameter {
                name: "dry run".into(),
                location: ParameterLocation::Query,
                property: "dry_run".into(),
                required: false,
                explode: true,
            },
        ],
        body: Some(RequestBody {
            property: "body".into(),
            required: true,
            content_type: "application/json".into(),
        }),
        input_schema: json!({
            "type": "object",
            "properties": {"orderId": {"type": "string"}, "dry_run": {"type": "string"},
                           "body": {"type": "object"}},
            "required": ["orderId", "body"]
        }),
    };
    let tool = ToolConfig {
        approval_required: false,
        name: "orders".into(),
        description: "The orders API.".into(),
        kind: ToolKindConfig::OpenApi(OpenApiToolConfig {
            url: verifier.url("/prod"),
            document: OpenApiDocumentConfig::Operations(vec![operation]),
            headers: vec![],
            auth: Some(AuthConfig::AwsSigV4(SigV4Config {
                service: SigV4Service::ExecuteApi,
                region: Some("eu-west-1".into()),
            })),
            timeout_seconds: 5,
        }),
    };
    let credentials = Credentials::new(
        &k.access_key,
        &k.secret,
        k.token.clone(),
        None,
        "agentry-tests",
    );
    let (fake, rt) = start(vec![tool], credentials).await;
    let got = call_once(
        &fake,
        &rt,
        "orders_updateOrder",
        json!({"orderId": "42 b/c", "dry_run": "yes please", "body": {"note": "ünïcode"}}),
    )
    .await;
    assert_eq!(got["status"], "success", "{got}");
    let results = verifier.results().await;
    assert_eq!(results.len(), 1, "{results:?}");
    let r = &results[0];
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["expected"], r["got"]);
    assert_eq!(r["method"], "PATCH");
    assert!(
        r["path"]
            .as_str()
            .unwrap()
            .starts_with("/prod/orders/42%20b%2Fc?dry%20run=yes%20please"),
        "{r}"
    );
    assert!(
        r["got"].as_str().unwrap().contains("x-amz-security-token"),
        "{r}"
    );
}
