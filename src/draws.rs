//! The run's seed and every random draw the bench makes from it.
//!
//! A run has one seed ([`RunSeed`], a `u64`): printed when the run starts, written in every
//! report, and given back with `pushbench run --seed N` to reproduce the run's draws. Each
//! scenario draws from its own generator ([`Draws`]), seeded from the run's seed and the
//! scenario's identity ([`scenario_seed`]), so which scenario happens to start first (they run
//! concurrently) never changes what another one draws. What the bench draws:
//!
//! - the iPhone's wake delay, push → REGISTER, per wake, uniformly in [`WAKE_DELAY_RANGE`], unless
//!   the scenario states a fixed one ("Alice's iPhone takes 1 s to register after a push").
//!
//! The generator is ChaCha8 (`rand_chacha`), whose output for a seed is fixed by its
//! specification, not by the `rand` version.

use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timeline::lock;

/// The range the iPhone's wake delay (push → REGISTER) is drawn from, in ms, when a scenario
/// does not fix it: 300 ms to 2 s. An app still in memory registers within a few hundred ms; a
/// relaunched one takes about 2 s on real devices (the figure issue 21 attributes to RFC 8599;
/// `docs/evidence.md` § I2 says what was and was not verified). A delay of a few ms, as before,
/// hides every gateway that waits for the woken device before it does something else.
pub const WAKE_DELAY_RANGE: RangeInclusive<u64> = 300..=2000;

/// The seed of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RunSeed(pub u64);

impl RunSeed {
    /// A fresh seed from the operating system's randomness (a run without `--seed`).
    pub fn fresh() -> RunSeed {
        RunSeed(rand::random())
    }

    /// The given seed, or a fresh one.
    pub fn or_fresh(seed: Option<u64>) -> RunSeed {
        seed.map(RunSeed).unwrap_or_else(RunSeed::fresh)
    }
}

impl fmt::Display for RunSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The seed of one scenario: the run's seed mixed with the scenario's identity (FNV-1a over its
/// bytes, then SplitMix64's finaliser), stable across Rust versions and platforms.
pub fn scenario_seed(run: RunSeed, scenario: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in run.0.to_le_bytes().iter().chain(scenario.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// One scenario's generator. Cheap to clone (the clones share it); every party of the scenario
/// draws from it, in the order the scenario's steps make them draw.
#[derive(Clone, Debug)]
pub struct Draws {
    seed: u64,
    rng: Arc<Mutex<ChaCha8Rng>>,
}

impl Draws {
    /// The generator of a scenario with this seed ([`scenario_seed`]).
    pub fn new(seed: u64) -> Draws {
        Draws {
            seed,
            rng: Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed))),
        }
    }

    /// The scenario's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A wake delay drawn from [`WAKE_DELAY_RANGE`].
    pub fn wake_delay(&self) -> Duration {
        Duration::from_millis(lock(&self.rng).gen_range(WAKE_DELAY_RANGE))
    }
}

/// How long a woken device takes from a push to its REGISTER.
#[derive(Clone, Debug)]
pub enum WakeDelay {
    /// Always this long: the scenario says so ("Alice's iPhone takes 1 s to register after a
    /// push").
    Fixed(Duration),
    /// Drawn per wake from [`WAKE_DELAY_RANGE`]: the default.
    Drawn(Draws),
}

impl WakeDelay {
    /// The delay of the next wake (a new draw when drawn).
    pub fn next(&self) -> Duration {
        match self {
            WakeDelay::Fixed(d) => *d,
            WakeDelay::Drawn(draws) => draws.wake_delay(),
        }
    }

    /// `fixed` or `drawn`, for the timeline.
    pub fn kind(&self) -> &'static str {
        match self {
            WakeDelay::Fixed(_) => "fixed",
            WakeDelay::Drawn(_) => "drawn",
        }
    }
}

impl Default for Draws {
    /// A generator with seed 0 (tests; a run always seeds its scenarios).
    fn default() -> Self {
        Draws::new(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_and_scenario_draw_the_same_delays() {
        let a = Draws::new(scenario_seed(RunSeed(42), "wake.feature:9"));
        let b = Draws::new(scenario_seed(RunSeed(42), "wake.feature:9"));
        let da: Vec<_> = (0..20).map(|_| a.wake_delay()).collect();
        let db: Vec<_> = (0..20).map(|_| b.wake_delay()).collect();
        assert_eq!(da, db);
        for d in da {
            assert!(WAKE_DELAY_RANGE.contains(&(d.as_millis() as u64)), "{d:?}");
        }
    }

    #[test]
    fn scenarios_and_runs_get_different_seeds() {
        let s = scenario_seed(RunSeed(42), "wake.feature:9");
        assert_ne!(s, scenario_seed(RunSeed(42), "wake.feature:20"));
        assert_ne!(s, scenario_seed(RunSeed(43), "wake.feature:9"));
        // Fixed by the algorithm, not by the platform or the Rust version.
        assert_eq!(s, scenario_seed(RunSeed(42), "wake.feature:9"));
    }

    #[test]
    fn a_fixed_wake_delay_never_draws() {
        let draws = Draws::new(1);
        let fixed = WakeDelay::Fixed(Duration::from_secs(1));
        assert_eq!(fixed.next(), Duration::from_secs(1));
        assert_eq!(fixed.kind(), "fixed");
        // The generator was not advanced: its first draw is still the first of seed 1.
        assert_eq!(WakeDelay::Drawn(draws).next(), Draws::new(1).wake_delay());
    }

    #[test]
    fn the_draws_spread_over_the_range() {
        let d = Draws::new(7);
        let ms: Vec<u64> = (0..200)
            .map(|_| d.wake_delay().as_millis() as u64)
            .collect();
        assert!(ms.iter().any(|&m| m < 800), "{ms:?}");
        assert!(ms.iter().any(|&m| m > 1500), "{ms:?}");
    }
}
