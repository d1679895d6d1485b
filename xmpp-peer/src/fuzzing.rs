//! Entry points for the fuzz targets (`fuzz/`), public only with the `fuzzing` feature: the stream
//! framing stays private to the crate, and this is the one way in.

use crate::framing::{StreamEvent, StreamParser};

/// What a stream parser makes of a stream fed in `pieces`: its events, and whether it gave up.
/// After the end tag a new stream starts (as after STARTTLS or SASL).
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
    (out, false)
}

/// Frames `whole` fed at once and fed in `pieces` (the same bytes, cut the way a server's writes
/// arrive) and panics, showing the bytes, unless both give the same events and the same failure
/// or none.
pub fn check_stream(pieces: &[&[u8]], whole: &[u8]) {
    let in_pieces = events(pieces);
    let at_once = events(&[whole]);
    assert_eq!(
        in_pieces,
        at_once,
        "framing depends on how the stream is cut: {}",
        timeline::escape_bytes(whole)
    );
}
