//! What the phone model asks its driver to do: CallKit calls, the account's signalling, notifications.

use crate::input::PushType;
use std::fmt;
use uuid::Uuid;

/// Why a CallKit call ended: Apple's `CXCallEndedReason` values, plus the two ends the user causes
/// with a `CXEndCallAction` (declining a ringing call, hanging up an established one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// `.failed`: the call could not be set up (no offer within the grace period, stale push).
    Failed,
    /// `.remoteEnded`: the caller hung up.
    RemoteEnded,
    /// `.unanswered`: nobody answered before the app's ring timeout.
    Unanswered,
    /// `.answeredElsewhere`: another device answered.
    AnsweredElsewhere,
    /// `.declinedElsewhere`: another device declined.
    DeclinedElsewhere,
    /// The user tapped Decline.
    Declined,
    /// The user hung up an established call.
    HungUp,
}

impl EndReason {
    /// The name as CallKit spells it (`remoteEnded`), or `declined` / `hungUp` for user ends.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Failed => "failed",
            EndReason::RemoteEnded => "remoteEnded",
            EndReason::Unanswered => "unanswered",
            EndReason::AnsweredElsewhere => "answeredElsewhere",
            EndReason::DeclinedElsewhere => "declinedElsewhere",
            EndReason::Declined => "declined",
            EndReason::HungUp => "hungUp",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SIP status the account uses to reject an offer the user declined.
pub const STATUS_DECLINE: u16 = 603;
/// SIP status the account uses to reject an offer for a call that already ended on the phone.
pub const STATUS_GONE: u16 = 480;

/// An instruction for the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `CXProvider.reportNewIncomingCall`: the phone starts ringing.
    ReportIncomingCall {
        /// CallKit's id of the call.
        uuid: Uuid,
        /// The call's id from the payload or the offer; `None` for a bogus call.
        call_id: Option<String>,
        /// The caller, if known.
        caller: Option<String>,
    },
    /// Wake the account: REGISTER (SIP) or resume the stream (XMPP).
    WakeAccount {
        /// Open a new connection rather than reuse the old one (what a woken iPhone does).
        new_connection: bool,
    },
    /// Answer the offer (SIP 200 OK).
    Answer {
        /// The call.
        call_id: String,
    },
    /// Reject the offer with this status (603 declined, 480 already ended here).
    Reject {
        /// The call.
        call_id: String,
        /// SIP status.
        status: u16,
    },
    /// End an established call (SIP BYE).
    HangUp {
        /// The call.
        call_id: String,
    },
    /// The CallKit call ends (`reportCall(with:endedAt:reason:)` or a user's end action).
    EndCall {
        /// CallKit's id.
        uuid: Uuid,
        /// The call's id, if any.
        call_id: Option<String>,
        /// Why.
        reason: EndReason,
    },
    /// A notification service extension shows (or silently handles) a non-VoIP push.
    ShowNotification {
        /// The push's apns-id.
        apns_id: String,
        /// Its push type.
        push_type: PushType,
        /// The text shown, `None` for a silent push.
        text: Option<String>,
    },
    /// iOS killed the app: the driver drops the account's connection.
    AppTerminated {
        /// Why, in words.
        reason: String,
    },
}
