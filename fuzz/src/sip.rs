//! sip-peer's parser: single datagrams (`Message::parse`, every typed view, the writer) and TCP
//! streams (`StreamFramer`) cut into pieces the way a peer's writes arrive.

use sip_peer::message::Message;
use sip_peer::transport::StreamFramer;

#[path = "../../sip-peer/tests/parser_check/mod.rs"]
mod parser_check;

/// One datagram: parses to a value or an error; every typed view of a parsed message gives a
/// value or an error; what is written reads back and writes the same bytes again
/// (`sip-peer/tests/parser_check`, shared with sip-peer's mutation test).
pub fn message(data: &[u8]) {
    if let Err(why) = parser_check::check(data, data.len()) {
        panic!("{why}\ninput: {}", timeline::escape_bytes(data));
    }
}

/// What a framer makes of a stream: the messages it cut (their exact bytes) and whether it gave
/// up.
fn frame(pieces: &[&[u8]]) -> (Vec<Vec<u8>>, bool) {
    let mut framer = StreamFramer::new(Default::default());
    let mut messages = Vec::new();
    for piece in pieces {
        framer.buffer().extend_from_slice(piece);
        loop {
            match framer.next() {
                Ok(Some(framed)) => {
                    parser_check::exercise(&framed.message);
                    messages.push(framed.raw.to_vec());
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = e.error.to_string();
                    return (messages, true);
                }
            }
        }
    }
    (messages, false)
}

/// A TCP stream (`crate::pieces`: the first byte picks where it is cut): the framer cuts the
/// same messages, and fails or not, whether the stream arrives whole or in pieces, and every
/// message it cuts parses on its own.
pub fn stream(data: &[u8]) {
    let (pieces, whole) = crate::pieces(data);
    let (in_pieces, failed_in_pieces) = frame(&pieces);
    let (at_once, failed_at_once) = frame(&[whole]);
    assert_eq!(
        (&in_pieces, failed_in_pieces),
        (&at_once, failed_at_once),
        "framing depends on how the stream is cut: {}",
        timeline::escape_bytes(whole)
    );
    for raw in &in_pieces {
        if let Err(e) = Message::parse(raw) {
            panic!(
                "framed a message that does not parse ({e}): {}",
                timeline::escape_bytes(raw)
            );
        }
    }
}
