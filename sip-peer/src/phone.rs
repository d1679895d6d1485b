//! The phone account: the SIP account inside the simulated iPhone. It REGISTERs with RFC 8599
//! push parameters, refreshes and unregisters, follows a policy for incoming INVITEs (or hands
//! them to the script), answers CANCEL with 200 + 487 and BYE with 200, and has a flight-mode
//! switch and a `wake` that re-registers, optionally on a new connection.

use crate::auth::Credentials;
use crate::caller::auth_header_for;
use crate::dialog::Dialog;
use crate::dispatch::{CallRoute, Core};
use crate::endpoint::Endpoint;
use crate::error::SipError;
use crate::inbox::{is_response_to, Inbox};
use crate::message::{build_response, reason_phrase, Message};
use crate::push::PushParams;
use crate::sdp::minimal_sdp;
use crate::syntax::random_hex;
use crate::transaction::server::IncomingRequest;
use crate::transport::{EndpointConfig, Offline};
use crate::uri::SipUri;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timeline::{lock, Recorder};
use tokio::sync::mpsc;

/// What the phone does by itself when an INVITE arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncomingPolicy {
    /// 100, then 180 Ringing, then wait for the script.
    Ring,
    /// 100, 180, then 200 after the delay.
    RingThenAnswer(Duration),
    /// 100 then 200 at once (fast answer).
    AnswerAtOnce,
    /// 100 then this final status (486, 603…).
    Reject(u16),
    /// Send nothing at all.
    Ignore,
    /// 100 only; the script decides through [`IncomingCall`].
    Manual,
}

/// The account's identity, its registrar and its push parameters.
#[derive(Clone, Debug)]
pub struct PhoneConfig {
    /// Address of record (`sip:alice@example.com`), in From and To of REGISTER.
    pub aor: SipUri,
    /// Where REGISTER goes (the gateway).
    pub registrar: SocketAddr,
    /// Request-URI of REGISTER; defaults to `sip:<aor host>`.
    pub registrar_uri: Option<SipUri>,
    /// Answers 401/407 when set.
    pub credentials: Option<Credentials>,
    /// RFC 8599 parameters put in the Contact URI.
    pub push: Option<PushParams>,
    /// `+sip.instance` value, e.g. `<urn:uuid:…>` (written quoted).
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626).
    pub reg_id: Option<u32>,
    /// Put the `+sip.pnsreg` feature tag in the Contact.
    pub pnsreg: bool,
    /// Requested binding lifetime in seconds.
    pub expires: u32,
    /// What to do with incoming INVITEs.
    pub policy: IncomingPolicy,
    /// How many incoming calls wait for [`PhoneAccount::next_call`] before new ones are dropped
    /// from the queue (they are still handled by the policy).
    pub call_queue: usize,
}

impl PhoneConfig {
    /// An account `aor` registering at `registrar`, policy [`IncomingPolicy::Ring`], 3600 s.
    pub fn new(aor: SipUri, registrar: SocketAddr) -> PhoneConfig {
        PhoneConfig {
            aor,
            registrar,
            registrar_uri: None,
            credentials: None,
            push: None,
            instance: None,
            reg_id: None,
            pnsreg: false,
            expires: 3600,
            policy: IncomingPolicy::Ring,
            call_queue: 64,
        }
    }
}

/// The outcome of a REGISTER.
#[derive(Clone, Debug)]
pub struct Registration {
    /// The 2xx.
    pub response: Message,
    /// Granted lifetime: our Contact's `expires` in the 2xx, else its Expires header.
    pub expires: Option<u32>,
    /// `+sip.pns` from Feature-Caps (RFC 8599 §8.2): the provider the network will push for.
    pub pns: Option<String>,
    /// Every Feature-Caps value, as written.
    pub feature_caps: Vec<String>,
}

struct RegState {
    call_id: String,
    from_tag: String,
    cseq: u32,
    push: Option<PushParams>,
}

struct Shared {
    policy: Mutex<IncomingPolicy>,
    // Boxed: a channel allocates room for 32 items when it is made, and an idle account should
    // not carry 32 unboxed calls (~1 KB each) and messages it may never receive.
    calls: mpsc::Sender<Box<IncomingCall>>,
    messages: mpsc::Sender<Box<Message>>,
    user: Option<String>,
}

/// A phone account. See the module documentation.
pub struct PhoneAccount {
    endpoint: Endpoint,
    cfg: PhoneConfig,
    shared: Arc<Shared>,
    calls: tokio::sync::Mutex<mpsc::Receiver<Box<IncomingCall>>>,
    messages: tokio::sync::Mutex<mpsc::Receiver<Box<Message>>>,
    reg: Mutex<RegState>,
    /// What 401/407 are answered with; starts as [`PhoneConfig::credentials`].
    credentials: Mutex<Option<Credentials>>,
}

impl std::fmt::Debug for PhoneAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneAccount")
            .field("aor", &self.cfg.aor.to_string())
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl PhoneAccount {
    /// Binds an endpoint and returns the account (not yet registered).
    pub async fn start(
        endpoint: EndpointConfig,
        cfg: PhoneConfig,
        recorder: Recorder,
        peer: impl Into<String>,
    ) -> Result<PhoneAccount, SipError> {
        let endpoint = Endpoint::bind(endpoint, recorder, peer).await?;
        let (tx, rx) = mpsc::channel(cfg.call_queue.max(1));
        let (mtx, mrx) = mpsc::channel(cfg.call_queue.max(1));
        let shared = Arc::new(Shared {
            policy: Mutex::new(cfg.policy),
            calls: tx,
            messages: mtx,
            user: cfg.aor.user_name().map(str::to_owned),
        });
        let s = shared.clone();
        let _ = endpoint
            .core()
            .handler
            .set(Box::new(move |core, req| on_request(core, &s, req)));
        let push = cfg.push.clone();
        let credentials = Mutex::new(cfg.credentials.clone());
        Ok(PhoneAccount {
            endpoint,
            credentials,
            cfg,
            shared,
            calls: tokio::sync::Mutex::new(rx),
            messages: tokio::sync::Mutex::new(mrx),
            reg: Mutex::new(RegState {
                call_id: format!("{}@pushbench", random_hex()),
                from_tag: random_hex(),
                cseq: 0,
                push,
            }),
        })
    }

    /// The endpoint (address, connections, raw sending).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The configuration.
    pub fn config(&self) -> &PhoneConfig {
        &self.cfg
    }

    /// The Contact URI as registered (with the current `pn-*` parameters).
    pub fn contact_uri(&self) -> SipUri {
        let mut uri = self
            .endpoint
            .core()
            .contact_uri(self.shared.user.as_deref());
        if let Some(p) = &lock(&self.reg).push {
            p.apply_to(&mut uri);
        }
        uri
    }

    /// Replaces the push parameters (token rotation); takes effect on the next REGISTER.
    pub fn set_push(&self, push: Option<PushParams>) {
        lock(&self.reg).push = push;
    }

    /// Changes the incoming-call policy.
    pub fn set_policy(&self, policy: IncomingPolicy) {
        *lock(&self.shared.policy) = policy;
    }

    /// Flight mode on or off.
    pub fn set_offline(&self, mode: Offline) {
        self.endpoint.set_offline(mode);
    }

    fn contact_value(&self, uri: &SipUri, expires: Option<u32>) -> String {
        let mut v = format!("<{uri}>");
        if let Some(i) = &self.cfg.instance {
            v.push_str(&format!(";+sip.instance=\"{i}\""));
        }
        if let Some(r) = self.cfg.reg_id {
            v.push_str(&format!(";reg-id={r}"));
        }
        if self.cfg.pnsreg {
            v.push_str(";+sip.pnsreg");
        }
        if let Some(e) = expires {
            v.push_str(&format!(";expires={e}"));
        }
        v
    }

    fn register_request(
        &self,
        contact: &str,
        expires: u32,
        auth: Option<(&str, String)>,
    ) -> Message {
        let core = self.endpoint.core();
        let (via, _) = core.new_via();
        let target = self.registrar_uri();
        let (call_id, tag, seq) = {
            let mut r = lock(&self.reg);
            r.cseq += 1;
            (r.call_id.clone(), r.from_tag.clone(), r.cseq)
        };
        let mut m = Message::request("REGISTER", target.to_string());
        m.push_header("Via", via);
        m.push_header("Max-Forwards", "70");
        m.push_header("From", format!("<{}>;tag={tag}", self.cfg.aor));
        m.push_header("To", format!("<{}>", self.cfg.aor));
        m.push_header("Call-ID", call_id);
        m.push_header("CSeq", format!("{seq} REGISTER"));
        m.push_header("Contact", contact);
        m.push_header("Expires", expires.to_string());
        if let Some((name, value)) = auth {
            m.push_header(name, value);
        }
        if let Some(ua) = &core.cfg().user_agent {
            m.push_header("User-Agent", ua.clone());
        }
        m.push_header("Content-Length", "0");
        m
    }

    fn registrar_uri(&self) -> SipUri {
        self.cfg
            .registrar_uri
            .clone()
            .unwrap_or_else(|| SipUri::sip(None, &self.cfg.aor.host, self.cfg.aor.port))
    }

    async fn send_register(
        &self,
        contact: String,
        expires: u32,
        within: Duration,
    ) -> Result<Registration, SipError> {
        let core = self.endpoint.core();
        let req = self.register_request(&contact, expires, None);
        let mut resp = core.request(req, self.cfg.registrar, within).await?;
        let creds = lock(&self.credentials).clone();
        if let (Some(401 | 407), Some(creds)) = (resp.status(), creds) {
            let header =
                auth_header_for(&resp, &creds, "REGISTER", &self.registrar_uri().to_string())?;
            let req = self.register_request(&contact, expires, Some(header));
            resp = core.request(req, self.cfg.registrar, within).await?;
        }
        let status = resp.status().unwrap_or(0);
        if !(200..300).contains(&status) {
            return Err(SipError::UnexpectedResponse {
                status,
                waiting_for: "2xx to REGISTER".into(),
                response: Box::new(resp),
            });
        }
        let ours = self.contact_uri();
        let granted = resp.contacts().ok().and_then(|cs| {
            cs.iter().find_map(|c| {
                let a = c.addr()?;
                (a.uri.host == ours.host && a.uri.port == ours.port)
                    .then(|| c.expires())
                    .flatten()
            })
        });
        Ok(Registration {
            expires: granted.or(resp.expires().ok().flatten()),
            pns: resp.feature_cap("+sip.pns"),
            feature_caps: resp.feature_caps().into_iter().map(str::to_owned).collect(),
            response: resp,
        })
    }

    /// Changes what the next REGISTERs answer a 401/407 with (`None`: they do not answer it).
    pub fn set_credentials(&self, credentials: Option<Credentials>) {
        *lock(&self.credentials) = credentials;
    }

    /// Reopens the sockets on a new port when they are closed: an app iOS killed runs again only
    /// as a new process.
    async fn reopen_if_closed(&self) -> Result<(), SipError> {
        if self.endpoint.is_closed() {
            self.endpoint.set_offline(Offline::Online);
            self.endpoint.reopen().await?;
        }
        Ok(())
    }

    /// REGISTERs (or refreshes) the binding with the current push parameters; a 401/407 is
    /// answered once with the credentials. Anything but a 2xx is an error. An account whose
    /// sockets are closed ([`PhoneAccount::close`]) first reopens them on a new port.
    pub async fn register(&self, within: Duration) -> Result<Registration, SipError> {
        self.reopen_if_closed().await?;
        let contact = self.contact_value(&self.contact_uri(), None);
        self.send_register(contact, self.cfg.expires, within).await
    }

    /// Same as [`PhoneAccount::register`]: a binding refresh.
    pub async fn refresh(&self, within: Duration) -> Result<Registration, SipError> {
        self.register(within).await
    }

    /// Removes the binding: Expires 0, and no `pn-prid` in the Contact (RFC 8599 §4.1.2).
    pub async fn unregister(&self, within: Duration) -> Result<Registration, SipError> {
        self.reopen_if_closed().await?;
        let mut uri = self.contact_uri();
        uri.remove_param("pn-prid");
        let contact = self.contact_value(&uri, Some(0));
        self.send_register(contact, 0, within).await
    }

    /// Removes every binding of the AOR (`Contact: *`, Expires 0).
    pub async fn unregister_all(&self, within: Duration) -> Result<Registration, SipError> {
        self.reopen_if_closed().await?;
        self.send_register("*".into(), 0, within).await
    }

    /// The app's process is gone (iOS suspended or killed it): the socket or listener and every
    /// connection are closed; nothing sent to the old address is read or buffered, and UDP to
    /// the old port gets ICMP port unreachable. [`PhoneAccount::relaunch`] or any REGISTER
    /// brings it back on a new port.
    pub fn close(&self) {
        self.endpoint.close_sockets();
    }

    /// Relaunched by a push, as PushKit does: a new socket (UDP) or listener and connection
    /// (TCP/TLS) on a new local port, so a new Contact, with the same `+sip.instance` and
    /// `reg-id`, then a REGISTER.
    pub async fn relaunch(&self, within: Duration) -> Result<Registration, SipError> {
        self.endpoint.set_offline(Offline::Online);
        self.endpoint.reopen().await?;
        self.register(within).await
    }

    /// Wakes a suspended app that kept its socket: leaves flight mode, optionally drops the
    /// connections (the next REGISTER opens a new one), and REGISTERs from the same port.
    pub async fn wake(
        &self,
        new_connection: bool,
        within: Duration,
    ) -> Result<Registration, SipError> {
        self.endpoint.set_offline(Offline::Online);
        if new_connection {
            self.endpoint.close_connections();
        }
        self.register(within).await
    }

    /// Waits for the next out-of-dialog MESSAGE (already answered 200).
    pub async fn next_message(&self, within: Duration) -> Result<Message, SipError> {
        let mark = self.endpoint.core().net().malformed_mark();
        let mut rx = self.messages.lock().await;
        match tokio::time::timeout(within, rx.recv()).await {
            Ok(Some(m)) => Ok(*m),
            Ok(None) => Err(SipError::State("the phone's endpoint is gone".into())),
            Err(_) => Err(self.endpoint.core().net().timeout_error(
                mark,
                "an incoming MESSAGE".into(),
                within,
                Vec::new(),
            )),
        }
    }

    /// Waits for the next incoming INVITE (whatever the policy did with it).
    pub async fn next_call(&self, within: Duration) -> Result<IncomingCall, SipError> {
        let mark = self.endpoint.core().net().malformed_mark();
        let mut rx = self.calls.lock().await;
        match tokio::time::timeout(within, rx.recv()).await {
            Ok(Some(c)) => Ok(*c),
            Ok(None) => Err(SipError::State("the phone's endpoint is gone".into())),
            Err(_) => Err(self.endpoint.core().net().timeout_error(
                mark,
                "an incoming INVITE".into(),
                within,
                Vec::new(),
            )),
        }
    }
}

fn on_request(core: &Arc<Core>, shared: &Arc<Shared>, req: IncomingRequest) {
    match req.message.method().unwrap_or("") {
        "INVITE" => on_invite(core, shared, req),
        "MESSAGE" => {
            let _ = core.respond_with(&req, 200, None, None);
            if shared.messages.try_send(Box::new(req.message)).is_err() {
                core.recorder()
                    .note("incoming MESSAGE not queued (queue full)");
            }
        }
        "OPTIONS" | "NOTIFY" => {
            let _ = core.respond_with(&req, 200, None, None);
        }
        _ => {
            let _ = core.respond_with(&req, 405, None, None);
        }
    }
}

fn on_invite(core: &Arc<Core>, shared: &Arc<Shared>, req: IncomingRequest) {
    let policy = *lock(&shared.policy);
    let Ok(call_id) = req.message.call_id().map(str::to_owned) else {
        let _ = core.respond_with(&req, 400, None, None);
        return;
    };
    if policy != IncomingPolicy::Ignore {
        let _ = core.respond_with(&req, 100, None, None);
    }
    let (tx, rx) = mpsc::unbounded_channel();
    lock(&core.routes).insert(
        call_id,
        CallRoute {
            events: tx,
            acks: Vec::new(),
            invite: None,
        },
    );
    let mut call = IncomingCall {
        core: core.clone(),
        contact: core.contact_uri(shared.user.as_deref()),
        to_tag: random_hex(),
        req,
        inbox: Inbox::new(core.clone(), rx),
        dialog: None,
    };
    let _ = match policy {
        IncomingPolicy::Ring => call.ring(),
        IncomingPolicy::AnswerAtOnce => call.answer(),
        IncomingPolicy::Reject(code) => call.reject(code),
        IncomingPolicy::RingThenAnswer(delay) => {
            let r = call.ring();
            let core = core.clone();
            let ok = call.answer_response();
            let req = call.req.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                // Fails harmlessly when the call was cancelled meanwhile.
                let _ = core.respond(&req, ok);
            });
            r
        }
        IncomingPolicy::Ignore | IncomingPolicy::Manual => Ok(()),
    };
    if shared.calls.try_send(Box::new(call)).is_err() {
        core.recorder()
            .note("incoming call not queued (queue full or nobody listening)");
    }
}

/// An incoming INVITE and what happened to it since.
pub struct IncomingCall {
    core: Arc<Core>,
    contact: SipUri,
    to_tag: String,
    req: IncomingRequest,
    inbox: Inbox,
    dialog: Option<Dialog>,
}

impl std::fmt::Debug for IncomingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingCall")
            .field("invite", &self.req.message.summary())
            .finish()
    }
}

impl IncomingCall {
    /// The INVITE.
    pub fn request(&self) -> &Message {
        &self.req.message
    }

    /// Its Call-ID.
    pub fn call_id(&self) -> &str {
        self.req.message.call_id().unwrap_or("")
    }

    /// Where it came from.
    pub fn source(&self) -> SocketAddr {
        self.req.source
    }

    /// Everything received in this call after the INVITE (ACK, CANCEL, BYE…).
    pub fn received(&self) -> &[Message] {
        &self.inbox.history
    }

    fn response(&self, code: u16) -> Message {
        let mut r = build_response(
            &self.req.message,
            code,
            reason_phrase(code),
            Some(&self.to_tag),
        );
        if code < 300 {
            r.push_header("Contact", format!("<{}>", self.contact));
        }
        r
    }

    fn answer_response(&self) -> Message {
        let mut r = self.response(200);
        let sdp = minimal_sdp(self.core.local(), self.core.next_id());
        r.set_body("application/sdp", sdp.into_bytes());
        r
    }

    /// Sends 180 Ringing.
    pub fn ring(&self) -> Result<(), SipError> {
        let mut r = self.response(180);
        r.set_header("Content-Length", "0");
        self.core.respond(&self.req, r)
    }

    /// Sends 200 OK with SDP (retransmitted over UDP until the ACK). Fails if the call was
    /// already answered, rejected or cancelled.
    pub fn answer(&mut self) -> Result<(), SipError> {
        let ok = self.answer_response();
        self.core.respond(&self.req, ok)?;
        self.dialog = Some(Dialog::uas(
            &self.req.message,
            &self.to_tag,
            self.req.source,
        )?);
        Ok(())
    }

    /// Sends a final error response (486, 603…).
    pub fn reject(&self, code: u16) -> Result<(), SipError> {
        if !(300..700).contains(&code) {
            return Err(SipError::State(format!("{code} is not a rejection")));
        }
        let mut r = self.response(code);
        r.set_header("Content-Length", "0");
        self.core.respond(&self.req, r)
    }

    async fn await_method(&mut self, method: &str, within: Duration) -> Result<Message, SipError> {
        let m = method.to_owned();
        self.inbox
            .wait(
                &format!("{method} for the incoming call"),
                within,
                move |r| r.method() == Some(m.as_str()),
                |_| false,
            )
            .await
    }

    /// Waits for the ACK of our 2xx (or of our error response).
    pub async fn await_ack(&mut self, within: Duration) -> Result<Message, SipError> {
        self.await_method("ACK", within).await
    }

    /// Waits for the caller's CANCEL (already answered 200, and the INVITE 487).
    pub async fn await_cancel(&mut self, within: Duration) -> Result<Message, SipError> {
        self.await_method("CANCEL", within).await
    }

    /// Waits for the caller's BYE (already answered 200).
    pub async fn await_bye(&mut self, within: Duration) -> Result<Message, SipError> {
        self.await_method("BYE", within).await
    }

    /// Hangs up an answered call: sends BYE and returns its final response.
    pub async fn bye(&mut self, within: Duration) -> Result<Message, SipError> {
        if self.dialog.is_none() {
            // Answered by the policy: build the dialog now.
            self.dialog = Some(Dialog::uas(
                &self.req.message,
                &self.to_tag,
                self.req.source,
            )?);
        }
        let (via, _) = self.core.new_via();
        let Some(dialog) = self.dialog.as_mut() else {
            return Err(SipError::State("no dialog".into()));
        };
        let mut bye = dialog.next_request("BYE", &via);
        bye.push_header("Content-Length", "0");
        let seq = dialog.local_cseq;
        let dest = dialog.dest;
        let (tx, rx) = mpsc::unbounded_channel();
        self.core.start_client(bye, dest, tx, false)?;
        let mut inbox = Inbox::new(self.core.clone(), rx);
        let result = inbox
            .wait(
                "final response to BYE",
                within,
                move |r| {
                    is_response_to(r, "BYE")
                        && r.cseq().is_ok_and(|c| c.seq == seq)
                        && r.status().is_some_and(|s| s >= 200)
                },
                |_| false,
            )
            .await;
        if result.is_ok() {
            // The dialog is over: in-dialog requests for it now get 481.
            lock(&self.core.routes).remove(self.req.message.call_id().unwrap_or(""));
        }
        result
    }
}
