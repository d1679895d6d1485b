//! Behaviour profiles: the answers a gateway may give where the standards allow two (see
//! `features/REQUIREMENTS.md`, "Profiles and capabilities").

use serde::{Deserialize, Serialize};
use std::fmt;

/// What the gateway does with a call cancelled after its VoIP push went out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Profile {
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

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 3] = [
        Profile::Rfc8599Drop,
        Profile::FlexisipReplay,
        Profile::CancelPush,
    ];

    /// The name used in target files and `@profile:` tags.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Rfc8599Drop => "rfc8599-drop",
            Profile::FlexisipReplay => "flexisip-replay",
            Profile::CancelPush => "cancel-push",
        }
    }

    /// The profile with this name.
    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
