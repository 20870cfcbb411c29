//! The comparisons of runtime variants: one scenario through each tool kind, over each
//! protocol, without and with a session, each variant in a fresh runtime.

use super::drive::{self, Protocol, Scenario};
use super::kinds::Kind;
use super::{Setup, rounds};

/// One scenario run once per variant (`(name, tool kind, protocol)`, the first is the
/// baseline), each in a fresh runtime, with each variant's CPU per invocation against the
/// baseline's. `only_var` (comma-separated names) picks variants, for profiling one.
pub async fn each_variant(
    setup: &Setup,
    s: &Scenario,
    variants: &[(&str, Kind, Protocol)],
    only_var: &str,
) {
    println!("{}", drive::HEADER);
    let only = std::env::var(only_var).unwrap_or_default();
    let chosen = |n: &str| only.is_empty() || only.split(',').any(|o| o.trim() == n);
    let chosen: Vec<_> = variants.iter().filter(|v| chosen(v.0)).collect();
    // BENCH_ROUNDS=N runs the variants N times, every other round in reverse order, so a drift
    // of the machine (or the first run's warm-up) falls on each alike; the medians follow.
    let rounds = rounds::count();
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); chosen.len()];
    let mut baseline = None;
    for round in 0..rounds {
        let order: Vec<usize> = if round.is_multiple_of(2) {
            (0..chosen.len()).collect()
        } else {
            (0..chosen.len()).rev().collect()
        };
        for i in order {
            let (name, kind, protocol) = *chosen[i];
            let side = setup.run_runtime(s, kind, protocol).await;
            println!("{}", drive::row(s, &format!("runtime, {name}"), &side));
            cpu[i].push(side.cpu_s_per_1000);
            if rounds > 1 {
                continue;
            }
            let ir = side.instructions_per_invocation;
            let (base_name, base, base_ir) =
                *baseline.get_or_insert((name, side.cpu_s_per_1000, ir));
            if let Some(ir) = ir {
                println!(
                    "|  |  |  | {name}: {ir:.0} instructions per invocation (callgrind) | | | | | | | | |"
                );
            }
            if name != base_name {
                println!(
                    "|  |  |  | {name} / {base_name} | | | | | | | {:.2}x ({:+.3} ms per invocation) | |",
                    side.cpu_s_per_1000 / base.max(f64::MIN_POSITIVE),
                    side.cpu_s_per_1000 - base
                );
                if let (Some(ir), Some(base_ir)) = (ir, base_ir) {
                    println!(
                        "|  |  |  | {name} / {base_name}, instructions | | | | | | | {:.3}x | |",
                        ir / base_ir.max(1.0)
                    );
                }
            }
        }
    }
    if rounds > 1 {
        let median = |v: &[f64]| rounds::median(v.iter().copied());
        let base = median(&cpu[0]);
        for (i, (name, _, _)) in chosen.iter().enumerate() {
            // Each round's ratio to the first variant's run of the same round.
            let ratios: Vec<f64> = cpu[i]
                .iter()
                .zip(&cpu[0])
                .map(|(c, b)| c / b.max(f64::MIN_POSITIVE))
                .collect();
            let (lo, hi) = ratios
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
            println!(
                "| {} rounds | | | {name}: median CPU s / 1,000 | | | | | | | {:.3} ({:.3}x of {}; per round {lo:.2}x to {hi:.2}x, median {:.3}x) | |",
                rounds,
                median(&cpu[i]),
                median(&cpu[i]) / base.max(f64::MIN_POSITIVE),
                chosen[0].0,
                median(&ratios),
            );
        }
    }
}

/// The tool call through each kind, over `/v1/invoke` (`BENCH_KINDS=lambda` picks kinds).
pub async fn kinds(setup: &Setup, s: &Scenario) {
    println!(
        "one tool round trip = 2 model calls + 1 tool call, as an http, lambda and openapi tool"
    );
    let variants = Kind::ALL.map(|k| (k.name(), k, Protocol::Invoke));
    each_variant(setup, s, &variants, "BENCH_KINDS").await;
}

/// The same round trip over each protocol (`BENCH_PROTOCOLS=mcp` picks protocols); MCP answers
/// are never streamed.
pub async fn protocols(setup: &Setup, s: &Scenario) {
    println!("one tool round trip = 2 model calls + 1 HTTP tool call, over each protocol");
    let variants = Protocol::ALL.map(|p| (p.name(), Kind::Http, p));
    each_variant(setup, s, &variants, "BENCH_PROTOCOLS").await;
}

/// `/v1/invoke` without a session and with a new one each time, both on a runtime with memory
/// (a local `redis-server` on loopback, started here): what a session adds, and the store
/// requests per invocation (on stderr). The store's own CPU is not counted.
pub async fn sessions(setup: &Setup, s: &Scenario) {
    println!("one tool round trip = 2 model calls + 1 HTTP tool call, without and with a session");
    let _ = setup.redis.set(agentry_tests::redis::RedisServer::start());
    let variants = [
        ("no session", Kind::Http, Protocol::Invoke),
        ("session", Kind::Http, Protocol::InvokeSession),
    ];
    each_variant(setup, s, &variants, "BENCH_SESSIONS").await;
}
