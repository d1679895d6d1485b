//! The load run's phones: N simulated iPhones, each a [`Device`] of the scenarios (a sip-peer
//! account, the `phone` crate's iOS model and the glue between them) with its own token and AOR,
//! registered, then asleep (or awake, for `--awake-share`). The pool hands an idle phone to each
//! call and takes it back when the call is over; a phone is in one call at a time.

use crate::draws::WakeDelay;
use crate::parties::device::DeviceKind;
use crate::parties::random_token;
use crate::parties::sip::device::{Device, DeviceSpec};
use crate::parties::sip::gateway::{loopback_for, GatewayAddrs};
use crate::target::Environment;
use mock_apns::{DeviceSpec as ApnsDevice, MockApns};
use sip_peer::{EndpointConfig, PushParams};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timeline::{lock, Timeline};

/// How many phones register at once.
const REGISTER_WAVE: usize = 200;

/// One phone of the run.
pub struct LoadPhone {
    /// Its AOR, which the caller calls.
    pub aor: String,
    /// Its VoIP token.
    pub token: String,
    /// The device: account, iOS model, log.
    pub device: Device,
    /// It stays awake (connected) between calls.
    pub awake: bool,
}

/// What the phones need to know about the app and the gateway.
pub struct PoolSpec<'a> {
    /// How many.
    pub count: usize,
    /// How many of them stay awake.
    pub awake: usize,
    /// The SIP domain.
    pub domain: &'a str,
    /// A prefix that keeps this run's AORs apart from another's.
    pub prefix: String,
    /// The gateway's listeners.
    pub addrs: &'a GatewayAddrs,
    /// The app's team id and bundle id.
    pub team: &'a str,
    /// The bundle id.
    pub bundle: &'a str,
    /// The environment the tokens live in at mock-apns.
    pub environment: Environment,
    /// Push to REGISTER delay.
    pub wake_delay: Duration,
    /// The app's payload contract (the target's `[apns.payload]`).
    pub payload: phone::PayloadContract,
    /// The app holds the unrestricted VoIP entitlement.
    pub unrestricted_voip: bool,
}

/// Why the phones could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The gateway has no TCP or UDP listener.
    #[error("the target has no SIP listener over TCP or UDP")]
    NoListener,
    /// A device did not start.
    #[error("phone {index} did not start: {reason}")]
    Start {
        /// Which.
        index: usize,
        /// Why.
        reason: String,
    },
    /// A REGISTER was refused or went unanswered.
    #[error("phone {index} ({aor}) did not register: {source}")]
    Register {
        /// Which.
        index: usize,
        /// Its AOR.
        aor: String,
        /// Why.
        source: sip_peer::SipError,
    },
}

/// The phones and which of them are idle.
pub struct PhonePool {
    phones: Vec<Arc<LoadPhone>>,
    idle: Mutex<VecDeque<usize>>,
}

impl PhonePool {
    /// Starts `spec.count` phones, registers them in waves, and puts the sleeping ones to sleep.
    pub async fn start(
        spec: PoolSpec<'_>,
        apns: &MockApns,
        timeline: &Timeline,
    ) -> Result<PhonePool, PoolError> {
        let (registrar, endpoint) = match (spec.addrs.tcp, spec.addrs.udp) {
            (Some(tcp), _) => (tcp, EndpointConfig::tcp(loopback_for(tcp))),
            (None, Some(udp)) => (udp, EndpointConfig::udp(loopback_for(udp))),
            (None, None) => return Err(PoolError::NoListener),
        };
        let topic = format!("{}.voip", spec.bundle);
        let mut phones = Vec::with_capacity(spec.count);
        for index in 0..spec.count {
            let token = random_token();
            apns.register_device(ApnsDevice::new(
                &token,
                vec![topic.clone()],
                spec.environment,
            ));
            let aor = format!("sip:{}-{index}@{}", spec.prefix, spec.domain);
            let device = start_device(
                &spec, index, &aor, &token, registrar, &endpoint, apns, timeline,
            )
            .await?;
            phones.push(Arc::new(LoadPhone {
                aor,
                token,
                device,
                awake: index < spec.awake,
            }));
        }
        for (wave, chunk) in phones.chunks(REGISTER_WAVE).enumerate() {
            let results = futures::future::join_all(
                chunk
                    .iter()
                    .map(|p| p.device.register(Duration::from_secs(10))),
            )
            .await;
            for (i, r) in results.into_iter().enumerate() {
                let index = wave * REGISTER_WAVE + i;
                r.map_err(|source| PoolError::Register {
                    index,
                    aor: phones[index].aor.clone(),
                    source,
                })?;
            }
        }
        for p in phones.iter().filter(|p| !p.awake) {
            p.device.sleep();
        }
        let idle = Mutex::new((0..phones.len()).collect());
        Ok(PhonePool { phones, idle })
    }

    /// How many phones.
    pub fn len(&self) -> usize {
        self.phones.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.phones.is_empty()
    }

    /// Takes an idle phone (a sleeping one when `asleep`), if any.
    pub fn take(&self, asleep: bool) -> Option<(usize, Arc<LoadPhone>)> {
        let mut idle = lock(&self.idle);
        let pos = if asleep {
            idle.iter().position(|&i| !self.phones[i].awake)?
        } else {
            0
        };
        let i = idle.remove(pos)?;
        Some((i, self.phones[i].clone()))
    }

    /// Gives a phone back once its call is over (at the back: the least recently used goes next).
    pub fn give_back(&self, index: usize) {
        lock(&self.idle).push_back(index);
    }
}

#[allow(clippy::too_many_arguments)]
async fn start_device(
    spec: &PoolSpec<'_>,
    index: usize,
    aor: &str,
    token: &str,
    registrar: SocketAddr,
    endpoint: &EndpointConfig,
    apns: &MockApns,
    timeline: &Timeline,
) -> Result<Device, PoolError> {
    Device::start(
        DeviceSpec {
            kind: DeviceKind::Iphone,
            aor: aor.to_owned(),
            registrar,
            endpoint: endpoint.clone(),
            push: Some(PushParams::apns(token, spec.team, spec.bundle)),
            voip_token: Some(token.to_owned()),
            alert_token: None,
            credentials: None,
            expires: 3600,
            wake_delay: WakeDelay::Fixed(spec.wake_delay),
            terminate_unmatched: false,
            seed: index as u64,
            instance: None,
            payload: spec.payload.clone(),
            unrestricted_voip: spec.unrestricted_voip,
        },
        apns,
        timeline,
    )
    .await
    .map_err(|e| PoolError::Start {
        index,
        reason: e.to_string(),
    })
}
