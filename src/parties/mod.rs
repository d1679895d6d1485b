//! The parties of a scenario, as the step library drives them: the shared mock APNs
//! ([`apns`]), Alice's devices and what they log ([`device`]), and the two casts, one per
//! protocol: [`sip::SipCast`] and [`xmpp::XmppCast`].
//!
//! This layer knows nothing of Gherkin or of the World: a cast is set up from the scenario's
//! [`ScenarioContext`](crate::scenario::ScenarioContext) and timeline, registers its cleanups in
//! [`Teardowns`](crate::scenario::Teardowns), and offers methods that keep its own invariants
//! (Bob's latest move opens the "no push" windows, a wake delay reaches every device, …). The
//! World ([`crate::world`]) holds the casts; the steps ([`crate::steps`]) are the sentences.
//!
//! The steps shared by both protocols (ringing, CallKit, notifications, "no VoIP push") go
//! through one small trait, [`Alice`], which both casts implement.

pub mod apns;
pub mod device;
pub mod sip;
pub mod xmpp;

use crate::verdict::StepError;
use device::DeviceKind;
use mock_apns::PushRecord;
use phone::PhoneHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the steps shared by the SIP and the XMPP scenarios need from the scenario's cast.
pub trait Alice {
    /// The iOS model of one of Alice's devices; inconclusive when no step set it up (or for the
    /// desktop).
    fn phone(&self, kind: DeviceKind) -> Result<PhoneHandle, StepError>;
    /// The id of Bob's latest call (the SIP Call-ID or the JMI id), if he called.
    fn latest_call_id(&self) -> Option<String>;
    /// When the device came back online (left flight mode, or reconnected), if it did.
    fn back_online(&self, kind: DeviceKind) -> Option<Instant>;
    /// The VoIP pushes to Alice's tokens that "no VoIP push" counts: since Bob's latest move
    /// (SIP), since the scenario began (XMPP).
    fn voip_pushes_to_alice(&self) -> Vec<PushRecord>;
}

/// A number unique to each scenario of this process (SIP and XMPP alike): it keeps the users,
/// tokens and ports of concurrent scenarios apart.
pub(crate) fn next_scenario_number() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A fresh random device token: 64 lowercase hex digits.
pub fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// True for 64 hex digits: what APNs issues as a device token.
pub(crate) fn is_token(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The `Instant` of a Unix-milliseconds time in the past (or now): the start of that millisecond.
///
/// A time recorded in whole milliseconds happened somewhere in `[ms, ms + 1)`; the start is the
/// earliest it can have been, so whatever it caused (the REGISTER a push sets off, possibly in the
/// same millisecond) is never placed before it. The wall clock is read to the nanosecond: reading
/// it in whole milliseconds too would put the mark up to 1 ms late.
pub fn instant_of_ms(ms: u64) -> Instant {
    let now = Instant::now();
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.checked_sub(since_epoch.saturating_sub(Duration::from_millis(ms)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_millisecond_mark_is_never_after_what_it_records() {
        // The event happens, its time is written in whole milliseconds, then something it caused
        // happens at `later`: the mark must not come after `later` (it did, by up to 1 ms, when
        // the wall clock was read in whole milliseconds too). 100 µs allow for the two clocks.
        // The conversion comes a while after (a step looks at the push log later).
        for i in 0..200u64 {
            let ms = timeline::now_ms();
            let later = Instant::now();
            std::thread::sleep(Duration::from_micros(100 + (i * 37) % 900));
            let mark = instant_of_ms(ms);
            assert!(
                mark <= later + Duration::from_micros(100),
                "the mark is {:?} after what the event caused",
                mark - later
            );
        }
    }
}
