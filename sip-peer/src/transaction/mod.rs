//! The transaction layer (RFC 3261 §17): client transactions ([`client`]: retransmissions over
//! UDP, Timers A/B/E/F, the ACK of a non-2xx final response) and server transactions
//! ([`server`]: the answer to a retransmitted request, CANCEL, final responses to INVITE
//! retransmitted over UDP until the ACK, Timers G/H).
//!
//! It sits on the transport layer and imports nothing from the dispatch above it: what it needs
//! from there (remembering an ACK for a call, ACKing a 2xx) is the [`client::ClientUser`] trait.

use crate::error::TransportError;
use crate::message::Message;
use bytes::Bytes;
use std::net::SocketAddr;

pub(crate) mod client;
pub(crate) mod server;

/// Something that arrived for a call or a pending request.
#[derive(Debug)]
pub(crate) enum Event {
    /// A response to one of the call's requests (boxed: channel blocks stay small).
    Response(Box<Message>),
    /// A request inside the dialog (already answered by the endpoint when it needs an answer).
    Request(Box<Message>),
    /// A client transaction ended without a final response.
    TxTimeout { request: String, timer: char },
    /// Sending failed.
    Transport(TransportError),
}

/// An ACK already sent, kept for retransmitted final responses.
#[derive(Clone, Debug)]
pub(crate) struct SentAck {
    pub(crate) to_tag: Option<String>,
    pub(crate) bytes: Bytes,
    pub(crate) dest: SocketAddr,
    pub(crate) summary: String,
}

/// The key of a transaction: branch and method (ACK maps to INVITE).
pub(crate) fn txn_key(branch: &str, method: &str) -> String {
    let method = if method == "ACK" { "INVITE" } else { method };
    format!("{branch}|{method}")
}
