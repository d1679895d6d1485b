//! The reference gateway's fault switches: each one a real mistake vendors make, and the
//! requirement ids the suite must report failed when it is on (the fault matrix of
//! `features/REQUIREMENTS.md`, kept here as data so the fault-matrix test can use it).

use crate::cancel::CancelPolicy;
use crate::design::Design;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// One switchable mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Fault {
    /// Call pushes carry `apns-expiration` = now + 90 s (Flexisip's `call-fork-timeout`).
    #[serde(rename = "nonzero-expiration")]
    NonzeroExpiration,
    /// Call pushes go out as `apns-push-type: alert` on topic `<bundle>`.
    #[serde(rename = "alert-push-type")]
    AlertPushType,
    /// Call pushes use topic `<bundle>` with push type voip.
    #[serde(rename = "no-voip-suffix")]
    NoVoipSuffix,
    /// Call pushes carry `apns-priority: 5`.
    #[serde(rename = "priority-5")]
    Priority5,
    /// A matching REGISTER 2xx never releases the bucket.
    #[serde(rename = "no-replay-on-register")]
    NoReplayOnRegister,
    /// A cancelled call stays in the bucket and goes out on REGISTER as a live INVITE.
    #[serde(rename = "replay-cancelled-call")]
    ReplayCancelledCall,
    /// A 410 fails the current INVITE but the binding is kept.
    #[serde(rename = "ignore-410")]
    Ignore410,
    /// The INVITE waits in the bucket until the caller gives up.
    #[serde(rename = "no-bucket-timer")]
    NoBucketTimer,
    /// Push payloads carry no `call-id`.
    #[serde(rename = "no-call-id-in-payload")]
    NoCallIdInPayload,
    /// A MESSAGE to a sleeping phone is pushed as VoIP to its VoIP token.
    #[serde(rename = "message-as-voip")]
    MessageAsVoip,
    /// A push delayed by the configured push delay still goes out after the caller hung up (the
    /// delay timer is not stopped with the call).
    #[serde(rename = "push-after-cancel")]
    PushAfterCancel,
    /// Expired bindings are only swept now and then (every 60 s, like a usrloc timer), not
    /// checked at lookup: a call to a binding that expired a moment ago still pushes it.
    #[serde(rename = "stale-bindings")]
    StaleBindings,
    /// Linphone's multi-token `pn-prid`: the first token is pushed whatever its service, so calls
    /// go to the `remote` (alert) token instead of the `voip` one.
    #[serde(rename = "first-prid-token")]
    FirstPridToken,
    /// A REGISTER that refreshes a binding the AoR already has (same pn-* parameters) is
    /// accepted without a digest challenge, like a registrar that authenticates new contacts
    /// only: the woken iPhone is never challenged.
    #[serde(rename = "trust-refresh")]
    TrustRefresh,
    /// A capability query (RFC 8599 §4.1.5: `pn-provider`, no `pn-prid`) is registered like any
    /// contact: its 2xx says nothing of the push services the gateway serves.
    #[serde(rename = "ignore-capability-query")]
    IgnoreCapabilityQuery,
    /// A capability query for any provider is answered with that provider in `+sip.pns`, as if
    /// the gateway could push through it (an APNs-only gateway claiming FCM).
    #[serde(rename = "claim-any-pns")]
    ClaimAnyPns,
    /// Responses from the iPhone go upstream with their Contact replaced by the registered
    /// contact, `pn-prid` and all: the caller learns Alice's device token.
    #[serde(rename = "leak-push-params")]
    LeakPushParams,
    /// Design `tsilo`: the INVITE goes at once to the contacts the AOR had, but the woken
    /// device's new registration never gets it (a Kamailio config whose `ts_append` is missing
    /// from the REGISTER route, or that looks the transaction up under another key). Only a
    /// device that kept its old socket would ever hear the call.
    #[serde(rename = "no-hand-over")]
    NoHandOver,
    /// The bucket is released only by a REGISTER whose Contact URI is the pushed binding's, host
    /// and port included, instead of matching the `pn-*` parameters (RFC 8599 §5.3; OpenSIPS
    /// `pn_ct_match_params`): a woken app, relaunched on a new port, never gets the INVITE.
    #[serde(rename = "contact-uri-match")]
    ContactUriMatch,
    /// Timing only: the awake contacts of a fork that also has a push-bound one get the INVITE
    /// only once the pushed device has registered (or its push failed, or the Bucket Timer
    /// fired), instead of at once. A bucket design that holds the whole fork until the woken
    /// phone registers (the second gateway tried in issue 21): the desktop rings up to seconds
    /// late, and cannot answer while the iPhone wakes.
    #[serde(rename = "ring-awake-after-wake")]
    RingAwakeAfterWake,
    /// Timing only: a CANCEL that arrives while the pushed device is still waking ends the call
    /// for the devices at once, but the caller's 487 waits for the Bucket Timer (the late 487 of
    /// OpenSIPS #1128, where it came after `fr_inv_timer`).
    #[serde(rename = "late-487")]
    Late487,
    /// Timing only: the same bounded retries of a 429/5xx from APNs, but the first wait is 1 s
    /// (then 2 s) instead of 100 ms: a gateway that backs off as if APNs were a bulk API, so the
    /// push that finally gets through comes seconds late, when the caller may have given up.
    #[serde(rename = "slow-retry")]
    SlowRetry,
    /// Timing only: a push APNs refused for good (400, 403, 410) leaves the request waiting in
    /// the bucket until the Bucket Timer fires, instead of failing it at once: the caller hears
    /// ringback for seconds for a device that cannot be woken.
    #[serde(rename = "hold-refused-push")]
    HoldRefusedPush,
}

impl Fault {
    /// Every fault, in the order of the matrix.
    pub const ALL: [Fault; 23] = [
        Fault::NonzeroExpiration,
        Fault::AlertPushType,
        Fault::NoVoipSuffix,
        Fault::Priority5,
        Fault::NoReplayOnRegister,
        Fault::ReplayCancelledCall,
        Fault::Ignore410,
        Fault::NoBucketTimer,
        Fault::NoCallIdInPayload,
        Fault::MessageAsVoip,
        Fault::PushAfterCancel,
        Fault::StaleBindings,
        Fault::FirstPridToken,
        Fault::TrustRefresh,
        Fault::IgnoreCapabilityQuery,
        Fault::ClaimAnyPns,
        Fault::LeakPushParams,
        Fault::NoHandOver,
        Fault::ContactUriMatch,
        Fault::RingAwakeAfterWake,
        Fault::Late487,
        Fault::SlowRetry,
        Fault::HoldRefusedPush,
    ];

    /// The name used in configuration files and in the matrix.
    pub fn name(self) -> &'static str {
        match self {
            Fault::NonzeroExpiration => "nonzero-expiration",
            Fault::AlertPushType => "alert-push-type",
            Fault::NoVoipSuffix => "no-voip-suffix",
            Fault::Priority5 => "priority-5",
            Fault::NoReplayOnRegister => "no-replay-on-register",
            Fault::ReplayCancelledCall => "replay-cancelled-call",
            Fault::Ignore410 => "ignore-410",
            Fault::NoBucketTimer => "no-bucket-timer",
            Fault::NoCallIdInPayload => "no-call-id-in-payload",
            Fault::MessageAsVoip => "message-as-voip",
            Fault::PushAfterCancel => "push-after-cancel",
            Fault::StaleBindings => "stale-bindings",
            Fault::FirstPridToken => "first-prid-token",
            Fault::TrustRefresh => "trust-refresh",
            Fault::IgnoreCapabilityQuery => "ignore-capability-query",
            Fault::ClaimAnyPns => "claim-any-pns",
            Fault::LeakPushParams => "leak-push-params",
            Fault::NoHandOver => "no-hand-over",
            Fault::ContactUriMatch => "contact-uri-match",
            Fault::RingAwakeAfterWake => "ring-awake-after-wake",
            Fault::Late487 => "late-487",
            Fault::SlowRetry => "slow-retry",
            Fault::HoldRefusedPush => "hold-refused-push",
        }
    }

    /// The gateway design this fault is a mistake of (the matrix runs it in that design).
    pub fn design(self) -> Design {
        match self {
            Fault::NoHandOver => Design::Tsilo,
            _ => Design::Bucket,
        }
    }

    /// The fault with this name.
    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The requirement ids the suite must report failed, and only those, when this fault is the
    /// only one switched on and the gateway runs `profile`.
    pub fn breaks(self, profile: CancelPolicy) -> Vec<&'static str> {
        const WAKE_CHAIN: [&str; 8] = [
            "SIP-A14", "SIP-B1", "SIP-B2", "SIP-B4", "SIP-C6", "SIP-D1", "SIP-F1", "SIP-F2",
        ];
        let mut ids: Vec<&'static str> = match self {
            Fault::NonzeroExpiration => vec!["APNS-4", "SIP-E3"],
            Fault::AlertPushType => [
                &[
                    "APNS-1", "APNS-2", "IOS-1", "SIP-C2", "SIP-D2", "SIP-E2", "SIP-E4",
                ][..],
                &WAKE_CHAIN[..],
            ]
            .concat(),
            Fault::NoVoipSuffix => [
                &[
                    "APNS-2", "IOS-1", "SIP-C2", "SIP-D2", "SIP-E1", "SIP-E2", "SIP-E4",
                ][..],
                &WAKE_CHAIN[..],
            ]
            .concat(),
            Fault::Priority5 => vec!["APNS-3"],
            Fault::NoReplayOnRegister | Fault::NoHandOver | Fault::ContactUriMatch => {
                let mut ids = WAKE_CHAIN.to_vec();
                if profile == CancelPolicy::FlexisipReplay {
                    ids.extend(["SIP-C2", "SIP-D2", "SIP-E4"]);
                }
                ids
            }
            Fault::ReplayCancelledCall => vec!["SIP-C2", "SIP-C6", "SIP-D2", "SIP-E4"],
            Fault::Ignore410 => vec!["SIP-E1"],
            Fault::NoBucketTimer => vec!["SIP-C5", "SIP-E3"],
            Fault::NoCallIdInPayload => vec![
                "APNS-5", "IOS-1", "IOS-3", "SIP-C2", "SIP-D1", "SIP-D2", "SIP-E4",
            ],
            Fault::MessageAsVoip => vec!["APNS-6", "IOS-2", "IOS-3"],
            Fault::PushAfterCancel => vec!["SIP-C1"],
            Fault::StaleBindings => vec!["SIP-E5"],
            Fault::FirstPridToken => vec!["SIP-A12"],
            Fault::TrustRefresh => vec!["SIP-B4"],
            Fault::IgnoreCapabilityQuery | Fault::ClaimAnyPns => vec!["SIP-A3"],
            Fault::LeakPushParams => vec!["SIP-A14"],
            Fault::RingAwakeAfterWake => vec!["SIP-D2", "SIP-F2"],
            Fault::Late487 => vec!["IOS-3", "SIP-C1", "SIP-C2", "SIP-E4"],
            Fault::SlowRetry => vec!["SIP-E2"],
            Fault::HoldRefusedPush => vec!["SIP-E1"],
        };
        ids.sort_unstable();
        ids
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The faults switched on (none by default: the gateway behaves correctly).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Faults(BTreeSet<Fault>);

impl Faults {
    /// No fault.
    pub fn none() -> Self {
        Faults::default()
    }

    /// Exactly this fault.
    pub fn only(fault: Fault) -> Self {
        Faults(BTreeSet::from([fault]))
    }

    /// Whether `fault` is on.
    pub fn has(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }

    /// Switches `fault` on.
    pub fn insert(&mut self, fault: Fault) {
        self.0.insert(fault);
    }

    /// The faults that are on.
    pub fn iter(&self) -> impl Iterator<Item = Fault> + '_ {
        self.0.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn names_round_trip_through_serde_and_from_name() {
        for f in Fault::ALL {
            assert_eq!(Fault::from_name(f.name()), Some(f));
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{}\"", f.name()));
        }
        let faults: Faults = serde_json::from_str(r#"["ignore-410","priority-5"]"#).unwrap();
        assert!(faults.has(Fault::Ignore410) && faults.has(Fault::Priority5));
        assert!(!faults.has(Fault::NoBucketTimer));
        assert!(serde_json::from_str::<Faults>(r#"["nonsense"]"#).is_err());
    }

    /// Reads the fault-matrix table of features/REQUIREMENTS.md: fault name → (ids, other-profile note).
    fn matrix_in_requirements() -> BTreeMap<String, (Vec<String>, String)> {
        let text = include_str!("../../features/REQUIREMENTS.md");
        let start = text
            .find("## Fault matrix")
            .expect("a fault matrix section");
        let mut rows = BTreeMap::new();
        for line in text[start..].lines().skip_while(|l| !l.starts_with('|')) {
            if !line.starts_with('|') {
                break;
            }
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`');
            if Fault::from_name(name).is_none() {
                continue; // header and separator rows
            }
            let ids = cells[3].split(',').map(|s| s.trim().to_owned()).collect();
            rows.insert(name.to_owned(), (ids, cells[4].to_owned()));
        }
        rows
    }

    #[test]
    fn the_matrix_in_code_is_the_matrix_in_requirements_md() {
        let doc = matrix_in_requirements();
        assert_eq!(doc.len(), Fault::ALL.len(), "one row per fault: {doc:?}");
        for f in Fault::ALL {
            let (ids, others) = &doc[f.name()];
            let mut ids = ids.clone();
            ids.sort();
            assert_eq!(
                ids,
                f.breaks(CancelPolicy::FlexisipReplay),
                "{f}: REQUIREMENTS.md and Fault::breaks disagree (flexisip-replay)"
            );
            for p in [CancelPolicy::Rfc8599Drop, CancelPolicy::CancelPush] {
                let differs = f.breaks(p) != f.breaks(CancelPolicy::FlexisipReplay);
                assert_eq!(
                    differs,
                    others != "same",
                    "{f}: the other-profiles column says {others:?} for {p}"
                );
                if differs {
                    for id in f.breaks(CancelPolicy::FlexisipReplay) {
                        if !f.breaks(p).contains(&id) {
                            assert!(others.contains(id), "{f}/{p}: {id} not mentioned");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_fault_breaks_something_and_ids_exist_in_the_catalogue() {
        let text = include_str!("../../features/REQUIREMENTS.md");
        for f in Fault::ALL {
            for p in CancelPolicy::ALL {
                let ids = f.breaks(p);
                assert!(!ids.is_empty(), "{f} breaks nothing in {p}");
                for id in ids {
                    assert!(
                        text.contains(&format!("| {id} |")),
                        "{id} has no row in REQUIREMENTS.md"
                    );
                }
            }
        }
    }
}
