//! The sockets of one endpoint: one UDP socket, or one TCP/TLS listener plus its connections
//! (reused per peer address; [`Net::close_connections`] forces new ones), flight mode, and the
//! recording of every message on the timeline.
//!
//! Received bytes are parsed here (datagrams whole, streams by [`StreamFramer`]); what parses goes
//! up to the layer above through [`NetUser::on_message`], what does not is recorded and counted
//! ([`Net::timeout_error`] turns it into the error of a step that waited in vain). A stream
//! connection that cannot be opened is reported through [`NetUser::on_connection_failed`].

use super::{EndpointConfig, Offline, StreamFramer, Transport};
use crate::error::{ConfigError, ConnectionError, SipError, TransportError};
use crate::message::Message;
use crate::syntax::{host_of, random_hex, ParseError};
use crate::uri::SipUri;
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timeline::{lock, Recorder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// What the layer above the sockets provides: access to them, and where received messages and
/// failed connections go.
pub(crate) trait NetUser: Send + Sync + Sized + 'static {
    /// The sockets.
    fn net(&self) -> &Net;
    /// A message arrived (already recorded; never called in flight mode).
    fn on_message(this: &Arc<Self>, msg: Message, raw: Bytes, from: SocketAddr);
    /// A stream connection to `dest` could not be opened or was refused.
    fn on_connection_failed(&self, dest: SocketAddr, why: &ConnectionError);
}

struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<Bytes>,
    abort: Option<AbortHandle>,
}

/// The last unparseable message: from, error, bytes.
type Malformed = (String, ParseError, Bytes);

/// The sockets of one endpoint and what they need to know.
pub(crate) struct Net {
    pub(crate) cfg: EndpointConfig,
    /// The bound address; a new one after [`reopen`] (a relaunched app).
    local: Mutex<SocketAddr>,
    /// The UDP socket; `None` for TCP/TLS and while closed ([`Net::close_sockets`]).
    udp: Mutex<Option<Arc<UdpSocket>>>,
    /// The receive loops of the socket or the listener (aborted by [`Net::close_sockets`], which
    /// drops the socket: nothing is read or buffered any more, and the kernel answers UDP to the
    /// port with ICMP port unreachable).
    io_tasks: Mutex<Vec<AbortHandle>>,
    conns: Mutex<HashMap<SocketAddr, Conn>>,
    pub(crate) recorder: Recorder,
    pub(crate) peer: String,
    offline: AtomicU8,
    next_id: AtomicU64,
    tasks: Mutex<Vec<AbortHandle>>,
    /// How many malformed messages arrived, and the last one (from, error, bytes).
    malformed: Mutex<(u64, Option<Malformed>)>,
}

impl Net {
    /// Binds the socket (UDP) or the listener (TCP/TLS). Nothing is received until [`start`].
    pub(crate) async fn bind(
        cfg: EndpointConfig,
        recorder: Recorder,
        peer: String,
    ) -> Result<(Net, Option<TcpListener>), SipError> {
        if cfg.transport == Transport::Tls && cfg.tls.is_none() {
            return Err(ConfigError::NoTls.into());
        }
        let (udp, listener, local) = bind_sockets(cfg.transport, cfg.bind).await?;
        let net = Net {
            cfg,
            local: Mutex::new(local),
            udp: Mutex::new(udp),
            io_tasks: Mutex::new(Vec::new()),
            conns: Mutex::new(HashMap::new()),
            recorder,
            peer,
            offline: AtomicU8::new(0),
            next_id: AtomicU64::new(1),
            tasks: Mutex::new(Vec::new()),
            malformed: Mutex::new((0, None)),
        };
        Ok((net, listener))
    }

    /// The message's summary for the timeline, or nothing when the recorder is off (load runs).
    pub(crate) fn summary_of(&self, m: &Message) -> String {
        if self.recorder.timeline().is_some() {
            m.summary()
        } else {
            String::new()
        }
    }

    /// The bound address (the listener for TCP/TLS).
    pub(crate) fn local(&self) -> SocketAddr {
        *lock(&self.local)
    }

    /// True while the sockets are closed ([`Net::close_sockets`]), until [`reopen`].
    pub(crate) fn is_closed(&self) -> bool {
        self.cfg.transport == Transport::Udp && lock(&self.udp).is_none()
            || self.cfg.transport != Transport::Udp && lock(&self.io_tasks).is_empty()
    }

    /// Closes the socket (UDP) or the listener and every connection (TCP/TLS), as when iOS
    /// suspends or kills the app: nothing more is read, nothing is buffered, and the port is free
    /// (UDP to it gets ICMP port unreachable). Sending fails until [`reopen`].
    pub(crate) fn close_sockets(&self) {
        for t in lock(&self.io_tasks).drain(..) {
            t.abort();
        }
        let udp = lock(&self.udp).take();
        self.close_connections();
        if udp.is_some() || self.cfg.transport.is_stream() {
            self.recorder.note(format!(
                "{} socket {} closed (the app's process is gone)",
                self.transport_name(),
                self.local()
            ));
        }
    }

    pub(crate) fn transport_name(&self) -> &'static str {
        self.cfg.transport.as_str()
    }

    pub(crate) fn contact_uri(&self, user: Option<&str>) -> SipUri {
        let mut u = SipUri::from_addr(user, self.local());
        if self.cfg.transport.is_stream() {
            u.set_param("transport", Some(self.cfg.transport.as_str()));
        }
        u
    }

    /// A fresh Via value with a new branch.
    pub(crate) fn new_via(&self) -> (String, String) {
        let branch = format!("z9hG4bK{}", random_hex());
        let local = self.local();
        let via = format!(
            "SIP/2.0/{} {}:{};branch={};rport",
            self.cfg.transport.via_token(),
            host_of(local.ip()),
            local.port(),
            branch
        );
        (via, branch)
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn set_offline(&self, mode: Offline) {
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

    pub(crate) fn offline(&self) -> Offline {
        match self.offline.load(Ordering::Acquire) {
            0 => Offline::Online,
            1 => Offline::Silent,
            _ => Offline::Disconnected,
        }
    }

    pub(crate) fn close_connections(&self) {
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

    /// Number of open TCP/TLS connections.
    pub(crate) fn connection_count(&self) -> usize {
        lock(&self.conns).len()
    }

    /// True when a stream connection with `peer` is open.
    pub(crate) fn has_connection(&self, peer: &SocketAddr) -> bool {
        lock(&self.conns).contains_key(peer)
    }

    /// Keeps a task that must end with the endpoint (finished ones are dropped from the list).
    pub(crate) fn keep_task(&self, task: AbortHandle) {
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// Aborts every task and closes every connection (the endpoint is gone).
    pub(crate) fn stop(&self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
        for t in lock(&self.io_tasks).drain(..) {
            t.abort();
        }
        lock(&self.udp).take();
        for (_, c) in lock(&self.conns).drain() {
            if let Some(a) = c.abort {
                a.abort();
            }
        }
    }

    fn remove_conn(&self, peer: SocketAddr, id: u64) {
        let mut conns = lock(&self.conns);
        if conns.get(&peer).map(|c| c.id) == Some(id) {
            conns.remove(&peer);
        }
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

    /// A counter to pass to [`Net::timeout_error`] later.
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
}

/// Starts receiving: the UDP loop, or the accept loop of the listener.
pub(crate) fn start<U: NetUser>(up: &Arc<U>, listener: Option<TcpListener>) {
    let net = up.net();
    if let Some(sock) = lock(&net.udp).clone() {
        let u = up.clone();
        let h = tokio::spawn(async move { udp_loop(u, sock).await });
        lock(&net.io_tasks).push(h.abort_handle());
    }
    if let Some(l) = listener {
        let u = up.clone();
        let h = tokio::spawn(async move { accept_loop(u, l).await });
        lock(&net.io_tasks).push(h.abort_handle());
    }
}

/// A relaunched app: closes the old sockets if still open, binds a new socket (UDP) or listener
/// (TCP/TLS) on the configured IP and a new ephemeral port (never the old one), and starts
/// receiving on it. Returns the new local address.
pub(crate) async fn reopen<U: NetUser>(up: &Arc<U>) -> Result<SocketAddr, SipError> {
    let net = up.net();
    let old = net.local();
    net.close_sockets();
    let mut bind = net.cfg.bind;
    bind.set_port(0);
    // An ephemeral port may come back at once; a relaunched app never has its old one.
    for _ in 0..8 {
        let (udp, listener, local) = bind_sockets(net.cfg.transport, bind).await?;
        if local.port() == old.port() {
            continue;
        }
        *lock(&net.local) = local;
        *lock(&net.udp) = udp;
        start(up, listener);
        net.recorder.note(format!(
            "{} socket {local} opened (a new process; was {old})",
            net.transport_name()
        ));
        return Ok(local);
    }
    Err(TransportError::Socket {
        context: format!("binding {bind}"),
        source: std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("no new port other than {}", old.port()),
        ),
    }
    .into())
}

/// The bound socket (UDP) or listener (TCP/TLS) and its address.
type Bound = (Option<Arc<UdpSocket>>, Option<TcpListener>, SocketAddr);

/// Binds the socket (UDP) or the listener (TCP/TLS) of `transport` at `bind`.
async fn bind_sockets(transport: Transport, bind: SocketAddr) -> Result<Bound, SipError> {
    let socket = |source| TransportError::Socket {
        context: format!("binding {bind}"),
        source,
    };
    Ok(match transport {
        Transport::Udp => {
            let s = bind_udp(bind).map_err(socket)?;
            let local = s.local_addr().map_err(socket)?;
            (Some(Arc::new(s)), None, local)
        }
        Transport::Tcp | Transport::Tls => {
            let l = TcpListener::bind(bind).await.map_err(socket)?;
            let local = l.local_addr().map_err(socket)?;
            (None, Some(l), local)
        }
    })
}

/// Records and sends bytes to `dest`. Never blocks; stream connections are opened on demand.
pub(crate) fn send<U: NetUser>(
    up: &Arc<U>,
    dest: SocketAddr,
    bytes: Bytes,
    summary: &str,
) -> Result<(), SipError> {
    let net = up.net();
    if net.offline() == Offline::Disconnected {
        net.recorder.note(format!("offline: not sent: {summary}"));
        return Err(TransportError::Offline.into());
    }
    if net.is_closed() {
        net.recorder
            .note(format!("socket closed: not sent: {summary}"));
        return Err(TransportError::Closed.into());
    }
    net.recorder
        .sent(&net.peer, net.transport_name(), summary, bytes.clone());
    let udp = lock(&net.udp).clone();
    match &udp {
        Some(sock) => match sock.try_send_to(&bytes, dest) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let sock = sock.clone();
                tokio::spawn(async move {
                    let _ = sock.send_to(&bytes, dest).await;
                });
                Ok(())
            }
            Err(source) => Err(TransportError::Send { dest, source }.into()),
        },
        None => {
            let mut conns = lock(&net.conns);
            if let Some(c) = conns.get(&dest) {
                match c.tx.send(bytes) {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        conns.remove(&dest);
                        return connect_and_send(up, &mut conns, dest, e.0);
                    }
                }
            }
            connect_and_send(up, &mut conns, dest, bytes)
        }
    }
}

fn connect_and_send<U: NetUser>(
    up: &Arc<U>,
    conns: &mut HashMap<SocketAddr, Conn>,
    dest: SocketAddr,
    bytes: Bytes,
) -> Result<(), SipError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let _ = tx.send(bytes);
    let id = up.net().next_id();
    let u = up.clone();
    let h = tokio::spawn(async move {
        let net = u.net();
        let stream = match tokio::time::timeout(
            net.cfg.timers.transaction_timeout(),
            TcpStream::connect(dest),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return connection_failed(&u, dest, id, ConnectionError::Connect(Arc::new(e)))
            }
            Err(_) => return connection_failed(&u, dest, id, ConnectionError::ConnectTimeout),
        };
        let _ = stream.set_nodelay(true);
        if net.cfg.transport == Transport::Tls {
            let tls = net
                .cfg
                .tls
                .clone()
                .and_then(|t| t.client.map(|c| (c, t.server_name)));
            let Some((client, name)) = tls else {
                return connection_failed(&u, dest, id, ConnectionError::NoTlsClient);
            };
            let name = match rustls::pki_types::ServerName::try_from(name.clone()) {
                Ok(n) => n,
                Err(source) => {
                    return connection_failed(
                        &u,
                        dest,
                        id,
                        ConnectionError::ServerName {
                            name,
                            source: Arc::new(source),
                        },
                    )
                }
            };
            match tokio_rustls::TlsConnector::from(client)
                .connect(name, stream)
                .await
            {
                Ok(s) => run_conn(u, s, dest, id, rx).await,
                Err(e) => {
                    connection_failed(&u, dest, id, ConnectionError::TlsHandshake(Arc::new(e)))
                }
            }
        } else {
            run_conn(u, stream, dest, id, rx).await
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

fn connection_failed<U: NetUser>(up: &Arc<U>, dest: SocketAddr, id: u64, why: ConnectionError) {
    let net = up.net();
    net.recorder.note(format!(
        "{} connection to {dest} failed: {why}",
        net.transport_name()
    ));
    net.remove_conn(dest, id);
    up.on_connection_failed(dest, &why);
}

/// A message arrived: dropped in flight mode, else recorded and handed up.
fn deliver<U: NetUser>(up: &Arc<U>, msg: Message, raw: Bytes, from: SocketAddr) {
    let net = up.net();
    if net.offline() != Offline::Online {
        net.recorder
            .note(format!("offline: dropped {}", msg.summary()));
        return;
    }
    if net.recorder.timeline().is_some() {
        net.recorder
            .received(&net.peer, net.transport_name(), msg.summary(), raw.clone());
    }
    U::on_message(up, msg, raw, from);
}

async fn udp_loop<U: NetUser>(up: Arc<U>, sock: Arc<UdpSocket>) {
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
        match Message::parse_with(&raw, &up.net().cfg.limits) {
            Ok(m) => deliver(&up, m, raw, from),
            Err(e) => up.net().on_malformed(from, e, raw),
        }
    }
}

async fn accept_loop<U: NetUser>(up: Arc<U>, listener: TcpListener) {
    let net = up.net();
    let acceptor = net
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
        let id = net.next_id();
        let u = up.clone();
        let transport = net.cfg.transport;
        let acceptor = acceptor.clone();
        let h = tokio::spawn(async move {
            match (transport, acceptor) {
                (Transport::Tls, Some(acc)) => match acc.accept(stream).await {
                    Ok(s) => run_conn(u, s, peer, id, rx).await,
                    Err(e) => {
                        connection_failed(&u, peer, id, ConnectionError::TlsAccept(Arc::new(e)))
                    }
                },
                (Transport::Tls, None) => {
                    connection_failed(&u, peer, id, ConnectionError::NoTlsServer)
                }
                _ => run_conn(u, stream, peer, id, rx).await,
            }
        });
        lock(&net.conns).insert(
            peer,
            Conn {
                id,
                tx,
                abort: Some(h.abort_handle()),
            },
        );
    }
}

async fn run_conn<U: NetUser, S: AsyncRead + AsyncWrite + Unpin>(
    up: Arc<U>,
    stream: S,
    peer: SocketAddr,
    id: u64,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut framer = StreamFramer::new(up.net().cfg.limits);
    'conn: loop {
        tokio::select! {
            r = rd.read_buf(framer.buffer()) => {
                match r {
                    Ok(0) | Err(_) => break 'conn,
                    Ok(_) => loop {
                        match framer.next() {
                            Ok(Some(f)) => deliver(&up, f.message, f.raw, peer),
                            Ok(None) => break,
                            Err(e) => {
                                up.net().on_malformed(peer, e.error, e.bytes);
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
    let net = up.net();
    net.recorder.note(format!(
        "{} connection with {peer} closed",
        net.transport_name()
    ));
    net.remove_conn(peer, id);
}

/// A UDP socket with large kernel buffers: under load the default ~200 KiB receive buffer
/// overflows on loopback and the "lost" datagrams turn into retransmissions.
fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(1 << 20);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}
