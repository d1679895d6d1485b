//! The device registry: which tokens exist, for which topics and environment, whether the phone is
//! reachable, and APNs store-and-forward for phones that are not.
//!
//! Store-and-forward follows Apple: an offline device keeps only the last push per topic, and only
//! when `apns-expiration` is in the future; expiration 0 is never stored. A push without
//! `apns-expiration` is stored for up to 30 days (Apple's storage limit).

use crate::validate::{PushType, ValidPush};
use crate::Environment;
use bytes::Bytes;
use futures::channel::mpsc;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use timeline::Recorder;

/// APNs keeps undelivered pushes at most this long.
pub const MAX_STORAGE_SECS: u64 = 30 * 24 * 3600;

/// Whether a device can be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    /// Reachable: pushes are delivered at once.
    Online,
    /// Flight mode or no network: APNs stores the last push per topic.
    Offline,
    /// The app was removed: 410 Unregistered with a timestamp.
    Unregistered,
    /// The token expired: 410 ExpiredToken.
    Expired,
}

/// A device to register.
#[derive(Clone, Debug)]
pub struct DeviceSpec {
    /// Device token (hex; stored lowercase).
    pub token: String,
    /// Topics the token is valid for (`<bundle>`, `<bundle>.voip`, …).
    pub topics: Vec<String>,
    /// The environment that issued the token.
    pub environment: Environment,
    /// Initial state.
    pub state: DeviceState,
    /// Name of the simulated phone on the timeline (default: "device-" + first 8 hex digits).
    pub name: Option<String>,
    /// Where requests for this token are recorded (party "mock-apns", peer "gateway").
    pub recorder: Option<Recorder>,
    /// APNs stores pushes for this device even when `apns-expiration` is 0 or past, and delivers
    /// them on reconnect (seen from real APNs: Apple forum 795610). Default false (Apple's rule).
    pub keep_expired: bool,
}

impl DeviceSpec {
    /// An online device.
    pub fn new(token: impl Into<String>, topics: Vec<String>, environment: Environment) -> Self {
        DeviceSpec {
            token: token.into(),
            topics,
            environment,
            state: DeviceState::Online,
            name: None,
            recorder: None,
            keep_expired: false,
        }
    }

    /// Keeps pushes with expiration 0 (or past) while offline, as real APNs sometimes does.
    pub fn keep_expired(mut self, keep: bool) -> Self {
        self.keep_expired = keep;
        self
    }

    /// Sets the initial state.
    pub fn state(mut self, state: DeviceState) -> Self {
        self.state = state;
        self
    }

    /// Records this token's traffic on a scenario timeline.
    pub fn recorder(mut self, recorder: Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Names the phone on the timeline.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// A push that reached the simulated phone.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    /// Device token.
    pub token: String,
    /// Topic.
    pub topic: String,
    /// Push type.
    pub push_type: PushType,
    /// Priority.
    pub priority: u8,
    /// `apns-id` of the request.
    pub apns_id: String,
    /// `apns-collapse-id`.
    pub collapse_id: Option<String>,
    /// `apns-expiration`.
    pub expiration: Option<u64>,
    /// The JSON payload.
    pub payload: serde_json::Value,
    /// When APNs accepted the push (UNIX ms).
    pub accepted_at_ms: u64,
    /// When it reached the phone (UNIX ms).
    pub delivered_at_ms: u64,
    /// True when APNs stored it while the phone was offline.
    pub stored: bool,
}

/// What happened to an accepted push.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// Delivered to the phone at once.
    Delivered,
    /// Stored for the offline phone (replacing any earlier one for the topic).
    Stored,
    /// Not stored: the phone is offline and the push had expired (or expiration 0).
    Dropped,
}

/// Why a push was refused by the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceRefusal {
    /// 400 BadDeviceToken (unknown token, or wrong environment).
    BadDeviceToken,
    /// 400 DeviceTokenNotForTopic.
    NotForTopic,
    /// 410 Unregistered with the timestamp (ms).
    Unregistered(u64),
    /// 410 ExpiredToken with the timestamp (ms).
    Expired(u64),
}

impl DeviceRefusal {
    /// The APNs reason.
    pub fn reason(&self) -> crate::Reason {
        match self {
            DeviceRefusal::BadDeviceToken => crate::Reason::BadDeviceToken,
            DeviceRefusal::NotForTopic => crate::Reason::DeviceTokenNotForTopic,
            DeviceRefusal::Unregistered(_) => crate::Reason::Unregistered,
            DeviceRefusal::Expired(_) => crate::Reason::ExpiredToken,
        }
    }

    /// The 410 timestamp.
    pub fn timestamp_ms(&self) -> Option<u64> {
        match self {
            DeviceRefusal::Unregistered(t) | DeviceRefusal::Expired(t) => Some(*t),
            _ => None,
        }
    }
}

/// No such device.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no device with token {0}")]
pub struct UnknownDevice(pub String);

struct Stored {
    push: ValidPush,
    apns_id: String,
    payload: Bytes,
    accepted_at_ms: u64,
    expires_at_secs: u64,
}

struct Device {
    topics: Vec<String>,
    environment: Environment,
    state: DeviceState,
    state_timestamp_ms: u64,
    name: String,
    recorder: Option<Recorder>,
    keep_expired: bool,
    stored: HashMap<String, Stored>,
    subscribers: Vec<mpsc::UnboundedSender<Delivery>>,
}

impl Device {
    fn deliver(&mut self, d: Delivery) {
        if let Some(r) = &self.recorder {
            r.sent(
                &self.name,
                "apns",
                format!(
                    "push {} ({}){}",
                    d.topic,
                    d.push_type.as_str(),
                    if d.stored { " [stored]" } else { "" }
                ),
                Bytes::from(d.payload.to_string()),
            );
        }
        self.subscribers
            .retain(|s| s.unbounded_send(d.clone()).is_ok());
    }
}

/// The registry. Locks are never held across an await.
pub struct Devices {
    inner: Mutex<HashMap<String, Device>>,
    unknown: crate::UnknownTokens,
}

use timeline::lock;

fn default_name(token: &str) -> String {
    format!("device-{}", token.chars().take(8).collect::<String>())
}

fn delivery(
    push: &ValidPush,
    apns_id: &str,
    payload: &[u8],
    accepted: u64,
    now_ms: u64,
    stored: bool,
) -> Delivery {
    Delivery {
        token: push.token.clone(),
        topic: push.topic.clone(),
        push_type: push.push_type,
        priority: push.priority,
        apns_id: apns_id.to_owned(),
        collapse_id: push.collapse_id.clone(),
        expiration: push.expiration,
        payload: serde_json::from_slice(payload).unwrap_or(serde_json::Value::Null),
        accepted_at_ms: accepted,
        delivered_at_ms: now_ms,
        stored,
    }
}

impl Devices {
    /// An empty registry.
    pub fn new(unknown: crate::UnknownTokens) -> Self {
        Devices {
            inner: Mutex::new(HashMap::new()),
            unknown,
        }
    }

    /// Registers (or replaces) a device; existing subscribers are kept.
    pub fn register(&self, spec: DeviceSpec, now_ms: u64) {
        let token = spec.token.to_ascii_lowercase();
        let name = spec.name.unwrap_or_else(|| default_name(&token));
        let mut map = lock(&self.inner);
        let subscribers = map
            .remove(&token)
            .map(|d| d.subscribers)
            .unwrap_or_default();
        map.insert(
            token,
            Device {
                topics: spec.topics,
                environment: spec.environment,
                state: spec.state,
                state_timestamp_ms: now_ms,
                name,
                recorder: spec.recorder,
                keep_expired: spec.keep_expired,
                stored: HashMap::new(),
                subscribers,
            },
        );
    }

    /// Removes a device. Returns whether it existed.
    pub fn remove(&self, token: &str) -> bool {
        lock(&self.inner)
            .remove(&token.to_ascii_lowercase())
            .is_some()
    }

    /// The recorder of a token's scenario, if any.
    pub fn recorder(&self, token: &str) -> Option<Recorder> {
        let map = lock(&self.inner);
        map.get(token)
            .or_else(|| map.get(&token.to_ascii_lowercase()))
            .and_then(|d| d.recorder.clone())
    }

    /// Changes a device's state. Going online delivers what APNs stored and has not expired.
    pub fn set_state(
        &self,
        token: &str,
        state: DeviceState,
        timestamp_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<(), UnknownDevice> {
        let mut map = lock(&self.inner);
        let token = token.to_ascii_lowercase();
        let device = map
            .get_mut(&token)
            .ok_or_else(|| UnknownDevice(token.clone()))?;
        device.state = state;
        device.state_timestamp_ms = timestamp_ms.unwrap_or(now_ms);
        if state == DeviceState::Online {
            let mut stored: Vec<Stored> = device.stored.drain().map(|(_, s)| s).collect();
            stored.sort_by_key(|s| s.accepted_at_ms);
            for s in stored {
                if s.expires_at_secs > now_ms / 1000 || device.keep_expired {
                    let d = delivery(
                        &s.push,
                        &s.apns_id,
                        &s.payload,
                        s.accepted_at_ms,
                        now_ms,
                        true,
                    );
                    device.deliver(d);
                }
            }
        }
        Ok(())
    }

    /// Makes APNs keep (or stop keeping) expired pushes for an offline device.
    pub fn set_keep_expired(&self, token: &str, keep: bool) -> Result<(), UnknownDevice> {
        let mut map = lock(&self.inner);
        let token = token.to_ascii_lowercase();
        let device = map
            .get_mut(&token)
            .filter(|d| d.state_timestamp_ms != u64::MAX)
            .ok_or_else(|| UnknownDevice(token.clone()))?;
        device.keep_expired = keep;
        Ok(())
    }

    /// A stream of the pushes delivered to a token from now on (the device need not exist yet).
    pub fn subscribe(&self, token: &str) -> mpsc::UnboundedReceiver<Delivery> {
        let (tx, rx) = mpsc::unbounded();
        let token = token.to_ascii_lowercase();
        let mut map = lock(&self.inner);
        match map.get_mut(&token) {
            Some(d) => d.subscribers.push(tx),
            None => {
                // A placeholder that keeps the subscriber until the token is registered or used.
                map.insert(
                    token.clone(),
                    Device {
                        topics: Vec::new(),
                        environment: Environment::Production,
                        state: DeviceState::Online,
                        state_timestamp_ms: u64::MAX,
                        name: default_name(&token),
                        recorder: None,
                        keep_expired: false,
                        stored: HashMap::new(),
                        subscribers: vec![tx],
                    },
                );
            }
        }
        rx
    }

    /// Applies the registry to a validated push: refuse it, deliver it, store it or drop it.
    pub fn accept(
        &self,
        push: &ValidPush,
        env: Environment,
        apns_id: &str,
        payload: &Bytes,
        now_ms: u64,
    ) -> Result<DeliveryOutcome, DeviceRefusal> {
        let mut map = lock(&self.inner);
        let device = match map.get_mut(&push.token) {
            Some(d) if d.state_timestamp_ms == u64::MAX => {
                // A subscriber placeholder: becomes a real device like an unknown token would.
                if self.unknown == crate::UnknownTokens::Reject {
                    return Err(DeviceRefusal::BadDeviceToken);
                }
                d.topics = vec![push.topic.clone()];
                d.environment = env;
                d.state_timestamp_ms = now_ms;
                d
            }
            Some(d) => d,
            None => {
                if self.unknown == crate::UnknownTokens::Reject {
                    return Err(DeviceRefusal::BadDeviceToken);
                }
                map.entry(push.token.clone()).or_insert_with(|| Device {
                    topics: vec![push.topic.clone()],
                    environment: env,
                    state: DeviceState::Online,
                    state_timestamp_ms: now_ms,
                    name: default_name(&push.token),
                    recorder: None,
                    keep_expired: false,
                    stored: HashMap::new(),
                    subscribers: Vec::new(),
                })
            }
        };
        if device.environment != env {
            return Err(DeviceRefusal::BadDeviceToken);
        }
        if !device.topics.contains(&push.topic) {
            return Err(DeviceRefusal::NotForTopic);
        }
        match device.state {
            DeviceState::Unregistered => {
                Err(DeviceRefusal::Unregistered(device.state_timestamp_ms))
            }
            DeviceState::Expired => Err(DeviceRefusal::Expired(device.state_timestamp_ms)),
            DeviceState::Online => {
                if !device.subscribers.is_empty() || device.recorder.is_some() {
                    let d = delivery(push, apns_id, payload, now_ms, now_ms, false);
                    device.deliver(d);
                }
                Ok(DeliveryOutcome::Delivered)
            }
            DeviceState::Offline => {
                let now_secs = now_ms / 1000;
                let expires_at_secs = match push.expiration {
                    Some(e) => e.min(now_secs + MAX_STORAGE_SECS),
                    None => now_secs + MAX_STORAGE_SECS,
                };
                if expires_at_secs <= now_secs && !device.keep_expired {
                    return Ok(DeliveryOutcome::Dropped);
                }
                device.stored.insert(
                    push.topic.clone(),
                    Stored {
                        push: push.clone(),
                        apns_id: apns_id.to_owned(),
                        payload: payload.clone(),
                        accepted_at_ms: now_ms,
                        expires_at_secs,
                    },
                );
                Ok(DeliveryOutcome::Stored)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    const T: &str = "00aa11bb";
    const NOW_MS: u64 = 1_800_000_000_000;
    const NOW: u64 = NOW_MS / 1000;

    fn push(topic: &str, expiration: Option<u64>) -> ValidPush {
        ValidPush {
            token: T.into(),
            topic: topic.into(),
            push_type: if topic.ends_with(".voip") {
                PushType::Voip
            } else {
                PushType::Alert
            },
            priority: 10,
            expiration,
            collapse_id: None,
        }
    }

    fn registry(state: DeviceState) -> Devices {
        let d = Devices::new(crate::UnknownTokens::Reject);
        d.register(
            DeviceSpec::new(
                T,
                vec!["app".into(), "app.voip".into()],
                Environment::Sandbox,
            )
            .state(state),
            NOW_MS,
        );
        d
    }

    fn body(n: u32) -> Bytes {
        Bytes::from(format!("{{\"n\":{n}}}"))
    }

    fn drain(rx: &mut mpsc::UnboundedReceiver<Delivery>) -> Vec<Delivery> {
        let mut out = Vec::new();
        while let Ok(d) = rx.try_recv() {
            out.push(d);
        }
        out
    }

    #[test]
    fn online_devices_get_pushes_at_once() {
        let d = registry(DeviceState::Online);
        let mut rx = d.subscribe(T);
        assert_eq!(
            d.accept(
                &push("app.voip", Some(0)),
                Environment::Sandbox,
                "id1",
                &body(1),
                NOW_MS
            ),
            Ok(DeliveryOutcome::Delivered)
        );
        let got = drain(&mut rx);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].payload["n"], 1);
        assert!(!got[0].stored);
    }

    #[test]
    fn refusals() {
        let d = registry(DeviceState::Online);
        assert_eq!(
            d.accept(
                &push("app.voip", None),
                Environment::Production,
                "i",
                &body(1),
                NOW_MS
            ),
            Err(DeviceRefusal::BadDeviceToken)
        );
        assert_eq!(
            d.accept(
                &push("other", None),
                Environment::Sandbox,
                "i",
                &body(1),
                NOW_MS
            ),
            Err(DeviceRefusal::NotForTopic)
        );
        let mut unknown = push("app", None);
        unknown.token = "ffff".into();
        assert_eq!(
            d.accept(&unknown, Environment::Sandbox, "i", &body(1), NOW_MS),
            Err(DeviceRefusal::BadDeviceToken)
        );
        d.set_state(T, DeviceState::Unregistered, Some(1508249865488), NOW_MS)
            .unwrap();
        let err = d
            .accept(
                &push("app", None),
                Environment::Sandbox,
                "i",
                &body(1),
                NOW_MS,
            )
            .unwrap_err();
        assert_eq!(err.reason(), crate::Reason::Unregistered);
        assert_eq!(err.timestamp_ms(), Some(1508249865488));
        d.set_state(T, DeviceState::Expired, None, NOW_MS).unwrap();
        let err = d
            .accept(
                &push("app", None),
                Environment::Sandbox,
                "i",
                &body(1),
                NOW_MS,
            )
            .unwrap_err();
        assert_eq!(err, DeviceRefusal::Expired(NOW_MS));
        assert_eq!(
            d.set_state("beef", DeviceState::Online, None, NOW_MS),
            Err(UnknownDevice("beef".into()))
        );
    }

    #[test]
    fn unknown_tokens_register_on_first_use() {
        let d = Devices::new(crate::UnknownTokens::Register);
        assert_eq!(
            d.accept(
                &push("app.voip", None),
                Environment::Sandbox,
                "i",
                &body(1),
                NOW_MS
            ),
            Ok(DeliveryOutcome::Delivered)
        );
        // Now bound to that topic and environment.
        assert_eq!(
            d.accept(
                &push("app.voip", None),
                Environment::Production,
                "i",
                &body(1),
                NOW_MS
            ),
            Err(DeviceRefusal::BadDeviceToken)
        );
    }

    #[test]
    fn offline_keeps_only_the_last_unexpired_push_per_topic() {
        let d = registry(DeviceState::Offline);
        let mut rx = d.subscribe(T);
        // expiration 0: dropped
        assert_eq!(
            d.accept(
                &push("app.voip", Some(0)),
                Environment::Sandbox,
                "a",
                &body(0),
                NOW_MS
            ),
            Ok(DeliveryOutcome::Dropped)
        );
        // already in the past: dropped
        assert_eq!(
            d.accept(
                &push("app.voip", Some(NOW - 1)),
                Environment::Sandbox,
                "b",
                &body(9),
                NOW_MS
            ),
            Ok(DeliveryOutcome::Dropped)
        );
        for n in 1..=3 {
            assert_eq!(
                d.accept(
                    &push("app.voip", Some(NOW + 3600)),
                    Environment::Sandbox,
                    &format!("v{n}"),
                    &body(n),
                    NOW_MS + n as u64
                ),
                Ok(DeliveryOutcome::Stored)
            );
        }
        assert_eq!(
            d.accept(
                &push("app", None),
                Environment::Sandbox,
                "alert",
                &body(7),
                NOW_MS + 10
            ),
            Ok(DeliveryOutcome::Stored)
        );
        assert!(drain(&mut rx).is_empty());
        d.set_state(T, DeviceState::Online, None, NOW_MS + 1000)
            .unwrap();
        let got = drain(&mut rx);
        let ids: Vec<&str> = got.iter().map(|d| d.apns_id.as_str()).collect();
        assert_eq!(ids, ["v3", "alert"]);
        assert!(got.iter().all(|d| d.stored));
        // Nothing left in store.
        d.set_state(T, DeviceState::Offline, None, NOW_MS).unwrap();
        d.set_state(T, DeviceState::Online, None, NOW_MS).unwrap();
        assert!(drain(&mut rx).is_empty());
    }

    #[test]
    fn a_stored_push_that_expires_before_reconnect_is_not_delivered() {
        let d = registry(DeviceState::Offline);
        let mut rx = d.subscribe(T);
        assert_eq!(
            d.accept(
                &push("app.voip", Some(NOW + 30)),
                Environment::Sandbox,
                "x",
                &body(1),
                NOW_MS
            ),
            Ok(DeliveryOutcome::Stored)
        );
        d.set_state(T, DeviceState::Online, None, NOW_MS + 31_000)
            .unwrap();
        assert!(drain(&mut rx).is_empty());
    }

    #[test]
    fn keep_expired_devices_store_expiration_zero() {
        let d = registry(DeviceState::Offline);
        let mut rx = d.subscribe(T);
        d.set_keep_expired(T, true).unwrap();
        assert_eq!(
            d.accept(
                &push("app.voip", Some(0)),
                Environment::Sandbox,
                "zero",
                &body(1),
                NOW_MS
            ),
            Ok(DeliveryOutcome::Stored)
        );
        d.set_state(T, DeviceState::Online, None, NOW_MS + 60_000)
            .unwrap();
        let got = drain(&mut rx);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].apns_id.as_str(), got[0].stored), ("zero", true));
        assert_eq!(
            d.set_keep_expired("beef", true),
            Err(UnknownDevice("beef".into()))
        );
    }

    #[tokio::test]
    async fn subscribing_before_registration_works() {
        let d = Devices::new(crate::UnknownTokens::Register);
        let mut rx = d.subscribe(T);
        assert_eq!(
            d.accept(
                &push("app", None),
                Environment::Sandbox,
                "i",
                &body(5),
                NOW_MS
            ),
            Ok(DeliveryOutcome::Delivered)
        );
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), rx.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.payload["n"], 5);
    }
}
