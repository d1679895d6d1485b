//! A request whose body never arrives does not hold its stream forever: the connection resets it
//! with CANCEL once the server's I/O deadline (10 s) has passed (one timer per connection, armed
//! for the oldest waiting body), and the connection goes on serving. Real time, through the
//! binary.

use std::time::{Duration, Instant};
use testkit::apns::server::{statuses, Environment, MockServer};
use testkit::apns::wire::{self, frame};
use tokio::io::AsyncWriteExt;

const CANCEL: u32 = 0x8;
/// The server's deadline for a request body (`Settings::io_deadline`), and slack for the check.
const BODY_DEADLINE: Duration = Duration::from_secs(10);
const BODY_CHECK: Duration = Duration::from_millis(2500);

#[test]
fn a_body_that_never_arrives_is_cancelled_after_the_deadline_and_the_connection_still_serves() {
    let server = MockServer::start(&[]);
    let device = server.bundle_device(Environment::Sandbox);
    let jwt = server.valid_jwt();
    let (reset_after, code, answered) = wire::runtime().block_on(async {
        // Stream 1: HEADERS without END_STREAM, and then no DATA ever.
        let mut tls = server
            .open_raw_sandbox(&server.raw_push_headers(1, &device, &jwt))
            .await;
        let sent = Instant::now();
        let limit = BODY_DEADLINE + BODY_CHECK + Duration::from_secs(5);
        let code = loop {
            let f = wire::next_frame_within(&mut tls, limit)
                .await
                .expect("the connection ended before stream 1 was reset");
            match f.kind {
                frame::RST_STREAM if f.stream == 1 => {
                    break u32::from_be_bytes(f.payload[..4].try_into().expect("4 bytes"));
                }
                frame::HEADERS | frame::DATA if f.stream == 1 => {
                    panic!("stream 1 was answered without a body: {f:?}")
                }
                frame::GOAWAY => panic!("GOAWAY {:?}", f.payload),
                _ => {}
            }
        };
        let reset_after = sent.elapsed();
        // The same connection serves the next push.
        let mut bytes = wire::frame(frame::SETTINGS, 0x1, 0, &[]);
        bytes.extend(server.raw_push(3, &device, &jwt));
        tls.write_all(&bytes).await.expect("write");
        tls.flush().await.expect("flush");
        let answered = loop {
            let f = wire::next_frame(&mut tls)
                .await
                .expect("the connection ended before stream 3 was answered");
            if f.stream == 3 && matches!(f.kind, frame::HEADERS | frame::RST_STREAM) {
                break f.kind == frame::HEADERS;
            }
        };
        (reset_after, code, answered)
    });
    println!("stream 1 reset with {code:#x} after {reset_after:?}");
    assert_eq!(code, CANCEL, "stream 1 reset with {code:#x}, not CANCEL");
    assert!(
        reset_after >= BODY_DEADLINE,
        "stream 1 reset after {reset_after:?}, before the {BODY_DEADLINE:?} deadline"
    );
    assert!(answered, "stream 3 was reset, not answered");
    let log = server.pushes();
    assert_eq!(
        statuses(&log),
        [200],
        "only the whole push is recorded; push log: {log}"
    );
}
