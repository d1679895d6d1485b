//! What the user saw, with times: the facts the Gherkin "Then" steps check.

use crate::action::EndReason;
use crate::input::PushType;
use std::time::Instant;

/// One thing the user saw (or that happened to the app), in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The phone rang for this call from `from` to `to` (ringing stops on answer, decline or end).
    Rang {
        /// The call (`None` for a bogus call).
        call_id: Option<String>,
        /// Ringing started.
        from: Instant,
        /// Ringing stopped.
        to: Instant,
    },
    /// The call was answered and connected (the answer went out) at `at`.
    Answered {
        /// The call.
        call_id: String,
        /// When the answer went out.
        at: Instant,
    },
    /// The user tapped Answer but the call never connected (CallKit ended it with `.failed`).
    AnswerFailed {
        /// The call.
        call_id: String,
        /// When it ended.
        at: Instant,
    },
    /// A missed call shows in Recents.
    Missed {
        /// The call.
        call_id: String,
        /// When it ended.
        at: Instant,
        /// The CallKit end reason.
        reason: EndReason,
    },
    /// The user declined.
    Declined {
        /// The call.
        call_id: String,
        /// When.
        at: Instant,
    },
    /// Another device answered; CallKit showed "answered elsewhere".
    AnsweredElsewhere {
        /// The call.
        call_id: String,
        /// When.
        at: Instant,
    },
    /// Another device declined.
    DeclinedElsewhere {
        /// The call.
        call_id: String,
        /// When.
        at: Instant,
    },
    /// An established call ended (BYE either way).
    CallEnded {
        /// The call.
        call_id: String,
        /// When.
        at: Instant,
        /// Remote (`remoteEnded`) or local (`hungUp`).
        reason: EndReason,
    },
    /// The phone rang for a call that had already ended at the caller.
    GhostCall {
        /// The call.
        call_id: String,
        /// Ringing started.
        from: Instant,
        /// Ringing stopped.
        to: Instant,
    },
    /// The phone rang for a push that carried no call (e.g. a message sent as a VoIP push).
    BogusCall {
        /// The push's apns-id.
        apns_id: String,
        /// When.
        at: Instant,
    },
    /// A notification service extension handled a non-VoIP push.
    Notification {
        /// The push's apns-id.
        apns_id: String,
        /// Its type.
        push_type: PushType,
        /// The text shown, `None` when silent.
        text: Option<String>,
        /// When.
        at: Instant,
    },
    /// iOS terminated the app.
    AppTerminated {
        /// When.
        at: Instant,
        /// Why.
        reason: String,
    },
    /// iOS stopped delivering VoIP pushes to the app.
    VoipCutOff {
        /// When.
        at: Instant,
    },
}

/// `+1234 ms` from `origin` (the scenario's start), or `at an unknown time` without one.
pub fn since(origin: Option<Instant>, t: Instant) -> String {
    match origin {
        Some(o) => format!("+{} ms", t.saturating_duration_since(o).as_millis()),
        None => "at an unknown time".into(),
    }
}

impl Outcome {
    /// One line for people: what the user saw and when, times in ms from `origin`.
    pub fn describe(&self, origin: Option<Instant>) -> String {
        let t = |i: &Instant| since(origin, *i);
        let call = |c: &Option<String>| match c {
            Some(c) => format!("call {c}"),
            None => "a call with no call id".to_owned(),
        };
        match self {
            Outcome::Rang { call_id, from, to } => {
                format!("rang for {} from {} to {}", call(call_id), t(from), t(to))
            }
            Outcome::Answered { call_id, at } => format!("answered call {call_id} at {}", t(at)),
            Outcome::AnswerFailed { call_id, at } => format!(
                "Answer tapped on call {call_id}, but it never connected (ended {})",
                t(at)
            ),
            Outcome::Missed {
                call_id,
                at,
                reason,
            } => format!("missed call {call_id} at {} ({})", t(at), reason.as_str()),
            Outcome::Declined { call_id, at } => format!("declined call {call_id} at {}", t(at)),
            Outcome::AnsweredElsewhere { call_id, at } => {
                format!("call {call_id} answered elsewhere at {}", t(at))
            }
            Outcome::DeclinedElsewhere { call_id, at } => {
                format!("call {call_id} declined elsewhere at {}", t(at))
            }
            Outcome::CallEnded {
                call_id,
                at,
                reason,
            } => format!("call {call_id} ended at {} ({})", t(at), reason.as_str()),
            Outcome::GhostCall { call_id, from, to } => format!(
                "rang for call {call_id} after the caller had hung up, from {} to {}",
                t(from),
                t(to)
            ),
            Outcome::BogusCall { apns_id, at } => format!(
                "rang for a VoIP push that carried no call (apns-id {apns_id}) at {}",
                t(at)
            ),
            Outcome::Notification {
                apns_id,
                push_type,
                text,
                at,
            } => format!(
                "{} notification{} (apns-id {apns_id}) at {}",
                push_type.as_str(),
                text.as_ref()
                    .map(|x| format!(" {x:?}"))
                    .unwrap_or_else(|| " (silent)".into()),
                t(at)
            ),
            Outcome::AppTerminated { at, reason } => {
                format!("iOS terminated the app at {}: {reason}", t(at))
            }
            Outcome::VoipCutOff { at } => {
                format!("iOS stopped delivering VoIP pushes at {}", t(at))
            }
        }
    }

    /// The call this outcome is about, if any.
    pub fn call_id(&self) -> Option<&str> {
        match self {
            Outcome::Rang { call_id, .. } => call_id.as_deref(),
            Outcome::Answered { call_id, .. }
            | Outcome::AnswerFailed { call_id, .. }
            | Outcome::Missed { call_id, .. }
            | Outcome::Declined { call_id, .. }
            | Outcome::AnsweredElsewhere { call_id, .. }
            | Outcome::DeclinedElsewhere { call_id, .. }
            | Outcome::CallEnded { call_id, .. }
            | Outcome::GhostCall { call_id, .. } => Some(call_id),
            _ => None,
        }
    }

    /// When it happened (for spans, when it ended).
    pub fn at(&self) -> Instant {
        match self {
            Outcome::Rang { to, .. } | Outcome::GhostCall { to, .. } => *to,
            Outcome::Answered { at, .. }
            | Outcome::AnswerFailed { at, .. }
            | Outcome::Missed { at, .. }
            | Outcome::Declined { at, .. }
            | Outcome::AnsweredElsewhere { at, .. }
            | Outcome::DeclinedElsewhere { at, .. }
            | Outcome::CallEnded { at, .. }
            | Outcome::BogusCall { at, .. }
            | Outcome::Notification { at, .. }
            | Outcome::AppTerminated { at, .. }
            | Outcome::VoipCutOff { at } => *at,
        }
    }
}
