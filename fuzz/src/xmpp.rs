//! xmpp-peer's parsers: stream framing (`StreamParser`) fed in pieces the way a server's writes
//! arrive, and the XML element parser.

use xmpp_peer::framing::{StreamEvent, StreamParser};
use xmpp_peer::xml::parse_str;

/// What a stream parser makes of a stream: its events and whether it gave up. After the end
/// tag, a new stream starts (as after STARTTLS or SASL).
fn events(pieces: &[&[u8]]) -> (Vec<StreamEvent>, bool) {
    let mut parser = StreamParser::new();
    let mut out = Vec::new();
    for piece in pieces {
        parser.feed(piece);
        loop {
            match parser.next_event() {
                Ok(Some(event)) => {
                    if matches!(event, StreamEvent::End { .. }) {
                        parser.restart();
                    }
                    out.push(event);
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = e.to_string();
                    return (out, true);
                }
            }
        }
    }
    let _ = parser.has_partial();
    (out, false)
}

/// An XMPP stream (`crate::pieces`: the first byte picks where it is cut): the same events, and
/// the same failure or none, whether it arrives whole or in pieces.
pub fn stream(data: &[u8]) {
    let (pieces, whole) = crate::pieces(data);
    let in_pieces = events(&pieces);
    let at_once = events(&[whole]);
    assert_eq!(
        in_pieces,
        at_once,
        "framing depends on how the stream is cut: {}",
        timeline::escape_bytes(whole)
    );
}

/// One element: parses to a value or an error; a parsed element, written out, parses again and
/// writes the same text (the writer's output is a fixed point).
pub fn xml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(element) = parse_str(text) else {
        return;
    };
    let written = element.to_xml();
    match parse_str(&written) {
        Ok(again) => assert_eq!(
            again.to_xml(),
            written,
            "writing is not stable for {text:?}"
        ),
        Err(e) => panic!("wrote {written:?} from {text:?}, which does not parse: {e}"),
    }
}
