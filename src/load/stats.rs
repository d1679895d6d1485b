//! What a load step measured: the latency of each stage of a call in HDR histograms (the
//! `hdrhistogram` crate, microseconds), the outcome counts, latency over time, and the bench's own
//! CPU time (getrusage), so a reader can tell who was saturated.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

/// A stage of a call, between two of its timestamps.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// INVITE sent → APNs request received: the gateway's push latency.
    Push,
    /// APNs request received → push delivered to the phone (the mock APNs).
    Delivery,
    /// Push delivered → REGISTER sent (the phone's wake).
    Wake,
    /// REGISTER sent → INVITE at the phone (the gateway's relay of the parked call).
    Relay,
    /// INVITE at the phone → 200 at the caller (answer and its way back).
    Answer,
    /// INVITE sent → 200 at the caller: call setup, end to end.
    Setup,
}

impl Stage {
    /// Every stage, in call order.
    pub const ALL: [Stage; 6] = [
        Stage::Push,
        Stage::Delivery,
        Stage::Wake,
        Stage::Relay,
        Stage::Answer,
        Stage::Setup,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Push => "push",
            Stage::Delivery => "delivery",
            Stage::Wake => "wake",
            Stage::Relay => "relay",
            Stage::Answer => "answer",
            Stage::Setup => "setup",
        }
    }

    /// What it measures, for the reports.
    pub fn meaning(self) -> &'static str {
        match self {
            Stage::Push => "INVITE sent → APNs request received",
            Stage::Delivery => "APNs request → push delivered",
            Stage::Wake => "push delivered → REGISTER sent",
            Stage::Relay => "REGISTER sent → INVITE at the phone",
            Stage::Answer => "INVITE at the phone → 200 at the caller",
            Stage::Setup => "INVITE sent → 200 at the caller",
        }
    }
}

/// How a call ended.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The phone answered; the caller got its 200.
    Answered,
    /// A call of the mix ended as the target's profile says it should (487 for a cancelled
    /// call, an error for a dead token or a phone in flight mode).
    AsExpected,
    /// The caller got 480.
    Failed480,
    /// The caller got 408, or nothing before the call's deadline.
    Failed408,
    /// No APNs request for the phone's token.
    NoPush,
    /// More than one call push for the call.
    DuplicatePush,
    /// The phone was pushed (and registered) but the INVITE never reached it.
    InviteNeverReachedPhone,
    /// Anything else (another status, a call of the mix answered, a bench error).
    Other,
}

impl Outcome {
    /// Its name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::AsExpected => "as-expected",
            Outcome::Failed480 => "480",
            Outcome::Failed408 => "408",
            Outcome::NoPush => "no-push",
            Outcome::DuplicatePush => "duplicate-push",
            Outcome::InviteNeverReachedPhone => "invite-never-reached-phone",
            Outcome::Other => "other",
        }
    }

    /// A failure (anything but answered or as expected).
    pub fn is_failure(&self) -> bool {
        !matches!(self, Outcome::Answered | Outcome::AsExpected)
    }
}

/// Percentiles of one stage, in milliseconds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Percentiles {
    /// How many calls reached the stage.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

/// One point of latency over time: a call's stage latency at its start time.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    /// Seconds from the step's start.
    pub t_s: f64,
    /// Latency in ms.
    pub ms: f64,
}

/// The most points per stage kept for the latency-over-time plot (every call counts in the
/// histograms; the plot keeps every n-th).
pub const MAX_POINTS: usize = 5_000;

/// How many failed calls a step describes.
pub const MAX_EXAMPLES: usize = 5;

/// The histograms and counts of one step.
pub struct Stats {
    hist: BTreeMap<Stage, Histogram<u64>>,
    points: BTreeMap<Stage, Vec<Point>>,
    /// Per stage: calls seen, and every how many calls a point is kept.
    seen: BTreeMap<Stage, (u64, u64)>,
    /// Outcome counts.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// The first few failed calls, described.
    pub examples: Vec<String>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    /// Empty.
    pub fn new() -> Stats {
        let hist = Stage::ALL
            .iter()
            .map(|s| {
                // 1 µs to 10 min, 3 significant digits
                let h = Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds");
                (*s, h)
            })
            .collect();
        Stats {
            hist,
            points: BTreeMap::new(),
            seen: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            examples: Vec::new(),
        }
    }

    /// Records one stage latency of a call that started `t` after the step's start.
    pub fn record(&mut self, stage: Stage, t: Duration, latency: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, 600_000_000);
        if let Some(h) = self.hist.get_mut(&stage) {
            h.saturating_record(us);
        }
        let (seen, stride) = self.seen.entry(stage).or_insert((0, 1));
        *seen += 1;
        let points = self.points.entry(stage).or_default();
        if *seen % *stride != 0 {
            return;
        }
        if points.len() >= MAX_POINTS {
            // the plot is full: keep every other point, and from now on every other call
            let mut i = 0;
            points.retain(|_| {
                i += 1;
                i % 2 == 0
            });
            *stride *= 2;
            if *seen % *stride != 0 {
                return;
            }
        }
        points.push(Point {
            t_s: t.as_secs_f64(),
            ms: latency.as_secs_f64() * 1000.0,
        });
    }

    /// Counts one outcome.
    pub fn count(&mut self, outcome: Outcome) {
        *self.outcomes.entry(outcome).or_default() += 1;
    }

    /// Keeps the description of a failed call, if fewer than [`MAX_EXAMPLES`] are kept.
    pub fn example(&mut self, describe: impl FnOnce() -> String) {
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(describe());
        }
    }

    /// Calls finished.
    pub fn finished(&self) -> u64 {
        self.outcomes.values().sum()
    }

    /// Calls that failed.
    pub fn failures(&self) -> u64 {
        self.outcomes
            .iter()
            .filter(|(o, _)| o.is_failure())
            .map(|(_, n)| n)
            .sum()
    }

    /// The percentiles of a stage (zeros when no call reached it).
    pub fn percentiles(&self, stage: Stage) -> Percentiles {
        let h = &self.hist[&stage];
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }

    /// The distribution of a stage: (latency ms, cumulative share) at each recorded bucket.
    pub fn distribution(&self, stage: Stage) -> Vec<(f64, f64)> {
        let h = &self.hist[&stage];
        if h.is_empty() {
            return Vec::new();
        }
        let total = h.len() as f64;
        let mut cum = 0u64;
        h.iter_recorded()
            .map(|v| {
                cum += v.count_since_last_iteration();
                (v.value_iterated_to() as f64 / 1000.0, cum as f64 / total)
            })
            .collect()
    }

    /// The latency-over-time points of a stage.
    pub fn points(&self, stage: Stage) -> &[Point] {
        self.points.get(&stage).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// The CPU time this process used so far (user + system), from getrusage.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) != 0 {
            return Duration::ZERO;
        }
        u
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut s = Stats::new();
        for i in 1..=1000u64 {
            s.record(
                Stage::Push,
                Duration::from_millis(i),
                Duration::from_millis(i),
            );
        }
        let p = s.percentiles(Stage::Push);
        assert_eq!(p.count, 1000);
        assert!((p.p50_ms - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.p99_ms - 990.0).abs() < 1.0, "{p:?}");
        assert!((p.max_ms - 1000.0).abs() < 1.0, "{p:?}");
        assert_eq!(s.percentiles(Stage::Relay).count, 0);
        let d = s.distribution(Stage::Push);
        assert!((d.last().unwrap().1 - 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_plot_keeps_a_bounded_number_of_points() {
        let mut s = Stats::new();
        for i in 0..(3 * MAX_POINTS as u64) {
            s.record(
                Stage::Setup,
                Duration::from_micros(i),
                Duration::from_millis(1),
            );
        }
        assert!(s.points(Stage::Setup).len() <= MAX_POINTS);
        assert!(s.points(Stage::Setup).len() >= MAX_POINTS / 4);
    }

    #[test]
    fn failures_leave_out_answered_and_expected_calls() {
        let mut s = Stats::new();
        s.count(Outcome::Answered);
        s.count(Outcome::AsExpected);
        s.count(Outcome::NoPush);
        assert_eq!((s.finished(), s.failures()), (3, 1));
    }

    #[test]
    fn the_process_has_used_some_cpu() {
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(cpu_time() > Duration::ZERO);
    }
}
