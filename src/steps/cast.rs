//! The cast of one scenario and how its world is set up.
//!
//! Every scenario gets its own tokens (random 64 hex digits; a literal token in a feature is
//! mapped to a fresh one, so concurrent scenarios and repeated runs never share a token), its own
//! AORs (`alice-<n>@<domain>` against the embedded gateway) and its own ports (0). One mock APNs
//! serves the whole process (an external gateway's APNs client is configured with one address);
//! it runs on its own small runtime so it outlives any one run, and records each token's traffic
//! on the timeline of the scenario that owns the token. Against the embedded target, each scenario
//! starts its own `ref-gateway` (profile from the target, faults from [`configure_embedded`] or
//! `PUSHBENCH_REF_FAULTS`, a 3 s bucket timer) and stops it in teardown.

use super::device::{Device, DeviceKind, DeviceSpec};
use crate::target::{ApnsAuth as TargetAuth, ApnsEnvironment, CancelPolicy, Target, TargetKind};
use crate::verdict::StepError;
use crate::world::BenchWorld;
use futures::FutureExt as _;
use mock_apns::{DeviceSpec as ApnsDevice, DeviceState, Environment, MockApns, PushRecord};
use ref_gateway::apns::ApnsAuth;
use ref_gateway::config::{ApnsSettings, TlsIdentity};
use ref_gateway::{Fault, Faults, GatewayConfig, Profile, RefGateway};
use sip_peer::{Call, Caller, CallerConfig, EndpointConfig, SipUri, TlsConfig};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use timeline::Protocol;

/// The party name the cast is kept under in [`crate::world::Parties`].
pub const CAST: &str = "cast";

/// The embedded gateway's Bucket Timer: short, so the suite stays fast.
pub const EMBEDDED_BUCKET: Duration = Duration::from_secs(3);

/// How the embedded reference gateway is configured for the scenarios run on this thread.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmbeddedConfig {
    /// Fault switches (the fault matrix).
    pub faults: Faults,
}

thread_local! {
    static EMBEDDED: RefCell<Option<EmbeddedConfig>> = const { RefCell::new(None) };
}

/// Sets (or clears) the embedded gateway's configuration for runs started on this thread
/// (cucumber drives the steps on the thread that called [`crate::runner::run_blocking`]).
/// Without it, `PUSHBENCH_REF_FAULTS` (comma-separated fault names) is read.
pub fn configure_embedded(config: Option<EmbeddedConfig>) {
    EMBEDDED.with(|e| *e.borrow_mut() = config);
}

fn embedded_config() -> Result<EmbeddedConfig, StepError> {
    if let Some(c) = EMBEDDED.with(|e| e.borrow().clone()) {
        return Ok(c);
    }
    let mut faults = Faults::none();
    for f in super::faults_from_env("PUSHBENCH_REF_FAULTS", Fault::from_name)? {
        faults.insert(f);
    }
    Ok(EmbeddedConfig { faults })
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The `Instant` of a Unix-milliseconds time in the past (or now).
pub fn instant_of_ms(ms: u64) -> Instant {
    let (now, now_wall) = (Instant::now(), now_ms());
    now.checked_sub(Duration::from_millis(now_wall.saturating_sub(ms)))
        .unwrap_or(now)
}

/// A fresh random device token: 64 lowercase hex digits.
pub fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn is_token(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The background runtime the shared mock APNs lives on.
static APNS_RUNTIME: LazyLock<Option<tokio::runtime::Runtime>> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mock-apns")
        .enable_all()
        .build()
        .ok()
});

/// The mock APNs instances of this process, by (listen address, environment, credentials).
static APNS: LazyLock<tokio::sync::Mutex<HashMap<String, Arc<MockApns>>>> =
    LazyLock::new(Default::default);

/// The mock APNs for `target` (started on first use).
pub async fn shared_apns(target: &Target) -> Result<Arc<MockApns>, StepError> {
    let a = &target.apns;
    let embedded = target.kind == TargetKind::EmbeddedReference;
    let key = format!(
        "{}|{:?}|{}|{}",
        a.listen,
        a.environment,
        a.credentials_dir.display(),
        a.bundle_id
    );
    let mut map = APNS.lock().await;
    if let Some(m) = map.get(&key) {
        return Ok(m.clone());
    }
    let listen: SocketAddr = a
        .listen
        .parse()
        .map_err(|e| StepError::inconclusive(format!("target apns.listen {:?}: {e}", a.listen)))?;
    let mut cfg = mock_apns::Config {
        bundle_id: a.bundle_id.clone(),
        credentials_dir: (!embedded && !a.credentials_dir.as_os_str().is_empty())
            .then(|| a.credentials_dir.clone()),
        unknown_tokens: match a.unknown_token {
            crate::target::UnknownTokenPolicy::Register => mock_apns::UnknownTokens::Register,
            crate::target::UnknownTokenPolicy::Reject => mock_apns::UnknownTokens::Reject,
        },
        // Every scenario's gateway opens its own connections with its own tokens.
        token_updates_per_window: 1_000_000,
        push_log_capacity: 100_000,
        ..mock_apns::Config::default()
    };
    match a.environment {
        ApnsEnvironment::Sandbox => cfg.sandbox_listen = listen,
        ApnsEnvironment::Production => cfg.production_listen = listen,
    }
    let rt = APNS_RUNTIME
        .as_ref()
        .ok_or_else(|| StepError::inconclusive("cannot build the mock APNs runtime"))?;
    let started = rt
        .spawn(async move { MockApns::start(cfg).await })
        .await
        .map_err(|e| StepError::inconclusive(format!("mock APNs start task: {e}")))?
        .map_err(|e| StepError::inconclusive(format!("mock APNs did not start: {e}")))?;
    let m = Arc::new(started);
    map.insert(key, m.clone());
    Ok(m)
}

/// The TLS identity of embedded gateways (one per process): a CA and a `localhost` certificate.
struct TlsMaterial {
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

static TLS: LazyLock<Result<TlsMaterial, String>> = LazyLock::new(|| {
    let e = |e: rcgen::Error| e.to_string();
    let ca_key = rcgen::KeyPair::generate().map_err(e)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).map_err(e)?;
    let key = rcgen::KeyPair::generate().map_err(e)?;
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).map_err(e)?;
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(e)?;
    Ok(TlsMaterial {
        ca_pem: ca.pem().into_bytes(),
        cert_pem: cert.pem().into_bytes(),
        key_pem: key.serialize_pem().into_bytes(),
    })
});

/// Where the gateway under test listens.
#[derive(Clone, Debug, Default)]
pub struct GatewayAddrs {
    /// UDP.
    pub udp: Option<SocketAddr>,
    /// TCP.
    pub tcp: Option<SocketAddr>,
    /// TLS.
    pub tls: Option<SocketAddr>,
    /// The CA the bench trusts for TLS, and the name to check.
    pub tls_ca: Option<(Vec<u8>, String)>,
}

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

/// Everyone in one scenario.
pub struct Cast {
    /// The scenario's number in this process (part of its AORs).
    pub number: u64,
    /// The mock APNs' push-log position when the cast was set up: pushes at or below it belong
    /// to other scenarios.
    pub start_seq: u64,
    /// The push-log position just before Bob's latest call or message left: the window of the
    /// "no push" and "exactly once" steps starts after it.
    pub mark_seq: u64,
    /// The SIP domain.
    pub domain: String,
    /// The app's bundle id.
    pub bundle: String,
    /// The APNs team id.
    pub team: String,
    /// The environment the target's APNs client uses.
    pub environment: Environment,
    /// The shared mock APNs.
    pub apns: Arc<MockApns>,
    /// The gateway's listeners.
    pub gateway: GatewayAddrs,
    /// The embedded gateway, if this scenario runs against it.
    pub embedded: Option<Arc<RefGateway>>,
    /// The gateway's Bucket Timer.
    pub bucket: Duration,
    /// The push delay an external target declares (`[timers] push_delay_ms`); the embedded
    /// gateway's is set by a step.
    pub declared_push_delay: Duration,
    /// The gateway's profile.
    pub profile: CancelPolicy,
    /// Alice's AOR user part and URI.
    pub alice_user: String,
    /// `sip:alice…@domain`.
    pub alice_aor: String,
    /// Alice's digest credentials (external targets that declare them).
    pub alice_credentials: Option<sip_peer::Credentials>,
    /// `sip:bob…@domain`.
    pub bob_aor: String,
    /// Bob, once he called.
    pub bob: Option<Caller>,
    /// Bob's calls, in order.
    pub calls: Vec<BobCall>,
    /// Alice's devices.
    pub devices: BTreeMap<DeviceKind, Device>,
    /// The latest "the gateway pushes to Alice" push.
    pub push: Option<PushMark>,
    /// Literal tokens of the features, mapped to this scenario's own.
    pub tokens: HashMap<String, String>,
    /// The token named by "Alice's iPhone has a VoIP token …", not yet registered.
    pub pending_token: Option<String>,
    /// How long the iPhone takes from push to REGISTER.
    pub wake_delay: Duration,
    /// The app ignores VoIP pushes it cannot match (NonCallVoipPolicy::Terminate).
    pub terminate_unmatched: bool,
    /// The lifetime the gateway granted Alice's iPhone's latest registration, if known.
    pub granted_expires: Option<u32>,
    /// The latest registration a step drove, and its outcome.
    pub last_registration: Option<super::registration::RegResult>,
    /// When Alice's iPhone last left flight mode (what APNs stored arrives then).
    pub back_online: Option<Instant>,
    /// The timeline recorder factory.
    pub timeline: timeline::Timeline,
}

impl Cast {
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

    /// The VoIP topic.
    pub fn voip_topic(&self) -> String {
        format!("{}.voip", self.bundle)
    }

    /// Registers a VoIP token at mock-apns (for `<bundle>.voip` only), recording on the scenario's
    /// timeline.
    pub fn register_voip_token(&self, token: &str, name: &str, environment: Environment) {
        if !is_token(token) && !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return; // a malformed token: APNs would never have issued it
        }
        self.apns.register_device(
            ApnsDevice::new(token, vec![self.voip_topic()], environment)
                .name(name)
                .recorder(self.timeline.recorder("mock-apns", Protocol::Apns)),
        );
    }

    /// Registers an alert token at mock-apns (for `<bundle>` only).
    pub fn register_alert_token(&self, token: &str, name: &str, environment: Environment) {
        self.apns.register_device(
            ApnsDevice::new(token, vec![self.bundle.clone()], environment)
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
        let mark = self.mark_seq;
        self.pushes_to(tokens)
            .into_iter()
            .filter(|r| r.seq > mark)
            .collect()
    }

    /// Every request mock-apns received for these tokens since this scenario started.
    pub fn pushes_to(&self, tokens: &[String]) -> Vec<PushRecord> {
        self.apns
            .push_log()
            .into_iter()
            .filter(|r| r.seq > self.start_seq)
            .filter(|r| {
                r.token
                    .as_deref()
                    .is_some_and(|t| tokens.iter().any(|x| x.eq_ignore_ascii_case(t)))
            })
            .collect()
    }

    /// Every token (VoIP and alert) of Alice's devices.
    pub fn alice_tokens(&self) -> Vec<String> {
        let mut v: Vec<String> = self.devices.values().flat_map(Device::tokens).collect();
        v.extend(self.pending_token.clone());
        v.sort();
        v.dedup();
        v
    }

    /// The device, or inconclusive when no step set it up.
    pub fn device(&self, kind: DeviceKind) -> Result<&Device, StepError> {
        self.devices.get(&kind).ok_or_else(|| {
            StepError::inconclusive(format!("no step set up Alice's {kind} in this scenario"))
        })
    }

    /// The device, mutably.
    pub fn device_mut(&mut self, kind: DeviceKind) -> Result<&mut Device, StepError> {
        self.devices.get_mut(&kind).ok_or_else(|| {
            StepError::inconclusive(format!("no step set up Alice's {kind} in this scenario"))
        })
    }

    /// Bob's latest call.
    pub fn call(&mut self) -> Result<&mut BobCall, StepError> {
        self.calls
            .last_mut()
            .ok_or_else(|| StepError::inconclusive("Bob has not called yet"))
    }

    /// Bob's call number `n` (1-based).
    pub fn call_n(&mut self, n: usize) -> Result<&mut BobCall, StepError> {
        self.calls
            .get_mut(n.wrapping_sub(1))
            .ok_or_else(|| StepError::inconclusive(format!("Bob has no call {n}")))
    }

    /// Bob (created on first use: a UDP caller sending to the gateway).
    pub async fn bob(&mut self) -> Result<Caller, StepError> {
        if let Some(b) = &self.bob {
            return Ok(b.clone());
        }
        let proxy = self
            .gateway
            .udp
            .or(self.gateway.tcp)
            .ok_or_else(|| StepError::inconclusive("the target has no UDP or TCP listener"))?;
        let ep = if self.gateway.udp.is_some() {
            EndpointConfig::udp(loopback_for(proxy))
        } else {
            EndpointConfig::tcp(loopback_for(proxy))
        };
        let uri = SipUri::parse(&self.bob_aor)
            .map_err(|e| StepError::inconclusive(format!("Bob's AOR: {e}")))?;
        let caller = Caller::new(
            ep,
            CallerConfig::new(uri, proxy),
            self.timeline.recorder("bob", Protocol::Sip),
            "gateway",
        )
        .await
        .map_err(|e| StepError::inconclusive(format!("Bob's SIP endpoint: {e}")))?;
        self.bob = Some(caller.clone());
        Ok(caller)
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
}

/// The loopback address of the family of `addr`, port 0.
pub fn loopback_for(addr: SocketAddr) -> SocketAddr {
    if addr.is_ipv6() {
        SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0))
    } else {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }
}

fn profile_of(c: CancelPolicy) -> Profile {
    match c {
        CancelPolicy::Rfc8599Drop => Profile::Rfc8599Drop,
        CancelPolicy::FlexisipReplay => Profile::FlexisipReplay,
        CancelPolicy::CancelPush => Profile::CancelPush,
    }
}

fn addr(key: &str, s: &Option<String>) -> Result<Option<SocketAddr>, StepError> {
    s.as_deref()
        .map(|a| {
            a.parse()
                .map_err(|e| StepError::inconclusive(format!("target {key} {a:?}: {e}")))
        })
        .transpose()
}

async fn start_embedded(
    w: &BenchWorld,
    target: &Target,
    apns: &MockApns,
    domain: &str,
) -> Result<(RefGateway, GatewayAddrs), StepError> {
    let creds = apns.credentials();
    let ca_pem = std::fs::read(creds.ca_path())
        .map_err(|e| StepError::inconclusive(format!("mock APNs CA: {e}")))?;
    let auth = match target.apns.auth {
        TargetAuth::Token => {
            ApnsAuth::token_from_p8_file(&creds.key_path(), creds.key_id(), creds.team_id())
        }
        TargetAuth::Certificate => {
            let (cert, key) = creds
                .client_cert(Environment::Sandbox)
                .ok_or_else(|| StepError::inconclusive("mock APNs has no client certificate"))?;
            ApnsAuth::certificate_from_pem_files(&cert, &key)
        }
    }
    .map_err(|e| StepError::inconclusive(format!("the gateway's APNs credentials: {e}")))?;
    let settings = ApnsSettings {
        production: apns.production_addr(),
        sandbox: apns.sandbox_addr(),
        ca_pem,
        auth,
    };
    let tls = TLS
        .as_ref()
        .map_err(|e| StepError::inconclusive(format!("TLS identity: {e}")))?;
    let mut cfg = GatewayConfig::new(domain, settings);
    cfg.tls = Some((
        SocketAddr::from(([127, 0, 0, 1], 0)),
        TlsIdentity {
            cert_pem: tls.cert_pem.clone(),
            key_pem: tls.key_pem.clone(),
        },
    ));
    cfg.profile = profile_of(target.profile.cancel);
    cfg.timers.bucket_timer = EMBEDDED_BUCKET;
    cfg.faults = embedded_config()?.faults;
    let _ = w; // the gateway's own traffic is recorded by the parties on the other end
    let gw = RefGateway::start(cfg).await.map_err(|e| {
        StepError::inconclusive(format!("the reference gateway did not start: {e}"))
    })?;
    let a = gw.addresses();
    Ok((
        gw,
        GatewayAddrs {
            udp: a.udp,
            tcp: a.tcp,
            tls: a.tls,
            tls_ca: Some((tls.ca_pem.clone(), "localhost".into())),
        },
    ))
}

/// Sets up the scenario's cast (once): the mock APNs, the gateway (embedded or the target's) and
/// the names. Every step starts with this.
pub async fn cast(w: &mut BenchWorld) -> Result<&mut Cast, StepError> {
    if !w.parties.contains(CAST) {
        let c = set_up(w).await?;
        w.parties.insert(CAST, c);
    }
    w.parties.get_mut::<Cast>(CAST)
}

async fn set_up(w: &mut BenchWorld) -> Result<Cast, StepError> {
    let target = w.target()?.clone();
    let sip = target
        .sip
        .clone()
        .ok_or_else(|| StepError::inconclusive("the target has no [sip] section"))?;
    let apns = shared_apns(&target).await?;
    let number = super::next_scenario_number();
    let environment = match target.apns.environment {
        ApnsEnvironment::Sandbox => Environment::Sandbox,
        ApnsEnvironment::Production => Environment::Production,
    };
    let (embedded, gateway, bucket, alice_user, alice_aor, bob_aor, creds) =
        if target.kind == TargetKind::EmbeddedReference {
            let (gw, addrs) = start_embedded(w, &target, &apns, &sip.domain).await?;
            let gw = Arc::new(gw);
            let g = gw.clone();
            w.on_teardown("stop the reference gateway", move || {
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
            (Some(gw), addrs, EMBEDDED_BUCKET, user, aor, bob, None)
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
                (Some(u), Some(p)) => Some(sip_peer::Credentials {
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
                udp: addr("sip.udp", &sip.udp)?,
                tcp: addr("sip.tcp", &sip.tcp)?,
                tls: addr("sip.tls", &sip.tls)?,
                tls_ca: ca,
            };
            (
                None,
                addrs,
                target.timers.bucket,
                user,
                alice.aor.clone(),
                bob.aor.clone(),
                creds,
            )
        };
    let start_seq = apns.push_seq();
    let c = Cast {
        number,
        start_seq,
        mark_seq: start_seq,
        domain: sip.domain.clone(),
        bundle: apns.credentials().bundle_id().to_owned(),
        team: apns.credentials().team_id().to_owned(),
        environment,
        apns,
        gateway,
        embedded,
        bucket,
        declared_push_delay: target.timers.push_delay,
        profile: target.profile.cancel,
        alice_user,
        alice_aor,
        alice_credentials: creds,
        bob_aor,
        bob: None,
        calls: Vec::new(),
        devices: BTreeMap::new(),
        push: None,
        tokens: HashMap::new(),
        pending_token: None,
        wake_delay: Duration::ZERO,
        terminate_unmatched: false,
        granted_expires: None,
        last_registration: None,
        back_online: None,
        timeline: w.timeline.clone(),
    };
    w.timeline.note(
        "bench",
        format!(
            "cast: Alice = {}, Bob = {}, gateway {}, bucket timer {} ms",
            c.alice_aor,
            c.bob_aor,
            [
                ("udp", c.gateway.udp),
                ("tcp", c.gateway.tcp),
                ("tls", c.gateway.tls)
            ]
            .iter()
            .filter_map(|(t, a)| a.map(|a| format!("{t} {a}")))
            .collect::<Vec<_>>()
            .join(", "),
            c.bucket.as_millis()
        ),
    );
    Ok(c)
}

/// The TLS client configuration for the gateway's TLS listener.
pub fn tls_client(c: &Cast) -> Result<TlsConfig, StepError> {
    let (ca, name) =
        c.gateway.tls_ca.as_ref().ok_or_else(|| {
            StepError::inconclusive("the target gives no CA for its TLS listener")
        })?;
    TlsConfig::client_trusting(ca, name)
        .map_err(|e| StepError::inconclusive(format!("TLS client configuration: {e}")))
}

/// How a new device of Alice's registers.
#[derive(Clone, Debug)]
pub struct NewDevice {
    /// Which.
    pub kind: DeviceKind,
    /// Over TLS rather than TCP.
    pub tls: bool,
    /// Its VoIP token (`None`: no push parameters at all, a desktop).
    pub voip_token: Option<String>,
    /// Also an alert token (Linphone dialect).
    pub alert: bool,
    /// Requested Expires.
    pub expires: u32,
}

/// Starts one of Alice's devices (not registered) and keeps it in the cast.
pub async fn add_device(w: &mut BenchWorld, spec: NewDevice) -> Result<(), StepError> {
    let c = cast(w).await?;
    let (registrar, endpoint) = if spec.tls {
        let tls = c
            .gateway
            .tls
            .ok_or_else(|| StepError::inconclusive("the target has no TLS listener"))?;
        (tls, EndpointConfig::tls(loopback_for(tls), tls_client(c)?))
    } else if let Some(tcp) = c.gateway.tcp {
        (tcp, EndpointConfig::tcp(loopback_for(tcp)))
    } else {
        let udp = c
            .gateway
            .udp
            .ok_or_else(|| StepError::inconclusive("the target has no SIP listener"))?;
        (udp, EndpointConfig::udp(loopback_for(udp)))
    };
    let alert_token = spec.alert.then(random_token);
    let push = match (&spec.voip_token, &alert_token) {
        (None, _) => None,
        (Some(v), None) => Some(sip_peer::PushParams::apns(v, &c.team, &c.bundle)),
        (Some(v), Some(a)) => Some(sip_peer::PushParams {
            provider: "apns.dev".into(),
            prid: format!("{a}:remote&{v}:voip"),
            param: Some(format!("{}.{}.remote&voip", c.team, c.bundle)),
        }),
    };
    let env = match (&c.embedded, spec.alert) {
        // The embedded gateway picks the environment from pn-provider.
        (Some(_), true) => Environment::Sandbox,
        (Some(_), false) => Environment::Production,
        (None, _) => c.environment,
    };
    if let Some(v) = &spec.voip_token {
        c.register_voip_token(v, spec.kind.party(), env);
    }
    if let Some(a) = &alert_token {
        c.register_alert_token(a, spec.kind.party(), env);
    }
    let device = Device::start(
        DeviceSpec {
            kind: spec.kind,
            aor: c.alice_aor.clone(),
            registrar,
            endpoint,
            push,
            voip_token: spec.voip_token.clone(),
            alert_token,
            credentials: c.alice_credentials.clone(),
            expires: spec.expires,
            wake_delay: c.wake_delay,
            terminate_unmatched: c.terminate_unmatched,
            seed: c.number << 8 | spec.kind as u64,
            instance: None,
        },
        &c.apns,
        &c.timeline,
    )
    .await?;
    c.devices.insert(spec.kind, device);
    Ok(())
}

/// Registers a device; a refusal means the scenario cannot be set up.
pub async fn register_or_inconclusive(c: &Cast, kind: DeviceKind) -> Result<(), StepError> {
    let d = c.device(kind)?;
    d.register(Duration::from_secs(2)).await.map_err(|e| {
        StepError::inconclusive(format!(
            "the gateway did not accept the REGISTER of Alice's {kind}: {e}"
        ))
    })?;
    Ok(())
}
