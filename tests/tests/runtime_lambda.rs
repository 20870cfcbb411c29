//! Lambda tools through the real `aws-sdk-lambda` against the Lambda imitation
//! (`agentry_tests::lambda`), with the runtime driven by the Bedrock imitation: results, the
//! function name forms, function errors, throttling and its deadline, timeouts, large results,
//! unknown functions, and `AWS_ENDPOINT_URL_LAMBDA` in the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use agentry_crds::runtime_config::*;
use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::lambda::{FakeLambda, Function};
use agentry_tests::runtime::{self, RuntimeUnderTest};
use fixtures::{config, invoke, limits, tool_results};
use serde_json::{Value, json};

fn lambda_tool(name: &str, function: &str, qualifier: Option<&str>, timeout: u32) -> ToolConfig {
    ToolConfig {
        approval_required: false,
        name: name.into(),
        description: "Look up an order.".into(),
        kind: ToolKindConfig::Lambda(LambdaToolConfig {
            function_name: function.into(),
            qualifier: qualifier.map(String::from),
            region: None,
            timeout_seconds: timeout,
            input_schema: json!({
                "type": "object",
                "properties": {"orderId": {"type": "string"}},
                "required": ["orderId"]
            }),
        }),
    }
}

async fn start(tools: Vec<ToolConfig>, lambda: &FakeLambda) -> (FakeBedrock, RuntimeUnderTest) {
    let fake = FakeBedrock::start().await.unwrap();
    let aws = runtime::tools_aws(
        Some(lambda.url()),
        runtime::session_credentials("AKIDLAMBDA", "lambda-secret"),
    )
    .await;
    let rt = runtime::start_with_aws(config(tools, limits()), &fake, BTreeMap::new(), aws).await;
    (fake, rt)
}

/// One invocation in which the model calls `tool` with `input`; returns the tool result the
/// model got back and how long the invocation took.
async fn call_once(
    fake: &FakeBedrock,
    rt: &RuntimeUnderTest,
    tool: &str,
    input: Value,
) -> (Value, Duration) {
    fake.push([
        Script::Turn(Turn::tools(&[("call-1", tool, input)])),
        Script::Turn(Turn::text("Done.")),
    ]);
    let started = Instant::now();
    let (status, body, _) = invoke(rt, json!({"input": "where is order 42?"})).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    let result = tool_results(&fake.captured().last().unwrap().body).remove(0);
    (result, took)
}

fn error_text(result: &Value) -> String {
    assert_eq!(result["status"], "error", "{result}");
    result["content"][0]["text"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_model_gets_the_functions_result_and_the_function_gets_the_input_as_its_event() {
    let lambda = FakeLambda::start(&[("orders", Function::Echo)]).await;
    let (fake, rt) = start(
        vec![lambda_tool("order_status", "orders", None, 5)],
        &lambda,
    )
    .await;
    let (result, _) = call_once(&fake, &rt, "order_status", json!({"orderId": "42"})).await;
    assert_eq!(result["status"], "success", "{result}");
    assert_eq!(result["content"][0]["json"], json!({"orderId": "42"}));

    // The tool was offered with its input schema.
    let spec = &fake.captured()[0].body["toolConfig"]["tools"][0]["toolSpec"];
    assert_eq!(spec["name"], "order_status");
    assert_eq!(spec["inputSchema"]["json"]["required"], json!(["orderId"]));

    let seen = lambda.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].function_name, "orders");
    assert_eq!(seen[0].qualifier, None);
    assert_eq!(seen[0].invocation_type.as_deref(), Some("RequestResponse"));
    assert_eq!(seen[0].payload, json!({"orderId": "42"}));
    assert_eq!(
        seen[0].signed_for,
        Some(("us-east-1".to_string(), "lambda".to_string()))
    );
}

#[tokio::test]
async fn qualifiers_partial_and_full_arns_reach_the_right_function_and_region() {
    let lambda = FakeLambda::start(&[("orders", Function::Echo)]).await;
    let full = "arn:aws:lambda:eu-west-1:123456789012:function:orders:live";
    let tools = vec![
        lambda_tool("by_name", "orders", Some("live"), 5),
        lambda_tool("by_partial_arn", "123456789012:function:orders:7", None, 5),
        lambda_tool("by_full_arn", full, None, 5),
    ];
    let (fake, rt) = start(tools, &lambda).await;
    for tool in ["by_name", "by_partial_arn", "by_full_arn"] {
        let (result, _) = call_once(&fake, &rt, tool, json!({"orderId": tool})).await;
        assert_eq!(result["status"], "success", "{tool}: {result}");
    }
    let seen = lambda.seen();
    let got: Vec<(&str, Option<&str>, &str)> = seen
        .iter()
        .map(|i| {
            (
                i.function_name.as_str(),
                i.qualifier.as_deref(),
                i.signed_for.as_ref().unwrap().0.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("orders", Some("live"), "us-east-1"),
            ("123456789012:function:orders:7", None, "us-east-1"),
            // The region in a full ARN is the one signed for (and would be the endpoint's).
            (full, None, "eu-west-1"),
        ]
    );
}

#[tokio::test]
async fn a_function_error_is_an_error_result_with_its_type_and_message() {
    let failing = Function::Fails {
        error_type: "OrderNotFound".into(),
        message: "no order 42 in this account".into(),
    };
    let lambda = FakeLambda::start(&[("orders", failing)]).await;
    let (fake, rt) = start(
        vec![lambda_tool("order_status", "orders", None, 5)],
        &lambda,
    )
    .await;
    let (result, _) = call_once(&fake, &rt, "order_status", json!({"orderId": "42"})).await;
    assert_eq!(
        error_text(&result),
        "the Lambda function orders failed (Unhandled): OrderNotFound: no order 42 in this account"
    );
    // A function error is the function's answer: not retried.
    assert_eq!(lambda.seen().len(), 1);
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_until_the_function_answers() {
    let service_error = Function::ErrorsThen {
        times: 1,
        status: 500,
        code: "ServiceException".into(),
        then: Box::new(Function::Echo),
    };
    let lambda = FakeLambda::start(&[
        ("orders", Function::throttled_then(2, Function::Echo)),
        ("billing", service_error),
    ])
    .await;
    let tools = vec![
        lambda_tool("order_status", "orders", None, 5),
        lambda_tool("billing", "billing", None, 5),
    ];
    let (fake, rt) = start(tools, &lambda).await;
    let (result, _) = call_once(&fake, &rt, "order_status", json!({"orderId": "42"})).await;
    assert_eq!(
        result["content"][0]["json"],
        json!({"orderId": "42"}),
        "{result}"
    );
    let (result, _) = call_once(&fake, &rt, "billing", json!({"orderId": "43"})).await;
    assert_eq!(
        result["content"][0]["json"],
        json!({"orderId": "43"}),
        "{result}"
    );
    let per_function = |f: &str| lambda.seen().iter().filter(|i| i.function == f).count();
    assert_eq!(per_function("orders"), 3);
    assert_eq!(per_function("billing"), 2);
}

#[tokio::test]
async fn a_throttled_invoke_waits_as_long_as_retry_after_asks() {
    let lambda = FakeLambda::start(&[("orders", Function::ThrottledOnceWithRetryAfter(1))]).await;
    let (fake, rt) = start(
        vec![lambda_tool("order_status", "orders", None, 5)],
        &lambda,
    )
    .await;
    let (result, took) = call_once(&fake, &rt, "order_status", json!({"orderId": "42"})).await;
    assert_eq!(
        result["content"][0]["json"],
        json!({"orderId": "42"}),
        "{result}"
    );
    assert_eq!(lambda.seen().len(), 2);
    // Without the header the first retry comes after 50-100 ms.
    assert!(took >= Duration::from_secs(1), "took {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test]
async fn throttling_beyond_the_timeout_ends_in_an_error_result_within_the_timeout() {
    let lambda = FakeLambda::start(&[("orders", Function::always_throttled())]).await;
    let (fake, rt) = start(
        vec![lambda_tool("order_status", "orders", None, 2)],
        &lambda,
    )
    .await;
    let (result, took) = call_once(&fake, &rt, "order_status", json!({"orderId": "42"})).await;
    let text = error_text(&result);
    assert!(text.contains("orders"), "{text}");
    assert!(
        text.contains("TooManyRequestsException (HTTP 429)"),
        "{text}"
    );
    assert!(
        text.contains("no time left to retry within the tool's 2000 ms timeout"),
        "{text}"
    );
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    let attempts = lambda.seen().len();
    assert!((3..=12).contains(&attempts), "{attempts} attempts");
}

#[tokio::test]
async fn a_slow_function_times_out_as_an_error_result() {
    let lambda = FakeLambda::start(&[("orders", Function::Slow(Duration::from_secs(10)))]).await;
    let (fake, rt) = start(
        vec![lambda_tool("order_status", "orders", None, 1)],
        &lambda,
    )
    .await;
    let (result, took) = call_once(&fake, &rt, "order_status", json!({"orderId": "42"})).await;
    let text = error_text(&result);
    assert!(
        text.contains("timed out after 1000 ms") || text.contains("did not answer within 1000 ms"),
        "{text}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test]
async fn a_result_over_the_cap_is_cut_with_a_note() {
    let big = json!({"lines": "x".repeat(400 * 1024)})
        .to_string()
        .into_bytes();
    let size = big.len();
    let lambda = FakeLambda::start(&[("orders", Function::Returns(big))]).await;
    let (fake, rt) = start(
        vec![lambda_tool("order_status", "orders", None, 5)],
        &lambda,
    )
    .await;
    let (result, _) = call_once(&fake, &rt, "order_status", json!({"orderId": "42"})).await;
    assert_eq!(
        result["status"],
        "success",
        "{}",
        &result.to_string()[..200]
    );
    let text = result["content"][0]["text"].as_str().unwrap();
    let cap = agentry_runtime::tools::MAX_RESPONSE_BYTES;
    assert!(text.starts_with("{\"lines\":\"xxx"));
    assert!(
        text.ends_with(&format!("[result cut at {cap} of {size} bytes]")),
        "{}",
        &text[text.len() - 80..]
    );
    assert!(text.len() < cap + 100);
}

#[tokio::test]
async fn non_object_and_non_json_results_are_wrapped_or_text() {
    let lambda = FakeLambda::start(&[
        ("count", Function::Returns(b"[1,2,3]".to_vec())),
        ("hello", Function::Returns(b"hello there".to_vec())),
    ])
    .await;
    let tools = vec![
        lambda_tool("count", "count", None, 5),
        lambda_tool("hello", "hello", None, 5),
    ];
    let (fake, rt) = start(tools, &lambda).await;
    let (result, _) = call_once(&fake, &rt, "count", json!({"orderId": "1"})).await;
    assert_eq!(result["content"][0]["json"], json!({"result": [1, 2, 3]}));
    let (result, _) = call_once(&fake, &rt, "hello", json!({"orderId": "1"})).await;
    assert_eq!(result["content"][0]["text"], "hello there");
}

#[tokio::test]
async fn an_unknown_function_is_an_error_result_naming_it_and_the_aws_error_code() {
    let lambda = FakeLambda::start(&[]).await;
    let (fake, rt) = start(vec![lambda_tool("order_status", "nope", None, 5)], &lambda).await;
    let (result, _) = call_once(&fake, &rt, "order_status", json!({"orderId": "42"})).await;
    assert_eq!(
        error_text(&result),
        "invoking the Lambda function nope failed: ResourceNotFoundException (HTTP 404): Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope (check functionName, qualifier and region)"
    );
    assert_eq!(lambda.seen().len(), 1, "a 404 is not retried");
}

#[tokio::test]
async fn credentials_that_cannot_be_loaded_give_a_clear_error_result() {
    let lambda = FakeLambda::start(&[("orders", Function::Echo)]).await;
    let fake = FakeBedrock::start().await.unwrap();
    let provider = aws_credential_types::credential_fn::provide_credentials_fn(|| async {
        Err(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no web identity token file",
            ),
        )
    });
    let aws = runtime::tools_aws(Some(lambda.url()), provider).await;
    let cfg = config(
        vec![lambda_tool("order_status", "orders", None, 5)],
        limits(),
    );
    let rt = runtime::start_with_aws(cfg, &fake, BTreeMap::new(), aws).await;
    let (result, _) = call_once(&fake, &rt, "order_status", json!({"orderId": "42"})).await;
    let text = error_text(&result);
    assert!(
        text.starts_with(
            "invoking the Lambda function orders failed: the pod's AWS credentials could not be loaded: "
        ),
        "{text}"
    );
    assert!(text.contains("no web identity token file"), "{text}");
    assert!(lambda.seen().is_empty());
}

#[tokio::test]
async fn the_runtime_binary_sends_lambda_calls_to_aws_endpoint_url_lambda() {
    let lambda = FakeLambda::start(&[("orders", Function::Echo)]).await;
    let bedrock = FakeBedrock::start().await.unwrap();
    bedrock.push([
        Script::Turn(Turn::tools(&[(
            "call-1",
            "order_status",
            json!({"orderId": "42"}),
        )])),
        Script::Turn(Turn::text("Order 42 is on its way.")),
    ]);
    let path = std::env::temp_dir().join(format!("agentry-lambda-{}.json", std::process::id()));
    let mut cfg = config(
        vec![lambda_tool("order_status", "orders", Some("live"), 5)],
        limits(),
    );
    cfg.model.region = Some("us-east-1".into());
    std::fs::write(&path, cfg.to_json()).unwrap();
    let mut env = bedrock.process_env();
    env.push(("AWS_ENDPOINT_URL_LAMBDA", lambda.url()));
    let (_process, url) = runtime::start_process("lambda-endpoint", &path, &env, &[]);
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/invoke"))
        .body(json!({"input": "where is order 42?"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["output"], "Order 42 is on its way.");
    assert_eq!(body["toolCalls"][0]["status"], "success", "{body}");
    let seen = lambda.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].qualifier.as_deref(), Some("live"));
    assert_eq!(seen[0].payload, json!({"orderId": "42"}));
    assert_eq!(
        seen[0].signed_for,
        Some(("us-east-1".to_string(), "lambda".to_string()))
    );
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_pod_without_aws_credentials_warns_at_start_and_still_serves() {
    let lambda = FakeLambda::start(&[("orders", Function::Echo)]).await;
    let bedrock = FakeBedrock::start().await.unwrap();
    let path = std::env::temp_dir().join(format!("agentry-nocreds-{}.json", std::process::id()));
    let mut cfg = config(
        vec![lambda_tool("order_status", "orders", None, 5)],
        limits(),
    );
    cfg.model.region = Some("us-east-1".into());
    std::fs::write(&path, cfg.to_json()).unwrap();
    let missing = std::env::temp_dir().join("agentry-no-such-aws-file");
    let missing = missing.to_str().unwrap().to_string();
    let env = vec![
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock.url()),
        ("AWS_ENDPOINT_URL_LAMBDA", lambda.url()),
        ("AWS_REGION", "us-east-1".to_string()),
        // Every link of the default chain comes up empty, quickly.
        ("AWS_ACCESS_KEY_ID", String::new()),
        ("AWS_SECRET_ACCESS_KEY", String::new()),
        ("AWS_CONFIG_FILE", missing.clone()),
        ("AWS_SHARED_CREDENTIALS_FILE", missing),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ];
    let (process, url) = runtime::start_process("lambda-nocreds", &path, &env, &[]);
    assert!(
        process.wait_for_log("AWS credentials cannot be loaded", Duration::from_secs(15)),
        "no warning:\n{}",
        process.log()
    );
    let r = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn the_callers_trace_reaches_the_function_as_x_ray_header_and_client_context() {
    let lambda = FakeLambda::start(&[("orders", Function::Echo)]).await;
    let (fake, rt) = start(
        vec![lambda_tool("order_status", "orders", None, 5)],
        &lambda,
    )
    .await;
    fake.push([
        Script::Turn(Turn::tools(&[(
            "call-1",
            "order_status",
            json!({"orderId": "42"}),
        )])),
        Script::Turn(Turn::text("Done.")),
    ]);
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = reqwest::Client::new()
        .post(format!("{}/v1/invoke", rt.url))
        .header("traceparent", tp)
        .header("tracestate", "vendor=1")
        .body(json!({"input": "where is order 42?"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = lambda.seen();
    assert_eq!(
        seen[0].trace_header.as_deref(),
        Some("Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1")
    );
    let context =
        aws_smithy_types::base64::decode(seen[0].client_context.as_deref().unwrap()).unwrap();
    let context: Value = serde_json::from_slice(&context).unwrap();
    assert_eq!(
        context,
        json!({"custom": {"traceparent": tp, "tracestate": "vendor=1"}})
    );
    // Without a trace, neither is sent.
    let (_, _) = call_once(&fake, &rt, "order_status", json!({"orderId": "43"})).await;
    let last = lambda.seen().pop().unwrap();
    assert_eq!((last.trace_header, last.client_context), (None, None));
}
