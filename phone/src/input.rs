//! What happens to the phone: pushes delivered by APNs, its account's signalling, the user's taps,
//! and what the bench knows about the caller. The driver turns each into an [`Input`].

use crate::payload::CancelReason;
use std::fmt;
use std::time::Instant;

/// The `apns-push-type` of a delivered push, as iOS dispatches it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PushType {
    /// PushKit VoIP push: the app must report a CallKit call.
    Voip,
    /// A user-visible notification (handled by a notification service extension).
    Alert,
    /// A silent background push.
    Background,
    /// Any other type (complication, fileprovider, …): no CallKit, no alert.
    Other(String),
}

impl PushType {
    /// Reads an `apns-push-type` header value (case-insensitive).
    pub fn from_header(value: &str) -> Self {
        match value.to_ascii_lowercase().as_str() {
            "voip" => PushType::Voip,
            "alert" => PushType::Alert,
            "background" => PushType::Background,
            other => PushType::Other(other.to_owned()),
        }
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        match self {
            PushType::Voip => "voip",
            PushType::Alert => "alert",
            PushType::Background => "background",
            PushType::Other(s) => s,
        }
    }
}

impl fmt::Display for PushType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A push as APNs delivers it to the device (the delivery time is the `now` of
/// [`crate::Iphone::handle`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveredPush {
    /// `apns-push-type`.
    pub push_type: PushType,
    /// `apns-topic` (`<bundle>.voip` for VoIP).
    pub topic: String,
    /// `apns-id` of the request that carried it.
    pub apns_id: String,
    /// `apns-priority` (10 immediate, 5 power-considerate, 1 low).
    pub priority: u8,
    /// `apns-expiration`, Unix seconds; 0 means "deliver once, do not store".
    pub expiration: u64,
    /// `apns-collapse-id`, if any.
    pub collapse_id: Option<String>,
    /// The JSON payload bytes.
    pub payload: Vec<u8>,
}

impl DeliveredPush {
    /// A VoIP push with the usual headers (priority 10, expiration 0) and the given payload.
    pub fn voip(topic: impl Into<String>, apns_id: impl Into<String>, payload: Vec<u8>) -> Self {
        DeliveredPush {
            push_type: PushType::Voip,
            topic: topic.into(),
            apns_id: apns_id.into(),
            priority: 10,
            expiration: 0,
            collapse_id: None,
            payload,
        }
    }

    /// The same push with another push type.
    pub fn with_type(mut self, push_type: PushType) -> Self {
        self.push_type = push_type;
        self
    }
}

/// One thing that happened to the phone. Each is applied at an explicit `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// APNs delivered a push.
    Push(DeliveredPush),
    /// The account received a call offer (SIP INVITE, XMPP JMI propose + session-initiate).
    Offer {
        /// SIP Call-ID (or JMI id).
        call_id: String,
        /// The caller's URI.
        caller: String,
    },
    /// The offer was cancelled (SIP CANCEL, XMPP retract), with the `Reason` it carried.
    Cancel {
        /// The call.
        call_id: String,
        /// Why: hang-up, answered elsewhere, declined elsewhere.
        reason: CancelReason,
    },
    /// The remote party ended an established call (SIP BYE).
    RemoteBye {
        /// The call.
        call_id: String,
    },
    /// The account's registration (REGISTER 2xx / stream resumed) succeeded or failed.
    Registered {
        /// True on success.
        ok: bool,
    },
    /// The user tapped Answer; `None` means the call on screen (the latest ringing one).
    Answer {
        /// Which call.
        call_id: Option<String>,
    },
    /// The user tapped Decline; `None` means the call on screen.
    Decline {
        /// Which call.
        call_id: Option<String>,
    },
    /// The user hung up an established call; `None` means the current one.
    HangUp {
        /// Which call.
        call_id: Option<String>,
    },
    /// Bench knowledge, not something the phone sees: the caller's side of this call ended at
    /// `at`. Used only to classify ghost calls.
    CallerEnded {
        /// The call.
        call_id: String,
        /// When it ended at the caller.
        at: Instant,
    },
    /// Time passed: fire due timers.
    Tick,
}
