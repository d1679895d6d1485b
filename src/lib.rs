//! pushbench: the conformance and interop bench for push gateways.
//!
//! This crate holds the command line, the runner, the reports and the Gherkin step library. The
//! parties live in their own crates: `mock-apns`, `sip-peer`, `xmpp-peer`, `phone` and
//! `ref-gateway`; their shared vocabulary, the recorded timeline, is the `timeline` crate.
//!
//! - [`target`]: the gateway under test, described by a TOML file.
//! - [`bundle`]: the scenario suite embedded in the binary.
//! - [`container_section`]: the target's `[container]` section: the gateway as a container image;
//!   [`container`]: the bench starting and stopping that container.
//! - [`catalog`]: the feature files, their `@req:` and `@profile:` tags.
//! - [`check`]: `pushbench check`, the static check `run` also performs first.
//! - [`coverage`]: the conformance map `features/COVERAGE.md`: standard statements → requirement ids.
//! - [`credentials`]: what a credentials folder was made for.
//! - [`draws`]: the run's seed and every random draw the bench makes from it (wake delays).
//! - [`scenario`]: what a scenario is given (its context, the run's faults) and its cleanups.
//! - [`parties`]: the parties as the steps drive them: the SIP and XMPP casts, Alice's devices,
//!   the shared mock APNs.
//! - [`world`]: one scenario's World: its timeline and its two typed casts.
//! - [`steps`]: the Gherkin sentences.
//! - [`verdict`]: pass / fail / inconclusive / not-applicable, the error steps return and how a
//!   step's outcome reaches the verdict.
//! - [`expected`]: the per-target expected-failures baseline (xfail / xpass).
//! - [`preflight`]: probes that tell a gateway that is down from one that is wrong.
//! - [`runner`]: runs the selected scenarios on cucumber; [`collector`] is its event writer.
//! - [`report`]: terminal summary, JUnit XML, Cucumber JSON, HTML.
//! - [`load`]: `pushbench load`, load mode: N sleeping phones, calls at a rate, latencies per
//!   stage, the knee.
//! - [`cli`]: the `pushbench` command line.

pub mod bundle;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod collector;
pub mod container;
pub mod container_section;
pub mod coverage;
pub mod credentials;
pub mod demo_steps;
pub mod draws;
pub mod expected;
pub mod load;
mod millis;
pub mod parties;
pub mod preflight;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod steps;
pub mod target;
pub mod verdict;
pub mod world;

pub use timeline;
pub use verdict::{StepError, Verdict};
pub use world::BenchWorld;
