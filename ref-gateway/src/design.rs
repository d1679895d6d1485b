//! How the gateway reaches a device that registered with push parameters: the shapes the common
//! push gateways are built in. The fault matrix runs the suite against each design, correct and
//! with the faults of that design ([`crate::Fault::design`]).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The gateway's design for push-bound bindings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Design {
    /// RFC 8599 §5.6.2, Flexisip-like: the INVITE waits in the bucket, the device is pushed, and
    /// the REGISTER whose `pn-*` parameters match (§5.3, as OpenSIPS matches contacts with
    /// `pn_ct_match_params`) releases it to the new flow.
    #[default]
    Bucket,
    /// Kamailio tsilo-like (`ts_store` + `ts_append`): the INVITE is relayed at once to every
    /// contact the AOR has, the stale ones of push-bound devices included, the device is pushed,
    /// and the REGISTER of the woken device gets the INVITE as a new branch (the hand-over).
    Tsilo,
}

impl Design {
    /// Every design, in the order of the matrix.
    pub const ALL: [Design; 2] = [Design::Bucket, Design::Tsilo];

    /// The name used in configuration files and in the matrix.
    pub fn name(self) -> &'static str {
        match self {
            Design::Bucket => "bucket",
            Design::Tsilo => "tsilo",
        }
    }
}

impl fmt::Display for Design {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde() {
        for d in Design::ALL {
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.name()));
            assert_eq!(serde_json::from_str::<Design>(&json).unwrap(), d);
        }
    }
}
