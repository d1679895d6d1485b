//! The cast of one SIP scenario ([`SipCast`]) and how it is set up.
//!
//! Every scenario gets its own tokens (random 64 hex digits; a literal token in a feature is
//! mapped to a fresh one, so concurrent scenarios and repeated runs never share a token), its own
//! AORs (`alice-<n>@<domain>` against the embedded gateway) and its own ports (0). Against the
//! embedded target, each scenario starts its own `ref-gateway` ([`gateway`]: the target's cancel
//! policy, the run's faults, a 3 s Bucket Timer) and stops it in teardown.
//!
//! The cast keeps its state private and offers what the steps need as methods that keep its
//! invariants: Bob's latest move ([`SipCast::mark_bob_move`]) opens the window of the "no push"
//! and "exactly once" checks, a new call forgets "the push" of the previous one, a wake delay
//! reaches every device, and the waits with deadlines ([`SipCast::register_after`],
//! [`SipCast::invite_at`]) read each device's own log.

pub mod device;
pub mod gateway;
pub mod raw;

use self::device::{Device, DeviceSpec};
use self::gateway::{
    listener, loopback_for, start_embedded, Gateway, GatewayAddrs, EMBEDDED_BUCKET,
};
use self::raw::RegResult;
use super::apns::{pushes_after, shared_apns};
use super::device::{DeviceKind, Event};
use super::{instant_of_ms, is_token, next_scenario_number, random_token, Alice};
use crate::draws::WakeDelay;
use crate::scenario::{ScenarioContext, Teardowns};
use crate::target::{Environment, TargetKind};
use crate::verdict::StepError;
use futures::FutureExt as _;
use mock_apns::{DeviceSpec as ApnsDevice, DeviceState, MockApns, PushRecord};
use phone::PhoneHandle;
use sip_peer::{
    Call, Caller, CallerConfig, Credentials, EndpointConfig, PushParams, SipUri, Transport,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use timeline::{Protocol, Timeline};

/// How long a device may take to send its REGISTER after a push before "its REGISTER" is
/// considered missing (the wake delay plus slack).
const REGISTER_WAIT: Duration = Duration::from_secs(6);

/// One of Bob's calls.
pub struct BobCall {
    /// The call.
    pub call: Call,
    /// Its Call-ID.
    pub call_id: String,
    /// When the INVITE went out.
    pub started: Instant,
    /// When Bob hung up (CANCEL or BYE), if he did.
    pub hung_up: Option<Instant>,
    /// When a step saw Bob's final response, and its status.
    pub final_at: Option<Instant>,
    /// Its status.
    pub final_status: Option<u16>,
}

/// "The push": a request mock-apns received for one of Alice's tokens.
#[derive(Clone, Debug)]
pub struct PushMark {
    /// The record.
    pub record: PushRecord,
    /// Its time as an `Instant`.
    pub at: Instant,
}

/// The app at APNs: who the gateway pushes for.
#[derive(Clone, Debug)]
pub struct App {
    /// The app's bundle id.
    pub bundle: String,
    /// The APNs team id.
    pub team: String,
    /// The environment the target's APNs client uses.
    pub environment: Environment,
    /// Where the app finds the call's id and the rest in a push (`[apns.payload]`).
    pub payload: phone::PayloadContract,
    /// The app holds the unrestricted VoIP entitlement (`[apns] app_entitlements`).
    pub unrestricted_voip: bool,
}

impl App {
    /// The VoIP topic, `<bundle>.voip`.
    pub fn voip_topic(&self) -> String {
        format!("{}.voip", self.bundle)
    }
}

/// How a new device of Alice's registers.
#[derive(Clone, Debug)]
pub struct NewDevice {
    /// Which.
    pub kind: DeviceKind,
    /// The transport its account uses; `None`: TCP when the target has it, else UDP.
    pub transport: Option<Transport>,
    /// Its VoIP token (`None`: no push parameters at all, a desktop).
    pub voip_token: Option<String>,
    /// Also an alert token (Linphone dialect).
    pub alert: bool,
    /// Requested Expires.
    pub expires: u32,
}

/// Alice: her AOR, her devices and what her registrations got.
struct AliceSide {
    user: String,
    aor: String,
    /// Digest credentials (external targets that declare them, or the embedded gateway once a
    /// step requires authentication).
    credentials: Option<Credentials>,
    devices: BTreeMap<DeviceKind, Device>,
    /// The token named by "Alice's iPhone has a VoIP token …", not yet registered.
    pending_token: Option<String>,
    /// How long a device takes from push to REGISTER (drawn per wake unless a step fixed it).
    wake_delay: WakeDelay,
    /// The app ignores VoIP pushes it cannot match (NonCallVoipPolicy::Terminate).
    terminate_unmatched: bool,
    /// The lifetime the gateway granted the iPhone's latest registration, if known.
    granted_expires: Option<u32>,
    /// The latest registration a step drove, and its outcome.
    last_registration: Option<RegResult>,
    /// When the iPhone last left flight mode (what APNs stored arrives then).
    back_online: Option<Instant>,
}

/// Bob: his AOR, his SIP caller (created on first use), his calls in order.
struct BobSide {
    aor: String,
    caller: Option<Caller>,
    calls: Vec<BobCall>,
}

/// Everyone in one SIP scenario.
pub struct SipCast {
    number: u64,
    gateway: Gateway,
    app: App,
    apns: Arc<MockApns>,
    /// The mock APNs' push-log position when the cast was set up: pushes at or below it belong
    /// to other scenarios.
    start_seq: u64,
    /// The push-log position just before Bob's latest call or message left.
    mark_seq: u64,
    /// Literal tokens of the features, mapped to this scenario's own.
    tokens: HashMap<String, String>,
    alice: AliceSide,
    bob: BobSide,
    /// The latest "the gateway pushes to Alice" push.
    push: Option<PushMark>,
    timeline: Timeline,
}

impl SipCast {
    /// Sets up the scenario's cast: the mock APNs, the gateway (embedded or the target's) and
    /// the names. Cleanups go to `teardowns`.
    pub async fn set_up(
        context: &ScenarioContext,
        timeline: &Timeline,
        teardowns: &mut Teardowns,
    ) -> Result<SipCast, StepError> {
        let target = &context.target;
        let sip = target
            .sip
            .clone()
            .ok_or_else(|| StepError::inconclusive("the target has no [sip] section"))?;
        let apns = shared_apns(target).await?;
        let number = next_scenario_number();
        let (gateway, alice, bob) = if target.kind == TargetKind::EmbeddedReference {
            let (gw, addrs) = start_embedded(target, &context.faults, &apns, &sip.domain).await?;
            let gw = Arc::new(gw);
            let g = gw.clone();
            teardowns.add("stop the reference gateway", move || {
                async move {
                    if let Ok(gw) = Arc::try_unwrap(g) {
                        gw.shutdown().await;
                    }
                }
                .boxed()
            });
            let user = format!("alice-{number}");
            let aor = format!("sip:{user}@{}", sip.domain);
            let bob = format!("sip:bob-{number}@{}", sip.domain);
            (
                Gateway {
                    domain: sip.domain.clone(),
                    addrs,
                    embedded: Some(gw),
                    bucket: EMBEDDED_BUCKET,
                    declared_push_delay: target.timers.push_delay,
                    cancel: target.profile.cancel,
                },
                (user, aor, None),
                bob,
            )
        } else {
            let alice = target.sip_account("alice").ok_or_else(|| {
                StepError::inconclusive("the target declares no SIP account named \"alice\"")
            })?;
            let bob = target.sip_account("bob").ok_or_else(|| {
                StepError::inconclusive("the target declares no SIP account named \"bob\"")
            })?;
            let uri = SipUri::parse(&alice.aor)
                .map_err(|e| StepError::inconclusive(format!("alice's AOR: {e}")))?;
            let user = uri.user_name().unwrap_or("alice").to_owned();
            let creds = match (&alice.username, &alice.password) {
                (Some(u), Some(p)) => Some(Credentials {
                    username: u.clone(),
                    password: p.clone(),
                }),
                _ => None,
            };
            let ca = match &sip.tls_ca_file {
                Some(p) => Some((
                    std::fs::read(p)
                        .map_err(|e| StepError::inconclusive(format!("{}: {e}", p.display())))?,
                    target.sip_tls_name(),
                )),
                None => None,
            };
            let addrs = GatewayAddrs {
                udp: listener("sip.udp", &sip.udp)?,
                tcp: listener("sip.tcp", &sip.tcp)?,
                tls: listener("sip.tls", &sip.tls)?,
                tls_ca: ca,
            };
            (
                Gateway {
                    domain: sip.domain.clone(),
                    addrs,
                    embedded: None,
                    bucket: target.timers.bucket,
                    declared_push_delay: target.timers.push_delay,
                    cancel: target.profile.cancel,
                },
                (user, alice.aor.clone(), creds),
                bob.aor.clone(),
            )
        };
        let start_seq = apns.push_seq();
        let (alice_user, alice_aor, credentials) = alice;
        let c = SipCast {
            number,
            gateway,
            app: App {
                bundle: apns.credentials().bundle_id().to_owned(),
                team: apns.credentials().team_id().to_owned(),
                environment: target.apns.environment,
                payload: target.apns.payload_contract(),
                unrestricted_voip: target.apns.unrestricted_voip(),
            },
            apns,
            start_seq,
            mark_seq: start_seq,
            tokens: HashMap::new(),
            alice: AliceSide {
                user: alice_user,
                aor: alice_aor,
                credentials,
                devices: BTreeMap::new(),
                pending_token: None,
                wake_delay: WakeDelay::Drawn(context.draws.clone()),
                terminate_unmatched: false,
                granted_expires: None,
                last_registration: None,
                back_online: None,
            },
            bob: BobSide {
                aor: bob,
                caller: None,
                calls: Vec::new(),
            },
            push: None,
            timeline: timeline.clone(),
        };
        timeline.note(
            "bench",
            format!(
                "cast: Alice = {}, Bob = {}, gateway {}, bucket timer {} ms",
                c.alice.aor,
                c.bob.aor,
                [
                    ("udp", c.gateway.addrs.udp),
                    ("tcp", c.gateway.addrs.tcp),
                    ("tls", c.gateway.addrs.tls)
                ]
                .iter()
                .filter_map(|(t, a)| a.map(|a| format!("{t} {a}")))
                .collect::<Vec<_>>()
                .join(", "),
                c.gateway.bucket.as_millis()
            ),
        );
        Ok(c)
    }

    // ------------------------------------------------------------------ who is who

    /// The gateway under test.
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// The app the gateway pushes for.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The shared mock APNs.
    pub fn apns(&self) -> &MockApns {
        &self.apns
    }

    /// The scenario's timeline.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// Alice's AOR user part.
    pub fn alice_user(&self) -> &str {
        &self.alice.user
    }

    /// Alice's AOR.
    pub fn alice_aor(&self) -> &str {
        &self.alice.aor
    }

    /// Alice's digest credentials, if the gateway requires them.
    pub fn alice_credentials(&self) -> Option<&Credentials> {
        self.alice.credentials.as_ref()
    }

    /// Alice's devices authenticate with these from now on (set up after this call).
    pub fn set_alice_credentials(&mut self, credentials: Credentials) {
        self.alice.credentials = Some(credentials);
    }

    // ------------------------------------------------------------------ tokens and APNs

    /// The scenario's own token for a token a feature writes (a literal 64-hex token is replaced
    /// by a fresh one, consistently; anything else is kept as written, e.g. a malformed token).
    pub fn token_for(&mut self, literal: &str) -> String {
        if !is_token(literal) {
            return literal.to_owned();
        }
        self.tokens
            .entry(literal.to_ascii_lowercase())
            .or_insert_with(random_token)
            .clone()
    }

    /// The literal tokens of the features and this scenario's own, in no particular order.
    pub fn own_tokens(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tokens.iter().map(|(l, o)| (l.as_str(), o.as_str()))
    }

    /// The environment a token a step names for Alice's iPhone is registered in at mock-apns:
    /// production for the embedded gateway (it picks the environment from `pn-provider`), the
    /// target's otherwise.
    pub fn step_token_environment(&self) -> Environment {
        if self.gateway.embedded.is_some() {
            Environment::Production
        } else {
            self.app.environment
        }
    }

    /// Registers a VoIP token at mock-apns (for `<bundle>.voip` only), recording on the scenario's
    /// timeline.
    pub fn register_voip_token(&self, token: &str, name: &str, environment: Environment) {
        if !is_token(token) && !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return; // a malformed token: APNs would never have issued it
        }
        self.apns.register_device(
            ApnsDevice::new(token, vec![self.app.voip_topic()], environment)
                .name(name)
                .recorder(self.timeline.recorder("mock-apns", Protocol::Apns)),
        );
    }

    /// Registers an alert token at mock-apns (for `<bundle>` only).
    pub fn register_alert_token(&self, token: &str, name: &str, environment: Environment) {
        self.apns.register_device(
            ApnsDevice::new(token, vec![self.app.bundle.clone()], environment)
                .name(name)
                .recorder(self.timeline.recorder("mock-apns", Protocol::Apns)),
        );
    }

    /// Sets a token's state at mock-apns.
    pub fn set_token_state(&self, token: &str, state: DeviceState) -> Result<(), StepError> {
        self.apns
            .set_state(token, state)
            .map_err(|e| StepError::inconclusive(format!("mock APNs: {e}")))
    }

    /// Marks Bob's next move: pushes from here on are the ones it may cause.
    pub fn mark_bob_move(&mut self) {
        self.mark_seq = self.apns.push_seq();
    }

    /// Every request mock-apns received for these tokens since Bob's latest move.
    pub fn pushes_since_mark(&self, tokens: &[String]) -> Vec<PushRecord> {
        pushes_after(&self.apns, tokens, self.mark_seq.max(self.start_seq))
    }

    /// Every token (VoIP and alert) of Alice's devices, and the pending one.
    pub fn alice_tokens(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .alice
            .devices
            .values()
            .flat_map(Device::tokens)
            .collect();
        v.extend(self.alice.pending_token.clone());
        v.sort();
        v.dedup();
        v
    }

    /// Waits for the next request for any of `tokens` (after the ones already seen by
    /// [`MockApns::next_push_for`]), at most `within`.
    pub async fn next_push(&self, tokens: &[String], within: Duration) -> Option<PushMark> {
        if tokens.is_empty() {
            tokio::time::sleep(within).await;
            return None;
        }
        let waits = tokens
            .iter()
            .map(|t| self.apns.next_push_for(t, within).boxed());
        let (first, _, rest) = futures::future::select_all(waits).await;
        let record = match first {
            Ok(r) => r,
            Err(_) => {
                // The first to finish timed out; the others have the same deadline.
                futures::future::join_all(rest)
                    .await
                    .into_iter()
                    .flatten()
                    .next()?
            }
        };
        Some(PushMark {
            at: instant_of_ms(record.time_ms),
            record,
        })
    }

    /// "The push" a step saw last for Bob's latest call, if one did.
    pub fn push(&self) -> Option<&PushMark> {
        self.push.as_ref()
    }

    /// Keeps the push a step saw as "the push".
    pub fn set_push(&mut self, push: PushMark) {
        self.push = Some(push);
    }

    /// The token "Alice's iPhone has a VoIP token …" named, not yet registered.
    pub fn pending_token(&self) -> Option<&str> {
        self.alice.pending_token.as_deref()
    }

    /// Names the iPhone's token before it registers.
    pub fn set_pending_token(&mut self, token: String) {
        self.alice.pending_token = Some(token);
    }

    // ------------------------------------------------------------------ Alice's devices

    /// The device, or inconclusive when no step set it up.
    pub fn device(&self, kind: DeviceKind) -> Result<&Device, StepError> {
        self.alice.devices.get(&kind).ok_or_else(|| {
            StepError::inconclusive(format!("no step set up Alice's {kind} in this scenario"))
        })
    }

    /// The device, mutably.
    pub fn device_mut(&mut self, kind: DeviceKind) -> Result<&mut Device, StepError> {
        self.alice.devices.get_mut(&kind).ok_or_else(|| {
            StepError::inconclusive(format!("no step set up Alice's {kind} in this scenario"))
        })
    }

    /// The device, if a step set it up.
    pub fn find_device(&self, kind: DeviceKind) -> Option<&Device> {
        self.alice.devices.get(&kind)
    }

    /// Every device of Alice's.
    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.alice.devices.values()
    }

    /// Takes a device out of the cast (a step replaces it).
    pub fn take_device(&mut self, kind: DeviceKind) -> Option<Device> {
        self.alice.devices.remove(&kind)
    }

    /// Starts one of Alice's devices (not registered) and keeps it in the cast.
    pub async fn add_device(&mut self, spec: NewDevice) -> Result<(), StepError> {
        let addrs = &self.gateway.addrs;
        let missing = |t: &str| StepError::inconclusive(format!("the target has no {t} listener"));
        let transport = spec.transport.unwrap_or(if addrs.tcp.is_some() {
            Transport::Tcp
        } else {
            Transport::Udp
        });
        let (registrar, endpoint) = match transport {
            Transport::Tls => {
                let tls = addrs.tls.ok_or_else(|| missing("TLS"))?;
                (
                    tls,
                    EndpointConfig::tls(loopback_for(tls), self.gateway.tls_client()?),
                )
            }
            Transport::Tcp => {
                let tcp = addrs.tcp.ok_or_else(|| missing("TCP"))?;
                (tcp, EndpointConfig::tcp(loopback_for(tcp)))
            }
            Transport::Udp => {
                let udp = addrs.udp.ok_or_else(|| missing("UDP"))?;
                (udp, EndpointConfig::udp(loopback_for(udp)))
            }
        };
        let alert_token = spec.alert.then(random_token);
        let (team, bundle) = (&self.app.team, &self.app.bundle);
        let push = match (&spec.voip_token, &alert_token) {
            (None, _) => None,
            (Some(v), None) => Some(PushParams::apns(v, team, bundle)),
            (Some(v), Some(a)) => Some(PushParams {
                provider: "apns.dev".into(),
                prid: format!("{a}:remote&{v}:voip"),
                param: Some(format!("{team}.{bundle}.remote&voip")),
            }),
        };
        let env = match (&self.gateway.embedded, spec.alert) {
            // The embedded gateway picks the environment from pn-provider.
            (Some(_), true) => Environment::Sandbox,
            (Some(_), false) => Environment::Production,
            (None, _) => self.app.environment,
        };
        if let Some(v) = &spec.voip_token {
            self.register_voip_token(v, spec.kind.party(), env);
        }
        if let Some(a) = &alert_token {
            self.register_alert_token(a, spec.kind.party(), env);
        }
        let device = Device::start(
            DeviceSpec {
                kind: spec.kind,
                aor: self.alice.aor.clone(),
                registrar,
                endpoint,
                push,
                voip_token: spec.voip_token.clone(),
                alert_token,
                credentials: self.alice.credentials.clone(),
                expires: spec.expires,
                wake_delay: self.alice.wake_delay.clone(),
                terminate_unmatched: self.alice.terminate_unmatched,
                seed: self.number << 8 | spec.kind as u64,
                instance: None,
                payload: self.app.payload.clone(),
                unrestricted_voip: self.app.unrestricted_voip,
            },
            &self.apns,
            &self.timeline,
        )
        .await?;
        self.alice.devices.insert(spec.kind, device);
        Ok(())
    }

    /// Registers a device; a refusal means the scenario cannot be set up.
    pub async fn register_or_inconclusive(&self, kind: DeviceKind) -> Result<(), StepError> {
        let d = self.device(kind)?;
        d.register(Duration::from_secs(2)).await.map_err(|e| {
            StepError::inconclusive(format!(
                "the gateway did not accept the REGISTER of Alice's {kind}: {e}"
            ))
        })?;
        Ok(())
    }

    /// Every device (and every device set up later) takes `d` from a push to its REGISTER,
    /// instead of a delay drawn per wake.
    pub fn set_wake_delay(&mut self, d: Duration) {
        self.alice.wake_delay = WakeDelay::Fixed(d);
        for dev in self.alice.devices.values() {
            dev.set_wake_delay(WakeDelay::Fixed(d));
        }
    }

    /// The app ignores VoIP pushes it cannot match to a call (the iPhone's model restarts with
    /// the new rule, as do devices set up later).
    pub fn ignore_unmatched_pushes(&mut self) -> Result<(), StepError> {
        self.alice.terminate_unmatched = true;
        self.device_mut(DeviceKind::Iphone)?.restart_model(true);
        Ok(())
    }

    /// The lifetime the gateway granted the iPhone's latest registration, if known.
    pub fn granted_expires(&self) -> Option<u32> {
        self.alice.granted_expires
    }

    /// The latest registration a step drove.
    pub fn last_registration(&self) -> Option<&RegResult> {
        self.alice.last_registration.as_ref()
    }

    /// Keeps the lifetime the gateway granted the iPhone's latest registration.
    pub fn set_granted_expires(&mut self, expires: Option<u32>) {
        self.alice.granted_expires = expires;
    }

    /// Keeps the outcome of a REGISTER a step drove.
    pub fn set_last_registration(&mut self, r: RegResult) {
        self.alice.last_registration = Some(r);
    }

    /// When the iPhone last left flight mode.
    pub fn back_online(&self) -> Option<Instant> {
        self.alice.back_online
    }

    /// The iPhone leaves flight mode now.
    pub fn set_back_online(&mut self) {
        self.alice.back_online = Some(Instant::now());
    }

    /// "Its REGISTER": the first REGISTER the device sent after `after`, waited for.
    pub async fn register_after(
        &self,
        kind: DeviceKind,
        after: Instant,
    ) -> Result<Instant, StepError> {
        let d = self.device(kind)?;
        d.log
            .wait_until(after + REGISTER_WAIT, |es| {
                es.iter()
                    .find(|e| e.at >= after && e.event == Event::RegisterSent)
                    .map(|e| e.at)
            })
            .await
            .ok_or_else(|| {
                StepError::fail(format!(
                    "Alice's {kind} never sent its REGISTER (none within {REGISTER_WAIT:?}); it saw:\n{}",
                    d.log.describe(after)
                ))
            })
    }

    /// The moment the REGISTER that counts is looked for after: the push, else the call.
    pub fn wake_origin(&self) -> Result<Instant, StepError> {
        if let Some(p) = &self.push {
            return Ok(p.at);
        }
        Ok(self.call()?.started)
    }

    /// Waits for the INVITE of `call_id` on a device, until `deadline`.
    pub async fn invite_at(
        &self,
        kind: DeviceKind,
        call_id: &str,
        deadline: Instant,
    ) -> Result<Instant, StepError> {
        let d = self.device(kind)?;
        let id = call_id.to_owned();
        d.log
            .wait_until(deadline, |es| {
                es.iter()
                    .find(|e| matches!(&e.event, Event::Invite { call_id: x, .. } if *x == id))
                    .map(|e| e.at)
            })
            .await
            .ok_or_else(|| {
                StepError::fail(format!(
                    "Alice's {kind} did not receive Bob's INVITE ({call_id}) in time; it saw:\n{}",
                    d.log.describe(
                        self.bob
                            .calls
                            .first()
                            .map(|b| b.started)
                            .unwrap_or_else(Instant::now)
                    )
                ))
            })
    }

    // ------------------------------------------------------------------ Bob

    /// Bob (created on first use: a UDP caller sending to the gateway, else TCP).
    pub async fn bob(&mut self) -> Result<Caller, StepError> {
        if let Some(b) = &self.bob.caller {
            return Ok(b.clone());
        }
        let addrs = &self.gateway.addrs;
        let proxy = addrs
            .udp
            .or(addrs.tcp)
            .ok_or_else(|| StepError::inconclusive("the target has no UDP or TCP listener"))?;
        let ep = if addrs.udp.is_some() {
            EndpointConfig::udp(loopback_for(proxy))
        } else {
            EndpointConfig::tcp(loopback_for(proxy))
        };
        let uri = SipUri::parse(&self.bob.aor)
            .map_err(|e| StepError::inconclusive(format!("Bob's AOR: {e}")))?;
        let caller = Caller::new(
            ep,
            CallerConfig::new(uri, proxy),
            self.timeline.recorder("bob", Protocol::Sip),
            "gateway",
        )
        .await
        .map_err(|e| StepError::inconclusive(format!("Bob's SIP endpoint: {e}")))?;
        self.bob.caller = Some(caller.clone());
        Ok(caller)
    }

    /// Bob sends a message or calls: pushes from here on are the ones it may cause, and "the
    /// push" of an earlier call is forgotten.
    pub fn bob_moves(&mut self) {
        self.mark_bob_move();
        self.push = None;
    }

    /// Keeps Bob's new call.
    pub fn add_call(&mut self, call: BobCall) {
        self.bob.calls.push(call);
        self.push = None;
    }

    /// Bob's calls, in order.
    pub fn calls(&self) -> &[BobCall] {
        &self.bob.calls
    }

    /// Bob's latest call.
    pub fn call(&self) -> Result<&BobCall, StepError> {
        self.bob
            .calls
            .last()
            .ok_or_else(|| StepError::inconclusive("Bob has not called yet"))
    }

    /// The Call-ID of Bob's latest call.
    pub fn call_id(&self) -> Result<String, StepError> {
        Ok(self.call()?.call_id.clone())
    }

    /// Bob's latest call, mutably.
    pub fn call_mut(&mut self) -> Result<&mut BobCall, StepError> {
        self.bob
            .calls
            .last_mut()
            .ok_or_else(|| StepError::inconclusive("Bob has not called yet"))
    }

    /// Bob's call number `n` (1-based).
    pub fn call_n(&self, n: usize) -> Result<&BobCall, StepError> {
        self.bob
            .calls
            .get(n.wrapping_sub(1))
            .ok_or_else(|| StepError::inconclusive(format!("Bob has no call {n}")))
    }
}

impl Alice for SipCast {
    fn phone(&self, kind: DeviceKind) -> Result<PhoneHandle, StepError> {
        self.device(kind)?.phone()
    }

    fn latest_call_id(&self) -> Option<String> {
        self.bob.calls.last().map(|b| b.call_id.clone())
    }

    fn back_online(&self, _kind: DeviceKind) -> Option<Instant> {
        self.alice.back_online
    }

    fn voip_pushes_to_alice(&self) -> Vec<PushRecord> {
        self.pushes_since_mark(&self.alice_tokens())
            .into_iter()
            .filter(PushRecord::is_voip)
            .collect()
    }
}
