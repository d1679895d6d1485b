//! What the app server sends for each kind of publish, where deployments legitimately differ
//! (configured, not a fault): alert or background push for messages, whether the real body may
//! leave the server, and what a call that ended elsewhere becomes.

use serde::{Deserialize, Serialize};

/// The push for a message publish.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessagePush {
    /// A user-visible `alert` push (priority 10) to the alert token.
    #[default]
    Alert,
    /// A silent `background` push (`content-available`, priority 5) to the alert token.
    Background,
    /// No push at all.
    None,
}

/// The push for a JMI retract / proceed / reject / finish of a call that was pushed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallEndPush {
    /// A VoIP "call ended" push (payload `kind: "cancel"`): the phone ends the CallKit call
    /// without reconnecting.
    #[default]
    CancelPush,
    /// Nothing: the phone learns it on reconnect (smacks resume or MAM catch-up).
    Nothing,
}

/// The app server's policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Messages.
    pub message: MessagePush,
    /// Put the server's `last-message-body` into the alert (else `generic_text`).
    pub message_body: bool,
    /// The alert text when the body is not sent.
    pub generic_text: String,
    /// Calls that ended.
    pub call_end: CallEndPush,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            message: MessagePush::Alert,
            message_body: false,
            generic_text: "New message".into(),
            call_end: CallEndPush::CancelPush,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_from_toml_with_defaults() {
        let p: Policy = toml::from_str("message = \"background\"").unwrap();
        assert_eq!(p.message, MessagePush::Background);
        assert_eq!(p.call_end, CallEndPush::CancelPush);
        assert!(!p.message_body);
        assert!(toml::from_str::<Policy>("messages = \"alert\"").is_err());
    }
}
