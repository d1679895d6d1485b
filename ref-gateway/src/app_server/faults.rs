//! The app server's fault switches: each a real mistake XEP-0357 app servers make, and the XMPP
//! requirement ids (`features/REQUIREMENTS.md`, section "XMPP") the suite must report failed when it
//! is the only one on. Data, like [`crate::faults::Fault::breaks`] on the SIP side.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// One switchable mistake of the app server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AppFault {
    /// A message publish goes out as a VoIP push (the pre-iOS 13 habit that now gets the app
    /// killed: no CallKit call can be reported for it).
    #[serde(rename = "message-as-voip")]
    MessageAsVoip,
    /// A call goes out as an `alert` push on the app topic (fpush / mod_push_appserver style):
    /// the phone shows a banner instead of ringing.
    #[serde(rename = "call-as-alert")]
    CallAsAlert,
    /// Call pushes carry `apns-expiration` = now + 90 s: APNs stores them and a phone back from
    /// flight mode rings for a call long gone.
    #[serde(rename = "nonzero-expiration")]
    NonzeroExpiration,
    /// A 410 from APNs is answered with success and the registration kept: the server never
    /// learns the device is gone and keeps publishing.
    #[serde(rename = "ignore-410")]
    Ignore410,
    /// JMI retract/reject/proceed publishes are acked and dropped: no "call ended" push, the
    /// phone rings on until it reconnects or times out.
    #[serde(rename = "no-cancel-handling")]
    NoCancelHandling,
}

impl AppFault {
    /// Every fault, in the order of the matrix.
    pub const ALL: [AppFault; 5] = [
        AppFault::MessageAsVoip,
        AppFault::CallAsAlert,
        AppFault::NonzeroExpiration,
        AppFault::Ignore410,
        AppFault::NoCancelHandling,
    ];

    /// The name used in configuration files and in the matrix.
    pub fn name(self) -> &'static str {
        match self {
            AppFault::MessageAsVoip => "message-as-voip",
            AppFault::CallAsAlert => "call-as-alert",
            AppFault::NonzeroExpiration => "nonzero-expiration",
            AppFault::Ignore410 => "ignore-410",
            AppFault::NoCancelHandling => "no-cancel-handling",
        }
    }

    /// The fault with this name.
    pub fn from_name(name: &str) -> Option<AppFault> {
        AppFault::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The XMPP requirement ids the suite must report failed, and only those, when this fault is
    /// the only one switched on (sorted).
    pub fn breaks(self) -> Vec<&'static str> {
        let mut ids = match self {
            AppFault::MessageAsVoip => vec!["XMPP-1", "XMPP-5", "XMPP-9"],
            // XMPP-4 too: its scenario checks that the call went out as the VoIP push APNs
            // must drop in flight mode; an alert instead is no call push at all.
            AppFault::CallAsAlert => vec!["XMPP-2", "XMPP-3", "XMPP-4", "XMPP-6", "XMPP-7"],
            AppFault::NonzeroExpiration => vec!["XMPP-2", "XMPP-4"],
            AppFault::Ignore410 => vec!["XMPP-8"],
            AppFault::NoCancelHandling => vec!["XMPP-3", "XMPP-6"],
        };
        ids.sort_unstable();
        ids
    }
}

impl fmt::Display for AppFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The app-server faults switched on (none by default).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppFaults(BTreeSet<AppFault>);

impl AppFaults {
    /// No fault.
    pub fn none() -> Self {
        AppFaults::default()
    }

    /// Exactly this fault.
    pub fn only(fault: AppFault) -> Self {
        AppFaults(BTreeSet::from([fault]))
    }

    /// Switches `fault` on.
    pub fn insert(&mut self, fault: AppFault) {
        self.0.insert(fault);
    }

    /// Whether `fault` is on.
    pub fn has(&self, fault: AppFault) -> bool {
        self.0.contains(&fault)
    }

    /// The SIP-side push faults that build the same wrong push (the push builder is shared).
    pub fn push_builder_faults(&self) -> crate::faults::Faults {
        use crate::faults::Fault;
        let mut f = crate::faults::Faults::none();
        for (ours, theirs) in [
            (AppFault::MessageAsVoip, Fault::MessageAsVoip),
            (AppFault::CallAsAlert, Fault::AlertPushType),
            (AppFault::NonzeroExpiration, Fault::NonzeroExpiration),
        ] {
            if self.has(ours) {
                f.insert(theirs);
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_every_fault_breaks_something() {
        for f in AppFault::ALL {
            assert_eq!(AppFault::from_name(f.name()), Some(f));
            assert_eq!(
                serde_json::to_string(&f).unwrap(),
                format!("\"{}\"", f.name())
            );
            assert!(!f.breaks().is_empty(), "{f} breaks nothing");
        }
        assert!(serde_json::from_str::<AppFaults>(r#"["nonsense"]"#).is_err());
    }

    /// The "XMPP fault matrix" table of features/REQUIREMENTS.md says the same as `breaks`.
    #[test]
    fn breaks_matches_the_matrix_in_requirements() {
        let text = include_str!("../../../features/REQUIREMENTS.md");
        let start = text
            .find("### XMPP fault matrix")
            .expect("an XMPP fault matrix section");
        let mut seen = BTreeSet::new();
        for line in text[start..].lines().skip_while(|l| !l.starts_with('|')) {
            if !line.starts_with('|') {
                break;
            }
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let Some(f) = AppFault::from_name(cells[1].trim_matches('`')) else {
                continue; // header and separator
            };
            let ids: Vec<&str> = cells[3].split(',').map(str::trim).collect();
            assert_eq!(ids, f.breaks(), "{f}");
            seen.insert(f);
        }
        assert_eq!(seen.len(), AppFault::ALL.len(), "every fault has a row");
    }

    #[test]
    fn push_faults_map_onto_the_shared_builder() {
        use crate::faults::Fault;
        let f = AppFaults::only(AppFault::CallAsAlert).push_builder_faults();
        assert!(f.has(Fault::AlertPushType) && !f.has(Fault::MessageAsVoip));
        assert_eq!(
            AppFaults::only(AppFault::Ignore410)
                .push_builder_faults()
                .iter()
                .count(),
            0
        );
    }
}
