//! In-process end-to-end tests: an `h2` client over tokio-rustls, trusting the generated CA,
//! against a running [`crate::MockApns`].

use crate::{
    Config, DeviceSpec, DeviceState, Environment, Fault, FaultAction, MockApns, SignatureEncoding,
};
use bytes::Bytes;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const D: Duration = Duration::from_secs(10);

fn now() -> i64 {
    (crate::server::now_ms() / 1000) as i64
}

async fn tls(
    apns: &MockApns,
    env: Environment,
    cert: Option<&str>,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let config = apns.credentials().client_tls_config(cert).unwrap();
    let tcp = TcpStream::connect(apns.addr(env)).await.unwrap();
    let name = match env {
        Environment::Sandbox => "api.sandbox.push.apple.com",
        Environment::Production => "api.push.apple.com",
    };
    let server_name = rustls::pki_types::ServerName::try_from(name).unwrap();
    tokio::time::timeout(
        D,
        TlsConnector::from(Arc::new(config)).connect(server_name, tcp),
    )
    .await
    .unwrap()
    .unwrap()
}

struct Client {
    send: h2::client::SendRequest<Bytes>,
    conn: tokio::task::JoinHandle<()>,
    max_streams: tokio::sync::watch::Receiver<usize>,
}

async fn client(apns: &MockApns, env: Environment, cert: Option<&str>) -> Client {
    let io = tls(apns, env, cert).await;
    let (send, mut conn) = tokio::time::timeout(D, h2::client::handshake(io))
        .await
        .unwrap()
        .unwrap();
    let (tx, rx) = tokio::sync::watch::channel(0usize);
    let conn = tokio::spawn(async move {
        let _ = futures::future::poll_fn(|cx| {
            let r = conn.poll_unpin_closed(cx);
            let _ = tx.send(conn.max_concurrent_send_streams());
            r
        })
        .await;
    });
    Client {
        send,
        conn,
        max_streams: rx,
    }
}

trait PollClosed {
    fn poll_unpin_closed(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()>;
}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> PollClosed
    for h2::client::Connection<T, Bytes>
{
    fn poll_unpin_closed(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::pin::Pin::new(self).poll(cx).map(|_| ())
    }
}

use std::future::Future;

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: serde_json::Value,
}

async fn post(
    c: &mut Client,
    token: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Result<Answer, h2::Error> {
    let mut req = http::Request::post(format!("https://api.push.apple.com/3/device/{token}"));
    for (n, v) in headers {
        req = req.header(*n, v.as_str());
    }
    let send = tokio::time::timeout(D, c.send.clone().ready())
        .await
        .unwrap()?;
    c.send = send;
    let (resp, mut stream) = c.send.send_request(req.body(()).unwrap(), false)?;
    stream.send_data(Bytes::from(body.to_owned()), true)?;
    let resp = tokio::time::timeout(D, resp).await.unwrap()?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body = resp.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = tokio::time::timeout(D, body.data()).await.unwrap() {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    })
}

fn voip_headers(apns: &MockApns, jwt: Option<String>) -> Vec<(&'static str, String)> {
    let mut h = vec![
        (
            "apns-topic",
            format!("{}.voip", apns.credentials().bundle_id()),
        ),
        ("apns-push-type", "voip".to_owned()),
        ("apns-expiration", "0".to_owned()),
    ];
    if let Some(j) = jwt {
        h.push(("authorization", format!("bearer {j}")));
    }
    h
}

async fn wait_streams(c: &mut Client, want: usize) {
    tokio::time::timeout(D, c.max_streams.wait_for(|n| *n == want))
        .await
        .unwrap_or_else(|_| panic!("MAX_CONCURRENT_STREAMS never became {want}"))
        .unwrap();
}

#[tokio::test]
async fn token_auth_end_to_end() {
    let apns = MockApns::start(Config::default()).await.unwrap();
    let bundle = apns.credentials().bundle_id().to_owned();
    let token = "ab".repeat(32);
    let timeline = timeline::Timeline::new();
    apns.register_device(
        DeviceSpec::new(&token, vec![format!("{bundle}.voip")], Environment::Sandbox)
            .name("alice-iphone")
            .recorder(timeline.recorder("mock-apns", timeline::Protocol::Apns)),
    );
    let mut deliveries = apns.deliveries(&token);
    let mut c = client(&apns, Environment::Sandbox, None).await;
    // APNs allows one stream until a valid token arrives.
    wait_streams(&mut c, 1).await;

    let jwt = apns
        .credentials()
        .provider_token(now(), SignatureEncoding::Raw)
        .unwrap();
    let a = post(
        &mut c,
        &token,
        &voip_headers(&apns, Some(jwt.clone())),
        r#"{"aps":{}}"#,
    )
    .await
    .unwrap();
    assert_eq!(a.status, 200);
    assert!(crate::validate::is_canonical_uuid(
        a.headers["apns-id"].as_bytes()
    ));
    assert!(
        a.headers.contains_key("apns-unique-id"),
        "sandbox answers carry apns-unique-id"
    );
    wait_streams(&mut c, 1000).await;
    let d = tokio::time::timeout(D, deliveries.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.topic, format!("{bundle}.voip"));
    let rec = apns.next_push_for(&token, D).await.unwrap();
    assert_eq!(rec.status, 200);
    assert_eq!(rec.apns_id, a.headers["apns-id"].to_str().unwrap());
    assert!(
        timeline.ladder().contains("alice-iphone"),
        "{}",
        timeline.ladder()
    );
    // Causal order: the request, then the delivery to the device, then the answer.
    let order: Vec<String> = timeline
        .events()
        .iter()
        .map(|e| e.summary.split(' ').next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(order, ["POST", "push", "200"], "{}", timeline.ladder());

    // Rejections carry Apple's JSON.
    let a = post(&mut c, "zz", &voip_headers(&apns, Some(jwt.clone())), "{}")
        .await
        .unwrap();
    assert_eq!(
        (a.status, a.body["reason"].as_str()),
        (400, Some("BadDeviceToken"))
    );
    let mut h = voip_headers(&apns, Some(jwt.clone()));
    h.push(("apns-priority", "7".into()));
    let a = post(&mut c, &token, &h, "{}").await.unwrap();
    assert_eq!(
        (a.status, a.body["reason"].as_str()),
        (400, Some("BadPriority"))
    );

    // A second token value on the same connection is too many updates.
    let other = apns
        .credentials()
        .provider_token(now(), SignatureEncoding::Der)
        .unwrap();
    let a = post(&mut c, &token, &voip_headers(&apns, Some(other)), "{}")
        .await
        .unwrap();
    assert_eq!(
        (a.status, a.body["reason"].as_str()),
        (429, Some("TooManyProviderTokenUpdates"))
    );

    // 410 with a timestamp in ms.
    apns.set_state_at(&token, DeviceState::Unregistered, 1508249865488)
        .unwrap();
    let a = post(
        &mut c,
        &token,
        &voip_headers(&apns, Some(jwt.clone())),
        "{}",
    )
    .await
    .unwrap();
    assert_eq!(
        (a.status, a.body["reason"].as_str()),
        (410, Some("Unregistered"))
    );
    assert_eq!(a.body["timestamp"], 1508249865488u64);

    // Injected rejection, then a GOAWAY that refuses the stream and ends the connection.
    apns.set_state(&token, DeviceState::Online).unwrap();
    apns.inject(
        Fault::next(FaultAction::Reject {
            status: 503,
            reason: "Shutdown".into(),
        })
        .for_token(&token),
    );
    let a = post(
        &mut c,
        &token,
        &voip_headers(&apns, Some(jwt.clone())),
        "{}",
    )
    .await
    .unwrap();
    assert_eq!(
        (a.status, a.body["reason"].as_str()),
        (503, Some("Shutdown"))
    );
    apns.inject(Fault::next(FaultAction::Goaway {
        reason: "Shutdown".into(),
    }));
    let err = post(
        &mut c,
        &token,
        &voip_headers(&apns, Some(jwt.clone())),
        "{}",
    )
    .await
    .err()
    .expect("the stream is refused");
    assert_eq!(err.reason(), Some(h2::Reason::REFUSED_STREAM), "{err}");
    tokio::time::timeout(D, c.conn)
        .await
        .expect("connection closes after GOAWAY")
        .unwrap();

    // next_push_for returns each request once, in order; then its error lists what arrived.
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        while let Ok(r) = apns.next_push_for(&token, Duration::from_millis(50)).await {
            out.push(r.status);
        }
        out
    };
    // After the first 200 (taken above): BadPriority, 429, 410, 503; the GOAWAY'd request is
    // logged with status 0 (no answer).
    assert_eq!(statuses, [400, 429, 410, 503, 0], "{statuses:?}");
    let none = apns
        .next_push_for(&token, Duration::from_millis(20))
        .await
        .unwrap_err();
    let msg = none.to_string();
    assert!(
        msg.contains("reason=BadPriority") && msg.contains("reason=TooManyProviderTokenUpdates"),
        "{msg}"
    );
    assert!(msg.contains(&format!("no push for token {token}")), "{msg}");
}

/// Reads frames until one of `kind` arrives; returns its (stream, payload).
async fn read_frame_of(io: &mut (impl AsyncReadExt + Unpin), kind: u8) -> Option<(u32, Vec<u8>)> {
    loop {
        let mut h = [0u8; 9];
        io.read_exact(&mut h).await.ok()?;
        let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
        let mut payload = vec![0u8; len];
        io.read_exact(&mut payload).await.ok()?;
        if h[3] == kind {
            return Some((u32::from_be_bytes([h[5], h[6], h[7], h[8]]), payload));
        }
    }
}

#[tokio::test]
async fn wrong_environment_certificate_gets_goaway_with_reason() {
    let apns = MockApns::start(Config::default()).await.unwrap();
    let mut io = tls(&apns, Environment::Production, Some("sandbox")).await;
    io.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let (_, payload) = tokio::time::timeout(D, read_frame_of(&mut io, crate::http2::frame::GOAWAY))
        .await
        .unwrap()
        .expect("a GOAWAY");
    assert_eq!(&payload[..8], &[0u8; 8], "last stream 0, NO_ERROR");
    assert_eq!(&payload[8..], br#"{"reason":"BadCertificateEnvironment"}"#);
}

#[tokio::test]
async fn certificate_auth_and_shutdown_goaway() {
    let apns = MockApns::start(Config::default()).await.unwrap();
    let token = "cd".repeat(32);
    let mut c = client(&apns, Environment::Production, Some("production")).await;
    // Certificate connections start at the full stream limit.
    wait_streams(&mut c, 1000).await;
    let a = post(&mut c, &token, &voip_headers(&apns, None), r#"{"aps":{}}"#)
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    assert!(
        !a.headers.contains_key("apns-unique-id"),
        "production has no apns-unique-id"
    );
    let rec = apns.next_push_for(&token, D).await.unwrap();
    assert_eq!(
        rec.auth,
        crate::AuthIdentity::Certificate {
            uid: apns.credentials().bundle_id().to_owned()
        }
    );

    // Shutdown: a raw connection sees GOAWAY {"reason":"Shutdown"}.
    let mut io = tls(&apns, Environment::Production, Some("production")).await;
    io.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let (_, settings) =
        tokio::time::timeout(D, read_frame_of(&mut io, crate::http2::frame::SETTINGS))
            .await
            .unwrap()
            .unwrap();
    assert!(
        settings.chunks(6).any(|s| s == [0, 3, 0, 0, 3, 232]),
        "{settings:?}"
    );
    let shutdown = tokio::spawn(apns.shutdown());
    let (_, payload) = tokio::time::timeout(D, read_frame_of(&mut io, crate::http2::frame::GOAWAY))
        .await
        .unwrap()
        .expect("a GOAWAY");
    assert_eq!(&payload[4..8], &[0u8; 4], "NO_ERROR");
    assert_eq!(&payload[8..], br#"{"reason":"Shutdown"}"#);
    tokio::time::timeout(D, shutdown).await.unwrap().unwrap();
}

async fn control(apns: &MockApns, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(apns.control_addr()).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(D, tcp.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[tokio::test]
async fn control_api_drives_devices_faults_and_log() {
    let apns = MockApns::start(Config::default()).await.unwrap();
    let bundle = apns.credentials().bundle_id().to_owned();
    let token = "ef".repeat(32);
    assert_eq!(
        control(&apns, "GET", "/health", "").await,
        (200, r#"{"status":"ok"}"#.into())
    );
    let dev = format!(
        r#"{{"token":"{token}","topics":["{bundle}","{bundle}.voip"],"environment":"sandbox","state":"offline"}}"#
    );
    assert_eq!(control(&apns, "POST", "/devices", &dev).await.0, 201);
    assert_eq!(control(&apns, "POST", "/devices", "{").await.0, 400);

    // SSE subscriber.
    let mut sse = TcpStream::connect(apns.control_addr()).await.unwrap();
    sse.write_all(format!("GET /deliveries/{token} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(": subscribed") {
        let n = tokio::time::timeout(D, sse.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        seen.extend_from_slice(&buf[..n]);
    }

    let mut c = client(&apns, Environment::Sandbox, None).await;
    let jwt = apns
        .credentials()
        .provider_token(now(), SignatureEncoding::Raw)
        .unwrap();
    let mut h = voip_headers(&apns, Some(jwt));
    h.retain(|(n, _)| *n != "apns-expiration");
    h.push(("apns-expiration", (now() + 3600).to_string()));
    for n in 1..=2 {
        let a = post(&mut c, &token, &h, &format!(r#"{{"n":{n}}}"#))
            .await
            .unwrap();
        assert_eq!(a.status, 200);
    }
    let (status, _) = control(
        &apns,
        "PUT",
        &format!("/devices/{token}/state"),
        r#"{"state":"online"}"#,
    )
    .await;
    assert_eq!(status, 200);
    seen.clear();
    while !String::from_utf8_lossy(&seen).contains("\n\n") {
        let n = tokio::time::timeout(D, sse.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen).into_owned();
    let data = text.trim().strip_prefix("data: ").unwrap();
    let delivery: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        delivery["payload"]["n"], 2,
        "only the last stored push: {text}"
    );
    assert_eq!(delivery["stored"], true);

    assert_eq!(
        control(&apns, "POST", "/faults", r#"{"match":{},"count":1,"action":{"reject":{"status":500,"reason":"InternalServerError"}}}"#).await.0,
        201
    );
    let a = post(&mut c, &token, &h, "{}").await.unwrap();
    assert_eq!(
        (a.status, a.body["reason"].as_str()),
        (500, Some("InternalServerError"))
    );
    let (status, pushes) = control(&apns, "GET", "/pushes", "").await;
    assert_eq!(status, 200);
    let pushes: Vec<serde_json::Value> = serde_json::from_str(&pushes).unwrap();
    assert_eq!(pushes.len(), 3);
    assert_eq!(pushes[0]["delivery"], "stored");
    assert_eq!(control(&apns, "DELETE", "/pushes", "").await.0, 200);
    assert!(apns.push_log().is_empty());
    assert_eq!(
        control(&apns, "DELETE", &format!("/devices/{token}"), "")
            .await
            .0,
        200
    );
    assert_eq!(
        control(
            &apns,
            "PUT",
            &format!("/devices/{token}/state"),
            r#"{"state":"online"}"#
        )
        .await
        .0,
        404
    );
    assert_eq!(control(&apns, "GET", "/nope", "").await.0, 404);
}

#[tokio::test]
async fn delay_and_drop_connection_faults() {
    let apns = MockApns::start(Config::default()).await.unwrap();
    let token = "0f".repeat(32);
    let mut c = client(&apns, Environment::Production, Some("universal")).await;
    apns.inject(Fault::next(FaultAction::DelayMs(150)).for_token(&token));
    let started = tokio::time::Instant::now();
    let a = post(&mut c, &token, &voip_headers(&apns, None), "{}")
        .await
        .unwrap();
    assert_eq!(a.status, 200, "a delayed push is still answered");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "the delay was applied"
    );

    apns.inject(
        Fault::next(FaultAction::DropConnection)
            .for_topic(format!("{}.voip", apns.credentials().bundle_id())),
    );
    let err = post(&mut c, &token, &voip_headers(&apns, None), "{}")
        .await
        .err()
        .expect("no answer on a dropped connection");
    assert!(
        err.reason().is_none() || err.is_io() || err.is_go_away(),
        "{err}"
    );
    tokio::time::timeout(D, c.conn)
        .await
        .expect("the connection ends")
        .unwrap();
    let log = apns.push_log();
    assert_eq!(
        log.last().unwrap().detail.as_deref(),
        Some("connection dropped")
    );
    // A new connection works again.
    let mut c = client(&apns, Environment::Production, Some("universal")).await;
    let a = post(&mut c, &token, &voip_headers(&apns, None), "{}")
        .await
        .unwrap();
    assert_eq!(a.status, 200);
}
