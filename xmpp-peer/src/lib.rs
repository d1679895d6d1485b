//! Scriptable XMPP clients for the push bench, proven against real Prosody.
//!
//! - [`Client`]: a c2s client (STARTTLS, SCRAM-SHA-1/256 or PLAIN, bind, XEP-0198 with resume)
//!   whose every step has a deadline and whose every stanza goes on the shared timeline.
//! - [`PhoneAccount`] and [`Caller`]: the two roles the scenarios drive.
//! - [`Component`]: an XEP-0114 component (the app server side of XEP-0357).
//! - Stanza types with builders and parsers: [`message`], [`jmi`] (XEP-0353), [`push`]
//!   (XEP-0357), [`mam`] (XEP-0313 with RSM), [`forms`] (XEP-0004).
//!
//! Parsing is our own (quick-xml underneath, see `README.md` for why): any malformed or
//! unexpected input is an [`Error`] that shows the bytes, never a panic or a hang.

pub mod client;
pub mod component;
mod conn;
pub mod error;
pub mod forms;
mod framing;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod inbox;
pub mod jmi;
pub mod mam;
pub mod message;
pub mod ns;
pub mod push;
pub mod roles;
mod sasl;
mod sm;
mod summary;
mod transport;
mod wire;
pub mod xml;

pub use client::{register_account, Client, ClientConfig, WakeOutcome};
pub use component::{Component, ComponentConfig};
pub use conn::SleepMode;
pub use error::{Error, TlsError};
pub use inbox::Inbox;
pub use roles::{Caller, PhoneAccount};
pub use sasl::Mechanism;
pub use transport::TlsClient;
pub use xml::Element;
