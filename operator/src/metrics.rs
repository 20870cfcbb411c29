//! Prometheus metrics of the operator. Label values come from fixed sets (outcome, error
//! category, kind, a condition status), never from object names, so the series count stays
//! bounded. Gauges of the caches are kept per controller (one per watched namespace) and shown
//! summed, so controllers do not overwrite each other's counts.

pub mod ready;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use self::ready::{ReadyCounts, ReadyLatency};

type Labels = [(&'static str, &'static str); 1];

/// What one controller's caches hold.
#[derive(Default)]
struct ScopeCounts {
    watched: BTreeMap<&'static str, usize>,
    agents: ReadyCounts,
}

/// The operator's metrics.
pub struct Metrics {
    registry: Registry,
    reconciliations: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    duration: Histogram,
    watched: Family<Labels, Gauge>,
    agents: Family<Labels, Gauge>,
    ready: ReadyLatency,
    /// By controller scope: the namespace, or "" for all.
    scopes: Mutex<BTreeMap<String, ScopeCounts>>,
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
        let agents = Family::<Labels, Gauge>::default();
        registry.register(
            "agents",
            "Agents by their Ready condition for the current generation (True, False, Unknown: none yet)",
            agents.clone(),
        );
        let ready = ReadyLatency::default();
        registry.register(
            "ready_latency_seconds",
            "Time from the operator first seeing an Agent's new generation to the status write reporting Ready=True for it",
            ready.histogram(),
        );
        // Every series of a bounded label set exists from the start, at zero: a family without
        // series is not even described on /metrics, and rate() over a series that appears with
        // its first error misses that error.
        for outcome in ["success", "error"] {
            drop(reconciliations.get_or_create(&[("outcome", outcome)]));
        }
        for category in crate::reconcile::Error::CATEGORIES {
            drop(errors.get_or_create(&[("category", category)]));
        }
        let metrics = Self {
            registry,
            reconciliations,
            errors,
            duration,
            watched,
            agents,
            ready,
            scopes: Mutex::default(),
        };
        metrics.set_watched(None, "Agent", 0);
        metrics
    }

    /// The readiness latency tracker.
    pub fn ready_latency(&self) -> &ReadyLatency {
        &self.ready
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

    /// Updates the counts of the controller of `scope` (a namespace, or `None` for all), then
    /// the gauges to the sums over every controller.
    fn update_scope(&self, scope: Option<&str>, update: impl FnOnce(&mut ScopeCounts)) {
        let mut scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        update(
            scopes
                .entry(scope.unwrap_or_default().to_string())
                .or_default(),
        );
        let mut watched: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut agents = ReadyCounts::default();
        for s in scopes.values() {
            for (kind, n) in &s.watched {
                *watched.entry(kind).or_default() += n;
            }
            agents = agents.plus(s.agents);
        }
        for (kind, n) in watched {
            self.watched
                .get_or_create(&[("kind", kind)])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        for (status, n) in [
            ("True", agents.ready),
            ("False", agents.not_ready),
            ("Unknown", agents.unknown),
        ] {
            self.agents.get_or_create(&[("ready", status)]).set(n);
        }
    }

    /// Sets how many objects of `kind` the caches of the controller of `scope` hold.
    pub fn set_watched(&self, scope: Option<&str>, kind: &'static str, count: usize) {
        self.update_scope(scope, |s| {
            s.watched.insert(kind, count);
        });
    }

    /// Sets the Agents by Ready condition in the cache of the controller of `scope`.
    pub fn set_agents(&self, scope: Option<&str>, counts: ReadyCounts) {
        self.update_scope(scope, |s| s.agents = counts);
    }

    /// The controller of `scope` stopped (shutdown, or this replica lost the lease): its caches
    /// count no more.
    pub fn clear_scope(&self, scope: Option<&str>) {
        self.update_scope(scope, |s| *s = ScopeCounts::default());
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
        m.set_watched(None, "Agent", 3);
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

#[cfg(test)]
mod scope_tests {
    use super::*;
    use crate::build::fixtures::agent;

    fn counts(ready: i64, not_ready: i64, unknown: i64) -> ReadyCounts {
        ReadyCounts {
            ready,
            not_ready,
            unknown,
        }
    }

    #[test]
    fn controllers_of_several_namespaces_are_summed_not_overwritten() {
        let m = Metrics::new();
        m.set_watched(Some("team-a"), "Agent", 3);
        m.set_watched(Some("team-b"), "Agent", 2);
        m.set_agents(Some("team-a"), counts(2, 1, 0));
        m.set_agents(Some("team-b"), counts(1, 0, 1));
        let text = m.render();
        assert!(
            text.contains("agentry_operator_watched_objects{kind=\"Agent\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("agentry_operator_agents{ready=\"True\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("agentry_operator_agents{ready=\"False\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("agentry_operator_agents{ready=\"Unknown\"} 1"),
            "{text}"
        );

        m.clear_scope(Some("team-a"));
        let text = m.render();
        assert!(
            text.contains("agentry_operator_watched_objects{kind=\"Agent\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("agentry_operator_agents{ready=\"False\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn every_family_is_described_before_any_agent_is_seen() {
        let text = Metrics::new().render();
        for family in [
            "agentry_operator_reconciliations counter",
            "agentry_operator_reconcile_errors counter",
            "agentry_operator_reconcile_duration_seconds histogram",
            "agentry_operator_watched_objects gauge",
            "agentry_operator_agents gauge",
            "agentry_operator_ready_latency_seconds histogram",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family}")),
                "{family}: {text}"
            );
        }
    }

    #[test]
    fn agents_are_counted_by_the_ready_condition_of_their_current_generation() {
        let with = |generation: i64, status: Option<(&str, i64)>| {
            let conditions = status.map_or(String::new(), |(s, observed)| {
                format!(
                    "status:\n  conditions:\n    - {{type: Ready, status: \"{s}\", reason: R, message: m, \
                     observedGeneration: {observed}, lastTransitionTime: \"2025-01-01T00:00:00Z\"}}\n"
                )
            });
            agent(&format!(
                "apiVersion: agentry.dev/v1alpha1\nkind: Agent\nmetadata: {{name: a, namespace: n, \
                 generation: {generation}}}\nspec: {{model: {{id: m}}, systemPrompt: p}}\n{conditions}"
            ))
        };
        let agents = [
            with(1, Some(("True", 1))),
            with(2, Some(("True", 1))),
            with(3, Some(("False", 3))),
            with(1, None),
        ];
        assert_eq!(ReadyCounts::of(&agents), counts(1, 1, 2));
    }
}
