//! The push payload contract between the reference gateway and the simulated iPhone.
//!
//! The reference gateway writes this JSON into every push it sends; the phone reads it. Names follow
//! Flexisip's PushKit payload where one exists (`call-id`, `send-time`, `from-uri`), so a phone
//! model that understands ours also understands a Flexisip-style push:
//!
//! ```json
//! {"aps":{}, "kind":"call", "call-id":"a84b4c76e66710", "from-uri":"sip:bob@example.com", "send-time":1700000000123}
//! ```
//!
//! | key | meaning |
//! |---|---|
//! | `aps` | Apple's dictionary; `{}` for VoIP pushes, an `alert` for notifications |
//! | `kind` | `"call"` (ring), `"cancel"` (the call ended at the caller), `"message"` (no call) |
//! | `call-id` | the SIP Call-ID (or XMPP JMI id) of the call; required for `call` and `cancel` |
//! | `from-uri` | the caller (read also as `caller`) |
//! | `send-time` | when the gateway sent the push, Unix time in milliseconds |
//! | `reason` | for `cancel`: `"caller-hung-up"`, `"answered-elsewhere"`, `"declined-elsewhere"` |
//!
//! Reading is tolerant: Flexisip puts `call-id` and `send-time` inside `aps`, and those places are read
//! too; a payload without `kind` but with a `call-id` is a call. Writing is exact ([`PushPayload::to_json`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a push asks the phone to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadKind {
    /// An incoming call: ring.
    Call,
    /// A call that ended at the caller before it was answered here.
    Cancel,
    /// A message or anything else that is not a call.
    Message,
}

/// Why a call ended elsewhere, as a SIP `Reason` header or a cancel push says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CancelReason {
    /// The caller hung up (plain CANCEL, no Reason).
    #[default]
    CallerHungUp,
    /// Another device answered (`Reason: SIP;cause=200;text="Call completed elsewhere"`).
    AnsweredElsewhere,
    /// Another device declined (`Reason: SIP;cause=600;text="Busy Everywhere"`, or 603).
    DeclinedElsewhere,
}

impl CancelReason {
    /// Reads a SIP `Reason` header value (RFC 3326), e.g. `SIP;cause=200;text="Call completed
    /// elsewhere"`. Anything unrecognised, or no header at all, is a plain caller hang-up.
    pub fn from_reason_header(value: Option<&str>) -> Self {
        let Some(value) = value else {
            return CancelReason::CallerHungUp;
        };
        let mut parts = value.split(';').map(str::trim);
        let protocol_is_sip = parts.next().is_some_and(|p| p.eq_ignore_ascii_case("SIP"));
        if !protocol_is_sip {
            return CancelReason::CallerHungUp;
        }
        let cause = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("cause"))
            .and_then(|(_, v)| v.trim().parse::<u16>().ok());
        match cause {
            Some(200) => CancelReason::AnsweredElsewhere,
            Some(600) | Some(603) => CancelReason::DeclinedElsewhere,
            _ => CancelReason::CallerHungUp,
        }
    }
}

/// The JSON payload of a push from the reference gateway. See the module docs for the format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushPayload {
    /// Apple's `aps` dictionary (`{}` for VoIP).
    #[serde(default = "empty_object")]
    pub aps: Value,
    /// Call, cancel or message.
    pub kind: PayloadKind,
    /// The call's id (SIP Call-ID), for calls and cancels.
    #[serde(rename = "call-id", skip_serializing_if = "Option::is_none", default)]
    pub call_id: Option<String>,
    /// The caller's URI.
    #[serde(
        rename = "from-uri",
        alias = "caller",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub caller: Option<String>,
    /// When the gateway sent the push, Unix milliseconds.
    #[serde(rename = "send-time", skip_serializing_if = "Option::is_none", default)]
    pub send_time_ms: Option<u64>,
    /// For a cancel: why the call ended.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<CancelReason>,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// Why a payload could not be read as a push of this contract.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    /// Not JSON at all.
    #[error("payload is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("payload is not a JSON object")]
    NotAnObject,
    /// `kind` is present but is not one of call/cancel/message.
    #[error("unknown payload kind {0:?}")]
    UnknownKind(String),
    /// A call or cancel without a `call-id`.
    #[error("{0:?} payload without a call-id")]
    MissingCallId(PayloadKind),
    /// A key the target's payload contract declares is not in the payload.
    #[error("no {key} at {pointer:?} (the target's [apns.payload] {key})")]
    MissingKey {
        /// The contract's key (`call_id`, `send_time`, `caller`).
        key: &'static str,
        /// The RFC 6901 pointer looked at.
        pointer: String,
    },
}

impl PushPayload {
    /// A call push.
    pub fn call(call_id: impl Into<String>, caller: impl Into<String>, send_time_ms: u64) -> Self {
        PushPayload {
            aps: empty_object(),
            kind: PayloadKind::Call,
            call_id: Some(call_id.into()),
            caller: Some(caller.into()),
            send_time_ms: Some(send_time_ms),
            reason: None,
        }
    }

    /// A "call ended" push.
    pub fn cancel(call_id: impl Into<String>, reason: CancelReason, send_time_ms: u64) -> Self {
        PushPayload {
            aps: empty_object(),
            kind: PayloadKind::Cancel,
            call_id: Some(call_id.into()),
            caller: None,
            send_time_ms: Some(send_time_ms),
            reason: Some(reason),
        }
    }

    /// A message notification (an alert push): `aps.alert` carries the text.
    pub fn message(alert: impl Into<String>, send_time_ms: u64) -> Self {
        let mut aps = Map::new();
        aps.insert("alert".into(), Value::String(alert.into()));
        PushPayload {
            aps: Value::Object(aps),
            kind: PayloadKind::Message,
            call_id: None,
            caller: None,
            send_time_ms: Some(send_time_ms),
            reason: None,
        }
    }

    /// The exact JSON bytes the gateway sends.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising a struct of strings, integers and a Value cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a payload tolerantly (see the module docs). Never panics.
    pub fn parse(bytes: &[u8]) -> Result<Self, PayloadError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| PayloadError::NotJson(e.to_string()))?;
        let Value::Object(obj) = value else {
            return Err(PayloadError::NotAnObject);
        };
        let aps = obj.get("aps").cloned().unwrap_or_else(empty_object);
        let aps_obj = aps.as_object();
        let field = |name: &str| {
            obj.get(name)
                .or_else(|| aps_obj.and_then(|a| a.get(name)))
                .cloned()
        };
        let text = |name: &str| field(name).and_then(|v| v.as_str().map(str::to_owned));
        let call_id = text("call-id").filter(|s| !s.is_empty());
        let caller = text("from-uri").or_else(|| text("caller"));
        let send_time_ms = field("send-time").and_then(|v| v.as_u64());
        let kind = match text("kind").as_deref() {
            Some("call") => PayloadKind::Call,
            Some("cancel") => PayloadKind::Cancel,
            Some("message") => PayloadKind::Message,
            Some(other) => return Err(PayloadError::UnknownKind(other.to_owned())),
            None if call_id.is_some() => PayloadKind::Call,
            None => PayloadKind::Message,
        };
        if kind != PayloadKind::Message && call_id.is_none() {
            return Err(PayloadError::MissingCallId(kind));
        }
        let reason = field("reason").and_then(|v| serde_json::from_value(v).ok());
        Ok(PushPayload {
            aps,
            kind,
            call_id,
            caller,
            send_time_ms,
            reason,
        })
    }

    /// The alert text a notification would show, if any (`aps.alert` as a string, or its `body`).
    pub fn alert_text(&self) -> Option<String> {
        match self.aps.get("alert")? {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o
                .get("body")
                .or_else(|| o.get("title"))
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_payload_round_trips_with_the_documented_names() {
        let p = PushPayload::call("abc@host", "sip:bob@example.com", 1_700_000_000_123);
        let json = String::from_utf8(p.to_json()).unwrap();
        assert_eq!(
            json,
            r#"{"aps":{},"kind":"call","call-id":"abc@host","from-uri":"sip:bob@example.com","send-time":1700000000123}"#
        );
        assert_eq!(PushPayload::parse(json.as_bytes()).unwrap(), p);
    }

    #[test]
    fn a_cancel_payload_carries_its_reason() {
        let p = PushPayload::cancel("c1", CancelReason::AnsweredElsewhere, 5);
        let json = String::from_utf8(p.to_json()).unwrap();
        assert!(json.contains(r#""reason":"answered-elsewhere""#), "{json}");
        assert_eq!(PushPayload::parse(json.as_bytes()).unwrap(), p);
    }

    #[test]
    fn flexisip_style_fields_inside_aps_are_read() {
        let raw = br#"{"aps":{"sound":"","call-id":"fx-1","send-time":42},"from-uri":"sip:bob@x"}"#;
        let p = PushPayload::parse(raw).unwrap();
        assert_eq!(p.kind, PayloadKind::Call);
        assert_eq!(p.call_id.as_deref(), Some("fx-1"));
        assert_eq!(p.send_time_ms, Some(42));
        assert_eq!(p.caller.as_deref(), Some("sip:bob@x"));
    }

    #[test]
    fn the_brief_caller_name_is_accepted() {
        let p = PushPayload::parse(br#"{"aps":{},"call-id":"x","caller":"sip:bob@y"}"#).unwrap();
        assert_eq!(p.caller.as_deref(), Some("sip:bob@y"));
    }

    #[test]
    fn bad_payloads_are_errors_not_panics() {
        assert!(matches!(
            PushPayload::parse(b"\xff\x00"),
            Err(PayloadError::NotJson(_))
        ));
        assert_eq!(PushPayload::parse(b"[1]"), Err(PayloadError::NotAnObject));
        assert_eq!(
            PushPayload::parse(br#"{"kind":"call"}"#),
            Err(PayloadError::MissingCallId(PayloadKind::Call))
        );
        assert_eq!(
            PushPayload::parse(br#"{"kind":"cancel","call-id":""}"#),
            Err(PayloadError::MissingCallId(PayloadKind::Cancel))
        );
        assert_eq!(
            PushPayload::parse(br#"{"kind":"dance","call-id":"x"}"#),
            Err(PayloadError::UnknownKind("dance".into()))
        );
        // A string send-time (as Flexisip formats it) is ignored, not fatal.
        let p = PushPayload::parse(br#"{"call-id":"x","send-time":"2024-01-01"}"#).unwrap();
        assert_eq!(p.send_time_ms, None);
    }

    #[test]
    fn a_payload_without_call_id_or_kind_is_a_message() {
        let p = PushPayload::parse(br#"{"aps":{"alert":{"title":"Bob","body":"hi"}}}"#).unwrap();
        assert_eq!(p.kind, PayloadKind::Message);
        assert_eq!(p.alert_text().as_deref(), Some("hi"));
        let m = PushPayload::message("New message", 1);
        assert_eq!(m.alert_text().as_deref(), Some("New message"));
    }

    #[test]
    fn reason_headers_map_to_callkit_reasons() {
        use CancelReason::*;
        assert_eq!(CancelReason::from_reason_header(None), CallerHungUp);
        assert_eq!(
            CancelReason::from_reason_header(Some(
                r#"SIP;cause=200;text="Call completed elsewhere""#
            )),
            AnsweredElsewhere
        );
        assert_eq!(
            CancelReason::from_reason_header(Some(r#"SIP ; cause=600 ;text="Busy Everywhere""#)),
            DeclinedElsewhere
        );
        assert_eq!(
            CancelReason::from_reason_header(Some("sip;cause=603")),
            DeclinedElsewhere
        );
        assert_eq!(
            CancelReason::from_reason_header(Some("Q.850;cause=16")),
            CallerHungUp
        );
        assert_eq!(
            CancelReason::from_reason_header(Some("SIP;cause=abc")),
            CallerHungUp
        );
    }
}
