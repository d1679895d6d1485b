//! Is the gateway there at all? Before the first scenario the run probes every transport the
//! target declares, and between scenarios it probes again, so a gateway that is down is reported
//! as down (exit 2, one message), not as non-conformant, and a gateway that stops answering
//! mid-run is named as the cause of what failed then.
//!
//! The probes, each with a deadline of [`PROBE_DEADLINE`]:
//! - SIP over UDP: an OPTIONS request, retransmitted as RFC 3261 §17.1.2.2 does (500 ms, then
//!   doubling); any SIP response counts, whatever its status.
//! - SIP over TCP: a connection is accepted.
//! - SIP over TLS: a connection, and a TLS handshake verified against `sip.tls_ca_file`.
//! - XMPP: c2s answers a stream header with one of its own (RFC 6120 §4.2); the component port,
//!   when declared, accepts a connection.
//!
//! [`Liveness`] is the run's record of whether the gateway still answers.

use crate::target::Target;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};

/// How long one probe may take.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(3);

/// One transport that did not answer: where, what was tried, and what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeFailure {
    /// The target file's key (`sip.udp`).
    pub key: &'static str,
    /// The address probed.
    pub address: String,
    /// What the probe did (`sent a SIP OPTIONS over UDP`).
    pub tried: String,
    /// What happened (`no response within 3 s`).
    pub outcome: String,
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}: {}",
            self.key, self.address, self.tried, self.outcome
        )
    }
}

/// The transports of a target, ready to probe.
#[derive(Clone, Debug, Default)]
pub struct Probes {
    domain: String,
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    tls: Option<(SocketAddr, Option<Arc<rustls::ClientConfig>>, String)>,
    tls_problem: Option<String>,
    c2s: Option<(SocketAddr, String)>,
    component: Option<SocketAddr>,
}

impl Probes {
    /// The probes of an external target (addresses already resolved). The embedded gateway has
    /// none: each scenario starts its own.
    pub fn of(target: &Target) -> Probes {
        let mut p = Probes::default();
        if target.kind == crate::target::TargetKind::EmbeddedReference {
            return p;
        }
        let addr = |s: &Option<String>| s.as_deref().and_then(|a| a.parse().ok());
        if let Some(sip) = &target.sip {
            p.domain = sip.domain.clone();
            p.udp = addr(&sip.udp);
            p.tcp = addr(&sip.tcp);
            if let Some(tls) = addr(&sip.tls) {
                let name = target.sip_tls_name();
                let config = match &sip.tls_ca_file {
                    Some(ca) => match client_config(ca) {
                        Ok(c) => Some(Arc::new(c)),
                        Err(e) => {
                            p.tls_problem = Some(e);
                            None
                        }
                    },
                    None => None,
                };
                p.tls = Some((tls, config, name));
            }
        }
        if let Some(x) = &target.xmpp {
            p.c2s = x.c2s.parse().ok().map(|a| (a, x.domain.clone()));
            p.component = x.component.as_ref().and_then(|c| c.address.parse().ok());
        }
        p
    }

    /// True when there is nothing to probe.
    pub fn is_empty(&self) -> bool {
        self.udp.is_none()
            && self.tcp.is_none()
            && self.tls.is_none()
            && self.c2s.is_none()
            && self.component.is_none()
    }

    /// Runs every probe at once; the failures, in the order of the target file.
    pub async fn run(&self) -> Vec<ProbeFailure> {
        let udp = async {
            match self.udp {
                Some(a) => sip_options(a, &self.domain).await.err(),
                None => None,
            }
        };
        let tcp = async {
            match self.tcp {
                Some(a) => connect("sip.tcp", a).await.err(),
                None => None,
            }
        };
        let tls = async {
            match &self.tls {
                Some((a, config, name)) => {
                    tls_handshake(*a, config.clone(), name, self.tls_problem.as_deref())
                        .await
                        .err()
                }
                None => None,
            }
        };
        let c2s = async {
            match &self.c2s {
                Some((a, domain)) => stream_header(*a, domain).await.err(),
                None => None,
            }
        };
        let component = async {
            match self.component {
                Some(a) => connect("xmpp.component.address", a).await.err(),
                None => None,
            }
        };
        let (a, b, c, d, e) = tokio::join!(udp, tcp, tls, c2s, component);
        [a, b, c, d, e].into_iter().flatten().collect()
    }
}

/// Whether the gateway still answers, as the run found out: set once, at the first probe round
/// that failed.
#[derive(Clone, Debug, Default)]
pub struct Liveness {
    down: Arc<Mutex<Option<Down>>>,
}

/// When the gateway was found not answering, and how.
#[derive(Clone, Debug)]
pub struct Down {
    /// When the failing probe round began.
    pub since: Instant,
    /// What failed.
    pub failures: Vec<ProbeFailure>,
}

impl Down {
    /// One line: what failed.
    pub fn describe(&self) -> String {
        self.failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Liveness {
    /// The gateway was found down (the first finding is kept).
    pub fn set_down(&self, down: Down) {
        let mut d = self.down.lock().unwrap_or_else(|e| e.into_inner());
        if d.is_none() {
            *d = Some(down);
        }
    }

    /// Whether, and since when, the gateway is down.
    pub fn down(&self) -> Option<Down> {
        self.down.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Probes now, and again every 500 ms while rounds fail, for `patience` at most (a
    /// gateway busy with the bench's load, or restarted by a `before_scenario` command, gets
    /// that long). Returns what the last round found, without recording it.
    pub async fn probe(probes: &Probes, patience: Duration) -> Result<(), Down> {
        let since = Instant::now();
        loop {
            let failures = probes.run().await;
            if failures.is_empty() {
                return Ok(());
            }
            if since.elapsed() >= patience {
                return Err(Down { since, failures });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Probes (see [`Liveness::probe`]) and records the gateway as down when it does not
    /// answer. Returns the finding (an earlier one, if there was).
    pub async fn check(&self, probes: &Probes, patience: Duration) -> Option<Down> {
        if let Some(d) = self.down() {
            return Some(d);
        }
        if let Err(d) = Liveness::probe(probes, patience).await {
            self.set_down(d);
        }
        self.down()
    }
}

fn failure(key: &'static str, addr: SocketAddr, tried: &str, outcome: String) -> ProbeFailure {
    ProbeFailure {
        key,
        address: addr.to_string(),
        tried: tried.into(),
        outcome,
    }
}

fn io_outcome(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            "connection refused (nothing listens there)".into()
        }
        _ => e.to_string(),
    }
}

/// An OPTIONS over UDP; any SIP response counts.
async fn sip_options(addr: SocketAddr, domain: &str) -> Result<(), ProbeFailure> {
    const TRIED: &str = "sent a SIP OPTIONS over UDP";
    let fail = |o: String| failure("sip.udp", addr, TRIED, o);
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let sock = UdpSocket::bind(local)
        .await
        .map_err(|e| fail(format!("cannot open a UDP socket: {e}")))?;
    sock.connect(addr).await.map_err(|e| fail(io_outcome(&e)))?;
    let me = sock.local_addr().map_err(|e| fail(e.to_string()))?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let request = format!(
        "OPTIONS sip:{domain} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK{id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:pushbench-probe@{domain}>;tag={tag}\r\n\
         To: <sip:{domain}>\r\n\
         Call-ID: {id}@pushbench-probe\r\n\
         CSeq: 1 OPTIONS\r\n\
         User-Agent: pushbench probe\r\n\
         Content-Length: 0\r\n\r\n",
        tag = &id[..8]
    );
    let deadline = Instant::now() + PROBE_DEADLINE;
    let mut interval = Duration::from_millis(500);
    let mut buf = vec![0u8; 65_535];
    loop {
        sock.send(request.as_bytes())
            .await
            .map_err(|e| fail(io_outcome(&e)))?;
        let wait = interval.min(deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(wait, sock.recv(&mut buf)).await {
            Ok(Ok(n)) if buf[..n].starts_with(b"SIP/2.0 ") => return Ok(()),
            // Not a response (a stray request): keep waiting.
            Ok(Ok(_)) => {}
            // ICMP port unreachable arrives as ECONNREFUSED on a connected socket.
            Ok(Err(e)) => return Err(fail(io_outcome(&e))),
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            return Err(fail(format!(
                "no SIP response within {} s",
                PROBE_DEADLINE.as_secs()
            )));
        }
        interval *= 2;
    }
}

async fn tcp(key: &'static str, addr: SocketAddr, tried: &str) -> Result<TcpStream, ProbeFailure> {
    match tokio::time::timeout(PROBE_DEADLINE, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(failure(key, addr, tried, io_outcome(&e))),
        Err(_) => Err(failure(
            key,
            addr,
            tried,
            format!("not accepted within {} s", PROBE_DEADLINE.as_secs()),
        )),
    }
}

async fn connect(key: &'static str, addr: SocketAddr) -> Result<(), ProbeFailure> {
    tcp(key, addr, "opened a TCP connection").await.map(drop)
}

async fn tls_handshake(
    addr: SocketAddr,
    config: Option<Arc<rustls::ClientConfig>>,
    name: &str,
    problem: Option<&str>,
) -> Result<(), ProbeFailure> {
    let tried = format!("a TLS handshake checking the certificate for {name:?}");
    let fail = |o: String| failure("sip.tls", addr, &tried, o);
    if let Some(p) = problem {
        return Err(fail(format!("sip.tls_ca_file: {p}")));
    }
    let config = config.ok_or_else(|| {
        fail("no sip.tls_ca_file: the bench cannot verify the gateway's certificate".into())
    })?;
    let stream = tcp("sip.tls", addr, &tried).await?;
    let server_name = rustls::pki_types::ServerName::try_from(name.to_owned())
        .map_err(|e| fail(format!("{name:?} is not a TLS server name: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    match tokio::time::timeout(PROBE_DEADLINE, connector.connect(server_name, stream)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(fail(format!("handshake failed: {e}"))),
        Err(_) => Err(fail(format!(
            "no handshake within {} s",
            PROBE_DEADLINE.as_secs()
        ))),
    }
}

/// The client configuration trusting exactly the CA in `ca_file`.
fn client_config(ca_file: &Path) -> Result<rustls::ClientConfig, String> {
    let pem = std::fs::read(ca_file).map_err(|e| format!("{}: {e}", ca_file.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| format!("{}: {e}", ca_file.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca_file.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no PEM certificate in it", ca_file.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

/// A stream header to c2s; the server must answer with its own.
async fn stream_header(addr: SocketAddr, domain: &str) -> Result<(), ProbeFailure> {
    const TRIED: &str = "sent an XMPP stream header";
    let mut s = tcp("xmpp.c2s", addr, TRIED).await?;
    let fail = |o: String| failure("xmpp.c2s", addr, TRIED, o);
    let header = format!(
        "<?xml version='1.0'?><stream:stream to='{domain}' version='1.0' \
         xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    );
    s.write_all(header.as_bytes())
        .await
        .map_err(|e| fail(io_outcome(&e)))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + PROBE_DEADLINE;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(wait, s.read(&mut buf)).await {
            Ok(Ok(0)) => {
                return Err(fail(format!(
                    "the server closed the connection{}",
                    shown(&got)
                )))
            }
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                if contains(&got, b"<stream:stream") || contains(&got, b":stream ") {
                    let _ = s.write_all(b"</stream:stream>").await;
                    return Ok(());
                }
                if got.len() > 64 * 1024 {
                    return Err(fail(format!("no stream header in{}", shown(&got))));
                }
            }
            Ok(Err(e)) => return Err(fail(io_outcome(&e))),
            Err(_) => {
                return Err(fail(format!(
                    "no stream header within {} s{}",
                    PROBE_DEADLINE.as_secs(),
                    shown(&got)
                )))
            }
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn shown(got: &[u8]) -> String {
    if got.is_empty() {
        String::new()
    } else {
        format!(
            " (got {:?})",
            String::from_utf8_lossy(&got[..got.len().min(200)])
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn target_with(udp: Option<String>, tcp: Option<String>) -> Target {
        let mut t = Target::embedded_reference();
        t.kind = crate::target::TargetKind::External;
        let sip = t.sip.as_mut().unwrap();
        sip.udp = udp;
        sip.tcp = tcp;
        sip.tls = None;
        t
    }

    /// A port nothing listens on (bound, then closed).
    async fn closed_port() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    }

    #[tokio::test]
    async fn nothing_listening_is_named_with_what_was_tried() {
        let addr = closed_port().await;
        let p = Probes::of(&target_with(Some(addr.to_string()), Some(addr.to_string())));
        let f = p.run().await;
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].key, "sip.udp");
        assert!(f[0].tried.contains("OPTIONS"), "{}", f[0]);
        assert!(
            f[0].outcome.contains("refused") || f[0].outcome.contains("no SIP response"),
            "{}",
            f[0]
        );
        assert_eq!(f[1].key, "sip.tcp");
        assert!(f[1].to_string().contains(&addr.to_string()));
        assert!(f[1].outcome.contains("refused"), "{}", f[1]);
    }

    #[tokio::test]
    async fn any_sip_response_counts_and_a_listener_is_enough_for_tcp() {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let udp_addr = udp.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            // Ignore the first OPTIONS: the retransmission must be answered.
            let _ = udp.recv_from(&mut buf).await;
            let (_, from) = udp.recv_from(&mut buf).await.unwrap();
            let _ = udp
                .send_to(b"SIP/2.0 404 Not Here\r\nContent-Length: 0\r\n\r\n", from)
                .await;
        });
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = Probes::of(&target_with(
            Some(udp_addr.to_string()),
            Some(tcp.local_addr().unwrap().to_string()),
        ));
        assert_eq!(p.run().await, vec![]);
    }

    #[tokio::test]
    async fn liveness_keeps_the_first_finding() {
        let addr = closed_port().await;
        let p = Probes::of(&target_with(None, Some(addr.to_string())));
        let l = Liveness::default();
        let d = l.check(&p, Duration::ZERO).await.expect("down");
        assert!(d.describe().contains("sip.tcp"), "{}", d.describe());
        let again = l.check(&Probes::default(), Duration::ZERO).await.unwrap();
        assert_eq!(again.since, d.since);
        assert!(Probes::of(&Target::embedded_reference()).is_empty());
    }

    #[tokio::test]
    async fn c2s_must_answer_with_a_stream_header() {
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = silent.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                .await
                .unwrap();
        });
        let err = stream_header(addr, "example.com").await.unwrap_err();
        assert!(err.outcome.contains("HTTP/1.1 400"), "{err}");
        let good = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = good.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = good.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            s.write_all(b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' from='example.com' id='x' version='1.0'>")
                .await
                .unwrap();
            let _ = s.read(&mut buf).await;
        });
        stream_header(addr, "example.com").await.unwrap();
    }
}
