//! The HTTP/2 engine's fuzz entry point (`mock_apns::fuzzing::serve_http2_bytes`, target
//! `http2_frames` in the workspace's `fuzz/`) run in CI over hand-made client byte streams and tens of
//! thousands of deterministic mutations of them: every one must end the connection without a
//! panic or a hang, and the well-formed seeds must be served.

use mock_apns::http2::frame::{self, frame, put_settings, put_window_update};
use mock_apns::http2::hpack::{encode_literal, encode_never_indexed};
use std::time::{Duration, Instant};
use testkit::rng::Rng;

fn request_block(path: &str) -> Vec<u8> {
    let mut block = Vec::new();
    for (n, v) in [
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", "api.push.apple.com"),
        (":path", path),
        ("apns-topic", "com.example.pushbench.voip"),
        ("apns-push-type", "voip"),
        ("content-length", "12"),
    ] {
        encode_literal(n.as_bytes(), v.as_bytes(), &mut block);
    }
    encode_never_indexed(b"authorization", b"bearer a.b.c", &mut block);
    block
}

/// Well-formed client byte streams (after the preface) that exercise every frame type, and how
/// many requests each carries.
fn seeds() -> Vec<(Vec<u8>, usize)> {
    let mut settings = Vec::new();
    put_settings(
        &mut settings,
        &[
            (frame::SETTINGS_INITIAL_WINDOW_SIZE, 100),
            (frame::SETTINGS_MAX_FRAME_SIZE, 16_384),
        ],
    );
    let block = request_block(&format!("/3/device/{}", "ab".repeat(32)));
    let one = |stream: u32| {
        let mut b = frame(frame::HEADERS, frame::END_HEADERS, stream, &block);
        b.extend(frame(
            frame::DATA,
            frame::END_STREAM,
            stream,
            b"{\"aps\":{}}..",
        ));
        b
    };
    let mut many = settings.clone();
    for s in [1, 3, 5] {
        many.extend(one(s));
    }
    let mut split = settings.clone();
    split.extend(frame(frame::HEADERS, frame::PRIORITY_FLAG, 1, &{
        let mut p = vec![0, 0, 0, 0, 16];
        p.extend_from_slice(&block[..20]);
        p
    }));
    split.extend(frame(
        frame::CONTINUATION,
        frame::END_HEADERS,
        1,
        &block[20..],
    ));
    split.extend(frame(
        frame::DATA,
        frame::PADDED,
        1,
        b"\x02{\"aps\":{}}..\0\0",
    ));
    split.extend(frame(
        frame::HEADERS,
        frame::END_HEADERS | frame::END_STREAM,
        1,
        &[],
    ));
    let mut control = settings.clone();
    control.extend(frame(frame::PING, 0, 0, b"pingpong"));
    put_window_update(&mut control, 0, 1000);
    control.extend(frame(frame::SETTINGS, frame::ACK, 0, &[]));
    control.extend(frame(frame::PRIORITY, 0, 3, &[0, 0, 0, 0, 16]));
    control.extend(one(5));
    control.extend(frame(frame::RST_STREAM, 0, 5, &[0, 0, 0, 8]));
    control.extend(frame(frame::GOAWAY, 0, 0, &[0, 0, 0, 0, 0, 0, 0, 0]));
    vec![(many, 3), (split, 1), (control, 1)]
}

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len());
        match rng.below(6) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes[at] = rng.next() as u8,
            2 => bytes.insert(at, rng.next() as u8),
            3 if !bytes.is_empty() => {
                bytes.remove(at);
            }
            4 => bytes.truncate(at),
            _ => {
                // A frame header field set to an extreme (length, type, flags or stream id).
                let v = [0x00, 0xff, 0x7f, 0x80][rng.below(4)];
                bytes[at] = v;
            }
        }
        if bytes.is_empty() {
            bytes.push(0);
        }
    }
    bytes
}

#[test]
fn well_formed_seeds_are_served_until_the_client_closes() {
    for (i, (seed, requests)) in seeds().iter().enumerate() {
        let run = mock_apns::fuzzing::serve_http2_bytes(seed);
        assert_eq!(
            run,
            mock_apns::fuzzing::EngineRun {
                ended: "closed by the client".to_owned(),
                requests: *requests
            },
            "seed {i}"
        );
    }
}

#[test]
fn mutated_client_bytes_end_the_connection_without_a_panic_or_a_hang() {
    let seeds = seeds();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut endings = std::collections::BTreeMap::<String, usize>::new();
    let started = Instant::now();
    const RUNS: usize = 100_000;
    for _ in 0..RUNS {
        let (seed, _) = &seeds[rng.below(seeds.len())];
        let input = mutate(seed, &mut rng);
        let one = Instant::now();
        let ended = mock_apns::fuzzing::serve_http2_bytes(&input).ended;
        assert!(
            one.elapsed() < Duration::from_secs(5),
            "took {:?} on {input:02x?}: {ended}",
            one.elapsed()
        );
        let kind = ended.split(':').next().unwrap_or_default().to_owned();
        *endings.entry(kind).or_default() += 1;
    }
    println!("{RUNS} inputs in {:?}: {endings:#?}", started.elapsed());
    // The mutations reach both clean ends and connection errors.
    assert!(
        endings.keys().any(|k| k.starts_with("connection error")),
        "{endings:?}"
    );
    assert!(endings.contains_key("closed by the client"), "{endings:?}");
}
