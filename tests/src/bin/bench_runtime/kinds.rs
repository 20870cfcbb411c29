//! The tool kinds the benchmark's one tool call can go through: the same call (`top_song` with
//! `{"sign": "WZPZ"}`) as an http tool, a Lambda function (the Lambda imitation, reached through
//! `AWS_ENDPOINT_URL_LAMBDA`), and an OpenAPI operation (the same HTTP endpoint).

use agentry_crds::HttpMethod;
use agentry_crds::openapi::{Operation, RequestBody};
use agentry_crds::runtime_config::{
    HttpToolConfig, LambdaToolConfig, OpenApiDocumentConfig, OpenApiToolConfig, ToolKindConfig,
};
use serde_json::json;

/// How the tool call is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An http tool: POST the input as JSON.
    Http,
    /// A lambda tool: Invoke with the input as the event.
    Lambda,
    /// An openapi tool: one operation, the input's `body` as the JSON body.
    OpenApi,
}

impl Kind {
    /// Every kind, http first (the others are compared with it).
    pub const ALL: [Kind; 3] = [Kind::Http, Kind::Lambda, Kind::OpenApi];

    /// Its name in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Lambda => "lambda",
            Kind::OpenApi => "openapi",
        }
    }

    /// The tool's name the model calls: openapi tools are `<tool>_<operationId>`.
    pub fn tool_name(self) -> &'static str {
        match self {
            Kind::OpenApi => "songs_top_song",
            _ => "top_song",
        }
    }

    /// The configured tool's name.
    pub fn configured_name(self) -> &'static str {
        match self {
            Kind::OpenApi => "songs",
            _ => "top_song",
        }
    }

    /// The input the model sends.
    pub fn input(self) -> serde_json::Value {
        match self {
            Kind::OpenApi => json!({"body": {"sign": "WZPZ"}}),
            _ => json!({"sign": "WZPZ"}),
        }
    }

    /// The tool's configuration: `base` is the tool server's URL, `/top_song` its route.
    pub fn config(self, base: &str) -> ToolKindConfig {
        match self {
            Kind::Http => ToolKindConfig::Http(HttpToolConfig {
                url: format!("{base}/top_song"),
                method: HttpMethod::Post,
                headers: vec![],
                auth: None,
                timeout_seconds: 5,
                input_schema: json!({"type": "object"}),
            }),
            Kind::Lambda => ToolKindConfig::Lambda(LambdaToolConfig {
                function_name: "top_song".into(),
                qualifier: None,
                region: None,
                timeout_seconds: 5,
                input_schema: json!({"type": "object"}),
            }),
            Kind::OpenApi => ToolKindConfig::OpenApi(OpenApiToolConfig {
                url: base.to_string(),
                document: OpenApiDocumentConfig::Operations(vec![Operation {
                    name: "songs_top_song".into(),
                    operation_id: "top_song".into(),
                    description: "Top song.".into(),
                    method: "POST".into(),
                    path: "/top_song".into(),
                    parameters: vec![],
                    body: Some(RequestBody {
                        property: "body".into(),
                        required: true,
                        content_type: "application/json".into(),
                    }),
                    input_schema: json!({"type": "object", "properties": {"body": {"type": "object"}}, "required": ["body"]}),
                }]),
                headers: vec![],
                auth: None,
                timeout_seconds: 5,
            }),
        }
    }
}
