//! What a load run is asked to do ([`LoadOptions`], the `pushbench load` arguments) and the
//! schedule it follows: when each call starts ([`Arrivals`], fixed or Poisson) and what kind of
//! call it is ([`CallKind`]: plain, cancelled before the REGISTER, to a dead token, to a phone in
//! flight mode), drawn from a seeded generator so a run can be repeated.

use crate::target::CancelPolicy;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// How calls arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrivals {
    /// One call every 1/rate seconds.
    Fixed,
    /// Exponential gaps of mean 1/rate seconds (a Poisson process).
    Poisson,
}

/// `pushbench load`: N sleeping phones, calls at a rate, each followed end to end.
#[derive(Clone, Debug, Args)]
pub struct LoadOptions {
    /// The target file (TOML); without it, the embedded reference gateway.
    #[arg(long, env = "PUSHBENCH_TARGET")]
    pub target: Option<PathBuf>,
    /// Without --target: run the embedded reference gateway in this cancel profile
    /// (rfc8599-drop, flexisip-replay or cancel-push).
    #[arg(long, value_parser = cancel_profile)]
    pub embedded_cancel: Option<CancelPolicy>,
    /// How many simulated iPhones register (each with its own token), then sleep.
    #[arg(long, default_value_t = 100)]
    pub phones: usize,
    /// Calls per second.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// How long calls are placed, in seconds.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Fixed or Poisson arrivals.
    #[arg(long, value_enum, default_value_t = Arrivals::Fixed)]
    pub arrivals: Arrivals,
    /// Share of phones (0..1) that stay awake (registered and connected: no wake needed).
    #[arg(long, default_value_t = 0.0)]
    pub awake_share: f64,
    /// Share of calls (0..1) the caller cancels once the push went out, before the REGISTER.
    #[arg(long, default_value_t = 0.0)]
    pub cancel_share: f64,
    /// Share of calls (0..1) to a phone whose token APNs answers 410 Unregistered.
    #[arg(long, default_value_t = 0.0)]
    pub dead_token_share: f64,
    /// Share of calls (0..1) to a phone in flight mode (APNs stores the push; it never answers).
    #[arg(long, default_value_t = 0.0)]
    pub flight_share: f64,
    /// How long a woken phone takes from the push to its REGISTER, in ms.
    #[arg(long, default_value_t = 0)]
    pub wake_ms: u64,
    /// How long one call may take before it counts as failed (408), in seconds.
    #[arg(long, default_value_t = 15)]
    pub call_timeout: u64,
    /// Seed of the arrivals, the call mix and the choice of phones.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Step the rate up (from --rate, ×1.5 each step, at most --knee-steps steps) until failures
    /// exceed 0.1 % or the push latency's p99 exceeds --knee-p99-ms; report the highest clean rate.
    #[arg(long)]
    pub find_knee: bool,
    /// The push-latency p99 bound of --find-knee, in ms.
    #[arg(long, default_value_t = 1000)]
    pub knee_p99_ms: u64,
    /// At most this many steps of --find-knee.
    #[arg(long, default_value_t = 12)]
    pub knee_steps: u32,
    /// Write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write an HTML page (latency over time, latency distributions) here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// No status line each second.
    #[arg(long)]
    pub quiet: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            target: None,
            embedded_cancel: None,
            phones: 100,
            rate: 10.0,
            duration: 10,
            arrivals: Arrivals::Fixed,
            awake_share: 0.0,
            cancel_share: 0.0,
            dead_token_share: 0.0,
            flight_share: 0.0,
            wake_ms: 0,
            call_timeout: 15,
            seed: 1,
            find_knee: false,
            knee_p99_ms: 1000,
            knee_steps: 12,
            json: None,
            html: None,
            quiet: true,
        }
    }
}

/// The most calls one step places, whatever the rate and duration (every loop is bounded).
pub const MAX_CALLS: usize = 1_000_000;

impl LoadOptions {
    /// What is wrong with the options, if anything.
    pub fn problem(&self) -> Option<String> {
        let shares = [
            ("--awake-share", self.awake_share),
            ("--cancel-share", self.cancel_share),
            ("--dead-token-share", self.dead_token_share),
            ("--flight-share", self.flight_share),
        ];
        if let Some((name, v)) = shares.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
            return Some(format!("{name} {v}: a share is between 0 and 1"));
        }
        if self.cancel_share + self.dead_token_share + self.flight_share > 1.0 {
            return Some("the call shares add up to more than 1".into());
        }
        if self.phones == 0 {
            return Some("--phones must be at least 1".into());
        }
        if !(self.rate > 0.0 && self.rate.is_finite()) {
            return Some(format!("--rate {}: must be a positive number", self.rate));
        }
        if self.duration == 0 {
            return Some("--duration must be at least 1 s".into());
        }
        None
    }

    /// How long one call may take.
    pub fn call_deadline(&self) -> Duration {
        Duration::from_secs(self.call_timeout.max(1))
    }
}

/// A cancel profile by its name in target files.
fn cancel_profile(s: &str) -> Result<CancelPolicy, String> {
    CancelPolicy::ALL
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| format!("{s:?}: expected rfc8599-drop, flexisip-replay or cancel-push"))
}

/// What kind of call the caller places.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallKind {
    /// A call the phone wakes for and answers.
    Plain,
    /// The caller cancels once the push went out, before the phone's REGISTER.
    Cancel,
    /// The phone's token is dead: APNs answers 410.
    DeadToken,
    /// The phone is in flight mode: APNs stores the push, the phone never answers.
    Flight,
}

/// One planned call: when it starts (from the step's start) and what kind it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlannedCall {
    /// When, from the start of the step.
    pub at: Duration,
    /// What kind.
    pub kind: CallKind,
}

/// A small seeded generator (SplitMix64): the schedule needs no cryptographic quality, only
/// repeatability.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The calls of one step at `rate` for `duration`: their start times and kinds, in order.
pub fn schedule(opts: &LoadOptions, rate: f64, seed: u64) -> Vec<PlannedCall> {
    let mut rng = Rng::new(seed);
    let end = Duration::from_secs(opts.duration);
    let mut out = Vec::new();
    let mut t = 0.0f64;
    while out.len() < MAX_CALLS {
        let at = Duration::from_secs_f64(t);
        if at >= end {
            break;
        }
        let u = rng.unit();
        let kind = if u < opts.cancel_share {
            CallKind::Cancel
        } else if u < opts.cancel_share + opts.dead_token_share {
            CallKind::DeadToken
        } else if u < opts.cancel_share + opts.dead_token_share + opts.flight_share {
            CallKind::Flight
        } else {
            CallKind::Plain
        };
        out.push(PlannedCall { at, kind });
        t += match opts.arrivals {
            Arrivals::Fixed => 1.0 / rate,
            // inverse transform sampling; 1 - u is in (0, 1]
            Arrivals::Poisson => -(1.0 - rng.unit()).ln() / rate,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_arrivals_are_evenly_spaced_and_end_with_the_duration() {
        let opts = LoadOptions {
            rate: 20.0,
            duration: 10,
            ..LoadOptions::default()
        };
        let s = schedule(&opts, 20.0, 1);
        assert_eq!(s.len(), 200);
        assert_eq!(s[1].at - s[0].at, Duration::from_millis(50));
        assert!(s.iter().all(|c| c.kind == CallKind::Plain));
    }

    #[test]
    fn poisson_arrivals_average_the_rate_and_are_repeatable() {
        let opts = LoadOptions {
            arrivals: Arrivals::Poisson,
            duration: 100,
            ..LoadOptions::default()
        };
        let a = schedule(&opts, 50.0, 7);
        assert_eq!(a, schedule(&opts, 50.0, 7));
        assert!((4500..5500).contains(&a.len()), "{}", a.len());
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
    }

    #[test]
    fn the_mix_follows_the_shares() {
        let opts = LoadOptions {
            cancel_share: 0.2,
            dead_token_share: 0.1,
            flight_share: 0.1,
            duration: 100,
            ..LoadOptions::default()
        };
        let s = schedule(&opts, 100.0, 3);
        let share = |k| s.iter().filter(|c| c.kind == k).count() as f64 / s.len() as f64;
        assert!((share(CallKind::Cancel) - 0.2).abs() < 0.03);
        assert!((share(CallKind::DeadToken) - 0.1).abs() < 0.03);
        assert!((share(CallKind::Flight) - 0.1).abs() < 0.03);
    }

    #[test]
    fn bad_shares_are_refused() {
        let bad = LoadOptions {
            cancel_share: 0.7,
            flight_share: 0.5,
            ..LoadOptions::default()
        };
        assert!(bad.problem().is_some());
        assert!(LoadOptions::default().problem().is_none());
    }
}
