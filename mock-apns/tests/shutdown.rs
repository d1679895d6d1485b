//! SIGTERM on `mock-apns serve` while a real client (nghttp) has a request in flight: the client
//! must see GOAWAY(NO_ERROR, `{"reason":"Shutdown"}`) before the socket closes, the request in
//! flight must still get its answer, and the process must exit cleanly. Repeated, because a
//! GOAWAY that is queued but not flushed before the process exits is lost only some of the time.

use serde_json::json;
use std::time::{Duration, Instant};
use testkit::apns::cases;
use testkit::apns::clients::{nghttp_verbose, ClientAuth, PushRequest};
use testkit::apns::server::{Environment, MockServer};

/// Rounds of start, push, SIGTERM.
const ROUNDS: usize = 50;
/// How long the push is held by a delay fault: the SIGTERM lands inside it.
const HOLD_MS: u64 = 250;
/// How long the server may take to exit after SIGTERM.
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// Waits (polling the control API, with a deadline) until the delay fault was taken by the push,
/// i.e. the request is on the server and being held.
fn wait_until_fault_taken(server: &MockServer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let faults = server.control_ok("GET", "/faults", None);
        if faults.trim() == "[]" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the push never reached the server; faults: {faults}\nlog:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The stream id of the request nghttp sent (it opens idle streams for priorities first).
fn request_stream(nghttp_stdout: &str) -> Option<u32> {
    nghttp_stdout
        .lines()
        .find(|l| l.contains("] send HEADERS frame <"))?
        .split("stream_id=")
        .nth(1)?
        .trim_end_matches('>')
        .parse()
        .ok()
}

fn one_round(round: usize) {
    let mut server = MockServer::start(&[]);
    let device = server.bundle_device(Environment::Sandbox);
    let fault = json!({"match": {"token": device}, "action": {"delay_ms": HOLD_MS}});
    server.control_ok("POST", "/faults", Some(&fault));
    let request = PushRequest {
        device_token: device.clone(),
        headers: vec![("apns-topic".into(), server.manifest.bundle_id.clone())],
        body: cases::payload_of_size(100),
        bearer: Some(server.valid_jwt()),
    };
    let out = std::thread::scope(|s| {
        let client =
            s.spawn(|| nghttp_verbose(&server, Environment::Sandbox, &ClientAuth::Token, &request));
        wait_until_fault_taken(&server);
        server.terminate();
        client.join().expect("nghttp thread")
    });
    let shown = format!(
        "round {round}\nnghttp stdout:\n{}\nnghttp stderr:\n{}\nserver log:\n{}",
        out.stdout,
        out.stderr,
        server.log()
    );
    assert!(
        out.stdout.contains("recv GOAWAY frame")
            && out
                .stdout
                .contains(r#"error_code=NO_ERROR(0x00), opaque_data(21)=[{"reason":"Shutdown"}])"#),
        "no GOAWAY(NO_ERROR, {{\"reason\":\"Shutdown\"}}) reached nghttp: {shown}"
    );
    let stream = request_stream(&out.stdout)
        .unwrap_or_else(|| panic!("nghttp printed no HEADERS it sent: {shown}"));
    assert!(
        out.stdout.contains(&format!("(last_stream_id={stream}, ")),
        "the GOAWAY must cover the stream in flight ({stream}): {shown}"
    );
    assert!(
        out.stdout.contains(":status: 200") && out.status.success(),
        "the push in flight was not answered 200: {shown}"
    );
    match server.wait_exit(EXIT_LIMIT) {
        Some(status) => assert!(status.success(), "mock-apns exited with {status}: {shown}"),
        None => panic!("mock-apns did not exit within {EXIT_LIMIT:?} of SIGTERM: {shown}"),
    }
    assert!(
        !server.log().contains("panicked"),
        "mock-apns panicked: {shown}"
    );
}

#[test]
fn sigterm_sends_goaway_shutdown_on_open_connections_every_time() {
    for round in 0..ROUNDS {
        one_round(round);
    }
}
