//! The APNs client against an HTTP/2 server scripted in the test (h2 over tokio-rustls), for the
//! answers nghttpd cannot give: 429/5xx retries and their bound, 410 with its timestamp,
//! `ExpiredProviderToken`, GOAWAY, and a server that never answers.

use bytes::Bytes;
use phone::PushPayload;
use ref_gateway::apns::{
    ApnsAuth, ApnsClient, ApnsClientConfig, ApnsError, Push, RetryPolicy, TokenSigner,
};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::pki::ApnsPki;
use testkit::{within, DEADLINE};
use timeline::{Protocol, Timeline};
use tokio::net::TcpListener;

/// What the scripted server answers to one request.
#[derive(Clone)]
enum Answer {
    Status(u16, &'static str),
    Never,
}

/// What the server saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    apns_id: Option<String>,
    authorization: Option<String>,
    body: Bytes,
}

struct Script {
    answers: Mutex<VecDeque<Answer>>,
    seen: Mutex<Vec<Seen>>,
    connections: AtomicU32,
    goaway_after_first_answer: bool,
}

async fn serve(pki: &ApnsPki, answers: Vec<Answer>, goaway: bool) -> (SocketAddr, Arc<Script>) {
    let certs = rustls_pemfile::certs(&mut pki.server_cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut pki.server_key_pem.as_bytes())
        .unwrap()
        .unwrap();
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let script = Arc::new(Script {
        answers: Mutex::new(answers.into()),
        seen: Mutex::new(Vec::new()),
        connections: AtomicU32::new(0),
        goaway_after_first_answer: goaway,
    });
    let s = script.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let script = s.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut conn) = h2::server::handshake(tls).await else {
                    return;
                };
                script.connections.fetch_add(1, Ordering::SeqCst);
                let mut answered = 0;
                while let Some(Ok((request, respond))) = conn.accept().await {
                    tokio::spawn(answer(script.clone(), request, respond));
                    answered += 1;
                    if script.goaway_after_first_answer && answered == 1 {
                        conn.graceful_shutdown();
                    }
                }
            });
        }
    });
    (addr, script)
}

async fn answer(
    script: Arc<Script>,
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) {
    let (parts, mut body) = request.into_parts();
    let mut bytes = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    script.seen.lock().unwrap().push(Seen {
        apns_id: header("apns-id"),
        authorization: header("authorization"),
        body: bytes.into(),
    });
    let next = script
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Answer::Status(200, ""));
    match next {
        Answer::Never => std::future::pending::<()>().await,
        Answer::Status(status, body) => {
            let mut response = http::Response::builder().status(status);
            if let Some(id) = header("apns-id") {
                response = response.header("apns-id", id);
            }
            let end = body.is_empty();
            let Ok(mut stream) = respond.send_response(response.body(()).unwrap(), end) else {
                return;
            };
            if !end {
                let _ = stream.send_data(Bytes::from_static(body.as_bytes()), true);
            }
        }
    }
}

fn client(pki: &ApnsPki, addr: SocketAddr, timeline: &Timeline, retries: u32) -> ApnsClient {
    let signer =
        TokenSigner::from_p8_pem(pki.p8_pem.as_bytes(), "ABC123DEFG", "TEAM012345").unwrap();
    let mut config = ApnsClientConfig::new(
        addr,
        pki.ca_pem.as_bytes(),
        ApnsAuth::Token(Arc::new(signer)),
    )
    .unwrap()
    .recorder(timeline.recorder("gateway", Protocol::Apns))
    .retry(RetryPolicy {
        max_retries: retries,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
    });
    config.request_timeout = Duration::from_millis(300);
    ApnsClient::new(config).unwrap()
}

fn push() -> Push {
    let payload = PushPayload::call("call-1", "sip:bob@example.com", 1).to_json();
    Push::voip_call("00ab", "com.example.app", Bytes::from(payload))
}

#[tokio::test]
async fn retries_429_and_5xx_with_the_same_apns_id_then_returns_the_answer() {
    let pki = ApnsPki::generate();
    let (addr, script) = serve(
        &pki,
        vec![
            Answer::Status(503, r#"{"reason":"ServiceUnavailable"}"#),
            Answer::Status(429, r#"{"reason":"TooManyRequests"}"#),
            Answer::Status(200, ""),
        ],
        false,
    )
    .await;
    let timeline = Timeline::new();
    let client = client(&pki, addr, &timeline, 2);
    let push = push();
    let answer = within("push with retries", client.send(&push))
        .await
        .unwrap();
    assert_eq!(
        (answer.status, answer.attempts),
        (200, 3),
        "{}",
        timeline.ladder()
    );
    let seen = script.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let id = push.apns_id.unwrap().hyphenated().to_string();
    assert!(seen
        .iter()
        .all(|s| s.apns_id.as_deref() == Some(id.as_str())));
    assert!(seen.iter().all(|s| s.body == push.payload));
    assert_eq!(client.connections_opened(), 1);
    let ladder = timeline.ladder();
    assert!(ladder.contains("503 ServiceUnavailable") && ladder.contains("429 TooManyRequests"));
}

#[tokio::test]
async fn retries_are_bounded() {
    let pki = ApnsPki::generate();
    let (addr, script) = serve(&pki, vec![Answer::Status(500, ""); 5], false).await;
    let client = client(&pki, addr, &Timeline::new(), 1);
    let answer = within("push to a failing server", client.send(&push()))
        .await
        .unwrap();
    assert_eq!((answer.status, answer.attempts), (500, 2));
    assert_eq!(script.seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_410_is_returned_at_once_with_its_timestamp() {
    let pki = ApnsPki::generate();
    let (addr, script) = serve(
        &pki,
        vec![Answer::Status(
            410,
            r#"{"reason":"Unregistered","timestamp":1700000000123}"#,
        )],
        false,
    )
    .await;
    let timeline = Timeline::new();
    let client = client(&pki, addr, &timeline, 3);
    let answer = within("push to a dead token", client.send(&push()))
        .await
        .unwrap();
    assert!(answer.is_unregistered());
    assert_eq!(answer.reason.as_deref(), Some("Unregistered"));
    assert_eq!(answer.timestamp_ms, Some(1_700_000_000_123));
    assert_eq!(answer.attempts, 1);
    assert_eq!(script.seen.lock().unwrap().len(), 1);
    assert!(timeline
        .ladder()
        .contains("410 Unregistered timestamp=1700000000123"));
}

#[tokio::test]
async fn an_expired_provider_token_is_renewed_and_the_push_resent() {
    let pki = ApnsPki::generate();
    let (addr, script) = serve(
        &pki,
        vec![
            Answer::Status(403, r#"{"reason":"ExpiredProviderToken"}"#),
            Answer::Status(200, ""),
        ],
        false,
    )
    .await;
    let client = client(&pki, addr, &Timeline::new(), 1);
    let answer = within("push with a stale token", client.send(&push()))
        .await
        .unwrap();
    assert_eq!((answer.status, answer.attempts), (200, 2));
    let seen = script.seen.lock().unwrap().clone();
    let first = seen[0].authorization.clone().unwrap();
    let second = seen[1].authorization.clone().unwrap();
    assert!(first.starts_with("bearer ") && second.starts_with("bearer "));
    assert_ne!(first, second, "a new JWT after ExpiredProviderToken");
}

#[tokio::test]
async fn after_goaway_the_next_push_opens_a_new_connection() {
    let pki = ApnsPki::generate();
    let (addr, script) = serve(&pki, vec![], true).await;
    let timeline = Timeline::new();
    let client = client(&pki, addr, &timeline, 0);
    assert_eq!(
        within("first push", client.send(&push()))
            .await
            .unwrap()
            .status,
        200
    );
    // Wait for the client to see the server close the connection.
    let start = tokio::time::Instant::now();
    while !timeline
        .events()
        .iter()
        .any(|e| e.summary.starts_with("APNs: connection #1 closed"))
    {
        assert!(
            start.elapsed() < DEADLINE,
            "the client never saw the GOAWAY:\n{}",
            timeline.ladder()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        within("second push", client.send(&push()))
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(client.connections_opened(), 2, "{}", timeline.ladder());
    assert_eq!(script.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_server_that_never_answers_gives_a_timeout_error() {
    let pki = ApnsPki::generate();
    let (addr, _script) = serve(&pki, vec![Answer::Never], false).await;
    let client = client(&pki, addr, &Timeline::new(), 0);
    let err = within("push to a silent server", client.send(&push()))
        .await
        .unwrap_err();
    assert!(matches!(err, ApnsError::Timeout(_)), "{err:?}");
}
