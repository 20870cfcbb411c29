//! Tracing's cost: the same scenario with tracing off, and on at full sampling exporting
//! OTLP/HTTP to a sink in this process that reads and drops every export (so only the
//! runtime's own work is measured), optionally beside an older runtime binary as the baseline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::routing::post;

use super::drive::{self, Scenario, Side};

/// A runtime binary (`None`: the one built with this benchmark) and the environment it gets
/// beyond the usual.
pub type Variant = (Option<std::path::PathBuf>, Vec<(&'static str, String)>);

/// The name of an invocation's span, as it appears in the protobuf of each.
const INVOCATION_SPAN: &[u8] = b"invoke_agent bench";

/// A sink for `/v1/traces`: counts exports, their bytes and the invocation spans in them.
async fn sink() -> (String, Arc<(AtomicU64, AtomicU64, AtomicU64)>) {
    let seen = Arc::new((AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)));
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let s = s.clone();
            async move {
                s.0.fetch_add(1, Ordering::Relaxed);
                s.1.fetch_add(body.len() as u64, Ordering::Relaxed);
                let spans = body
                    .windows(INVOCATION_SPAN.len())
                    .filter(|w| *w == INVOCATION_SPAN)
                    .count();
                s.2.fetch_add(spans as u64, Ordering::Relaxed);
                ([("content-type", "application/x-protobuf")], Bytes::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Runs `s` once per variant through `run(binary, extra environment)`.
pub async fn compare<F, Fut>(s: &Scenario, run: F)
where
    F: Fn(Option<std::path::PathBuf>, Vec<(&'static str, String)>) -> Fut,
    Fut: std::future::Future<Output = Side>,
{
    let (url, seen) = sink().await;
    println!(
        "one tool round trip = 2 model calls + 1 HTTP tool call; 4 spans per invocation when traced"
    );
    println!("{}", drive::HEADER);
    let mut variants: Vec<(&str, Variant)> = Vec::new();
    if let Some(before) = std::env::var_os("BENCH_BEFORE_BIN") {
        variants.push(("before tracing", (Some(before.into()), vec![])));
    }
    variants.push(("tracing off", (None, vec![])));
    variants.push((
        "tracing on, always_on",
        (
            None,
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", url.clone()),
                ("OTEL_TRACES_SAMPLER", "always_on".into()),
            ],
        ),
    ));
    // BENCH_TRACING=off (or before, on; comma-separated) runs only those, for profiling one.
    let only = std::env::var("BENCH_TRACING").unwrap_or_default();
    let chosen = |n: &str| only.is_empty() || only.split(',').any(|o| n.contains(o.trim()));
    let mut baseline: Option<(&str, f64)> = None;
    for (name, (bin, env)) in variants.into_iter().filter(|v| chosen(v.0)) {
        let before = seen.0.load(Ordering::Relaxed);
        let spans_before = seen.2.load(Ordering::Relaxed);
        let side = run(bin, env).await;
        println!("{}", drive::row(s, &format!("runtime, {name}"), &side));
        let exports = seen.0.load(Ordering::Relaxed) - before;
        if exports > 0 {
            println!(
                "|  |  |  | {exports} OTLP exports, {} invocation spans, {:.1} MB in all | | | | | | | | |",
                seen.2.load(Ordering::Relaxed) - spans_before,
                seen.1.load(Ordering::Relaxed) as f64 / 1e6
            );
        }
        let (base_name, base) = *baseline.get_or_insert((name, side.cpu_s_per_1000));
        if name != base_name {
            println!(
                "|  |  |  | {name} / {base_name} | | | | | | | {:.2}x ({:+.3} ms per invocation) | |",
                side.cpu_s_per_1000 / base.max(f64::MIN_POSITIVE),
                side.cpu_s_per_1000 - base
            );
        }
    }
}
