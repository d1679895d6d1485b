//! Apple's rejection reasons: the `{"reason": …}` strings of the APNs provider API and their statuses.

use serde::{Deserialize, Serialize};

macro_rules! reasons {
    ($($name:ident = $status:literal),* $(,)?) => {
        /// A reason APNs gives in an error response body or a GOAWAY's debug data.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Reason {
            $(
                #[doc = concat!("`", stringify!($name), "` (", stringify!($status), ")")]
                $name,
            )*
        }

        impl Reason {
            /// Every reason, in Apple's table order.
            pub const ALL: &'static [Reason] = &[$(Reason::$name),*];

            /// The HTTP status APNs answers this reason with.
            pub fn status(self) -> u16 {
                match self {
                    $(Reason::$name => $status,)*
                }
            }

            /// The exact string in `{"reason": …}`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => stringify!($name),)*
                }
            }

            /// Parses the exact string, as found in a response body.
            pub fn from_name(name: &str) -> Option<Reason> {
                match name {
                    $(stringify!($name) => Some(Reason::$name),)*
                    _ => None,
                }
            }
        }
    };
}

reasons! {
    BadCollapseId = 400,
    BadDeviceToken = 400,
    BadExpirationDate = 400,
    BadMessageId = 400,
    BadPriority = 400,
    BadTopic = 400,
    DeviceTokenNotForTopic = 400,
    DuplicateHeaders = 400,
    IdleTimeout = 400,
    InvalidPushType = 400,
    MissingDeviceToken = 400,
    MissingTopic = 400,
    PayloadEmpty = 400,
    TopicDisallowed = 400,
    BadCertificate = 403,
    BadCertificateEnvironment = 403,
    ExpiredProviderToken = 403,
    Forbidden = 403,
    InvalidProviderToken = 403,
    MissingProviderToken = 403,
    UnrelatedKeyIdInToken = 403,
    BadEnvironmentKeyIdInToken = 403,
    BadPath = 404,
    MethodNotAllowed = 405,
    ExpiredToken = 410,
    Unregistered = 410,
    PayloadTooLarge = 413,
    TooManyProviderTokenUpdates = 429,
    TooManyRequests = 429,
    InternalServerError = 500,
    ServiceUnavailable = 503,
    Shutdown = 503,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status(), self.as_str())
    }
}

/// The JSON body of an error response: `{"reason":"…"}`, plus `"timestamp"` (ms) for 410.
pub fn error_body(reason: &str, timestamp_ms: Option<u64>) -> Vec<u8> {
    match timestamp_ms {
        Some(ts) => serde_json::to_vec(&serde_json::json!({ "reason": reason, "timestamp": ts })),
        None => serde_json::to_vec(&serde_json::json!({ "reason": reason })),
    }
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_statuses_follow_apples_table() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_name(r.as_str()), Some(*r));
        }
        assert_eq!(Reason::PayloadTooLarge.status(), 413);
        assert_eq!(Reason::Unregistered.status(), 410);
        assert_eq!(Reason::TooManyProviderTokenUpdates.status(), 429);
        assert_eq!(Reason::BadPath.status(), 404);
        assert_eq!(Reason::Shutdown.status(), 503);
        assert_eq!(Reason::from_name("NoSuchReason"), None);
    }

    #[test]
    fn error_body_is_apples_json() {
        assert_eq!(
            error_body("BadDeviceToken", None),
            br#"{"reason":"BadDeviceToken"}"#
        );
        let v: serde_json::Value =
            serde_json::from_slice(&error_body("Unregistered", Some(1508249865488))).unwrap();
        assert_eq!(v["timestamp"], 1508249865488u64);
    }
}
