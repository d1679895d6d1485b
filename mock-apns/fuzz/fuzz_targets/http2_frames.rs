//! Fuzzes mock-apns's HTTP/2 engine (`mock_apns::fuzzing::serve_http2_bytes`): any bytes from a
//! client must end the connection cleanly (an answer, a reset, a GOAWAY), never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mock_apns::fuzzing::serve_http2_bytes(data);
});
