//! The price table behind `agentry_runtime_estimated_cost_usd_total`: on-demand list prices of
//! the Claude models on Amazon Bedrock, US dollars per million tokens, as published when
//! [`PRICES_TAKEN`] says (the 4.5 models' in-region and geographic ids at their 10 % premium
//! over `global.`). An estimate: no batch, provisioned-throughput, long-context (over 200K
//! tokens) or negotiated prices. `AGENTRY_MODEL_PRICES` (the chart's `telemetry.modelPrices`) adds models
//! or replaces these.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::conversation::Usage;

/// When the built-in prices were taken from the Amazon Bedrock pricing page.
pub const PRICES_TAKEN: &str = "2025-11";

/// Prices of one model, US dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Price {
    /// Input tokens.
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Input tokens read from the prompt cache; default a tenth of `input`.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Input tokens written to the prompt cache; default 1.25 × `input`.
    #[serde(default)]
    pub cache_write: Option<f64>,
}

impl Price {
    const fn of(input: f64, output: f64) -> Self {
        Self {
            input,
            output,
            cache_read: None,
            cache_write: None,
        }
    }

    fn times(self, k: f64) -> Self {
        Self {
            input: self.input * k,
            output: self.output * k,
            cache_read: Some(self.cache_read.unwrap_or(self.input * 0.1) * k),
            cache_write: Some(self.cache_write.unwrap_or(self.input * 1.25) * k),
        }
    }

    /// The cost of `usage`, in US dollars.
    pub fn cost(&self, usage: Usage) -> f64 {
        let per = |tokens: u64, price: f64| tokens as f64 * price / 1_000_000.0;
        per(usage.input_tokens, self.input)
            + per(usage.output_tokens, self.output)
            + per(
                usage.cache_read_input_tokens,
                self.cache_read.unwrap_or(self.input * 0.1),
            )
            + per(
                usage.cache_write_input_tokens,
                self.cache_write.unwrap_or(self.input * 1.25),
            )
    }
}

/// The built-in table, by base model id (no cross-region prefix, no version suffix).
const BUILT_IN: [(&str, Price); 13] = [
    ("anthropic.claude-opus-4-5-20251101", Price::of(5.0, 25.0)),
    ("anthropic.claude-opus-4-1-20250805", Price::of(15.0, 75.0)),
    ("anthropic.claude-opus-4-20250514", Price::of(15.0, 75.0)),
    ("anthropic.claude-sonnet-4-5-20250929", Price::of(3.0, 15.0)),
    ("anthropic.claude-sonnet-4-20250514", Price::of(3.0, 15.0)),
    ("anthropic.claude-3-7-sonnet-20250219", Price::of(3.0, 15.0)),
    ("anthropic.claude-3-5-sonnet-20241022", Price::of(3.0, 15.0)),
    ("anthropic.claude-3-5-sonnet-20240620", Price::of(3.0, 15.0)),
    ("anthropic.claude-haiku-4-5-20251001", Price::of(1.0, 5.0)),
    ("anthropic.claude-3-5-haiku-20241022", Price::of(0.8, 4.0)),
    (
        "anthropic.claude-3-haiku-20240307",
        Price {
            input: 0.25,
            output: 1.25,
            cache_read: Some(0.03),
            cache_write: Some(0.3),
        },
    ),
    ("anthropic.claude-3-opus-20240229", Price::of(15.0, 75.0)),
    ("anthropic.claude-3-sonnet-20240229", Price::of(3.0, 15.0)),
];

/// Why `AGENTRY_MODEL_PRICES` cannot be used.
#[derive(Debug, thiserror::Error)]
#[error(
    "AGENTRY_MODEL_PRICES: {0} (expected a JSON object of model id → {{\"input\": N, \"output\": N, \"cacheRead\": N, \"cacheWrite\": N}}, US dollars per million tokens, cache prices optional)"
)]
pub struct PricesError(String);

/// Parses an override table, refusing negative or non-finite prices.
pub fn parse(text: &str) -> Result<BTreeMap<String, Price>, PricesError> {
    let table: BTreeMap<String, Price> =
        serde_json::from_str(text).map_err(|e| PricesError(e.to_string()))?;
    for (model, p) in &table {
        for (field, v) in [
            ("input", Some(p.input)),
            ("output", Some(p.output)),
            ("cacheRead", p.cache_read),
            ("cacheWrite", p.cache_write),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(PricesError(format!(
                    "{model}.{field} is {v}; a price is a number of dollars, 0 or more"
                )));
            }
        }
    }
    Ok(table)
}

/// The base model of an id as an Agent names it: an ARN's last segment, without a
/// cross-region inference profile's geography (`us.`, `eu.`, `global.`, ...) and without the
/// version suffix (`-v1:0`).
pub fn base_model(id: &str) -> &str {
    let id = id.rsplit('/').next().unwrap_or(id);
    let id = match id.split_once('.') {
        Some((geo, rest)) if rest.contains('.') && !geo.contains('-') && geo.len() <= 6 => rest,
        _ => id,
    };
    match id.rfind("-v") {
        Some(i)
            if id[i + 2..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit()) =>
        {
            &id[..i]
        }
        _ => id,
    }
}

/// The price of `model`: an override for the id exactly as written, else one for its base
/// model, else the built-in price of its base model; `None` for a model not in either (an
/// application inference profile ARN, a model the table does not list).
pub fn price(model: &str, overrides: &BTreeMap<String, Price>) -> Option<Price> {
    let base = base_model(model);
    if let Some(p) = overrides.get(model).or_else(|| overrides.get(base)) {
        return Some(*p);
    }
    let p = BUILT_IN.iter().find(|(m, _)| *m == base).map(|(_, p)| *p)?;
    let global = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .starts_with("global.");
    Some(if REGIONAL_PREMIUM.contains(&base) && !global {
        p.times(1.1)
    } else {
        p
    })
}

/// Models whose in-region and geographic (`us.`, `eu.`, ...) ids cost 10 % more than their
/// `global.` inference profile, which the table lists.
const REGIONAL_PREMIUM: [&str; 3] = [
    "anthropic.claude-opus-4-5-20251101",
    "anthropic.claude-sonnet-4-5-20250929",
    "anthropic.claude-haiku-4-5-20251001",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(i: u64, o: u64, r: u64, w: u64) -> Usage {
        Usage {
            input_tokens: i,
            output_tokens: o,
            cache_read_input_tokens: r,
            cache_write_input_tokens: w,
        }
    }

    #[test]
    fn profiles_arns_and_versions_name_their_base_model() {
        for id in [
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
        ] {
            assert_eq!(
                base_model(id),
                "anthropic.claude-sonnet-4-5-20250929",
                "{id}"
            );
        }
        assert_eq!(base_model("custom-model"), "custom-model");
    }

    #[test]
    fn regional_ids_of_the_4_5_models_cost_a_tenth_more_than_global_ones() {
        let none = BTreeMap::new();
        let g = price("global.anthropic.claude-sonnet-4-5-20250929-v1:0", &none).unwrap();
        let us = price("us.anthropic.claude-sonnet-4-5-20250929-v1:0", &none).unwrap();
        assert_eq!((g.input, g.output), (3.0, 15.0));
        assert!((us.input - 3.3).abs() < 1e-9 && (us.output - 16.5).abs() < 1e-9);
        let older = price("us.anthropic.claude-sonnet-4-20250514-v1:0", &none).unwrap();
        assert_eq!(older.input, 3.0);
    }

    #[test]
    fn a_known_usage_costs_the_list_price() {
        let p = price(
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            &BTreeMap::new(),
        )
        .unwrap();
        // 1M input at $3, 100k output at $15, 1M cache reads at $0.30, 100k writes at $3.75.
        let c = p.cost(usage(1_000_000, 100_000, 1_000_000, 100_000));
        assert!((c - (3.0 + 1.5 + 0.3 + 0.375)).abs() < 1e-9, "{c}");
    }

    #[test]
    fn an_override_wins_by_exact_id_then_by_base_model() {
        let o = parse(r#"{"anthropic.claude-haiku-4-5-20251001": {"input": 2, "output": 8},
            "arn:aws:bedrock:us-east-1:1:application-inference-profile/abc": {"input": 1, "output": 1, "cacheRead": 0, "cacheWrite": 0}}"#).unwrap();
        let p = price("us.anthropic.claude-haiku-4-5-20251001-v1:0", &o).unwrap();
        assert_eq!((p.input, p.output), (2.0, 8.0));
        let app = price(
            "arn:aws:bedrock:us-east-1:1:application-inference-profile/abc",
            &o,
        )
        .unwrap();
        assert_eq!(
            app.cost(usage(10, 10, 1_000_000, 1_000_000)),
            20.0 / 1_000_000.0
        );
        assert_eq!(
            price(
                "arn:aws:bedrock:us-east-1:1:application-inference-profile/x",
                &o
            ),
            None
        );
    }

    #[test]
    fn bad_override_tables_are_refused_naming_the_entry() {
        let e = parse(r#"{"m": {"input": -1, "output": 1}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.input is -1"), "{e}");
        let e = parse(r#"{"m": {"input": 1}}"#).unwrap_err().to_string();
        assert!(e.contains("output"), "{e}");
        let e = parse(r#"{"m": {"input": 1, "output": 1, "cached": 2}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cached"), "{e}");
        assert!(parse("[1]").is_err());
    }
}
