//! The app's policy and the iOS limits the model applies, and the wall clock mapping.

use crate::contract::PayloadContract;
use std::time::{Duration, Instant};

/// What the app does with a VoIP push that carries no call (a message pushed as VoIP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonCallVoipPolicy {
    /// Obey iOS: report a CallKit call anyway and end it at once (the user sees a bogus ring).
    BogusCall,
    /// Report nothing: iOS terminates the app (and counts a miss).
    Terminate,
}

/// The model's configuration. [`Default`] is a well-behaved app on iOS 13+.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IphoneConfig {
    /// False models an app that never calls `reportNewIncomingCall`: each VoIP push kills it.
    pub reports_voip_pushes: bool,
    /// What the app does with a VoIP push without a call.
    pub non_call_voip: NonCallVoipPolicy,
    /// After this many unreported VoIP pushes iOS stops delivering VoIP pushes (default 3).
    pub misses_before_cut_off: u32,
    /// A reported call whose offer has not arrived after this long is ended with `.failed`.
    pub offer_grace: Duration,
    /// A ringing call nobody answers is ended with `.unanswered` after this long.
    pub ring_timeout: Duration,
    /// A call push whose `send-time` is older than this on delivery is stale: reported, then ended.
    pub stale_after: Duration,
    /// Wake the account on a new connection (true: what an iPhone does after sleep).
    pub new_connection_on_wake: bool,
    /// The high 64 bits of the CallKit UUIDs this phone makes (they are deterministic).
    pub uuid_seed: u64,
    /// Where the app finds the call's id, send time, caller and call-ended mark in a push (the
    /// target's `[apns.payload]`; the reference gateway's contract by default).
    pub payload: PayloadContract,
    /// The app holds Apple's `com.apple.developer.pushkit.unrestricted-voip` entitlement: a VoIP
    /// push it does not report to CallKit (a message) neither kills it nor counts as a miss.
    pub unrestricted_voip: bool,
}

impl Default for IphoneConfig {
    fn default() -> Self {
        IphoneConfig {
            reports_voip_pushes: true,
            non_call_voip: NonCallVoipPolicy::BogusCall,
            misses_before_cut_off: 3,
            offer_grace: Duration::from_secs(4),
            ring_timeout: Duration::from_secs(60),
            stale_after: Duration::from_secs(30),
            new_connection_on_wake: true,
            uuid_seed: 0x1F0E,
            payload: PayloadContract::reference(),
            unrestricted_voip: false,
        }
    }
}

/// Maps the model's `Instant`s to Unix milliseconds (for payload `send-time`), without reading a
/// clock: the driver gives one pairing of an `Instant` and its wall time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WallClock {
    /// A reference instant.
    pub origin: Instant,
    /// Unix milliseconds at `origin`.
    pub origin_unix_ms: u64,
}

impl WallClock {
    /// A mapping where `origin` was `origin_unix_ms`.
    pub fn new(origin: Instant, origin_unix_ms: u64) -> Self {
        WallClock {
            origin,
            origin_unix_ms,
        }
    }

    /// Unix milliseconds at `at` (saturating for instants before the Unix epoch mapping).
    pub fn unix_ms(&self, at: Instant) -> u64 {
        if at >= self.origin {
            self.origin_unix_ms
                .saturating_add(at.duration_since(self.origin).as_millis() as u64)
        } else {
            self.origin_unix_ms
                .saturating_sub(self.origin.duration_since(at).as_millis() as u64)
        }
    }

    /// The instant of a Unix-milliseconds time, if representable.
    pub fn instant(&self, unix_ms: u64) -> Option<Instant> {
        if unix_ms >= self.origin_unix_ms {
            self.origin
                .checked_add(Duration::from_millis(unix_ms - self.origin_unix_ms))
        } else {
            self.origin
                .checked_sub(Duration::from_millis(self.origin_unix_ms - unix_ms))
        }
    }
}
