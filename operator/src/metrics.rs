//! Prometheus metrics of the operator. Label values come from fixed sets (outcome, error
//! category, kind), never from object names, so the series count stays bounded.

use std::time::Instant;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = [(&'static str, &'static str); 1];

/// The operator's metrics.
pub struct Metrics {
    registry: Registry,
    reconciliations: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    duration: Histogram,
    watched: Family<Labels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `agentry_operator` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("agentry_operator");
        let reconciliations = Family::<Labels, Counter>::default();
        registry.register(
            "reconciliations",
            "Agent reconciliations by outcome (success, error)",
            reconciliations.clone(),
        );
        let errors = Family::<Labels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciliations by error category",
            errors.clone(),
        );
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register(
            "reconcile_duration_seconds",
            "Time to reconcile one Agent",
            duration.clone(),
        );
        let watched = Family::<Labels, Gauge>::default();
        registry.register(
            "watched_objects",
            "Objects in the operator's caches, by kind",
            watched.clone(),
        );
        Self {
            registry,
            reconciliations,
            errors,
            duration,
            watched,
        }
    }

    /// Starts timing one reconcile.
    pub fn start(&self) -> Instant {
        Instant::now()
    }

    /// Records a successful reconcile that started at `start`.
    pub fn success(&self, start: Instant) {
        self.duration.observe(start.elapsed().as_secs_f64());
        self.reconciliations
            .get_or_create(&[("outcome", "success")])
            .inc();
    }

    /// Records a failed reconcile, by error category.
    pub fn failure(&self, start: Instant, category: &'static str) {
        self.duration.observe(start.elapsed().as_secs_f64());
        self.reconciliations
            .get_or_create(&[("outcome", "error")])
            .inc();
        self.errors.get_or_create(&[("category", category)]).inc();
    }

    /// Sets how many objects of `kind` the caches hold.
    pub fn set_watched(&self, kind: &'static str, count: usize) {
        self.watched
            .get_or_create(&[("kind", kind)])
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_categories_are_counted_with_bounded_labels() {
        let m = Metrics::new();
        m.success(m.start());
        m.failure(m.start(), "apply");
        m.set_watched("Agent", 3);
        let text = m.render();
        assert!(
            text.contains("agentry_operator_reconciliations_total{outcome=\"success\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("agentry_operator_reconcile_errors_total{category=\"apply\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("agentry_operator_watched_objects{kind=\"Agent\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("agentry_operator_reconcile_duration_seconds_count 2"),
            "{text}"
        );
    }
}
