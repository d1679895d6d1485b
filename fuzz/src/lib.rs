//! pushbench's fuzz targets: one function per parser that takes untrusted bytes, each checking a
//! property stronger than "does not panic" where the parser has one (a decoded header list adds up,
//! a written message reads back the same, a stream framed in pieces frames as it does whole).
//!
//! The same functions run in two ways:
//! - coverage-guided, under AFL++ (afl.rs, stable toolchain): `scripts/fuzz.sh TARGET MINUTES`
//!   builds `src/bin/afl-target.rs` instrumented and runs it on `corpus/TARGET/`;
//! - as ordinary tests (`tests/replay.rs`): every file of `corpus/TARGET/` and
//!   `regressions/TARGET/` is replayed on every `cargo test`.
//!
//! A target signals a failure by panicking, which AFL records as a crash.

pub mod apns;
pub mod apns_input;
pub mod config;
pub mod sip;
pub mod xmpp;

/// A fuzz target: any bytes in, a panic when the property breaks.
pub type Target = fn(&[u8]);

/// Every target, by the name `scripts/fuzz.sh` and the corpus folders use.
pub const TARGETS: &[(&str, Target)] = &[
    ("http2_frames", apns::http2_frames),
    ("hpack", apns::hpack),
    ("check_request", apns::check_request),
    ("jwt", apns::jwt),
    ("sip_message", sip::message),
    ("sip_stream", sip::stream),
    ("xmpp_stream", xmpp::stream),
    ("xml", xmpp::xml),
    ("target_toml", config::target_toml),
    ("expected_toml", config::expected_toml),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Splits `data` into the pieces a peer's writes would arrive in: the first byte seeds the piece
/// sizes (1 to 64 bytes, or the whole input when it is 0), the rest is the stream.
pub fn pieces(data: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return (Vec::new(), data);
    };
    if seed == 0 {
        return (vec![stream], stream);
    }
    let mut out = Vec::new();
    let mut rest = stream;
    let mut state = u32::from(seed) | 0x100;
    while !rest.is_empty() {
        // A small LCG: piece sizes vary along the stream, and the same seed cuts the same way.
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let size = ((state >> 16) % 64 + 1) as usize;
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        out.push(piece);
        rest = tail;
    }
    (out, stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_stream_in_order() {
        let data: Vec<u8> = (0..=255u8).collect();
        for seed in [0u8, 1, 7, 255] {
            let mut input = vec![seed];
            input.extend_from_slice(&data);
            let (parts, stream) = pieces(&input);
            assert_eq!(parts.concat(), stream);
            assert_eq!(stream, &data[..]);
            assert!(parts.iter().all(|p| !p.is_empty()));
        }
        assert!(pieces(b"").0.is_empty());
    }

    #[test]
    fn every_target_is_found_by_name() {
        for (name, _) in TARGETS {
            assert!(target(name).is_some());
        }
        assert!(target("nope").is_none());
    }
}
