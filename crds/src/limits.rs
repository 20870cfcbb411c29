//! Per-invocation limits, and the defaults applied when a limit is not set.
//!
//! Defaults are applied when the spec is read ([`Limits::effective`]), never written into the
//! user's spec: a GitOps tool comparing its manifest with the live object must see no drift.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Default for `limits.maxIterations`.
pub const DEFAULT_MAX_ITERATIONS: u32 = 10;
/// Default for `limits.maxTokensPerInvocation`.
pub const DEFAULT_MAX_TOKENS_PER_INVOCATION: u64 = 200_000;
/// Default for `limits.timeoutSeconds`.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 120;
/// Default for `limits.toolTimeoutSeconds`.
pub const DEFAULT_TOOL_TIMEOUT_SECONDS: u32 = 30;
/// Default for `limits.maxConcurrentInvocations`.
pub const DEFAULT_MAX_CONCURRENT_INVOCATIONS: u32 = 128;

/// Limits that stop an invocation, or refuse new ones, before they run away. Every limit is
/// optional; the default of each is given in its description.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Most model calls in one invocation (1 to 100). Default 10. An invocation that reaches it
    /// stops with stopReason `max_iterations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub max_iterations: Option<i32>,

    /// Most input plus output tokens one invocation may use across all its model calls (at least
    /// 1). Default 200000. An invocation that reaches it stops with stopReason `token_budget`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000000))]
    pub max_tokens_per_invocation: Option<i64>,

    /// Deadline of one invocation in seconds (1 to 3600). Default 120. An invocation that passes
    /// it stops with stopReason `deadline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: Option<i32>,

    /// Default deadline of one tool call in seconds (1 to 3600), for tools that set none. Default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub tool_timeout_seconds: Option<i32>,

    /// Most invocations one runtime pod serves at once (1 to 10000); further requests get HTTP
    /// 429. Default 128, which a pod with the default resources (100m CPU, 64Mi requested) holds
    /// in about 21 MB. Raise it together with `resources`: each further invocation in flight
    /// takes about 65 KB and, at 1 s per model call, 0.2 to 0.5 millicores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_concurrent_invocations: Option<i32>,
}

/// Limits with every default applied.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveLimits {
    /// See [`Limits::max_iterations`].
    pub max_iterations: u32,
    /// See [`Limits::max_tokens_per_invocation`].
    pub max_tokens_per_invocation: u64,
    /// See [`Limits::timeout_seconds`].
    pub timeout_seconds: u32,
    /// See [`Limits::tool_timeout_seconds`].
    pub tool_timeout_seconds: u32,
    /// See [`Limits::max_concurrent_invocations`].
    pub max_concurrent_invocations: u32,
}

impl Default for EffectiveLimits {
    fn default() -> Self {
        Self {
            max_iterations: DEFAULT_MAX_ITERATIONS,
            max_tokens_per_invocation: DEFAULT_MAX_TOKENS_PER_INVOCATION,
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            tool_timeout_seconds: DEFAULT_TOOL_TIMEOUT_SECONDS,
            max_concurrent_invocations: DEFAULT_MAX_CONCURRENT_INVOCATIONS,
        }
    }
}

/// A set value if it is positive, else the default. The schema already refuses values below 1;
/// this only keeps an object that bypassed validation from producing a zero limit.
fn positive<T: TryFrom<i64>>(value: Option<impl Into<i64>>, default: T) -> T {
    value
        .map(Into::into)
        .filter(|v| *v >= 1)
        .and_then(|v| T::try_from(v).ok())
        .unwrap_or(default)
}

impl Limits {
    /// The limits with defaults applied to every unset field.
    pub fn effective(limits: Option<&Limits>) -> EffectiveLimits {
        let d = EffectiveLimits::default();
        let Some(l) = limits else { return d };
        EffectiveLimits {
            max_iterations: positive(l.max_iterations, d.max_iterations),
            max_tokens_per_invocation: positive(
                l.max_tokens_per_invocation,
                d.max_tokens_per_invocation,
            ),
            timeout_seconds: positive(l.timeout_seconds, d.timeout_seconds),
            tool_timeout_seconds: positive(l.tool_timeout_seconds, d.tool_timeout_seconds),
            max_concurrent_invocations: positive(
                l.max_concurrent_invocations,
                d.max_concurrent_invocations,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_limits_take_the_documented_defaults() {
        let e = Limits::effective(None);
        assert_eq!(e.max_iterations, 10);
        assert_eq!(e.max_tokens_per_invocation, 200_000);
        assert_eq!(e.timeout_seconds, 120);
        assert_eq!(e.tool_timeout_seconds, 30);
        assert_eq!(e.max_concurrent_invocations, 128);
    }

    #[test]
    fn set_limits_win_over_defaults_field_by_field() {
        let l = Limits {
            max_iterations: Some(3),
            timeout_seconds: Some(5),
            ..Default::default()
        };
        let e = Limits::effective(Some(&l));
        assert_eq!(e.max_iterations, 3);
        assert_eq!(e.timeout_seconds, 5);
        assert_eq!(e.tool_timeout_seconds, DEFAULT_TOOL_TIMEOUT_SECONDS);
    }

    #[test]
    fn a_zero_limit_that_bypassed_the_schema_falls_back_to_the_default() {
        let l = Limits {
            max_concurrent_invocations: Some(0),
            ..Default::default()
        };
        assert_eq!(Limits::effective(Some(&l)).max_concurrent_invocations, 128);
    }
}
