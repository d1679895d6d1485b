//! The APNs listeners: TLS, HTTP/2 through the frame tap, and one task per request that validates,
//! applies faults and the device registry, records, and answers.

use crate::auth::{CertIdentity, ConnectionAuth};
use crate::devices::{DeliveryOutcome, Devices};
use crate::faults::{FaultAction, Faults};
use crate::frame_tap::{self, FrameTap, TapHandle};
use crate::push_log::{PushLog, PushRecord, RecordedHeaders};
use crate::reason::error_body;
use crate::validate::{self, Providers, RequestHeaders};
use crate::{Environment, Reason};
use bytes::{Bytes, BytesMut};
use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Largest body read before answering PayloadTooLarge without reading the rest.
const BODY_READ_LIMIT: usize = 64 * 1024;
/// How long a TLS handshake, a request body, or draining a closing connection may take.
const IO_DEADLINE: Duration = Duration::from_secs(10);
/// How long in-flight streams get to finish after a GOAWAY.
const GOAWAY_GRACE: Duration = Duration::from_secs(2);
/// How long a connection waits, after its GOAWAY and its last response, for the client to close
/// (closing first, with unread client bytes, could reset the socket and lose the GOAWAY).
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How long shutdown waits for connections to send GOAWAY, finish and close before aborting them.
const SHUTDOWN_GRACE: Duration =
    Duration::from_millis(GOAWAY_GRACE.as_millis() as u64 + CLOSE_GRACE.as_millis() as u64 + 500);

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

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
    pub fn new(config: &crate::Config, providers: Providers) -> Self {
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

/// One HTTP/2 connection's state, shared with its request tasks.
struct Connection {
    id: u64,
    env: Environment,
    auth: Mutex<ConnectionAuth>,
    tap: TapHandle,
    /// Set when the connection must close at once (drop_connection fault).
    drop_now: Notify,
    /// Streams of a dropped connection, kept so `h2` does not reset them before the socket
    /// closes.
    doomed: Mutex<Vec<h2::server::SendResponse<Bytes>>>,
    /// Set once a GOAWAY went out: new streams are refused.
    going_away: AtomicBool,
    goaway_sent: Notify,
    in_flight: AtomicUsize,
    /// Times out request bodies that stop arriving.
    bodies: BodyClock,
}

/// How often a connection checks its waiting request bodies against [`IO_DEADLINE`].
const BODY_CHECK: Duration = Duration::from_millis(2500);

/// The body deadline of one connection's requests, kept by one timer per connection rather than
/// one per request.
///
/// A timer per request (`tokio::time::timeout`) costs a system call whenever the runtime has no
/// earlier timer: registering the first one wakes the runtime's driver through its eventfd. With
/// one in two requests whose DATA frame `h2` had not yet read when it handed out the HEADERS, that
/// was a `write(2)` per two requests under load. Here a waiting body instead listens for the
/// connection's periodic tick ([`BODY_CHECK`], kept by [`BodyClock::keep_time`]) and gives up on
/// the first tick past its deadline.
#[derive(Default)]
struct BodyClock {
    tick: Notify,
}

impl BodyClock {
    /// Runs `reading` to completion, or gives up (`None`) at the first tick past `deadline`. A
    /// body that has already arrived (most requests) is taken at once, without reading the time.
    async fn within<F: Future>(
        &self,
        deadline: Duration,
        mut reading: std::pin::Pin<&mut F>,
    ) -> Option<F::Output> {
        if let std::task::Poll::Ready(done) = futures::poll!(reading.as_mut()) {
            return Some(done);
        }
        let started = tokio::time::Instant::now();
        loop {
            let ticked = self.tick.notified();
            tokio::select! {
                biased;
                done = reading.as_mut() => return Some(done),
                _ = ticked => {
                    if started.elapsed() >= deadline {
                        return None;
                    }
                }
            }
        }
    }

    /// Wakes every waiting body every [`BODY_CHECK`] to check its deadline. Never ends: the
    /// connection polls it alongside its frames.
    async fn keep_time(&self) -> std::convert::Infallible {
        let mut every =
            tokio::time::interval_at(tokio::time::Instant::now() + BODY_CHECK, BODY_CHECK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            self.tick.notify_waiters();
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
    let lingering = Lingering::of(&tcp);
    // A connection still in its TLS or HTTP/2 handshake has nothing to GOAWAY: shutdown ends it.
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
    let initial = if cert.is_some() {
        shared.max_concurrent_streams
    } else {
        shared.streams_before_auth
    };
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let (tap, handle) = FrameTap::new(tls, Some(initial));
    if initial < shared.max_concurrent_streams {
        // h2 is built with the full limit (it cannot change it later); the tap holds the
        // connection to the advertised one until the first valid token.
        handle.limit_streams(Some(initial));
    }
    let handshake = h2::server::Builder::new()
        .max_concurrent_streams(shared.max_concurrent_streams)
        .max_header_list_size(8000)
        .initial_window_size(65_535)
        .max_frame_size(16_384)
        .handshake::<_, Bytes>(tap);
    let mut h2c = tokio::select! {
        h2c = tokio::time::timeout(IO_DEADLINE, handshake) => h2c??,
        _ = shutdown_requested(&mut shutdown) => return Ok(()),
    };
    tracing::debug!(%peer, id, env = env.as_str(), cert = cert.is_some(), "HTTP/2 connection");
    let conn = Arc::new(Connection {
        id,
        env,
        auth: Mutex::new(ConnectionAuth::new(cert).in_environment(env)),
        tap: handle,
        drop_now: Notify::new(),
        doomed: Mutex::new(Vec::new()),
        going_away: AtomicBool::new(false),
        goaway_sent: Notify::new(),
        in_flight: AtomicUsize::new(0),
        bodies: BodyClock::default(),
    });
    // Shutdown may have begun during the handshake: then the GOAWAY goes out at once.
    let mut shutting_down = *shutdown.borrow();
    if shutting_down {
        send_goaway(&conn, "Shutdown");
    }
    // The rare events' futures live across iterations: made anew per request, each would
    // register with (and unregister from) its Notify every time.
    let drop_now = conn.drop_now.notified();
    let goaway_sent = conn.goaway_sent.notified();
    let shutdown_signal = shutdown_requested(&mut shutdown);
    let body_clock = conn.bodies.keep_time();
    tokio::pin!(drop_now, goaway_sent, shutdown_signal, body_clock);
    let protocol_error = loop {
        tokio::select! {
            // Rare events first, so a flood of requests cannot starve them.
            biased;
            _ = &mut drop_now => return Ok(()),
            _ = &mut goaway_sent => break None,
            _ = &mut shutdown_signal, if !shutting_down => {
                shutting_down = true;
                send_goaway(&conn, "Shutdown");
            }
            never = &mut body_clock => match never {},
            next = accept_batched(&mut h2c, &conn.tap) => match next {
                Some(Ok((req, mut respond))) => {
                    if conn.going_away.load(Ordering::Acquire) {
                        respond.send_reset(h2::Reason::REFUSED_STREAM);
                        continue;
                    }
                    if conn.tap.take_refused(respond.stream_id().into()) {
                        tracing::debug!(conn = conn.id, stream = u32::from(respond.stream_id()), "stream over MAX_CONCURRENT_STREAMS refused");
                        respond.send_reset(h2::Reason::REFUSED_STREAM);
                        continue;
                    }
                    // Most requests arrive whole (HEADERS + DATA): answer them right here, so
                    // responses batch into few TLS writes. Only a request still waiting for its
                    // body or a delay fault moves to its own task.
                    conn.in_flight.fetch_add(1, Ordering::AcqRel);
                    let mut pending = Box::pin(request(shared.clone(), conn.clone(), req, respond));
                    let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
                    if pending.as_mut().poll(&mut cx).is_pending() {
                        tokio::spawn(pending);
                    }
                }
                Some(Err(e)) => break Some(e),
                None => return Ok(()),
            },
        }
    };
    if let Some(e) = protocol_error {
        // `h2` has sent its GOAWAY (FRAME_SIZE_ERROR, PROTOCOL_ERROR, …) and closed its side.
        drop(h2c);
        lingering.drain().await;
        return Err(e.into());
    }
    // After a GOAWAY: let in-flight streams finish, then close. No more write batching.
    conn.tap.set_force_flush(true);
    let deadline = tokio::time::Instant::now() + GOAWAY_GRACE;
    while conn.in_flight.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
        tokio::select! {
            next = h2c.accept() => match next {
                Some(Ok((_, mut respond))) => respond.send_reset(h2::Reason::REFUSED_STREAM),
                _ => break,
            },
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            never = &mut body_clock => match never {},
            _ = &mut drop_now => return Ok(()),
        }
    }
    // Keep driving h2 (it flushes the last responses) until the client, which has seen the
    // GOAWAY, closes: closing first while its bytes are unread would reset the socket, and a
    // reset can discard the GOAWAY before the client reads it.
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok((_, mut respond))) = h2c.accept().await {
            respond.send_reset(h2::Reason::REFUSED_STREAM);
        }
    })
    .await;
    Ok(())
}

/// A lingering close (nginx's `lingering_close`): after a connection error, the socket stays open
/// a moment and what the client still sends is read and thrown away. Closing a socket with unread
/// bytes makes the kernel answer with a reset, and a reset can discard the GOAWAY, with its error
/// code, before the client has read it: a client in the middle of writing an oversized frame would
/// see "broken pipe" instead of FRAME_SIZE_ERROR. It holds a duplicate of the socket's descriptor,
/// so the socket outlives the TLS stream that `h2` owns and drops.
struct Lingering(Option<std::os::fd::OwnedFd>);

impl Lingering {
    /// At most this much is read and discarded.
    const BUDGET: usize = 1 << 20;

    fn of(tcp: &TcpStream) -> Self {
        use std::os::fd::AsFd as _;
        Lingering(tcp.as_fd().try_clone_to_owned().ok())
    }

    /// Reads and discards until the client closes, [`Self::BUDGET`] bytes or [`CLOSE_GRACE`].
    async fn drain(self) {
        use tokio::io::AsyncReadExt as _;
        let Some(fd) = self.0 else { return };
        let std = std::net::TcpStream::from(fd);
        if std.set_nonblocking(true).is_err() {
            return;
        }
        let Ok(mut tcp) = TcpStream::from_std(std) else {
            return;
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            let mut buf = vec![0u8; 16 * 1024];
            let mut read = 0;
            while read < Self::BUDGET {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
            }
        })
        .await;
    }
}

type Accepted = Option<
    Result<
        (
            http::Request<h2::RecvStream>,
            h2::server::SendResponse<Bytes>,
        ),
        h2::Error,
    >,
>;

/// `h2`'s accept, with write batching: the tap holds `h2`'s flushes back while requests keep
/// coming, and this forces the real flush at the moment the connection would wait.
async fn accept_batched<T>(h2c: &mut h2::server::Connection<T, Bytes>, tap: &TapHandle) -> Accepted
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    futures::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(next) = h2c.poll_accept(cx) {
            return std::task::Poll::Ready(next);
        }
        if !tap.has_unflushed() {
            return std::task::Poll::Pending;
        }
        tap.set_force_flush(true);
        let next = h2c.poll_accept(cx);
        tap.set_force_flush(false);
        next
    })
    .await
}

/// GOAWAY(NO_ERROR, last stream = highest opened) with `{"reason": …}`; the connection loop
/// closes once it is on the wire and in-flight streams are done.
fn send_goaway(conn: &Arc<Connection>, reason: &str) {
    if conn.going_away.swap(true, Ordering::AcqRel) {
        return;
    }
    let body = error_body(reason, None);
    let sent = conn.tap.goaway(conn.tap.highest_client_stream(), 0, &body);
    let conn = conn.clone();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(IO_DEADLINE, sent).await;
        conn.goaway_sent.notify_one();
    });
}

/// Answers a connection APNs will not serve: SETTINGS, then GOAWAY(last stream 0, NO_ERROR,
/// `{"reason": …}`), then close, as Apple does for BadCertificateEnvironment.
async fn refuse_connection(tls: &mut tokio_rustls::server::TlsStream<TcpStream>, reason: Reason) {
    let mut out = frame_tap::frame(frame_tap::SETTINGS, 0, 0, &[]);
    out.extend(frame_tap::goaway(0, 0, &error_body(reason.as_str(), None)));
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
    Reset(Cow<'static, str>),
    Drop,
}

async fn read_body(body: &mut h2::RecvStream) -> Result<(Bytes, bool), h2::Error> {
    let mut first: Option<Bytes> = None;
    let mut more: Option<BytesMut> = None;
    let mut total = 0usize;
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        total += chunk.len();
        if total > BODY_READ_LIMIT {
            return Ok((Bytes::new(), true));
        }
        match (&mut first, &mut more) {
            (None, _) => first = Some(chunk),
            (Some(f), None) => {
                let mut m = BytesMut::with_capacity(f.len() + chunk.len());
                m.extend_from_slice(f);
                m.extend_from_slice(&chunk);
                more = Some(m);
            }
            (Some(_), Some(m)) => m.extend_from_slice(&chunk),
        }
    }
    Ok((
        more.map(BytesMut::freeze).or(first).unwrap_or_default(),
        false,
    ))
}

/// A response header value that never repeats (HPACK: literal, never indexed). An invalid value
/// (not possible for the UUIDs sent here) becomes empty rather than failing the response.
fn unique_value(v: &str) -> http::HeaderValue {
    let mut value = http::HeaderValue::from_str(v).unwrap_or(http::HeaderValue::from_static(""));
    value.set_sensitive(true);
    value
}

/// Decrements the connection's in-flight count however a request ends.
struct InFlight(Arc<Connection>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn request(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) {
    let _in_flight = InFlight(conn.clone());
    let (shared, conn) = (&*shared, &conn);
    let (parts, mut body) = req.into_parts();
    let body_result = {
        let reading = std::pin::pin!(read_body(&mut body));
        conn.bodies.within(IO_DEADLINE, reading).await
    };
    let (payload, too_large) = match body_result {
        Some(Ok(b)) => b,
        Some(Err(e)) => {
            tracing::debug!(conn = conn.id, "request body failed: {e}");
            return;
        }
        None => {
            respond.send_reset(h2::Reason::CANCEL);
            return;
        }
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    let method = parts.method.as_str();
    let pairs = || {
        [
            (&b":method"[..], method.as_bytes()),
            (&b":path"[..], path.as_bytes()),
        ]
        .into_iter()
        .chain(
            parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes())),
        )
    };
    let headers = RequestHeaders::collect(pairs());
    let now = now_ms();
    let validation = {
        let mut auth = conn.auth.lock().unwrap_or_else(|e| e.into_inner());
        validate::validate(
            &shared.providers,
            &mut auth,
            &headers,
            &payload,
            (now / 1000) as i64,
        )
    };
    if validation.first_valid_token && shared.streams_before_auth != shared.max_concurrent_streams {
        conn.tap.limit_streams(None);
        drop(
            conn.tap
                .set_max_concurrent_streams(shared.max_concurrent_streams),
        );
    }
    let apns_id = validation.apns_id.clone();
    let finish = match (&validation.outcome, too_large) {
        (Err(r), _) => Finish::Respond(Answer::reject(r.reason, r.detail)),
        (Ok(_), true) => {
            Finish::Respond(Answer::reject(Reason::PayloadTooLarge, "body over 64 KiB"))
        }
        (Ok(push), false) => {
            let mut fault = shared.faults.take(&push.token, &push.topic);
            if let Some(FaultAction::DelayMs(ms)) = fault {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                fault = None;
            }
            match fault {
                Some(FaultAction::Reject { status, reason }) => Finish::Respond(Answer {
                    status,
                    timestamp_ms: (status == 410).then(now_ms),
                    reason: Some(Cow::Owned(reason)),
                    delivery: None,
                    detail: Some(Cow::Borrowed("injected fault")),
                }),
                Some(FaultAction::Goaway { reason }) => Finish::Reset(Cow::Owned(reason)),
                Some(FaultAction::DropConnection) => Finish::Drop,
                Some(FaultAction::DelayMs(_)) | None => {
                    match shared
                        .devices
                        .accept(push, conn.env, &apns_id, &payload, now)
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
            }
        }
    };

    let recorder = validation
        .token
        .as_deref()
        .and_then(|t| shared.devices.recorder(t));
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
    let body_bytes = reason
        .as_deref()
        .filter(|_| status != 200)
        .map(|r| error_body(r, timestamp_ms));
    if let Some(rec) = &recorder {
        let mut raw = format!(":method: {method}\n:path: {path}\n");
        for (n, v) in &parts.headers {
            raw.push_str(&format!("{n}: {}\n", String::from_utf8_lossy(v.as_bytes())));
        }
        raw.push('\n');
        raw.push_str(&String::from_utf8_lossy(&payload));
        let push_type = headers
            .push_type
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        rec.received(
            "gateway",
            "h2",
            format!("POST {path} ({push_type})"),
            Bytes::from(raw),
        );
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
            Bytes::from(body_bytes.clone().unwrap_or_default()),
        );
    }
    shared.log.push(PushRecord {
        seq: 0,
        time_ms: now,
        connection_id: conn.id,
        auth: validation.identity,
        environment: conn.env,
        headers: RecordedHeaders::copy_of(pairs()),
        token: validation.token,
        // A copy: `h2`'s DATA bytes share its receive buffer, which a logged slice would pin.
        payload: Bytes::copy_from_slice(&payload),
        status,
        reason: reason.map(Cow::into_owned),
        apns_id: apns_id.clone(),
        timestamp_ms,
        delivery,
        detail: detail.map(Cow::into_owned),
    });

    match finish {
        Finish::Drop => {
            conn.doomed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(respond);
            conn.drop_now.notify_one();
        }
        Finish::Reset(reason) => {
            respond.send_reset(h2::Reason::REFUSED_STREAM);
            send_goaway(conn, &reason);
        }
        Finish::Respond(_) => {
            // Unique per response: sent as HPACK literals never indexed, so neither side's
            // dynamic table churns with values that never repeat.
            let mut builder = http::Response::builder()
                .status(status)
                .header("apns-id", unique_value(apns_id.as_str()));
            if conn.env == Environment::Sandbox {
                builder =
                    builder.header("apns-unique-id", unique_value(&crate::ids::random_uuid()));
            }
            if body_bytes.is_some() {
                builder = builder.header("content-type", "application/json");
            }
            let Ok(response) = builder.body(()) else {
                respond.send_reset(h2::Reason::INTERNAL_ERROR);
                return;
            };
            match body_bytes {
                None => {
                    let _ = respond.send_response(response, true);
                }
                Some(b) => {
                    if let Ok(mut stream) = respond.send_response(response, false) {
                        let _ = stream.send_data(Bytes::from(b), true);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_arriving_is_given_up_at_the_first_tick_past_its_deadline() {
        let clock = Arc::new(BodyClock::default());
        let ticks = clock.clone();
        tokio::spawn(async move { ticks.keep_time().await });
        let started = tokio::time::Instant::now();
        let never = std::pin::pin!(std::future::pending::<()>());
        let gave_up = tokio::time::timeout(IO_DEADLINE * 3, clock.within(IO_DEADLINE, never)).await;
        assert_eq!(gave_up, Ok(None), "never gave up");
        let waited = started.elapsed();
        assert!(
            waited >= IO_DEADLINE && waited <= IO_DEADLINE + BODY_CHECK,
            "gave up after {waited:?}"
        );
        let ready = std::pin::pin!(async { 7 });
        assert_eq!(clock.within(IO_DEADLINE, ready).await, Some(7));
    }
}
