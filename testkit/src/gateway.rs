//! The reference gateway's SIP bench: a mock APNs, the reference gateway pointed at it with
//! short timers, and sip-peer callers and phones registered through it, all on one timeline; and
//! raw UDP peers that write SIP by hand.

use crate::pki::TlsChain;
use mock_apns::{Config, DeviceSpec, Environment, MockApns, PushRecord};
use ref_gateway::config::{ApnsSettings, GatewayConfig, TlsIdentity};
use ref_gateway::{CancelPolicy, Faults, RefGateway};
use sip_peer::{
    Caller, CallerConfig, EndpointConfig, PhoneAccount, PhoneConfig, PushParams, SipUri, TlsConfig,
    Transport,
};
use std::net::SocketAddr;
use std::time::Duration;
use timeline::{Protocol, Timeline};

/// How long this bench waits for one message (shorter than [`crate::DEADLINE`]: the gateway
/// answers on loopback at once).
pub const WAIT: Duration = Duration::from_secs(5);
/// The Bucket Timer of these tests.
pub const BUCKET: Duration = Duration::from_millis(1000);
/// How long "nothing happens" is watched.
pub const QUIET: Duration = Duration::from_millis(700);
/// The gateway's T1 in these tests (UDP retransmissions).
pub const T1: Duration = Duration::from_millis(100);

/// The gateway's SIP domain.
pub const DOMAIN: &str = "example.com";

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A fresh 64-hex-digit token.
pub fn token() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{a}{b}")
}

/// One scenario's parties.
pub struct Bench {
    /// Everything every party sent and received.
    pub timeline: Timeline,
    /// The mock APNs the gateway pushes to.
    pub apns: MockApns,
    /// The gateway.
    pub gw: RefGateway,
    /// The CA the gateway's TLS certificate chains to.
    pub tls_ca: String,
}

/// How the gateway of a [`Bench`] runs.
pub struct Options {
    /// Its cancel policy.
    pub cancel: CancelPolicy,
    /// Its faults.
    pub faults: Faults,
    /// Digest accounts (none: no authentication).
    pub accounts: Vec<ref_gateway::config::Account>,
    /// How long it holds each push.
    pub push_delay: Duration,
    /// Listen on `[::1]` instead of 127.0.0.1 (the parties follow).
    pub ipv6: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cancel: CancelPolicy::FlexisipReplay,
            faults: Faults::none(),
            accounts: Vec::new(),
            push_delay: Duration::ZERO,
            ipv6: false,
        }
    }
}

impl Bench {
    /// A bench with the default options.
    pub async fn start() -> Bench {
        Bench::with(Options::default()).await
    }

    /// A bench whose gateway runs with `opts`.
    pub async fn with(opts: Options) -> Bench {
        let timeline = Timeline::new();
        let apns = MockApns::start(Config::default()).await.unwrap();
        let creds = apns.credentials();
        let auth = ref_gateway::apns::ApnsAuth::token_from_p8_file(
            &creds.key_path(),
            creds.key_id(),
            creds.team_id(),
        )
        .unwrap();
        let settings = ApnsSettings {
            production: apns.production_addr(),
            sandbox: apns.sandbox_addr(),
            ca_pem: std::fs::read(creds.ca_path()).unwrap(),
            auth,
        };
        let TlsChain {
            ca_pem: ca,
            cert_pem: cert,
            key_pem: key,
        } = TlsChain::localhost();
        let mut cfg = GatewayConfig::new(DOMAIN, settings);
        let any = if opts.ipv6 {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0))
        } else {
            loopback()
        };
        cfg.udp = Some(any);
        cfg.tcp = Some(any);
        cfg.tls = Some((
            any,
            TlsIdentity {
                cert_pem: cert.into_bytes(),
                key_pem: key.into_bytes(),
            },
        ));
        cfg.cancel = opts.cancel;
        cfg.faults = opts.faults;
        cfg.accounts = opts.accounts;
        cfg.timers.bucket_timer = BUCKET;
        cfg.timers.push_delay = opts.push_delay;
        cfg.timers.t1 = T1;
        cfg.timers.retry.initial_backoff = Duration::from_millis(50);
        cfg.timers.retry.max_backoff = Duration::from_millis(200);
        cfg.sip_recorder = timeline.recorder("gateway", Protocol::Sip);
        cfg.apns_recorder = timeline.recorder("gateway", Protocol::Apns);
        let gw = RefGateway::start(cfg).await.unwrap();
        Bench {
            timeline,
            apns,
            gw,
            tls_ca: ca,
        }
    }

    /// The app's bundle id.
    pub fn bundle(&self) -> String {
        self.apns.credentials().bundle_id().to_owned()
    }

    /// The APNs team id.
    pub fn team(&self) -> String {
        self.apns.credentials().team_id().to_owned()
    }

    /// Registers a VoIP token in mock-apns for `<bundle>.voip` only (production).
    pub fn voip_device(&self, token: &str) {
        self.apns.register_device(DeviceSpec::new(
            token,
            vec![format!("{}.voip", self.bundle())],
            Environment::Production,
        ));
    }

    /// A loopback endpoint on `t` of the gateway's address family (T1 100 ms).
    pub fn endpoint(&self, t: Transport) -> EndpointConfig {
        let local = match self.gw.addr(t) {
            Some(SocketAddr::V6(_)) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
            _ => loopback(),
        };
        match t {
            Transport::Udp => EndpointConfig::udp(local),
            Transport::Tcp => EndpointConfig::tcp(local),
            Transport::Tls => EndpointConfig::tls(
                local,
                TlsConfig::client_trusting(self.tls_ca.as_bytes(), "localhost").unwrap(),
            ),
        }
        .with_t1(Duration::from_millis(100))
    }

    /// `sip:<user>@example.com`.
    pub fn aor(user: &str) -> SipUri {
        SipUri::parse(&format!("sip:{user}@{DOMAIN}")).unwrap()
    }

    /// A phone account for `user` on transport `t`, with standard APNs push parameters.
    pub async fn phone(&self, user: &str, t: Transport, token: Option<&str>) -> PhoneAccount {
        let mut cfg = PhoneConfig::new(Bench::aor(user), self.gw.addr(t).unwrap());
        cfg.push = token.map(|tok| PushParams::apns(tok, &self.team(), &self.bundle()));
        cfg.instance = Some(format!("<urn:uuid:{}>", uuid::Uuid::new_v4()));
        cfg.expires = 600;
        PhoneAccount::start(
            self.endpoint(t),
            cfg,
            self.timeline
                .recorder(format!("{user}-{}", t.as_str()), Protocol::Sip),
            "gateway",
        )
        .await
        .unwrap()
    }

    /// A phone with a custom configuration.
    pub async fn phone_with(&self, cfg: PhoneConfig, t: Transport) -> PhoneAccount {
        PhoneAccount::start(
            self.endpoint(t),
            cfg,
            self.timeline.recorder("phone", Protocol::Sip),
            "gateway",
        )
        .await
        .unwrap()
    }

    /// Bob, calling through the gateway on `t`.
    pub async fn caller(&self, t: Transport) -> Caller {
        let cfg = CallerConfig::new(
            SipUri::parse(&format!("sip:bob@{DOMAIN}")).unwrap(),
            self.gw.addr(t).unwrap(),
        );
        Caller::new(
            self.endpoint(t),
            cfg,
            self.timeline.recorder("bob", Protocol::Sip),
            "gateway",
        )
        .await
        .unwrap()
    }

    /// Every push request mock-apns received for `token`.
    pub fn pushes_for(&self, token: &str) -> Vec<PushRecord> {
        self.apns
            .push_log()
            .into_iter()
            .filter(|r| r.token.as_deref() == Some(token))
            .collect()
    }

    /// The next push for `token` within 2 s, or a failure with the ladder.
    pub async fn push_for(&self, token: &str) -> PushRecord {
        match self.apns.next_push_for(token, Duration::from_secs(2)).await {
            Ok(r) => r,
            Err(e) => panic!("no push: {e:?}\n{}", self.timeline.ladder()),
        }
    }

    /// Asserts no push reaches `token` during `QUIET`.
    pub async fn no_push_for(&self, token: &str) {
        if let Ok(r) = self.apns.next_push_for(token, QUIET).await {
            panic!(
                "unexpected push {}\n{}",
                r.summary(),
                self.timeline.ladder()
            );
        }
    }

    /// Puts a registered phone to sleep: connections closed, app suspended.
    pub fn sleep(phone: &PhoneAccount) {
        phone.set_offline(sip_peer::Offline::Disconnected);
    }
}

// ---------------------------------------------------------------- raw UDP peers

/// The next SIP message on `sock` within `d`, if any.
pub async fn recv(sock: &tokio::net::UdpSocket, d: Duration) -> Option<sip_peer::Message> {
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(d, sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(sip_peer::Message::parse(&buf[..n]).expect("the gateway sends parseable SIP"))
}

/// A request as a raw UDP peer writes it (`extra` header lines end with CRLF).
pub fn request(method: &str, ruri: &str, local: SocketAddr, call_id: &str, extra: &str) -> String {
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{call_id}\r\nMax-Forwards: 70\r\nFrom: <sip:raw@{DOMAIN}>;tag=raw1\r\nTo: <{ruri}>\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}
