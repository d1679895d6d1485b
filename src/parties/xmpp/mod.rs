//! The cast of one XMPP scenario (`@profile:xmpp`, [`XmppCast`]): the target's XMPP server, the
//! bench's in-process XEP-0357 app server connected as the target's component, the shared mock
//! APNs, Bob (`xmpp_peer::Caller`) and Alice's devices ([`device::XDevice`]).
//!
//! One XMPP scenario at a time: the scenarios share the target's accounts (`alice`, `bob`) and
//! the component (an XMPP server accepts one connection per component domain), and Prosody batches
//! a user's pushes per second, so two scenarios at once would see each other's stanzas and
//! pushes. The cast takes a process-wide turn when it is set up and gives it back
//! after the teardown, whatever the runner's concurrency; each scenario still gets its own nodes,
//! tokens, resources and app server, and its teardown wakes, disables and closes every session it
//! opened, so the next scenario starts from a clean account.
//!
//! The iPhone's app does not reconnect by itself when a push arrives (it reconnects when a step
//! says "after reconnecting" or "leaves flight mode"): the scenarios check what the pushes alone
//! do, before the phone is back on XMPP.

pub mod device;
pub mod hibernation;

use self::device::{DeviceTeardown, XDevice};
use self::hibernation::HibernationLog;
use super::apns::{pushes_after, shared_apns};
use super::device::{feed_deliveries, DeviceKind, DeviceLog};
use super::{next_scenario_number, random_token, Alice};
use crate::scenario::{ScenarioContext, Teardowns};
use crate::target::{Environment, Target, XmppAccount};
use crate::verdict::StepError;
use futures::FutureExt as _;
use mock_apns::{DeviceSpec as ApnsDevice, DeviceState, MockApns, PushRecord};
use phone::{Action, DriverConfig, Iphone, IphoneConfig, PhoneHandle, WallClock};
use ref_gateway::apns::{ApnsAuth, ApnsClient, ApnsClientConfig};
use ref_gateway::app_server::{ApnsClients, AppServer, AppServerConfig, Outcome, Registration};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};
use timeline::{lock, Protocol, Timeline};
use tokio::sync::{broadcast, Mutex, OwnedMutexGuard};
use xmpp_peer::forms::DataForm;
use xmpp_peer::{Caller, ClientConfig, ComponentConfig, PhoneAccount, TlsClient};

/// Each login step, IQ and reconnect of the bench's own XMPP clients.
pub const XMPP_STEP: Duration = Duration::from_secs(5);

/// One XMPP scenario at a time (see the module doc).
static TURN: LazyLock<Arc<Mutex<()>>> = LazyLock::new(Default::default);

/// An XMPP error as a step error. Bytes the server sent that are not XMPP, or a stanza that is
/// wrong at that point, are the server's fault: the step fails and shows them. Anything else
/// (refused connection, timeout, authentication…) means the server did not let the bench do its
/// part: inconclusive.
pub fn peer_error(what: &str) -> impl FnOnce(xmpp_peer::Error) -> StepError + '_ {
    move |e| match e {
        xmpp_peer::Error::Malformed(f) => StepError::fail_with_message(
            format!("{what}: the server sent malformed XMPP: {}", f.reason),
            f.bytes,
        ),
        xmpp_peer::Error::Unexpected { context, raw } => StepError::fail_with_message(
            format!("{what}: unexpected from the server while {context}"),
            raw.into_bytes(),
        ),
        e => StepError::inconclusive(format!("{what}: {e}")),
    }
}

/// What Bob (or Alice's desktop) did last, and so what the server should publish for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Move {
    /// Nothing yet.
    Nothing,
    /// A chat message.
    Message,
    /// A chat state.
    ChatState,
    /// A call (JMI propose) with this id.
    Call(String),
    /// The end of call `id` (retract, proceed or reject).
    CallEnd(String),
}

impl Move {
    /// Whether a handled publish is the one this move causes.
    pub fn caused(&self, o: &Outcome) -> bool {
        use ref_gateway::app_server::classify::PublishKind;
        match (self, &o.kind) {
            (Move::Message, Some(PublishKind::Message { .. })) => true,
            (Move::Call(id), Some(PublishKind::Call { id: x, .. })) => x == id,
            (Move::CallEnd(id), Some(PublishKind::CallEnded { id: x, .. })) => x == id,
            (Move::Nothing | Move::ChatState, _) => true,
            _ => false,
        }
    }
}

/// Bob's XEP-0353 call.
#[derive(Clone, Debug)]
pub struct XCall {
    /// The JMI id.
    pub id: String,
    /// Bob's full JID (the propose's `from`).
    pub from: String,
}

/// Everyone in one XMPP scenario.
pub struct XmppCast {
    /// The scenario's number in this process (part of nodes and resources).
    number: u64,
    /// Where the app finds the call's id and the rest in a push (`[apns.payload]`), and whether
    /// it holds the unrestricted VoIP entitlement.
    payload: (phone::PayloadContract, bool),
    /// The mock APNs' push-log position when the cast was set up.
    start_seq: u64,
    /// The XMPP domain.
    domain: String,
    /// The app's bundle id.
    bundle: String,
    /// The APNs environment of the app server's client (and of the tokens).
    env: Environment,
    /// The shared mock APNs.
    apns: Arc<MockApns>,
    /// The bench's app server.
    app: Arc<AppServer>,
    /// Every publish the app server handled in this scenario, with when the bench saw it.
    outcomes: Vec<(Instant, Outcome)>,
    outcome_rx: broadcast::Receiver<Outcome>,
    /// The app server's component domain (where the devices enable push).
    component: String,
    /// Alice's account.
    alice: ClientConfig,
    /// Bob's bare JID.
    bob_jid: String,
    /// Bob (shared with the teardown, which closes his session).
    bob: Arc<Mutex<Caller>>,
    /// Alice's devices.
    devices: BTreeMap<DeviceKind, XDevice>,
    /// Bob's latest call.
    call: Option<XCall>,
    /// When Bob (or Alice's desktop) last did something: the app server's publishes are looked
    /// for from there.
    mark_at: Instant,
    /// The push-log position just before it: the window of push checks starts after it.
    mark_seq: u64,
    /// What that was.
    last_move: Move,
    /// The push the latest "exactly one … push" step found.
    push: Option<PushRecord>,
    /// When Alice's iPhone came back online (left flight mode or reconnected).
    back_online: Option<Instant>,
    /// The server's log, to confirm hibernation.
    log_file: Option<PathBuf>,
    /// What that log says when the server keeps a session for resumption (`[xmpp]
    /// hibernation_log_line`).
    hibernation_line: String,
    /// Otherwise, how long hibernation takes.
    hibernation_confirm: Duration,
    /// The timeline.
    timeline: Timeline,
    _turn: OwnedMutexGuard<()>,
}

fn account<'t>(target: &'t Target, name: &str) -> Result<&'t XmppAccount, StepError> {
    target.xmpp_account(name).ok_or_else(|| {
        StepError::inconclusive(format!(
            "the target declares no XMPP account named {name:?}"
        ))
    })
}

fn parse_addr(key: &str, s: &str) -> Result<SocketAddr, StepError> {
    s.parse()
        .map_err(|e| StepError::inconclusive(format!("target {key} {s:?}: {e}")))
}

/// The TLS trust of the target's c2s listener (`[xmpp] tls_ca_file`).
pub fn xmpp_tls(ca_file: Option<&Path>, domain: &str) -> Result<Option<TlsClient>, StepError> {
    ca_file
        .map(|p| {
            TlsClient::from_ca_file(p, domain).map_err(|e| {
                StepError::inconclusive(format!("[xmpp] tls_ca_file {}: {e}", p.display()))
            })
        })
        .transpose()
}

async fn start_app_server(
    context: &ScenarioContext,
    timeline: &Timeline,
    target: &Target,
    apns: &MockApns,
    component: ComponentConfig,
) -> Result<AppServer, StepError> {
    let creds = apns.credentials();
    let ca = std::fs::read(creds.ca_path())
        .map_err(|e| StepError::inconclusive(format!("mock APNs CA: {e}")))?;
    let auth = ApnsAuth::token_from_p8_file(&creds.key_path(), creds.key_id(), creds.team_id())
        .map_err(|e| StepError::inconclusive(format!("the app server's APNs key: {e}")))?;
    let env = target.apns.environment;
    let addr = match env {
        Environment::Sandbox => apns.sandbox_addr(),
        Environment::Production => apns.production_addr(),
    };
    let client = ApnsClientConfig::new(addr, &ca, auth)
        .and_then(|c| {
            ApnsClient::new(
                c.environment(env)
                    .recorder(timeline.recorder("app-server", Protocol::Apns)),
            )
        })
        .map_err(|e| StepError::inconclusive(format!("the app server's APNs client: {e}")))?;
    let clients = match env {
        Environment::Sandbox => ApnsClients {
            sandbox: Some(client),
            production: None,
        },
        Environment::Production => ApnsClients {
            sandbox: None,
            production: Some(client),
        },
    };
    let mut cfg = AppServerConfig::new(component);
    cfg.faults = context.faults.app_server.clone();
    AppServer::start(
        cfg,
        clients,
        timeline.recorder("app-server", Protocol::Xmpp),
    )
    .await
    .map_err(|e| {
        StepError::inconclusive(format!(
            "the app server could not connect as the target's component: {e}"
        ))
    })
}

impl XmppCast {
    /// Sets up the scenario's XMPP cast: the scenario's turn, the shared mock APNs, the app server
    /// connected as the target's component, and Bob logged in. Cleanups go to `teardowns`.
    pub async fn set_up(
        context: &ScenarioContext,
        timeline: &Timeline,
        teardowns: &mut Teardowns,
    ) -> Result<XmppCast, StepError> {
        let target = context.target.as_ref().clone();
        let xmpp = target
            .xmpp
            .clone()
            .ok_or_else(|| StepError::inconclusive("the target has no [xmpp] section"))?;
        let comp = xmpp.component.clone().ok_or_else(|| {
        StepError::inconclusive(
            "the target names no [xmpp.component]: the bench registers devices only with its own app server",
        )
    })?;
        let turn = TURN.clone().lock_owned().await;
        let number = next_scenario_number();
        // The app server is in-process: it uses the mock APNs' own (temporary) credentials.
        let mut apns_target = target.clone();
        apns_target.apns.credentials_dir = PathBuf::new();
        let apns = shared_apns(&apns_target).await?;
        let c2s = parse_addr("xmpp.c2s", &xmpp.c2s)?;
        let tls = xmpp_tls(xmpp.tls_ca_file.as_deref(), &xmpp.domain)?;
        let client = |a: &XmppAccount, resource: String| {
            let mut c = ClientConfig::new(&a.jid, &a.password, c2s, tls.clone());
            c.resource = resource;
            c.peer = "xmpp-server".into();
            c.step_timeout = XMPP_STEP;
            c
        };
        let alice = client(account(&target, "alice")?, String::new());
        let bob_account = account(&target, "bob")?.clone();
        let mut component = ComponentConfig::new(
            &comp.domain,
            &comp.secret,
            parse_addr("xmpp.component.address", &comp.address)?,
        );
        component.peer = "xmpp-server".into();
        component.step_timeout = XMPP_STEP;
        let app = Arc::new(start_app_server(context, timeline, &target, &apns, component).await?);
        let outcome_rx = app.subscribe();
        let a = app.clone();
        // Registered first, so it runs last: the devices' teardown still reaches the app server.
        teardowns.add("stop the app server", move || {
            async move {
                // Closed here, not when the parties are dropped: the next scenario's app server
                // connects as the same component, which the server accepts only once this one is gone.
                a.stop().await;
            }
            .boxed()
        });
        let bob = Caller::connect(
            client(&bob_account, format!("pushbench-{number}-bob")),
            timeline.recorder("bob", Protocol::Xmpp),
        )
        .await
        .map_err(peer_error("Bob could not log in"))?;
        let bob = Arc::new(Mutex::new(bob));
        let b = bob.clone();
        teardowns.add("close Bob's XMPP session", move || {
            async move {
                let _ = b
                    .lock()
                    .await
                    .client_mut()
                    .end_session(Duration::from_secs(2))
                    .await;
            }
            .boxed()
        });
        let start_seq = apns.push_seq();
        let c = XmppCast {
            number,
            payload: (
                target.apns.payload_contract(),
                target.apns.unrestricted_voip(),
            ),
            start_seq,
            domain: xmpp.domain.clone(),
            bundle: apns.credentials().bundle_id().to_owned(),
            env: target.apns.environment,
            apns,
            app,
            outcomes: Vec::new(),
            outcome_rx,
            component: comp.domain.clone(),
            alice,
            bob_jid: bob_account.jid.clone(),
            bob,
            devices: BTreeMap::new(),
            call: None,
            mark_at: Instant::now(),
            mark_seq: start_seq,
            last_move: Move::Nothing,
            push: None,
            back_online: None,
            log_file: xmpp.log_file.clone(),
            hibernation_line: xmpp.hibernation_log_line.clone(),
            hibernation_confirm: xmpp.hibernation_confirm,
            timeline: timeline.clone(),
            _turn: turn,
        };
        timeline.note(
            "bench",
            format!(
                "xmpp cast {number}: Alice = {}, Bob = {}, c2s {c2s}, app server = component {}",
                c.alice.jid, c.bob_jid, c.component
            ),
        );
        Ok(c)
    }

    /// The device, or inconclusive when no step set it up.
    pub fn device(&self, kind: DeviceKind) -> Result<&XDevice, StepError> {
        self.devices.get(&kind).ok_or_else(|| {
            StepError::inconclusive(format!("no step set up Alice's {kind} in this scenario"))
        })
    }

    /// The device, mutably.
    pub fn device_mut(&mut self, kind: DeviceKind) -> Result<&mut XDevice, StepError> {
        self.devices.get_mut(&kind).ok_or_else(|| {
            StepError::inconclusive(format!("no step set up Alice's {kind} in this scenario"))
        })
    }

    /// Bob's latest call.
    pub fn call(&self) -> Result<&XCall, StepError> {
        self.call
            .as_ref()
            .ok_or_else(|| StepError::inconclusive("Bob has not called yet"))
    }

    /// Every token of Alice's devices.
    pub fn alice_tokens(&self) -> Vec<String> {
        self.devices.values().flat_map(XDevice::tokens).collect()
    }

    /// The VoIP topic.
    pub fn voip_topic(&self) -> String {
        format!("{}.voip", self.bundle)
    }

    /// Every request mock-apns received for these tokens after push-log position `seq` (and in
    /// this scenario).
    fn pushes_after(&self, tokens: &[String], seq: u64) -> Vec<PushRecord> {
        pushes_after(&self.apns, tokens, seq.max(self.start_seq))
    }

    /// Notes that Bob (or Alice's desktop) is about to act: push windows start here.
    pub fn mark(&mut self, what: Move) {
        // What the app server handled so far is before the mark.
        self.take_outcomes();
        self.mark_at = Instant::now();
        self.mark_seq = self.apns.push_seq();
        self.last_move = what;
    }

    /// Moves what the app server handled since the last look into its outcomes.
    fn take_outcomes(&mut self) {
        loop {
            match self.outcome_rx.try_recv() {
                Ok(o) => self.outcomes.push((Instant::now(), o)),
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    }

    /// Takes the app server's handled publishes into its outcomes, waiting until
    /// `pred` accepts one for `node` (or `deadline`). Returns the first accepted one.
    pub async fn outcome_for(
        &mut self,
        node: &str,
        since: Instant,
        deadline: Instant,
        pred: impl Fn(&Outcome) -> bool,
    ) -> Option<Outcome> {
        loop {
            self.take_outcomes();
            if let Some((_, o)) = self
                .outcomes
                .iter()
                .find(|(at, o)| *at >= since && o.node == node && pred(o))
            {
                return Some(o.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.outcome_rx.recv()).await {
                Ok(Ok(o)) => self.outcomes.push((Instant::now(), o)),
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => return None,
            }
        }
    }

    /// Starts one of Alice's devices: tokens at mock-apns, its registration at the app server,
    /// the account logged in with carbons on and XEP-0357 push enabled for its node, and (iPhone,
    /// iPad) the iOS model fed by the tokens' deliveries.
    pub async fn add_push_device(&mut self, kind: DeviceKind) -> Result<DeviceTeardown, StepError> {
        let (voip, alert) = (random_token(), random_token());
        let node = format!("pushbench-{}-{}", self.number, kind.party());
        let secret = random_token();
        let env = self.env;
        for (token, topic) in [(&voip, self.voip_topic()), (&alert, self.bundle.clone())] {
            self.apns.register_device(
                ApnsDevice::new(token.clone(), vec![topic], env)
                    .name(kind.party())
                    .recorder(self.timeline.recorder("mock-apns", Protocol::Apns)),
            );
        }
        let mut reg = Registration::new(&node, &voip, &self.bundle)
            .alert_token(&alert)
            .secret(&secret);
        reg.environment = env;
        self.app.registry().register(reg);
        let mut cfg = self.alice.clone();
        cfg.resource = format!("pushbench-{}-{}", self.number, kind.party());
        let mut account =
            PhoneAccount::connect(cfg, self.timeline.recorder(kind.party(), Protocol::Xmpp))
                .await
                .map_err(peer_error(&format!("Alice's {kind} could not log in")))?;
        account
            .enable_carbons(XMPP_STEP)
            .await
            .map_err(peer_error(&format!("carbons for Alice's {kind}")))?;
        account
            .enable_push(
                &self.component,
                &node,
                Some(DataForm::publish_options().field("secret", &secret)),
                XMPP_STEP,
            )
            .await
            .map_err(peer_error(&format!(
                "the server refused to enable push for Alice's {kind}"
            )))?;
        let mut device = self.new_device(kind, account, node, Some((voip, alert)));
        self.start_model(&mut device);
        let teardown = self.teardown_of(&device);
        self.devices.insert(kind, device);
        Ok(teardown)
    }

    fn new_device(
        &self,
        kind: DeviceKind,
        account: PhoneAccount,
        node: String,
        tokens: Option<(String, String)>,
    ) -> XDevice {
        let (voip_token, alert_token) = tokens.unzip();
        XDevice {
            kind,
            account: Arc::new(Mutex::new(account)),
            node,
            voip_token,
            alert_token,
            phone: None,
            log: Arc::new(DeviceLog::default()),
            asleep: Default::default(),
            reconnected: None,
            rec: self.timeline.recorder(kind.party(), Protocol::Note),
            tasks: Vec::new(),
        }
    }

    /// Alice's desktop: awake, with presence, no push.
    pub async fn add_desktop(&mut self) -> Result<DeviceTeardown, StepError> {
        let kind = DeviceKind::Desktop;
        let mut cfg = self.alice.clone();
        cfg.resource = format!("pushbench-{}-desktop", self.number);
        let account =
            PhoneAccount::connect(cfg, self.timeline.recorder(kind.party(), Protocol::Xmpp))
                .await
                .map_err(peer_error("Alice's desktop could not log in"))?;
        // Online means available: the server echoes the initial presence once it routes to it.
        let me = account.client().jid().to_owned();
        account
            .client()
            .wait_for(XMPP_STEP, "the desktop's own presence", |e| {
                e.name() == "presence"
                    && e.get_attr("from") == Some(me.as_str())
                    && e.get_attr("type").is_none()
            })
            .await
            .map_err(peer_error(
                "the server never made Alice's desktop available",
            ))?;
        let device = self.new_device(kind, account, String::new(), None);
        let teardown = self.teardown_of(&device);
        self.devices.insert(kind, device);
        Ok(teardown)
    }

    fn start_model(&self, device: &mut XDevice) {
        let kind = device.kind;
        let model = Iphone::new(
            IphoneConfig {
                uuid_seed: self.number << 8 | kind as u64,
                payload: self.payload.0.clone(),
                unrestricted_voip: self.payload.1,
                ..IphoneConfig::default()
            },
            WallClock::new(Instant::now(), timeline::now_ms()),
            self.timeline.recorder(kind.party(), Protocol::Note),
        );
        let (handle, mut actions) = phone::spawn(model, DriverConfig::default());
        let rec = self.timeline.recorder(kind.party(), Protocol::Note);
        let t = tokio::spawn(async move {
            while let Some(a) = actions.recv().await {
                if let Action::WakeAccount { .. } = a {
                    rec.note(
                        "the app would reconnect now; the bench reconnects it at the scenario's reconnect step",
                    );
                }
            }
        });
        device.tasks.push(t.abort_handle());
        for token in device.tokens() {
            let phone = handle.clone();
            let t = feed_deliveries(
                &self.apns,
                token,
                device.log.clone(),
                &self.payload.0,
                move |input| {
                    phone.send(input);
                },
            );
            device.tasks.push(t);
        }
        device.phone = Some(handle);
    }

    /// The device's teardown: wake a sleeping session, disable push, end the session.
    fn teardown_of(&self, device: &XDevice) -> DeviceTeardown {
        let (account, asleep) = (device.account.clone(), device.asleep.clone());
        let (component, node) = (self.component.clone(), device.node.clone());
        let rec = self.timeline.recorder(device.kind.party(), Protocol::Note);
        let what = format!("end the XMPP session of Alice's {}", device.kind);
        let run = Box::new(move || {
            async move {
                let mut a = account.lock().await;
                if lock(&asleep).take().is_some() {
                    if let Err(e) = a.wake(50, XMPP_STEP).await {
                        rec.note(format!("teardown: reconnect failed: {e}"));
                    }
                }
                if !node.is_empty() {
                    if let Err(e) = a.disable_push(&component, Some(&node), XMPP_STEP).await {
                        rec.note(format!("teardown: disable push failed: {e}"));
                    }
                }
                if let Err(e) = a.client_mut().end_session(Duration::from_secs(2)).await {
                    rec.note(format!("teardown: close failed: {e}"));
                }
            }
            .boxed()
        });
        DeviceTeardown { what, run }
    }
}

impl XmppCast {
    /// The server's log, when the target names one.
    pub fn hibernation_log(&self) -> Option<HibernationLog<'_>> {
        self.log_file.as_deref().map(|path| HibernationLog {
            path,
            line: &self.hibernation_line,
        })
    }
}

impl XmppCast {
    /// Where the app finds the call's id and the rest in a push (`[apns.payload]`).
    pub fn payload_contract(&self) -> &phone::PayloadContract {
        &self.payload.0
    }

    /// The server's XMPP domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The app's bundle id.
    pub fn bundle(&self) -> &str {
        &self.bundle
    }

    /// The bench's app server.
    pub fn app(&self) -> &AppServer {
        &self.app
    }

    /// Alice's bare JID.
    pub fn alice_jid(&self) -> &str {
        &self.alice.jid
    }

    /// Bob's bare JID.
    pub fn bob_jid(&self) -> &str {
        &self.bob_jid
    }

    /// Bob's session (shared with the teardown, which closes it).
    pub fn bob(&self) -> Arc<Mutex<Caller>> {
        self.bob.clone()
    }

    /// The scenario's timeline.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// When Bob's latest move began (the app server's publishes are looked for from there).
    pub fn mark_at(&self) -> Instant {
        self.mark_at
    }

    /// Keeps Bob's call (just proposed): it is his latest move.
    pub fn set_call(&mut self, call: XCall) {
        self.last_move = Move::Call(call.id.clone());
        self.timeline.note(
            "bench",
            format!("Bob's call: JMI id {}, from {}", call.id, call.from),
        );
        self.call = Some(call);
    }

    /// The push the latest "exactly one … push" step found.
    pub fn push(&self) -> Option<&PushRecord> {
        self.push.as_ref()
    }

    /// Keeps the push a step found as "the push".
    pub fn set_push(&mut self, push: PushRecord) {
        self.push = Some(push);
    }

    /// Alice's iPhone comes back online now.
    pub fn set_back_online(&mut self) {
        self.back_online = Some(Instant::now());
    }

    /// Every request mock-apns received for these tokens since Bob's latest move.
    pub fn pushes_since_mark(&self, tokens: &[String]) -> Vec<PushRecord> {
        self.pushes_after(tokens, self.mark_seq)
    }

    /// Every request mock-apns received for these tokens since the scenario began.
    pub fn pushes_since_start(&self, tokens: &[String]) -> Vec<PushRecord> {
        self.pushes_after(tokens, self.start_seq)
    }

    /// The first publish for `node` the app server handled since Bob's latest move that this
    /// move caused, waited for until `deadline`.
    pub async fn outcome_of_last_move(&mut self, node: &str, deadline: Instant) -> Option<Outcome> {
        let (since, last) = (self.mark_at, self.last_move.clone());
        self.outcome_for(node, since, deadline, |o| last.caused(o))
            .await
    }

    /// How long to wait, without a server log, for a dropped session to hibernate.
    pub fn hibernation_confirm(&self) -> Duration {
        self.hibernation_confirm
    }

    /// Sets the state of every token of a device at mock-apns.
    pub fn set_tokens(&self, kind: DeviceKind, state: DeviceState) -> Result<(), StepError> {
        for t in self.device(kind)?.tokens() {
            self.apns
                .set_state(&t, state)
                .map_err(|e| StepError::inconclusive(format!("mock APNs: {e}")))?;
        }
        Ok(())
    }
}

impl Alice for XmppCast {
    fn phone(&self, kind: DeviceKind) -> Result<PhoneHandle, StepError> {
        self.device(kind)?.phone()
    }

    fn latest_call_id(&self) -> Option<String> {
        self.call.as_ref().map(|x| x.id.clone())
    }

    fn back_online(&self, kind: DeviceKind) -> Option<Instant> {
        let reconnected = self
            .devices
            .get(&kind)
            .and_then(|d| d.reconnected.as_ref().map(|r| r.at));
        self.back_online
            .filter(|_| kind == DeviceKind::Iphone)
            .or(reconnected)
    }

    fn voip_pushes_to_alice(&self) -> Vec<PushRecord> {
        self.pushes_since_start(&self.alice_tokens())
            .into_iter()
            .filter(PushRecord::is_voip)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ref_gateway::app_server::classify::PublishKind;
    use ref_gateway::app_server::Answer;

    fn outcome(kind: Option<PublishKind>) -> Outcome {
        Outcome {
            node: "n".into(),
            kind,
            pushes: vec![],
            answer: Answer::Result,
        }
    }

    #[test]
    fn a_move_is_matched_to_the_publish_it_causes() {
        let call = |id: &str| {
            outcome(Some(PublishKind::Call {
                id: id.into(),
                caller: None,
            }))
        };
        let ended = |id: &str| {
            outcome(Some(PublishKind::CallEnded {
                id: id.into(),
                how: ref_gateway::app_server::classify::CallEnd::Retracted,
            }))
        };
        let message = outcome(Some(PublishKind::Message {
            body: "New Message!".into(),
            sender: None,
        }));
        assert!(Move::CallEnd("c1".into()).caused(&ended("c1")));
        assert!(!Move::CallEnd("c1".into()).caused(&ended("c2")));
        // The duplicate publish of the propose is not the retract's.
        assert!(!Move::CallEnd("c1".into()).caused(&call("c1")));
        assert!(Move::Call("c1".into()).caused(&call("c1")));
        assert!(Move::Message.caused(&message));
        assert!(!Move::Message.caused(&outcome(Some(PublishKind::Unimportant))));
        assert!(Move::Nothing.caused(&outcome(None)));
    }
}
