//! The XEP-0357 app server: an XEP-0114 component ([`xmpp_peer::Component`]) that receives the
//! XMPP server's push publishes and maps them to APNs pushes with [`crate::apns::ApnsClient`].
//!
//! - [`registry`]: node → device tokens, bundle, environment, secret (in-process or from config).
//! - [`classify`]: what a publish is about (call via a JMI marker in the notification, call ended,
//!   message, unimportant).
//! - [`policy`]: alert or background for messages, body or not, cancel push or nothing.
//! - [`faults`]: the switchable mistakes and the XMPP requirement ids each breaks.
//! - [`server`]: the running component ([`AppServer`]).

pub mod classify;
pub mod faults;
pub mod policy;
pub mod registry;
pub mod server;

pub use faults::{AppFault, AppFaults};
pub use policy::{CallEndPush, MessagePush, Policy};
pub use registry::{Registration, Registry};
pub use server::{Answer, ApnsClients, AppServer, AppServerConfig, Outcome};
