//! pushbench: the conformance and interop bench for push gateways.
//!
//! This crate holds the command line, the runner, the reports and (later) the Gherkin step
//! library. The parties live in their own crates: `mock-apns`, `sip-peer`, `xmpp-peer`, `phone` and
//! `ref-gateway`; their shared vocabulary, the recorded timeline, is the `timeline` crate.
//!
//! - [`target`]: the gateway under test, described by a TOML file.
//! - [`container`]: the target's `[container]` section: the gateway as a container image.
//! - [`catalog`]: the feature files, their `@req:` and `@profile:` tags.
//! - [`world`]: one scenario's parties and timeline.
//! - [`verdict`]: pass / fail / inconclusive / not-applicable and the error steps return.
//! - [`expected`]: the per-target expected-failures baseline (xfail / xpass).
//! - [`runner`]: runs the selected scenarios on cucumber; [`collector`] is its event writer.
//! - [`report`]: terminal summary, JUnit XML, Cucumber JSON, HTML.
//! - [`cli`]: the `pushbench` command line.

pub mod catalog;
pub mod cli;
pub mod collector;
pub mod container;
pub mod demo_steps;
pub mod expected;
pub mod report;
pub mod runner;
pub mod steps;
pub mod target;
pub mod verdict;
pub mod world;

pub use timeline;
pub use verdict::{StepError, Verdict};
pub use world::BenchWorld;
