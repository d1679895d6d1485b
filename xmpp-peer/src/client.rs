//! A c2s client: STARTTLS, SASL, bind, XEP-0198 enable/resume, and deadline-bounded waits.
//!
//! [`Client::connect`] logs in and starts the connection task; stanzas then land in the
//! [`Inbox`] and are claimed with [`Client::wait_for`]. [`Client::sleep`] and [`Client::wake`]
//! model a phone dropping off the network and coming back (resume, or a fresh session).

use crate::conn::{lock, Connection, Shared, SleepMode};
use crate::error::Error;
use crate::inbox::Inbox;
use crate::ns;
use crate::sasl::{plain_initial, Mechanism, Scram};
use crate::sm::{parse_h, SmState};
use crate::transport::{TlsClient, Transport};
use crate::wire::{unexpected, Wire};
use crate::xml::Element;
use base64::Engine as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timeline::Recorder;
use tokio::net::TcpStream;
use tokio::time::Instant;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// How to reach and log in to the server.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The account's bare JID (`alice@localhost`).
    pub jid: String,
    /// The password.
    pub password: String,
    /// The resource to bind.
    pub resource: String,
    /// Where the server's c2s port is.
    pub server: SocketAddr,
    /// STARTTLS with this trust (required when set); `None` = plaintext (loopback tests only).
    pub tls: Option<TlsClient>,
    /// Allowed mechanisms, most preferred first.
    pub mechanisms: Vec<Mechanism>,
    /// The peer name on the timeline ("gateway").
    pub peer: String,
    /// Deadline for each login step.
    pub step_timeout: Duration,
    /// Enable XEP-0198 with resumption after binding.
    pub stream_management: bool,
    /// Send initial presence after binding (needed to receive messages to the bare JID).
    pub initial_presence: bool,
}

impl ClientConfig {
    /// Defaults: STARTTLS with `tls`, SCRAM-SHA-256 > SCRAM-SHA-1 > PLAIN, SM on, presence on.
    pub fn new(jid: &str, password: &str, server: SocketAddr, tls: Option<TlsClient>) -> Self {
        ClientConfig {
            jid: jid.into(),
            password: password.into(),
            resource: format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            server,
            tls,
            mechanisms: Mechanism::PREFERENCE.to_vec(),
            peer: "gateway".into(),
            step_timeout: Duration::from_secs(10),
            stream_management: true,
            initial_presence: true,
        }
    }

    /// The localpart and domain of the JID.
    pub fn split_jid(&self) -> Result<(&str, &str), Error> {
        let bare = self.jid.split('/').next().unwrap_or_default();
        match bare.split_once('@') {
            Some((u, d)) if !u.is_empty() && !d.is_empty() => Ok((u, d)),
            _ => Err(Error::Config(format!("not a bare user JID: {}", self.jid))),
        }
    }
}

/// How a wake-up went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WakeOutcome {
    /// The hibernated session was resumed.
    Resumed {
        /// How many of our stanzas the server had.
        h: u32,
    },
    /// A new session was bound (resumption failed or was not possible).
    NewSession {
        /// The server's `<failed/>`, if it sent one.
        failed: Option<String>,
    },
}

/// A logged-in c2s client.
pub struct Client {
    cfg: ClientConfig,
    rec: Recorder,
    jid: String,
    inbox: Inbox,
    sm: Option<Shared<SmState>>,
    conn: Option<Connection>,
    abandoned: Vec<Connection>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("jid", &self.jid).finish()
    }
}

struct LoggedIn {
    wire: Wire,
    features: Element,
}

/// Connects TCP, STARTTLS (if configured) and authenticates; returns the stream after the
/// post-auth restart with its features.
async fn login(cfg: &ClientConfig, rec: &Recorder) -> Result<LoggedIn, Error> {
    let (user, domain) = cfg.split_jid()?;
    let step = |what: &str| (Instant::now() + cfg.step_timeout, what.to_string());
    let (deadline, _) = step("connect");
    let tcp = tokio::time::timeout_at(deadline, TcpStream::connect(cfg.server))
        .await
        .map_err(|_| Error::Timeout {
            waiting_for: format!("TCP connect to {}", cfg.server),
            arrived: vec![],
        })?
        .map_err(Error::io(format!("connecting to {}", cfg.server)))?;
    let _ = tcp.set_nodelay(true);
    let mut wire = Wire::new(
        Transport::Tcp(tcp),
        rec.clone(),
        cfg.peer.clone(),
        ns::CLIENT,
    );
    let mut features = open(&mut wire, domain, cfg.step_timeout).await?;
    if let Some(tls) = &cfg.tls {
        if features.get_child("starttls", ns::TLS).is_none() {
            return Err(Error::NoStartTls(features.to_xml()));
        }
        wire.send(&Element::new("starttls", ns::TLS)).await?;
        let (d, w) = step("starttls proceed");
        let proceed = wire.recv_element(d, &w).await?;
        if !proceed.is("proceed", ns::TLS) {
            return Err(unexpected("waiting for <proceed/>", &proceed));
        }
        let Wire { io, rec, peer, .. } = wire;
        let io = io.start_tls(tls).await?;
        rec.note(format!("TLS established with {domain}"));
        wire = Wire::new(io, rec, peer, ns::CLIENT);
        features = open(&mut wire, domain, cfg.step_timeout).await?;
    }
    authenticate(&mut wire, cfg, user, &features).await?;
    let features = open(&mut wire, domain, cfg.step_timeout).await?;
    Ok(LoggedIn { wire, features })
}

/// Opens the stream and reads its header and features.
async fn open(wire: &mut Wire, domain: &str, timeout: Duration) -> Result<Element, Error> {
    wire.open_stream(domain).await?;
    let deadline = Instant::now() + timeout;
    wire.recv_header(deadline).await?;
    let features = wire.recv_element(deadline, "stream features").await?;
    if !features.is("features", ns::STREAM) {
        return Err(unexpected("waiting for stream features", &features));
    }
    Ok(features)
}

async fn authenticate(
    wire: &mut Wire,
    cfg: &ClientConfig,
    user: &str,
    features: &Element,
) -> Result<(), Error> {
    let offered: Vec<String> = features
        .get_child("mechanisms", ns::SASL)
        .map(|m| m.children().map(|c| c.text_content()).collect())
        .unwrap_or_default();
    let mech = cfg
        .mechanisms
        .iter()
        .copied()
        .find(|m| offered.iter().any(|o| o == m.name()))
        .ok_or_else(|| Error::NoMechanism {
            offered: offered.clone(),
        })?;
    let mut scram = match mech {
        Mechanism::Plain => None,
        m => Some(Scram::new(m, user, &cfg.password)?),
    };
    let initial = match &scram {
        Some(s) => s.client_first(),
        None => plain_initial(user, &cfg.password),
    };
    wire.send(
        &Element::new("auth", ns::SASL)
            .attr("mechanism", mech.name())
            .text(B64.encode(initial)),
    )
    .await?;
    loop {
        let deadline = Instant::now() + cfg.step_timeout;
        let e = wire.recv_element(deadline, "SASL reply").await?;
        let payload = || {
            B64.decode(e.text_content().trim())
                .map_err(|_| unexpected("SASL payload is not base64", &e))
        };
        match (e.ns(), e.name()) {
            (ns::SASL, "challenge") => {
                let s = scram
                    .as_mut()
                    .ok_or_else(|| unexpected("PLAIN got a challenge", &e))?;
                let response = s.client_final(&payload()?)?;
                wire.send(&Element::new("response", ns::SASL).text(B64.encode(response)))
                    .await?;
            }
            (ns::SASL, "success") => {
                if let Some(s) = &scram {
                    s.verify_server_final(&payload()?)?;
                }
                wire.rec.note(format!("authenticated with {}", mech.name()));
                return Ok(());
            }
            (ns::SASL, "failure") => return Err(Error::AuthRefused(e.to_xml())),
            _ => return Err(unexpected("SASL exchange", &e)),
        }
    }
}

/// Sends an IQ on a wire during login and waits for its answer.
async fn wire_iq(wire: &mut Wire, iq: Element, timeout: Duration) -> Result<Element, Error> {
    let id = iq.get_attr("id").unwrap_or_default().to_string();
    wire.send(&iq).await?;
    let deadline = Instant::now() + timeout;
    let e = wire
        .recv_element(deadline, &format!("iq result id={id}"))
        .await?;
    if e.name() != "iq" || e.get_attr("id") != Some(id.as_str()) {
        return Err(unexpected(&format!("waiting for iq result id={id}"), &e));
    }
    match e.get_attr("type") {
        Some("result") => Ok(e),
        _ => Err(Error::IqError(e.to_xml())),
    }
}

async fn bind(wire: &mut Wire, cfg: &ClientConfig) -> Result<String, Error> {
    let iq = Element::new("iq", ns::CLIENT)
        .attr("type", "set")
        .attr("id", "bind-1")
        .child(
            Element::new("bind", ns::BIND)
                .child(Element::new("resource", ns::BIND).text(cfg.resource.clone())),
        );
    let res = wire_iq(wire, iq, cfg.step_timeout).await?;
    res.get_child("bind", ns::BIND)
        .and_then(|b| b.get_child("jid", ns::BIND))
        .map(|j| j.text_content())
        .ok_or_else(|| unexpected("bind result without <jid>", &res))
}

async fn enable_sm(wire: &mut Wire, cfg: &ClientConfig) -> Result<SmState, Error> {
    wire.send(&Element::new("enable", ns::SM).attr("resume", "true"))
        .await?;
    let e = wire
        .recv_element(Instant::now() + cfg.step_timeout, "sm enabled")
        .await?;
    if !e.is("enabled", ns::SM) {
        return Err(unexpected("waiting for <enabled/>", &e));
    }
    Ok(SmState::enabled(&e))
}

/// Creates an account by XEP-0077 in-band registration (the server must allow it).
pub async fn register_account(cfg: &ClientConfig, rec: &Recorder) -> Result<(), Error> {
    let (user, domain) = cfg.split_jid()?;
    let tcp = tokio::time::timeout(cfg.step_timeout, TcpStream::connect(cfg.server))
        .await
        .map_err(|_| Error::Timeout {
            waiting_for: format!("TCP connect to {}", cfg.server),
            arrived: vec![],
        })?
        .map_err(Error::io("connecting"))?;
    let mut wire = Wire::new(
        Transport::Tcp(tcp),
        rec.clone(),
        cfg.peer.clone(),
        ns::CLIENT,
    );
    let features = open(&mut wire, domain, cfg.step_timeout).await?;
    if let Some(tls) = &cfg.tls {
        if features.get_child("starttls", ns::TLS).is_none() {
            return Err(Error::NoStartTls(features.to_xml()));
        }
        wire.send(&Element::new("starttls", ns::TLS)).await?;
        let p = wire
            .recv_element(Instant::now() + cfg.step_timeout, "starttls proceed")
            .await?;
        if !p.is("proceed", ns::TLS) {
            return Err(unexpected("waiting for <proceed/>", &p));
        }
        let Wire { io, rec, peer, .. } = wire;
        wire = Wire::new(io.start_tls(tls).await?, rec, peer, ns::CLIENT);
        open(&mut wire, domain, cfg.step_timeout).await?;
    }
    let iq = Element::new("iq", ns::CLIENT)
        .attr("type", "set")
        .attr("id", "reg-1")
        .child(
            Element::new("query", ns::REGISTER)
                .child(Element::new("username", ns::REGISTER).text(user))
                .child(Element::new("password", ns::REGISTER).text(cfg.password.clone())),
        );
    wire_iq(&mut wire, iq, cfg.step_timeout).await?;
    let _ = wire
        .send_raw(b"</stream:stream>".to_vec(), "stream close".into())
        .await;
    Ok(())
}

impl Client {
    /// Logs in: TCP, STARTTLS, SASL, bind, SM enable (if configured), initial presence.
    pub async fn connect(cfg: ClientConfig, rec: Recorder) -> Result<Client, Error> {
        let mut c = Client {
            jid: String::new(),
            inbox: Inbox::new(),
            sm: None,
            conn: None,
            abandoned: Vec::new(),
            cfg,
            rec,
        };
        c.fresh_session().await?;
        Ok(c)
    }

    async fn fresh_session(&mut self) -> Result<(), Error> {
        let LoggedIn { mut wire, .. } = login(&self.cfg, &self.rec).await?;
        self.jid = bind(&mut wire, &self.cfg).await?;
        self.sm = None;
        if self.cfg.stream_management {
            self.sm = Some(Arc::new(Mutex::new(enable_sm(&mut wire, &self.cfg).await?)));
        }
        self.inbox.reopen();
        let conn = Connection::spawn(wire, self.inbox.clone(), self.sm.clone());
        self.conn = Some(conn);
        if self.cfg.initial_presence {
            self.send(Element::new("presence", ns::CLIENT)).await?;
        }
        Ok(())
    }

    /// The bound full JID.
    pub fn jid(&self) -> &str {
        &self.jid
    }

    /// The bare JID.
    pub fn bare_jid(&self) -> &str {
        self.jid.split('/').next().unwrap_or_default()
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// The recorder.
    pub fn recorder(&self) -> &Recorder {
        &self.rec
    }

    /// Received, unclaimed stanzas.
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// The stream management state, if SM is on.
    pub fn sm_state(&self) -> Option<SmState> {
        self.sm.as_ref().map(|s| lock(s).clone())
    }

    fn conn(&self) -> Result<&Connection, Error> {
        self.conn
            .as_ref()
            .ok_or_else(|| Error::NotConnected("asleep or closed".into()))
    }

    /// Sends an element (stanzas default to the c2s namespace when built with it).
    pub async fn send(&self, e: Element) -> Result<(), Error> {
        self.conn()?.send(e).await
    }

    /// Sends an IQ (an id is added if missing) and waits for its result within `within`.
    /// An `error` reply is [`Error::IqError`] with the stanza.
    pub async fn iq(&self, mut iq: Element, within: Duration) -> Result<Element, Error> {
        let id = match iq.get_attr("id") {
            Some(id) => id.to_string(),
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                iq.set_attr("id", id.clone());
                id
            }
        };
        let deadline = Instant::now() + within;
        self.send(iq).await?;
        let reply = self
            .inbox
            .wait_for(deadline, &format!("iq reply id={id}"), |e| {
                e.name() == "iq"
                    && e.get_attr("id") == Some(id.as_str())
                    && matches!(e.get_attr("type"), Some("result") | Some("error"))
            })
            .await?;
        match reply.get_attr("type") {
            Some("result") => Ok(reply),
            _ => Err(Error::IqError(reply.to_xml())),
        }
    }

    /// Waits within `within` for a stanza matching `pred`, claims and returns it.
    pub async fn wait_for(
        &self,
        within: Duration,
        waiting_for: &str,
        pred: impl FnMut(&Element) -> bool,
    ) -> Result<Element, Error> {
        self.inbox
            .wait_for(Instant::now() + within, waiting_for, pred)
            .await
    }

    /// Sends `<r/>` and waits until the server acked everything sent so far.
    pub async fn sync_acks(&self, within: Duration) -> Result<(), Error> {
        let sm = self
            .sm
            .clone()
            .ok_or_else(|| Error::NotConnected("stream management is off".into()))?;
        let target = lock(&sm).outbound;
        self.conn()?.request_ack().await?;
        let deadline = Instant::now() + within;
        loop {
            if lock(&sm).acked == target {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    waiting_for: format!("<a h='{target}'/>"),
                    arrived: self.inbox.pending_summaries(),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Forgets the XEP-0198 resumption state, as when iOS killed the app: the next
    /// [`Client::wake`] binds a new session.
    pub fn forget_resumption(&mut self) {
        if let Some(sm) = &self.sm {
            lock(sm).id = None;
        }
    }

    /// Stops (or restarts) answering the server's `<r/>`.
    pub fn set_auto_ack(&self, on: bool) -> Result<(), Error> {
        self.conn()?.set_auto_ack(on);
        Ok(())
    }

    /// Drops off the network the given way (no `</stream:stream>`).
    pub async fn sleep(&mut self, mode: SleepMode) -> Result<(), Error> {
        let conn = self.conn()?;
        conn.sleep(mode).await?;
        if mode != SleepMode::HalfOpen {
            self.conn = None;
        }
        Ok(())
    }

    /// Comes back: drops a half-open socket if any, reconnects, and resumes the session if
    /// stream management allows; otherwise binds a new session.
    pub async fn wake(&mut self) -> Result<WakeOutcome, Error> {
        if let Some(conn) = self.conn.take() {
            conn.drop_reset().await;
        }
        self.reconnect().await
    }

    /// Comes back on another network (flight mode ends): the half-open socket is left as it is,
    /// never read nor reset (the phone's new network cannot reach the old connection; the server
    /// finds out on its own), and the client reconnects and resumes as [`Client::wake`] does. The
    /// old socket is kept until the client is dropped.
    pub async fn wake_on_new_network(&mut self) -> Result<WakeOutcome, Error> {
        if let Some(conn) = self.conn.take() {
            self.abandoned.push(conn);
        }
        self.reconnect().await
    }

    async fn reconnect(&mut self) -> Result<WakeOutcome, Error> {
        let prev = self.sm_state().filter(|s| s.id.is_some());
        let Some(prev) = prev else {
            self.fresh_session().await?;
            return Ok(WakeOutcome::NewSession { failed: None });
        };
        let LoggedIn { mut wire, features } = login(&self.cfg, &self.rec).await?;
        if features.get_child("sm", ns::SM).is_none() {
            drop(wire);
            self.fresh_session().await?;
            return Ok(WakeOutcome::NewSession { failed: None });
        }
        let previd = prev.id.clone().unwrap_or_default();
        wire.send(
            &Element::new("resume", ns::SM)
                .attr("previd", previd)
                .attr("h", prev.inbound.to_string()),
        )
        .await?;
        let e = wire
            .recv_element(Instant::now() + self.cfg.step_timeout, "sm resumed")
            .await?;
        if e.is("resumed", ns::SM) {
            let h = parse_h(&e).map_err(|r| Error::Unexpected {
                context: r,
                raw: e.to_xml(),
            })?;
            let sm = self.sm.clone().expect("prev came from sm");
            let resend: Vec<Element> = {
                let mut st = lock(&sm);
                st.on_ack(h).map_err(|r| Error::Unexpected {
                    context: r,
                    raw: e.to_xml(),
                })?;
                st.outbound = h;
                st.unacked.drain(..).collect()
            };
            self.inbox.reopen();
            self.conn = Some(Connection::spawn(wire, self.inbox.clone(), Some(sm)));
            for s in resend {
                self.send(s).await?;
            }
            return Ok(WakeOutcome::Resumed { h });
        }
        if !e.is("failed", ns::SM) {
            return Err(unexpected("waiting for <resumed/> or <failed/>", &e));
        }
        let failed = Some(e.to_xml());
        // A failed resume leaves the stream usable for binding.
        self.jid = bind(&mut wire, &self.cfg).await?;
        self.sm = Some(Arc::new(Mutex::new(enable_sm(&mut wire, &self.cfg).await?)));
        self.inbox.reopen();
        self.conn = Some(Connection::spawn(wire, self.inbox.clone(), self.sm.clone()));
        if self.cfg.initial_presence {
            self.send(Element::new("presence", ns::CLIENT)).await?;
        }
        Ok(WakeOutcome::NewSession { failed })
    }

    /// Closes the stream properly (`</stream:stream>`), waiting for the server's within `within`.
    pub async fn close(mut self, within: Duration) -> Result<(), Error> {
        self.end_session(within).await
    }

    /// Like [`Client::close`] for a client that is shared: ends the session (the server forgets
    /// it, nothing to resume) and leaves the client disconnected.
    pub async fn end_session(&mut self, within: Duration) -> Result<(), Error> {
        self.forget_resumption();
        match self.conn.take() {
            Some(c) => c.close(within).await,
            None => Ok(()),
        }
    }
}
