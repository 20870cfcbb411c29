//! The AWS-native parts of tools: Lambda functions, and SigV4 signing of HTTP calls.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An AWS Lambda function invoked synchronously (`RequestResponse`) with the tool input as its
/// event; the function's JSON result is the tool result. The pod's AWS credentials (IRSA or EKS
/// Pod Identity) need `lambda:InvokeFunction` on it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.qualifier) || !self.functionName.matches(':function:[^:]+:[^:]+$|^[^:]+:[^:]+$')",
    "message": "functionName already carries a qualifier (a version or alias after its last colon): drop it there or unset qualifier",
}, {
    "rule": "!has(self.region) || !self.functionName.startsWith('arn:') || self.functionName.split(':')[3] == self.region",
    "message": "region differs from the region in the functionName ARN: unset region or make them the same",
}]))]
pub struct LambdaTool {
    /// The function: its name (`orders`), a partial ARN (`123456789012:function:orders`) or a full
    /// ARN (`arn:aws:lambda:us-east-1:123456789012:function:orders`), optionally ending in
    /// `:<version or alias>`.
    #[schemars(
        length(min = 1, max = 170),
        regex(
            pattern = r"^(arn:aws[a-zA-Z-]*:lambda:[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]:)?([0-9]{12}:)?(function:)?[a-zA-Z0-9_-]{1,64}(:(\$LATEST|[a-zA-Z0-9_-]{1,128}))?$"
        )
    )]
    pub function_name: String,

    /// Version (`7`, `$LATEST`) or alias (`live`) to invoke. Default: `$LATEST`, or what
    /// `functionName` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^(\$LATEST|[a-zA-Z0-9_-]+)$")
    )]
    pub qualifier: Option<String>,

    /// AWS region of the function, for example `eu-west-1`. Default: the region in a full ARN,
    /// else the pod's AWS configuration (`AWS_REGION`), as for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$")
    )]
    pub region: Option<String>,

    /// Deadline of one call in seconds (1 to 900, Lambda's own maximum), throttling retries
    /// included. Default: `limits.toolTimeoutSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 900))]
    pub timeout_seconds: Option<i32>,

    /// JSON Schema of the event Claude sends, as Claude sees it. Default: an object with no
    /// declared properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::free_form_object")]
    pub input_schema: Option<serde_json::Map<String, serde_json::Value>>,
}

/// How an HTTP call authenticates beyond its headers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.awsSigV4)",
    "message": "auth sets awsSigV4 (the only kind of auth; use headers for API keys and bearer tokens)",
}]))]
pub struct HttpAuth {
    /// Sign every request with AWS Signature Version 4, using the pod's AWS credentials (IRSA or
    /// EKS Pod Identity, session tokens and their refresh included).
    #[serde(default, rename = "awsSigV4", skip_serializing_if = "Option::is_none")]
    pub aws_sig_v4: Option<AwsSigV4>,
}

/// SigV4 signing of HTTP calls.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSigV4 {
    /// The service the signature is for: `execute-api` (API Gateway REST and HTTP APIs with IAM
    /// authorization) or `lambda` (Lambda function URLs with `AWS_IAM` auth).
    pub service: SigV4Service,

    /// AWS region the signature is for, for example `eu-west-1`. Default: the pod's AWS
    /// configuration (`AWS_REGION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$")
    )]
    pub region: Option<String>,
}

/// The service a SigV4 signature is for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum SigV4Service {
    /// Amazon API Gateway (`execute-api`).
    #[default]
    #[serde(rename = "execute-api")]
    ExecuteApi,
    /// AWS Lambda function URLs (`lambda`); the payload hash is sent in `x-amz-content-sha256`.
    #[serde(rename = "lambda")]
    Lambda,
}

impl SigV4Service {
    /// The signing name, as it goes into the credential scope.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExecuteApi => "execute-api",
            Self::Lambda => "lambda",
        }
    }
}
