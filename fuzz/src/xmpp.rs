//! xmpp-peer's parsers: stream framing fed in pieces the way a server's writes arrive, and the XML
//! element parser.

use xmpp_peer::xml::parse_str;

/// An XMPP stream (`crate::pieces`: the first byte picks where it is cut): the same events, and
/// the same failure or none, whether it arrives whole or in pieces
/// (`xmpp_peer::fuzzing::check_stream`).
pub fn stream(data: &[u8]) {
    let (pieces, whole) = crate::pieces(data);
    xmpp_peer::fuzzing::check_stream(&pieces, whole);
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
