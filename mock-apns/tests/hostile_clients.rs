//! Hostile clients against the `mock-apns` binary. Each test ends, and some also pause halfway,
//! with a push from a well-behaved provider (the `h2` crate, a client nobody here wrote) that must
//! get 200: a hostile connection costs its own connection, never the server.
//!
//! The limits they prove, and where each comes from, are in the README ("Hostile clients"). The
//! deadlines here are generous (a loaded 2-core machine): the tests assert what happens, never how
//! fast.

use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::apns::server::{statuses, Environment, MockServer};
use testkit::apns::wire::{self, frame, Outcome};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

const CANCEL: u32 = 0x8;
const ENHANCE_YOUR_CALM: u32 = 0xb;
/// The server's deadline for a TLS handshake, a preface and a request body (10 s), and room for a
/// loaded machine on top.
const DEADLINE_AND_SLACK: Duration = Duration::from_secs(60);

/// A server, a device registered for the bundle on its sandbox listener, and a valid provider
/// token.
fn server() -> (MockServer, String, String) {
    let server = MockServer::start(&[]);
    let device = server.bundle_device(Environment::Sandbox);
    let jwt = server.valid_jwt();
    (server, device, jwt)
}

/// A well-behaved push gets 200 (`when` names the moment, for the failure message).
async fn assert_served(server: &MockServer, device: &str, jwt: &str, when: &str) {
    let outcome = server.h2_push(device, jwt).await;
    assert!(
        matches!(outcome, Outcome::Answer { status: 200, .. }),
        "{when}: a well-behaved push got {outcome:?}\nserver log:\n{}",
        server.log()
    );
}

/// Sends a whole push on `stream` of a raw connection and returns the first frame the server sends
/// on that stream (its response HEADERS, or a reset).
async fn raw_push(
    tls: &mut tokio_rustls::client::TlsStream<TcpStream>,
    server: &MockServer,
    stream: u32,
    device: &str,
    jwt: &str,
) -> wire::Frame {
    tls.write_all(&server.raw_push(stream, device, jwt))
        .await
        .expect("write");
    tls.flush().await.expect("flush");
    loop {
        let f = wire::next_frame(tls)
            .await
            .unwrap_or_else(|| panic!("the connection ended before stream {stream} was answered"));
        if f.stream == stream {
            return f;
        }
    }
}

/// Reads frames until a GOAWAY: `(error code, debug text)`, or `None` if the connection ended
/// without one.
async fn read_goaway(reader: &mut (impl AsyncRead + Unpin)) -> Option<(u32, String)> {
    loop {
        let mut head = [0u8; 9];
        reader.read_exact(&mut head).await.ok()?;
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        reader.read_exact(&mut payload).await.ok()?;
        if head[3] == frame::GOAWAY && payload.len() >= 8 {
            let code = u32::from_be_bytes(payload[4..8].try_into().expect("4 bytes"));
            return Some((code, String::from_utf8_lossy(&payload[8..]).into_owned()));
        }
    }
}

/// The bytes of a real TLS ClientHello for the sandbox listener (rustls, as a client sends it).
fn client_hello(config: Arc<rustls::ClientConfig>) -> Vec<u8> {
    let name = ServerName::try_from(Environment::Sandbox.host().to_owned()).expect("server name");
    let mut tls = rustls::ClientConnection::new(config, name).expect("TLS client");
    let mut hello = Vec::new();
    tls.write_tls(&mut hello).expect("ClientHello");
    hello
}

/// Sends `bytes` one a second on `io` until the server closes the connection; returns how many
/// went out. Panics if they all went out (the server waited for the slowest client there is).
async fn trickle<IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    io: IO,
    bytes: &[u8],
) -> usize {
    let (mut reader, mut writer) = tokio::io::split(io);
    let mut sink = [0u8; 1024];
    for (sent, byte) in bytes.iter().enumerate() {
        if writer.write_all(&[*byte]).await.is_err() || writer.flush().await.is_err() {
            return sent;
        }
        // A second between bytes, or the server's close, whichever comes first.
        let closed = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                match reader.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {} // the server's SETTINGS
                }
            }
        })
        .await;
        if closed.is_ok() {
            return sent + 1;
        }
    }
    panic!(
        "the server took all {} bytes, one a second, without closing",
        bytes.len()
    );
}

/// A slowloris that has not finished its TLS handshake: a real ClientHello, a byte a second.
async fn slow_handshake(addr: SocketAddr, hello: Arc<Vec<u8>>) -> usize {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    trickle(tcp, &hello).await
}

/// A slowloris past its TLS handshake: the HTTP/2 preface and SETTINGS, a byte a second.
async fn slow_preface(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> usize {
    let tls = wire::tls_connect(addr, Environment::Sandbox.host(), config)
        .await
        .expect("TLS");
    let mut bytes = wire::PREFACE.to_vec();
    bytes.extend(wire::frame(frame::SETTINGS, 0, 0, &[]));
    trickle(tls, &bytes).await
}

#[test]
fn a_slowloris_of_500_tls_connections_is_cut_off_while_the_server_serves_on() {
    let (server, device, jwt) = server();
    wire::runtime().block_on(async {
        let config = wire::tls_config(&server.manifest.ca_file, true);
        let hello = Arc::new(client_hello(config.clone()));
        // Half of them never finish their TLS handshake (the server's handshake deadline), half
        // never finish their HTTP/2 preface (its preface deadline): 10 s each.
        let mut slow = JoinSet::new();
        for i in 0..500 {
            let (addr, config, hello) = (server.sandbox, config.clone(), hello.clone());
            slow.spawn(async move {
                if i % 2 == 0 {
                    ("handshake", slow_handshake(addr, hello).await)
                } else {
                    ("preface", slow_preface(addr, config).await)
                }
            });
        }
        // All 500 are connected and trickling (the TLS half connects within a second or two).
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_served(&server, &device, &jwt, "during the slowloris").await;
        let started = Instant::now();
        let mut cut = Vec::new();
        while let Some(done) = tokio::time::timeout(DEADLINE_AND_SLACK, slow.join_next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} slowloris connections still open after {DEADLINE_AND_SLACK:?}",
                    500 - cut.len()
                )
            })
        {
            cut.push(done.expect("a slowloris task"));
        }
        println!(
            "500 slowloris connections cut off within {:?} of the push; bytes each sent before: \
             handshake {:?}, preface {:?}",
            started.elapsed(),
            cut.iter()
                .filter(|(k, _)| *k == "handshake")
                .map(|(_, n)| *n)
                .max(),
            cut.iter()
                .filter(|(k, _)| *k == "preface")
                .map(|(_, n)| *n)
                .max(),
        );
        assert_eq!(cut.len(), 500);
        assert_served(&server, &device, &jwt, "after the slowloris").await;
    });
    assert_eq!(statuses(&server.pushes()), [200, 200]);
}

#[test]
fn streams_whose_data_never_comes_are_cancelled_while_the_server_serves_on() {
    const STREAMS: usize = 1000;
    let (server, device, jwt) = server();
    wire::runtime().block_on(async {
        // Stream 1 is a whole push: its valid token raises MAX_CONCURRENT_STREAMS to 1000.
        let mut tls = server
            .open_raw_sandbox(&server.raw_push(1, &device, &jwt))
            .await;
        loop {
            let f = wire::next_frame(&mut tls)
                .await
                .expect("stream 1's answer before the end");
            if f.kind == frame::HEADERS && f.stream == 1 {
                break;
            }
        }
        // Then 1000 streams whose HEADERS promise a body that never comes.
        let mut bytes = wire::frame(frame::SETTINGS, frame::ACK, 0, &[]);
        let ids: Vec<u32> = (3..).step_by(2).take(STREAMS).collect();
        for &id in &ids {
            bytes.extend(server.raw_push_headers(id, &device, &jwt));
        }
        tls.write_all(&bytes).await.expect("write");
        tls.flush().await.expect("flush");
        assert_served(&server, &device, &jwt, "while 1000 streams wait for DATA").await;
        // Each is reset with CANCEL once the body deadline passes; none is answered.
        let mut cancelled = 0;
        let until = Instant::now() + DEADLINE_AND_SLACK;
        while cancelled < STREAMS {
            let left = until.saturating_duration_since(Instant::now());
            let f = wire::next_frame_within(&mut tls, left)
                .await
                .unwrap_or_else(|| panic!("connection ended after {cancelled} CANCELs"));
            match f.kind {
                frame::RST_STREAM => {
                    let code = u32::from_be_bytes(f.payload[..4].try_into().expect("4 bytes"));
                    assert_eq!(code, CANCEL, "stream {} reset with {code:#x}", f.stream);
                    cancelled += 1;
                }
                frame::HEADERS | frame::DATA => panic!("stream {} answered: {f:?}", f.stream),
                frame::GOAWAY => panic!("GOAWAY {:?}", String::from_utf8_lossy(&f.payload)),
                _ => {}
            }
        }
        // The same connection serves the next push.
        let next = ids[STREAMS - 1] + 2;
        let answer = raw_push(&mut tls, &server, next, &device, &jwt).await;
        assert_eq!(answer.kind, frame::HEADERS, "the next push: {answer:?}");
        assert_served(&server, &device, &jwt, "after the CANCELs").await;
    });
    // Only the whole pushes are recorded.
    assert_eq!(statuses(&server.pushes()), [200, 200, 200, 200]);
}

/// Floods a connection with `bytes` while a well-behaved push is made on another one: the flood
/// gets GOAWAY ENHANCE_YOUR_CALM with `why` in its text, the push gets 200.
async fn assert_flood_calmed(
    server: &MockServer,
    device: &str,
    jwt: &str,
    bytes: Vec<u8>,
    why: &str,
) {
    let during = format!("during a {why} flood");
    let ((code, text), ()) = tokio::join!(
        flood(server, bytes),
        assert_served(server, device, jwt, &during)
    );
    assert_eq!(
        code, ENHANCE_YOUR_CALM,
        "{why} flood: GOAWAY {code:#x} {text}"
    );
    assert!(text.contains(why), "{why} flood: {text}");
}

/// Opens a connection, writes `flood` without reading, and returns the GOAWAY the server sent.
async fn flood(server: &MockServer, flood: Vec<u8>) -> (u32, String) {
    let tls = server.open_raw_sandbox(&[]).await;
    let (mut reader, mut writer) = tokio::io::split(tls);
    let write = tokio::spawn(async move {
        // The server stops reading once it has had enough: a broken pipe is expected.
        let _ = writer.write_all(&flood).await;
        let _ = writer.flush().await;
        writer
    });
    let goaway = tokio::time::timeout(DEADLINE_AND_SLACK, read_goaway(&mut reader))
        .await
        .expect("a GOAWAY within the deadline")
        .expect("a GOAWAY before the connection ended");
    let _ = tokio::time::timeout(DEADLINE_AND_SLACK, write).await;
    goaway
}

#[test]
fn ping_and_settings_floods_get_enhance_your_calm_while_the_server_serves_on() {
    let (server, device, jwt) = server();
    wire::runtime().block_on(async {
        let ping = wire::frame(frame::PING, 0, 0, b"flooding");
        let settings = wire::frame(frame::SETTINGS, 0, 0, &[]);
        for (name, one) in [("PING", ping), ("SETTINGS", settings)] {
            // 100 000 frames at once.
            assert_flood_calmed(&server, &device, &jwt, one.repeat(100_000), name).await;
        }
        assert_served(&server, &device, &jwt, "after the floods").await;
    });
}

#[test]
fn a_continuation_flood_gets_enhance_your_calm_while_the_server_serves_on() {
    let (server, device, jwt) = server();
    wire::runtime().block_on(async {
        // A push's HEADERS without END_HEADERS, then 100 000 empty CONTINUATION frames: the
        // header block never grows, so only a count of frames stops it.
        let mut bytes = server.raw_push_headers(1, &device, &jwt);
        bytes[4] &= !frame::END_HEADERS;
        bytes.extend(wire::frame(frame::CONTINUATION, 0, 1, &[]).repeat(100_000));
        assert_flood_calmed(&server, &device, &jwt, bytes, "CONTINUATION").await;
        assert_served(&server, &device, &jwt, "after the flood").await;
    });
}

#[test]
fn an_hpack_bomb_gets_431_without_the_server_growing_and_the_connection_serves_on() {
    let (server, device, jwt) = server();
    let before = server.rss_kib();
    wire::runtime().block_on(async {
        // A 4000-byte field into the dynamic table (a literal with incremental indexing, RFC 7541
        // §6.2.1), then one-byte references to it (index 62) filling a HEADERS and 8
        // CONTINUATION frames of 16 KB: 147 KB on the wire that decode into about 590 MB.
        let path = format!("/3/device/{device}");
        let mut block = wire::hpack_literals(&[
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":path", path.as_bytes()),
            (b":authority", Environment::Sandbox.host().as_bytes()),
        ]);
        block.extend([0x40, 6]);
        block.extend(b"x-bomb");
        block.extend([0x7f, 0xa1, 0x1e]); // 4000 = 127 + 33 + 30 × 128
        block.extend([b'b'; 4000]);
        const FRAME: usize = 16_384;
        block.resize(FRAME, 0x80 | 62);
        let mut bytes = wire::frame(frame::HEADERS, frame::END_STREAM, 1, &block);
        let references = [0x80 | 62; FRAME];
        for i in 0..8 {
            let flags = if i == 7 { frame::END_HEADERS } else { 0 };
            bytes.extend(wire::frame(frame::CONTINUATION, flags, 1, &references));
        }
        let mut tls = server.open_raw_sandbox(&bytes).await;
        let answer = loop {
            let f = wire::next_frame(&mut tls)
                .await
                .expect("the bomb's answer before the end");
            if f.stream == 1 {
                break f;
            }
        };
        assert_eq!(answer.kind, frame::HEADERS, "the bomb: {answer:?}");
        // `:status` 431 as the server encodes it: a literal with the static name `:status` (8).
        assert_eq!(answer.payload, [0x08, 3, b'4', b'3', b'1'], "{answer:?}");
        // The same connection serves a push (stream 1 is closed: the limit of 1 admits stream 3);
        // `:status` 200 is static index 8, indexed.
        let answer = raw_push(&mut tls, &server, 3, &device, &jwt).await;
        assert_eq!(
            (answer.kind, answer.payload.first()),
            (frame::HEADERS, Some(&0x88)),
            "stream 3: {answer:?}"
        );
        assert_served(&server, &device, &jwt, "after the bomb").await;
    });
    let after = server.rss_kib();
    println!("server VmRSS {before} KiB before the bomb, {after} KiB after");
    assert!(
        after < before + 64 * 1024,
        "the server grew from {before} to {after} KiB on a header block that decodes to 590 MB"
    );
    assert_eq!(statuses(&server.pushes()), [200, 200]);
}
