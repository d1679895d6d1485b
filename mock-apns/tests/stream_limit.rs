//! APNs' stream limit on token connections, enforced and not only advertised: "when using an
//! authentication token, APNs allows only one stream until you post a request with a valid
//! authentication token" (Apple, *Sending notification requests to APNs*). A raw HTTP/2 client
//! that ignores SETTINGS opens two streams at once: before the first valid token the second is
//! reset with REFUSED_STREAM (as an HTTP/2 server does for streams over its limit); after it,
//! both are served.

use std::collections::BTreeMap;
use testkit::apns::server::{fresh_device_token, statuses, Environment, MockServer};
use testkit::apns::wire::{self, frame, Frame};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const REFUSED_STREAM: u32 = 0x7;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// What the server did with each stream.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    /// A response ending the stream (HEADERS or DATA with END_STREAM).
    Answered,
    /// RST_STREAM with this code.
    Reset(u32),
}

/// The MAX_CONCURRENT_STREAMS values of the server's SETTINGS frames so far.
fn max_streams(settings: &Frame) -> Option<u32> {
    settings.payload.chunks(6).find_map(|e| {
        (e.len() == 6 && u16::from_be_bytes([e[0], e[1]]) == SETTINGS_MAX_CONCURRENT_STREAMS)
            .then(|| u32::from_be_bytes([e[2], e[3], e[4], e[5]]))
    })
}

/// Reads frames until every stream in `streams` was answered or reset; records SETTINGS values.
async fn fates(
    tls: &mut TlsStream<TcpStream>,
    streams: &[u32],
    advertised: &mut Vec<u32>,
) -> BTreeMap<u32, Fate> {
    let mut fates = BTreeMap::new();
    while fates.len() < streams.len() {
        let f = wire::next_frame(tls)
            .await
            .unwrap_or_else(|| panic!("connection ended; fates so far: {fates:?}"));
        match f.kind {
            frame::SETTINGS if f.flags & 0x1 == 0 => advertised.extend(max_streams(&f)),
            frame::RST_STREAM => {
                let code = u32::from_be_bytes(f.payload[..4].try_into().expect("4 bytes"));
                fates.insert(f.stream, Fate::Reset(code));
            }
            frame::HEADERS | frame::DATA if f.flags & frame::END_STREAM != 0 => {
                fates.insert(f.stream, Fate::Answered);
            }
            frame::GOAWAY => panic!("GOAWAY {:?}; fates so far: {fates:?}", f.payload),
            _ => {}
        }
    }
    fates
}

#[test]
fn a_second_stream_before_the_first_valid_token_is_refused_and_after_it_served() {
    let server = MockServer::start(&[]);
    let device = server.bundle_device(Environment::Sandbox);
    let jwt = server.valid_jwt();
    let (before, after, advertised) = wire::runtime().block_on(async {
        // Preface, our SETTINGS, and two streams in one write, without waiting for the
        // server's SETTINGS: a client that ignores the limit of 1.
        let mut bytes = server.raw_push(1, &device, &jwt);
        bytes.extend(server.raw_push(3, &device, &jwt));
        let mut tls = server.open_raw_sandbox(&bytes).await;
        let mut advertised = Vec::new();
        let before = fates(&mut tls, &[1, 3], &mut advertised).await;
        // Stream 1 carried a valid token: the limit is 1000 now. Two at once again.
        let mut bytes = wire::frame(frame::SETTINGS, 0x1, 0, &[]);
        bytes.extend(server.raw_push(5, &device, &jwt));
        bytes.extend(server.raw_push(7, &device, &jwt));
        tls.write_all(&bytes).await.expect("write");
        tls.flush().await.expect("flush");
        let after = fates(&mut tls, &[5, 7], &mut advertised).await;
        (before, after, advertised)
    });
    let log = server.pushes();
    assert_eq!(
        before,
        BTreeMap::from([(1, Fate::Answered), (3, Fate::Reset(REFUSED_STREAM))]),
        "before the first valid token; push log: {log}\nserver log:\n{}",
        server.log()
    );
    assert_eq!(
        after,
        BTreeMap::from([(5, Fate::Answered), (7, Fate::Answered)]),
        "after the first valid token; push log: {log}"
    );
    assert_eq!(advertised, [1, 1000], "advertised MAX_CONCURRENT_STREAMS");
    // The refused stream never reached validation: three pushes, all 200.
    assert_eq!(statuses(&log), [200, 200, 200], "{log}");
}

#[test]
fn a_refused_token_keeps_the_limit_at_one() {
    let server = MockServer::start(&[]);
    let device = fresh_device_token();
    let (first, second) = wire::runtime().block_on(async {
        let mut tls = server
            .open_raw_sandbox(&server.raw_push(1, &device, "not-a-jwt"))
            .await;
        let mut advertised = Vec::new();
        let first = fates(&mut tls, &[1], &mut advertised).await;
        // Still one stream: the next pair gets one answer and one refusal.
        let mut bytes = server.raw_push(3, &device, "not-a-jwt");
        bytes.extend(server.raw_push(5, &device, "not-a-jwt"));
        tls.write_all(&bytes).await.expect("write");
        let second = fates(&mut tls, &[3, 5], &mut advertised).await;
        assert_eq!(advertised, [1], "the limit was raised for a refused token");
        (first, second)
    });
    assert_eq!(first, BTreeMap::from([(1, Fate::Answered)]));
    assert_eq!(
        second,
        BTreeMap::from([(3, Fate::Answered), (5, Fate::Reset(REFUSED_STREAM))]),
        "server log:\n{}",
        server.log()
    );
}
