//! The CANCEL policies where the standards allow two answers: what a bucket entry becomes when
//! its call ends (the caller's CANCEL, or another branch answering) after its push went out.

use crate::bucket::EntryState;
use crate::faults::{Fault, Faults};
use crate::profile::Profile;

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
    profile: Profile,
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
    match profile {
        Profile::Rfc8599Drop => OnCallEnded::Drop,
        Profile::FlexisipReplay => OnCallEnded::Replay(reason.map(str::to_owned)),
        Profile::CancelPush => OnCallEnded::CancelPush,
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
            on_call_ended(&p, None, Profile::Rfc8599Drop, &none),
            OnCallEnded::Drop
        );
        assert_eq!(
            on_call_ended(&p, Some(ANSWERED_ELSEWHERE), Profile::FlexisipReplay, &none),
            OnCallEnded::Replay(Some(ANSWERED_ELSEWHERE.into()))
        );
        assert_eq!(
            on_call_ended(&p, None, Profile::CancelPush, &none),
            OnCallEnded::CancelPush
        );
        let fault = Faults::only(Fault::ReplayCancelledCall);
        for profile in [
            Profile::Rfc8599Drop,
            Profile::FlexisipReplay,
            Profile::CancelPush,
        ] {
            assert_eq!(
                on_call_ended(&p, None, profile, &fault),
                OnCallEnded::KeepLive
            );
        }
        // A push that never went out is dropped whatever the profile (catalogue C1).
        assert_eq!(
            on_call_ended(&EntryState::Delayed, None, Profile::FlexisipReplay, &fault),
            OnCallEnded::Drop
        );
        // …unless the delay timer outlives the call (fault `push-after-cancel`).
        let late = Faults::only(Fault::PushAfterCancel);
        assert_eq!(
            on_call_ended(&EntryState::Delayed, None, Profile::Rfc8599Drop, &late),
            OnCallEnded::KeepDelayed
        );
        assert_eq!(
            on_call_ended(&p, None, Profile::Rfc8599Drop, &late),
            OnCallEnded::Drop
        );
    }
}
