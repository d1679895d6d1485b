//! Injected faults: what APNs should do instead of (or before) answering the next matching pushes.
//!
//! A fault is checked after a request passed validation and before the device registry, so
//! malformed requests never consume one. The first active fault that matches is used.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Which requests a fault applies to. Empty: every request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultMatch {
    /// Only this device token (hex, any case).
    #[serde(default)]
    pub token: Option<String>,
    /// Only this topic.
    #[serde(default)]
    pub topic: Option<String>,
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer this status and `{"reason": …}` (410 adds the current time as `timestamp`).
    Reject {
        /// HTTP status.
        status: u16,
        /// The reason string.
        reason: String,
    },
    /// Wait this long, then process the request normally.
    DelayMs(u64),
    /// Refuse the request with RST_STREAM(REFUSED_STREAM) and send GOAWAY(NO_ERROR) with
    /// `{"reason": …}`; streams already in flight complete, then the connection closes.
    Goaway {
        /// The reason in the debug data.
        reason: String,
    },
    /// Close the TCP connection at once, without an answer or a GOAWAY.
    DropConnection,
}

/// A fault: match, how many times, action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// Which requests.
    #[serde(rename = "match", default)]
    pub matcher: FaultMatch,
    /// How many matching requests it applies to (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// What to do.
    pub action: FaultAction,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// A fault for the next request that matches, whatever its token or topic.
    pub fn next(action: FaultAction) -> Self {
        Fault {
            matcher: FaultMatch::default(),
            count: 1,
            action,
        }
    }

    /// Only for this token.
    pub fn for_token(mut self, token: impl Into<String>) -> Self {
        self.matcher.token = Some(token.into());
        self
    }

    /// Only for this topic.
    pub fn for_topic(mut self, topic: impl Into<String>) -> Self {
        self.matcher.topic = Some(topic.into());
        self
    }

    /// For this many matching requests.
    pub fn times(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    fn matches(&self, token: &str, topic: &str) -> bool {
        self.matcher
            .token
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case(token))
            && self.matcher.topic.as_deref().is_none_or(|t| t == topic)
    }
}

/// The active faults.
#[derive(Default)]
pub struct Faults {
    active: Mutex<Vec<Fault>>,
    len: AtomicUsize,
}

impl Faults {
    /// Adds a fault (a count of 0 adds nothing).
    pub fn add(&self, fault: Fault) {
        if fault.count == 0 {
            return;
        }
        let mut a = timeline::lock(&self.active);
        a.push(fault);
        self.len.store(a.len(), Ordering::Release);
    }

    /// Removes every fault.
    pub fn clear(&self) {
        let mut a = timeline::lock(&self.active);
        a.clear();
        self.len.store(0, Ordering::Release);
    }

    /// Consumes one use of the first fault matching this push.
    pub fn take(&self, token: &str, topic: &str) -> Option<FaultAction> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut a = timeline::lock(&self.active);
        let i = a.iter().position(|f| f.matches(token, topic))?;
        let action = a[i].action.clone();
        a[i].count -= 1;
        if a[i].count == 0 {
            a.remove(i);
        }
        self.len.store(a.len(), Ordering::Release);
        Some(action)
    }

    /// The faults still active.
    pub fn list(&self) -> Vec<Fault> {
        timeline::lock(&self.active).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_api_json_forms_parse() {
        let f: Fault = serde_json::from_str(
            r#"{"match":{"token":"AB"},"count":2,"action":{"reject":{"status":503,"reason":"Shutdown"}}}"#,
        )
        .unwrap();
        assert_eq!(f.count, 2);
        assert_eq!(
            f.action,
            FaultAction::Reject {
                status: 503,
                reason: "Shutdown".into()
            }
        );
        let f: Fault = serde_json::from_str(r#"{"match":{},"action":{"delay_ms":500}}"#).unwrap();
        assert_eq!((f.count, f.action), (1, FaultAction::DelayMs(500)));
        let f: Fault =
            serde_json::from_str(r#"{"action":{"goaway":{"reason":"Shutdown"}}}"#).unwrap();
        assert_eq!(
            f.action,
            FaultAction::Goaway {
                reason: "Shutdown".into()
            }
        );
        let f: Fault =
            serde_json::from_str(r#"{"match":{"topic":"a.voip"},"action":"drop_connection"}"#)
                .unwrap();
        assert_eq!(f.action, FaultAction::DropConnection);
        assert!(serde_json::from_str::<Fault>(r#"{"action":"explode"}"#).is_err());
    }

    #[test]
    fn counts_and_matching() {
        let faults = Faults::default();
        faults.add(
            Fault::next(FaultAction::DelayMs(1))
                .for_token("AA")
                .times(2),
        );
        faults.add(Fault::next(FaultAction::DropConnection).for_topic("t"));
        assert_eq!(faults.take("bb", "x"), None);
        assert_eq!(faults.take("aa", "x"), Some(FaultAction::DelayMs(1)));
        assert_eq!(faults.take("bb", "t"), Some(FaultAction::DropConnection));
        assert_eq!(faults.take("bb", "t"), None);
        assert_eq!(faults.take("aa", "t"), Some(FaultAction::DelayMs(1)));
        assert_eq!(faults.take("aa", "t"), None);
        assert!(faults.list().is_empty());
    }
}
