//! pushbench: the conformance and interop bench for push gateways.
//!
//! This crate holds the command line, the Gherkin step library, the runner and the reports. The
//! parties live in their own crates: `mock-apns`, `sip-peer`, `xmpp-peer`, `phone` and
//! `ref-gateway`; their shared vocabulary, the recorded timeline, is the `timeline` crate.

pub use timeline;
