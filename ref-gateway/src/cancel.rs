//! The CANCEL policies where the standards allow more than one answer ([`CancelPolicy`]), and what
//! a bucket entry becomes when its call ends (the caller's CANCEL, or another branch answering)
//! after its push went out.

use crate::bucket::EntryState;
use crate::faults::{Fault, Faults};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What the gateway does with a call cancelled after its VoIP push went out, where the standards
/// allow more than one answer (`features/REQUIREMENTS.md`, "Profiles and capabilities"). The one
/// type for the concept in the bench: the reference gateway's configuration and the target file's
/// `[profile] cancel` both use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum CancelPolicy {
    /// RFC 8599 with RFC 3261 §16.10: 200 + 487, drop the bucket entry; the woken phone gets nothing.
    #[serde(rename = "rfc8599-drop")]
    Rfc8599Drop,
    /// Flexisip: 200 + 487 upstream; on the phone's REGISTER, the stored INVITE then a CANCEL.
    #[default]
    #[serde(rename = "flexisip-replay")]
    FlexisipReplay,
    /// A "call ended" VoIP push (payload `kind: "cancel"`); the bucket entry is dropped.
    #[serde(rename = "cancel-push")]
    CancelPush,
}

impl CancelPolicy {
    /// Every profile.
    pub const ALL: [CancelPolicy; 3] = [
        CancelPolicy::Rfc8599Drop,
        CancelPolicy::FlexisipReplay,
        CancelPolicy::CancelPush,
    ];

    /// The name used in target files and `@profile:` tags (`rfc8599-drop`, `flexisip-replay`,
    /// `cancel-push`).
    pub fn as_str(self) -> &'static str {
        match self {
            CancelPolicy::Rfc8599Drop => "rfc8599-drop",
            CancelPolicy::FlexisipReplay => "flexisip-replay",
            CancelPolicy::CancelPush => "cancel-push",
        }
    }

    /// The profile with this name.
    pub fn from_name(name: &str) -> Option<CancelPolicy> {
        CancelPolicy::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl fmt::Display for CancelPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Reason` of the CANCEL sent to the other branches when one answers (RFC 3326, Flexisip).
pub const ANSWERED_ELSEWHERE: &str = "SIP;cause=200;text=\"Call completed elsewhere\"";
/// `Reason` of the CANCEL sent to the other branches when one declines with a 6xx (Flexisip).
pub const BUSY_EVERYWHERE: &str = "SIP;cause=600;text=\"Busy Everywhere\"";

/// What happens to a bucket entry whose call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnCallEnded {
    /// Drop it: the phone gets nothing (`rfc8599-drop`, or the push never went out).
    Drop,
    /// Keep it: on REGISTER, INVITE then CANCEL with this Reason (`flexisip-replay`).
    Replay(Option<String>),
    /// Send a "call ended" push, then drop it (`cancel-push`).
    CancelPush,
    /// Keep it as a live call (fault `replay-cancelled-call`).
    KeepLive,
    /// Keep it as it is: its delayed push still goes out (fault `push-after-cancel`).
    KeepDelayed,
}

/// The decision for an entry in `state` whose call ended with `reason`.
pub fn on_call_ended(
    state: &EntryState,
    reason: Option<&str>,
    policy: CancelPolicy,
    faults: &Faults,
) -> OnCallEnded {
    match state {
        EntryState::Delayed if faults.has(Fault::PushAfterCancel) => {
            return OnCallEnded::KeepDelayed
        }
        EntryState::Delayed => return OnCallEnded::Drop,
        EntryState::Replay { .. } | EntryState::Live => {
            // Already ended once; nothing changes.
            return OnCallEnded::Drop;
        }
        EntryState::Pushed => {}
    }
    if faults.has(Fault::ReplayCancelledCall) {
        return OnCallEnded::KeepLive;
    }
    match policy {
        CancelPolicy::Rfc8599Drop => OnCallEnded::Drop,
        CancelPolicy::FlexisipReplay => OnCallEnded::Replay(reason.map(str::to_owned)),
        CancelPolicy::CancelPush => OnCallEnded::CancelPush,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_profile_and_the_fault() {
        let none = Faults::none();
        let p = EntryState::Pushed;
        assert_eq!(
            on_call_ended(&p, None, CancelPolicy::Rfc8599Drop, &none),
            OnCallEnded::Drop
        );
        assert_eq!(
            on_call_ended(
                &p,
                Some(ANSWERED_ELSEWHERE),
                CancelPolicy::FlexisipReplay,
                &none
            ),
            OnCallEnded::Replay(Some(ANSWERED_ELSEWHERE.into()))
        );
        assert_eq!(
            on_call_ended(&p, None, CancelPolicy::CancelPush, &none),
            OnCallEnded::CancelPush
        );
        let fault = Faults::only(Fault::ReplayCancelledCall);
        for profile in [
            CancelPolicy::Rfc8599Drop,
            CancelPolicy::FlexisipReplay,
            CancelPolicy::CancelPush,
        ] {
            assert_eq!(
                on_call_ended(&p, None, profile, &fault),
                OnCallEnded::KeepLive
            );
        }
        // A push that never went out is dropped whatever the profile (catalogue C1).
        assert_eq!(
            on_call_ended(
                &EntryState::Delayed,
                None,
                CancelPolicy::FlexisipReplay,
                &fault
            ),
            OnCallEnded::Drop
        );
        // …unless the delay timer outlives the call (fault `push-after-cancel`).
        let late = Faults::only(Fault::PushAfterCancel);
        assert_eq!(
            on_call_ended(&EntryState::Delayed, None, CancelPolicy::Rfc8599Drop, &late),
            OnCallEnded::KeepDelayed
        );
        assert_eq!(
            on_call_ended(&p, None, CancelPolicy::Rfc8599Drop, &late),
            OnCallEnded::Drop
        );
    }
}
