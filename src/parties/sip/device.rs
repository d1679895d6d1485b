//! One of Alice's devices on SIP: an iPhone or iPad (the `phone` iOS model and its driver, a
//! sip-peer [`PhoneAccount`], and its mock-apns tokens) or her desktop (an awake account without
//! push parameters).
//!
//! The glue: pushes mock-apns delivers for the device's tokens become [`Input::Push`]; the
//! driver's actions drive the account (`WakeAccount` re-REGISTERs: by default as a relaunched
//! app, from a new socket on a new port; a suspended app that kept its socket, from the old one;
//! `Answer`, `Reject`, `HangUp` act on the incoming call); an incoming INVITE, CANCEL or BYE
//! becomes `Offer`, `Cancel` or `RemoteBye`. Everything the device sent and received is also kept
//! in its [`DeviceLog`] with times, which the Then steps read.

use crate::draws::WakeDelay;
use crate::parties::device::{feed_deliveries, DeviceKind, DeviceLog, Event};
use crate::verdict::StepError;
use phone::{
    Action, CancelReason, DriverConfig, Input, Iphone, IphoneConfig, NonCallVoipPolicy,
    PayloadContract, PhoneHandle, WallClock,
};
use sip_peer::{
    EndpointConfig, IncomingCall, IncomingPolicy, Offline, PhoneAccount, PhoneConfig, PushParams,
    SipError, SipUri,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timeline::{lock, Protocol, Timeline};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// What a step asks an incoming call to do.
#[derive(Debug)]
enum CallCmd {
    Answer,
    Reject(u16),
    Bye,
}

type CallMap = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<CallCmd>>>>;
type Tasks = Arc<Mutex<Vec<AbortHandle>>>;

/// The iOS model currently running for a device (replaced when a step changes the app's
/// configuration before anything happened to it).
type PhoneSlot = Arc<Mutex<Option<PhoneHandle>>>;

fn current(slot: &PhoneSlot) -> Option<PhoneHandle> {
    lock(slot).clone()
}

/// How to build a device.
#[derive(Clone, Debug)]
pub struct DeviceSpec {
    /// Which device.
    pub kind: DeviceKind,
    /// Alice's AOR.
    pub aor: String,
    /// The registrar (the gateway listener of the transport).
    pub registrar: SocketAddr,
    /// The account's endpoint.
    pub endpoint: EndpointConfig,
    /// RFC 8599 parameters, if any.
    pub push: Option<PushParams>,
    /// VoIP token (mock-apns deliveries feed the iOS model).
    pub voip_token: Option<String>,
    /// Alert token.
    pub alert_token: Option<String>,
    /// Digest credentials.
    pub credentials: Option<sip_peer::Credentials>,
    /// Requested Expires.
    pub expires: u32,
    /// Push to REGISTER delay.
    pub wake_delay: WakeDelay,
    /// The app ignores VoIP pushes it cannot match to a call.
    pub terminate_unmatched: bool,
    /// Seed for the CallKit UUIDs.
    pub seed: u64,
    /// `+sip.instance` (iOS devices get a fresh one when `None`).
    pub instance: Option<String>,
    /// The app's payload contract (the target's `[apns.payload]`).
    pub payload: PayloadContract,
    /// The app holds the unrestricted VoIP entitlement.
    pub unrestricted_voip: bool,
}

/// One of Alice's devices, running.
pub struct Device {
    /// Which.
    pub kind: DeviceKind,
    /// Its SIP account.
    pub account: Arc<PhoneAccount>,
    /// VoIP token, if any.
    pub voip_token: Option<String>,
    /// Alert token, if any.
    pub alert_token: Option<String>,
    phone: PhoneSlot,
    /// What it sent and received.
    pub log: Arc<DeviceLog>,
    /// The registrar address.
    pub registrar: SocketAddr,
    calls: CallMap,
    tasks: Tasks,
    actions_task: Option<AbortHandle>,
    wake_delay: Arc<Mutex<WakeDelay>>,
    /// Asleep, the app keeps its socket (a suspended app) instead of losing it (the default: iOS
    /// relaunches the app for a push, as a new process with a new socket).
    keep_socket: Arc<std::sync::atomic::AtomicBool>,
    payload: PayloadContract,
    unrestricted_voip: bool,
    seed: u64,
    timeline: Timeline,
}

impl Drop for Device {
    fn drop(&mut self) {
        for t in lock(&self.tasks).iter() {
            t.abort();
        }
        if let Some(t) = &self.actions_task {
            t.abort();
        }
    }
}

impl Device {
    /// Starts the account (not registered yet), the iOS model for iPhone/iPad, and the glue.
    pub async fn start(
        spec: DeviceSpec,
        apns: &mock_apns::MockApns,
        timeline: &Timeline,
    ) -> Result<Device, StepError> {
        let mut cfg = PhoneConfig::new(
            SipUri::parse(&spec.aor)
                .map_err(|e| StepError::inconclusive(format!("Alice's AOR: {e}")))?,
            spec.registrar,
        );
        cfg.push = spec.push.clone();
        cfg.credentials = spec.credentials.clone();
        cfg.expires = spec.expires;
        cfg.policy = IncomingPolicy::Ring;
        cfg.instance = spec.instance.clone().or_else(|| {
            spec.kind
                .is_ios()
                .then(|| format!("<urn:uuid:{}>", uuid::Uuid::new_v4()))
        });
        let account = Arc::new(
            PhoneAccount::start(
                spec.endpoint.clone(),
                cfg,
                timeline.recorder(spec.kind.party(), Protocol::Sip),
                "gateway",
            )
            .await
            .map_err(|e| StepError::inconclusive(format!("Alice's {} account: {e}", spec.kind)))?,
        );
        let mut device = Device {
            kind: spec.kind,
            account,
            voip_token: spec.voip_token.clone(),
            alert_token: spec.alert_token.clone(),
            phone: PhoneSlot::default(),
            log: Arc::new(DeviceLog::default()),
            registrar: spec.registrar,
            calls: CallMap::default(),
            tasks: Tasks::default(),
            actions_task: None,
            wake_delay: Arc::new(Mutex::new(spec.wake_delay)),
            keep_socket: Arc::default(),
            payload: spec.payload.clone(),
            unrestricted_voip: spec.unrestricted_voip,
            seed: spec.seed,
            timeline: timeline.clone(),
        };
        if spec.kind.is_ios() {
            device.restart_model(spec.terminate_unmatched);
        }
        // Pushes to the device's tokens.
        for token in spec.voip_token.iter().chain(spec.alert_token.iter()) {
            let phone = device.phone.clone();
            let t = feed_deliveries(
                apns,
                token.clone(),
                device.log.clone(),
                &spec.payload,
                move |input| {
                    if let Some(p) = current(&phone) {
                        p.send(input);
                    }
                },
            );
            lock(&device.tasks).push(t);
        }
        // Incoming calls.
        let (account, log, phone, calls, tasks) = (
            device.account.clone(),
            device.log.clone(),
            device.phone.clone(),
            device.calls.clone(),
            device.tasks.clone(),
        );
        let t = tokio::spawn(async move {
            loop {
                let call = match account.next_call(Duration::from_secs(3600)).await {
                    Ok(c) => c,
                    Err(SipError::Timeout { .. }) => continue,
                    Err(_) => break,
                };
                let call_id = call.call_id().to_owned();
                log.push(Event::Invite {
                    call_id: call_id.clone(),
                    source: call.source(),
                    connections: account.endpoint().connection_count(),
                });
                let caller = call
                    .request()
                    .from()
                    .map(|f| f.uri.to_string())
                    .unwrap_or_default();
                let (tx, rx) = mpsc::unbounded_channel();
                lock(&calls).insert(call_id.clone(), tx);
                if let Some(p) = current(&phone) {
                    p.send(Input::Offer {
                        call_id: call_id.clone(),
                        caller,
                    });
                }
                let h = tokio::spawn(run_call(call, rx, log.clone(), phone.clone()));
                lock(&tasks).push(h.abort_handle());
            }
        });
        lock(&device.tasks).push(t.abort_handle());
        Ok(device)
    }

    /// (Re)starts the iOS model with a fresh app (before anything happened to the device).
    pub fn restart_model(&mut self, terminate_unmatched: bool) {
        if let Some(t) = self.actions_task.take() {
            t.abort();
        }
        let t0 = Instant::now();
        let config = IphoneConfig {
            non_call_voip: if terminate_unmatched {
                NonCallVoipPolicy::Terminate
            } else {
                NonCallVoipPolicy::BogusCall
            },
            uuid_seed: self.seed,
            payload: self.payload.clone(),
            unrestricted_voip: self.unrestricted_voip,
            ..IphoneConfig::default()
        };
        let model = Iphone::new(
            config,
            WallClock::new(t0, timeline::now_ms()),
            self.timeline.recorder(self.kind.party(), Protocol::Note),
        );
        let (handle, mut actions) = phone::spawn(model, DriverConfig::default());
        *lock(&self.phone) = Some(handle.clone());
        let (account, log, calls, delay, timeline, party) = (
            self.account.clone(),
            self.log.clone(),
            self.calls.clone(),
            self.wake_delay.clone(),
            self.timeline.clone(),
            self.kind.party(),
        );
        let t = tokio::spawn(async move {
            while let Some(action) = actions.recv().await {
                let cmd = |call_id: &str, cmd: CallCmd| {
                    if let Some(tx) = lock(&calls).get(call_id) {
                        let _ = tx.send(cmd);
                    }
                };
                match action {
                    Action::WakeAccount { new_connection } => {
                        let (account, log, phone) = (account.clone(), log.clone(), handle.clone());
                        let (delay, kind) = {
                            let d = lock(&delay);
                            (d.next(), d.kind())
                        };
                        timeline.note(
                            "bench",
                            format!(
                                "{party} wakes: REGISTER in {} ms ({kind})",
                                delay.as_millis()
                            ),
                        );
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            log.push(Event::RegisterSent);
                            let r = account.wake(new_connection, Duration::from_secs(4)).await;
                            log.push(Event::Registered {
                                ok: r.is_ok(),
                                detail: match &r {
                                    Ok(reg) => reg.response.summary(),
                                    Err(e) => e.to_string(),
                                },
                            });
                            phone.send(Input::Registered { ok: r.is_ok() });
                        });
                    }
                    Action::Answer { call_id } => cmd(&call_id, CallCmd::Answer),
                    Action::Reject { call_id, status } => cmd(&call_id, CallCmd::Reject(status)),
                    Action::HangUp { call_id } => cmd(&call_id, CallCmd::Bye),
                    Action::AppTerminated { .. } => {
                        // A killed app's sockets are gone; the next push relaunches it.
                        account.close();
                    }
                    Action::ReportIncomingCall { .. }
                    | Action::EndCall { .. }
                    | Action::ShowNotification { .. } => {}
                }
            }
        });
        self.actions_task = Some(t.abort_handle());
    }

    /// How long the device takes from a push to its REGISTER.
    pub fn set_wake_delay(&self, d: WakeDelay) {
        *lock(&self.wake_delay) = d;
    }

    /// The device's tokens.
    pub fn tokens(&self) -> Vec<String> {
        self.voip_token
            .iter()
            .chain(self.alert_token.iter())
            .cloned()
            .collect()
    }

    /// The iOS model, or inconclusive for the desktop.
    pub fn phone(&self) -> Result<PhoneHandle, StepError> {
        current(&self.phone).ok_or_else(|| {
            StepError::inconclusive(format!("Alice's {} has no iOS model", self.kind))
        })
    }

    /// REGISTERs now (a step, not a wake), logging it.
    pub async fn register(&self, within: Duration) -> Result<sip_peer::Registration, SipError> {
        self.log.push(Event::RegisterSent);
        let r = self.account.register(within).await;
        self.log.push(Event::Registered {
            ok: r.is_ok(),
            detail: match &r {
                Ok(reg) => reg.response.summary(),
                Err(e) => e.to_string(),
            },
        });
        r
    }

    /// Asks the incoming call `call_id` to answer (desktop, or a direct answer).
    pub fn answer_call(&self, call_id: &str) -> bool {
        self.send_cmd(call_id, CallCmd::Answer)
    }

    /// Asks the incoming call to reject with `status`.
    pub fn reject_call(&self, call_id: &str, status: u16) -> bool {
        self.send_cmd(call_id, CallCmd::Reject(status))
    }

    /// Asks the established call to hang up.
    pub fn bye_call(&self, call_id: &str) -> bool {
        self.send_cmd(call_id, CallCmd::Bye)
    }

    fn send_cmd(&self, call_id: &str, cmd: CallCmd) -> bool {
        lock(&self.calls)
            .get(call_id)
            .is_some_and(|tx| tx.send(cmd).is_ok())
    }

    /// Asleep. By default as iOS does it: the app's socket (UDP) or listener and connections
    /// (TCP/TLS) are closed, so nothing sent to its Contact is read (UDP gets ICMP port
    /// unreachable), and the push that wakes it relaunches it on a new port. With
    /// [`Device::keep_socket_when_suspended`], the account keeps its socket and port but drops
    /// its connections and everything it receives until a push wakes it.
    pub fn sleep(&self) {
        if self.keep_socket.load(std::sync::atomic::Ordering::Acquire) {
            self.account.set_offline(Offline::Disconnected);
        } else {
            self.account.close();
        }
    }

    /// From now on the device sleeps as a suspended app that kept its socket (never the default:
    /// only the scenarios that say so).
    pub fn keep_socket_when_suspended(&self) {
        self.keep_socket
            .store(true, std::sync::atomic::Ordering::Release);
        self.timeline.note(
            self.kind.party(),
            "the app keeps its socket while suspended (not a relaunch)",
        );
    }

    /// Flight mode: the account hears nothing and sends nothing.
    pub fn silence(&self) {
        self.account.set_offline(Offline::Silent);
    }
}

/// One incoming call: carries out the device's commands and reports CANCEL and BYE.
async fn run_call(
    mut call: IncomingCall,
    mut cmds: mpsc::UnboundedReceiver<CallCmd>,
    log: Arc<DeviceLog>,
    phone: PhoneSlot,
) {
    let call_id = call.call_id().to_owned();
    let mut seen = 0;
    let mut open = true;
    loop {
        if open {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(CallCmd::Answer) => {
                        if call.answer().is_ok() {
                            log.push(Event::Answered { call_id: call_id.clone() });
                        }
                    }
                    Some(CallCmd::Reject(status)) => {
                        let _ = call.reject(status);
                    }
                    Some(CallCmd::Bye) => {
                        let _ = call.bye(Duration::from_secs(4)).await;
                    }
                    None => open = false,
                },
                r = call.await_cancel(Duration::from_millis(100)) => {
                    if let Err(SipError::State(_)) = r {
                        return;
                    }
                }
            }
        } else if let Err(SipError::State(_)) = call.await_cancel(Duration::from_millis(100)).await
        {
            return;
        }
        let received = call.received();
        for m in &received[seen.min(received.len())..] {
            match m.method() {
                Some("CANCEL") => {
                    let reason = m.header("Reason").map(str::to_owned);
                    log.push(Event::Cancel {
                        call_id: call_id.clone(),
                        reason: reason.clone(),
                    });
                    if let Some(p) = current(&phone) {
                        p.send(Input::Cancel {
                            call_id: call_id.clone(),
                            reason: CancelReason::from_reason_header(reason.as_deref()),
                        });
                    }
                }
                Some("BYE") => {
                    log.push(Event::Bye {
                        call_id: call_id.clone(),
                    });
                    if let Some(p) = current(&phone) {
                        p.send(Input::RemoteBye {
                            call_id: call_id.clone(),
                        });
                    }
                }
                _ => {}
            }
        }
        seen = received.len();
    }
}
