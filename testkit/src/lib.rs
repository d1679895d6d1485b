//! testkit: what the workspace's tests share, in one place (a dev-dependency only, never
//! published). Modelled on rustls' `rustls-test` and h2's `h2-support`: an unpublished crate of
//! helpers the tests of every crate use, so none keeps its own `tests/common` copy.
//!
//! - [`deadline`]: [`within`] a deadline, or the test fails saying what did not happen.
//! - [`net`]: free loopback ports, and whether a peer has bound one.
//! - [`pki`]: the test PKI (rcgen), generated per test.
//! - [`process`]: external programs under a deadline; a missing one fails, never skips.
//! - [`log`]: the end of a peer's log for a failure message, waiting until a log says something.
//! - Real peers nobody here wrote, started on loopback and stopped on drop: [`prosody`] (Prosody
//!   0.12 with mod_cloud_notify), [`kamailio`] (Kamailio 5.6), [`sipp`] (SIPp).
//! - [`apns`]: the `mock-apns` binary as a child process, its control API, provider tokens,
//!   external HTTP/2 clients (curl, nghttp, aioapns), a scriptable HTTP/2 client, and the push
//!   cases every client must get Apple's answer for.
//! - [`gateway`]: the reference gateway's SIP bench (mock APNs + gateway + sip-peer parties).
//! - [`rng`]: a fixed pseudo-random sequence for mutation tests.
//!
//! The ejabberd target is started by its own scripts (`targets/ejabberd/start.sh`), through the
//! target file's commands, like the Prosody and Kamailio targets the bench runs against.

pub mod apns;
pub mod deadline;
pub mod gateway;
pub mod kamailio;
pub mod log;
pub mod net;
pub mod pki;
pub mod process;
pub mod prosody;
pub mod rng;
pub mod sipp;

pub use deadline::{within, within_for, DEADLINE};
pub use net::free_port;

use std::path::{Path, PathBuf};

/// The workspace's root folder (test assets of every crate are found from here).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives in the workspace root")
        .to_path_buf()
}
