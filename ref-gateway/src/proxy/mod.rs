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
//!
//! By concern: [`register`] (REGISTER, digest, the bucket's release), [`fork`] (the call and its
//! branches, CANCEL, the final answer), [`pushes`] (pushes, their answers, the Bucket Timer),
//! [`retransmission`] (UDP Timers A/E/G) and [`dialog`] (in-dialog relay and the responses that
//! come back). This module holds the state and the event loop's entry, [`Proxy::handle`].

use crate::bucket::BucketEntry;
use crate::cancel::CancelPolicy;
use crate::config::{Account, GatewayConfig, Timers};
use crate::design::Design;
use crate::faults::Faults;
use crate::flow::{Flow, Inbound, Listeners};
use crate::push::{PushOutcome, Pusher};
use crate::registrar::{Binding, Registrar};
use sip_peer::build_response;
use sip_peer::long_header_name;
use sip_peer::split_list;
use sip_peer::SipUri;
use sip_peer::{Header, Message, StartLine, Transport};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use timeline::Recorder;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio::time::Instant;

mod dialog;
mod fork;
mod pushes;
mod register;
mod retransmission;

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
    /// Design `tsilo`: sent at once to the stale contact of a push-bound device; the call does
    /// not wait for it (the device's REGISTER brings the hand-over branch).
    stale: bool,
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
    /// Fault `ring-awake-after-wake`: the awake contacts (contact, flow) not yet forked to,
    /// waiting for the bucket to stop waiting.
    held_awake: Vec<(SipUri, Flow)>,
    /// Fault `late-487`: the caller's CANCEL was taken while a push-bound device was still
    /// waking; its 487 waits for the Bucket Timer.
    late_487: bool,
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
    cancel: CancelPolicy,
    timers: Timers,
    accounts: Vec<Account>,
    faults: Faults,
    design: Design,
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
            cancel: cfg.cancel,
            timers: cfg.timers,
            accounts: cfg.accounts.clone(),
            faults: cfg.faults.clone(),
            design: cfg.design,
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
