//! ref-gateway: the reference push gateway, the bench's embedded default target and its own
//! control subject. It is built to do everything right, with switchable faults that each
//! reproduce a real vendor mistake, so the suite can be proven to catch them.
//!
//! Done now:
//! - [`apns`]: the APNs provider client (HTTP/2 over TLS, token or certificate auth, one long-lived
//!   connection, bounded retries, every request and answer on the timeline).
//! - `call_push`: the pushes for a call, a call that ended and a message, with the faults applied.
//! - [`design`]: the gateway's design for push-bound bindings ([`Design`]: the RFC 8599 bucket,
//!   or tsilo-like relay at once then hand-over).
//! - [`faults`]: the fault switches and the fault matrix as data ([`faults::Fault::breaks`]).
//! - [`cancel`]: the three CANCEL policies ([`CancelPolicy`]) and what a bucket entry becomes when
//!   its call ends under each.
//!
//! The SIP side (RFC 8599 registrar + stateful proxy on `sip-peer`'s parser), done:
//! - [`gateway`]: [`RefGateway::start`]`(GatewayConfig) -> RefGateway` (bound addresses,
//!   `set_faults`, `bindings`, `shutdown`); the binary `ref-gateway --config FILE` prints the
//!   addresses as one JSON line.
//! - [`config`]: the gateway's TOML (listen addresses, domain, APNs client, cancel policy, timers,
//!   faults,
//!   digest accounts), also buildable in-process.
//! - `flow`: UDP/TCP/TLS listeners and the flows messages arrive on; everything goes back over a
//!   flow (responses to the request's, requests to a phone over its last REGISTER's).
//! - `registrar`: bindings per AOR keyed by `+sip.instance` (else Contact URI) with their pn-*
//!   params (Linphone dialect included), expiry and flow; token rotation and new source addresses
//!   update the binding; un-REGISTER stops pushes; optional digest (401) per account.
//! - `bucket`: the SIP Request Push Bucket (RFC 8599 §5.2) entries and their §5.3 match.
//! - `push`: the binding's tokens, and the APNs clients (production / sandbox) that send what
//!   `call_push::PushBuilder` makes; 410 evicts the binding, other failures answer 480 at once.
//! - `proxy` (private): the stateful proxy core — 100 Trying, forking (awake contacts at once,
//!   push-bound ones through the bucket), de-duplicated pushes per (Call-ID, token), release on a
//!   matching REGISTER, Bucket Timer → 480, CANCEL → 200 + 487 and the cancel policy, first 2xx wins and
//!   the others get `Reason: SIP;cause=200;text="Call completed elsewhere"`, Record-Route and
//!   in-dialog routing over the dialog's flows.

pub mod apns;
pub mod app_server;
mod bucket;
mod call_push;
pub mod cancel;
pub mod config;
pub mod design;
pub mod faults;
mod flow;
pub mod gateway;
mod proxy;
mod push;
mod registrar;

pub use cancel::CancelPolicy;
pub use config::GatewayConfig;
pub use design::Design;
pub use faults::{Fault, Faults};
pub use gateway::{Addresses, RefGateway, StartError};
