//! What Alice's devices have in common in both protocols: which device ([`DeviceKind`]), the log
//! of what it sent and received with times ([`DeviceLog`], which the Then steps wait on), and the
//! feed of what mock-apns delivers to its tokens into that log and its iOS model
//! ([`feed_deliveries`]).

use futures::StreamExt as _;
use mock_apns::Delivery;
use phone::{DeliveredPush, Input, PayloadContract, PayloadKind, PushType};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use timeline::lock;
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// Which of Alice's devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceKind {
    /// Her iPhone (sleeps, woken by VoIP pushes).
    Iphone,
    /// Her iPad (same as the iPhone).
    Ipad,
    /// Her desktop softphone (always awake, no push).
    Desktop,
}

impl DeviceKind {
    /// The party name on the timeline.
    pub fn party(self) -> &'static str {
        match self {
            DeviceKind::Iphone => "alice-iphone",
            DeviceKind::Ipad => "alice-ipad",
            DeviceKind::Desktop => "alice-desktop",
        }
    }

    /// Whether it runs the iOS model.
    pub fn is_ios(self) -> bool {
        self != DeviceKind::Desktop
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceKind::Iphone => "iPhone",
            DeviceKind::Ipad => "iPad",
            DeviceKind::Desktop => "desktop",
        })
    }
}

impl FromStr for DeviceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "iPhone" => Ok(DeviceKind::Iphone),
            "iPad" => Ok(DeviceKind::Ipad),
            "desktop" => Ok(DeviceKind::Desktop),
            other => Err(format!("unknown device {other:?} (iPhone, iPad, desktop)")),
        }
    }
}

/// Something the device sent or received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// APNs delivered a push.
    Push {
        /// The token.
        token: String,
        /// `apns-push-type`.
        push_type: String,
        /// The payload's kind, if it follows the payload contract.
        kind: Option<PayloadKind>,
        /// The payload's call id.
        call_id: Option<String>,
        /// APNs had stored it.
        stored: bool,
    },
    /// A REGISTER went out (the wake, or a step).
    RegisterSent,
    /// Its outcome.
    Registered {
        /// 2xx.
        ok: bool,
        /// What came back.
        detail: String,
    },
    /// An INVITE arrived.
    Invite {
        /// Its Call-ID.
        call_id: String,
        /// Where from.
        source: SocketAddr,
        /// Open connections of the account when it arrived.
        connections: usize,
    },
    /// A CANCEL arrived.
    Cancel {
        /// The call.
        call_id: String,
        /// Its `Reason` header.
        reason: Option<String>,
    },
    /// A BYE arrived.
    Bye {
        /// The call.
        call_id: String,
    },
    /// The device answered (200 sent).
    Answered {
        /// The call.
        call_id: String,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Push {
                token,
                push_type,
                kind,
                call_id,
                stored,
            } => write!(
                f,
                "{}{push_type} push to token {}…{}{}",
                if *stored { "stored " } else { "" },
                &token[..token.len().min(8)],
                match kind {
                    Some(k) => format!(" ({})", format!("{k:?}").to_lowercase()),
                    None => String::new(),
                },
                call_id
                    .as_deref()
                    .map(|c| format!(" for call {c}"))
                    .unwrap_or_default()
            ),
            Event::RegisterSent => f.write_str("REGISTER sent"),
            Event::Registered { ok, detail } => write!(
                f,
                "registration {}: {detail}",
                if *ok { "accepted" } else { "refused" }
            ),
            Event::Invite {
                call_id,
                source,
                connections,
            } => write!(
                f,
                "INVITE for call {call_id} from {source} ({connections} connection(s) open)"
            ),
            Event::Cancel { call_id, reason } => write!(
                f,
                "CANCEL of call {call_id}{}",
                reason
                    .as_deref()
                    .map(|r| format!(", Reason: {r}"))
                    .unwrap_or_default()
            ),
            Event::Bye { call_id } => write!(f, "BYE of call {call_id}"),
            Event::Answered { call_id } => write!(f, "answered call {call_id} (200 OK sent)"),
        }
    }
}

/// An [`Event`] with its time.
#[derive(Clone, Debug)]
pub struct Entry {
    /// When.
    pub at: Instant,
    /// What.
    pub event: Event,
}

/// What a device sent and received, in order, with a signal for waiters.
#[derive(Debug)]
pub struct DeviceLog {
    entries: Mutex<Vec<Entry>>,
    changed: watch::Sender<usize>,
}

impl Default for DeviceLog {
    fn default() -> Self {
        DeviceLog {
            entries: Mutex::new(Vec::new()),
            changed: watch::channel(0).0,
        }
    }
}

impl DeviceLog {
    /// Appends an event now.
    pub fn push(&self, event: Event) {
        let n = {
            let mut e = lock(&self.entries);
            e.push(Entry {
                at: Instant::now(),
                event,
            });
            e.len()
        };
        self.changed.send_replace(n);
    }

    /// Everything so far.
    pub fn entries(&self) -> Vec<Entry> {
        lock(&self.entries).clone()
    }

    /// Waits until `find` returns something, at most until `deadline`.
    pub async fn wait_until<T>(
        &self,
        deadline: Instant,
        find: impl Fn(&[Entry]) -> Option<T>,
    ) -> Option<T> {
        let mut rx = self.changed.subscribe();
        loop {
            if let Some(t) = find(&self.entries()) {
                return Some(t);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if left.is_zero() {
                return None;
            }
            match tokio::time::timeout(left, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return find(&self.entries()),
            }
        }
    }

    /// One line per event, times relative to `origin`, for failure messages.
    pub fn describe(&self, origin: Instant) -> String {
        let entries = self.entries();
        if entries.is_empty() {
            return "  (nothing)".into();
        }
        entries
            .iter()
            .map(|e| {
                let t = e.at.saturating_duration_since(origin).as_millis();
                format!("  +{t} ms {}", e.event)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What mock-apns delivered, as the iOS model takes it.
pub fn delivered(d: &Delivery) -> DeliveredPush {
    let kind = serde_json::to_value(d.push_type)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{:?}", d.push_type).to_ascii_lowercase());
    DeliveredPush {
        push_type: PushType::from_header(&kind),
        topic: d.topic.clone(),
        apns_id: d.apns_id.clone(),
        priority: d.priority,
        expiration: d.expiration.unwrap_or(0),
        collapse_id: d.collapse_id.clone(),
        payload: serde_json::to_vec(&d.payload).unwrap_or_default(),
    }
}

/// Feeds what mock-apns delivers to `token` into the device's log and, through `to_phone`, its
/// iOS model, until the returned task is aborted.
pub fn feed_deliveries(
    apns: &mock_apns::MockApns,
    token: String,
    log: Arc<DeviceLog>,
    contract: &PayloadContract,
    to_phone: impl Fn(Input) + Send + 'static,
) -> AbortHandle {
    let mut stream = apns.deliveries(&token);
    let contract = contract.clone();
    tokio::spawn(async move {
        while let Some(d) = stream.next().await {
            let push = delivered(&d);
            let parsed = contract.read(&push.payload).ok();
            log.push(Event::Push {
                token: token.clone(),
                push_type: push.push_type.to_string(),
                kind: parsed.as_ref().map(|p| p.kind),
                call_id: parsed.and_then(|p| p.call_id),
                stored: d.stored,
            });
            to_phone(Input::Push(push));
        }
    })
    .abort_handle()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_waiter_sees_an_event_logged_after_it_started_waiting() {
        let log = Arc::new(DeviceLog::default());
        let l = log.clone();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            l.push(Event::RegisterSent);
        });
        let found = log
            .wait_until(Instant::now() + Duration::from_secs(5), |es| {
                es.iter()
                    .find(|e| e.event == Event::RegisterSent)
                    .map(|e| e.at)
            })
            .await;
        assert!(found.is_some());
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn a_waiter_gives_up_at_its_deadline_and_the_log_describes_itself() {
        let log = DeviceLog::default();
        let t0 = Instant::now();
        log.push(Event::Bye {
            call_id: "c1".into(),
        });
        let found = log
            .wait_until(Instant::now() + Duration::from_millis(50), |es| {
                es.iter()
                    .find(|e| e.event == Event::RegisterSent)
                    .map(|_| ())
            })
            .await;
        assert!(found.is_none());
        assert!(t0.elapsed() >= Duration::from_millis(50));
        assert!(
            log.describe(t0).contains("+0 ms BYE of call c1"),
            "{}",
            log.describe(t0)
        );
        assert_eq!(DeviceLog::default().describe(t0), "  (nothing)");
    }

    #[test]
    fn device_names_round_trip() {
        for k in [DeviceKind::Iphone, DeviceKind::Ipad, DeviceKind::Desktop] {
            assert_eq!(k.to_string().parse::<DeviceKind>(), Ok(k));
        }
        assert!("iphone".parse::<DeviceKind>().is_err());
    }
}
