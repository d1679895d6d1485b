//! The cast of one XMPP scenario (`@profile:xmpp`): the target's XMPP server, the bench's
//! in-process XEP-0357 app server connected as the target's component, the shared mock APNs, Bob
//! (`xmpp_peer::Caller`) and Alice's devices ([`XDevice`]: an `xmpp_peer::PhoneAccount`, its
//! XEP-0357 node and APNs tokens, and for the iPhone and iPad the `phone` iOS model fed by what
//! mock-apns delivers to the tokens).
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

use super::cast::{now_ms, random_token, shared_apns};
use super::device::{feed_deliveries, DeviceKind, DeviceLog};
use super::lock;
use crate::target::{Target, XmppAccount};
use crate::verdict::StepError;
use crate::world::BenchWorld;
use futures::FutureExt as _;
use mock_apns::{DeviceSpec as ApnsDevice, DeviceState, Environment, MockApns, PushRecord};
use phone::{Action, DriverConfig, Input, Iphone, IphoneConfig, PhoneHandle, WallClock};
use ref_gateway::apns::{ApnsAuth, ApnsClient, ApnsClientConfig};
use ref_gateway::app_server::xmpp_peer::forms::DataForm;
use ref_gateway::app_server::xmpp_peer::message::Message;
use ref_gateway::app_server::xmpp_peer::{
    self, Caller, ClientConfig, ComponentConfig, Element, PhoneAccount, SleepMode, TlsClient,
};
use ref_gateway::app_server::{
    ApnsClients, AppFault, AppFaults, AppServer, AppServerConfig, Outcome, Registration,
};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};
use timeline::{Protocol, Timeline};
use tokio::sync::{broadcast, Mutex, OwnedMutexGuard};
use tokio::task::AbortHandle;

/// The party name the XMPP cast is kept under in [`crate::world::Parties`].
pub const XMPP_CAST: &str = "xmpp-cast";

/// Each login step, IQ and reconnect of the bench's own XMPP clients.
pub const XMPP_STEP: Duration = Duration::from_secs(5);

/// How long the server may take to log the hibernation.
const HIBERNATION_DEADLINE: Duration = Duration::from_secs(5);

/// One XMPP scenario at a time (see the module doc).
static TURN: LazyLock<Arc<Mutex<()>>> = LazyLock::new(Default::default);

/// How the bench's in-process app server is configured for the runs started on this thread.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppServerSetup {
    /// Fault switches (the XMPP fault matrix).
    pub faults: AppFaults,
}

thread_local! {
    static APP_SERVER: RefCell<Option<AppServerSetup>> = const { RefCell::new(None) };
}

/// Sets (or clears) the app server's configuration for runs started on this thread (cucumber
/// drives the steps on the thread that called [`crate::runner::run_blocking`]). Without it,
/// `PUSHBENCH_APP_FAULTS` (comma-separated `AppFault` names) is read.
pub fn configure_app_server(setup: Option<AppServerSetup>) {
    APP_SERVER.with(|a| *a.borrow_mut() = setup);
}

fn app_server_setup() -> Result<AppServerSetup, StepError> {
    if let Some(s) = APP_SERVER.with(|a| a.borrow().clone()) {
        return Ok(s);
    }
    let mut faults = AppFaults::none();
    for f in super::faults_from_env("PUSHBENCH_APP_FAULTS", AppFault::from_name)? {
        faults.insert(f);
    }
    Ok(AppServerSetup { faults })
}

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

/// What one of Alice's devices received after it reconnected.
#[derive(Clone, Debug)]
pub struct Reconnected {
    /// When it reconnected.
    pub at: Instant,
    /// Resumed or a new session (with the server's `<failed/>`).
    pub how: String,
    /// Every message it received since (carbons unwrapped), in order.
    pub messages: Vec<Message>,
}

/// One of Alice's devices on XMPP.
pub struct XDevice {
    /// Which.
    pub kind: DeviceKind,
    /// Its account (shared with the teardown).
    pub account: Arc<Mutex<PhoneAccount>>,
    /// Its XEP-0357 node (empty for the desktop).
    pub node: String,
    /// PushKit token.
    pub voip_token: Option<String>,
    /// User-notification token.
    pub alert_token: Option<String>,
    /// The iOS model (iPhone, iPad).
    pub phone: Option<PhoneHandle>,
    /// The pushes delivered to it.
    pub log: Arc<DeviceLog>,
    /// How it is asleep, if it is.
    pub asleep: Arc<std::sync::Mutex<Option<SleepMode>>>,
    /// What it received after it reconnected (set by the reconnect).
    pub reconnected: Option<Reconnected>,
    rec: timeline::Recorder,
    tasks: Vec<AbortHandle>,
}

impl Drop for XDevice {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl XDevice {
    /// Its tokens.
    pub fn tokens(&self) -> Vec<String> {
        self.voip_token
            .iter()
            .chain(self.alert_token.iter())
            .cloned()
            .collect()
    }

    /// The iOS model, or inconclusive for the desktop.
    pub fn phone(&self) -> Result<PhoneHandle, StepError> {
        self.phone.clone().ok_or_else(|| {
            StepError::inconclusive(format!("Alice's {} has no iOS model", self.kind))
        })
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
    pub number: u64,
    /// The mock APNs' push-log position when the cast was set up.
    pub start_seq: u64,
    /// The XMPP domain.
    pub domain: String,
    /// The app's bundle id.
    pub bundle: String,
    /// The APNs environment of the app server's client (and of the tokens).
    pub env: Environment,
    /// The shared mock APNs.
    pub apns: Arc<MockApns>,
    /// The bench's app server.
    pub app: Arc<AppServer>,
    /// Every publish the app server handled in this scenario, with when the bench saw it.
    pub outcomes: Vec<(Instant, Outcome)>,
    outcome_rx: broadcast::Receiver<Outcome>,
    /// The app server's component domain (where the devices enable push).
    pub component: String,
    /// Alice's account.
    pub alice: ClientConfig,
    /// Bob's bare JID.
    pub bob_jid: String,
    /// Bob (shared with the teardown, which closes his session).
    pub bob: Arc<Mutex<Caller>>,
    /// Alice's devices.
    pub devices: BTreeMap<DeviceKind, XDevice>,
    /// Bob's latest call.
    pub call: Option<XCall>,
    /// When Bob (or Alice's desktop) last did something: the app server's publishes are looked
    /// for from there.
    pub mark_at: Instant,
    /// The push-log position just before it: the window of push checks starts after it.
    pub mark_seq: u64,
    /// What that was.
    pub last_move: Move,
    /// The push the latest "exactly one … push" step found.
    pub push: Option<PushRecord>,
    /// When Alice's iPhone came back online (left flight mode or reconnected).
    pub back_online: Option<Instant>,
    /// The server's log, to confirm hibernation.
    pub log_file: Option<PathBuf>,
    /// What that log says when the server keeps a session for resumption (`[xmpp]
    /// hibernation_log_line`).
    pub hibernation_line: String,
    /// Otherwise, how long hibernation takes.
    pub hibernation_confirm: Duration,
    /// The timeline.
    pub timeline: Timeline,
    _turn: OwnedMutexGuard<()>,
}

/// True when this scenario runs against an XMPP target (its cast is set up, or the target has
/// no SIP side).
pub fn is_xmpp(w: &BenchWorld) -> bool {
    w.parties.contains(XMPP_CAST)
        || w.target()
            .is_ok_and(|t| t.sip.is_none() && t.xmpp.is_some())
}

/// Sets up the scenario's XMPP cast (once). Every XMPP step starts with this.
pub async fn xcast(w: &mut BenchWorld) -> Result<&mut XmppCast, StepError> {
    if !w.parties.contains(XMPP_CAST) {
        let c = set_up(w).await?;
        w.parties.insert(XMPP_CAST, c);
    }
    w.parties.get_mut::<XmppCast>(XMPP_CAST)
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
    w: &BenchWorld,
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
                    .recorder(w.timeline.recorder("app-server", Protocol::Apns)),
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
    cfg.faults = app_server_setup()?.faults;
    AppServer::start(
        cfg,
        clients,
        w.timeline.recorder("app-server", Protocol::Xmpp),
    )
    .await
    .map_err(|e| {
        StepError::inconclusive(format!(
            "the app server could not connect as the target's component: {e}"
        ))
    })
}

async fn set_up(w: &mut BenchWorld) -> Result<XmppCast, StepError> {
    let target = w.target()?.clone();
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
    let number = super::next_scenario_number();
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
    let app = Arc::new(start_app_server(w, &target, &apns, component).await?);
    let outcome_rx = app.subscribe();
    let a = app.clone();
    // Registered first, so it runs last: the devices' teardown still reaches the app server.
    w.on_teardown("stop the app server", move || {
        async move {
            // Closed here, not when the parties are dropped: the next scenario's app server
            // connects as the same component, which the server accepts only once this one is gone.
            a.stop().await;
        }
        .boxed()
    });
    let bob = Caller::connect(
        client(&bob_account, format!("pushbench-{number}-bob")),
        w.timeline.recorder("bob", Protocol::Xmpp),
    )
    .await
    .map_err(peer_error("Bob could not log in"))?;
    let bob = Arc::new(Mutex::new(bob));
    let b = bob.clone();
    w.on_teardown("close Bob's XMPP session", move || {
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
        timeline: w.timeline.clone(),
        _turn: turn,
    };
    w.timeline.note(
        "bench",
        format!(
            "xmpp cast {number}: Alice = {}, Bob = {}, c2s {c2s}, app server = component {}",
            c.alice.jid, c.bob_jid, c.component
        ),
    );
    Ok(c)
}

/// Unwraps carbons: the message another of Alice's devices sent or received.
pub fn unwrap_carbon(m: Message) -> Message {
    match m.carbon {
        Some(c) => *c.message,
        None => m,
    }
}

/// Takes the messages waiting in a device's inbox, parsed (carbons unwrapped). A message that
/// does not parse is a failure showing it.
pub fn take_messages(account: &PhoneAccount) -> Result<Vec<Message>, StepError> {
    account
        .client()
        .inbox()
        .drain()
        .into_iter()
        .filter(|e| e.name() == "message")
        .map(|e| {
            Message::parse(&e).map(unwrap_carbon).map_err(|err| {
                StepError::fail_with_message(
                    format!("the server sent a malformed message: {err}"),
                    bytes::Bytes::from(e.to_xml()),
                )
            })
        })
        .collect()
}

impl XmppCast {
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
    pub fn pushes_after(&self, tokens: &[String], seq: u64) -> Vec<PushRecord> {
        let after = seq.max(self.start_seq);
        self.apns
            .push_log()
            .into_iter()
            .filter(|r| r.seq > after)
            .filter(|r| {
                r.token
                    .as_deref()
                    .is_some_and(|t| tokens.iter().any(|x| x.eq_ignore_ascii_case(t)))
            })
            .collect()
    }

    /// Notes that Bob (or Alice's desktop) is about to act: push windows start here.
    pub fn mark(&mut self, what: Move) {
        // What the app server handled so far is before the mark.
        self.take_outcomes();
        self.mark_at = Instant::now();
        self.mark_seq = self.apns.push_seq();
        self.last_move = what;
    }

    /// Moves what the app server handled since the last look into [`XmppCast::outcomes`].
    fn take_outcomes(&mut self) {
        loop {
            match self.outcome_rx.try_recv() {
                Ok(o) => self.outcomes.push((Instant::now(), o)),
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    }

    /// Takes the app server's handled publishes into [`XmppCast::outcomes`], waiting until
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
                ..IphoneConfig::default()
            },
            WallClock::new(Instant::now(), now_ms()),
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
            let t = feed_deliveries(&self.apns, token, device.log.clone(), move |input| {
                phone.send(input);
            });
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

/// A device's cleanup, for [`BenchWorld::on_teardown`].
pub struct DeviceTeardown {
    /// What it does.
    pub what: String,
    /// The cleanup.
    pub run: crate::world::Teardown,
}

impl DeviceTeardown {
    /// Registers it on the world.
    pub fn register(self, w: &mut BenchWorld) {
        w.on_teardown(self.what, self.run);
    }
}

/// A XEP-0199 ping to the server: its answer comes after everything the server sent before it.
fn ping(domain: &str) -> Element {
    Element::new("iq", xmpp_peer::ns::CLIENT)
        .attr("type", "get")
        .attr("to", domain)
        .child(Element::new("ping", xmpp_peer::ns::PING))
}

impl XDevice {
    /// Drops off the network the given way (the inbox is emptied first: what arrives after the
    /// reconnect is what the reconnect brought).
    pub async fn sleep(&self, mode: SleepMode) -> Result<(), StepError> {
        let mut a = self.account.lock().await;
        a.client().inbox().drain();
        a.sleep(mode).await.map_err(peer_error(&format!(
            "Alice's {} could not go to sleep",
            self.kind
        )))?;
        *lock(&self.asleep) = Some(mode);
        Ok(())
    }

    /// Reconnects (resume, else a new session and a MAM catch-up), takes what arrived up to a
    /// ping round trip, and hands the iOS model the offers of the calls still live in it (the app
    /// rings for a propose nobody retracted). Once per sleep: a second call returns the first
    /// result.
    pub async fn reconnect(&mut self, domain: &str) -> Result<&Reconnected, StepError> {
        if self.reconnected.is_none() {
            let mut a = self.account.lock().await;
            let at = Instant::now();
            let mut messages = Vec::new();
            let asleep = lock(&self.asleep).take();
            let how = if let Some(mode) = asleep {
                let report = if mode == SleepMode::HalfOpen {
                    a.wake_on_new_network(50, XMPP_STEP).await
                } else {
                    a.wake(50, XMPP_STEP).await
                };
                let report = report.map_err(peer_error(&format!(
                    "Alice's {} could not reconnect",
                    self.kind
                )))?;
                for archived in &report.caught_up {
                    let m = Message::parse(&archived.message).map_err(|e| {
                        StepError::fail_with_message(
                            format!("the server's archive returned a malformed message: {e}"),
                            bytes::Bytes::from(archived.message.to_xml()),
                        )
                    })?;
                    messages.push(unwrap_carbon(m));
                }
                format!("{:?}", report.outcome)
            } else {
                "was not asleep".to_owned()
            };
            a.client()
                .iq(ping(domain), XMPP_STEP)
                .await
                .map_err(peer_error(
                    "the server did not answer a ping after the reconnect",
                ))?;
            messages.extend(take_messages(&a)?);
            drop(a);
            let live = xmpp_peer::roles::live_proposals(&messages);
            self.rec.note(format!(
                "reconnected ({how}): {} message(s), {} live call proposal(s)",
                messages.len(),
                live.len()
            ));
            if let Some(p) = &self.phone {
                p.send(Input::Registered { ok: true });
                for j in &live {
                    let caller = messages
                        .iter()
                        .find(|m| m.jmi.as_ref().is_some_and(|x| x.id == j.id))
                        .and_then(|m| m.from.clone())
                        .unwrap_or_default();
                    p.send(Input::Offer {
                        call_id: j.id.clone(),
                        caller,
                    });
                }
            }
            self.reconnected = Some(Reconnected { at, how, messages });
        }
        self.reconnected
            .as_ref()
            .ok_or_else(|| StepError::inconclusive("no reconnect"))
    }

    /// Waits until `within` for more messages after the reconnect (appended to it).
    pub async fn more_messages(&mut self, within: Duration) -> Result<(), StepError> {
        let a = self.account.lock().await;
        let got = a
            .client()
            .wait_for(within, "a message", |e| e.name() == "message")
            .await;
        let mut more = match got {
            Ok(e) => vec![Message::parse(&e).map(unwrap_carbon).map_err(|err| {
                StepError::fail_with_message(
                    format!("the server sent a malformed message: {err}"),
                    bytes::Bytes::from(e.to_xml()),
                )
            })?],
            Err(xmpp_peer::Error::Timeout { .. }) => Vec::new(),
            Err(e) => {
                return Err(StepError::inconclusive(format!(
                    "Alice's {}: {e}",
                    self.kind
                )))
            }
        };
        more.extend(take_messages(&a)?);
        if let Some(r) = self.reconnected.as_mut() {
            r.messages.extend(more);
        }
        Ok(())
    }
}

/// The server's log and what it says when it keeps a dropped session for resumption
/// (`[xmpp] log_file` and `hibernation_log_line`).
#[derive(Clone, Copy, Debug)]
pub struct HibernationLog<'a> {
    /// The log file.
    pub path: &'a Path,
    /// The substring of the line (Prosody: `Session going into hibernation`, ejabberd:
    /// `seconds for stream resumption`).
    pub line: &'a str,
}

/// Where the server's log ended when a step looked at it: [`HibernationLog::more_than`] reads
/// only what the server wrote after it, so a long-running server's log is not read again whole
/// every poll.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogMark(u64);

impl HibernationLog<'_> {
    /// The end of the log now (the start, without a readable log).
    pub fn mark(&self) -> LogMark {
        LogMark(std::fs::metadata(self.path).map(|m| m.len()).unwrap_or(0))
    }

    /// Whether the server logged the line after `mark`. The read starts `line.len() - 1` bytes
    /// before the mark, so a line the server was half-way through writing at the mark counts,
    /// and one it had finished does not. A log shorter than the mark (rotated) is read whole.
    fn logged_since(&self, mark: LogMark) -> bool {
        use std::io::{Read as _, Seek as _, SeekFrom};
        let Ok(mut f) = std::fs::File::open(self.path) else {
            return false;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let back = self.line.len().saturating_sub(1) as u64;
        let from = if len < mark.0 {
            0
        } else {
            mark.0.saturating_sub(back)
        };
        let mut tail = Vec::new();
        if f.seek(SeekFrom::Start(from)).is_err() || f.read_to_end(&mut tail).is_err() {
            return false;
        }
        let needle = self.line.as_bytes();
        !needle.is_empty() && tail.windows(needle.len()).any(|w| w == needle)
    }

    /// Waits until the server logs the line after `mark`, at most `within`.
    async fn more_than(&self, mark: LogMark, within: Duration) -> Result<(), StepError> {
        let deadline = Instant::now() + within;
        loop {
            if self.logged_since(mark) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StepError::inconclusive(format!(
                    "the server never logged {:?} in {} within {within:?}",
                    self.line,
                    self.path.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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

/// Confirms that the server hibernated a session that just dropped: a hibernation line in its
/// log after `mark` (within 5 s), or, without a log, `confirm` elapsed.
pub async fn confirm_hibernation(
    log: Option<HibernationLog<'_>>,
    mark: LogMark,
    confirm: Duration,
) -> Result<(), StepError> {
    let Some(log) = log else {
        tokio::time::sleep(confirm).await;
        return Ok(());
    };
    log.more_than(mark, HIBERNATION_DEADLINE).await
}

/// What the shared iPhone steps need from an XMPP scenario.
pub struct AlicePhone {
    /// The iOS model.
    pub phone: PhoneHandle,
    /// Bob's latest call's JMI id.
    pub call_id: Option<String>,
    /// When the device came back online (left flight mode, else reconnected).
    pub back_online: Option<Instant>,
}

/// The device's iOS model and call, when this scenario is an XMPP one (`None`: a SIP scenario).
pub fn alice_phone(w: &BenchWorld, kind: DeviceKind) -> Result<Option<AlicePhone>, StepError> {
    if !w.parties.contains(XMPP_CAST) {
        return Ok(None);
    }
    let c = w.parties.get::<XmppCast>(XMPP_CAST)?;
    let d = c.device(kind)?;
    Ok(Some(AlicePhone {
        phone: d.phone()?,
        call_id: c.call.as_ref().map(|x| x.id.clone()),
        back_online: c
            .back_online
            .filter(|_| kind == DeviceKind::Iphone)
            .or(d.reconnected.as_ref().map(|r| r.at)),
    }))
}

/// Sets the state of every token of a device at mock-apns.
pub fn set_tokens(c: &XmppCast, kind: DeviceKind, state: DeviceState) -> Result<(), StepError> {
    for t in c.device(kind)?.tokens() {
        c.apns
            .set_state(&t, state)
            .map_err(|e| StepError::inconclusive(format!("mock APNs: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Verdict;
    use ref_gateway::app_server::classify::PublishKind;
    use ref_gateway::app_server::Answer;
    use std::io::Write as _;

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

    #[test]
    fn a_line_half_written_at_the_mark_counts_and_a_rotated_log_is_read_whole() {
        use std::io::Write as _;
        let line = crate::target::PROSODY_HIBERNATION_LINE;
        let (head, rest) = line.split_at(line.len() / 2);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(f, "c2s1 info {line}\nc2s2 info {head}").unwrap();
        f.flush().unwrap();
        let path = f.path().to_owned();
        let log = HibernationLog { path: &path, line };
        let mark = log.mark();
        assert!(
            !log.logged_since(mark),
            "the finished line is before the mark"
        );
        writeln!(f, "{rest}").unwrap();
        f.flush().unwrap();
        assert!(log.logged_since(mark), "the line finished after the mark");
        // Truncated and rewritten (log rotation): shorter than the mark, read from the start.
        std::fs::write(&path, format!("{line}\n")).unwrap();
        assert!(log.logged_since(mark));
        std::fs::write(&path, "nothing\n").unwrap();
        assert!(!log.logged_since(mark));
    }

    #[tokio::test]
    async fn hibernation_is_confirmed_by_one_more_log_line_or_is_inconclusive() {
        // Prosody's wording (the default) and ejabberd 23.01's (mod_stream_mgmt).
        let prosody = crate::target::PROSODY_HIBERNATION_LINE;
        let ejabberd = "seconds for stream resumption";
        for (line, old, new) in [
            (
                prosody,
                format!("c2s1 debug {prosody} (old)"),
                format!("c2s2 info {prosody} (new)"),
            ),
            (
                ejabberd,
                "[info] <0.61.0>@mod_stream_mgmt:transition_to_pending/2:459 (tls|<0.60.0>) \
                 Closing c2s connection for alice@localhost/a: Connection closed; \
                 waiting 60 seconds for stream resumption"
                    .to_owned(),
                "[info] <0.71.0>@mod_stream_mgmt:transition_to_pending/2:459 (tls|<0.70.0>) \
                 Closing c2s connection for alice@localhost/b: Connection reset by peer; \
                 waiting 60 seconds for stream resumption"
                    .to_owned(),
            ),
        ] {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            writeln!(f, "{old}").unwrap();
            // The other server's wording is not counted.
            writeln!(f, "{}", if line == prosody { ejabberd } else { prosody }).unwrap();
            let path = f.path().to_owned();
            let log = HibernationLog { path: &path, line };
            let before = log.mark();
            // The line logged before the mark is not counted.
            assert!(!log.logged_since(before), "{line}");
            assert!(log.logged_since(LogMark(0)), "{line}");
            let err = log
                .more_than(before, Duration::from_millis(120))
                .await
                .unwrap_err();
            assert_eq!(err.verdict(), Verdict::Inconclusive);
            assert!(err.to_string().contains(line), "{err}");
            let writer = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(60)).await;
                writeln!(f, "{new}").unwrap();
                f
            });
            confirm_hibernation(Some(log), before, Duration::from_secs(60))
                .await
                .unwrap();
            drop(writer.await.unwrap());
        }
        let missing = HibernationLog {
            path: Path::new("/nonexistent/prosody.log"),
            line: prosody,
        };
        assert_eq!(missing.mark(), LogMark(0));
        assert!(!missing.logged_since(LogMark(0)));
        // Without a log file the configured time is waited.
        let t0 = Instant::now();
        confirm_hibernation(None, LogMark(0), Duration::from_millis(30))
            .await
            .unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn carbons_are_unwrapped() {
        use ref_gateway::app_server::xmpp_peer::message::{Carbon, CarbonDirection};
        let inner = Message {
            body: Some("hi".into()),
            ..Message::default()
        };
        let carbon = Message {
            carbon: Some(Carbon {
                direction: CarbonDirection::Sent,
                message: Box::new(inner.clone()),
            }),
            ..Message::default()
        };
        assert_eq!(unwrap_carbon(carbon), inner);
        assert_eq!(unwrap_carbon(inner.clone()), inner);
    }

    #[test]
    fn the_app_server_setup_is_per_thread() {
        configure_app_server(Some(AppServerSetup {
            faults: AppFaults::only(AppFault::Ignore410),
        }));
        assert!(app_server_setup().unwrap().faults.has(AppFault::Ignore410));
        std::thread::spawn(|| {
            // Another thread (another run) is not affected.
            let s = APP_SERVER.with(|a| a.borrow().clone());
            assert!(s.is_none());
        })
        .join()
        .unwrap();
        configure_app_server(None);
    }
}
