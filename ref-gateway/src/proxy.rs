//! The stateful proxy and registrar core: one task owns all state (registrar, calls, bucket,
//! dialogs) and handles one event at a time — a SIP message from a flow, a push result, a timer.
//!
//! - INVITE / MESSAGE to an AOR: 100 Trying at once (INVITE); awake contacts are forked at once;
//!   every push-bound binding gets one push (de-duplicated per Call-ID and token) and a bucket
//!   entry; a REGISTER matching on the `pn-*` parameters releases the entry to its flow; the
//!   Bucket Timer or a failed push answers 480.
//! - Forking: the first 2xx wins and is forwarded; the other branches get CANCEL with
//!   `Reason: SIP;cause=200;text="Call completed elsewhere"`; bucket entries follow the profile.
//! - CANCEL: 200 + 487 upstream at once; branches cancelled; bucket entries follow the profile.
//! - In-dialog requests (ACK for 2xx, BYE, re-INVITE) follow the Record-Route the proxy put in:
//!   they are sent over the flow of the other side of the dialog.

use crate::bucket::{BucketEntry, EntryState};
use crate::call_push::PushBuilder;
use crate::cancel::{on_call_ended, OnCallEnded, ANSWERED_ELSEWHERE, BUSY_EVERYWHERE};
use crate::config::{Account, GatewayConfig, Timers};
use crate::faults::{Fault, Faults};
use crate::flow::{Flow, Inbound, Listeners};
use crate::profile::Profile;
use crate::push::{now_ms, target_for, PushOutcome, Pusher};
use crate::registrar::{aor_key, Binding, Registrar};
use phone::CancelReason;
use sip_peer::long_header_name;
use sip_peer::split_list;
use sip_peer::{build_non2xx_ack, build_response};
use sip_peer::{Header, Message, NameAddr, SipUri, StartLine, Transport};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use timeline::Recorder;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// Something for the core to handle.
pub(crate) enum Event {
    /// A SIP message arrived.
    Inbound(Inbound),
    /// A delayed push is due.
    PushDue { call: u64, binding: u64 },
    /// A push got its answer.
    PushDone {
        call: u64,
        binding: u64,
        aor: String,
        outcome: PushOutcome,
    },
    /// A call's Bucket Timer fired.
    BucketTimer { call: u64 },
    /// A finished call may be forgotten.
    Linger { call: u64 },
    /// UDP: resend a forwarded request that has no response yet (Timers A/E).
    ResendRequest {
        branch: String,
        wait: Duration,
        left: u32,
    },
    /// UDP: resend a call's non-2xx final response until its ACK (Timer G).
    ResendFinal {
        call: u64,
        wait: Duration,
        left: u32,
    },
    /// Switch faults at run time.
    SetFaults(Faults),
    /// Change the push delay at run time.
    SetPushDelay(Duration),
    /// Replace the digest accounts at run time.
    SetAccounts(Vec<Account>),
    /// Read the bindings of an AOR.
    Bindings(String, oneshot::Sender<Vec<Binding>>),
    /// Count the calls still held.
    Calls(oneshot::Sender<usize>),
}

/// One forwarded copy of a call's request.
struct Branch {
    /// The branch parameter of our Via.
    id: String,
    flow: Flow,
    request: Message,
    provisional: bool,
    done: bool,
    cancelled: bool,
    /// A CANCEL waiting for the first provisional (RFC 3261 §9.1), with its Reason.
    pending_cancel: Option<Option<String>>,
    /// Sent for a call that had already ended (replay): responses are not forwarded.
    replay: bool,
}

/// One INVITE or MESSAGE from a caller and everything it became.
struct Call {
    method: String,
    request: Message,
    upstream: Flow,
    server_key: String,
    call_id: String,
    caller: String,
    to_tag: String,
    last_response: Option<Message>,
    final_sent: bool,
    answered: bool,
    branches: Vec<Branch>,
    bucket: Vec<BucketEntry>,
    best: Option<Message>,
    timer: Option<AbortHandle>,
    /// The ACK of our non-2xx final arrived (stops Timer G).
    acked: bool,
}

/// An in-dialog request relayed statelessly, waiting for its response.
struct Relay {
    upstream: Flow,
    dest: Flow,
    request: Message,
    answered: bool,
}

/// Where the requests of an established dialog go.
struct DialogRoute {
    caller_tag: String,
    caller_flow: Flow,
    callee_flow: Flow,
}

/// Sends messages over flows, recording failures (cloned where `self` is borrowed).
#[derive(Clone)]
struct Out {
    listeners: Arc<Listeners>,
    recorder: Recorder,
}

impl Out {
    fn send(&self, flow: &Flow, msg: &Message) {
        if let Err(e) = self.listeners.send(flow, msg.to_bytes(), &msg.summary()) {
            tracing::debug!(%flow, error = %e, what = %msg.summary(), "send failed");
            self.recorder
                .note(format!("not sent: {}: {e}", msg.summary()));
        }
    }
}

pub(crate) struct Proxy {
    out: Out,
    domain: String,
    profile: Profile,
    timers: Timers,
    accounts: Vec<Account>,
    faults: Faults,
    listeners: Arc<Listeners>,
    pusher: Pusher,
    events: mpsc::UnboundedSender<Event>,
    recorder: Recorder,
    registrar: Registrar,
    calls: HashMap<u64, Call>,
    server_index: HashMap<String, u64>,
    client_index: HashMap<String, (u64, usize)>,
    relays: HashMap<String, Relay>,
    dialogs: HashMap<String, DialogRoute>,
    pushed: HashSet<(String, String)>,
    pushed_order: VecDeque<(String, String)>,
    nonces: VecDeque<String>,
    next_call: u64,
}

const PUSHED_MEMORY: usize = 10_000;
const NONCE_MEMORY: usize = 1_000;
/// Fault `stale-bindings`: how long an expired binding lingers before the sweep removes it.
const STALE_SWEEP: Duration = Duration::from_secs(60);

fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

fn server_key(msg: &Message) -> Option<String> {
    let via = msg.top_via().ok()?;
    let branch = via.branch()?.to_owned();
    let method = match msg.method()? {
        "ACK" | "CANCEL" => "INVITE",
        m => m,
    };
    Some(format!(
        "{branch}|{}:{}|{method}",
        via.host,
        via.port.unwrap_or(0)
    ))
}

fn set_request_uri(msg: &mut Message, uri: &str) {
    if let StartLine::Request { uri: u, .. } = &mut msg.start {
        *u = uri.to_owned();
    }
}

/// Removes the first Via value (ours) from a response.
fn pop_via(msg: &mut Message) {
    let Some(pos) = msg
        .headers
        .iter()
        .position(|h| long_header_name(&h.name).eq_ignore_ascii_case("Via"))
    else {
        return;
    };
    let rest: Vec<String> = split_list(&msg.headers[pos].value)
        .into_iter()
        .skip(1)
        .map(str::to_owned)
        .collect();
    if rest.is_empty() {
        msg.headers.remove(pos);
    } else {
        msg.headers[pos].value = rest.join(", ");
    }
}

fn header(name: &str, value: impl Into<String>) -> Header {
    Header {
        name: name.to_owned(),
        value: value.into(),
    }
}

impl Proxy {
    pub(crate) fn new(
        cfg: &GatewayConfig,
        listeners: Arc<Listeners>,
        pusher: Pusher,
        events: mpsc::UnboundedSender<Event>,
    ) -> Proxy {
        Proxy {
            out: Out {
                listeners: listeners.clone(),
                recorder: cfg.sip_recorder.clone(),
            },
            domain: cfg.domain.clone(),
            profile: cfg.profile,
            timers: cfg.timers,
            accounts: cfg.accounts.clone(),
            faults: cfg.faults.clone(),
            listeners,
            pusher,
            events,
            recorder: cfg.sip_recorder.clone(),
            registrar: Registrar::new(),
            calls: HashMap::new(),
            server_index: HashMap::new(),
            client_index: HashMap::new(),
            relays: HashMap::new(),
            dialogs: HashMap::new(),
            pushed: HashSet::new(),
            pushed_order: VecDeque::new(),
            nonces: VecDeque::new(),
            next_call: 0,
        }
    }

    pub(crate) fn handle(&mut self, ev: Event) {
        match ev {
            Event::Inbound(i) => {
                if i.message.is_request() {
                    self.on_request(i.flow, i.message)
                } else {
                    self.on_response(i.message)
                }
            }
            Event::PushDue { call, binding } => self.on_push_due(call, binding),
            Event::PushDone {
                call,
                binding,
                aor,
                outcome,
            } => self.on_push_done(call, binding, &aor, outcome),
            Event::BucketTimer { call } => self.on_bucket_timer(call),
            Event::Linger { call } => self.on_linger(call),
            Event::ResendRequest { branch, wait, left } => {
                self.on_resend_request(branch, wait, left)
            }
            Event::ResendFinal { call, wait, left } => self.on_resend_final(call, wait, left),
            Event::SetFaults(f) => {
                tracing::info!(faults = ?f, "faults switched");
                self.faults = f;
            }
            Event::SetPushDelay(d) => {
                tracing::info!(delay = ?d, "push delay set");
                self.timers.push_delay = d;
            }
            Event::SetAccounts(accounts) => {
                tracing::info!(accounts = accounts.len(), "digest accounts replaced");
                self.accounts = accounts;
            }
            Event::Bindings(aor, tx) => {
                let _ = tx.send(self.registrar.lookup(&aor, Instant::now()));
            }
            Event::Calls(tx) => {
                let _ = tx.send(self.calls.len());
            }
        }
    }

    // ------------------------------------------------------------------ sending

    fn send(&self, flow: &Flow, msg: &Message) {
        self.out.send(flow, msg);
    }

    fn response(req: &Message, code: u16, reason: &str, to_tag: Option<&str>) -> Message {
        let mut r = build_response(req, code, reason, to_tag);
        r.push_header("Server", "pushbench-ref-gateway");
        r
    }

    fn reply(&self, req: &Message, flow: &Flow, code: u16, reason: &str) {
        let mut r = Self::response(req, code, reason, Some(&random_hex()));
        r.push_header("Content-Length", "0");
        self.send(flow, &r);
    }

    fn after(&self, delay: std::time::Duration, ev: Event) -> AbortHandle {
        let tx = self.events.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(ev);
        })
        .abort_handle()
    }

    /// Our Via and a fresh branch for a request going out on `t`.
    fn via(&self, t: Transport) -> (String, String) {
        let branch = format!("z9hG4bK{}", random_hex());
        let local = self
            .listeners
            .local_addr(t)
            .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        let host = sip_peer::host_of(local.ip());
        (
            format!(
                "SIP/2.0/{} {host}:{};branch={branch}",
                t.via_token(),
                local.port()
            ),
            branch,
        )
    }

    fn record_route(&self, t: Transport) -> Option<String> {
        let local = self.listeners.local_addr(t)?;
        Some(format!(
            "<sip:{}:{};transport={};lr>",
            sip_peer::host_of(local.ip()),
            local.port(),
            t.as_str()
        ))
    }

    // ------------------------------------------------------------------ requests

    fn on_request(&mut self, flow: Flow, msg: Message) {
        let parsed_ok =
            msg.call_id().is_ok() && msg.cseq().is_ok() && msg.from().is_ok() && msg.to().is_ok();
        if msg.top_via().is_err() {
            tracing::debug!(%flow, "request without a usable Via dropped");
            return;
        }
        if !parsed_ok {
            self.reply(&msg, &flow, 400, "Bad Request");
            return;
        }
        let method = msg.method().unwrap_or("").to_owned();
        let has_to_tag = msg.to().map(|t| t.tag().is_some()).unwrap_or(false);
        match method.as_str() {
            "REGISTER" => self.on_register(flow, msg),
            "CANCEL" => self.on_cancel(flow, msg),
            "ACK" => self.on_ack(flow, msg),
            _ if has_to_tag => self.on_in_dialog(flow, msg),
            "INVITE" | "MESSAGE" => self.on_initial(flow, msg),
            "OPTIONS" => {
                let mut r = Self::response(&msg, 200, "OK", Some(&random_hex()));
                r.push_header(
                    "Allow",
                    "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, REGISTER",
                );
                r.push_header("Content-Length", "0");
                self.send(&flow, &r);
            }
            "BYE" => self.reply(&msg, &flow, 481, "Call/Transaction Does Not Exist"),
            _ => {
                let mut r = Self::response(&msg, 405, "Method Not Allowed", Some(&random_hex()));
                r.push_header(
                    "Allow",
                    "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, REGISTER",
                );
                r.push_header("Content-Length", "0");
                self.send(&flow, &r);
            }
        }
    }

    // ------------------------------------------------------------------ REGISTER

    fn account(&self, user: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.user == user)
    }

    /// Digest check (RFC 2617, MD5, qop auth or none) against a nonce we issued.
    fn authorized(&self, req: &Message, account: &Account) -> Option<bool> {
        let auth = req.authorization().ok().flatten()?;
        let field = |n: &str| auth.field(n).map(str::to_owned);
        let (Some(user), Some(realm), Some(nonce), Some(uri), Some(response)) = (
            field("username"),
            field("realm"),
            field("nonce"),
            field("uri"),
            field("response"),
        ) else {
            return Some(false);
        };
        if !self.nonces.contains(&nonce) || user != account.user || realm != self.domain {
            return Some(false);
        }
        let qop = field("qop");
        let nc = field("nc").unwrap_or_default();
        let cnonce = field("cnonce").unwrap_or_default();
        let expected = sip_peer::auth::digest_response(
            &user,
            &realm,
            &account.password,
            "REGISTER",
            &uri,
            &nonce,
            qop.as_deref().map(|q| (nc.as_str(), cnonce.as_str(), q)),
        );
        Some(expected.eq_ignore_ascii_case(&response))
    }

    fn challenge(&mut self, req: &Message, flow: &Flow) {
        let nonce = random_hex() + &random_hex();
        self.nonces.push_back(nonce.clone());
        if self.nonces.len() > NONCE_MEMORY {
            self.nonces.pop_front();
        }
        let mut r = Self::response(req, 401, "Unauthorized", Some(&random_hex()));
        r.push_header(
            "WWW-Authenticate",
            format!(
                "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"",
                self.domain
            ),
        );
        r.push_header("Content-Length", "0");
        self.send(flow, &r);
    }

    /// RFC 8599 §5.6.2 (3): a REGISTER that ends in an error fails the requests waiting for it.
    fn fail_waiting_for(&mut self, req: &Message) {
        let Ok(to) = req.to() else { return };
        let aor = aor_key(&to.uri);
        let pns = push_params_of(req);
        let ids: Vec<u64> = self.calls.keys().copied().collect();
        for id in ids {
            let Some(call) = self.calls.get_mut(&id) else {
                continue;
            };
            let before = call.bucket.len();
            call.bucket
                .retain(|e| !(e.aor == aor && e.is_waiting() && pns.contains(&e.push)));
            if call.bucket.len() != before {
                self.maybe_finish(id);
            }
        }
    }

    /// Fault `trust-refresh`: whether `req` refreshes a binding `user` already has (same pn-*
    /// parameters), which that fault accepts without a challenge.
    fn trusted_refresh(&mut self, user: &str, req: &Message) -> bool {
        if !self.faults.has(Fault::TrustRefresh) {
            return false;
        }
        let pns = push_params_of(req);
        let refresh = self
            .registrar
            .lookup(user, Instant::now())
            .iter()
            .any(|b| b.push.as_ref().is_some_and(|p| pns.contains(p)));
        if refresh {
            self.recorder.note(
                "fault trust-refresh: a REGISTER refreshing a known binding is accepted without a challenge",
            );
        }
        refresh
    }

    fn on_register(&mut self, flow: Flow, req: Message) {
        let Ok(to) = req.to() else { return };
        let user = aor_key(&to.uri);
        let account = self.account(&user).cloned();
        if let Some(account) = account.filter(|_| !self.trusted_refresh(&user, &req)) {
            match self.authorized(&req, &account) {
                None => return self.challenge(&req, &flow),
                Some(false) => {
                    self.reply(&req, &flow, 403, "Forbidden");
                    self.fail_waiting_for(&req);
                    return;
                }
                Some(true) => {}
            }
        }
        let now = Instant::now();
        let out = match self.registrar.register(&req, flow, now) {
            Ok(o) => o,
            Err(e) => {
                tracing::info!(%flow, error = %e, "REGISTER refused");
                let (code, reason) = e.status();
                let mut r = Self::response(&req, code, reason, Some(&random_hex()));
                if code == 555 {
                    r.push_header("Feature-Caps", "*;+sip.pns=\"apns\"");
                }
                r.push_header("Warning", format!("399 ref-gateway \"{e}\""));
                r.push_header("Content-Length", "0");
                self.send(&flow, &r);
                self.fail_waiting_for(&req);
                return;
            }
        };
        let mut r = Self::response(&req, 200, "OK", Some(&random_hex()));
        for b in self.registrar.lookup(&user, now) {
            let mut v = format!("<{}>", b.contact);
            if let Some(i) = &b.instance {
                v.push_str(&format!(";+sip.instance=\"{i}\""));
            }
            v.push_str(&format!(";expires={}", b.remaining(now)));
            r.push_header("Contact", v);
        }
        if out.push {
            r.push_header("Feature-Caps", "*;+sip.pns=\"apns\"");
        }
        r.push_header("Content-Length", "0");
        self.send(&flow, &r);
        for b in out.updated.iter().filter(|b| b.push.is_some()) {
            self.release(&user, b);
        }
    }

    /// A REGISTER 2xx for `binding`: every bucket entry that matches on the pn-* parameters
    /// leaves the bucket and its request goes out on the REGISTER's flow (RFC 8599 §5.6.2 (2)).
    fn release(&mut self, aor: &str, binding: &Binding) {
        if self.faults.has(Fault::NoReplayOnRegister) {
            self.recorder
                .note("fault no-replay-on-register: REGISTER does not release the bucket");
            return;
        }
        let mut ids: Vec<u64> = self.calls.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(call) = self.calls.get_mut(&id) else {
                continue;
            };
            let (hits, keep): (Vec<BucketEntry>, Vec<BucketEntry>) =
                call.bucket.drain(..).partition(|e| e.matches(aor, binding));
            call.bucket = keep;
            let final_sent = call.final_sent;
            for e in hits {
                match e.state {
                    EntryState::Delayed | EntryState::Pushed if !final_sent => {
                        self.forward_branch(id, &binding.contact, binding.flow, false);
                    }
                    EntryState::Delayed | EntryState::Pushed => {}
                    EntryState::Replay { reason } => {
                        let idx = self.forward_branch(id, &binding.contact, binding.flow, true);
                        if let Some(idx) = idx {
                            self.cancel_branch(id, idx, reason);
                        }
                    }
                    EntryState::Live => {
                        self.forward_branch(id, &binding.contact, binding.flow, true);
                    }
                }
            }
            self.maybe_finish(id);
            self.maybe_linger(id);
        }
    }

    // ------------------------------------------------------------------ INVITE / MESSAGE

    fn on_initial(&mut self, flow: Flow, req: Message) {
        let Some(key) = server_key(&req) else {
            return self.reply(&req, &flow, 400, "Bad Request");
        };
        if let Some(id) = self.server_index.get(&key) {
            // A retransmission: repeat the last response, push nothing.
            if let Some(r) = self.calls.get(id).and_then(|c| c.last_response.clone()) {
                self.send(&flow, &r);
            }
            return;
        }
        if req.max_forwards().ok().flatten() == Some(0) {
            return self.reply(&req, &flow, 483, "Too Many Hops");
        }
        let Some(ruri) = req.request_uri().and_then(|u| SipUri::parse(u).ok()) else {
            return self.reply(&req, &flow, 416, "Unsupported URI Scheme");
        };
        let method = req.method().unwrap_or("").to_owned();
        let aor = aor_key(&ruri);
        self.next_call += 1;
        let id = self.next_call;
        let call = Call {
            method: method.clone(),
            call_id: req.call_id().unwrap_or("").to_owned(),
            caller: req.from().map(|f| f.uri.to_string()).unwrap_or_default(),
            request: req,
            upstream: flow,
            server_key: key.clone(),
            to_tag: random_hex(),
            last_response: None,
            final_sent: false,
            answered: false,
            branches: Vec::new(),
            bucket: Vec::new(),
            best: None,
            timer: None,
            acked: false,
        };
        self.server_index.insert(key, id);
        self.calls.insert(id, call);
        if method == "INVITE" {
            self.respond_upstream(id, 100, "Trying");
        }
        let now = Instant::now();
        let seen_at = if self.faults.has(Fault::StaleBindings) {
            now.checked_sub(STALE_SWEEP).unwrap_or(now)
        } else {
            now
        };
        let bindings = self.registrar.lookup(&aor, seen_at);
        if bindings.is_empty() {
            self.respond_upstream(id, 404, "Not Found");
            self.maybe_linger(id);
            return;
        }
        for b in &bindings {
            match &b.push {
                None => {
                    self.forward_branch(id, &b.contact, b.flow, false);
                }
                Some(p) => match target_for(p, &self.faults) {
                    Ok(t) => {
                        if method == "MESSAGE"
                            && t.alert_token.is_none()
                            && !self.faults.has(Fault::MessageAsVoip)
                        {
                            self.recorder.note(format!(
                                "no alert token for binding {}: a message never goes as VoIP",
                                b.id
                            ));
                            continue;
                        }
                        if let Some(c) = self.calls.get_mut(&id) {
                            c.bucket.push(BucketEntry {
                                binding_id: b.id,
                                aor: aor.clone(),
                                push: p.clone(),
                                target: t,
                                state: EntryState::Delayed,
                            });
                        }
                        if method == "INVITE" && !self.timers.push_delay.is_zero() {
                            self.after(
                                self.timers.push_delay,
                                Event::PushDue {
                                    call: id,
                                    binding: b.id,
                                },
                            );
                        } else {
                            self.on_push_due(id, b.id);
                        }
                    }
                    Err(e) => {
                        tracing::info!(binding = b.id, error = %e, "no push possible");
                        self.recorder
                            .note(format!("no push for binding {}: {e}", b.id));
                    }
                },
            }
        }
        let has_bucket = self.calls.get(&id).is_some_and(|c| !c.bucket.is_empty());
        if has_bucket && !self.faults.has(Fault::NoBucketTimer) {
            let h = self.after(self.timers.bucket_timer, Event::BucketTimer { call: id });
            if let Some(c) = self.calls.get_mut(&id) {
                c.timer = Some(h);
            }
        }
        self.maybe_finish(id);
    }

    fn on_push_due(&mut self, id: u64, binding: u64) {
        let faults = self.faults.clone();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(e) = call
            .bucket
            .iter_mut()
            .find(|e| e.binding_id == binding && e.state == EntryState::Delayed)
        else {
            return;
        };
        e.state = EntryState::Pushed;
        let t = e.target.clone();
        let aor = e.aor.clone();
        let key = (call.call_id.clone(), t.voip_token.clone());
        if self.pushed.contains(&key) {
            self.recorder.note(format!(
                "push for {} already sent for this Call-ID: not repeated",
                key.1
            ));
            return;
        }
        let builder = PushBuilder::new(t.bundle_id.clone(), faults);
        let push = if call.method == "MESSAGE" {
            let text = String::from_utf8_lossy(&call.request.body).into_owned();
            match builder.message(&t.voip_token, t.alert_token.as_deref(), &text, now_ms()) {
                Some(p) => p,
                None => return,
            }
        } else {
            builder.call(&t.voip_token, &call.call_id, &call.caller, now_ms())
        };
        self.pushed.insert(key.clone());
        self.pushed_order.push_back(key);
        if self.pushed_order.len() > PUSHED_MEMORY {
            if let Some(old) = self.pushed_order.pop_front() {
                self.pushed.remove(&old);
            }
        }
        let pusher = self.pusher.clone();
        let tx = self.events.clone();
        tokio::spawn(async move {
            let outcome = pusher.send(t.sandbox, &push).await;
            let _ = tx.send(Event::PushDone {
                call: id,
                binding,
                aor,
                outcome,
            });
        });
    }

    fn on_push_done(&mut self, id: u64, binding: u64, aor: &str, outcome: PushOutcome) {
        tracing::debug!(call = id, binding, outcome = %outcome.describe(), "push answered");
        match &outcome {
            PushOutcome::Accepted => return,
            PushOutcome::Unregistered if self.faults.has(Fault::Ignore410) => {
                self.recorder
                    .note("fault ignore-410: binding kept after 410 Unregistered");
            }
            PushOutcome::Unregistered => {
                if self.registrar.remove(aor, binding) {
                    self.recorder
                        .note(format!("410: binding {binding} of {aor} removed"));
                }
            }
            PushOutcome::Refused(_) | PushOutcome::Failed(_) => {}
        }
        self.recorder.note(format!(
            "push {}: the request leaves the bucket",
            outcome.describe()
        ));
        if let Some(call) = self.calls.get_mut(&id) {
            call.bucket
                .retain(|e| !(e.binding_id == binding && e.state == EntryState::Pushed));
        }
        self.maybe_finish(id);
        self.maybe_linger(id);
    }

    fn on_bucket_timer(&mut self, id: u64) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.timer = None;
        if !call.bucket.is_empty() {
            self.recorder
                .note(format!("bucket timer fired for {}", call.call_id));
        }
        call.bucket.clear();
        self.maybe_finish(id);
        self.maybe_linger(id);
    }

    /// Sends the call's request to one contact over `flow`; returns the branch index.
    fn forward_branch(
        &mut self,
        id: u64,
        contact: &SipUri,
        flow: Flow,
        replay: bool,
    ) -> Option<usize> {
        let (via, branch) = self.via(flow.transport);
        let rr_out = self.record_route(flow.transport);
        let call = self.calls.get(&id)?;
        let rr_in = self.record_route(call.upstream.transport);
        let mut req = call.request.clone();
        set_request_uri(&mut req, &contact.to_string());
        let mf = req.max_forwards().ok().flatten().unwrap_or(70);
        req.set_header("Max-Forwards", mf.saturating_sub(1).to_string());
        if call.method == "INVITE" {
            // RFC 5658 double Record-Route when the two sides use different transports.
            if rr_in != rr_out {
                if let Some(rr) = rr_in {
                    req.headers.insert(0, header("Record-Route", rr));
                }
            }
            if let Some(rr) = rr_out {
                req.headers.insert(0, header("Record-Route", rr));
            }
        }
        req.headers.insert(0, header("Via", via));
        // A contact whose connection is gone cannot be reached: the branch ends at once.
        let reachable = self.listeners.is_open(&flow);
        if reachable {
            self.send(&flow, &req);
        } else {
            self.recorder.note(format!(
                "flow {flow} of {contact} is closed: branch not sent"
            ));
        }
        let call = self.calls.get_mut(&id)?;
        call.branches.push(Branch {
            id: branch.clone(),
            flow,
            request: req,
            provisional: false,
            done: !reachable,
            cancelled: false,
            pending_cancel: None,
            replay,
        });
        let idx = call.branches.len() - 1;
        self.client_index.insert(branch.clone(), (id, idx));
        self.start_resend(&branch, flow);
        Some(idx)
    }

    /// CANCELs a branch (held until its first provisional, RFC 3261 §9.1).
    fn cancel_branch(&mut self, id: u64, idx: usize, reason: Option<String>) {
        let Some(b) = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.branches.get_mut(idx))
        else {
            return;
        };
        if b.done || b.cancelled {
            return;
        }
        if !b.provisional {
            b.pending_cancel = Some(reason);
            return;
        }
        b.cancelled = true;
        let inv = &b.request;
        let mut c = Message::request("CANCEL", inv.request_uri().unwrap_or("sip:invalid"));
        if let Some(v) = inv.header_values("Via").first() {
            c.push_header("Via", *v);
        }
        c.push_header("Max-Forwards", "70");
        for name in ["From", "To", "Call-ID"] {
            if let Some(v) = inv.header(name) {
                c.push_header(name, v);
            }
        }
        let seq = inv.cseq().map(|c| c.seq).unwrap_or(1);
        c.push_header("CSeq", format!("{seq} CANCEL"));
        if let Some(r) = reason {
            c.push_header("Reason", r);
        }
        c.push_header("Content-Length", "0");
        let flow = b.flow;
        self.send(&flow, &c);
    }

    /// A response generated here for the call's request (100, 404, 480, 487…).
    fn respond_upstream(&mut self, id: u64, code: u16, reason: &str) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let tag = (code > 100).then_some(call.to_tag.as_str());
        let mut r = Self::response(&call.request, code, reason, tag);
        r.push_header("Content-Length", "0");
        if code >= 200 {
            call.final_sent = true;
            if let Some(t) = call.timer.take() {
                t.abort();
            }
        }
        call.last_response = Some(r.clone());
        let flow = call.upstream;
        let method = call.method.clone();
        self.send(&flow, &r);
        if code >= 300 {
            self.start_resend_final(id, flow, &method);
        }
    }

    /// Sends the final answer when nothing is pending any more: the best branch response, or
    /// 480 (bucket timer, failed pushes, no reachable contact).
    fn maybe_finish(&mut self, id: u64) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.final_sent {
            return;
        }
        let pending_branch = call.branches.iter().any(|b| !b.done && !b.replay);
        let waiting = call.bucket.iter().any(BucketEntry::is_waiting);
        if pending_branch || waiting {
            return;
        }
        match call.best.take() {
            Some(best) => {
                call.final_sent = true;
                if let Some(t) = call.timer.take() {
                    t.abort();
                }
                call.last_response = Some(best.clone());
                let flow = call.upstream;
                let method = call.method.clone();
                self.send(&flow, &best);
                self.start_resend_final(id, flow, &method);
            }
            None => self.respond_upstream(id, 480, "Temporarily Unavailable"),
        }
        self.maybe_linger(id);
    }

    /// Schedules forgetting a call once it is final and its bucket is empty.
    fn maybe_linger(&mut self, id: u64) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.final_sent && call.bucket.is_empty() {
            self.after(self.timers.linger, Event::Linger { call: id });
        }
    }

    /// Starts Timer A/E for a request just sent over UDP.
    fn start_resend(&self, branch: &str, flow: Flow) {
        if flow.transport == Transport::Udp {
            self.after(
                self.timers.t1,
                Event::ResendRequest {
                    branch: branch.to_owned(),
                    wait: self.timers.t1,
                    left: 6,
                },
            );
        }
    }

    /// Starts Timer G for a non-2xx final response to an INVITE just sent over UDP.
    fn start_resend_final(&self, id: u64, flow: Flow, method: &str) {
        if flow.transport == Transport::Udp && method == "INVITE" {
            self.after(
                self.timers.t1,
                Event::ResendFinal {
                    call: id,
                    wait: self.timers.t1,
                    left: 6,
                },
            );
        }
    }

    fn on_resend_request(&mut self, branch: String, wait: Duration, left: u32) {
        let pending = if let Some(&(id, idx)) = self.client_index.get(&branch) {
            self.calls
                .get(&id)
                .and_then(|c| c.branches.get(idx))
                .filter(|b| !b.provisional && !b.done)
                .map(|b| (b.flow, b.request.clone()))
        } else {
            self.relays
                .get(&branch)
                .filter(|r| !r.answered)
                .map(|r| (r.dest, r.request.clone()))
        };
        let Some((flow, req)) = pending else {
            return;
        };
        if left == 0 {
            return;
        }
        self.send(&flow, &req);
        let next = (wait * 2).min(self.timers.t1 * 8);
        self.after(
            next,
            Event::ResendRequest {
                branch,
                wait: next,
                left: left - 1,
            },
        );
    }

    fn on_resend_final(&mut self, id: u64, wait: Duration, left: u32) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some(last) = call.last_response.clone() else {
            return;
        };
        if call.acked || left == 0 || last.status().is_none_or(|s| s < 300) {
            return;
        }
        let flow = call.upstream;
        self.send(&flow, &last);
        let next = (wait * 2).min(self.timers.t1 * 8);
        self.after(
            next,
            Event::ResendFinal {
                call: id,
                wait: next,
                left: left - 1,
            },
        );
    }

    fn on_linger(&mut self, id: u64) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if !(call.final_sent && call.bucket.is_empty()) {
            return;
        }
        if let Some(call) = self.calls.remove(&id) {
            self.server_index.remove(&call.server_key);
            for b in &call.branches {
                self.client_index.remove(&b.id);
            }
        }
    }

    /// The call ended (CANCEL, or answered elsewhere): branches get CANCEL, bucket entries
    /// follow the profile.
    fn end_call(&mut self, id: u64, except: Option<usize>, reason: Option<String>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let n = call.branches.len();
        let profile = self.profile;
        let faults = self.faults.clone();
        let mut cancel_pushes = Vec::new();
        let call_id = call.call_id.clone();
        let mut keep = Vec::new();
        for mut e in call.bucket.drain(..) {
            match on_call_ended(&e.state, reason.as_deref(), profile, &faults) {
                OnCallEnded::Drop => {}
                OnCallEnded::Replay(r) => {
                    e.state = EntryState::Replay { reason: r };
                    keep.push(e);
                }
                OnCallEnded::KeepLive => {
                    e.state = EntryState::Live;
                    keep.push(e);
                }
                OnCallEnded::KeepDelayed => keep.push(e),
                OnCallEnded::CancelPush => cancel_pushes.push(e.target.clone()),
            }
        }
        call.bucket = keep;
        for idx in 0..n {
            if Some(idx) != except {
                self.cancel_branch(id, idx, reason.clone());
            }
        }
        let why = CancelReason::from_reason_header(reason.as_deref());
        for t in cancel_pushes {
            let push = PushBuilder::new(t.bundle_id.clone(), faults.clone()).call_ended(
                &t.voip_token,
                &call_id,
                why,
                now_ms(),
            );
            let pusher = self.pusher.clone();
            tokio::spawn(async move {
                let outcome = pusher.send(t.sandbox, &push).await;
                tracing::debug!(outcome = %outcome.describe(), "call-ended push answered");
            });
        }
        self.maybe_linger(id);
    }

    fn on_cancel(&mut self, flow: Flow, req: Message) {
        let Some(id) = server_key(&req).and_then(|k| self.server_index.get(&k).copied()) else {
            return self.reply(&req, &flow, 481, "Call/Transaction Does Not Exist");
        };
        let mut ok = Self::response(&req, 200, "OK", None);
        ok.push_header("Content-Length", "0");
        self.send(&flow, &ok);
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.final_sent || call.method != "INVITE" {
            return;
        }
        self.respond_upstream(id, 487, "Request Terminated");
        let reason = req.reason().map(str::to_owned);
        self.end_call(id, None, reason);
    }

    fn on_ack(&mut self, flow: Flow, req: Message) {
        if let Some(id) = server_key(&req).and_then(|k| self.server_index.get(&k).copied()) {
            let non2xx = self.calls.get(&id).is_some_and(|c| {
                c.last_response
                    .as_ref()
                    .and_then(Message::status)
                    .is_some_and(|s| s >= 300)
            });
            if non2xx {
                if let Some(c) = self.calls.get_mut(&id) {
                    c.acked = true;
                }
                return; // the ACK of our (or a relayed) error response: hop by hop, absorbed
            }
        }
        self.on_in_dialog(flow, req);
    }

    fn strip_our_routes(&self, req: &mut Message) {
        let routes: Vec<String> = req
            .header_values("Route")
            .into_iter()
            .map(str::to_owned)
            .collect();
        if routes.is_empty() {
            return;
        }
        let kept: Vec<String> = routes
            .into_iter()
            .filter(|r| {
                !NameAddr::parse(r)
                    .ok()
                    .and_then(|a| a.uri.socket_addr())
                    .is_some_and(|a| self.listeners.is_local(a))
            })
            .collect();
        req.remove_header("Route");
        for r in kept {
            req.push_header("Route", r);
        }
    }

    fn on_in_dialog(&mut self, flow: Flow, mut req: Message) {
        let method = req.method().unwrap_or("").to_owned();
        self.strip_our_routes(&mut req);
        let call_id = req.call_id().unwrap_or("").to_owned();
        let from_tag = req
            .from()
            .ok()
            .and_then(|f| f.tag().map(str::to_owned))
            .unwrap_or_default();
        let Some(d) = self.dialogs.get(&call_id) else {
            if method != "ACK" {
                self.reply(&req, &flow, 481, "Call/Transaction Does Not Exist");
            }
            return;
        };
        let dest = if from_tag == d.caller_tag {
            d.callee_flow
        } else {
            d.caller_flow
        };
        if !self.listeners.is_open(&dest) {
            if method != "ACK" {
                self.reply(&req, &flow, 480, "Temporarily Unavailable");
            }
            return;
        }
        let (via, branch) = self.via(dest.transport);
        let mf = req.max_forwards().ok().flatten().unwrap_or(70);
        req.set_header("Max-Forwards", mf.saturating_sub(1).to_string());
        req.headers.insert(0, header("Via", via));
        if method != "ACK" {
            self.relays.insert(
                branch.clone(),
                Relay {
                    upstream: flow,
                    dest,
                    request: req.clone(),
                    answered: false,
                },
            );
            self.start_resend(&branch, dest);
        }
        self.send(&dest, &req);
    }

    // ------------------------------------------------------------------ responses

    fn on_response(&mut self, mut resp: Message) {
        let Some(branch) = resp
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned))
        else {
            return;
        };
        let code = resp.status().unwrap_or(0);
        if let Some(relay) = self.relays.get_mut(&branch) {
            relay.answered = true;
            let up = relay.upstream;
            pop_via(&mut resp);
            if code >= 200 {
                self.relays.remove(&branch);
                // The dialog ends with the BYE's final response (a lost BYE can be repeated).
                if resp.cseq().is_ok_and(|c| c.method == "BYE") {
                    if let Ok(cid) = resp.call_id() {
                        self.dialogs.remove(cid);
                    }
                }
            }
            self.send(&up, &resp);
            return;
        }
        let Some((id, idx)) = self.client_index.get(&branch).copied() else {
            tracing::debug!(%branch, "response to no branch of ours dropped");
            return;
        };
        if resp.cseq().map(|c| c.method == "CANCEL").unwrap_or(false) {
            return; // the 200 to our CANCEL
        }
        pop_via(&mut resp);
        self.on_branch_response(id, idx, resp);
    }

    fn on_branch_response(&mut self, id: u64, idx: usize, resp: Message) {
        let code = resp.status().unwrap_or(0);
        let out = self.out.clone();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let is_invite = call.method == "INVITE";
        let Some(b) = call.branches.get_mut(idx) else {
            return;
        };
        if code < 200 {
            b.provisional = true;
            let pending = b.pending_cancel.take();
            let forward = code > 100 && !b.replay && !call.final_sent;
            if forward {
                call.last_response = Some(resp.clone());
                let up = call.upstream;
                out.send(&up, &resp);
            }
            if let Some(reason) = pending {
                self.cancel_branch(id, idx, reason);
            }
            return;
        }
        if code >= 300 && is_invite {
            let ack = build_non2xx_ack(&b.request, &resp);
            let f = b.flow;
            out.send(&f, &ack);
        }
        let retransmission = b.done;
        b.done = true;
        b.provisional = true;
        b.pending_cancel = None;
        let replay = b.replay;
        let branch_flow = b.flow;
        if (200..300).contains(&code) {
            // Every 2xx goes upstream (RFC 3261 §16.7), retransmissions included.
            let up = call.upstream;
            let first = !call.answered && !retransmission;
            if first {
                call.answered = true;
                call.final_sent = true;
                call.last_response = Some(resp.clone());
                if let Some(t) = call.timer.take() {
                    t.abort();
                }
            }
            out.send(&up, &resp);
            if first && is_invite {
                let caller_tag = call
                    .request
                    .from()
                    .ok()
                    .and_then(|f| f.tag().map(str::to_owned))
                    .unwrap_or_default();
                self.dialogs.insert(
                    call.call_id.clone(),
                    DialogRoute {
                        caller_tag,
                        caller_flow: up,
                        callee_flow: branch_flow,
                    },
                );
                self.end_call(id, Some(idx), Some(ANSWERED_ELSEWHERE.to_owned()));
            }
            self.maybe_linger(id);
            return;
        }
        if retransmission || replay || call.final_sent {
            return;
        }
        if code >= 600 && is_invite {
            // A global decline ends the call everywhere (RFC 3261 §16.7 step 5, Flexisip).
            call.final_sent = true;
            call.last_response = Some(resp.clone());
            if let Some(t) = call.timer.take() {
                t.abort();
            }
            let up = call.upstream;
            out.send(&up, &resp);
            self.end_call(id, Some(idx), Some(BUSY_EVERYWHERE.to_owned()));
            return;
        }
        let better = match &call.best {
            None => true,
            Some(b) => {
                let old = b.status().unwrap_or(999);
                old < 600 && (code >= 600 || code < old)
            }
        };
        if better && code != 487 {
            call.best = Some(resp);
        }
        self.maybe_finish(id);
    }
}

/// The pn-* parameters of the Contacts of `req` (RFC 8599 §4.1), one per push-capable Contact.
fn push_params_of(req: &Message) -> Vec<sip_peer::PushParams> {
    req.contacts()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| {
            c.addr()
                .and_then(|a| sip_peer::PushParams::from_uri(&a.uri))
        })
        .collect()
}
