//! Readiness metrics: `ready_latency_seconds`, the time from the operator's first sight of an
//! Agent's new `metadata.generation` (its watch event) to the status write that reports
//! `Ready=True` for that generation; and the counts of Agents by their `Ready` condition that
//! the `agents` gauge shows.
//!
//! A generation is new when the Agent's status reports an older one (or none): the operator has
//! not written a status for it yet. Watch events arrive in order, so a late event of the same
//! generation (after a status write for it) does not restart the clock. Pending entries are
//! dropped when the latency is observed, when a newer generation replaces them, when the Agent
//! is deleted, or when a relist no longer lists it; at most [`MAX_PENDING`] are kept.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use agentry_crds::{Agent, AgentStatus};
use kube::ResourceExt;
use kube::runtime::watcher::Event;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::status::types;

/// Most generations waiting to become Ready that are remembered; past it the oldest is dropped.
pub const MAX_PENDING: usize = 10_000;

#[derive(Debug)]
struct Pending {
    namespace: String,
    generation: i64,
    since: Instant,
}

/// The `ready_latency_seconds` histogram and the generations still waiting for `Ready=True`.
#[derive(Debug)]
pub struct ReadyLatency {
    histogram: Histogram,
    pending: Mutex<HashMap<String, Pending>>,
}

impl Default for ReadyLatency {
    fn default() -> Self {
        Self {
            // 0.25 s to about 8.5 minutes: a rollout waits for pods to pull and start.
            histogram: Histogram::new(exponential_buckets(0.25, 2.0, 12)),
            pending: Mutex::default(),
        }
    }
}

/// The generation of `agent` the operator has not reported on yet, if any.
fn new_generation(agent: &Agent) -> Option<i64> {
    let generation = agent.metadata.generation?;
    let observed = agent.status.as_ref().and_then(|s| s.observed_generation);
    observed
        .is_none_or(|o| o < generation)
        .then_some(generation)
}

/// Whether `status` says `Ready=True` for `generation`.
fn ready_for(status: &AgentStatus, generation: i64) -> bool {
    status.conditions.iter().any(|c| {
        c.type_ == types::READY && c.status == "True" && c.observed_generation == Some(generation)
    })
}

impl ReadyLatency {
    /// The histogram, for registering.
    pub fn histogram(&self) -> Histogram {
        self.histogram.clone()
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many generations wait for `Ready=True`.
    pub fn waiting(&self) -> usize {
        self.pending().len()
    }

    /// The watch delivered `agent` at `now`: starts the clock of a generation new to it.
    pub fn seen(&self, agent: &Agent, now: Instant) {
        let (Some(generation), Some(uid)) = (new_generation(agent), agent.uid()) else {
            return;
        };
        let mut pending = self.pending();
        if pending
            .get(&uid)
            .is_some_and(|p| p.generation >= generation)
        {
            return;
        }
        if pending.len() >= MAX_PENDING && !pending.contains_key(&uid) {
            let oldest = pending
                .iter()
                .min_by_key(|(_, p)| p.since)
                .map(|(uid, _)| uid.clone());
            if let Some(oldest) = oldest {
                pending.remove(&oldest);
            }
        }
        let namespace = agent.namespace().unwrap_or_default();
        pending.insert(
            uid,
            Pending {
                namespace,
                generation,
                since: now,
            },
        );
    }

    /// The operator wrote `status` for `agent` at `now`: when it reports `Ready=True` for the
    /// generation waiting, observes the latency and drops the entry.
    pub fn reported(&self, agent: &Agent, status: &AgentStatus, now: Instant) {
        let (Some(generation), Some(uid)) = (agent.metadata.generation, agent.uid()) else {
            return;
        };
        if !ready_for(status, generation) {
            return;
        }
        let mut pending = self.pending();
        if pending
            .get(&uid)
            .is_some_and(|p| p.generation == generation)
            && let Some(p) = pending.remove(&uid)
        {
            self.histogram
                .observe(now.saturating_duration_since(p.since).as_secs_f64());
        }
    }

    /// Forgets a deleted Agent.
    pub fn forget(&self, uid: &str) {
        self.pending().remove(uid);
    }

    /// A relist of `scope` (a namespace, or `None` for all) found exactly the Agents `live`:
    /// forgets the others of that scope (deleted while the watch was down).
    pub fn relisted(&self, scope: Option<&str>, live: &HashSet<String>) {
        self.pending()
            .retain(|uid, p| scope.is_some_and(|s| s != p.namespace) || live.contains(uid));
    }
}

/// Feeds one controller's Agent watch events to [`ReadyLatency`].
#[derive(Debug, Default)]
pub struct ReadyWatch {
    scope: Option<String>,
    relisting: Option<HashSet<String>>,
}

impl ReadyWatch {
    /// For the controller of `scope` (a namespace, or `None` for all).
    pub fn new(scope: Option<String>) -> Self {
        Self {
            scope,
            relisting: None,
        }
    }

    /// Handles one watch event, at `now`.
    pub fn on_event(&mut self, latency: &ReadyLatency, event: &Event<Agent>, now: Instant) {
        match event {
            Event::Apply(agent) => latency.seen(agent, now),
            Event::Delete(agent) => {
                if let Some(uid) = agent.uid() {
                    latency.forget(&uid);
                }
            }
            Event::Init => self.relisting = Some(HashSet::new()),
            Event::InitApply(agent) => {
                latency.seen(agent, now);
                if let (Some(live), Some(uid)) = (self.relisting.as_mut(), agent.uid()) {
                    live.insert(uid);
                }
            }
            Event::InitDone => {
                if let Some(live) = self.relisting.take() {
                    latency.relisted(self.scope.as_deref(), &live);
                }
            }
        }
    }
}

/// Agents by the status of their `Ready` condition: `True`, `False`, and `Unknown` (no `Ready`
/// condition for the current generation yet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadyCounts {
    /// `Ready=True` for the current generation.
    pub ready: i64,
    /// `Ready=False` for the current generation.
    pub not_ready: i64,
    /// No `Ready` condition for the current generation.
    pub unknown: i64,
}

impl ReadyCounts {
    /// Counts `agents`.
    pub fn of<'a>(agents: impl IntoIterator<Item = &'a Agent>) -> Self {
        let mut counts = Self::default();
        for agent in agents {
            let ready = agent.status.as_ref().and_then(|s| {
                s.conditions.iter().find(|c| {
                    c.type_ == types::READY && c.observed_generation == agent.metadata.generation
                })
            });
            match ready.map(|c| c.status.as_str()) {
                Some("True") => counts.ready += 1,
                Some("False") => counts.not_ready += 1,
                _ => counts.unknown += 1,
            }
        }
        counts
    }

    /// The sum of two counts.
    pub fn plus(self, other: Self) -> Self {
        Self {
            ready: self.ready + other.ready,
            not_ready: self.not_ready + other.not_ready,
            unknown: self.unknown + other.unknown,
        }
    }
}

#[cfg(test)]
mod tests;
