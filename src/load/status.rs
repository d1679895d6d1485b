//! The live state of a load step ([`Live`]: calls offered, the step's statistics) and the
//! SIPp-style status line printed from it each second: calls per second offered and completed,
//! calls in flight, failures by cause, and p50/p99 of each latency.

use super::stats::{Stage, Stats};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use timeline::lock;

/// What the calls of a step update as they go.
#[derive(Default)]
pub struct Live {
    /// Calls placed so far.
    pub offered: AtomicU64,
    /// What finished calls measured.
    pub stats: Mutex<Stats>,
}

impl Live {
    /// Calls placed so far.
    pub fn offered(&self) -> u64 {
        self.offered.load(Ordering::Relaxed)
    }
}

/// Counts at the previous status line, for the per-second rates.
#[derive(Clone, Copy, Debug, Default)]
pub struct Previous {
    offered: u64,
    finished: u64,
    at: Duration,
}

/// One status line at `elapsed`, and the counts the next line is relative to.
pub fn status_line(live: &Live, elapsed: Duration, prev: Previous) -> (String, Previous) {
    let offered = live.offered();
    let stats = lock(&live.stats);
    let finished = stats.finished();
    let dt = (elapsed - prev.at.min(elapsed)).as_secs_f64().max(1e-3);
    let mut line = format!(
        "[{:>5.1} s] offered {:>6.1}/s  completed {:>6.1}/s  in flight {:>4}  failed {}",
        elapsed.as_secs_f64(),
        (offered - prev.offered.min(offered)) as f64 / dt,
        (finished - prev.finished.min(finished)) as f64 / dt,
        offered.saturating_sub(finished),
        stats.failures()
    );
    let causes: Vec<String> = stats
        .outcomes
        .iter()
        .filter(|(o, _)| o.is_failure())
        .map(|(o, n)| format!("{}={n}", o.name()))
        .collect();
    if !causes.is_empty() {
        line.push_str(&format!(" ({})", causes.join(" ")));
    }
    line.push_str("  p50/p99 ms:");
    for stage in Stage::ALL {
        let p = stats.percentiles(stage);
        if p.count > 0 {
            line.push_str(&format!(
                " {} {:.1}/{:.1}",
                stage.name(),
                p.p50_ms,
                p.p99_ms
            ));
        }
    }
    (
        line,
        Previous {
            offered,
            finished,
            at: elapsed,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::stats::Outcome;

    #[test]
    fn the_line_shows_rates_failures_and_latencies() {
        let live = Live::default();
        live.offered.store(100, Ordering::Relaxed);
        {
            let mut s = lock(&live.stats);
            for _ in 0..90 {
                s.count(Outcome::Answered);
                s.record(Stage::Push, Duration::ZERO, Duration::from_millis(4));
            }
            s.count(Outcome::NoPush);
        }
        let (line, prev) = status_line(&live, Duration::from_secs(2), Previous::default());
        assert!(line.contains("offered   50.0/s"), "{line}");
        assert!(line.contains("in flight    9"), "{line}");
        assert!(line.contains("failed 1 (no-push=1)"), "{line}");
        assert!(line.contains("push 4.0/4.0"), "{line}");
        let (line, _) = status_line(&live, Duration::from_secs(3), prev);
        assert!(line.contains("offered    0.0/s"), "{line}");
    }
}
