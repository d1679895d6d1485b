//! The app's payload contract as the target declares it (`[apns.payload]` in the target file):
//! where, in the JSON of a push, the app finds the call's id, when the push was sent, the caller,
//! and the mark of a call-ended push, each as an RFC 6901 JSON pointer
//! (<https://www.rfc-editor.org/rfc/rfc6901>).
//!
//! The payload is the app's contract with its own gateway, not a standard: a vendor whose app
//! reads `{"aps":{},"call-id":"…","caller":"…"}` declares `call_id = "/call-id"`,
//! `caller = "/caller"` and no `send_time`, and the bench checks only that. The reference gateway's
//! contract is [`PayloadContract::reference`] (`phone::payload`).

use crate::payload::{CancelReason, PayloadError, PayloadKind, PushPayload};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A call-ended push: the value at `pointer` is `value`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelMark {
    /// RFC 6901 pointer (`/kind`).
    pub pointer: String,
    /// The string found there in a call-ended push (`cancel`).
    pub value: String,
}

/// The declared payload contract. See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadContract {
    /// Pointer to the call's id: the SIP Call-ID or the XMPP JMI id (required).
    pub call_id: String,
    /// Pointer to when the gateway sent the push, Unix milliseconds (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_time: Option<String>,
    /// Pointer to the caller (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// How a call-ended push is marked (optional: without it, no push ends a call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel: Option<CancelMark>,
}

impl Default for PayloadContract {
    fn default() -> Self {
        PayloadContract::reference()
    }
}

/// A JSON pointer that is not RFC 6901 (it must be empty or start with `/`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{key}: {pointer:?} is not an RFC 6901 JSON pointer (it must start with \"/\")")]
pub struct PointerError {
    /// The contract's key (`call_id`, `cancel.pointer`…).
    pub key: &'static str,
    /// What was declared.
    pub pointer: String,
}

fn text_at(json: &Value, pointer: &str) -> Option<String> {
    match json.pointer(pointer)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl PayloadContract {
    /// The reference gateway's contract (`phone::payload`): `/call-id`, `/send-time`,
    /// `/from-uri`, and `/kind` = `cancel` for call-ended pushes.
    pub fn reference() -> Self {
        PayloadContract {
            call_id: "/call-id".into(),
            send_time: Some("/send-time".into()),
            caller: Some("/from-uri".into()),
            cancel: Some(CancelMark {
                pointer: "/kind".into(),
                value: "cancel".into(),
            }),
        }
    }

    /// Checks that every declared pointer is an RFC 6901 pointer.
    pub fn validate(&self) -> Result<(), PointerError> {
        let check = |key: &'static str, p: &str| {
            if p.is_empty() || p.starts_with('/') {
                Ok(())
            } else {
                Err(PointerError {
                    key,
                    pointer: p.to_owned(),
                })
            }
        };
        check("call_id", &self.call_id)?;
        if let Some(p) = &self.send_time {
            check("send_time", p)?;
        }
        if let Some(p) = &self.caller {
            check("caller", p)?;
        }
        if let Some(c) = &self.cancel {
            check("cancel.pointer", &c.pointer)?;
        }
        Ok(())
    }

    fn object(bytes: &[u8]) -> Result<Value, PayloadError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| PayloadError::NotJson(e.to_string()))?;
        if !value.is_object() {
            return Err(PayloadError::NotAnObject);
        }
        Ok(value)
    }

    /// The call's id at the declared pointer, or [`PayloadError::MissingKey`] naming it.
    pub fn call_id_of(&self, bytes: &[u8]) -> Result<String, PayloadError> {
        let json = Self::object(bytes)?;
        text_at(&json, &self.call_id).ok_or_else(|| PayloadError::MissingKey {
            key: "call_id",
            pointer: self.call_id.clone(),
        })
    }

    /// The send time at the declared pointer: `Ok(None)` when the contract declares none,
    /// [`PayloadError::MissingKey`] when it does and the payload has no Unix-milliseconds number
    /// there.
    pub fn send_time_of(&self, bytes: &[u8]) -> Result<Option<u64>, PayloadError> {
        let Some(p) = &self.send_time else {
            return Ok(None);
        };
        let json = Self::object(bytes)?;
        json.pointer(p)
            .and_then(Value::as_u64)
            .map(Some)
            .ok_or_else(|| PayloadError::MissingKey {
                key: "send_time",
                pointer: p.clone(),
            })
    }

    /// The caller at the declared pointer: `Ok(None)` when the contract declares none.
    pub fn caller_of(&self, bytes: &[u8]) -> Result<Option<String>, PayloadError> {
        let Some(p) = &self.caller else {
            return Ok(None);
        };
        let json = Self::object(bytes)?;
        text_at(&json, p)
            .map(Some)
            .ok_or_else(|| PayloadError::MissingKey {
                key: "caller",
                pointer: p.clone(),
            })
    }

    /// Reads a push as the app does: a call-ended push when the cancel mark is there, a call when
    /// the call's id is there, else not a call (a message). A call-ended push without the call's
    /// id is [`PayloadError::MissingKey`]. Optional keys that are absent are `None`. Never panics.
    pub fn read(&self, bytes: &[u8]) -> Result<PushPayload, PayloadError> {
        let json = Self::object(bytes)?;
        let call_id = text_at(&json, &self.call_id);
        let cancelled = self
            .cancel
            .as_ref()
            .is_some_and(|c| json.pointer(&c.pointer).and_then(Value::as_str) == Some(&c.value));
        let kind = if cancelled {
            PayloadKind::Cancel
        } else if call_id.is_some() {
            PayloadKind::Call
        } else {
            PayloadKind::Message
        };
        if kind == PayloadKind::Cancel && call_id.is_none() {
            return Err(PayloadError::MissingKey {
                key: "call_id",
                pointer: self.call_id.clone(),
            });
        }
        let aps = json
            .get("aps")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        let reason = json
            .get("reason")
            .and_then(|v| serde_json::from_value::<CancelReason>(v.clone()).ok());
        Ok(PushPayload {
            aps,
            kind,
            call_id,
            caller: self.caller.as_deref().and_then(|p| text_at(&json, p)),
            send_time_ms: self
                .send_time
                .as_deref()
                .and_then(|p| json.pointer(p).and_then(Value::as_u64)),
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vendor() -> PayloadContract {
        PayloadContract {
            call_id: "/call-id".into(),
            send_time: None,
            caller: Some("/caller".into()),
            cancel: None,
        }
    }

    #[test]
    fn the_reference_contract_reads_what_the_reference_gateway_writes() {
        let c = PayloadContract::reference();
        let call = PushPayload::call("abc@host", "sip:bob@example.com", 42).to_json();
        assert_eq!(
            c.read(&call).unwrap(),
            PushPayload::parse(&call).unwrap(),
            "the same reading as the built-in parser"
        );
        let cancel = PushPayload::cancel("abc@host", CancelReason::AnsweredElsewhere, 43).to_json();
        let p = c.read(&cancel).unwrap();
        assert_eq!(p.kind, PayloadKind::Cancel);
        assert_eq!(p.reason, Some(CancelReason::AnsweredElsewhere));
        assert_eq!(c.send_time_of(&cancel).unwrap(), Some(43));
        let message = PushPayload::message("hi", 1).to_json();
        assert_eq!(c.read(&message).unwrap().kind, PayloadKind::Message);
    }

    #[test]
    fn a_vendor_contract_without_send_time_checks_only_what_it_declares() {
        let c = vendor();
        let raw = br#"{"aps":{},"call-id":"c-1","caller":"sip:bob@x"}"#;
        let p = c.read(raw).unwrap();
        assert_eq!(p.kind, PayloadKind::Call);
        assert_eq!(p.call_id.as_deref(), Some("c-1"));
        assert_eq!(p.caller.as_deref(), Some("sip:bob@x"));
        assert_eq!(c.send_time_of(raw).unwrap(), None);
        assert_eq!(c.call_id_of(raw).unwrap(), "c-1");
    }

    #[test]
    fn a_missing_key_names_its_pointer() {
        let c = vendor();
        let e = c
            .call_id_of(br#"{"aps":{},"caller":"sip:bob@x"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("/call-id"), "{e}");
        let e = PayloadContract::reference()
            .send_time_of(br#"{"call-id":"x"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("/send-time"), "{e}");
    }

    #[test]
    fn nested_pointers_and_escapes_follow_rfc_6901() {
        let c = PayloadContract {
            call_id: "/data/call~1id".into(),
            send_time: Some("/data/ts".into()),
            caller: None,
            cancel: Some(CancelMark {
                pointer: "/data/type".into(),
                value: "end".into(),
            }),
        };
        let raw = br#"{"data":{"call/id":"n-1","ts":7,"type":"end"}}"#;
        let p = c.read(raw).unwrap();
        assert_eq!(p.kind, PayloadKind::Cancel);
        assert_eq!(p.call_id.as_deref(), Some("n-1"));
        assert_eq!(p.send_time_ms, Some(7));
        assert!(c.validate().is_ok());
        let bad = PayloadContract {
            call_id: "call-id".into(),
            ..vendor()
        };
        assert_eq!(bad.validate().unwrap_err().key, "call_id");
    }

    /// The iPhone model reads pushes with the declared contract, and with the unrestricted VoIP
    /// entitlement survives a VoIP push that carries no call.
    #[test]
    fn the_iphone_reads_the_declared_contract_and_honours_the_entitlement() {
        use crate::{Action, DeliveredPush, Input, Iphone, IphoneConfig, Outcome, WallClock};
        use std::time::Instant;
        use timeline::{Protocol, Recorder};
        let phone = |config: IphoneConfig| {
            Iphone::new(
                config,
                WallClock::new(Instant::now(), 1_700_000_000_000),
                Recorder::off("alice-iphone", Protocol::Note),
            )
        };
        let voip = |id: &str, payload: &[u8]| {
            Input::Push(DeliveredPush::voip(
                "com.example.app.voip",
                id,
                payload.to_vec(),
            ))
        };
        let now = Instant::now();
        let mut p = phone(IphoneConfig {
            payload: vendor(),
            ..IphoneConfig::default()
        });
        let actions = p.handle(
            now,
            voip("a1", br#"{"aps":{},"call-id":"c-9","caller":"b"}"#),
        );
        assert!(actions.iter().any(|a| matches!(
            a,
            Action::ReportIncomingCall { call_id: Some(id), .. } if id == "c-9"
        )));
        let message = PushPayload::message("hi", 1).to_json();
        let mut p = phone(IphoneConfig {
            non_call_voip: crate::NonCallVoipPolicy::Terminate,
            unrestricted_voip: true,
            ..IphoneConfig::default()
        });
        for i in 0..4 {
            let actions = p.handle(now, voip(&format!("m{i}"), &message));
            assert!(actions.is_empty(), "{actions:?}");
        }
        assert_eq!(p.misses(), 0);
        assert!(p.app_running());
        assert!(!p
            .outcomes()
            .iter()
            .any(|o| matches!(o, Outcome::BogusCall { .. })));
    }

    #[test]
    fn the_section_reads_from_toml_shaped_json() {
        let c: PayloadContract = serde_json::from_str(
            r#"{"call_id":"/call-id","cancel":{"pointer":"/kind","value":"cancel"}}"#,
        )
        .unwrap();
        assert_eq!(c.send_time, None);
        assert_eq!(c.cancel.unwrap().value, "cancel");
        assert!(serde_json::from_str::<PayloadContract>(r#"{"send_time":"/t"}"#).is_err());
    }
}
