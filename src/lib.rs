//! pushbench: the conformance and interop bench for push gateways.
//!
//! This crate holds the command line, the runner, the reports and the Gherkin step library. The
//! parties live in their own crates: `mock-apns`, `sip-peer`, `xmpp-peer`, `phone` and
//! `ref-gateway`; their shared vocabulary, the recorded timeline, is the `timeline` crate.
//!
//! - [`target`]: the gateway under test, described by a TOML file.
//! - [`catalog`]: the feature files, their `@req:` and `@profile:` tags.
//! - [`scenario`]: what a scenario is given (its context, the run's faults) and its cleanups.
//! - [`parties`]: the parties as the steps drive them: the SIP and XMPP casts, Alice's devices,
//!   the shared mock APNs.
//! - [`world`]: one scenario's World: its timeline and its two typed casts.
//! - [`steps`]: the Gherkin sentences.
//! - [`verdict`]: pass / fail / inconclusive / not-applicable, the error steps return and how a
//!   step's outcome reaches the verdict.
//! - [`expected`]: the per-target expected-failures baseline (xfail / xpass).
//! - [`runner`]: runs the selected scenarios on cucumber; [`collector`] is its event writer.
//! - [`report`]: terminal summary, JUnit XML, Cucumber JSON, HTML.
//! - [`cli`]: the `pushbench` command line.

pub mod catalog;
pub mod cli;
pub mod collector;
pub mod demo_steps;
pub mod expected;
pub mod parties;
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
