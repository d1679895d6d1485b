//! The push log: every request APNs received, with who sent it and what APNs answered.

use crate::auth::AuthIdentity;
use crate::devices::DeliveryOutcome;
use crate::Environment;
use bytes::Bytes;
use serde::{Serialize, Serializer};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// One request and its response.
#[derive(Clone, Debug, Serialize)]
pub struct PushRecord {
    /// Position in the log since start (never reused, survives clearing).
    pub seq: u64,
    /// When it was answered (UNIX ms).
    pub time_ms: u64,
    /// Connection it arrived on (numbered from 1 per instance).
    pub connection_id: u64,
    /// Who pushed.
    pub auth: AuthIdentity,
    /// The listener's environment.
    pub environment: Environment,
    /// Every header including `:method` and `:path` (serialized as `[name, value]` pairs).
    pub headers: RecordedHeaders,
    /// The device token from the path, when there was one.
    pub token: Option<String>,
    /// The body (as text; invalid UTF-8 escaped).
    #[serde(serialize_with = "bytes_as_text")]
    pub payload: Bytes,
    /// Response status.
    pub status: u16,
    /// Response reason, if not 200.
    pub reason: Option<String>,
    /// Response `apns-id`.
    pub apns_id: String,
    /// `timestamp` of a 410.
    pub timestamp_ms: Option<u64>,
    /// What happened to an accepted push.
    pub delivery: Option<DeliveryOutcome>,
    /// Why the request was refused, or which fault applied (for humans).
    pub detail: Option<String>,
}

impl PushRecord {
    /// A header value by name (first occurrence; `:method` and `:path` too).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name)
    }

    /// The payload as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.payload).ok()
    }

    /// A request for PushKit: `apns-push-type: voip`, or a topic ending in `.voip` (either is a
    /// gateway asking for a VoIP push, whatever APNs made of it).
    pub fn is_voip(&self) -> bool {
        self.header("apns-push-type")
            .is_some_and(|v| v.eq_ignore_ascii_case("voip"))
            || self
                .header("apns-topic")
                .is_some_and(|t| t.ends_with(".voip"))
    }

    /// One line: token, status, reason.
    pub fn summary(&self) -> String {
        format!(
            "#{} token={} status={} reason={} apns-id={}",
            self.seq,
            self.token.as_deref().unwrap_or("-"),
            self.status,
            self.reason.as_deref().unwrap_or("-"),
            self.apns_id
        )
    }
}

/// The request headers as received, pseudo-headers first, in arrival order.
///
/// One compact copy (all names and values in one buffer, plus where each ends) of the HTTP/2
/// engine's decoded header list, whose buffers the engine reuses for the next request: two
/// allocations per request instead of one per header.
#[derive(Clone, Debug, Default)]
pub struct RecordedHeaders {
    /// Every name immediately followed by its value.
    text: Vec<u8>,
    /// Per header: where its name ends and where its value ends, in `text`.
    ends: Vec<(u32, u32)>,
}

impl RecordedHeaders {
    /// A copy of the given (name, value) byte pairs.
    pub fn copy_of<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Self {
        let mut headers = RecordedHeaders {
            text: Vec::with_capacity(512),
            ends: Vec::with_capacity(12),
        };
        for (name, value) in pairs {
            headers.push(name, value);
        }
        headers
    }

    /// Appends one header.
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        self.text.extend_from_slice(name);
        let name_end = self.text.len() as u32;
        self.text.extend_from_slice(value);
        self.ends.push((name_end, self.text.len() as u32));
    }

    /// Every header as (name, value) bytes, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let mut start = 0usize;
        self.ends.iter().map(move |&(name_end, value_end)| {
            let (n, v) = (name_end as usize, value_end as usize);
            let pair = (&self.text[start..n], &self.text[n..v]);
            start = v;
            pair
        })
    }

    /// Every header as (name, value) text pairs, pseudo-headers first.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(n, v)| (timeline::escape_bytes(n), timeline::escape_bytes(v)))
            .collect()
    }

    /// The first value of a header, case-insensitive (`:method` and `:path` too).
    pub fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| timeline::escape_bytes(v))
    }
}

impl Serialize for RecordedHeaders {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.pairs())
    }
}

fn bytes_as_text<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&timeline::escape_bytes(b))
}

/// The bounded log, with a signal for waiters.
pub struct PushLog {
    inner: Mutex<LogInner>,
    capacity: usize,
    notify: Notify,
    waiters: AtomicUsize,
}

struct LogInner {
    next_seq: u64,
    records: VecDeque<Arc<PushRecord>>,
    /// Requests answered with each status since start (never cleared, unlike the records).
    statuses: std::collections::BTreeMap<u16, u64>,
}

/// What the log has counted since start: every request answered, by status, whether or not its
/// record is still kept (the log keeps the latest `capacity`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogStats {
    /// Requests answered (the latest sequence number).
    pub requests: u64,
    /// Requests answered, by response status.
    pub statuses: std::collections::BTreeMap<u16, u64>,
    /// Records kept now.
    pub kept: usize,
    /// The most records kept.
    pub capacity: usize,
    /// The sequence number of the oldest record kept (0 when none is).
    pub first_kept_seq: u64,
}

impl PushLog {
    /// A log keeping at most `capacity` records.
    pub fn new(capacity: usize) -> Self {
        PushLog {
            inner: Mutex::new(LogInner {
                next_seq: 1,
                records: VecDeque::new(),
                statuses: std::collections::BTreeMap::new(),
            }),
            capacity: capacity.max(1),
            notify: Notify::new(),
            waiters: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        timeline::lock(&self.inner)
    }

    /// Appends a record (its `seq` is assigned here) and wakes waiters.
    pub fn push(&self, mut record: PushRecord) -> u64 {
        let (seq, evicted) = {
            let mut inner = self.lock();
            record.seq = inner.next_seq;
            inner.next_seq += 1;
            *inner.statuses.entry(record.status).or_default() += 1;
            let evicted = if inner.records.len() >= self.capacity {
                inner.records.pop_front()
            } else {
                None
            };
            inner.records.push_back(Arc::new(record));
            (inner.next_seq - 1, evicted)
        };
        // Freed outside the lock.
        drop(evicted);
        if self.waiters.load(Ordering::Acquire) > 0 {
            self.notify.notify_waiters();
        }
        seq
    }

    /// The sequence number of the latest record (0 before the first). A record is logged before
    /// its response is sent, so every request a client saw answered is at or below it.
    pub fn last_seq(&self) -> u64 {
        self.lock().next_seq - 1
    }

    /// Requests counted since start, by status, and what the log keeps of them.
    pub fn stats(&self) -> LogStats {
        let inner = self.lock();
        LogStats {
            requests: inner.next_seq - 1,
            statuses: inner.statuses.clone(),
            kept: inner.records.len(),
            capacity: self.capacity,
            first_kept_seq: inner.records.front().map_or(0, |r| r.seq),
        }
    }

    /// A copy of every record kept.
    pub fn snapshot(&self) -> Vec<PushRecord> {
        self.lock().records.iter().map(|r| (**r).clone()).collect()
    }

    /// Forgets every record.
    pub fn clear(&self) {
        self.lock().records.clear();
    }

    /// The first record for `token` with a sequence number above `after`.
    pub fn find_after(&self, token: &str, after: u64) -> Option<PushRecord> {
        self.lock()
            .records
            .iter()
            .find(|r| {
                r.seq > after
                    && r.token
                        .as_deref()
                        .is_some_and(|t| t.eq_ignore_ascii_case(token))
            })
            .map(|r| (**r).clone())
    }

    /// Waits until a record for `token` above `after` exists, or the deadline passes.
    pub async fn wait_for(
        &self,
        token: &str,
        after: u64,
        deadline: tokio::time::Instant,
    ) -> Option<PushRecord> {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        self.waiters.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiters);
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.find_after(token, after) {
                return Some(r);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.find_after(token, after);
            }
        }
    }
}

/// `next_push_for` found nothing in time. Its message lists every push the mock did receive.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no push for token {token} within {within:?}; mock-apns received {}:{}", .received.len(), list(.received))]
pub struct NoPush {
    /// The token waited for.
    pub token: String,
    /// How long it waited.
    pub within: std::time::Duration,
    /// One line per push received (token, status, reason).
    pub received: Vec<String>,
}

fn list(lines: &[String]) -> String {
    if lines.is_empty() {
        " nothing".to_owned()
    } else {
        lines.iter().map(|l| format!("\n  {l}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(token: &str) -> PushRecord {
        PushRecord {
            seq: 0,
            time_ms: 0,
            connection_id: 1,
            auth: AuthIdentity::None,
            environment: Environment::Sandbox,
            headers: RecordedHeaders::copy_of([
                (&b":method"[..], &b"POST"[..]),
                (b":path", b"/3/device/aa"),
            ]),
            token: Some(token.into()),
            payload: Bytes::from_static(b"{}"),
            status: 200,
            reason: None,
            apns_id: "id".into(),
            timestamp_ms: None,
            delivery: None,
            detail: None,
        }
    }

    #[test]
    fn bounded_and_ordered() {
        let log = PushLog::new(2);
        assert_eq!(log.last_seq(), 0);
        for t in ["a", "b", "c"] {
            log.push(record(t));
        }
        assert_eq!(log.last_seq(), 3, "eviction keeps the numbering");
        let s = log.snapshot();
        assert_eq!(s.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(log.find_after("c", 0).unwrap().seq, 3);
        assert!(log.find_after("c", 3).is_none());
        assert_eq!(s[0].header(":METHOD").as_deref(), Some("POST"));
        let json = serde_json::to_value(&s[0]).unwrap();
        assert_eq!(
            json["headers"][1],
            serde_json::json!([":path", "/3/device/aa"])
        );
    }

    #[test]
    fn voip_is_the_push_type_or_the_topic() {
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut r = record("a");
            for (n, v) in pairs {
                r.headers.push(n.as_bytes(), v.as_bytes());
            }
            r
        };
        assert!(with(&[("apns-push-type", "VoIP")]).is_voip());
        assert!(with(&[("apns-push-type", "alert"), ("apns-topic", "a.b.voip")]).is_voip());
        assert!(!with(&[("apns-push-type", "alert"), ("apns-topic", "a.b")]).is_voip());
        assert!(!with(&[]).is_voip());
    }

    #[tokio::test]
    async fn waiters_wake_on_push_and_time_out_with_the_list() {
        let log = Arc::new(PushLog::new(10));
        let l2 = log.clone();
        let waiter = tokio::spawn(async move {
            l2.wait_for(
                "b",
                0,
                tokio::time::Instant::now() + std::time::Duration::from_secs(10),
            )
            .await
        });
        log.push(record("a"));
        log.push(record("b"));
        assert_eq!(waiter.await.unwrap().unwrap().seq, 2);
        let none = log
            .wait_for(
                "zz",
                0,
                tokio::time::Instant::now() + std::time::Duration::from_millis(20),
            )
            .await;
        assert!(none.is_none());
        let e = NoPush {
            token: "zz".into(),
            within: std::time::Duration::from_millis(20),
            received: log.snapshot().iter().map(PushRecord::summary).collect(),
        };
        let msg = e.to_string();
        assert!(
            msg.contains("received 2") && msg.contains("token=a status=200"),
            "{msg}"
        );
    }
}
