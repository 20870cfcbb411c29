//! Tests of the parent module.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

use super::*;
use crate::build::fixtures::agent;

/// An Agent `uid` at `generation` whose status reports `observed` (with Ready=`ready`), or none.
fn at(uid: &str, generation: i64, observed: Option<(i64, &str)>) -> Agent {
    let status = observed.map_or(String::new(), |(g, ready)| {
        format!(
            "status:\n  observedGeneration: {g}\n  conditions:\n    - {{type: Ready, status: \"{ready}\", \
             reason: R, message: m, observedGeneration: {g}, lastTransitionTime: \"2025-01-01T00:00:00Z\"}}\n"
        )
    });
    agent(&format!(
        "apiVersion: agentry.dev/v1alpha1\nkind: Agent\nmetadata: {{name: a-{uid}, namespace: ns-{uid}, \
         uid: {uid}, generation: {generation}}}\nspec: {{model: {{id: m}}, systemPrompt: p}}\n{status}"
    ))
}

fn status(a: &Agent, ready: &str) -> AgentStatus {
    at("x", 0, Some((a.metadata.generation.unwrap(), ready)))
        .status
        .unwrap()
}

/// (count, sum) of the histogram.
fn observed(l: &ReadyLatency) -> (u64, f64) {
    let mut r = Registry::default();
    r.register("ready_latency_seconds", "h", l.histogram());
    let mut text = String::new();
    encode(&mut text, &r).unwrap();
    let value = |suffix: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("ready_latency_seconds_{suffix} ")))
            .unwrap()
            .to_string()
    };
    (
        value("count").parse().unwrap(),
        value("sum").parse().unwrap(),
    )
}

#[test]
fn latency_runs_from_the_first_watch_event_of_a_generation_to_the_ready_status_write() {
    let l = ReadyLatency::default();
    let t0 = Instant::now();
    let changed = at("u1", 2, Some((1, "True")));
    l.seen(&changed, t0);
    // Later events of the same generation (our own Ready=False write) do not restart the clock.
    l.seen(&changed, t0 + Duration::from_secs(1));
    l.reported(
        &changed,
        &status(&changed, "False"),
        t0 + Duration::from_secs(2),
    );
    assert_eq!(observed(&l), (0, 0.0));
    l.reported(
        &changed,
        &status(&changed, "True"),
        t0 + Duration::from_secs(3),
    );
    assert_eq!(observed(&l), (1, 3.0));
    assert_eq!(l.waiting(), 0, "the entry is dropped once observed");
    // A second Ready=True write of the same generation is not a second observation.
    l.reported(
        &changed,
        &status(&changed, "True"),
        t0 + Duration::from_secs(9),
    );
    assert_eq!(observed(&l), (1, 3.0));
}

#[test]
fn a_generation_the_status_already_reports_is_not_new() {
    let l = ReadyLatency::default();
    let now = Instant::now();
    // After an operator restart, or a late event after our status write for generation 2.
    l.seen(&at("u1", 2, Some((2, "True"))), now);
    l.seen(&at("u2", 2, Some((2, "False"))), now);
    assert_eq!(l.waiting(), 0);
    // An Agent never reported on is new.
    l.seen(&at("u3", 1, None), now);
    assert_eq!(l.waiting(), 1);
}

#[test]
fn a_newer_generation_restarts_the_clock_and_ready_for_an_older_one_is_not_counted() {
    let l = ReadyLatency::default();
    let t0 = Instant::now();
    let g2 = at("u1", 2, Some((1, "True")));
    let g3 = at("u1", 3, Some((1, "True")));
    l.seen(&g2, t0);
    l.seen(&g3, t0 + Duration::from_secs(5));
    // A stale event of generation 2 arriving late changes nothing.
    l.seen(&g2, t0 + Duration::from_secs(6));
    l.reported(&g2, &status(&g2, "True"), t0 + Duration::from_secs(7));
    assert_eq!(observed(&l), (0, 0.0));
    l.reported(&g3, &status(&g3, "True"), t0 + Duration::from_secs(8));
    assert_eq!(observed(&l), (1, 3.0));
}

#[test]
fn a_deleted_agent_is_forgotten_and_so_is_one_a_relist_no_longer_lists() {
    let l = ReadyLatency::default();
    let now = Instant::now();
    let mut watch = ReadyWatch::new(None);
    let (a, b, c) = (at("u1", 1, None), at("u2", 1, None), at("u3", 1, None));
    for x in [&a, &b, &c] {
        watch.on_event(&l, &Event::Apply(x.clone()), now);
    }
    assert_eq!(l.waiting(), 3);
    watch.on_event(&l, &Event::Delete(a.clone()), now);
    assert_eq!(l.waiting(), 2);
    // The watch restarted and b was deleted meanwhile: the relist lists only c.
    watch.on_event(&l, &Event::Init, now);
    watch.on_event(&l, &Event::InitApply(c.clone()), now);
    watch.on_event(&l, &Event::InitDone, now);
    assert_eq!(l.waiting(), 1);
    l.reported(&c, &status(&c, "True"), now);
    assert_eq!(observed(&l).0, 1);
}

#[test]
fn a_relist_of_one_namespace_leaves_the_other_namespaces_entries_alone() {
    let l = ReadyLatency::default();
    let now = Instant::now();
    l.seen(&at("u1", 1, None), now);
    l.seen(&at("u2", 1, None), now);
    let mut watch = ReadyWatch::new(Some("ns-u1".into()));
    watch.on_event(&l, &Event::Init, now);
    watch.on_event(&l, &Event::InitDone, now);
    assert_eq!(
        l.waiting(),
        1,
        "u1 was not relisted in ns-u1; u2 is another scope's"
    );
}

#[test]
fn at_most_max_pending_generations_are_remembered_dropping_the_oldest() {
    let l = ReadyLatency::default();
    let t0 = Instant::now();
    let first = at("u-first", 1, None);
    l.seen(&first, t0);
    for i in 1..MAX_PENDING {
        l.seen(
            &at(&format!("u{i}"), 1, None),
            t0 + Duration::from_millis(1),
        );
    }
    assert_eq!(l.waiting(), MAX_PENDING);
    l.seen(&at("u-last", 1, None), t0 + Duration::from_millis(2));
    assert_eq!(l.waiting(), MAX_PENDING);
    l.reported(&first, &status(&first, "True"), t0 + Duration::from_secs(1));
    assert_eq!(observed(&l).0, 0, "the oldest entry was the one dropped");
}
