//! Telemetry settings the operator hands to every Agent's runtime container: the standard
//! OpenTelemetry variables (OTLP endpoint and headers, trace sampler, GenAI message content
//! capture) and `AGENTRY_MODEL_PRICES`. The operator reads them from its own environment (the
//! chart's `telemetry.*` values) and checks them at start, so a typo stops the operator instead
//! of reaching every runtime pod. An empty variable counts as unset, as the OpenTelemetry
//! specification says.

use std::collections::BTreeMap;

/// OTLP endpoint of the runtimes' telemetry.
pub const OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Headers of every OTLP request, `key=value,key2=value2`.
pub const OTLP_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// The trace sampler.
pub const TRACES_SAMPLER: &str = "OTEL_TRACES_SAMPLER";
/// The trace sampler's argument (a ratio).
pub const TRACES_SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
/// Whether spans carry prompts and replies.
pub const CAPTURE_MESSAGE_CONTENT: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";
/// Prices per model, for the runtime's estimated cost metric.
pub const MODEL_PRICES: &str = "AGENTRY_MODEL_PRICES";

/// Samplers of the OpenTelemetry specification that need no extra service: the ones the
/// runtime and the operator build.
pub use agentry_crds::telemetry::SAMPLERS;

/// The runtimes' telemetry, as the operator was started with it.
#[derive(Clone, Debug, Default, PartialEq, clap::Args)]
pub struct RuntimeTelemetry {
    /// OTLP endpoint the runtimes export traces to (`http://collector:4318`). Unset: no export.
    #[arg(long, env = OTLP_ENDPOINT, value_parser = parse_endpoint)]
    pub otlp_endpoint: Option<String>,

    /// Headers of the runtimes' OTLP requests, `key=value,key2=value2`. Visible in every
    /// runtime pod's spec: not for secrets (an Agent sets its own from a Secret in `spec.env`).
    #[arg(long, env = OTLP_HEADERS, value_parser = parse_headers)]
    pub otlp_headers: Option<String>,

    /// The runtimes' trace sampler (`parentbased_always_on`, `parentbased_traceidratio`, ...).
    #[arg(long, env = TRACES_SAMPLER, value_parser = parse_sampler)]
    pub traces_sampler: Option<String>,

    /// The ratio of the `traceidratio` samplers, from 0 to 1.
    #[arg(long, env = TRACES_SAMPLER_ARG, value_parser = parse_ratio)]
    pub traces_sampler_arg: Option<String>,

    /// Whether the runtimes' spans carry prompts, replies and tool input (`true`, `false`).
    #[arg(long, env = CAPTURE_MESSAGE_CONTENT, value_parser = parse_bool)]
    pub capture_message_content: Option<String>,

    /// Prices in USD per million tokens, by model id, as JSON:
    /// `{"<model id>": {"input": 3, "output": 15, "cacheRead": 0.3, "cacheWrite": 3.75}}`.
    #[arg(long, env = MODEL_PRICES, value_parser = parse_model_prices)]
    pub model_prices: Option<String>,
}

/// A telemetry setting that makes no sense with the others.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TelemetryError {
    /// A setting only the OTLP exporter uses, without an endpoint to export to.
    #[error("{0} is set but {OTLP_ENDPOINT} is not: the runtimes export no telemetry to use it")]
    NeedsEndpoint(&'static str),
    /// A sampler argument for a sampler that takes none.
    #[error(
        "{TRACES_SAMPLER_ARG} is set but {TRACES_SAMPLER} is {0:?}: only traceidratio and \
         parentbased_traceidratio take an argument"
    )]
    ArgWithoutRatioSampler(String),
    /// A ratio sampler without its ratio: the runtime refuses to start without one.
    #[error("{TRACES_SAMPLER} is {0:?}, which needs {TRACES_SAMPLER_ARG}, a ratio from 0 to 1")]
    RatioSamplerWithoutArg(String),
}

impl RuntimeTelemetry {
    /// The variables to set in every runtime container, in a fixed order (the pod template,
    /// and so whether pods roll, depends on it).
    ///
    /// # Errors
    /// When settings contradict each other.
    pub fn runtime_env(&self) -> Result<Vec<(String, String)>, TelemetryError> {
        let set = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        let endpoint = set(&self.otlp_endpoint);
        let vars = [
            (OTLP_ENDPOINT, endpoint.clone()),
            (OTLP_HEADERS, set(&self.otlp_headers)),
            (TRACES_SAMPLER, set(&self.traces_sampler)),
            (TRACES_SAMPLER_ARG, set(&self.traces_sampler_arg)),
            (CAPTURE_MESSAGE_CONTENT, set(&self.capture_message_content)),
            (MODEL_PRICES, set(&self.model_prices)),
        ];
        if endpoint.is_none() {
            // The cost metric is on /metrics; everything else only matters to an exporter.
            let needs = [
                OTLP_HEADERS,
                TRACES_SAMPLER,
                TRACES_SAMPLER_ARG,
                CAPTURE_MESSAGE_CONTENT,
            ];
            if let Some((name, _)) = vars
                .iter()
                .find(|(name, v)| needs.contains(name) && v.is_some())
            {
                return Err(TelemetryError::NeedsEndpoint(name));
            }
        }
        let sampler = set(&self.traces_sampler).unwrap_or_default();
        match (
            sampler.ends_with("traceidratio"),
            set(&self.traces_sampler_arg),
        ) {
            (false, Some(_)) => return Err(TelemetryError::ArgWithoutRatioSampler(sampler)),
            (true, None) => return Err(TelemetryError::RatioSamplerWithoutArg(sampler)),
            _ => {}
        }
        Ok(vars
            .into_iter()
            .filter_map(|(name, v)| v.map(|v| (name.to_string(), v)))
            .collect())
    }
}

fn parse_endpoint(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"));
    match rest {
        _ if text.is_empty() => Ok(String::new()),
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with('/')
                && !text.contains(char::is_whitespace) =>
        {
            Ok(text.to_string())
        }
        _ => Err(format!(
            "{OTLP_ENDPOINT}: {text:?} is not an http:// or https:// URL (for example http://otel-collector.observability:4318)"
        )),
    }
}

/// A header name as HTTP defines it (a token).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn parse_headers(text: &str) -> Result<String, String> {
    for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
        let Some((name, _)) = pair.split_once('=') else {
            return Err(format!(
                "{OTLP_HEADERS}: {pair:?} is not key=value (expected key=value,key2=value2)"
            ));
        };
        if !is_token(name.trim()) {
            return Err(format!("{OTLP_HEADERS}: {name:?} is not a header name"));
        }
    }
    Ok(text.to_string())
}

fn parse_sampler(text: &str) -> Result<String, String> {
    if text.is_empty() || SAMPLERS.contains(&text) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{TRACES_SAMPLER}: {text:?} is not one of {}",
            SAMPLERS.join(", ")
        ))
    }
}

fn parse_ratio(text: &str) -> Result<String, String> {
    match text.trim().parse::<f64>() {
        _ if text.is_empty() => Ok(String::new()),
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(text.trim().to_string()),
        _ => Err(format!(
            "{TRACES_SAMPLER_ARG}: {text:?} is not a ratio from 0 to 1 (for example 0.25)"
        )),
    }
}

fn parse_bool(text: &str) -> Result<String, String> {
    match text.to_ascii_lowercase().as_str() {
        "" => Ok(String::new()),
        b @ ("true" | "false") => Ok(b.to_string()),
        _ => Err(format!(
            "{CAPTURE_MESSAGE_CONTENT}: {text:?} is not true or false"
        )),
    }
}

/// One model's prices, USD per million tokens.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ModelPrice {
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
}

/// Checks `AGENTRY_MODEL_PRICES` and keeps its text as given: a JSON object of model ids to
/// prices, each a non-negative number.
fn parse_model_prices(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Ok(String::new());
    }
    let example = r#"{"anthropic.claude-3-haiku-20240307-v1:0": {"input": 0.25, "output": 1.25, "cacheRead": 0.03, "cacheWrite": 0.3}}"#;
    let prices: BTreeMap<String, serde_json::Value> = serde_json::from_str(text).map_err(|e| {
        format!("{MODEL_PRICES}: not a JSON object of models ({e}); expected {example}")
    })?;
    for (model, value) in &prices {
        let price: ModelPrice = serde_json::from_value(value.clone()).map_err(|e| {
            format!(
                "{MODEL_PRICES}: model {model:?}: {e}; expected {{\"input\": <USD per million \
                 tokens>, \"output\": ..., \"cacheRead\": ..., \"cacheWrite\": ...}} (cache prices optional)"
            )
        })?;
        let fields = [
            ("input", Some(price.input)),
            ("output", Some(price.output)),
            ("cacheRead", price.cache_read),
            ("cacheWrite", price.cache_write),
        ];
        for (field, p) in fields {
            if let Some(p) = p.filter(|p| !p.is_finite() || *p < 0.0) {
                return Err(format!(
                    "{MODEL_PRICES}: model {model:?}: {field} is {p}, not a non-negative number"
                ));
            }
        }
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OperatorConfig;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<RuntimeTelemetry, String> {
        OperatorConfig::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .map(|c| c.telemetry)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn nothing_set_passes_nothing_on() {
        assert_eq!(RuntimeTelemetry::default().runtime_env(), Ok(vec![]));
    }

    #[test]
    fn every_setting_passes_on_under_its_standard_name_in_a_fixed_order() {
        let t = parse(&[
            "--model-prices",
            r#"{"m": {"input": 3, "output": 15}}"#,
            "--otlp-endpoint",
            "http://collector.observability:4318",
            "--otlp-headers",
            "x-tenant=team-a,x-env=prod",
            "--traces-sampler",
            "parentbased_traceidratio",
            "--traces-sampler-arg",
            "0.25",
            "--capture-message-content",
            "TRUE",
        ])
        .unwrap();
        let env = t.runtime_env().unwrap();
        let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                OTLP_ENDPOINT,
                OTLP_HEADERS,
                TRACES_SAMPLER,
                TRACES_SAMPLER_ARG,
                CAPTURE_MESSAGE_CONTENT,
                MODEL_PRICES
            ]
        );
        assert_eq!(env[1].1, "x-tenant=team-a,x-env=prod");
        assert_eq!(env[4].1, "true");
        assert_eq!(env[5].1, r#"{"m": {"input": 3, "output": 15}}"#);
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let t = parse(&["--otlp-endpoint", "", "--model-prices", ""]).unwrap();
        assert_eq!(t.runtime_env(), Ok(vec![]));
    }

    #[test]
    fn model_prices_alone_need_no_endpoint_since_the_cost_metric_is_scraped() {
        let t = parse(&["--model-prices", r#"{"m": {"input": 0, "output": 1.5}}"#]).unwrap();
        assert_eq!(t.runtime_env().unwrap()[0].0, MODEL_PRICES);
    }

    #[test]
    fn model_prices_that_are_not_an_object_of_non_negative_prices_are_refused_naming_the_variable()
    {
        for (bad, says) in [
            ("[1, 2]", "not a JSON object of models"),
            (r#"{"m": 3}"#, "model \"m\""),
            (r#"{"m": {"input": 1}}"#, "missing field `output`"),
            (r#"{"m": {"input": -1, "output": 1}}"#, "input is -1"),
            (
                r#"{"m": {"input": 1, "output": 1, "cacheRead": -0.5}}"#,
                "cacheRead is -0.5",
            ),
            (r#"{"m": {"input": "1", "output": 1}}"#, "invalid type"),
            (
                r#"{"m": {"input": 1, "output": 1, "cached": 1}}"#,
                "unknown field `cached`",
            ),
        ] {
            let err = parse(&["--model-prices", bad]).unwrap_err();
            assert!(
                err.contains(MODEL_PRICES) && err.contains(says),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn malformed_values_are_refused_naming_the_variable() {
        for (flag, bad, var) in [
            ("--otlp-endpoint", "collector:4318", OTLP_ENDPOINT),
            ("--otlp-endpoint", "http://", OTLP_ENDPOINT),
            ("--otlp-headers", "authorization", OTLP_HEADERS),
            ("--otlp-headers", "bad name=1", OTLP_HEADERS),
            ("--traces-sampler", "sometimes", TRACES_SAMPLER),
            ("--traces-sampler-arg", "1.5", TRACES_SAMPLER_ARG),
            ("--traces-sampler-arg", "half", TRACES_SAMPLER_ARG),
            ("--capture-message-content", "yes", CAPTURE_MESSAGE_CONTENT),
        ] {
            let err = parse(&[flag, bad]).unwrap_err();
            assert!(err.contains(var), "{flag} {bad}: {err}");
        }
    }

    #[test]
    fn exporter_settings_without_an_endpoint_are_refused() {
        let t = parse(&["--traces-sampler", "always_on"]).unwrap();
        assert_eq!(
            t.runtime_env(),
            Err(TelemetryError::NeedsEndpoint(TRACES_SAMPLER))
        );
        let t = parse(&["--capture-message-content", "true"]).unwrap();
        assert!(
            t.runtime_env()
                .unwrap_err()
                .to_string()
                .contains(CAPTURE_MESSAGE_CONTENT)
        );
    }

    #[test]
    fn a_sampler_argument_needs_a_ratio_sampler_and_a_ratio_sampler_its_argument() {
        let endpoint = ["--otlp-endpoint", "https://otlp.example.com"];
        let t = parse(&[&endpoint[..], &["--traces-sampler-arg", "0.1"]].concat()).unwrap();
        assert_eq!(
            t.runtime_env(),
            Err(TelemetryError::ArgWithoutRatioSampler(String::new()))
        );
        let t = parse(
            &[
                &endpoint[..],
                &[
                    "--traces-sampler",
                    "always_on",
                    "--traces-sampler-arg",
                    "0.1",
                ],
            ]
            .concat(),
        )
        .unwrap();
        assert!(t.runtime_env().is_err());
        let t = parse(
            &[
                &endpoint[..],
                &[
                    "--traces-sampler",
                    "traceidratio",
                    "--traces-sampler-arg",
                    "0.1",
                ],
            ]
            .concat(),
        )
        .unwrap();
        assert_eq!(t.runtime_env().unwrap().len(), 3);
        let t = parse(
            &[
                &endpoint[..],
                &["--traces-sampler", "parentbased_traceidratio"],
            ]
            .concat(),
        )
        .unwrap();
        assert_eq!(
            t.runtime_env(),
            Err(TelemetryError::RatioSamplerWithoutArg(
                "parentbased_traceidratio".into()
            ))
        );
    }
}
