//! The caller role: INVITE with SDP, observe provisional and final responses, CANCEL at a chosen
//! moment, ACK, BYE; plus MESSAGE and OPTIONS. Digest challenges (401/407) are answered once
//! when credentials are configured.

use crate::auth::{authorization, Credentials};
use crate::dialog::Dialog;
use crate::dispatch::{CallRoute, Core};
use crate::endpoint::Endpoint;
use crate::error::SipError;
use crate::inbox::{is_response_to, Inbox};
use crate::message::Message;
use crate::sdp::minimal_sdp;
use crate::syntax::{host_of, random_hex};
use crate::transaction::Event;
use crate::transport::EndpointConfig;
use crate::uri::SipUri;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use timeline::{lock, Recorder};
use tokio::sync::mpsc;

/// Who the caller is and where its requests go.
#[derive(Clone, Debug)]
pub struct CallerConfig {
    /// The caller's address of record (`sip:bob@example.com`), written in From.
    pub uri: SipUri,
    /// Optional display name (written quoted).
    pub display_name: Option<String>,
    /// Where every out-of-dialog request is sent (the gateway, or the callee directly).
    pub proxy: SocketAddr,
    /// Answers 401/407 when set.
    pub credentials: Option<Credentials>,
    /// ACK every 2xx to INVITE at once (default). When false, call [`Call::ack`].
    pub auto_ack: bool,
}

impl CallerConfig {
    /// A caller `uri` sending to `proxy`, auto-ACK on, no credentials.
    pub fn new(uri: SipUri, proxy: SocketAddr) -> CallerConfig {
        CallerConfig {
            uri,
            display_name: None,
            proxy,
            credentials: None,
            auto_ack: true,
        }
    }
}

/// A scriptable caller. Many calls may run at once on one caller.
#[derive(Clone, Debug)]
pub struct Caller {
    endpoint: Endpoint,
    cfg: Arc<CallerConfig>,
}

impl Caller {
    /// Binds an endpoint and returns the caller. `peer` labels the other end in the timeline.
    pub async fn new(
        endpoint: EndpointConfig,
        cfg: CallerConfig,
        recorder: Recorder,
        peer: impl Into<String>,
    ) -> Result<Caller, SipError> {
        let endpoint = Endpoint::bind(endpoint, recorder, peer).await?;
        Ok(Caller::on(endpoint, cfg))
    }

    /// A caller on an existing endpoint.
    pub fn on(endpoint: Endpoint, cfg: CallerConfig) -> Caller {
        Caller {
            endpoint,
            cfg: Arc::new(cfg),
        }
    }

    /// The endpoint (address, connections, raw sending).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn local_party(&self) -> String {
        let tag = random_hex();
        match &self.cfg.display_name {
            Some(d) => format!("\"{d}\" <{}>;tag={tag}", self.cfg.uri),
            None => format!("<{}>;tag={tag}", self.cfg.uri),
        }
    }

    fn new_request(&self, method: &str, target: &str, call_id: &str, seq: u32) -> Message {
        let core = self.endpoint.core();
        let (via, _) = core.new_via();
        let mut m = Message::request(method, target);
        m.push_header("Via", via);
        m.push_header("Max-Forwards", "70");
        m.push_header("From", self.local_party());
        m.push_header("To", format!("<{target}>"));
        m.push_header("Call-ID", call_id.to_owned());
        m.push_header("CSeq", format!("{seq} {method}"));
        if let Some(ua) = &core.cfg().user_agent {
            m.push_header("User-Agent", ua.clone());
        }
        m
    }

    /// Sends an INVITE to `target` (a SIP URI) with a minimal SDP offer; returns at once.
    pub fn invite(&self, target: &str) -> Result<Call, SipError> {
        let core = self.endpoint.core();
        let sdp = minimal_sdp(core.local(), core.next_id());
        self.invite_with(target, Some(("application/sdp", sdp.into_bytes())), &[])
    }

    /// Sends an INVITE with an optional body and extra header lines (written after the standard
    /// ones, before Content-Length).
    pub fn invite_with(
        &self,
        target: &str,
        body: Option<(&str, Vec<u8>)>,
        extra_headers: &[(&str, &str)],
    ) -> Result<Call, SipError> {
        SipUri::parse(target)?;
        let core = self.endpoint.core().clone();
        let call_id = format!("{}@{}", random_hex(), host_of(core.local().ip()));
        let mut invite = self.new_request("INVITE", target, &call_id, 1);
        invite.push_header(
            "Contact",
            format!("<{}>", core.contact_uri(self.cfg.uri.user_name())),
        );
        for (n, v) in extra_headers {
            invite.push_header(*n, *v);
        }
        match body {
            Some((ct, b)) => invite.set_body(ct, b),
            None => invite.set_header("Content-Length", "0"),
        }
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&core.routes).insert(
            call_id.clone(),
            CallRoute {
                events: tx.clone(),
                acks: Vec::new(),
                invite: self.cfg.auto_ack.then(|| (invite.clone(), self.cfg.proxy)),
            },
        );
        let call = Call {
            core: core.clone(),
            _endpoint: self.endpoint.clone(),
            cfg: self.cfg.clone(),
            call_id,
            invite: invite.clone(),
            dest: self.cfg.proxy,
            events: tx.clone(),
            inbox: Inbox::new(core.clone(), rx),
            dialog: None,
            auth_answered: false,
        };
        core.start_client(invite, self.cfg.proxy, tx, self.cfg.auto_ack)?;
        Ok(call)
    }

    async fn simple_request(
        &self,
        method: &str,
        target: &str,
        body: Option<(&str, &[u8])>,
        within: Duration,
    ) -> Result<Message, SipError> {
        SipUri::parse(target)?;
        let core = self.endpoint.core();
        let call_id = format!("{}@{}", random_hex(), host_of(core.local().ip()));
        let build = |seq: u32, auth: Option<(&str, String)>| {
            let mut m = self.new_request(method, target, &call_id, seq);
            if let Some((name, value)) = auth {
                m.push_header(name, value);
            }
            match body {
                Some((ct, b)) => m.set_body(ct, b.to_vec()),
                None => m.set_header("Content-Length", "0"),
            }
            m
        };
        let resp = core.request(build(1, None), self.cfg.proxy, within).await?;
        match (resp.status(), &self.cfg.credentials) {
            (Some(401 | 407), Some(creds)) => {
                let header = auth_header_for(&resp, creds, method, target)?;
                core.request(build(2, Some(header)), self.cfg.proxy, within)
                    .await
            }
            _ => Ok(resp),
        }
    }

    /// Sends a MESSAGE with a `text/plain` body and returns its final response.
    pub async fn message(
        &self,
        target: &str,
        text: &str,
        within: Duration,
    ) -> Result<Message, SipError> {
        self.simple_request(
            "MESSAGE",
            target,
            Some(("text/plain", text.as_bytes())),
            within,
        )
        .await
    }

    /// Sends an OPTIONS and returns its final response.
    pub async fn options(&self, target: &str, within: Duration) -> Result<Message, SipError> {
        self.simple_request("OPTIONS", target, None, within).await
    }
}

/// The Authorization / Proxy-Authorization header answering the challenge in `resp`.
pub(crate) fn auth_header_for(
    resp: &Message,
    creds: &Credentials,
    method: &str,
    uri: &str,
) -> Result<(&'static str, String), SipError> {
    let challenge = resp
        .challenge()?
        .ok_or_else(|| SipError::State(format!("{} carries no challenge", resp.summary())))?;
    let name = if resp.status() == Some(407) {
        "Proxy-Authorization"
    } else {
        "Authorization"
    };
    Ok((
        name,
        authorization(&challenge, creds, method, uri, &random_hex(), 1)?,
    ))
}

/// One outgoing call. Every response and in-dialog request is kept; steps take them in order.
pub struct Call {
    core: Arc<Core>,
    _endpoint: Endpoint,
    cfg: Arc<CallerConfig>,
    call_id: String,
    invite: Message,
    dest: SocketAddr,
    events: mpsc::UnboundedSender<Event>,
    inbox: Inbox,
    dialog: Option<Dialog>,
    auth_answered: bool,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("call_id", &self.call_id)
            .finish()
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        lock(&self.core.routes).remove(&self.call_id);
    }
}

impl Call {
    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The INVITE as last sent (after an auth retry, the authenticated one).
    pub fn invite(&self) -> &Message {
        &self.invite
    }

    /// Everything received for this call so far, in order.
    pub fn received(&self) -> &[Message] {
        &self.inbox.history
    }

    /// The dialog, once a 2xx arrived.
    pub fn dialog(&self) -> Option<&Dialog> {
        self.dialog.as_ref()
    }

    /// Handles what the step itself does not look at: digest challenges and the dialog.
    fn absorb(&mut self) -> Result<(), SipError> {
        for i in 0..self.inbox.history.len() {
            let m = &self.inbox.history[i];
            if !is_response_to(m, "INVITE") {
                continue;
            }
            let same_cseq = m.cseq().ok().map(|c| c.seq) == self.invite.cseq().ok().map(|c| c.seq);
            let status = m.status().unwrap_or(0);
            if (status == 401 || status == 407) && same_cseq && !self.auth_answered {
                if let Some(creds) = self.cfg.credentials.clone() {
                    let m = m.clone();
                    self.inbox.mark_taken(i);
                    self.auth_answered = true;
                    self.retry_with_auth(&m, &creds)?;
                }
            } else if (200..300).contains(&status) && self.dialog.is_none() {
                self.dialog = Some(Dialog::uac(&self.invite, m, self.dest)?);
            }
        }
        Ok(())
    }

    fn retry_with_auth(
        &mut self,
        challenge: &Message,
        creds: &Credentials,
    ) -> Result<(), SipError> {
        let target = self.invite.request_uri().unwrap_or("").to_owned();
        let (name, value) = auth_header_for(challenge, creds, "INVITE", &target)?;
        let mut invite = self.invite.clone();
        let (via, _) = self.core.new_via();
        invite.set_header("Via", via);
        let seq = invite.cseq()?.seq + 1;
        invite.set_header("CSeq", format!("{seq} INVITE"));
        let body = invite.body.clone();
        let ct = invite.header("Content-Type").map(str::to_owned);
        invite.remove_header("Content-Length");
        invite.remove_header("Content-Type");
        invite.push_header(name, value);
        match ct {
            Some(ct) => invite.set_body(&ct, body),
            None => invite.set_header("Content-Length", "0"),
        }
        self.invite = invite.clone();
        if let Some(r) = lock(&self.core.routes).get_mut(&self.call_id) {
            if self.cfg.auto_ack {
                r.invite = Some((invite.clone(), self.dest));
            }
        }
        self.core
            .start_client(invite, self.dest, self.events.clone(), self.cfg.auto_ack)
    }

    async fn wait(
        &mut self,
        what: String,
        within: Duration,
        matches: impl Fn(&Message) -> bool,
        fails: impl Fn(&Message) -> bool,
    ) -> Result<Message, SipError> {
        let deadline = tokio::time::Instant::now() + within;
        let mark = self.inbox.malformed_mark();
        loop {
            self.absorb()?;
            if let Some(m) = self.inbox.take(&matches) {
                return Ok(m);
            }
            if let Some(m) = self.inbox.peek(&fails) {
                return Err(SipError::UnexpectedResponse {
                    status: m.status().unwrap_or(0),
                    waiting_for: what,
                    response: Box::new(m),
                });
            }
            if self.inbox.pull(deadline).await?.is_none() {
                return Err(self.inbox.timeout_error(mark, what, within));
            }
        }
    }

    /// Waits for a response to the INVITE with this status ("await 180 within 2 s"). A final
    /// response with another status fails at once.
    pub async fn await_status(&mut self, code: u16, within: Duration) -> Result<Message, SipError> {
        self.wait(
            format!("{code} to INVITE"),
            within,
            |m| is_response_to(m, "INVITE") && m.status() == Some(code),
            |m| is_response_to(m, "INVITE") && m.status().is_some_and(|s| s >= 200 && s != code),
        )
        .await
    }

    /// Waits for any provisional response (101–199) to the INVITE.
    pub async fn await_provisional(&mut self, within: Duration) -> Result<Message, SipError> {
        self.wait(
            "a provisional response to INVITE".into(),
            within,
            |m| is_response_to(m, "INVITE") && m.status().is_some_and(|s| (101..200).contains(&s)),
            |m| is_response_to(m, "INVITE") && m.status().is_some_and(|s| s >= 200),
        )
        .await
    }

    /// Waits for the final response to the INVITE, whatever it is.
    pub async fn await_final(&mut self, within: Duration) -> Result<Message, SipError> {
        self.wait(
            "a final response to INVITE".into(),
            within,
            |m| is_response_to(m, "INVITE") && m.status().is_some_and(|s| s >= 200),
            |_| false,
        )
        .await
    }

    /// Waits for a 2xx to the INVITE (the call is answered); another final response fails.
    pub async fn await_answered(&mut self, within: Duration) -> Result<Message, SipError> {
        self.wait(
            "2xx to INVITE".into(),
            within,
            |m| is_response_to(m, "INVITE") && m.status().is_some_and(|s| (200..300).contains(&s)),
            |m| is_response_to(m, "INVITE") && m.status().is_some_and(|s| s >= 300),
        )
        .await
    }

    /// Sends CANCEL for the INVITE now (even before a provisional response: the bench may
    /// want that) and waits for the CANCEL's own final response. The INVITE's 487 is then
    /// awaited with `await_status(487, …)`.
    pub async fn cancel(&mut self, within: Duration) -> Result<Message, SipError> {
        let inv = &self.invite;
        let mut cancel = Message::request("CANCEL", inv.request_uri().unwrap_or(""));
        if let Some(v) = inv.header_values("Via").first() {
            cancel.push_header("Via", *v);
        }
        for r in inv.header_lines("Route") {
            cancel.push_header("Route", r);
        }
        cancel.push_header("Max-Forwards", "70");
        for name in ["From", "To", "Call-ID"] {
            if let Some(v) = inv.header(name) {
                cancel.push_header(name, v);
            }
        }
        cancel.push_header("CSeq", format!("{} CANCEL", inv.cseq()?.seq));
        cancel.push_header("Content-Length", "0");
        self.core
            .start_client(cancel, self.dest, self.events.clone(), false)?;
        self.wait(
            "final response to CANCEL".into(),
            within,
            |m| is_response_to(m, "CANCEL") && m.status().is_some_and(|s| s >= 200),
            |_| false,
        )
        .await
    }

    /// Sends the ACK for the 2xx (only needed when `auto_ack` is off).
    pub fn ack(&mut self) -> Result<(), SipError> {
        self.absorb()?;
        let ok = self
            .inbox
            .history
            .iter()
            .find(|m| {
                is_response_to(m, "INVITE") && m.status().is_some_and(|s| (200..300).contains(&s))
            })
            .cloned()
            .ok_or_else(|| SipError::State("no 2xx to ACK yet".into()))?;
        self.core.ack_2xx(&self.invite, &ok, self.dest);
        Ok(())
    }

    /// Sends an in-dialog request (BYE, INFO, MESSAGE…) and waits for its final response.
    pub async fn request_in_dialog(
        &mut self,
        method: &str,
        within: Duration,
    ) -> Result<Message, SipError> {
        self.absorb()?;
        let (via, _) = self.core.new_via();
        let dialog = self
            .dialog
            .as_mut()
            .ok_or_else(|| SipError::State(format!("{method} before the call was answered")))?;
        let mut req = dialog.next_request(method, &via);
        req.push_header("Content-Length", "0");
        let seq = dialog.local_cseq;
        let dest = dialog.dest;
        self.core
            .start_client(req, dest, self.events.clone(), false)?;
        let m = method.to_owned();
        self.wait(
            format!("final response to {method}"),
            within,
            move |r| {
                is_response_to(r, &m)
                    && r.cseq().is_ok_and(|c| c.seq == seq)
                    && r.status().is_some_and(|s| s >= 200)
            },
            |_| false,
        )
        .await
    }

    /// Hangs up an answered call: BYE, and returns its final response.
    pub async fn bye(&mut self, within: Duration) -> Result<Message, SipError> {
        let r = self.request_in_dialog("BYE", within).await?;
        lock(&self.core.routes).remove(&self.call_id);
        Ok(r)
    }

    /// Waits for a request from the peer inside this call (e.g. `BYE` when the callee hangs
    /// up; the endpoint has already answered it 200).
    pub async fn await_request(
        &mut self,
        method: &str,
        within: Duration,
    ) -> Result<Message, SipError> {
        let m = method.to_owned();
        self.wait(
            format!("{method} from the peer"),
            within,
            move |r| r.method() == Some(m.as_str()),
            |_| false,
        )
        .await
    }
}
