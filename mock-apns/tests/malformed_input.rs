//! Bad input never panics or hangs the mock. A corpus of malformed requests — broken JWTs, huge and
//! duplicate headers, invalid UTF-8 in header values and bodies, truncated HTTP/2 frames written raw
//! over TLS, garbage before the preface — each gets Apple's status and reason or a clean end of the
//! connection, and afterwards the server still answers a valid push with 200.

use bytes::Bytes;
use http::{HeaderValue, Method};
use testkit::apns::cases::payload_of_size;
use testkit::apns::jwt::{self, b64, Signature};
use testkit::apns::server::{fresh_device_token, Environment, MockServer};
use testkit::apns::wire::{self, frame, hpack_literals, H2Request, Outcome, RawEnd, PREFACE};

const HOST: &str = "api.sandbox.push.apple.com";

fn hv(bytes: &[u8]) -> HeaderValue {
    HeaderValue::from_bytes(bytes).expect("header value bytes")
}

/// One malformed request and the answers Apple would accept for it.
struct Bad {
    name: &'static str,
    request: H2Request,
    /// Acceptable (status, reason) pairs.
    expect: &'static [(u16, &'static str)],
}

struct Corpus {
    token: String,
    topic: String,
    jwt: String,
    key: Vec<u8>,
    kid: String,
    team: String,
}

impl Corpus {
    fn new(server: &MockServer) -> Corpus {
        let token = fresh_device_token();
        let topics = [
            server.manifest.bundle_id.clone(),
            server.manifest.voip_topic(),
        ];
        server.register_device(&token, &topics, Environment::Sandbox);
        let m = &server.manifest;
        Corpus {
            token,
            topic: m.bundle_id.clone(),
            jwt: server.valid_jwt(),
            key: jwt::read_p8(&m.key_file),
            kid: m.key_id.clone(),
            team: m.team_id.clone(),
        }
    }

    /// A valid push with `authorization` replaced (None: no header at all).
    fn with_auth(&self, authorization: Option<HeaderValue>) -> H2Request {
        let mut headers = vec![("apns-topic", hv(self.topic.as_bytes()))];
        if let Some(a) = authorization {
            headers.push(("authorization", a));
        }
        H2Request::post(&self.token, headers, payload_of_size(100))
    }

    fn bearer(&self, jwt: &str) -> H2Request {
        self.with_auth(Some(hv(format!("bearer {jwt}").as_bytes())))
    }

    /// A valid token-auth push with `extra` headers appended (duplicates allowed).
    fn with_headers(
        &self,
        extra: Vec<(&'static str, HeaderValue)>,
        body: impl Into<Bytes>,
    ) -> H2Request {
        let mut headers = vec![
            (
                "authorization",
                hv(format!("bearer {}", self.jwt).as_bytes()),
            ),
            ("apns-topic", hv(self.topic.as_bytes())),
        ];
        headers.extend(extra);
        H2Request::post(&self.token, headers, body)
    }

    /// A valid push where header `name` gets `value` instead (or is added).
    fn replacing(&self, name: &'static str, value: HeaderValue) -> H2Request {
        let mut r = self.with_headers(vec![], payload_of_size(100));
        r.headers.retain(|(k, _)| k.as_str() != name);
        r.headers.push((http::HeaderName::from_static(name), value));
        r
    }

    fn es256(&self, header: serde_json::Value, claims: serde_json::Value) -> String {
        jwt::es256_with_header(&self.key, &header, &claims, Signature::Raw)
    }

    fn cases(&self) -> Vec<Bad> {
        const INVALID_TOKEN: &[(u16, &str)] = &[(403, "InvalidProviderToken")];
        const MISSING_TOKEN: &[(u16, &str)] = &[(403, "MissingProviderToken")];
        const MISSING_OR_INVALID: &[(u16, &str)] =
            &[(403, "MissingProviderToken"), (403, "InvalidProviderToken")];
        let now = jwt::now();
        let header = serde_json::json!({"alg": "ES256", "kid": self.kid});
        let claims = serde_json::json!({"iss": self.team, "iat": now});
        let (input, sig) = self.jwt.rsplit_once('.').expect("jwt");
        let bad = |name, request, expect| Bad {
            name,
            request,
            expect,
        };
        vec![
            // Broken provider tokens.
            bad("JWT with one segment", self.bearer("abcdef"), INVALID_TOKEN),
            bad(
                "JWT with two segments",
                self.bearer("abc.def"),
                INVALID_TOKEN,
            ),
            bad(
                "JWT with four segments",
                self.bearer(&format!("{}.x", self.jwt)),
                INVALID_TOKEN,
            ),
            bad(
                "JWT segments not base64url",
                self.bearer("!!!.@@@.###"),
                INVALID_TOKEN,
            ),
            bad(
                "JWT header not JSON",
                self.bearer(&format!("{}.{}.{sig}", b64(b"not json"), b64(b"{}"))),
                INVALID_TOKEN,
            ),
            bad(
                "JWT claims not JSON",
                self.bearer(&format!(
                    "{}.{}.{sig}",
                    input.split('.').next().unwrap(),
                    b64(b"\xff\xfe")
                )),
                INVALID_TOKEN,
            ),
            bad(
                "JWT without kid",
                self.bearer(&self.es256(serde_json::json!({"alg": "ES256"}), claims.clone())),
                INVALID_TOKEN,
            ),
            bad(
                "JWT with an unknown kid",
                self.bearer(&self.es256(
                    serde_json::json!({"alg": "ES256", "kid": "ZZZZZZZZZZ"}),
                    claims.clone(),
                )),
                INVALID_TOKEN,
            ),
            bad(
                "JWT for another team",
                self.bearer(&self.es256(
                    header.clone(),
                    serde_json::json!({"iss": "ZZZZZZZZZZ", "iat": now}),
                )),
                INVALID_TOKEN,
            ),
            bad(
                "JWT without iat",
                self.bearer(&self.es256(header.clone(), serde_json::json!({"iss": self.team}))),
                INVALID_TOKEN,
            ),
            bad(
                "JWT with a string iat",
                self.bearer(&self.es256(
                    header.clone(),
                    serde_json::json!({"iss": self.team, "iat": "yesterday"}),
                )),
                INVALID_TOKEN,
            ),
            bad(
                "JWT issued an hour in the future",
                self.bearer(&self.es256(
                    header.clone(),
                    serde_json::json!({"iss": self.team, "iat": now + 3600}),
                )),
                INVALID_TOKEN,
            ),
            bad(
                "JWT with a 63-byte signature",
                self.bearer(&format!("{input}.{}", b64(&[7u8; 63]))),
                INVALID_TOKEN,
            ),
            bad(
                "JWT with an empty signature",
                self.bearer(&format!("{input}.")),
                INVALID_TOKEN,
            ),
            bad(
                "JWT of 6000 bytes",
                self.bearer(&format!(
                    "{}.{}.{}",
                    "a".repeat(2000),
                    "b".repeat(2000),
                    "c".repeat(2000)
                )),
                INVALID_TOKEN,
            ),
            bad(
                "JWT with invalid UTF-8",
                self.with_auth(Some(hv(b"bearer \xff\xfe.\x80\x81.\xc3"))),
                INVALID_TOKEN,
            ),
            bad(
                "no authorization and no certificate",
                self.with_auth(None),
                MISSING_TOKEN,
            ),
            bad(
                "empty authorization",
                self.with_auth(Some(hv(b""))),
                MISSING_TOKEN,
            ),
            bad(
                "authorization `bearer` alone",
                self.with_auth(Some(hv(b"bearer"))),
                MISSING_OR_INVALID,
            ),
            bad(
                "authorization with Basic",
                self.with_auth(Some(hv(b"Basic dXNlcjpwYXNz"))),
                MISSING_OR_INVALID,
            ),
            // Duplicate headers.
            bad(
                "apns-topic twice",
                self.with_headers(
                    vec![("apns-topic", hv(self.topic.as_bytes()))],
                    payload_of_size(100),
                ),
                &[(400, "DuplicateHeaders")],
            ),
            bad(
                "apns-id twice",
                self.with_headers(
                    vec![
                        ("apns-id", hv(b"0a9c8a4e-4a4c-4bd8-8f3c-2a8c0d3f5e11")),
                        ("apns-id", hv(b"0a9c8a4e-4a4c-4bd8-8f3c-2a8c0d3f5e11")),
                    ],
                    payload_of_size(100),
                ),
                &[(400, "DuplicateHeaders")],
            ),
            bad(
                "authorization twice",
                self.with_headers(
                    vec![(
                        "authorization",
                        hv(format!("bearer {}", self.jwt).as_bytes()),
                    )],
                    payload_of_size(100),
                ),
                &[(400, "DuplicateHeaders")],
            ),
            bad(
                "apns-priority twice, different values",
                self.with_headers(
                    vec![("apns-priority", hv(b"10")), ("apns-priority", hv(b"5"))],
                    payload_of_size(100),
                ),
                &[(400, "DuplicateHeaders")],
            ),
            // Invalid UTF-8 and garbage in header values.
            bad(
                "apns-topic invalid UTF-8",
                self.replacing("apns-topic", hv(b"com.\xff\xfe")),
                &[(400, "BadTopic"), (400, "TopicDisallowed")],
            ),
            bad(
                "apns-id invalid UTF-8",
                self.replacing("apns-id", hv(b"\xff\xfe\xfd")),
                &[(400, "BadMessageId")],
            ),
            bad(
                "apns-id not a UUID",
                self.replacing("apns-id", hv(b"not-a-uuid")),
                &[(400, "BadMessageId")],
            ),
            bad(
                "apns-priority invalid UTF-8",
                self.replacing("apns-priority", hv(b"\xff")),
                &[(400, "BadPriority")],
            ),
            bad(
                "apns-expiration invalid UTF-8",
                self.replacing("apns-expiration", hv(b"\xff\x80")),
                &[(400, "BadExpirationDate")],
            ),
            bad(
                "apns-expiration not a number",
                self.replacing("apns-expiration", hv(b"tomorrow")),
                &[(400, "BadExpirationDate")],
            ),
            bad(
                "apns-expiration overflowing",
                self.replacing("apns-expiration", hv(b"99999999999999999999999999")),
                &[(400, "BadExpirationDate")],
            ),
            bad(
                "apns-push-type invalid UTF-8",
                self.replacing("apns-push-type", hv(b"\xfe")),
                &[(400, "InvalidPushType")],
            ),
            bad(
                "apns-push-type unknown",
                self.replacing("apns-push-type", hv(b"telepathy")),
                &[(400, "InvalidPushType")],
            ),
            bad(
                "apns-collapse-id of 65 bytes",
                self.replacing("apns-collapse-id", hv(&[b'z'; 65])),
                &[(400, "BadCollapseId")],
            ),
            bad(
                "background push with priority 10",
                self.with_headers(
                    vec![
                        ("apns-push-type", hv(b"background")),
                        ("apns-priority", hv(b"10")),
                    ],
                    payload_of_size(100),
                ),
                &[(400, "BadPriority")],
            ),
            // Bodies.
            bad(
                "empty body",
                self.with_headers(vec![], Bytes::new()),
                &[(400, "PayloadEmpty")],
            ),
            bad(
                "alert body of 4097 bytes",
                self.with_headers(vec![], payload_of_size(4097)),
                &[(413, "PayloadTooLarge")],
            ),
            bad(
                "body of 64 KiB",
                self.with_headers(vec![], vec![b'x'; 65536]),
                &[(413, "PayloadTooLarge")],
            ),
            // Method and path.
            bad(
                "GET",
                H2Request {
                    method: Method::GET,
                    ..self.with_headers(vec![], Bytes::new())
                },
                &[(405, "MethodNotAllowed")],
            ),
            bad(
                "path without a device token",
                H2Request {
                    path: "/3/device/".into(),
                    ..self.with_headers(vec![], payload_of_size(100))
                },
                &[(400, "MissingDeviceToken")],
            ),
            bad(
                "unknown path",
                H2Request {
                    path: "/4/notification".into(),
                    ..self.with_headers(vec![], payload_of_size(100))
                },
                &[(404, "BadPath")],
            ),
            bad(
                "device token of 3000 hex digits",
                H2Request {
                    path: format!("/3/device/{}", "ab".repeat(1500)),
                    ..self.with_headers(vec![], payload_of_size(100))
                },
                &[(400, "BadDeviceToken")],
            ),
            // Over the 8000-byte header list limit (SETTINGS_MAX_HEADER_LIST_SIZE, as Apple's):
            // HTTP 431 without an APNs reason.
            bad(
                "path of 10000 bytes",
                H2Request {
                    path: format!("/3/device/{}", "ab".repeat(5000)),
                    ..self.with_headers(vec![], payload_of_size(100))
                },
                &[(431, "")],
            ),
            bad(
                "a 9000-byte header",
                self.with_headers(vec![("x-padding", hv(&[b'p'; 9000]))], payload_of_size(100)),
                &[(431, "")],
            ),
        ]
    }

    /// Bodies that are not valid JSON objects: Apple answers 400; the reason is the mock's choice
    /// among the 400 reasons, so only the status and the presence of a reason are checked.
    fn bad_bodies(&self) -> Vec<(&'static str, H2Request)> {
        vec![
            (
                "body of invalid UTF-8",
                self.with_headers(vec![], &b"\xff\xfe\xfd{\"aps\":{}}"[..]),
            ),
            (
                "body not JSON",
                self.with_headers(vec![], &b"hello, apple"[..]),
            ),
            (
                "body a JSON array",
                self.with_headers(vec![], &b"[1,2,3]"[..]),
            ),
            (
                "body truncated JSON",
                self.with_headers(vec![], &b"{\"aps\":{\"alert\":\"hi\""[..]),
            ),
        ]
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn assert_still_serves(server: &mut MockServer, rt: &tokio::runtime::Runtime, corpus: &Corpus) {
    let config = wire::tls_config(&server.manifest.ca_file, true);
    let outcome = rt.block_on(wire::h2_exchange(
        server.sandbox,
        HOST,
        config,
        vec![corpus.with_headers(vec![], payload_of_size(100))],
    ));
    assert!(
        matches!(&outcome[0], Outcome::Answer { status: 200, .. }),
        "a valid push after the corpus got {outcome:?}\nlog:\n{}",
        server.log()
    );
    server.assert_healthy();
}

#[test]
fn malformed_requests_get_apples_answers() {
    let mut server = MockServer::start(&[]);
    let corpus = Corpus::new(&server);
    let rt = runtime();
    let config = wire::tls_config(&server.manifest.ca_file, true);
    let mut wrong = Vec::new();
    for case in corpus.cases() {
        let outcome = rt.block_on(wire::h2_exchange(
            server.sandbox,
            HOST,
            config.clone(),
            vec![case.request],
        ));
        let ok = match outcome[0].status_reason() {
            Some((status, reason)) => case.expect.contains(&(status, reason.unwrap_or(""))),
            None => false,
        };
        if !ok {
            wrong.push(format!(
                "{}: got {:?}, want one of {:?}",
                case.name, outcome[0], case.expect
            ));
        }
    }
    for (name, request) in corpus.bad_bodies() {
        let outcome = rt.block_on(wire::h2_exchange(
            server.sandbox,
            HOST,
            config.clone(),
            vec![request],
        ));
        if !matches!(
            &outcome[0],
            Outcome::Answer {
                status: 400,
                reason: Some(_),
                ..
            }
        ) {
            wrong.push(format!(
                "{name}: got {:?}, want 400 with a reason",
                outcome[0]
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} malformed requests answered wrongly:\n  {}",
        wrong.len(),
        wrong.join("\n  ")
    );
    assert_still_serves(&mut server, &rt, &corpus);
}

/// A connection preface followed by an empty SETTINGS frame.
fn opening() -> Vec<u8> {
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(frame::SETTINGS, 0, 0, &[]));
    bytes
}

fn then(mut head: Vec<u8>, tail: &[u8]) -> Vec<u8> {
    head.extend_from_slice(tail);
    head
}

/// A client still writing an oversized frame after the server has answered it gets the GOAWAY
/// (FRAME_SIZE_ERROR), not a reset: the server reads and discards the rest before it closes
/// (lingering close). The pause after the frame header makes the order certain: the server has
/// sent its GOAWAY and closed its side before the rest of the frame arrives. Without the lingering
/// close those bytes meet a closed socket, the kernel resets the connection and the client's next
/// write fails with a broken pipe.
#[test]
fn a_client_still_writing_an_oversized_frame_gets_its_goaway() {
    use tokio::io::AsyncWriteExt as _;
    let mut server = MockServer::start(&[]);
    let rt = runtime();
    let config = wire::tls_config(&server.manifest.ca_file, true);
    const LEN: usize = 128 * 1024;
    let head = frame(frame::DATA, 0, 1, &vec![0u8; LEN]);
    let end = rt.block_on(async {
        let mut tls = wire::tls_connect(server.sandbox, HOST, config)
            .await
            .expect("TLS");
        tls.write_all(&then(opening(), &head[..9]))
            .await
            .expect("header");
        tls.flush().await.expect("flush");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        for chunk in head[9..].chunks(16 * 1024) {
            if let Err(e) = tls.write_all(chunk).await {
                return RawEnd::Closed(format!("write: {e}"));
            }
            let _ = tls.flush().await;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        tokio::time::timeout(wire::EXCHANGE, wire::read_until_end(&mut tls))
            .await
            .expect("the server answered or closed")
    });
    assert!(matches!(end, RawEnd::GoAway(0x6, _)), "{end:?}");
    server.assert_healthy();
}

#[test]
fn broken_framing_ends_the_connection_cleanly() {
    let mut server = MockServer::start(&[]);
    let corpus = Corpus::new(&server);
    let rt = runtime();
    let config = wire::tls_config(&server.manifest.ca_file, true);
    let no_alpn = wire::tls_config(&server.manifest.ca_file, false);
    let path = format!("/3/device/{}", corpus.token);
    let auth = format!("bearer {}", corpus.jwt);
    let request_fields = |extra: &[(&[u8], &[u8])]| {
        let mut fields: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":authority", HOST.as_bytes()),
            (b":path", path.as_bytes()),
            (b"authorization", auth.as_bytes()),
            (b"apns-topic", corpus.topic.as_bytes()),
        ];
        fields.extend_from_slice(extra);
        hpack_literals(&fields)
    };
    let huge = vec![b'h'; 100_000];
    let huge_block = request_fields(&[(b"x-padding", &huge)]);
    let mut huge_frames = frame(frame::HEADERS, 0, 1, &huge_block[..16_000]);
    for (i, chunk) in huge_block[16_000..].chunks(16_000).enumerate() {
        let last = 16_000 + (i + 1) * 16_000 >= huge_block.len();
        huge_frames.extend(frame(
            frame::CONTINUATION,
            if last { frame::END_HEADERS } else { 0 },
            1,
            chunk,
        ));
    }
    let bad_path = format!("/3/device/{}\u{0}", corpus.token);
    let mut dup_path_fields = request_fields(&[]);
    dup_path_fields.extend(hpack_literals(&[(b":path", b"/3/device/other")]));

    // (name, bytes after the TLS handshake, half-close after writing, what must come back)
    type Check = fn(&RawEnd) -> bool;
    let closed_or_goaway: Check = |e| matches!(e, RawEnd::Closed(_) | RawEnd::GoAway(..));
    // Only "it did not hang, and the server stays healthy" (checked after the loop): a 431
    // answer, a reset, a GOAWAY and a close are all fair answers to a 100 kB header list.
    let any_clean: Check = |_| true;
    // RFC 9113 §4.2: a frame over SETTINGS_MAX_FRAME_SIZE is a connection error FRAME_SIZE_ERROR.
    let frame_size_error: Check = |e| matches!(e, RawEnd::GoAway(0x6, _));
    // RFC 9113 §8.1.1: a malformed request is a PROTOCOL_ERROR, on the stream or the connection.
    let malformed_request: Check = |e| matches!(e, RawEnd::Reset(0x1) | RawEnd::GoAway(0x1, _));
    let cases: Vec<(&str, Vec<u8>, bool, Check)> = vec![
        (
            "HTTP/1.1 request instead of the preface",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            false,
            closed_or_goaway,
        ),
        (
            "garbage before the preface",
            then(b"\x00\x01garbage".to_vec(), &opening()),
            false,
            closed_or_goaway,
        ),
        (
            "half a preface then EOF",
            PREFACE[..10].to_vec(),
            true,
            closed_or_goaway,
        ),
        (
            "preface then 3 bytes of a frame header then EOF",
            then(opening(), &[0, 0, 9]),
            true,
            closed_or_goaway,
        ),
        (
            "HEADERS frame announcing 200 bytes, 20 sent, then EOF",
            then(
                opening(),
                &frame(frame::HEADERS, frame::END_HEADERS, 1, &[0u8; 200])[..29],
            ),
            true,
            closed_or_goaway,
        ),
        (
            "HEADERS without END_HEADERS then EOF",
            then(
                opening(),
                &frame(frame::HEADERS, 0, 1, &request_fields(&[])),
            ),
            true,
            closed_or_goaway,
        ),
        (
            "frame longer than MAX_FRAME_SIZE",
            then(opening(), &frame(frame::DATA, 0, 1, &vec![0u8; 70_000])),
            false,
            frame_size_error,
        ),
        (
            "DATA on stream 0",
            then(opening(), &frame(frame::DATA, 0, 0, b"hello")),
            false,
            closed_or_goaway,
        ),
        (
            "SETTINGS of 7 bytes",
            then(opening(), &frame(frame::SETTINGS, 0, 0, &[0u8; 7])),
            false,
            closed_or_goaway,
        ),
        (
            "HEADERS with an undecodable HPACK block",
            then(
                opening(),
                &frame(
                    frame::HEADERS,
                    frame::END_HEADERS | frame::END_STREAM,
                    1,
                    &[0xff; 40],
                ),
            ),
            false,
            closed_or_goaway,
        ),
        (
            "RST_STREAM of 3 bytes",
            then(opening(), &frame(frame::RST_STREAM, 0, 1, &[0, 0, 1])),
            false,
            closed_or_goaway,
        ),
        (
            "header list of 100 kB in CONTINUATION frames",
            then(opening(), &huge_frames),
            false,
            any_clean,
        ),
        (
            ":path twice",
            then(
                opening(),
                &frame(
                    frame::HEADERS,
                    frame::END_HEADERS | frame::END_STREAM,
                    1,
                    &dup_path_fields,
                ),
            ),
            false,
            malformed_request,
        ),
        (
            "NUL byte in :path",
            then(
                opening(),
                &frame(
                    frame::HEADERS,
                    frame::END_HEADERS | frame::END_STREAM,
                    1,
                    &hpack_literals(&[
                        (b":method", b"POST"),
                        (b":scheme", b"https"),
                        (b":path", bad_path.as_bytes()),
                        (b"authorization", auth.as_bytes()),
                    ]),
                ),
            ),
            false,
            malformed_request,
        ),
        (
            "invalid UTF-8 in :path",
            then(
                opening(),
                &frame(
                    frame::HEADERS,
                    frame::END_HEADERS | frame::END_STREAM,
                    1,
                    &hpack_literals(&[
                        (b":method", b"POST"),
                        (b":scheme", b"https"),
                        (b":path", b"/3/device/\xff\xfe\xfd"),
                        (b"authorization", auth.as_bytes()),
                    ]),
                ),
            ),
            false,
            malformed_request,
        ),
    ];
    let mut wrong = Vec::new();
    for (name, bytes, half_close, check) in &cases {
        for (alpn_name, tls) in [("ALPN h2", &config), ("no ALPN", &no_alpn)] {
            let end = rt.block_on(wire::raw_exchange(
                server.sandbox,
                HOST,
                (*tls).clone(),
                bytes,
                *half_close,
            ));
            eprintln!("{name} ({alpn_name}): {end:?}");
            if !check(&end) {
                wrong.push(format!("{name} ({alpn_name}): ended with {end:?}"));
            }
        }
    }
    // Not even TLS: plain garbage, a truncated ClientHello.
    for (name, bytes) in [
        (
            "plain-text garbage on the TLS port",
            b"hello there\r\n\r\n".to_vec(),
        ),
        (
            "truncated TLS ClientHello",
            vec![0x16, 0x03, 0x01, 0x00, 0xff, 0x01, 0x00, 0x00],
        ),
        ("the HTTP/2 preface without TLS", opening()),
    ] {
        let end = rt.block_on(wire::tcp_exchange(server.sandbox, &bytes));
        assert!(matches!(end, RawEnd::Closed(_)), "{name}: {end:?}");
    }
    assert!(
        wrong.is_empty(),
        "connections that did not end cleanly:\n  {}",
        wrong.join("\n  ")
    );
    server.assert_healthy();
    assert_still_serves(&mut server, &rt, &corpus);
}

#[test]
fn control_api_rejects_malformed_json_without_dying() {
    let mut server = MockServer::start(&[]);
    let token = fresh_device_token();
    let garbage: &[(&str, &str, Option<serde_json::Value>)] = &[
        ("POST", "/devices", Some(serde_json::json!("not an object"))),
        ("POST", "/devices", Some(serde_json::json!({"token": 5}))),
        (
            "POST",
            "/devices",
            Some(serde_json::json!({"token": token, "topics": "x", "environment": "mars"})),
        ),
        (
            "PUT",
            "/devices/nope/state",
            Some(serde_json::json!({"state": "asleep"})),
        ),
        (
            "POST",
            "/faults",
            Some(serde_json::json!({"match": {"token": 1}, "action": {"explode": true}})),
        ),
        ("GET", "/no-such-endpoint", None),
    ];
    for (method, path, body) in garbage {
        let (status, text) = server.control(method, path, body.as_ref());
        assert!(
            (400..500).contains(&status),
            "{method} {path} {body:?} answered {status}: {text}"
        );
    }
    assert_eq!(server.control("GET", "/health", None).0, 200);
    server.assert_healthy();
}
