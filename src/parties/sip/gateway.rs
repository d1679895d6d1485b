//! The gateway a SIP scenario talks to: the target's listeners, or an embedded reference gateway
//! started for the scenario (its own TLS identity, the target's cancel policy, the faults of the
//! run, a 3 s Bucket Timer).

use crate::scenario::GatewayFaults;
use crate::target::{AuthMethod, CancelPolicy, Environment, Target};
use crate::verdict::StepError;
use mock_apns::MockApns;
use ref_gateway::apns::ApnsAuth;
use ref_gateway::config::{ApnsSettings, TlsIdentity};
use ref_gateway::{GatewayConfig, RefGateway};
use sip_peer::TlsConfig;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// The embedded gateway's Bucket Timer: short, so the suite stays fast.
pub const EMBEDDED_BUCKET: Duration = Duration::from_secs(3);

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

/// The gateway of one SIP scenario, as the steps see it (read-only once set up).
#[derive(Clone)]
pub struct Gateway {
    /// The SIP domain.
    pub domain: String,
    /// Its listeners.
    pub addrs: GatewayAddrs,
    /// The embedded reference gateway, when the scenario runs against it.
    pub embedded: Option<Arc<RefGateway>>,
    /// Its Bucket Timer.
    pub bucket: Duration,
    /// The push delay an external target declares (`[timers] push_delay_ms`); the embedded
    /// gateway's is set by a step.
    pub declared_push_delay: Duration,
    /// What a call cancelled after its push becomes.
    pub cancel: CancelPolicy,
}

impl Gateway {
    /// The TLS client configuration for its TLS listener.
    pub fn tls_client(&self) -> Result<TlsConfig, StepError> {
        let (ca, name) = self.addrs.tls_ca.as_ref().ok_or_else(|| {
            StepError::inconclusive("the target gives no CA for its TLS listener")
        })?;
        TlsConfig::client_trusting(ca, name)
            .map_err(|e| StepError::inconclusive(format!("TLS client configuration: {e}")))
    }
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

/// Starts a reference gateway for one scenario, its APNs client pointed at `apns`.
pub(crate) async fn start_embedded(
    target: &Target,
    faults: &GatewayFaults,
    apns: &MockApns,
    domain: &str,
) -> Result<(RefGateway, GatewayAddrs), StepError> {
    let creds = apns.credentials();
    let ca_pem = std::fs::read(creds.ca_path())
        .map_err(|e| StepError::inconclusive(format!("mock APNs CA: {e}")))?;
    let auth = match target.apns.auth {
        AuthMethod::Token => {
            ApnsAuth::token_from_p8_file(&creds.key_path(), creds.key_id(), creds.team_id())
        }
        AuthMethod::Certificate => {
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
    cfg.cancel = target.profile.cancel;
    cfg.timers.bucket_timer = EMBEDDED_BUCKET;
    cfg.faults = faults.sip.clone();
    cfg.design = faults.design;
    // The gateway's own traffic is recorded by the parties on the other end.
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

/// The target's listener `key` (`sip.udp`…), parsed.
pub(crate) fn listener(key: &str, s: &Option<String>) -> Result<Option<SocketAddr>, StepError> {
    s.as_deref()
        .map(|a| {
            a.parse()
                .map_err(|e| StepError::inconclusive(format!("target {key} {a:?}: {e}")))
        })
        .transpose()
}

/// The loopback address of the family of `addr`, port 0.
pub fn loopback_for(addr: SocketAddr) -> SocketAddr {
    if addr.is_ipv6() {
        SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0))
    } else {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }
}
