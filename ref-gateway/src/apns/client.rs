//! The APNs provider client: one long-lived HTTP/2-over-TLS connection, reused for every push,
//! reopened when the server sends GOAWAY or closes it; bounded retries for 429, 5xx and lost
//! connections; every request and answer recorded on the configured [`timeline::Recorder`].

use super::config::{ApnsAuth, ApnsClientConfig};
use super::push::{ApnsResponse, Push};
use super::ApnsError;
use bytes::{Bytes, BytesMut};
use h2::client::SendRequest;
use rustls::pki_types::ServerName;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The largest answer body read (APNs error bodies are tiny).
pub const MAX_ANSWER_BODY: usize = 64 * 1024;

/// An APNs client. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct ApnsClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: ApnsClientConfig,
    tls: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
    conn: tokio::sync::Mutex<Option<Connection>>,
    connections_opened: AtomicU64,
}

struct Connection {
    send: SendRequest<Bytes>,
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for ApnsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApnsClient")
            .field("addr", &self.inner.config.addr)
            .field("server_name", &self.inner.config.server_name)
            .finish_non_exhaustive()
    }
}

impl ApnsClient {
    /// A client; it connects on the first push.
    pub fn new(config: ApnsClientConfig) -> Result<Self, ApnsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in &config.roots {
            roots.add(cert.clone())?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let mut tls = match &config.auth {
            ApnsAuth::Token(_) => builder.with_no_client_auth(),
            ApnsAuth::Certificate { chain, key } => {
                builder.with_client_auth_cert(chain.clone(), key.clone_key())?
            }
        };
        tls.alpn_protocols = vec![b"h2".to_vec()];
        let server_name = ServerName::try_from(config.server_name.clone())
            .map_err(|_| ApnsError::InvalidServerName(config.server_name.clone()))?;
        Ok(ApnsClient {
            inner: Arc::new(Inner {
                config,
                tls: Arc::new(tls),
                server_name,
                conn: tokio::sync::Mutex::new(None),
                connections_opened: AtomicU64::new(0),
            }),
        })
    }

    /// How many connections this client has opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.inner.connections_opened.load(Ordering::SeqCst)
    }

    /// Closes the current connection (the next push opens a new one).
    pub async fn disconnect(&self) {
        *self.inner.conn.lock().await = None;
    }

    /// Sends a push and returns APNs' answer. 429, 5xx, `ExpiredProviderToken` (after renewing
    /// the token) and lost connections are retried within the [`super::RetryPolicy`]; the last
    /// answer is returned even when it is an error status.
    pub async fn send(&self, push: &Push) -> Result<ApnsResponse, ApnsError> {
        let retry = self.inner.config.retry;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let can_retry = attempt <= retry.max_retries;
            match self.send_once(push).await {
                Ok(mut answer) => {
                    answer.attempts = attempt;
                    let expired_token = answer.status == 403
                        && answer.reason.as_deref() == Some("ExpiredProviderToken");
                    if expired_token {
                        if let ApnsAuth::Token(signer) = &self.inner.config.auth {
                            signer.invalidate();
                        }
                    }
                    if !(can_retry && (answer.is_retryable() || expired_token)) {
                        return Ok(answer);
                    }
                }
                Err(e) if can_retry && is_transient(&e) => {
                    self.inner
                        .config
                        .recorder
                        .note(format!("APNs: {e}; retrying"));
                }
                Err(e) => return Err(e),
            }
            tokio::time::sleep(retry.backoff(attempt)).await;
        }
    }

    async fn send_once(&self, push: &Push) -> Result<ApnsResponse, ApnsError> {
        let config = &self.inner.config;
        let token = match &config.auth {
            ApnsAuth::Token(signer) => Some(signer.token()?),
            ApnsAuth::Certificate { .. } => None,
        };
        let request = build_request(&config.server_name, push, token.as_deref())?;
        let mut sender = self.ready_sender().await?;
        config.recorder.sent(
            &config.peer_name,
            "h2",
            push.summary(),
            request_text(&request, &push.payload),
        );
        let end_of_stream = push.payload.is_empty();
        let (answer, mut body) = sender.send_request(request, end_of_stream)?;
        if !end_of_stream {
            body.send_data(push.payload.clone(), true)?;
        }
        let answer = tokio::time::timeout(config.request_timeout, read_answer(answer))
            .await
            .map_err(|_| ApnsError::Timeout(config.request_timeout))??;
        config.recorder.received(
            &config.peer_name,
            "h2",
            answer.summary(),
            answer_text(&answer),
        );
        Ok(answer)
    }

    /// The shared connection, ready for one more stream; reconnects if it is gone.
    async fn ready_sender(&self) -> Result<SendRequest<Bytes>, ApnsError> {
        let mut guard = self.inner.conn.lock().await;
        if let Some(conn) = guard.as_ref() {
            if !conn.closed.load(Ordering::SeqCst) {
                if let Ok(ready) = conn.send.clone().ready().await {
                    return Ok(ready);
                }
            }
            self.inner
                .config
                .recorder
                .note("APNs: connection lost (GOAWAY or closed); reconnecting");
        }
        *guard = None;
        let config = &self.inner.config;
        let conn = tokio::time::timeout(config.connect_timeout, self.connect())
            .await
            .map_err(|_| ApnsError::ConnectTimeout(config.addr))??;
        let ready = conn.send.clone().ready().await?;
        *guard = Some(conn);
        Ok(ready)
    }

    async fn connect(&self) -> Result<Connection, ApnsError> {
        let config = &self.inner.config;
        let addr = config.addr;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| ApnsError::Connect { addr, source })?;
        let _ = tcp.set_nodelay(true);
        let tls = TlsConnector::from(self.inner.tls.clone())
            .connect(self.inner.server_name.clone(), tcp)
            .await
            .map_err(|source| ApnsError::Tls { addr, source })?;
        // APNs speaks HTTP/2 with or without ALPN; anything else negotiated is a wrong server.
        if let Some(proto) = tls.get_ref().1.alpn_protocol() {
            if proto != b"h2" {
                return Err(ApnsError::NotHttp2(
                    String::from_utf8_lossy(proto).into_owned(),
                ));
            }
        }
        let (send, connection) = h2::client::Builder::new()
            .handshake::<_, Bytes>(tls)
            .await?;
        let id = self.inner.connections_opened.fetch_add(1, Ordering::SeqCst) + 1;
        let closed = Arc::new(AtomicBool::new(false));
        let recorder = config.recorder.clone();
        recorder.note(format!(
            "APNs: connection #{id} to {addr} (TLS, h2, SNI {})",
            config.server_name
        ));
        let closed_flag = closed.clone();
        tokio::spawn(async move {
            let result = connection.await;
            closed_flag.store(true, Ordering::SeqCst);
            match result {
                Ok(()) => recorder.note(format!("APNs: connection #{id} closed")),
                Err(e) => recorder.note(format!("APNs: connection #{id} ended: {e}")),
            }
        });
        Ok(Connection { send, closed })
    }
}

/// Lost connections and HTTP/2 errors are worth a retry; TLS and configuration errors are not.
fn is_transient(e: &ApnsError) -> bool {
    matches!(
        e,
        ApnsError::Connect { .. } | ApnsError::ConnectTimeout(_) | ApnsError::Http2(_)
    )
}

fn build_request(
    authority: &str,
    push: &Push,
    token: Option<&str>,
) -> Result<http::Request<()>, ApnsError> {
    let mut b = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("https://{authority}{}", push.path()))
        .header("apns-push-type", push.push_type.as_str())
        .header("apns-topic", push.topic.as_str());
    if let Some(p) = push.priority {
        b = b.header("apns-priority", p.to_string());
    }
    if let Some(e) = push.expiration {
        b = b.header("apns-expiration", e.to_string());
    }
    if let Some(c) = &push.collapse_id {
        b = b.header("apns-collapse-id", c.as_str());
    }
    if let Some(id) = push.apns_id {
        b = b.header("apns-id", id.hyphenated().to_string());
    }
    if let Some(t) = token {
        b = b.header("authorization", format!("bearer {t}"));
    }
    b = b.header("content-length", push.payload.len().to_string());
    b.body(())
        .map_err(|e| ApnsError::InvalidPush(e.to_string()))
}

async fn read_answer(answer: h2::client::ResponseFuture) -> Result<ApnsResponse, ApnsError> {
    let (parts, mut body) = answer.await?.into_parts();
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        if buf.len() + chunk.len() > MAX_ANSWER_BODY {
            return Err(ApnsError::AnswerTooLarge(MAX_ANSWER_BODY));
        }
        buf.extend_from_slice(&chunk);
    }
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut answer = ApnsResponse {
        status: parts.status.as_u16(),
        apns_id: header("apns-id"),
        apns_unique_id: header("apns-unique-id"),
        reason: None,
        timestamp_ms: None,
        body: buf.freeze(),
        attempts: 1,
    };
    answer.parse_body();
    Ok(answer)
}

/// The request as text for the timeline: pseudo-headers, headers, blank line, payload.
fn request_text(request: &http::Request<()>, payload: &Bytes) -> Bytes {
    let mut s = format!(
        ":method: {}\r\n:path: {}\r\n:authority: {}\r\n",
        request.method(),
        request.uri().path(),
        request.uri().authority().map(|a| a.as_str()).unwrap_or("")
    );
    for (name, value) in request.headers() {
        s.push_str(&format!(
            "{name}: {}\r\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    s.push_str("\r\n");
    let mut out = BytesMut::from(s.as_bytes());
    out.extend_from_slice(payload);
    out.freeze()
}

fn answer_text(answer: &ApnsResponse) -> Bytes {
    let mut s = format!(":status: {}\r\n", answer.status);
    if let Some(id) = &answer.apns_id {
        s.push_str(&format!("apns-id: {id}\r\n"));
    }
    if let Some(id) = &answer.apns_unique_id {
        s.push_str(&format!("apns-unique-id: {id}\r\n"));
    }
    s.push_str("\r\n");
    let mut out = BytesMut::from(s.as_bytes());
    out.extend_from_slice(&answer.body);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn the_request_carries_every_apns_header() {
        let mut push = Push::voip_call("00ab", "com.example.app", Bytes::from_static(b"{}"));
        push.apns_id = Some(Uuid::from_u128(1));
        push.collapse_id = Some("c1".into());
        let r = build_request("api.sandbox.push.apple.com", &push, Some("jwt")).unwrap();
        assert_eq!(
            r.uri().to_string(),
            "https://api.sandbox.push.apple.com/3/device/00ab"
        );
        let h = r.headers();
        assert_eq!(h["apns-push-type"], "voip");
        assert_eq!(h["apns-topic"], "com.example.app.voip");
        assert_eq!(h["apns-priority"], "10");
        assert_eq!(h["apns-expiration"], "0");
        assert_eq!(h["apns-collapse-id"], "c1");
        assert_eq!(h["apns-id"], "00000000-0000-0000-0000-000000000001");
        assert_eq!(h["authorization"], "bearer jwt");
        assert_eq!(h["content-length"], "2");
        let text = String::from_utf8(request_text(&r, &push.payload).to_vec()).unwrap();
        assert!(text.starts_with(":method: POST\r\n:path: /3/device/00ab\r\n"));
        assert!(text.ends_with("\r\n\r\n{}"), "{text:?}");
    }

    #[test]
    fn an_unencodable_push_is_an_error_not_a_panic() {
        let mut push = Push::voip_call("bad token/", "com.example.app", Bytes::new());
        assert!(matches!(
            build_request("h", &push, None),
            Err(ApnsError::InvalidPush(_))
        ));
        push.device_token = "ok".into();
        push.topic = "line\nbreak".into();
        assert!(matches!(
            build_request("h", &push, None),
            Err(ApnsError::InvalidPush(_))
        ));
    }
}
