//! The gateway's transport layer: one UDP socket, one TCP and one TLS listener, and the flows
//! (RFC 5626 sense: transport + remote address + connection) messages arrive on. Everything the
//! gateway sends goes back over a flow it received on — responses to the request's flow, requests
//! to a phone over the flow of its last REGISTER — so it never opens outbound connections.

use bytes::Bytes;
use sip_peer::{Limits, Message, StreamFramer, TlsConfig, Transport};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use timeline::Recorder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// Where a message came from and how to answer it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    /// UDP, TCP or TLS.
    pub transport: Transport,
    /// The peer's address (source address of its packets or of its connection).
    pub remote: SocketAddr,
    /// The connection id (0 for UDP).
    pub conn: u64,
}

impl std::fmt::Display for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.transport.as_str(), self.remote)?;
        if self.conn != 0 {
            write!(f, "#{}", self.conn)?;
        }
        Ok(())
    }
}

/// A parsed message and the flow it arrived on.
#[derive(Debug)]
pub(crate) struct Inbound {
    /// The flow.
    pub flow: Flow,
    /// The message.
    pub message: Message,
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// The connection of the flow is closed.
    #[error("flow {0} is closed")]
    Closed(Flow),
    /// No listener for that transport.
    #[error("no {0} listener")]
    NoListener(&'static str),
    /// The UDP socket refused the datagram.
    #[error("UDP send to {0}: {1}")]
    Udp(SocketAddr, std::io::Error),
}

/// The bound listeners and the open connections.
pub(crate) struct Listeners {
    udp: Option<Arc<UdpSocket>>,
    addrs: HashMap<Transport, SocketAddr>,
    conns: Mutex<HashMap<u64, mpsc::UnboundedSender<Bytes>>>,
    next_conn: std::sync::atomic::AtomicU64,
    tasks: Mutex<Vec<AbortHandle>>,
    recorder: Recorder,
}

use timeline::lock;

impl Listeners {
    /// Binds every configured listener and starts receiving; parsed messages go to `inbound`.
    pub(crate) async fn bind(
        udp: Option<SocketAddr>,
        tcp: Option<SocketAddr>,
        tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
        recorder: Recorder,
        inbound: mpsc::UnboundedSender<Inbound>,
    ) -> std::io::Result<Arc<Listeners>> {
        let mut addrs = HashMap::new();
        let udp_sock = match udp {
            Some(a) => {
                let s = Arc::new(UdpSocket::bind(a).await?);
                addrs.insert(Transport::Udp, s.local_addr()?);
                Some(s)
            }
            None => None,
        };
        let tcp_l = match tcp {
            Some(a) => {
                let l = TcpListener::bind(a).await?;
                addrs.insert(Transport::Tcp, l.local_addr()?);
                Some(l)
            }
            None => None,
        };
        let tls_l = match tls {
            Some((a, cfg)) => {
                let l = TcpListener::bind(a).await?;
                addrs.insert(Transport::Tls, l.local_addr()?);
                Some((l, cfg))
            }
            None => None,
        };
        let me = Arc::new(Listeners {
            udp: udp_sock.clone(),
            addrs,
            conns: Mutex::new(HashMap::new()),
            next_conn: std::sync::atomic::AtomicU64::new(1),
            tasks: Mutex::new(Vec::new()),
            recorder,
        });
        if let Some(s) = udp_sock {
            let m = me.clone();
            let tx = inbound.clone();
            let h = tokio::spawn(async move { m.udp_loop(s, tx).await });
            lock(&me.tasks).push(h.abort_handle());
        }
        if let Some(l) = tcp_l {
            let m = me.clone();
            let tx = inbound.clone();
            let h = tokio::spawn(async move { m.accept_loop(l, None, tx).await });
            lock(&me.tasks).push(h.abort_handle());
        }
        if let Some((l, cfg)) = tls_l {
            let m = me.clone();
            let h = tokio::spawn(async move { m.accept_loop(l, Some(cfg), inbound).await });
            lock(&me.tasks).push(h.abort_handle());
        }
        Ok(me)
    }

    /// The bound address of a transport's listener.
    pub(crate) fn local_addr(&self, t: Transport) -> Option<SocketAddr> {
        self.addrs.get(&t).copied()
    }

    /// True when `addr` is one of our listeners.
    pub(crate) fn is_local(&self, addr: SocketAddr) -> bool {
        self.addrs.values().any(|a| *a == addr)
    }

    /// Records and sends bytes over a flow. Never blocks.
    pub(crate) fn send(&self, flow: &Flow, bytes: Bytes, summary: &str) -> Result<(), SendError> {
        self.recorder.sent(
            &flow.remote.to_string(),
            flow.transport.as_str(),
            summary,
            bytes.clone(),
        );
        match flow.transport {
            Transport::Udp => {
                let s = self.udp.as_ref().ok_or(SendError::NoListener("udp"))?;
                s.try_send_to(&bytes, flow.remote)
                    .map(|_| ())
                    .map_err(|e| SendError::Udp(flow.remote, e))
            }
            Transport::Tcp | Transport::Tls => {
                let conns = lock(&self.conns);
                let tx = conns.get(&flow.conn).ok_or(SendError::Closed(*flow))?;
                tx.send(bytes).map_err(|_| SendError::Closed(*flow))
            }
        }
    }

    /// True while the flow's connection is open (always true for UDP).
    pub(crate) fn is_open(&self, flow: &Flow) -> bool {
        flow.transport == Transport::Udp || lock(&self.conns).contains_key(&flow.conn)
    }

    /// Number of open TCP/TLS connections.
    pub(crate) fn connection_count(&self) -> usize {
        lock(&self.conns).len()
    }

    /// Stops every task and closes every connection.
    pub(crate) fn shutdown(&self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
        lock(&self.conns).clear();
    }

    async fn udp_loop(self: Arc<Self>, sock: Arc<UdpSocket>, tx: mpsc::UnboundedSender<Inbound>) {
        let mut buf = vec![0u8; 65536];
        loop {
            let (n, from) = match sock.recv_from(&mut buf).await {
                Ok(x) => x,
                // ICMP port unreachable from an earlier send shows up here on some systems.
                Err(_) => continue,
            };
            let data = &buf[..n];
            if data.iter().all(|b| matches!(b, b'\r' | b'\n' | 0)) {
                continue; // keep-alive
            }
            let flow = Flow {
                transport: Transport::Udp,
                remote: from,
                conn: 0,
            };
            self.deliver(flow, data, &tx);
        }
    }

    fn deliver(&self, flow: Flow, data: &[u8], tx: &mpsc::UnboundedSender<Inbound>) {
        match Message::parse_with(data, &Limits::default()) {
            Ok(message) => {
                self.recorder.received(
                    &flow.remote.to_string(),
                    flow.transport.as_str(),
                    message.summary(),
                    Bytes::copy_from_slice(data),
                );
                let _ = tx.send(Inbound { flow, message });
            }
            Err(e) => {
                self.recorder.note(format!(
                    "dropped unparseable message from {flow}: {e}: {}",
                    timeline::escape_bytes(&data[..data.len().min(200)])
                ));
                tracing::debug!(%flow, error = %e, "dropped unparseable message");
            }
        }
    }

    async fn accept_loop(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        tx: mpsc::UnboundedSender<Inbound>,
    ) {
        loop {
            let Ok((stream, remote)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let me = self.clone();
            let tx = tx.clone();
            let tls = tls.clone();
            let id = self
                .next_conn
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let h = tokio::spawn(async move {
                match tls {
                    None => {
                        let flow = Flow {
                            transport: Transport::Tcp,
                            remote,
                            conn: id,
                        };
                        me.conn_loop(stream, flow, tx).await
                    }
                    Some(cfg) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                        let hs = tokio::time::timeout(
                            std::time::Duration::from_secs(10),
                            acceptor.accept(stream),
                        )
                        .await;
                        match hs {
                            Ok(Ok(s)) => {
                                let flow = Flow {
                                    transport: Transport::Tls,
                                    remote,
                                    conn: id,
                                };
                                me.conn_loop(s, flow, tx).await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%remote, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                        }
                    }
                }
            });
            let mut tasks = lock(&self.tasks);
            tasks.retain(|t| !t.is_finished());
            tasks.push(h.abort_handle());
        }
    }

    async fn conn_loop<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
        self: Arc<Self>,
        stream: S,
        flow: Flow,
        tx: mpsc::UnboundedSender<Inbound>,
    ) {
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Bytes>();
        lock(&self.conns).insert(flow.conn, out_tx);
        let (mut rd, mut wr) = tokio::io::split(stream);
        let writer = tokio::spawn(async move {
            while let Some(b) = out_rx.recv().await {
                if wr.write_all(&b).await.is_err() {
                    break;
                }
            }
            let _ = wr.shutdown().await;
        });
        let mut framer = StreamFramer::new(Limits::default());
        'read: loop {
            framer.buffer().reserve(8192);
            match rd.read_buf(framer.buffer()).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            loop {
                match framer.next() {
                    Ok(Some(framed)) => {
                        self.recorder.received(
                            &flow.remote.to_string(),
                            flow.transport.as_str(),
                            framed.message.summary(),
                            framed.raw.clone(),
                        );
                        let _ = tx.send(Inbound {
                            flow,
                            message: framed.message,
                        });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.recorder.note(format!(
                            "closing {flow}: unframeable stream: {}: {}",
                            e.error,
                            timeline::escape_bytes(&e.bytes[..e.bytes.len().min(200)])
                        ));
                        break 'read;
                    }
                }
            }
        }
        lock(&self.conns).remove(&flow.conn);
        writer.abort();
    }
}

/// A rustls server configuration (ring provider) from PEM text.
pub(crate) fn tls_server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, sip_peer::SipError> {
    TlsConfig::server(cert_pem, key_pem)?
        .server
        .ok_or_else(|| sip_peer::ConfigError::Missing("server configuration").into())
}
