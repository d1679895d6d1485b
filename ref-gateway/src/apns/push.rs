//! One push request to APNs, and APNs' answer to it.

use bytes::Bytes;
use phone::PushType;
use uuid::Uuid;

/// A push request: the device token, the `apns-*` headers and the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    /// The device token (hex), the last path segment of `/3/device/<token>`.
    pub device_token: String,
    /// `apns-push-type`.
    pub push_type: PushType,
    /// `apns-topic`.
    pub topic: String,
    /// `apns-priority`; `None` omits the header (APNs then assumes 10).
    pub priority: Option<u8>,
    /// `apns-expiration`, Unix seconds; 0 = deliver once, never store; `None` omits the header.
    pub expiration: Option<u64>,
    /// `apns-collapse-id`.
    pub collapse_id: Option<String>,
    /// `apns-id`; `None` lets APNs generate one.
    pub apns_id: Option<Uuid>,
    /// The JSON payload.
    pub payload: Bytes,
}

impl Push {
    /// A call push as it must be: `voip`, topic `<bundle>.voip`, priority 10, expiration 0, a
    /// fresh `apns-id`.
    pub fn voip_call(device_token: impl Into<String>, bundle_id: &str, payload: Bytes) -> Self {
        Push {
            device_token: device_token.into(),
            push_type: PushType::Voip,
            topic: format!("{bundle_id}.voip"),
            priority: Some(10),
            expiration: Some(0),
            collapse_id: None,
            apns_id: Some(Uuid::new_v4()),
            payload,
        }
    }

    /// A message notification: `alert`, topic `<bundle>`, priority 10, expiration as given.
    pub fn alert(
        device_token: impl Into<String>,
        bundle_id: &str,
        expiration: u64,
        payload: Bytes,
    ) -> Self {
        Push {
            device_token: device_token.into(),
            push_type: PushType::Alert,
            topic: bundle_id.to_owned(),
            priority: Some(10),
            expiration: Some(expiration),
            collapse_id: None,
            apns_id: Some(Uuid::new_v4()),
            payload,
        }
    }

    /// `/3/device/<token>`.
    pub fn path(&self) -> String {
        format!("/3/device/{}", self.device_token)
    }

    /// One line for the timeline.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "POST /3/device/{} {} topic={}",
            short_token(&self.device_token),
            self.push_type,
            self.topic
        );
        if let Some(p) = self.priority {
            s.push_str(&format!(" prio={p}"));
        }
        if let Some(e) = self.expiration {
            s.push_str(&format!(" exp={e}"));
        }
        if let Some(c) = &self.collapse_id {
            s.push_str(&format!(" collapse={c}"));
        }
        s
    }
}

/// The first 8 characters of a token and an ellipsis, for summaries.
pub fn short_token(token: &str) -> String {
    if token.chars().count() > 8 {
        format!("{}…", token.chars().take(8).collect::<String>())
    } else {
        token.to_owned()
    }
}

/// APNs' answer to a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApnsResponse {
    /// HTTP status: 200 accepted; 400/403/404/405/410/413/429/500/503 rejected.
    pub status: u16,
    /// `apns-id`: the request's, or the one APNs generated.
    pub apns_id: Option<String>,
    /// `apns-unique-id` (sandbox only).
    pub apns_unique_id: Option<String>,
    /// The `reason` of the JSON error body (`BadDeviceToken`, `Unregistered`, …).
    pub reason: Option<String>,
    /// The `timestamp` of a 410 (Unix milliseconds since the token was last valid).
    pub timestamp_ms: Option<u64>,
    /// The body as received.
    pub body: Bytes,
    /// How many requests it took (1 + retries).
    pub attempts: u32,
}

impl ApnsResponse {
    /// 200: APNs accepted the push.
    pub fn is_success(&self) -> bool {
        self.status == 200
    }

    /// 410: the token is no longer valid for the topic; drop the binding.
    pub fn is_unregistered(&self) -> bool {
        self.status == 410
    }

    /// 429 or 5xx: worth retrying later.
    pub fn is_retryable(&self) -> bool {
        self.status == 429 || self.status >= 500
    }

    /// Reads `reason` and `timestamp` from an error body; a body that is not the JSON APNs sends
    /// leaves both `None` (never an error: the status still says what happened).
    pub(crate) fn parse_body(&mut self) {
        #[derive(serde::Deserialize)]
        struct ErrorBody {
            reason: Option<String>,
            timestamp: Option<serde_json::Value>,
        }
        if let Ok(b) = serde_json::from_slice::<ErrorBody>(&self.body) {
            self.reason = b.reason;
            self.timestamp_ms = b.timestamp.and_then(|t| match t {
                serde_json::Value::Number(n) => n.as_u64(),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            });
        }
    }

    /// One line for the timeline.
    pub fn summary(&self) -> String {
        let mut s = self.status.to_string();
        if let Some(r) = &self.reason {
            s.push_str(&format!(" {r}"));
        }
        if let Some(t) = self.timestamp_ms {
            s.push_str(&format!(" timestamp={t}"));
        }
        if let Some(id) = &self.apns_id {
            s.push_str(&format!(" apns-id={id}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &'static [u8]) -> ApnsResponse {
        let mut r = ApnsResponse {
            status,
            apns_id: None,
            apns_unique_id: None,
            reason: None,
            timestamp_ms: None,
            body: Bytes::from_static(body),
            attempts: 1,
        };
        r.parse_body();
        r
    }

    #[test]
    fn error_bodies_are_read_and_garbage_is_tolerated() {
        let r = response(
            410,
            br#"{"reason":"Unregistered","timestamp":1700000000123}"#,
        );
        assert_eq!(r.reason.as_deref(), Some("Unregistered"));
        assert_eq!(r.timestamp_ms, Some(1_700_000_000_123));
        assert!(r.is_unregistered() && !r.is_retryable());
        let r = response(410, br#"{"reason":"ExpiredToken","timestamp":"42"}"#);
        assert_eq!(r.timestamp_ms, Some(42));
        let r = response(404, b"<html>404</html>\xff");
        assert_eq!((r.reason, r.timestamp_ms), (None, None));
        assert!(response(429, b"").is_retryable());
        assert!(response(503, b"{}").is_retryable());
        assert!(!response(400, b"{}").is_retryable());
    }

    #[test]
    fn a_call_push_has_the_headers_apple_requires() {
        let p = Push::voip_call("00ff", "com.example.app", Bytes::from_static(b"{}"));
        assert_eq!(p.topic, "com.example.app.voip");
        assert_eq!((p.priority, p.expiration), (Some(10), Some(0)));
        assert_eq!(p.push_type, PushType::Voip);
        assert_eq!(p.path(), "/3/device/00ff");
        assert_eq!(
            p.summary(),
            "POST /3/device/00ff voip topic=com.example.app.voip prio=10 exp=0"
        );
        assert_eq!(short_token(&"a".repeat(64)), "aaaaaaaa…");
    }
}
