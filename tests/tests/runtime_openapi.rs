//! OpenAPI tools end to end: the real runtime, the Bedrock imitation scripting Claude's tool
//! calls, and a recording API server. Documents are the fixtures in `tests/fixtures/openapi/`:
//! a petstore-like 3.0 YAML (converted as the operator does, so it arrives in the runtime
//! configuration), an API Gateway oas30 export and a 3.1 JSON document (fetched by the runtime
//! from a URL at start).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use agentry_crds::openapi;
use agentry_crds::runtime_config::*;
use agentry_tests::api_server::{ApiRequest, ApiServer, Document};
use agentry_tests::bedrock::{FakeBedrock, Script, Turn};
use agentry_tests::runtime::{self, RuntimeUnderTest};
use fixtures::{config, invoke, limits, tool_results};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/openapi/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn openapi_tool(name: &str, url: String, document: OpenApiDocumentConfig) -> ToolConfig {
    ToolConfig {
        approval_required: false,
        name: name.into(),
        description: "An HTTP API.".into(),
        kind: ToolKindConfig::OpenApi(OpenApiToolConfig {
            url,
            document,
            headers: vec![HeaderConfig {
                name: "x-api-key".into(),
                value: None,
                value_from_env: Some("AGENTRY_TOOL0_HEADER0".into()),
            }],
            auth: None,
            timeout_seconds: 5,
        }),
    }
}

fn env() -> BTreeMap<String, String> {
    BTreeMap::from([("AGENTRY_TOOL0_HEADER0".into(), "k-123".into())])
}

fn offered(body: &Value) -> Vec<String> {
    body["toolConfig"]["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["toolSpec"]["name"].as_str().map(String::from))
        .collect()
}

/// The runtime's `/readyz` body once the first openapi tool has left `fetching` (at most 20 s).
async fn settled(rt: &RuntimeUnderTest) -> Value {
    let start = Instant::now();
    loop {
        let body: Value = reqwest::get(format!("{}/readyz", rt.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if body["openApiTools"][0]["state"] != "fetching" {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still fetching: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs one invocation in which the model calls `calls` at once; the tool results, in order.
async fn call(
    fake: &FakeBedrock,
    rt: &RuntimeUnderTest,
    calls: &[(&str, &str, Value)],
) -> Vec<Value> {
    fake.push([
        Script::Turn(Turn::tools(calls)),
        Script::Turn(Turn::text("Done.")),
    ]);
    let (status, body, _) = invoke(rt, json!({"input": "go"})).await;
    assert_eq!(status, 200, "{body}");
    let last = fake.captured().last().unwrap().body.clone();
    tool_results(&last)
}

fn find<'a>(seen: &'a [ApiRequest], method: &str, path: &str) -> &'a ApiRequest {
    seen.iter()
        .find(|r| r.method == method && r.path == path)
        .unwrap_or_else(|| panic!("no {method} {path} in {seen:#?}"))
}

#[tokio::test]
async fn petstore_operations_are_offered_and_calls_land_with_method_path_query_headers_and_body() {
    let api = ApiServer::start(vec![], 0).await;
    let conversion = openapi::convert("pets", &fixture("petstore.yaml"), &[]).unwrap();
    let tool = openapi_tool(
        "pets",
        api.url("/v1"),
        OpenApiDocumentConfig::Operations(conversion.operations),
    );
    let fake = FakeBedrock::start().await.unwrap();
    let rt = runtime::start(config(vec![tool], limits()), &fake, env()).await;
    let results = call(
        &fake,
        &rt,
        &[
            (
                "t1",
                "pets_listPets",
                json!({"limit": 5, "tags": ["cat", "black cat"], "status": "available", "X-Request-Id": "r-1"}),
            ),
            ("t2", "pets_createPet", json!({"body": {"name": "Rex", "tag": "dog"}})),
            ("t3", "pets_deletePet", json!({"petId": "p/1 a", "X-Reason": "adopted"})),
            ("t4", "pets_updatePet", json!({"petId": "7", "body": {"name": "Max"}})),
        ],
    )
    .await;
    let first = fake.captured()[0].body.clone();
    assert_eq!(
        offered(&first),
        [
            "pets_listPets",
            "pets_createPet",
            "pets_showPetById",
            "pets_deletePet",
            "pets_updatePet"
        ]
    );
    for r in &results {
        assert_eq!(r["status"], "success", "{r}");
    }
    let seen = api.seen();
    assert_eq!(seen.len(), 4, "{seen:#?}");
    let list = find(&seen, "GET", "/v1/pets");
    assert_eq!(
        list.query.as_deref(),
        Some("limit=5&tags=cat&tags=black%20cat&status=available")
    );
    assert_eq!(list.headers["x-request-id"], "r-1");
    assert_eq!(list.headers["x-api-key"], "k-123");
    assert_eq!(list.body, "");
    let create = find(&seen, "POST", "/v1/pets");
    assert_eq!(create.headers["content-type"], "application/json");
    assert_eq!(
        serde_json::from_str::<Value>(&create.body).unwrap(),
        json!({"name": "Rex", "tag": "dog"})
    );
    let delete = find(&seen, "DELETE", "/v1/pets/p%2F1%20a");
    assert_eq!(delete.headers["x-reason"], "adopted");
    assert_eq!(delete.query, None);
    let patch = find(&seen, "PATCH", "/v1/pets/7");
    assert_eq!(
        patch.headers["content-type"],
        "application/merge-patch+json"
    );
    assert_eq!(patch.body, r#"{"name":"Max"}"#);
    // The API's answer is the tool result.
    let echoed: Vec<&Value> = results
        .iter()
        .map(|r| &r["content"][0]["json"]["received"])
        .collect();
    assert!(
        echoed.contains(&&json!({"method": "PATCH", "path": "/v1/pets/7"})),
        "{results:?}"
    );
}

#[tokio::test]
async fn a_missing_required_parameter_is_refused_before_any_call() {
    let api = ApiServer::start(vec![], 0).await;
    let conversion =
        openapi::convert("pets", &fixture("petstore.yaml"), &["showPetById".into()]).unwrap();
    let tool = openapi_tool(
        "pets",
        api.url(""),
        OpenApiDocumentConfig::Operations(conversion.operations),
    );
    let fake = FakeBedrock::start().await.unwrap();
    let rt = runtime::start(config(vec![tool], limits()), &fake, env()).await;
    let results = call(&fake, &rt, &[("t1", "pets_showPetById", json!({}))]).await;
    assert_eq!(results[0]["status"], "error");
    let text = results[0]["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        text,
        "invalid input for pets_showPetById: input.petId: required"
    );
    assert!(api.seen().is_empty());
}

#[tokio::test]
async fn an_api_gateway_export_at_a_url_is_fetched_at_start_while_the_server_comes_up() {
    let doc = Document {
        path: "/docs/export.json".into(),
        status: 200,
        content_type: "application/json",
        text: fixture("apigateway-export.json"),
    };
    let api = ApiServer::start(vec![doc], 2).await;
    let tool = openapi_tool(
        "petstore",
        api.url("/prod"),
        OpenApiDocumentConfig::Url {
            url: api.url("/docs/export.json"),
            operations: vec![],
        },
    );
    let fake = FakeBedrock::start().await.unwrap();
    let rt = runtime::start(config(vec![tool], limits()), &fake, env()).await;
    let ready = settled(&rt).await;
    let state = &ready["openApiTools"][0];
    assert_eq!(state["state"], "ready", "{ready}");
    assert_eq!(state["document"], api.url("/docs/export.json"));
    assert_eq!(state["operationsOffered"], 3, "{ready}");
    let skipped: Vec<&str> = state["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 2, "{ready}");
    assert!(
        skipped[0].starts_with("any_by_proxy (ANY /{proxy+}): "),
        "{ready}"
    );
    assert!(
        skipped[1].starts_with("options_pets (OPTIONS /pets): "),
        "{ready}"
    );
    assert_eq!(api.fetches(), 3, "two 503s, then the document");
    let fetch = api.fetch_headers().pop().unwrap();
    assert_eq!(
        fetch["x-api-key"], "k-123",
        "the tool's headers reach the document too"
    );
    let results = call(
        &fake,
        &rt,
        &[
            ("t1", "petstore_get_pets_by_petId", json!({"petId": "42"})),
            (
                "t2",
                "petstore_get_pets",
                json!({"type": "dog", "page": "2"}),
            ),
            (
                "t3",
                "petstore_CreatePet",
                json!({"body": {"type": "cat", "price": 12.5}}),
            ),
        ],
    )
    .await;
    assert!(
        results.iter().all(|r| r["status"] == "success"),
        "{results:?}"
    );
    let seen = api.seen();
    find(&seen, "GET", "/prod/pets/42");
    assert_eq!(
        find(&seen, "GET", "/prod/pets").query.as_deref(),
        Some("type=dog&page=2")
    );
    let create = find(&seen, "POST", "/prod/pets");
    assert_eq!(
        serde_json::from_str::<Value>(&create.body).unwrap(),
        json!({"type": "cat", "price": 12.5})
    );
    let offered_first = offered(&fake.captured()[0].body);
    assert_eq!(
        offered_first,
        [
            "petstore_get_pets",
            "petstore_CreatePet",
            "petstore_get_pets_by_petId"
        ]
    );
}

#[tokio::test]
async fn a_selected_operation_of_a_3_1_document_at_a_url_fills_comma_joined_and_clashing_parameters()
 {
    let doc = Document {
        path: "/orders.json".into(),
        status: 200,
        content_type: "application/json",
        text: fixture("orders-3.1.json"),
    };
    let api = ApiServer::start(vec![doc], 0).await;
    let tool = openapi_tool(
        "shop",
        api.url(""),
        OpenApiDocumentConfig::Url {
            url: api.url("/orders.json"),
            operations: vec!["orders.get".into()],
        },
    );
    let fake = FakeBedrock::start().await.unwrap();
    let rt = runtime::start(config(vec![tool], limits()), &fake, env()).await;
    assert_eq!(
        settled(&rt).await["openApiTools"][0]["operationsOffered"],
        1
    );
    let name = agentry_crds::naming::derive("shop", "orders.get");
    let results = call(
        &fake,
        &rt,
        &[(
            "t1",
            &name,
            json!({"id": "o-1", "fields": ["id", "total"], "query_id": "q"}),
        )],
    )
    .await;
    assert_eq!(results[0]["status"], "success", "{results:?}");
    assert_eq!(offered(&fake.captured()[0].body), [name]);
    let seen = api.seen();
    let get = find(&seen, "GET", "/orders/o-1");
    assert_eq!(get.query.as_deref(), Some("fields=id,total&id=q"));
}

#[tokio::test]
async fn a_url_document_that_cannot_be_used_offers_nothing_and_says_why_in_readyz() {
    let doc = Document {
        path: "/swagger.yaml".into(),
        status: 200,
        content_type: "application/yaml",
        text: "swagger: '2.0'\ninfo: {title: old, version: '1'}\npaths: {}\n".into(),
    };
    let api = ApiServer::start(vec![doc], 0).await;
    let tool = openapi_tool(
        "legacy",
        api.url(""),
        OpenApiDocumentConfig::Url {
            url: api.url("/swagger.yaml"),
            operations: vec![],
        },
    );
    let fake = FakeBedrock::start().await.unwrap();
    let rt = runtime::start(config(vec![tool], limits()), &fake, env()).await;
    let ready = settled(&rt).await;
    let state = &ready["openApiTools"][0];
    assert_eq!(state["state"], "failed", "{ready}");
    assert_eq!(state["operationsOffered"], 0);
    assert!(
        state["error"]
            .as_str()
            .unwrap()
            .starts_with("tool legacy: the document is Swagger 2.0"),
        "{ready}"
    );
    assert_eq!(
        ready["status"], "ready",
        "the Agent serves without the tool"
    );
    fake.push([Script::Turn(Turn::text("No tools."))]);
    let (status, body, _) = invoke(&rt, json!({"input": "hi"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(offered(&fake.captured()[0].body).is_empty());
}

#[tokio::test]
async fn a_document_url_answering_404_fails_at_once_without_retrying() {
    let doc = Document {
        path: "/missing.json".into(),
        status: 404,
        content_type: "text/plain",
        text: "not found".into(),
    };
    let api = ApiServer::start(vec![doc], 0).await;
    let tool = openapi_tool(
        "gone",
        api.url(""),
        OpenApiDocumentConfig::Url {
            url: api.url("/missing.json"),
            operations: vec![],
        },
    );
    let fake = FakeBedrock::start().await.unwrap();
    let start = Instant::now();
    let rt = runtime::start(config(vec![tool], limits()), &fake, env()).await;
    let ready = settled(&rt).await;
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(ready["openApiTools"][0]["state"], "failed");
    assert_eq!(api.fetches(), 1, "a 404 is final");
    assert_eq!(
        ready["openApiTools"][0]["error"],
        format!("fetching {} answered HTTP 404", api.url("/missing.json"))
    );
}

#[tokio::test]
async fn a_document_the_operator_could_not_use_offers_nothing_and_points_at_the_agents_condition() {
    let api = ApiServer::start(vec![], 0).await;
    let tool = openapi_tool(
        "pets",
        api.url(""),
        OpenApiDocumentConfig::Operations(vec![]),
    );
    let fake = FakeBedrock::start().await.unwrap();
    let rt = runtime::start(config(vec![tool], limits()), &fake, env()).await;
    let ready = settled(&rt).await;
    let state = &ready["openApiTools"][0];
    assert_eq!(state["state"], "failed", "{ready}");
    assert_eq!(state["document"], "configMap");
    assert_eq!(
        state["error"],
        "the operator could not use the document: see the Agent's ToolsResolved condition"
    );
}
