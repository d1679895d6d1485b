//! Fuzzes mock-apns's request validation (`mock_apns::fuzzing::check_request`): any header list
//! and body must give an APNs status with a reason for every rejection, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mock_apns_fuzz::input::{parse, with_fresh_tokens};

fuzz_target!(|data: &[u8]| {
    let data = with_fresh_tokens(data);
    let request = parse(&data);
    let (status, reason) = mock_apns::fuzzing::check_request(&request.headers, request.body);
    assert!(
        matches!(
            status,
            200 | 400 | 403 | 404 | 405 | 410 | 413 | 429 | 500 | 503
        ),
        "status {status} is not one APNs uses"
    );
    assert_eq!(
        status == 200,
        reason.is_none(),
        "status {status} with reason {reason:?}"
    );
});
