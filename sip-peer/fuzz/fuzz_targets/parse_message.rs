//! Fuzz target: the SIP parser path (datagram parser, typed views, writer, stream framer) keeps
//! the property in `tests/parser_check/mod.rs` for any bytes. The first input byte picks where
//! the stream framer's input is cut in two.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/parser_check/mod.rs"]
mod parser_check;

fuzz_target!(|data: &[u8]| {
    let (cut, input) = match data.split_first() {
        Some((c, rest)) => (*c as usize * rest.len() / 255, rest),
        None => (0, data),
    };
    if let Err(why) = parser_check::check(input, cut) {
        panic!("{why}\ninput: {}", timeline::escape_bytes(input));
    }
});
