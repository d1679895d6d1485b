//! The error values every step of the SIP peer returns.

use crate::auth::AuthError;
use crate::message::{Message, ParseError};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
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
    Transport(#[from] TransportError),
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
    /// Bad configuration (TLS material).
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
}

/// Why a message could not be sent, or a transaction could not go on, at the transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A socket could not be made, bound or read.
    #[error("{context}: {source}")]
    Socket {
        /// What was being done ("binding 127.0.0.1:0").
        context: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A datagram could not be sent.
    #[error("send to {dest}: {source}")]
    Send {
        /// Where it was going.
        dest: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The endpoint is in flight mode ([`crate::Offline::Disconnected`]).
    #[error("offline (flight mode)")]
    Offline,
    /// The endpoint's sockets are closed (an app iOS suspended or killed) until it reopens them.
    #[error("socket closed (the app's process is gone)")]
    Closed,
    /// A stream connection could not be opened or set up.
    #[error("connection to {peer} failed: {source}")]
    Connection {
        /// The other end.
        peer: SocketAddr,
        /// Why.
        source: ConnectionError,
    },
    /// The transaction's task is gone (its endpoint was dropped).
    #[error("transaction ended")]
    TransactionEnded,
}

/// Why a TCP or TLS connection failed (cloneable: every transaction waiting on the connection
/// gets it).
#[derive(Clone, Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The TCP connect failed.
    #[error("{0}")]
    Connect(#[source] Arc<std::io::Error>),
    /// The TCP connect did not finish within 64·T1.
    #[error("connect timed out")]
    ConnectTimeout,
    /// A TLS endpoint was asked to connect without a client configuration.
    #[error("no TLS client configuration")]
    NoTlsClient,
    /// The name to check in the server's certificate is not a valid server name.
    #[error("server name {name:?}: {source}")]
    ServerName {
        /// The name.
        name: String,
        /// Why it is not one.
        source: Arc<rustls::pki_types::InvalidDnsNameError>,
    },
    /// The TLS handshake of a connection this endpoint opened failed.
    #[error("TLS handshake: {0}")]
    TlsHandshake(#[source] Arc<std::io::Error>),
    /// The TLS handshake of a connection this endpoint accepted failed.
    #[error("TLS accept: {0}")]
    TlsAccept(#[source] Arc<std::io::Error>),
    /// A TLS endpoint accepted a connection without a server identity.
    #[error("no TLS server identity configured")]
    NoTlsServer,
}

/// What is wrong with an endpoint's configuration (its TLS material).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A TLS endpoint needs a [`crate::TlsConfig`].
    #[error("a TLS endpoint needs a TlsConfig")]
    NoTls,
    /// PEM text that does not read.
    #[error("{what} PEM: {source}")]
    Pem {
        /// Which PEM ("CA", "certificate", "key").
        what: &'static str,
        /// The reader's error.
        source: std::io::Error,
    },
    /// PEM text without what it should hold.
    #[error("no {0}")]
    Missing(&'static str),
    /// rustls refused the material.
    #[error("{what}: {source}")]
    Tls {
        /// What was being set up.
        what: &'static str,
        /// rustls' error.
        source: rustls::Error,
    },
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
