//! The APNs client against nghttpd (nghttp2's HTTP/2 server, written by nobody here): TLS with
//! ALPN h2, the APNs headers as nghttpd logs them, token and certificate auth, one reused
//! connection, reconnection after the server goes away, and TLS failures as error values.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use phone::PushPayload;
use ref_gateway::apns::{ApnsAuth, ApnsClient, ApnsClientConfig, ApnsError, Push, TokenSigner};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::pki::ApnsPki;
use testkit::{free_port, within, DEADLINE};
use timeline::{Direction, Protocol, Timeline};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const TOKEN: &str = "00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0";
const BUNDLE: &str = "com.example.app";

/// One nghttpd process on loopback, its document root and its verbose log.
struct Nghttpd {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Nghttpd {
    /// Starts nghttpd with the PKI's server certificate; `extra` are more flags (`--echo-upload`,
    /// `--verify-client`). Fails the test with a clear message if nghttpd is not installed.
    async fn start(pki: &ApnsPki, extra: &[&str], port: Option<u16>) -> Nghttpd {
        let dir =
            std::env::temp_dir().join(format!("ref-gateway-nghttpd-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("htdocs")).unwrap();
        let dir = TempDir(dir);
        let key = dir.0.join("server.key");
        let cert = dir.0.join("server.pem");
        std::fs::write(&key, &pki.server_key_pem).unwrap();
        std::fs::write(&cert, &pki.server_cert_pem).unwrap();
        for _ in 0..5 {
            let port = port.unwrap_or_else(free_port);
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let mut child = Command::new("nghttpd")
                .arg("-v")
                .arg("-d")
                .arg(dir.0.join("htdocs"))
                .args(extra)
                .args(["-a", "127.0.0.1"])
                .arg(port.to_string())
                .arg(&key)
                .arg(&cert)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run nghttpd ({e}): install it with scripts/install-deps.sh (Debian nghttp2-server)")
                });
            let log = Arc::new(Mutex::new(String::new()));
            let sink = log.clone();
            let stdout = child.stdout.take().unwrap();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut log = sink.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
            // nghttpd logs "IPv4: listen 127.0.0.1:PORT" once it has bound the port; a probe
            // connection could reach another test's server, and would count as a connection.
            let bound = format!("listen 127.0.0.1:{port}");
            let start = tokio::time::Instant::now();
            while start.elapsed() < DEADLINE {
                if log.lock().unwrap().contains(&bound) {
                    return Nghttpd {
                        child,
                        addr,
                        log,
                        _dir: dir,
                    };
                }
                if !matches!(child.try_wait(), Ok(None)) {
                    break; // the port was taken: try another one
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = child.kill().await;
        }
        panic!("nghttpd did not start listening on loopback");
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until nghttpd's log contains every needle, or fails with the log.
    async fn wait_log(&self, needles: &[String]) -> String {
        let start = tokio::time::Instant::now();
        loop {
            let log = self.log();
            if needles.iter().all(|n| log.contains(n.as_str())) {
                return log;
            }
            if start.elapsed() > DEADLINE {
                let missing: Vec<&String> = needles
                    .iter()
                    .filter(|n| !log.contains(n.as_str()))
                    .collect();
                panic!("nghttpd never logged {missing:?}; its log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn token_auth(pki: &ApnsPki) -> (ApnsAuth, Arc<TokenSigner>) {
    let signer = Arc::new(
        TokenSigner::from_p8_pem(pki.p8_pem.as_bytes(), "ABC123DEFG", "TEAM012345").unwrap(),
    );
    (ApnsAuth::Token(signer.clone()), signer)
}

fn call_push(call_id: &str) -> Push {
    let payload = PushPayload::call(call_id, "sip:bob@example.com", 1_700_000_000_000).to_json();
    Push::voip_call(TOKEN, BUNDLE, Bytes::from(payload))
}

#[tokio::test]
async fn token_auth_pushes_reach_nghttpd_with_every_apns_header_on_one_connection() {
    let pki = ApnsPki::generate();
    let server = Nghttpd::start(&pki, &["--echo-upload"], None).await;
    let timeline = Timeline::new();
    let (auth, signer) = token_auth(&pki);
    let config = ApnsClientConfig::new(server.addr, pki.ca_pem.as_bytes(), auth)
        .unwrap()
        .recorder(timeline.recorder("gateway", Protocol::Apns));
    let client = ApnsClient::new(config).unwrap();

    let mut pushes = vec![call_push("call-1"), call_push("call-2")];
    let mut alert = Push::alert(
        TOKEN,
        BUNDLE,
        1_700_000_600,
        Bytes::from(PushPayload::message("Bob: hi", 1).to_json()),
    );
    alert.collapse_id = Some("chat-bob".into());
    pushes.push(alert);
    for push in &pushes {
        let answer = within("push to nghttpd", client.send(push)).await.unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.body, push.payload, "nghttpd echoes the payload");
        assert_eq!(answer.attempts, 1);
    }
    assert_eq!(client.connections_opened(), 1, "one connection reused");

    let id = |p: &Push| p.apns_id.unwrap().hyphenated().to_string();
    let needles = vec![
        format!(":path: /3/device/{TOKEN}"),
        ":authority: api.sandbox.push.apple.com".to_owned(),
        ":method: POST".to_owned(),
        "apns-push-type: voip".to_owned(),
        format!("apns-topic: {BUNDLE}.voip"),
        "apns-priority: 10".to_owned(),
        "apns-expiration: 0".to_owned(),
        format!("apns-id: {}", id(&pushes[0])),
        format!("apns-id: {}", id(&pushes[1])),
        "apns-push-type: alert".to_owned(),
        format!("apns-topic: {BUNDLE}\n"),
        "apns-expiration: 1700000600".to_owned(),
        "apns-collapse-id: chat-bob".to_owned(),
        "authorization: bearer ".to_owned(),
    ];
    let log = server.wait_log(&needles).await;
    // Every stream came on one connection.
    assert_eq!(
        log.matches("The negotiated protocol: h2").count(),
        1,
        "nghttpd saw more than one TLS connection:\n{log}"
    );
    // The JWT nghttpd received verifies with the signer's public key.
    let jwt = log
        .lines()
        .find_map(|l| l.split("authorization: bearer ").nth(1))
        .unwrap()
        .trim()
        .to_owned();
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, signer.public_key())
        .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap())
        .expect("the JWT nghttpd received verifies");

    let events = timeline.events();
    let sent = events
        .iter()
        .filter(|e| e.direction == Direction::Sent && e.party == "gateway")
        .count();
    let received = events
        .iter()
        .filter(|e| e.direction == Direction::Received && e.summary.starts_with("200"))
        .count();
    assert_eq!((sent, received), (3, 3), "{}", timeline.ladder());
    server.stop().await;
}

#[tokio::test]
async fn certificate_auth_presents_the_client_certificate() {
    let pki = ApnsPki::generate();
    let server = Nghttpd::start(&pki, &["--echo-upload", "--verify-client"], None).await;
    let auth = ApnsAuth::certificate_from_pem(
        pki.client_cert_pem.as_bytes(),
        pki.client_key_pem.as_bytes(),
    )
    .unwrap();
    let client =
        ApnsClient::new(ApnsClientConfig::new(server.addr, pki.ca_pem.as_bytes(), auth).unwrap())
            .unwrap();
    let answer = within(
        "push with a client certificate",
        client.send(&call_push("c1")),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 200);
    let log = server.wait_log(&["apns-push-type: voip".to_owned()]).await;
    assert!(
        !log.contains("authorization:"),
        "no JWT with certificate auth"
    );

    // Without a client certificate nghttpd ends the handshake: an error value, not a hang.
    let (auth, _) = token_auth(&pki);
    let mut config = ApnsClientConfig::new(server.addr, pki.ca_pem.as_bytes(), auth).unwrap();
    config.retry.max_retries = 0;
    let no_cert = ApnsClient::new(config).unwrap();
    let err = within(
        "push without a client certificate",
        no_cert.send(&call_push("c2")),
    )
    .await
    .expect_err("nghttpd --verify-client refuses a client without certificate");
    assert!(
        matches!(err, ApnsError::Tls { .. } | ApnsError::Http2(_)),
        "{err:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_non_apns_answer_is_a_response_and_4xx_is_not_retried() {
    let pki = ApnsPki::generate();
    // Without --echo-upload nghttpd answers 404 with an HTML body for a path it has no file for.
    let server = Nghttpd::start(&pki, &[], None).await;
    let (auth, _) = token_auth(&pki);
    let client =
        ApnsClient::new(ApnsClientConfig::new(server.addr, pki.ca_pem.as_bytes(), auth).unwrap())
            .unwrap();
    let answer = within("push to a missing path", client.send(&call_push("c1")))
        .await
        .unwrap();
    assert_eq!(answer.status, 404);
    assert_eq!((answer.reason, answer.timestamp_ms), (None, None));
    assert_eq!(answer.attempts, 1);
    server.stop().await;
}

#[tokio::test]
async fn the_client_reconnects_after_the_server_went_away() {
    let pki = ApnsPki::generate();
    let first = Nghttpd::start(&pki, &["--echo-upload"], None).await;
    let port = first.addr.port();
    let (auth, _) = token_auth(&pki);
    let timeline = Timeline::new();
    let client = ApnsClient::new(
        ApnsClientConfig::new(first.addr, pki.ca_pem.as_bytes(), auth)
            .unwrap()
            .recorder(timeline.recorder("gateway", Protocol::Apns)),
    )
    .unwrap();
    assert_eq!(
        within("first push", client.send(&call_push("c1")))
            .await
            .unwrap()
            .status,
        200
    );
    first.stop().await;
    let second = Nghttpd::start(&pki, &["--echo-upload"], Some(port)).await;
    let answer = within("push after the restart", client.send(&call_push("c2")))
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", timeline.ladder());
    assert_eq!(client.connections_opened(), 2, "{}", timeline.ladder());
    second.stop().await;
}

#[tokio::test]
async fn a_wrong_ca_or_server_name_is_a_tls_error_without_retries() {
    let pki = ApnsPki::generate();
    let server = Nghttpd::start(&pki, &["--echo-upload"], None).await;
    let other = ApnsPki::generate();
    let (auth, _) = token_auth(&pki);
    let wrong_ca = ApnsClient::new(
        ApnsClientConfig::new(server.addr, other.ca_pem.as_bytes(), auth.clone()).unwrap(),
    )
    .unwrap();
    let err = within("push with a wrong CA", wrong_ca.send(&call_push("c1")))
        .await
        .unwrap_err();
    assert!(matches!(err, ApnsError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert_eq!(wrong_ca.connections_opened(), 0);

    let wrong_name = ApnsClient::new(
        ApnsClientConfig::new(server.addr, pki.ca_pem.as_bytes(), auth)
            .unwrap()
            .server_name("api.example.org"),
    )
    .unwrap();
    let err = within("push with a wrong SNI", wrong_name.send(&call_push("c1")))
        .await
        .unwrap_err();
    assert!(matches!(err, ApnsError::Tls { .. }), "{err:?}");
    server.stop().await;
}
