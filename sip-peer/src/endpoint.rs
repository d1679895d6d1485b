//! The endpoint: one user agent's socket(s), its RFC 3261 transaction layer, and the dispatch of
//! every message that arrives.
//!
//! One endpoint owns one UDP socket, or one TCP/TLS listener plus its connections (reused per
//! peer address; [`Endpoint::close_connections`] forces new ones). Received bytes are parsed and
//! dispatched synchronously on the receive task: responses go to their client transaction,
//! retransmitted requests are answered from the server transaction's last response, CANCEL is
//! answered 200 + 487, in-dialog requests go to the dialog's call, and new requests go to the
//! role's handler. Client transactions over UDP run one small task each (Timers A/B/E/F);
//! final responses to INVITE over UDP are retransmitted by a task until the ACK (Timers G/H).

use crate::dialog::Dialog;
use crate::error::SipError;
use crate::headers::NameAddr;
use crate::message::{Limits, Message, ParseError};
use crate::transport::{StreamFramer, TlsConfig, Transport};
use crate::uri::{host_of, SipUri};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use timeline::Recorder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// RFC 3261 timer base values. Tests shrink T1 to run fast.
#[derive(Clone, Copy, Debug)]
pub struct Timers {
    /// RTT estimate (500 ms by default).
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses (4 s).
    pub t2: Duration,
    /// How long the network keeps messages (5 s).
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64·T1: Timers B, F, H, J and the 2xx retransmission limit.
    pub fn transaction_timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// How one endpoint is set up.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// UDP, TCP or TLS.
    pub transport: Transport,
    /// Where to bind (port 0 picks a free port; IPv4 or IPv6).
    pub bind: SocketAddr,
    /// TLS material (required for TLS: `client` to connect, `server` to accept).
    pub tls: Option<TlsConfig>,
    /// Transaction timers.
    pub timers: Timers,
    /// Parser limits for received messages.
    pub limits: Limits,
    /// `User-Agent` header value written in requests, if any.
    pub user_agent: Option<String>,
}

impl EndpointConfig {
    /// A UDP endpoint bound to `bind`.
    pub fn udp(bind: SocketAddr) -> EndpointConfig {
        EndpointConfig {
            transport: Transport::Udp,
            bind,
            tls: None,
            timers: Timers::default(),
            limits: Limits::default(),
            user_agent: Some("pushbench-sip-peer".into()),
        }
    }

    /// A TCP endpoint listening on `bind`.
    pub fn tcp(bind: SocketAddr) -> EndpointConfig {
        EndpointConfig {
            transport: Transport::Tcp,
            ..Self::udp(bind)
        }
    }

    /// A TLS endpoint listening on `bind` (when `tls.server` is set) and connecting with
    /// `tls.client`.
    pub fn tls(bind: SocketAddr, tls: TlsConfig) -> EndpointConfig {
        EndpointConfig {
            transport: Transport::Tls,
            tls: Some(tls),
            ..Self::udp(bind)
        }
    }

    /// The same configuration with another T1 (T2 and T4 scaled alike).
    pub fn with_t1(mut self, t1: Duration) -> EndpointConfig {
        let scale = t1.as_secs_f64() / self.timers.t1.as_secs_f64();
        self.timers = Timers {
            t1,
            t2: self.timers.t2.mul_f64(scale),
            t4: self.timers.t4.mul_f64(scale),
        };
        self
    }
}

/// Flight mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offline {
    /// Normal operation.
    Online,
    /// Drop everything received, answer nothing (the connection stays up).
    Silent,
    /// Close every connection and drop everything received.
    Disconnected,
}

/// Something that arrived for a call or a pending request.
#[derive(Debug)]
pub(crate) enum Event {
    /// A response to one of the call's requests (boxed: channel blocks stay small).
    Response(Box<Message>),
    /// A request inside the dialog (already answered by the endpoint when it needs an answer).
    Request(Box<Message>),
    /// A client transaction ended without a final response.
    TxTimeout { request: String, timer: char },
    /// Sending failed.
    Transport(String),
}

/// A request received from the peer, with what is needed to answer it.
#[derive(Clone, Debug)]
pub struct IncomingRequest {
    /// The request.
    pub message: Message,
    /// Where it came from (responses go back there).
    pub source: SocketAddr,
    pub(crate) key: String,
}

pub(crate) type Handler = Box<dyn Fn(&Arc<Core>, IncomingRequest) + Send + Sync>;

struct AckSignal {
    done: AtomicBool,
    notify: Notify,
}

impl AckSignal {
    fn new() -> Arc<AckSignal> {
        Arc::new(AckSignal {
            done: AtomicBool::new(false),
            notify: Notify::new(),
        })
    }
    fn fire(&self) {
        self.done.store(true, Ordering::Release);
        self.notify.notify_one();
    }
}

struct ServerTxn {
    final_code: Option<u16>,
    last: Option<(Bytes, String)>,
    source: SocketAddr,
    /// The INVITE's bytes (a cheap shared copy), parsed again to build a 487 on CANCEL.
    invite: Option<Bytes>,
    /// The INVITE's `call-id|cseq`, the key of its 2xx ACK signal.
    dialog_key: Option<String>,
    to_tag: Option<String>,
    ack: Arc<AckSignal>,
}

#[derive(Default)]
struct ServerTable {
    map: HashMap<String, ServerTxn>,
    expiry: VecDeque<(Instant, String)>,
    /// `call-id|cseq` → the ACK signal of a 2xx being retransmitted.
    ack2xx: HashMap<String, Arc<AckSignal>>,
}

pub(crate) struct CallRoute {
    pub events: mpsc::UnboundedSender<Event>,
    /// The ACKs sent for this call's INVITE, one per To-tag (forked 2xx each get their own),
    /// re-sent on a retransmitted final response.
    pub acks: Vec<SentAck>,
    /// The INVITE as last sent (caller side) when 2xx are ACKed automatically, to ACK a 2xx
    /// from another fork.
    pub invite: Option<(Message, SocketAddr)>,
}

/// An ACK already sent, kept for retransmitted final responses.
#[derive(Clone, Debug)]
pub(crate) struct SentAck {
    pub to_tag: Option<String>,
    pub bytes: Bytes,
    pub dest: SocketAddr,
    pub summary: String,
}

/// What a client transaction task receives.
enum TxInput {
    Response(Box<Message>),
    TransportFailed(String),
}

struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<Bytes>,
    abort: Option<AbortHandle>,
}

/// The last unparseable message: from, error, bytes.
type Malformed = (String, ParseError, Bytes);

/// The shared state behind an [`Endpoint`].
pub(crate) struct Core {
    pub cfg: EndpointConfig,
    pub local: SocketAddr,
    udp: Option<Arc<UdpSocket>>,
    conns: Mutex<HashMap<SocketAddr, Conn>>,
    pub recorder: Recorder,
    pub peer: String,
    client_txns: Mutex<HashMap<String, (SocketAddr, mpsc::UnboundedSender<TxInput>)>>,
    server: Mutex<ServerTable>,
    pub routes: Mutex<HashMap<String, CallRoute>>,
    pub handler: OnceLock<Handler>,
    offline: AtomicU8,
    next_id: AtomicU64,
    tasks: Mutex<Vec<AbortHandle>>,
    /// How many malformed messages arrived, and the last one (from, error, bytes).
    malformed: Mutex<(u64, Option<Malformed>)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A random lower-case hex string of 16 characters.
pub(crate) fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The key of a transaction: branch and method (ACK maps to INVITE).
fn txn_key(branch: &str, method: &str) -> String {
    let method = if method == "ACK" { "INVITE" } else { method };
    format!("{branch}|{method}")
}

/// One user agent's transport and transaction layer. Cheap to clone; dropping the last clone
/// stops its tasks and closes its sockets.
#[derive(Clone)]
pub struct Endpoint {
    owner: Arc<Owner>,
}

struct Owner {
    core: Arc<Core>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        for t in lock(&self.core.tasks).drain(..) {
            t.abort();
        }
        for (_, c) in lock(&self.core.conns).drain() {
            if let Some(a) = c.abort {
                a.abort();
            }
        }
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("transport", &self.core().cfg.transport)
            .field("local", &self.core().local)
            .finish()
    }
}

impl Endpoint {
    /// Binds the socket (UDP) or the listener (TCP/TLS) and starts receiving. `recorder` records
    /// every message; `peer` labels the other end in the timeline ("gateway").
    pub async fn bind(
        cfg: EndpointConfig,
        recorder: Recorder,
        peer: impl Into<String>,
    ) -> Result<Endpoint, SipError> {
        if cfg.transport == Transport::Tls && cfg.tls.is_none() {
            return Err(SipError::Config("a TLS endpoint needs a TlsConfig".into()));
        }
        let (udp, listener, local) = match cfg.transport {
            Transport::Udp => {
                let s = bind_udp(cfg.bind)?;
                let local = s.local_addr()?;
                (Some(Arc::new(s)), None, local)
            }
            Transport::Tcp | Transport::Tls => {
                let l = TcpListener::bind(cfg.bind).await?;
                let local = l.local_addr()?;
                (None, Some(l), local)
            }
        };
        let core = Arc::new(Core {
            cfg,
            local,
            udp,
            conns: Mutex::new(HashMap::new()),
            recorder,
            peer: peer.into(),
            client_txns: Mutex::new(HashMap::new()),
            server: Mutex::new(ServerTable::default()),
            routes: Mutex::new(HashMap::new()),
            handler: OnceLock::new(),
            offline: AtomicU8::new(0),
            next_id: AtomicU64::new(1),
            tasks: Mutex::new(Vec::new()),
            malformed: Mutex::new((0, None)),
        });
        if let Some(sock) = core.udp.clone() {
            let c = core.clone();
            let h = tokio::spawn(async move { c.udp_loop(sock).await });
            lock(&core.tasks).push(h.abort_handle());
        }
        if let Some(l) = listener {
            let c = core.clone();
            let h = tokio::spawn(async move { c.accept_loop(l).await });
            lock(&core.tasks).push(h.abort_handle());
        }
        Ok(Endpoint {
            owner: Arc::new(Owner { core }),
        })
    }

    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.owner.core
    }

    /// The bound address (the listener for TCP/TLS).
    pub fn local_addr(&self) -> SocketAddr {
        self.core().local
    }

    /// The transport.
    pub fn transport(&self) -> Transport {
        self.core().cfg.transport
    }

    /// This endpoint's contact URI for `user` (`;transport=` added for TCP/TLS).
    pub fn contact_uri(&self, user: Option<&str>) -> SipUri {
        self.core().contact_uri(user)
    }

    /// Sends bytes exactly as given (for deliberately odd messages). Recorded with `summary`.
    pub fn send_raw(
        &self,
        dest: SocketAddr,
        bytes: impl Into<Bytes>,
        summary: &str,
    ) -> Result<(), SipError> {
        self.core().send(dest, bytes.into(), summary)
    }

    /// Closes every TCP/TLS connection; the next message opens a new one (a waking iPhone).
    pub fn close_connections(&self) {
        self.core().close_connections();
    }

    /// Number of open TCP/TLS connections.
    pub fn connection_count(&self) -> usize {
        lock(&self.core().conns).len()
    }

    /// Switches flight mode.
    pub fn set_offline(&self, mode: Offline) {
        self.core().set_offline(mode);
    }

    /// The current flight mode.
    pub fn offline(&self) -> Offline {
        self.core().offline()
    }
}

impl Core {
    /// The message's summary for the timeline, or nothing when the recorder is off (load runs).
    pub fn summary_of(&self, m: &Message) -> String {
        if self.recorder.timeline().is_some() {
            m.summary()
        } else {
            String::new()
        }
    }

    pub fn transport_name(&self) -> &'static str {
        self.cfg.transport.as_str()
    }

    pub fn contact_uri(&self, user: Option<&str>) -> SipUri {
        let mut u = SipUri::from_addr(user, self.local);
        if self.cfg.transport.is_stream() {
            u.set_param("transport", Some(self.cfg.transport.as_str()));
        }
        u
    }

    /// A fresh Via value with a new branch.
    pub fn new_via(&self) -> (String, String) {
        let branch = format!("z9hG4bK{}", random_hex());
        let via = format!(
            "SIP/2.0/{} {}:{};branch={};rport",
            self.cfg.transport.via_token(),
            host_of(self.local.ip()),
            self.local.port(),
            branch
        );
        (via, branch)
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn set_offline(&self, mode: Offline) {
        let v = match mode {
            Offline::Online => 0,
            Offline::Silent => 1,
            Offline::Disconnected => 2,
        };
        self.offline.store(v, Ordering::Release);
        self.recorder.note(format!("flight mode: {mode:?}"));
        if mode == Offline::Disconnected {
            self.close_connections();
        }
    }

    pub fn offline(&self) -> Offline {
        match self.offline.load(Ordering::Acquire) {
            0 => Offline::Online,
            1 => Offline::Silent,
            _ => Offline::Disconnected,
        }
    }

    pub fn close_connections(&self) {
        let conns: Vec<Conn> = lock(&self.conns).drain().map(|(_, c)| c).collect();
        if !conns.is_empty() {
            self.recorder.note(format!(
                "closed {} {} connection(s)",
                conns.len(),
                self.transport_name()
            ));
        }
        for c in conns {
            if let Some(a) = c.abort {
                a.abort();
            }
        }
    }

    // ---------------------------------------------------------------- sending

    /// Records and sends bytes to `dest`. Never blocks; stream connections are opened on demand.
    pub fn send(
        self: &Arc<Self>,
        dest: SocketAddr,
        bytes: Bytes,
        summary: &str,
    ) -> Result<(), SipError> {
        if self.offline() == Offline::Disconnected {
            self.recorder.note(format!("offline: not sent: {summary}"));
            return Err(SipError::Transport("offline (flight mode)".into()));
        }
        self.recorder
            .sent(&self.peer, self.transport_name(), summary, bytes.clone());
        match &self.udp {
            Some(sock) => match sock.try_send_to(&bytes, dest) {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let sock = sock.clone();
                    tokio::spawn(async move {
                        let _ = sock.send_to(&bytes, dest).await;
                    });
                    Ok(())
                }
                Err(e) => Err(SipError::Transport(format!("send to {dest}: {e}"))),
            },
            None => {
                let mut conns = lock(&self.conns);
                if let Some(c) = conns.get(&dest) {
                    match c.tx.send(bytes) {
                        Ok(()) => return Ok(()),
                        Err(e) => {
                            conns.remove(&dest);
                            return self.connect_and_send(&mut conns, dest, e.0);
                        }
                    }
                }
                self.connect_and_send(&mut conns, dest, bytes)
            }
        }
    }

    fn connect_and_send(
        self: &Arc<Self>,
        conns: &mut HashMap<SocketAddr, Conn>,
        dest: SocketAddr,
        bytes: Bytes,
    ) -> Result<(), SipError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(bytes);
        let id = self.next_id();
        let core = self.clone();
        let h = tokio::spawn(async move {
            let stream = match tokio::time::timeout(
                core.cfg.timers.transaction_timeout(),
                TcpStream::connect(dest),
            )
            .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return core.connection_failed(dest, id, e.to_string()),
                Err(_) => return core.connection_failed(dest, id, "connect timed out".into()),
            };
            let _ = stream.set_nodelay(true);
            if core.cfg.transport == Transport::Tls {
                let tls = core
                    .cfg
                    .tls
                    .clone()
                    .and_then(|t| t.client.map(|c| (c, t.server_name)));
                let Some((client, name)) = tls else {
                    return core.connection_failed(dest, id, "no TLS client configuration".into());
                };
                let name = match rustls::pki_types::ServerName::try_from(name.clone()) {
                    Ok(n) => n,
                    Err(e) => {
                        return core.connection_failed(
                            dest,
                            id,
                            format!("server name {name:?}: {e}"),
                        )
                    }
                };
                match tokio_rustls::TlsConnector::from(client)
                    .connect(name, stream)
                    .await
                {
                    Ok(s) => core.run_conn(s, dest, id, rx).await,
                    Err(e) => core.connection_failed(dest, id, format!("TLS handshake: {e}")),
                }
            } else {
                core.run_conn(stream, dest, id, rx).await
            }
        });
        conns.insert(
            dest,
            Conn {
                id,
                tx,
                abort: Some(h.abort_handle()),
            },
        );
        Ok(())
    }

    fn connection_failed(&self, dest: SocketAddr, id: u64, why: String) {
        self.recorder.note(format!(
            "{} connection to {dest} failed: {why}",
            self.transport_name()
        ));
        self.remove_conn(dest, id);
        for (to, tx) in lock(&self.client_txns).values() {
            if *to == dest {
                let _ = tx.send(TxInput::TransportFailed(why.clone()));
            }
        }
    }

    fn remove_conn(&self, peer: SocketAddr, id: u64) {
        let mut conns = lock(&self.conns);
        if conns.get(&peer).map(|c| c.id) == Some(id) {
            conns.remove(&peer);
        }
    }

    // ---------------------------------------------------------------- receiving

    async fn udp_loop(self: Arc<Self>, sock: Arc<UdpSocket>) {
        // One receive buffer per worker thread, not per socket: 10 000 idle accounts cost no
        // 64 KiB each.
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 65536]);
        }
        loop {
            if sock.readable().await.is_err() {
                continue;
            }
            let got = BUF.with(|b| {
                let mut b = b.borrow_mut();
                sock.try_recv_from(&mut b)
                    .map(|(n, from)| (Bytes::copy_from_slice(&b[..n]), from))
            });
            let (raw, from) = match got {
                Ok(x) => x,
                // WouldBlock (spurious readiness) or ICMP errors: keep going.
                Err(_) => continue,
            };
            if raw.iter().all(|b| *b == b'\r' || *b == b'\n') {
                continue; // keep-alive
            }
            match Message::parse_with(&raw, &self.cfg.limits) {
                Ok(m) => self.on_message(m, raw, from),
                Err(e) => self.on_malformed(from, e, raw),
            }
        }
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        let acceptor = self
            .cfg
            .tls
            .as_ref()
            .and_then(|t| t.server.clone())
            .map(tokio_rustls::TlsAcceptor::from);
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (tx, rx) = mpsc::unbounded_channel();
            let id = self.next_id();
            let core = self.clone();
            let transport = self.cfg.transport;
            let acceptor = acceptor.clone();
            let h = tokio::spawn(async move {
                match (transport, acceptor) {
                    (Transport::Tls, Some(acc)) => match acc.accept(stream).await {
                        Ok(s) => core.run_conn(s, peer, id, rx).await,
                        Err(e) => core.connection_failed(peer, id, format!("TLS accept: {e}")),
                    },
                    (Transport::Tls, None) => {
                        core.connection_failed(peer, id, "no TLS server identity configured".into())
                    }
                    _ => core.run_conn(stream, peer, id, rx).await,
                }
            });
            lock(&self.conns).insert(
                peer,
                Conn {
                    id,
                    tx,
                    abort: Some(h.abort_handle()),
                },
            );
        }
    }

    async fn run_conn<S: AsyncRead + AsyncWrite + Unpin>(
        self: Arc<Self>,
        stream: S,
        peer: SocketAddr,
        id: u64,
        mut rx: mpsc::UnboundedReceiver<Bytes>,
    ) {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut framer = StreamFramer::new(self.cfg.limits);
        'conn: loop {
            tokio::select! {
                r = rd.read_buf(framer.buffer()) => {
                    match r {
                        Ok(0) | Err(_) => break 'conn,
                        Ok(_) => loop {
                            match framer.next() {
                                Ok(Some(f)) => self.on_message(f.message, f.raw, peer),
                                Ok(None) => break,
                                Err(e) => {
                                    self.on_malformed(peer, e.error, e.bytes);
                                    break 'conn;
                                }
                            }
                        },
                    }
                }
                b = rx.recv() => match b {
                    Some(b) => if wr.write_all(&b).await.is_err() { break 'conn },
                    None => break 'conn,
                },
            }
        }
        let _ = wr.shutdown().await;
        self.recorder.note(format!(
            "{} connection with {peer} closed",
            self.transport_name()
        ));
        self.remove_conn(peer, id);
    }

    fn on_malformed(&self, from: SocketAddr, error: ParseError, bytes: Bytes) {
        if self.offline() != Offline::Online {
            return;
        }
        tracing::debug!("malformed SIP from {from}: {error}");
        self.recorder.received(
            &self.peer,
            self.transport_name(),
            format!("malformed: {error}"),
            bytes.clone(),
        );
        let mut m = lock(&self.malformed);
        m.0 += 1;
        m.1 = Some((from.to_string(), error, bytes));
    }

    /// A counter to pass to [`Core::timeout_error`] later.
    pub(crate) fn malformed_mark(&self) -> u64 {
        lock(&self.malformed).0
    }

    /// The error for a step that timed out: [`SipError::Malformed`] (with the offending bytes)
    /// when unparseable bytes arrived since `mark` — most likely what was awaited — else
    /// [`SipError::Timeout`].
    pub(crate) fn timeout_error(
        &self,
        mark: u64,
        waiting_for: String,
        after: Duration,
        received: Vec<String>,
    ) -> SipError {
        let m = lock(&self.malformed);
        match &m.1 {
            Some((from, error, bytes)) if m.0 > mark => SipError::Malformed {
                from: from.clone(),
                error: error.clone(),
                bytes: bytes.clone(),
            },
            _ => SipError::Timeout {
                waiting_for,
                after,
                received,
            },
        }
    }

    pub(crate) fn on_message(self: &Arc<Self>, msg: Message, raw: Bytes, from: SocketAddr) {
        if self.offline() != Offline::Online {
            self.recorder
                .note(format!("offline: dropped {}", msg.summary()));
            return;
        }
        if self.recorder.timeline().is_some() {
            self.recorder.received(
                &self.peer,
                self.transport_name(),
                msg.summary(),
                raw.clone(),
            );
        }
        if msg.is_request() {
            self.on_request(msg, raw, from);
        } else {
            self.on_response(msg);
        }
    }

    fn on_response(self: &Arc<Self>, msg: Message) {
        let (Ok(via), Ok(cseq)) = (msg.top_via(), msg.cseq()) else {
            self.recorder
                .note("response without a usable Via/CSeq: ignored");
            return;
        };
        let key = txn_key(via.branch().unwrap_or(""), &cseq.method);
        if let Some((_, tx)) = lock(&self.client_txns).get(&key) {
            let _ = tx.send(TxInput::Response(Box::new(msg)));
            return;
        }
        // A final response after the transaction ended: a retransmission (re-send our ACK) or a
        // 2xx from another fork (ACK it in its own dialog, and show it to the call).
        let Ok(call_id) = msg.call_id().map(str::to_owned) else {
            return;
        };
        let status = msg.status().unwrap_or(0);
        let to_tag = msg.to().ok().and_then(|t| t.tag().map(str::to_owned));
        let (resend, fork_invite) = {
            let routes = lock(&self.routes);
            let Some(route) = routes.get(&call_id) else {
                drop(routes);
                self.recorder
                    .note(format!("stray response ignored: {}", msg.summary()));
                return;
            };
            if cseq.method != "INVITE" || status < 200 {
                let _ = route.events.send(Event::Response(Box::new(msg)));
                return;
            }
            let resend = route.acks.iter().find(|a| a.to_tag == to_tag).cloned();
            let fork = match (&resend, &route.invite) {
                (None, Some(inv)) if (200..300).contains(&status) => Some(inv.clone()),
                _ => None,
            };
            (resend, fork)
        };
        if let Some(a) = resend {
            let _ = self.send(a.dest, a.bytes, &a.summary);
            return;
        }
        if let Some((invite, dest)) = fork_invite {
            self.ack_2xx(&invite, &msg, dest);
        }
        if let Some(route) = lock(&self.routes).get(&call_id) {
            let _ = route.events.send(Event::Response(Box::new(msg)));
        }
    }

    fn on_request(self: &Arc<Self>, msg: Message, raw: Bytes, from: SocketAddr) {
        let (Ok(via), Ok(cseq)) = (msg.top_via(), msg.cseq()) else {
            self.recorder
                .note("request without a usable Via/CSeq: ignored");
            return;
        };
        let branch = via.branch().unwrap_or("").to_owned();
        let method = msg.method().unwrap_or("").to_owned();
        let call_id = msg.call_id().unwrap_or("").to_owned();
        if method == "ACK" {
            let key = txn_key(&branch, "INVITE");
            {
                let table = lock(&self.server);
                if let Some(t) = table.map.get(&key) {
                    if t.final_code.is_some_and(|c| c >= 300) {
                        // ACK for a non-2xx: ends the transaction's retransmissions; the call
                        // still sees it below.
                        t.ack.fire();
                    }
                }
                if let Some(sig) = table.ack2xx.get(&format!("{call_id}|{}", cseq.seq)) {
                    sig.fire();
                }
            }
            if let Some(route) = lock(&self.routes).get(&call_id) {
                let _ = route.events.send(Event::Request(Box::new(msg)));
            }
            return;
        }
        let key = txn_key(&branch, &method);
        // Retransmission: answer from the transaction.
        {
            let mut table = lock(&self.server);
            if let Some(t) = table.map.get(&key) {
                if let Some((bytes, summary)) = t.last.clone() {
                    let src = t.source;
                    drop(table);
                    let _ = self.send(src, bytes, &summary);
                }
                return;
            }
            let now = Instant::now();
            let ended = Self::sweep(&mut table, now, self.cfg.timers.transaction_timeout());
            if !ended.is_empty() {
                let mut routes = lock(&self.routes);
                for cid in ended {
                    routes.remove(&cid);
                }
            }
            table.map.insert(
                key.clone(),
                ServerTxn {
                    final_code: None,
                    last: None,
                    source: from,
                    invite: (method == "INVITE").then(|| raw.clone()),
                    dialog_key: (method == "INVITE").then(|| format!("{call_id}|{}", cseq.seq)),
                    to_tag: None,
                    ack: AckSignal::new(),
                },
            );
            table
                .expiry
                .push_back((now + self.cfg.timers.transaction_timeout(), key.clone()));
        }
        let req = IncomingRequest {
            message: msg,
            source: from,
            key,
        };
        if method == "CANCEL" {
            self.on_cancel(req, &branch, &call_id);
            return;
        }
        let has_to_tag = req.message.header("To").is_some_and(has_tag_param);
        if has_to_tag {
            let sender = lock(&self.routes).get(&call_id).map(|r| r.events.clone());
            match sender {
                Some(events) => {
                    let code = if method == "INVITE" { 488 } else { 200 };
                    let _ = self.respond_with(&req, code, None, None);
                    let _ = events.send(Event::Request(Box::new(req.message)));
                    if method == "BYE" {
                        lock(&self.routes).remove(&call_id);
                    }
                }
                None => {
                    let _ = self.respond_with(&req, 481, None, None);
                }
            }
            return;
        }
        match self.handler.get() {
            Some(h) => h(self, req),
            None => {
                let code = match method.as_str() {
                    "OPTIONS" | "MESSAGE" | "NOTIFY" => 200,
                    _ => 405,
                };
                let _ = self.respond_with(&req, code, None, None);
            }
        }
    }

    fn on_cancel(self: &Arc<Self>, req: IncomingRequest, branch: &str, call_id: &str) {
        let invite_key = txn_key(branch, "INVITE");
        let pending = {
            let table = lock(&self.server);
            table.map.get(&invite_key).map(|t| {
                (
                    t.final_code.is_none(),
                    t.invite.clone(),
                    t.to_tag.clone(),
                    t.source,
                )
            })
        };
        let Some((unanswered, invite, to_tag, source)) = pending else {
            let _ = self.respond_with(&req, 481, None, None);
            return;
        };
        let _ = self.respond_with(&req, 200, None, to_tag.as_deref());
        if unanswered {
            if let Some(invite) =
                invite.and_then(|raw| Message::parse_with(&raw, &self.cfg.limits).ok())
            {
                let inv = IncomingRequest {
                    message: invite,
                    source,
                    key: invite_key,
                };
                let tag = to_tag.unwrap_or_else(random_hex);
                let _ = self.respond_with(&inv, 487, None, Some(&tag));
            }
        }
        if let Some(route) = lock(&self.routes).get(call_id) {
            let _ = route.events.send(Event::Request(Box::new(req.message)));
        }
    }

    /// Drops expired server transactions; returns the Call-IDs of INVITEs that ended without a
    /// 2xx (their dialog routes can go).
    fn sweep(table: &mut ServerTable, now: Instant, linger: Duration) -> Vec<String> {
        let mut ended = Vec::new();
        while let Some((at, _)) = table.expiry.front() {
            if *at > now {
                break;
            }
            let Some((_, key)) = table.expiry.pop_front() else {
                break;
            };
            let keep = table
                .map
                .get(&key)
                .is_some_and(|t| t.invite.is_some() && t.final_code.is_none());
            if keep {
                // An INVITE still waiting for its answer lives on.
                table.expiry.push_back((now + linger, key));
                continue;
            }
            if let Some(t) = table.map.remove(&key) {
                if let Some(dk) = &t.dialog_key {
                    table.ack2xx.remove(dk);
                    if !t.final_code.is_some_and(|c| (200..300).contains(&c)) {
                        if let Some((cid, _)) = dk.rsplit_once('|') {
                            ended.push(cid.to_owned());
                        }
                    }
                }
            }
        }
        ended
    }

    // ---------------------------------------------------------------- responding

    /// Sends a response in the request's server transaction. A second final response is an
    /// error. For INVITE over UDP, final responses are retransmitted until the ACK.
    pub(crate) fn respond(
        self: &Arc<Self>,
        req: &IncomingRequest,
        resp: Message,
    ) -> Result<(), SipError> {
        let code = resp.status().unwrap_or(0);
        let bytes = resp.to_bytes();
        let summary = self.summary_of(&resp);
        let is_invite = req.message.method() == Some("INVITE");
        let ack = {
            let mut table = lock(&self.server);
            let Some(t) = table.map.get_mut(&req.key) else {
                return Err(SipError::State(format!(
                    "the transaction of {} is gone",
                    req.message.summary()
                )));
            };
            if let Some(done) = t.final_code {
                return Err(SipError::State(format!(
                    "{} was already answered {done}",
                    req.message.summary()
                )));
            }
            if code >= 200 {
                t.final_code = Some(code);
            }
            if t.to_tag.is_none() {
                if let Ok(to) = resp.to() {
                    t.to_tag = to.tag().map(str::to_owned);
                }
            }
            t.last = Some((bytes.clone(), summary.clone()));
            let ack = t.ack.clone();
            if is_invite && (200..300).contains(&code) {
                if let (Ok(cid), Ok(cseq)) = (req.message.call_id(), req.message.cseq()) {
                    table
                        .ack2xx
                        .insert(format!("{cid}|{}", cseq.seq), ack.clone());
                }
            }
            ack
        };
        let dest = self.response_destination(req);
        self.send(dest, bytes.clone(), &summary)?;
        if is_invite && code >= 200 && !self.cfg.transport.is_stream() {
            let core = self.clone();
            tokio::spawn(async move {
                let t = core.cfg.timers;
                let end = Instant::now() + t.transaction_timeout();
                let mut interval = t.t1;
                loop {
                    tokio::select! {
                        _ = ack.notify.notified() => break,
                        _ = tokio::time::sleep(interval) => {
                            if ack.done.load(Ordering::Acquire) || Instant::now() >= end { break }
                            if core.offline() != Offline::Online { continue }
                            let _ = core.send(dest, bytes.clone(), &summary);
                            interval = (interval * 2).min(t.t2);
                        }
                    }
                }
            });
        }
        Ok(())
    }

    /// Where a response to `req` goes: its source, or over a stream transport whose connection is
    /// gone, the address RFC 3261 §18.2.2 names: the top Via's `received` IP (else its sent-by
    /// host, when that is an IP) and its sent-by port. A proxy's connection may carry its request
    /// from an ephemeral port, which nobody listens on once that connection is closed.
    fn response_destination(&self, req: &IncomingRequest) -> SocketAddr {
        if !self.cfg.transport.is_stream() || lock(&self.conns).contains_key(&req.source) {
            return req.source;
        }
        let Ok(via) = req.message.top_via() else {
            return req.source;
        };
        let host = via.param("received").unwrap_or(&via.host);
        let ip = host.trim_start_matches('[').trim_end_matches(']').parse();
        let default_port = if self.cfg.transport == Transport::Tls {
            5061
        } else {
            5060
        };
        match ip {
            Ok(ip) => SocketAddr::new(ip, via.port.unwrap_or(default_port)),
            Err(_) => req.source,
        }
    }

    /// Builds and sends a response with `code` (standard reason), optional Contact, and To-tag.
    pub(crate) fn respond_with(
        self: &Arc<Self>,
        req: &IncomingRequest,
        code: u16,
        contact: Option<&SipUri>,
        to_tag: Option<&str>,
    ) -> Result<(), SipError> {
        let mut resp = build_response(&req.message, code, reason_phrase(code), to_tag);
        if let Some(c) = contact {
            resp.push_header("Contact", format!("<{c}>"));
        }
        resp.set_header("Content-Length", "0");
        self.respond(req, resp)
    }

    // ---------------------------------------------------------------- client transactions

    /// Sends `req` in a new client transaction to `dest`; responses, timeouts and transport
    /// errors go to `events`. For INVITE, a non-2xx final response is ACKed here (hop by hop)
    /// and the ACK remembered in the call's route for retransmissions.
    pub(crate) fn start_client(
        self: &Arc<Self>,
        req: Message,
        dest: SocketAddr,
        events: mpsc::UnboundedSender<Event>,
        ack_2xx: bool,
    ) -> Result<(), SipError> {
        let via = req.top_via()?;
        let cseq = req.cseq()?;
        let branch = via.branch().unwrap_or("").to_owned();
        let key = txn_key(&branch, &cseq.method);
        let (tx, mut rx) = mpsc::unbounded_channel();
        lock(&self.client_txns).insert(key.clone(), (dest, tx));
        let bytes = req.to_bytes();
        let summary = self.summary_of(&req);
        if let Err(e) = self.send(dest, bytes.clone(), &summary) {
            lock(&self.client_txns).remove(&key);
            return Err(e);
        }
        let core = self.clone();
        let task = tokio::spawn(async move {
            let t = core.cfg.timers;
            let reliable = core.cfg.transport.is_stream();
            let is_invite = cseq.method == "INVITE";
            let mut deadline = Instant::now() + t.transaction_timeout();
            let mut interval = t.t1;
            let mut next = (!reliable).then(|| Instant::now() + interval);
            let mut proceeding = false;
            loop {
                let wake = next.map_or(deadline, |n| n.min(deadline));
                tokio::select! {
                    m = rx.recv() => {
                        let resp = match m {
                            None => break,
                            Some(TxInput::Response(r)) => *r,
                            Some(TxInput::TransportFailed(why)) => {
                                let _ = events.send(Event::Transport(why));
                                break;
                            }
                        };
                        let code = resp.status().unwrap_or(0);
                        if code < 200 {
                            if is_invite {
                                next = None;
                                // Timer C (RFC 3261 §16.6) is the proxy's; a UA waits for
                                // the callee: three minutes.
                                deadline = Instant::now() + Duration::from_secs(180);
                                proceeding = true;
                            } else if !reliable {
                                interval = t.t2;
                                next = Some(Instant::now() + interval);
                            }
                            let _ = events.send(Event::Response(Box::new(resp)));
                            continue;
                        }
                        if is_invite && code >= 300 {
                            let ack = build_non2xx_ack(&req, &resp);
                            let ack_bytes = ack.to_bytes();
                            let ack_summary = core.summary_of(&ack);
                            let _ = core.send(dest, ack_bytes.clone(), &ack_summary);
                            if let Ok(cid) = req.call_id() {
                                if let Some(r) = lock(&core.routes).get_mut(cid) {
                                    r.acks.push(SentAck {
                                        to_tag: resp.to().ok().and_then(|t| t.tag().map(str::to_owned)),
                                        bytes: ack_bytes,
                                        dest,
                                        summary: ack_summary,
                                    });
                                }
                            }
                        }
                        if is_invite && ack_2xx && code < 300 {
                            core.ack_2xx(&req, &resp, dest);
                        }
                        let _ = events.send(Event::Response(Box::new(resp)));
                        break;
                    }
                    _ = tokio::time::sleep_until(wake) => {
                        let now = Instant::now();
                        if now >= deadline {
                            let timer = match (is_invite, proceeding) {
                                (true, false) => 'B',
                                (true, true) => 'C',
                                (false, _) => 'F',
                            };
                            core.recorder.note(format!("Timer {timer} fired for {}", req.summary()));
                            let _ = events.send(Event::TxTimeout { request: req.summary(), timer });
                            break;
                        }
                        if core.offline() == Offline::Online {
                            let _ = core.send(dest, bytes.clone(), &summary);
                        }
                        interval = if is_invite { interval * 2 } else { (interval * 2).min(t.t2) };
                        next = Some(now + interval);
                    }
                }
            }
            lock(&core.client_txns).remove(&key);
        });
        // The transaction dies with its endpoint: a torn-down party must not go on retransmitting
        // (an INVITE would otherwise reach the gateway until Timer B, 32 s later).
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task.abort_handle());
        Ok(())
    }

    /// Sends the ACK for a 2xx to `invite` (end to end, in the dialog) and remembers it in the
    /// call's route so that a retransmitted 2xx is ACKed again.
    pub(crate) fn ack_2xx(self: &Arc<Self>, invite: &Message, ok: &Message, dest: SocketAddr) {
        let Ok(dialog) = Dialog::uac(invite, ok, dest) else {
            self.recorder
                .note(format!("cannot ACK {}: no dialog", ok.summary()));
            return;
        };
        let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
        let (via, _) = self.new_via();
        let ack = dialog.ack(seq, &via);
        let bytes = ack.to_bytes();
        let summary = self.summary_of(&ack);
        let _ = self.send(dialog.dest, bytes.clone(), &summary);
        if let Some(r) = lock(&self.routes).get_mut(&dialog.call_id) {
            r.acks.push(SentAck {
                to_tag: dialog.remote.tag().map(str::to_owned),
                bytes,
                dest: dialog.dest,
                summary,
            });
        }
    }

    /// Sends a request and waits for its final response (provisional ones are skipped but
    /// listed in a timeout error).
    pub(crate) async fn request(
        self: &Arc<Self>,
        req: Message,
        dest: SocketAddr,
        within: Duration,
    ) -> Result<Message, SipError> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let what = format!("final response to {}", req.summary());
        self.start_client(req, dest, tx, false)?;
        let mut seen = Vec::new();
        let deadline = Instant::now() + within;
        let mark = self.malformed_mark();
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_) => return Err(self.timeout_error(mark, what, within, seen)),
                Ok(None) => return Err(SipError::Transport("transaction ended".into())),
                Ok(Some(Event::Response(m))) if m.status().unwrap_or(0) >= 200 => return Ok(*m),
                Ok(Some(Event::Response(m))) => seen.push(m.summary()),
                Ok(Some(Event::TxTimeout { request, timer })) => {
                    return Err(SipError::TransactionTimeout {
                        request,
                        timer,
                        received: seen,
                    })
                }
                Ok(Some(Event::Transport(e))) => return Err(SipError::Transport(e)),
                Ok(Some(Event::Request(m))) => seen.push(m.summary()),
            }
        }
    }
}

/// A UDP socket with large kernel buffers: under load the default ~200 KiB receive buffer
/// overflows on loopback and the "lost" datagrams turn into retransmissions.
fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, SipError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(1 << 20);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(UdpSocket::from_std(socket.into())?)
}

/// True when a From/To value has a `tag` header parameter (cheaper than a full parse: only
/// the parameters after the URI are looked at).
fn has_tag_param(value: &str) -> bool {
    let params = match value.rfind('>') {
        Some(gt) => &value[gt + 1..],
        None => value.split_once(';').map_or("", |(_, p)| p),
    };
    params.split(';').any(|p| {
        let name = p.split('=').next().unwrap_or("").trim();
        name.eq_ignore_ascii_case("tag")
    })
}

/// The standard reason phrase for a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        555 => "Push Notification Service Not Supported",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Unknown",
    }
}

/// A response to `req`: its Via lines, From, To (with `to_tag` added when it has none and the
/// code is above 100), Call-ID, CSeq, and Record-Route for dialog-forming responses. No
/// Content-Length: callers add it.
pub fn build_response(req: &Message, code: u16, reason: &str, to_tag: Option<&str>) -> Message {
    let mut resp = Message::response(code, reason);
    for h in &req.headers {
        let long = crate::message::long_header_name(&h.name);
        let copy = ["Via", "From", "Call-ID", "CSeq"]
            .iter()
            .any(|n| long.eq_ignore_ascii_case(n))
            || (long.eq_ignore_ascii_case("Record-Route")
                && req.method() == Some("INVITE")
                && (101..300).contains(&code));
        if copy {
            resp.headers.push(h.clone());
        } else if long.eq_ignore_ascii_case("To") {
            let mut value = h.value.clone();
            if code > 100 {
                if let (Ok(to), Some(tag)) = (NameAddr::parse(&h.value), to_tag) {
                    if to.tag().is_none() {
                        value = to.with_param("tag", Some(tag)).to_string();
                    }
                }
            }
            resp.push_header(h.name.clone(), value);
        }
    }
    resp
}

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same Request-URI, top Via, Route,
/// From, Call-ID and CSeq number as the INVITE; To from the response.
pub fn build_non2xx_ack(invite: &Message, resp: &Message) -> Message {
    let mut ack = Message::request("ACK", invite.request_uri().unwrap_or("sip:invalid"));
    if let Some(v) = invite.header_values("Via").first() {
        ack.push_header("Via", *v);
    }
    for r in invite.header_lines("Route") {
        ack.push_header("Route", r);
    }
    ack.push_header("Max-Forwards", "70");
    if let Some(f) = invite.header("From") {
        ack.push_header("From", f);
    }
    if let Some(t) = resp.header("To") {
        ack.push_header("To", t);
    }
    if let Some(c) = invite.header("Call-ID") {
        ack.push_header("Call-ID", c);
    }
    let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
    ack.push_header("CSeq", format!("{seq} ACK"));
    ack.push_header("Content-Length", "0");
    ack
}
