//! The recorded timeline of one scenario: the shared vocabulary of every party in the bench.
//!
//! Every party (the fake APNs, the SIP and XMPP peers, the simulated iPhone) records each message it
//! sends or receives into the scenario's [`Timeline`], through a [`Recorder`] that names the party
//! and the protocol. Recording never drops an event. When a scenario fails, [`Timeline::ladder`]
//! renders the events as a text ladder diagram, and reports export them with serde.
//!
//! ```
//! use timeline::{Protocol, Timeline};
//! let timeline = Timeline::new();
//! let bob = timeline.recorder("bob", Protocol::Sip);
//! bob.sent("gateway", "udp", "INVITE sip:alice@example.com", &b"INVITE sip:alice@example.com SIP/2.0\r\n"[..]);
//! bob.received("gateway", "udp", "100 Trying", &b"SIP/2.0 100 Trying\r\n"[..]);
//! assert_eq!(timeline.len(), 2);
//! assert!(timeline.ladder().contains("INVITE sip:alice@example.com"));
//! ```

mod event;
mod ladder;
mod sync;

pub use event::{escape_bytes, Direction, Event, Protocol};
pub use ladder::render_ladder;
pub use sync::{lock, now_ms};

use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// One scenario's timeline. Cheap to clone: every clone appends to the same list.
#[derive(Clone)]
pub struct Timeline {
    inner: Arc<Inner>,
}

struct Inner {
    origin: Instant,
    origin_wall: SystemTime,
    events: Mutex<Vec<Event>>,
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Timeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeline")
            .field("events", &self.len())
            .finish()
    }
}

impl Timeline {
    /// A new, empty timeline whose clock starts now.
    pub fn new() -> Self {
        Timeline {
            inner: Arc::new(Inner {
                origin: Instant::now(),
                origin_wall: SystemTime::now(),
                events: Mutex::new(Vec::new()),
            }),
        }
    }

    /// A recorder for one party speaking one protocol.
    pub fn recorder(&self, party: impl Into<String>, protocol: Protocol) -> Recorder {
        Recorder {
            timeline: Some(self.clone()),
            party: party.into(),
            protocol,
        }
    }

    /// Appends an event. `at` and `seq` are filled in here, so events are totally ordered.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        party: &str,
        direction: Direction,
        peer: &str,
        protocol: Protocol,
        transport: &str,
        summary: String,
        raw: Bytes,
    ) {
        let mut events = lock(&self.inner.events);
        let at = self.inner.origin.elapsed();
        let seq = events.len() as u64;
        events.push(Event {
            seq,
            at,
            party: party.to_owned(),
            direction,
            peer: peer.to_owned(),
            protocol,
            transport: transport.to_owned(),
            summary,
            raw,
        });
    }

    /// Records a note: something a party observed or decided that is not a wire message
    /// ("CallKit: incoming call reported", "step failed: …").
    pub fn note(&self, party: &str, text: impl Into<String>) {
        self.record(
            party,
            Direction::Note,
            "",
            Protocol::Note,
            "",
            text.into(),
            Bytes::new(),
        );
    }

    /// A snapshot of every event so far, in order.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.inner.events).clone()
    }

    /// Events recorded from index `from` on (for "what happened since this step began").
    pub fn events_since(&self, from: usize) -> Vec<Event> {
        let events = lock(&self.inner.events);
        events.get(from..).map(|s| s.to_vec()).unwrap_or_default()
    }

    /// How many events have been recorded.
    pub fn len(&self) -> usize {
        lock(&self.inner.events).len()
    }

    /// True when nothing has been recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Time since the timeline was created.
    pub fn elapsed(&self) -> Duration {
        self.inner.origin.elapsed()
    }

    /// The offset an event recorded at `t` has (zero for a moment before the origin): compares
    /// an `Instant` a party noted with [`Event::at`].
    pub fn offset_of(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.inner.origin)
    }

    /// The timeline's origin: the scenario's start, from which event times are counted.
    pub fn origin(&self) -> Instant {
        self.inner.origin
    }

    /// Wall-clock time of the timeline's origin (event times are offsets from it).
    pub fn origin_wall(&self) -> SystemTime {
        self.inner.origin_wall
    }

    /// The whole timeline as a text ladder diagram.
    pub fn ladder(&self) -> String {
        render_ladder(&self.events())
    }
}

/// Records for one party and one protocol. Obtained from [`Timeline::recorder`]; [`Recorder::off`]
/// gives one that records nothing (for load benchmarks, where the bench is the thing measured).
#[derive(Clone, Debug)]
pub struct Recorder {
    timeline: Option<Timeline>,
    party: String,
    protocol: Protocol,
}

impl Recorder {
    /// The origin of the timeline it records to (`None` for a recorder that discards): times a
    /// party shows people are counted from it, as the timeline's are.
    pub fn origin(&self) -> Option<Instant> {
        self.timeline.as_ref().map(Timeline::origin)
    }

    /// A recorder that discards everything.
    pub fn off(party: impl Into<String>, protocol: Protocol) -> Self {
        Recorder {
            timeline: None,
            party: party.into(),
            protocol,
        }
    }

    /// The party this recorder speaks for.
    pub fn party(&self) -> &str {
        &self.party
    }

    /// The timeline behind this recorder, if it records.
    pub fn timeline(&self) -> Option<&Timeline> {
        self.timeline.as_ref()
    }

    /// The same timeline and protocol, for another party name.
    pub fn for_party(&self, party: impl Into<String>) -> Recorder {
        Recorder {
            timeline: self.timeline.clone(),
            party: party.into(),
            protocol: self.protocol,
        }
    }

    /// Records a message this party sent to `peer`.
    pub fn sent(
        &self,
        peer: &str,
        transport: &str,
        summary: impl Into<String>,
        raw: impl Into<Bytes>,
    ) {
        if let Some(t) = &self.timeline {
            t.record(
                &self.party,
                Direction::Sent,
                peer,
                self.protocol,
                transport,
                summary.into(),
                raw.into(),
            );
        }
    }

    /// Records a message this party received from `peer`.
    pub fn received(
        &self,
        peer: &str,
        transport: &str,
        summary: impl Into<String>,
        raw: impl Into<Bytes>,
    ) {
        if let Some(t) = &self.timeline {
            t.record(
                &self.party,
                Direction::Received,
                peer,
                self.protocol,
                transport,
                summary.into(),
                raw.into(),
            );
        }
    }

    /// Records a note from this party.
    pub fn note(&self, text: impl Into<String>) {
        if let Some(t) = &self.timeline {
            t.note(&self.party, text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_their_order_across_recorders() {
        let t = Timeline::new();
        let a = t.recorder("bob", Protocol::Sip);
        let b = t.recorder("mock-apns", Protocol::Apns);
        a.sent("gateway", "udp", "INVITE", Bytes::from_static(b"INVITE"));
        b.received("gateway", "h2", "POST voip", Bytes::new());
        a.received("gateway", "udp", "180 Ringing", Bytes::new());
        let seqs: Vec<u64> = t.events().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![0, 1, 2]);
        assert_eq!(t.events()[1].party, "mock-apns");
        assert_eq!(t.events_since(2).len(), 1);
    }

    #[test]
    fn an_instant_maps_to_the_offset_its_events_get() {
        let before = Instant::now();
        let t = Timeline::new();
        let mark = Instant::now();
        t.recorder("bob", Protocol::Sip)
            .sent("gw", "udp", "x", Bytes::new());
        assert_eq!(t.offset_of(before), Duration::ZERO);
        assert!(t.offset_of(mark) <= t.events()[0].at);
    }

    #[test]
    fn an_off_recorder_records_nothing() {
        let r = Recorder::off("x", Protocol::Sip);
        r.sent("y", "udp", "hello", Bytes::new());
        assert!(r.timeline().is_none());
    }

    #[test]
    fn clones_share_one_list_across_threads() {
        let t = Timeline::new();
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let r = t.recorder(format!("p{i}"), Protocol::Xmpp);
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        r.sent("gw", "tcp", "x", Bytes::new());
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let events = t.events();
        assert_eq!(events.len(), 400);
        assert!(events
            .windows(2)
            .all(|w| w[0].seq + 1 == w[1].seq && w[0].at <= w[1].at));
    }
}
