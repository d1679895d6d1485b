//! The APNs listeners: TLS, then the HTTP/2 engine (`crate::http2`) with one `Apns` service
//! per connection that validates each request, applies faults and the device registry, records,
//! and answers.

use crate::auth::{CertIdentity, ConnectionAuth};
use crate::devices::{DeliveryOutcome, Devices};
use crate::faults::{FaultAction, Faults};
use crate::http2::{self, frame};
use crate::push_log::{PushLog, PushRecord, RecordedHeaders};
use crate::reason::error_body;
use crate::validate::{self, Providers, RequestHeaders, Validation};
use crate::{Environment, Reason};
use bytes::Bytes;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// How long a TLS handshake (and, in the engine, a preface, a request body or a write) may take.
const IO_DEADLINE: Duration = Duration::from_secs(10);
/// How long shutdown waits for connections to send GOAWAY, finish and close before aborting them:
/// the engine's GOAWAY grace (2 s) and close grace (1 s), and a margin.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(3500);

pub(crate) use timeline::now_ms;

/// State shared by every listener and the control API.
pub(crate) struct Shared {
    pub providers: Providers,
    pub devices: Devices,
    pub log: PushLog,
    pub faults: Faults,
    pub max_concurrent_streams: u32,
    pub streams_before_auth: u32,
    next_connection: AtomicU64,
}

impl Shared {
    pub(crate) fn new(config: &crate::Config, providers: Providers) -> Self {
        Shared {
            providers,
            devices: Devices::new(config.unknown_tokens),
            log: PushLog::new(config.push_log_capacity),
            faults: Faults::default(),
            max_concurrent_streams: config.max_concurrent_streams,
            streams_before_auth: config.streams_before_auth,
            next_connection: AtomicU64::new(1),
        }
    }
}

/// Accepts connections until `shutdown` turns true; then every open connection sends GOAWAY
/// `{"reason":"Shutdown"}`, and this returns once they all closed (or, past
/// [`SHUTDOWN_GRACE`], after aborting the stragglers). Connection tasks live in a [`JoinSet`]
/// owned here, so none is dropped before its GOAWAY is on the wire.
pub(crate) async fn serve(
    listener: TcpListener,
    env: Environment,
    shared: Arc<Shared>,
    acceptor: TlsAcceptor,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let (shared, acceptor, shutdown) = (shared.clone(), acceptor.clone(), shutdown.clone());
                    connections.spawn(async move {
                        if let Err(e) = connection(tcp, peer, env, shared, acceptor, shutdown).await {
                            tracing::debug!(%peer, "connection ended: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    drop(listener);
    let open = connections.len();
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while !connections.is_empty() {
        match tokio::time::timeout_at(deadline, connections.join_next()).await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                tracing::info!(
                    env = env.as_str(),
                    left = connections.len(),
                    "aborting connections still open after the shutdown grace"
                );
                connections.shutdown().await;
            }
        }
    }
    tracing::debug!(env = env.as_str(), open, "listener stopped");
}

/// Waits until `shutdown` turns true (or its sender is gone).
async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|down| *down).await;
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    env: Environment,
    shared: Arc<Shared>,
    acceptor: TlsAcceptor,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let _ = tcp.set_nodelay(true);
    // A connection still in its TLS handshake has nothing to GOAWAY: shutdown ends it.
    let mut tls = tokio::select! {
        tls = tokio::time::timeout(IO_DEADLINE, acceptor.accept(tcp)) => tls??,
        _ = shutdown_requested(&mut shutdown) => return Ok(()),
    };
    let cert = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
        None => None,
        Some(der) => match CertIdentity::from_der(der) {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::info!(%peer, "client certificate unusable: {e}");
                refuse_connection(&mut tls, Reason::BadCertificate).await;
                return Ok(());
            }
        },
    };
    if let Some(c) = &cert {
        if !c.allows(env) {
            tracing::info!(%peer, uid = %c.uid, env = env.as_str(), "certificate for the wrong environment");
            refuse_connection(&mut tls, Reason::BadCertificateEnvironment).await;
            return Ok(());
        }
    }
    // APNs starts token connections at 1 stream, until the first valid token.
    let initial = if cert.is_some() {
        shared.max_concurrent_streams
    } else {
        shared.streams_before_auth
    };
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%peer, id, env = env.as_str(), cert = cert.is_some(), "HTTP/2 connection");
    let service = Apns {
        shared: shared.clone(),
        id,
        env,
        auth: ConnectionAuth::new(cert).in_environment(env),
    };
    let ended = http2::serve(tls, http2::Settings::apns(id, initial), service, shutdown).await;
    tracing::debug!(%peer, id, "connection ended: {ended}");
    Ok(())
}

/// Answers a connection APNs will not serve: SETTINGS, then GOAWAY(last stream 0, NO_ERROR,
/// `{"reason": …}`), then close, as Apple does for BadCertificateEnvironment.
async fn refuse_connection(tls: &mut tokio_rustls::server::TlsStream<TcpStream>, reason: Reason) {
    let mut out = frame::frame(frame::SETTINGS, 0, 0, &[]);
    out.extend(frame::goaway(
        0,
        frame::ErrorCode::NoError,
        &error_body(reason.as_str(), None),
    ));
    let _ = tokio::time::timeout(IO_DEADLINE, async {
        tls.write_all(&out).await?;
        tls.flush().await?;
        tls.shutdown().await?;
        // Read until the client closes, so unread bytes do not turn our FIN into a reset.
        let mut sink = [0u8; 4096];
        while tls.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// The APNs provider API on one connection: the engine hands it each complete request.
struct Apns {
    shared: Arc<Shared>,
    id: u64,
    env: Environment,
    /// The connection's authentication: its certificate, or its team and current token.
    auth: ConnectionAuth,
}

/// How a request ends, before it is recorded.
struct Answer {
    status: u16,
    reason: Option<Cow<'static, str>>,
    timestamp_ms: Option<u64>,
    delivery: Option<DeliveryOutcome>,
    detail: Option<Cow<'static, str>>,
}

impl Answer {
    fn reject(reason: Reason, detail: &'static str) -> Self {
        Answer {
            status: reason.status(),
            reason: Some(Cow::Borrowed(reason.as_str())),
            timestamp_ms: None,
            delivery: None,
            detail: Some(Cow::Borrowed(detail)),
        }
    }
}

enum Finish {
    Respond(Answer),
    /// RST_STREAM REFUSED_STREAM and GOAWAY with this reason (fault).
    Reset(Cow<'static, str>),
    /// Close the connection (fault).
    Drop,
}

/// What a request leaves in the push log, copied out of the engine's buffers.
struct Received {
    headers: RecordedHeaders,
    payload: Bytes,
}

impl http2::Service for Apns {
    fn call(&mut self, request: &http2::Request) -> http2::Answer {
        let shared = &*self.shared;
        let headers = RequestHeaders::collect(request.fields.iter());
        let now = now_ms();
        let validation = validate::validate(
            &shared.providers,
            &mut self.auth,
            &headers,
            &request.body,
            (now / 1000) as i64,
        );
        let max_streams = (validation.first_valid_token
            && shared.streams_before_auth != shared.max_concurrent_streams)
            .then_some(shared.max_concurrent_streams);
        let received = Received {
            headers: RecordedHeaders::copy_of(request.fields.iter()),
            payload: Bytes::copy_from_slice(&request.body),
        };
        // Recorded before the push can be delivered: a timeline never shows the device getting a
        // push before APNs got the request for it.
        record_request(shared, &validation, &received);
        let finish = match (&validation.outcome, request.body_too_large) {
            (Err(r), _) => Finish::Respond(Answer::reject(r.reason, r.detail)),
            (Ok(_), true) => {
                Finish::Respond(Answer::reject(Reason::PayloadTooLarge, "body over 64 KiB"))
            }
            (Ok(push), false) => match shared.faults.take(&push.token, &push.topic) {
                Some(FaultAction::DelayMs(ms)) => {
                    let (shared, id, env, push) =
                        (self.shared.clone(), self.id, self.env, push.clone());
                    let later = async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        let apns_id = &validation.apns_id;
                        let finish = deliver(&shared, env, &push, apns_id, &received, now_ms());
                        conclude(&shared, id, env, validation, finish, received, now)
                    };
                    return http2::Answer {
                        reply: Err(Box::pin(later)),
                        max_streams,
                    };
                }
                Some(FaultAction::Reject { status, reason }) => Finish::Respond(Answer {
                    status,
                    timestamp_ms: (status == 410).then(now_ms),
                    reason: Some(Cow::Owned(reason)),
                    delivery: None,
                    detail: Some(Cow::Borrowed("injected fault")),
                }),
                Some(FaultAction::Goaway { reason }) => Finish::Reset(Cow::Owned(reason)),
                Some(FaultAction::DropConnection) => Finish::Drop,
                None => deliver(shared, self.env, push, &validation.apns_id, &received, now),
            },
        };
        http2::Answer {
            reply: Ok(conclude(
                shared, self.id, self.env, validation, finish, received, now,
            )),
            max_streams,
        }
    }

    fn shutdown_debug(&self) -> Vec<u8> {
        error_body("Shutdown", None)
    }
}

/// A valid push goes to the device registry, which delivers, stores or refuses it at `now` (ms).
fn deliver(
    shared: &Shared,
    env: Environment,
    push: &validate::ValidPush,
    apns_id: &str,
    received: &Received,
    now: u64,
) -> Finish {
    match shared
        .devices
        .accept(push, env, apns_id, &received.payload, now)
    {
        Ok(outcome) => Finish::Respond(Answer {
            status: 200,
            reason: None,
            timestamp_ms: None,
            delivery: Some(outcome),
            detail: None,
        }),
        Err(refusal) => Finish::Respond(Answer {
            timestamp_ms: refusal.timestamp_ms(),
            ..Answer::reject(refusal.reason(), "device registry")
        }),
    }
}

/// Records a request on the timeline of its token's scenario, if it has one.
fn record_request(shared: &Shared, validation: &Validation, received: &Received) {
    let Some(rec) = validation
        .token
        .as_deref()
        .and_then(|t| shared.devices.recorder(t))
    else {
        return;
    };
    let mut raw = String::new();
    let (mut path, mut push_type) = (Cow::Borrowed(""), Cow::Borrowed(""));
    for (n, v) in received.headers.iter() {
        let v = String::from_utf8_lossy(v);
        raw.push_str(&format!("{}: {v}\n", String::from_utf8_lossy(n)));
        match n {
            b":path" => path = v,
            b"apns-push-type" => push_type = v,
            _ => {}
        }
    }
    raw.push('\n');
    raw.push_str(&String::from_utf8_lossy(&received.payload));
    rec.received(
        "gateway",
        "h2",
        format!("POST {path} ({push_type})"),
        Bytes::from(raw),
    );
}

/// Records a request's answer (push log, and the device's timeline if it has one) and makes the
/// engine's reply.
fn conclude(
    shared: &Shared,
    connection_id: u64,
    env: Environment,
    validation: Validation,
    finish: Finish,
    received: Received,
    now: u64,
) -> http2::Reply {
    let apns_id = validation.apns_id;
    let (status, reason, timestamp_ms, delivery, detail) = match &finish {
        Finish::Respond(a) => (
            a.status,
            a.reason.clone(),
            a.timestamp_ms,
            a.delivery,
            a.detail.clone(),
        ),
        Finish::Reset(r) => (
            0,
            None,
            None,
            None,
            Some(Cow::Owned(format!("GOAWAY {r} (stream refused)"))),
        ),
        Finish::Drop => (
            0,
            None,
            None,
            None,
            Some(Cow::Borrowed("connection dropped")),
        ),
    };
    let body = reason
        .as_deref()
        .filter(|_| status != 200)
        .map(|r| error_body(r, timestamp_ms));
    let recorder = validation
        .token
        .as_deref()
        .and_then(|t| shared.devices.recorder(t));
    if let Some(rec) = &recorder {
        let summary = match (&finish, &reason) {
            (Finish::Respond(_), None) => format!("{status} apns-id={apns_id}"),
            (Finish::Respond(_), Some(r)) => format!("{status} {r}"),
            (Finish::Reset(r), _) => format!("RST_STREAM REFUSED_STREAM + GOAWAY {r}"),
            (Finish::Drop, _) => "connection dropped".to_owned(),
        };
        rec.sent(
            "gateway",
            "h2",
            summary,
            Bytes::from(body.clone().unwrap_or_default()),
        );
    }
    shared.log.push(PushRecord {
        seq: 0,
        time_ms: now,
        connection_id,
        auth: validation.identity,
        environment: env,
        headers: received.headers,
        token: validation.token,
        payload: received.payload,
        status,
        reason: reason.map(Cow::into_owned),
        apns_id: apns_id.clone(),
        timestamp_ms,
        delivery,
        detail: detail.map(Cow::into_owned),
    });
    match finish {
        Finish::Drop => http2::Reply::DropConnection,
        Finish::Reset(reason) => http2::Reply::RefuseAndGoAway(error_body(&reason, None)),
        Finish::Respond(_) => {
            // Unique per response: sent as HPACK literals never indexed, so neither side's
            // dynamic table churns with values that never repeat.
            let mut fields: Vec<(&'static [u8], Vec<u8>, bool)> =
                vec![(b"apns-id", apns_id.into_bytes(), true)];
            if env == Environment::Sandbox {
                fields.push((
                    b"apns-unique-id",
                    crate::ids::random_uuid().into_bytes(),
                    true,
                ));
            }
            if body.is_some() {
                fields.push((b"content-type", b"application/json".to_vec(), false));
            }
            http2::Reply::Respond(http2::Response {
                status,
                fields,
                body,
            })
        }
    }
}
