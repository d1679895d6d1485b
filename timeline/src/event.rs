//! One recorded event: a message on the wire, or a note.

use bytes::Bytes;
use serde::{Serialize, Serializer};
use std::time::Duration;

/// Which way a message went, seen from the recording party.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The party sent it to the peer.
    Sent,
    /// The party received it from the peer.
    Received,
    /// Not a message: something the party observed or decided.
    Note,
}

/// The protocol of a recorded message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// SIP over UDP, TCP or TLS.
    Sip,
    /// The APNs provider API (HTTP/2) or a delivery to a device.
    Apns,
    /// XMPP stanzas and stream elements.
    Xmpp,
    /// A control API or the bench driving a party.
    Control,
    /// An annotation without a wire message.
    Note,
}

/// One entry of a [`crate::Timeline`].
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// Position in the timeline, from 0.
    pub seq: u64,
    /// Time since the timeline's origin.
    #[serde(serialize_with = "duration_micros")]
    pub at: Duration,
    /// The party that recorded it ("bob", "alice-iphone", "mock-apns").
    pub party: String,
    /// Sent, received, or a note.
    pub direction: Direction,
    /// The other end: a party name such as "gateway", or an address.
    pub peer: String,
    /// The protocol.
    pub protocol: Protocol,
    /// "udp", "tcp", "tls", "h2", "sse", or empty.
    pub transport: String,
    /// One line that says what it is ("INVITE sip:alice@example.com", "200 OK (REGISTER)").
    pub summary: String,
    /// The bytes on the wire, exactly as sent or received.
    #[serde(serialize_with = "bytes_as_text")]
    pub raw: Bytes,
}

impl Event {
    /// The raw bytes as printable text: valid UTF-8 as is (control characters other than CR, LF
    /// and tab escaped), every other byte as `\xNN`.
    pub fn raw_text(&self) -> String {
        escape_bytes(&self.raw)
    }

    /// The arrow's source and destination columns.
    pub fn endpoints(&self) -> (&str, &str) {
        match self.direction {
            Direction::Sent => (&self.party, &self.peer),
            Direction::Received => (&self.peer, &self.party),
            Direction::Note => (&self.party, &self.party),
        }
    }
}

/// Bytes as printable text: UTF-8 runs kept, other bytes and control characters as `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\r' | '\n' | '\t' => out.push(c),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn duration_micros<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

fn bytes_as_text<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&escape_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_text_and_shows_bad_bytes() {
        assert_eq!(escape_bytes(b"OK\r\n"), "OK\r\n");
        assert_eq!(escape_bytes(b"a\xffb\x00"), "a\\xffb\\x00");
        assert_eq!(escape_bytes("é".as_bytes()), "é");
    }
}
