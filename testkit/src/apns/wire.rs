//! Talking to the mock over TLS from Rust: a well-behaved HTTP/2 client (the `h2` crate) for
//! requests whose framing is valid but whose content is not, and a raw writer of hand-made
//! HTTP/2 frames (with a tiny literal-only HPACK encoder) for framing the `h2` client refuses to
//! produce. Every wait has a deadline.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request};
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Deadline for one exchange with the server.
pub const EXCHANGE: Duration = Duration::from_secs(10);

/// The HTTP/2 connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A TLS client config trusting only the mock's CA, offering ALPN `h2` (or none).
pub fn tls_config(ca_file: &Path, alpn: bool) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(ca_file).expect("read ca.pem");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.expect("CA certificate")).expect("add CA");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    if alpn {
        config.alpn_protocols = vec![b"h2".to_vec()];
    }
    Arc::new(config)
}

/// A current-thread runtime for a test that drives a raw client.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Opens TLS to `addr` with SNI `host`.
pub async fn tls_connect(
    addr: SocketAddr,
    host: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = tokio::time::timeout(EXCHANGE, TcpStream::connect(addr)).await??;
    let name = ServerName::try_from(host.to_string()).expect("server name");
    tokio::time::timeout(EXCHANGE, TlsConnector::from(config).connect(name, tcp)).await?
}

/// How the server dealt with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A response: status, `reason` from the JSON body, `apns-id`.
    Answer {
        /// `:status`.
        status: u16,
        /// The JSON body's `reason`.
        reason: Option<String>,
        /// `apns-id`.
        apns_id: Option<String>,
    },
    /// The stream was reset with this HTTP/2 error code.
    Reset(String),
    /// The connection ended (GOAWAY, close, or a TLS/IO error), with a description.
    ConnectionEnded(String),
}

impl Outcome {
    /// The status and reason of an answer (`None` for a reset or a closed connection).
    pub fn status_reason(&self) -> Option<(u16, Option<&str>)> {
        match self {
            Outcome::Answer { status, reason, .. } => Some((*status, reason.as_deref())),
            _ => None,
        }
    }
}

/// One request over a fresh HTTP/2 connection (ALPN h2) made with the `h2` crate.
#[derive(Clone, Debug)]
pub struct H2Request {
    /// The method.
    pub method: Method,
    /// Path and query, e.g. `/3/device/<token>`.
    pub path: String,
    /// Header fields.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body.
    pub body: Bytes,
}

impl H2Request {
    /// A POST to `/3/device/<token>` with these headers and body.
    pub fn post(
        token: &str,
        headers: Vec<(&'static str, HeaderValue)>,
        body: impl Into<Bytes>,
    ) -> Self {
        H2Request {
            method: Method::POST,
            path: format!("/3/device/{token}"),
            headers: headers
                .into_iter()
                .map(|(k, v)| (HeaderName::from_static(k), v))
                .collect(),
            body: body.into(),
        }
    }
}

/// Sends `requests` one after another on one new connection; panics if the server hangs.
pub async fn h2_exchange(
    addr: SocketAddr,
    host: &str,
    config: Arc<rustls::ClientConfig>,
    requests: Vec<H2Request>,
) -> Vec<Outcome> {
    let tls = match tls_connect(addr, host, config).await {
        Ok(tls) => tls,
        Err(e) => return vec![Outcome::ConnectionEnded(format!("TLS: {e}")); requests.len()],
    };
    let (send, connection) = match tokio::time::timeout(EXCHANGE, h2::client::handshake(tls)).await
    {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            return vec![Outcome::ConnectionEnded(format!("h2 handshake: {e}")); requests.len()]
        }
        Err(_) => panic!("HTTP/2 handshake with {addr} hung"),
    };
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut out = Vec::new();
    let mut send = send;
    for request in requests {
        let shown = format!("{} {} {:?}", request.method, request.path, request.headers);
        match tokio::time::timeout(EXCHANGE, one_request(&mut send, host, request)).await {
            Ok(outcome) => out.push(outcome),
            Err(_) => panic!("the server did not answer within {EXCHANGE:?}: {shown}"),
        }
    }
    driver.abort();
    out
}

async fn one_request(
    send: &mut h2::client::SendRequest<Bytes>,
    host: &str,
    r: H2Request,
) -> Outcome {
    let ended = |e: h2::Error| {
        if let (Some(reason), false) = (e.reason(), e.is_go_away() || e.is_io()) {
            Outcome::Reset(format!("{reason:?}"))
        } else {
            Outcome::ConnectionEnded(e.to_string())
        }
    };
    let mut send = match send.clone().ready().await {
        Ok(s) => s,
        Err(e) => return ended(e),
    };
    let mut request = Request::builder()
        .method(r.method)
        .uri(format!("https://{host}{}", r.path))
        .body(())
        .expect("request");
    for (k, v) in r.headers {
        request.headers_mut().append(k, v);
    }
    let (response, mut stream) = match send.send_request(request, r.body.is_empty()) {
        Ok(pair) => pair,
        Err(e) => return ended(e),
    };
    if !r.body.is_empty() {
        if let Err(e) = stream.send_data(r.body, true) {
            return ended(e);
        }
    }
    let response = match response.await {
        Ok(r) => r,
        Err(e) => return ended(e),
    };
    let status = response.status().as_u16();
    let apns_id = response
        .headers()
        .get("apns-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        match chunk {
            Ok(chunk) => {
                let _ = body.flow_control().release_capacity(chunk.len());
                bytes.extend_from_slice(&chunk);
            }
            Err(e) => return ended(e),
        }
    }
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    Outcome::Answer {
        status,
        reason: json["reason"].as_str().map(String::from),
        apns_id,
    }
}

/// HTTP/2 frame types used by the raw writer.
pub mod frame {
    /// DATA.
    pub const DATA: u8 = 0x0;
    /// HEADERS.
    pub const HEADERS: u8 = 0x1;
    /// RST_STREAM.
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS.
    pub const SETTINGS: u8 = 0x4;
    /// PING.
    pub const PING: u8 = 0x6;
    /// GOAWAY.
    pub const GOAWAY: u8 = 0x7;
    /// CONTINUATION.
    pub const CONTINUATION: u8 = 0x9;
    /// The END_STREAM flag.
    pub const END_STREAM: u8 = 0x1;
    /// The ACK flag (SETTINGS, PING).
    pub const ACK: u8 = 0x1;
    /// The END_HEADERS flag.
    pub const END_HEADERS: u8 = 0x4;
}

/// A frame: 24-bit length, type, flags, stream id, payload.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    assert!(len < 1 << 24, "frame payload too long");
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK integer with an `n`-bit prefix (the prefix byte's high bits are `flags`).
fn hpack_int(out: &mut Vec<u8>, flags: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128 + 128) as u8);
        value /= 128;
    }
    out.push(value as u8);
}

/// An HPACK header block of literal fields without indexing, new names, no Huffman: any bytes go.
pub fn hpack_literals(fields: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        hpack_int(&mut out, 0x00, 7, name.len());
        out.extend_from_slice(name);
        hpack_int(&mut out, 0x00, 7, value.len());
        out.extend_from_slice(value);
    }
    out
}

/// How a raw connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawEnd {
    /// The server sent a GOAWAY with this error code and debug data.
    GoAway(u32, Vec<u8>),
    /// The server reset a stream with this error code.
    Reset(u32),
    /// The server answered on a stream (HEADERS): it parsed the request.
    Answered,
    /// The server closed the connection (EOF, reset, TLS alert).
    Closed(String),
}

/// Writes `bytes` over TLS (after an optional preface and empty SETTINGS), optionally half-closes,
/// then reads frames until the server ends the exchange. Panics if it hangs.
pub async fn raw_exchange(
    addr: SocketAddr,
    host: &str,
    config: Arc<rustls::ClientConfig>,
    bytes: &[u8],
    half_close: bool,
) -> RawEnd {
    let mut tls = match tls_connect(addr, host, config).await {
        Ok(t) => t,
        Err(e) => return RawEnd::Closed(format!("TLS: {e}")),
    };
    let work = async {
        if let Err(e) = tls.write_all(bytes).await {
            return RawEnd::Closed(format!("write: {e}"));
        }
        let _ = tls.flush().await;
        if half_close {
            let _ = tls.shutdown().await;
        }
        read_until_end(&mut tls).await
    };
    match tokio::time::timeout(EXCHANGE, work).await {
        Ok(end) => end,
        Err(_) => panic!(
            "the server neither answered nor closed within {EXCHANGE:?} after {} raw bytes",
            bytes.len()
        ),
    }
}

/// Writes raw bytes over plain TCP (no TLS) and waits for the close.
pub async fn tcp_exchange(addr: SocketAddr, bytes: &[u8]) -> RawEnd {
    let work = async {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        let _ = tcp.write_all(bytes).await;
        let _ = tcp.shutdown().await;
        let mut sink = Vec::new();
        match tcp.read_to_end(&mut sink).await {
            Ok(_) => RawEnd::Closed(format!("EOF after {} bytes", sink.len())),
            Err(e) => RawEnd::Closed(e.to_string()),
        }
    };
    match tokio::time::timeout(EXCHANGE, work).await {
        Ok(end) => end,
        Err(_) => panic!("the server did not close a plain-TCP connection within {EXCHANGE:?}"),
    }
}

/// One frame as read from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Its type.
    pub kind: u8,
    /// Its flags.
    pub flags: u8,
    /// Its stream id.
    pub stream: u32,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// Reads the next whole frame (None on EOF or error), within [`EXCHANGE`].
pub async fn next_frame(tls: &mut TlsStream<TcpStream>) -> Option<Frame> {
    next_frame_within(tls, EXCHANGE).await
}

/// Reads the next whole frame (None on EOF or error), within `within`.
pub async fn next_frame_within(tls: &mut TlsStream<TcpStream>, within: Duration) -> Option<Frame> {
    let read = async {
        let mut head = [0u8; 9];
        tls.read_exact(&mut head).await.ok()?;
        let len = (head[0] as usize) << 16 | (head[1] as usize) << 8 | head[2] as usize;
        let mut payload = vec![0u8; len];
        tls.read_exact(&mut payload).await.ok()?;
        Some(Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
            payload,
        })
    };
    tokio::time::timeout(within, read)
        .await
        .unwrap_or_else(|_| panic!("no frame from the server within {within:?}"))
}

/// Reads frames until the server ends the exchange (GOAWAY, RST_STREAM, a response, or close).
pub async fn read_until_end(tls: &mut TlsStream<TcpStream>) -> RawEnd {
    loop {
        let mut head = [0u8; 9];
        if let Err(e) = tls.read_exact(&mut head).await {
            return RawEnd::Closed(e.to_string());
        }
        let len = (head[0] as usize) << 16 | (head[1] as usize) << 8 | head[2] as usize;
        let mut payload = vec![0u8; len];
        if let Err(e) = tls.read_exact(&mut payload).await {
            return RawEnd::Closed(e.to_string());
        }
        let code = |at: usize| {
            payload
                .get(at..at + 4)
                .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
        };
        match head[3] {
            frame::GOAWAY => {
                return RawEnd::GoAway(
                    code(4).unwrap_or(u32::MAX),
                    payload.get(8..).unwrap_or_default().to_vec(),
                )
            }
            frame::RST_STREAM => return RawEnd::Reset(code(0).unwrap_or(u32::MAX)),
            frame::HEADERS => return RawEnd::Answered,
            _ => {}
        }
    }
}
