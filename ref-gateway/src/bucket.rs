//! The SIP Request Push Bucket (RFC 8599 §5.2): per call, one entry per push-bound binding, in
//! the state of its push. An entry leaves the bucket when a REGISTER matching on the `pn-*`
//! parameters (§5.3) releases it to the new flow, when its push fails, or when the Bucket Timer
//! fires (the caller then gets 480).

use crate::push::PushTarget;
use crate::registrar::Binding;
use sip_peer::{PushParams, SipUri};

/// Where an entry is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryState {
    /// The push waits for the configured push delay.
    Delayed,
    /// The push went out (or was de-duplicated); waiting for the REGISTER.
    Pushed,
    /// The call ended (cancelled, or answered elsewhere) after the push: on the REGISTER the
    /// INVITE goes out and a CANCEL with this `Reason` right after (profile `flexisip-replay`).
    Replay {
        /// The `Reason` header value of the CANCEL, if any.
        reason: Option<String>,
    },
    /// The call ended but the entry is kept as if it were live (fault `replay-cancelled-call`).
    Live,
}

/// One parked request for one binding.
#[derive(Clone, Debug)]
pub(crate) struct BucketEntry {
    /// The binding pushed.
    pub binding_id: u64,
    /// Its AOR key.
    pub aor: String,
    /// Its push parameters (the §5.3 match key).
    pub push: PushParams,
    /// The binding's Contact URI when it was pushed (fault `contact-uri-match` matches on it).
    pub contact: SipUri,
    /// Where the push goes.
    pub target: PushTarget,
    /// State.
    pub state: EntryState,
}

impl BucketEntry {
    /// RFC 8599 §5.3, matching on the pn-* parameters alone (host and port may have changed).
    pub(crate) fn matches(&self, aor: &str, binding: &Binding) -> bool {
        self.aor == aor && binding.push.as_ref() == Some(&self.push)
    }

    /// True while the call still waits for this entry (a push pending or out).
    pub(crate) fn is_waiting(&self) -> bool {
        matches!(self.state, EntryState::Delayed | EntryState::Pushed)
    }
}
