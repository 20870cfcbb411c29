//! `BENCH_ROUNDS=N` for the runtime-against-bare scenarios: each scenario N times over, every
//! other round with the bare loop first, then the median of each figure on each side and the
//! spread of the per-round comparisons. CPU time and peak memory on a shared 2-core machine
//! vary from run to run by more than the differences being measured; medians over rounds do
//! not.

use super::drive::{Scenario, Side, compare, row};

/// The rounds asked for: `BENCH_ROUNDS`, 1 to 20, 1 when unset.
pub fn count() -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, 20)
}

/// The median of `values` (the mean of the middle two for an even count); 0 for none.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => f64::midpoint(v[n / 2 - 1], v[n / 2]),
    }
}

/// Each figure's median over `sides`.
fn median_side(sides: &[Side]) -> Side {
    let m = |f: fn(&Side) -> f64| median(sides.iter().map(f));
    Side {
        invocations: sides.iter().map(|s| s.invocations).sum(),
        errors: sides.iter().map(|s| s.errors).sum(),
        per_second: m(|s| s.per_second),
        p50_ms: m(|s| s.p50_ms),
        p99_ms: m(|s| s.p99_ms),
        max_ms: m(|s| s.max_ms),
        cpu_s_per_1000: m(|s| s.cpu_s_per_1000),
        peak_rss_mb: m(|s| s.peak_rss_mb),
        instructions_per_invocation: None,
    }
}

/// `lo–hi` of `values`, with `unit` and the precision given.
fn spread(values: &[f64], decimals: usize, unit: &str) -> String {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.decimals$}–{hi:.decimals$}{unit}")
}

/// The summary rows of `runtime` and `bare`, one entry per round each: the sides' medians
/// (invocations and errors summed over the rounds), the comparison of the medians, and the
/// spread of the per-round comparisons and of the runtime's peak memory.
pub fn summary(s: &Scenario, runtime: &[Side], bare: &[Side]) -> Vec<String> {
    let (r, b) = (median_side(runtime), median_side(bare));
    let pairs = || runtime.iter().zip(bare);
    let throughput: Vec<f64> = pairs()
        .map(|(r, b)| 100.0 * r.per_second / b.per_second.max(f64::MIN_POSITIVE))
        .collect();
    let p99: Vec<f64> = pairs().map(|(r, b)| r.p99_ms - b.p99_ms).collect();
    let cpu: Vec<f64> = pairs()
        .map(|(r, b)| r.cpu_s_per_1000 / b.cpu_s_per_1000.max(f64::MIN_POSITIVE))
        .collect();
    let rss: Vec<f64> = runtime.iter().map(|r| r.peak_rss_mb).collect();
    let n = runtime.len();
    vec![
        row(s, &format!("agentry-runtime, median of {n}"), &r),
        row(s, &format!("bare SDK loop, median of {n}"), &b),
        compare(&r, &b),
        format!(
            "|  |  |  | per round: throughput {}, p99 {} vs bare, CPU {} (median {:.2}x), runtime peak RSS {} | | | | | | | | |",
            spread(&throughput, 1, " %"),
            spread(&p99, 0, " ms"),
            spread(&cpu, 2, "x"),
            median(cpu.iter().copied()),
            spread(&rss, 1, " MB"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median([]), 0.0);
    }
}
