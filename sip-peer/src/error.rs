//! The error values every step of the SIP peer returns.

use crate::auth::AuthError;
use crate::message::{Message, ParseError};
use bytes::Bytes;
use std::time::Duration;

/// What went wrong in a SIP step. Callers branch on the variant.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// The awaited message did not come in time. `received` lists the summaries of what did
    /// arrive meanwhile (oldest first).
    #[error("timed out after {after:?} waiting for {waiting_for}; received instead: [{}]", received.join(", "))]
    Timeout {
        /// What the step waited for ("180 for INVITE", "incoming INVITE").
        waiting_for: String,
        /// The deadline that passed.
        after: Duration,
        /// Summaries of what arrived meanwhile.
        received: Vec<String>,
    },
    /// A client transaction ended without a final response (RFC 3261 Timer B or F; `C` when an
    /// INVITE got a provisional response but no final one within 3 minutes).
    #[error("no final response to {request} (Timer {timer}); received: [{}]", received.join(", "))]
    TransactionTimeout {
        /// The request summary.
        request: String,
        /// `B`, `C` or `F`.
        timer: char,
        /// Summaries of what arrived.
        received: Vec<String>,
    },
    /// Sockets, connections or TLS failed.
    #[error("transport error: {0}")]
    Transport(String),
    /// Bytes from the peer that are not a SIP message.
    #[error(
        "malformed SIP from {from}: {error}; bytes: {}",
        timeline::escape_bytes(bytes)
    )]
    Malformed {
        /// The peer address.
        from: String,
        /// What is wrong.
        error: ParseError,
        /// The offending bytes.
        bytes: Bytes,
    },
    /// A response arrived that is not the one awaited.
    #[error("unexpected response {status} ({}) while waiting for {waiting_for}", response.summary())]
    UnexpectedResponse {
        /// Its status code.
        status: u16,
        /// What the step waited for.
        waiting_for: String,
        /// The whole response.
        response: Box<Message>,
    },
    /// A message we were asked to build or read lacks something (bad URI, missing header).
    #[error("invalid message: {0}")]
    Invalid(#[from] ParseError),
    /// A challenge cannot be answered.
    #[error("authentication: {0}")]
    Auth(#[from] AuthError),
    /// The step does not fit the call's state (answering a cancelled call, BYE before 2xx).
    #[error("invalid state: {0}")]
    State(String),
    /// Bad configuration (TLS material, addresses).
    #[error("configuration: {0}")]
    Config(String),
}

impl SipError {
    /// The status code for [`SipError::UnexpectedResponse`].
    pub fn status(&self) -> Option<u16> {
        match self {
            SipError::UnexpectedResponse { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<std::io::Error> for SipError {
    fn from(e: std::io::Error) -> Self {
        SipError::Transport(e.to_string())
    }
}
