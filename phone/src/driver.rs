//! The async driver: runs an [`Iphone`] model on a tokio task with real (or paused) time.
//!
//! Inputs (pushes from mock-apns, offers/cancels from the SIP or XMPP account, the user's taps)
//! go in through a [`PhoneHandle`]; the model's [`Action`]s come out on a channel for the glue
//! that owns the account (REGISTER, 200, 603, BYE…). The driver fires the model's timers, delays
//! each [`Action::WakeAccount`] by the configured wake delay (the time a real app takes to
//! REGISTER after a push), and publishes a [`Snapshot`] after every change, so a step can await
//! "Alice's iPhone stops ringing within 5 s" without a fixed sleep.

use crate::action::Action;
use crate::action::EndReason;
use crate::input::Input;
use crate::iphone::{CallEnd, CallView, Iphone, Report};
use crate::outcome::Outcome;
use std::fmt;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How the driver behaves around the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DriverConfig {
    /// Delay between a push asking to wake the account and the `WakeAccount` action.
    pub wake_delay: Duration,
}

/// What the phone looks like now: everything a Then step checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// What the user saw, in order.
    pub outcomes: Vec<Outcome>,
    /// The CallKit calls the phone has now.
    pub calls: Vec<CallView>,
    /// Whether the app process runs.
    pub app_running: bool,
    /// Whether iOS stopped delivering VoIP pushes.
    pub voip_cut_off: bool,
    /// Unreported VoIP pushes.
    pub misses: u32,
    /// Every action the model produced so far, with when it was handed to the glue.
    pub actions: Vec<(Instant, Action)>,
    /// Every CallKit report, with what triggered it.
    pub reports: Vec<Report>,
    /// Every CallKit call that ended, with why.
    pub ends: Vec<CallEnd>,
    /// The scenario's start: times are shown to people as `+N ms` from it.
    pub origin: Option<Instant>,
}

impl Snapshot {
    fn of(model: &Iphone, actions: Vec<(Instant, Action)>) -> Self {
        Snapshot {
            outcomes: model.outcomes().to_vec(),
            calls: model.calls().cloned().collect(),
            app_running: model.app_running(),
            voip_cut_off: model.voip_cut_off(),
            misses: model.misses(),
            actions,
            reports: model.reports().to_vec(),
            ends: model.ends().to_vec(),
            origin: model.origin(),
        }
    }

    /// When a VoIP push first made the phone ring for this call (the iOS 13 rule), if it did.
    pub fn rang_from_push(&self, call_id: &str) -> Option<Instant> {
        self.reports
            .iter()
            .find(|r| r.by_push && r.call_id.as_deref() == Some(call_id))
            .map(|r| r.at)
    }

    /// When the phone first started ringing for this call, by push or by offer.
    pub fn rang_at(&self, call_id: &str) -> Option<Instant> {
        self.reports
            .iter()
            .find(|r| r.call_id.as_deref() == Some(call_id))
            .map(|r| r.at)
    }

    /// When and why the last CallKit call for this call ended, if it has.
    pub fn ended(&self, call_id: &str) -> Option<(Instant, EndReason)> {
        self.ends
            .iter()
            .rev()
            .find(|e| e.call_id.as_deref() == Some(call_id))
            .map(|e| (e.at, e.reason))
    }

    /// Whether Recents shows this call as missed.
    pub fn missed(&self, call_id: &str) -> bool {
        self.outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Missed { call_id: c, .. } if c == call_id))
    }

    /// Whether the phone rang for this call after it had ended at the caller.
    pub fn ghost(&self, call_id: &str) -> bool {
        self.outcomes
            .iter()
            .any(|o| matches!(o, Outcome::GhostCall { call_id: c, .. } if c == call_id))
    }

    /// How many bogus calls (rings for pushes without a call) the user saw.
    pub fn bogus_calls(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::BogusCall { .. }))
            .count()
    }

    /// How many times iOS terminated the app.
    pub fn terminations(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::AppTerminated { .. }))
            .count()
    }

    /// Whether a call with this id is ringing.
    pub fn is_ringing(&self, call_id: &str) -> bool {
        self.calls
            .iter()
            .any(|c| c.call_id.as_deref() == Some(call_id) && c.state == crate::CallState::Ringing)
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "app running: {}, VoIP cut off: {}, misses: {}",
            self.app_running, self.voip_cut_off, self.misses
        )?;
        if self.calls.is_empty() {
            writeln!(f, "CallKit calls now: none")?;
        } else {
            writeln!(f, "CallKit calls now:")?;
        }
        for c in &self.calls {
            writeln!(
                f,
                "  {} {:?}{}, ringing since {}",
                c.call_id
                    .as_deref()
                    .map(|id| format!("call {id}"))
                    .unwrap_or_else(|| "a call with no call id".into()),
                c.state,
                if c.has_offer { "" } else { " (no INVITE yet)" },
                crate::outcome::since(self.origin, c.ringing_since)
            )?;
        }
        writeln!(f, "what the user saw:")?;
        if self.outcomes.is_empty() {
            writeln!(f, "  (nothing)")?;
        }
        for o in &self.outcomes {
            writeln!(f, "  {}", o.describe(self.origin))?;
        }
        Ok(())
    }
}

/// A wait that ended without the condition becoming true.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The deadline passed.
    #[error("the phone did not show {what} within {within:?}; instead:\n{last}")]
    Timeout {
        /// What was awaited, in words.
        what: String,
        /// The deadline.
        within: Duration,
        /// The phone as it was at the deadline.
        last: Box<Snapshot>,
    },
    /// The driver task is gone.
    #[error("the phone driver stopped")]
    Stopped,
}

/// Feeds the phone and watches it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PhoneHandle {
    inputs: mpsc::UnboundedSender<Input>,
    snapshots: watch::Receiver<Snapshot>,
}

impl PhoneHandle {
    /// Hands an input to the phone (applied at the time the driver receives it). Returns false
    /// when the driver has stopped.
    pub fn send(&self, input: Input) -> bool {
        self.inputs.send(input).is_ok()
    }

    /// The phone now.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshots.borrow().clone()
    }

    /// Waits until `condition` holds on the phone, for at most `within`.
    pub async fn wait_until(
        &self,
        what: &str,
        within: Duration,
        condition: impl Fn(&Snapshot) -> bool,
    ) -> Result<Snapshot, WaitError> {
        let mut rx = self.snapshots.clone();
        let result = tokio::time::timeout(within, rx.wait_for(|s| condition(s))).await;
        match result {
            Ok(Ok(s)) => Ok(s.clone()),
            Ok(Err(_)) => Err(WaitError::Stopped),
            Err(_) => Err(WaitError::Timeout {
                what: what.to_owned(),
                within,
                last: Box::new(self.snapshot()),
            }),
        }
    }
}

/// Starts the driver task for `model`. Returns the handle and the actions for the glue. The task
/// ends when every handle is dropped.
pub fn spawn(
    model: Iphone,
    config: DriverConfig,
) -> (PhoneHandle, mpsc::UnboundedReceiver<Action>) {
    let (input_tx, input_rx) = mpsc::unbounded_channel();
    let (action_tx, action_rx) = mpsc::unbounded_channel();
    let (snap_tx, snap_rx) = watch::channel(Snapshot::of(&model, Vec::new()));
    tokio::spawn(run(model, config, input_rx, action_tx, snap_tx));
    (
        PhoneHandle {
            inputs: input_tx,
            snapshots: snap_rx,
        },
        action_rx,
    )
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

async fn run(
    mut model: Iphone,
    config: DriverConfig,
    mut inputs: mpsc::UnboundedReceiver<Input>,
    actions: mpsc::UnboundedSender<Action>,
    snapshots: watch::Sender<Snapshot>,
) {
    let mut delayed: Vec<(Instant, Action)> = Vec::new();
    let mut history: Vec<(Instant, Action)> = Vec::new();
    loop {
        let next_wake = delayed.iter().map(|(t, _)| *t).min();
        let next = [model.next_deadline(), next_wake]
            .into_iter()
            .flatten()
            .min();
        let produced = tokio::select! {
            input = inputs.recv() => match input {
                Some(input) => model.handle(now(), input),
                None => return,
            },
            _ = sleep_until(next) => model.tick(now()),
        };
        let at = now();
        for action in produced {
            if matches!(action, Action::WakeAccount { .. }) && !config.wake_delay.is_zero() {
                delayed.push((at + config.wake_delay, action));
            } else {
                history.push((at, action.clone()));
                let _ = actions.send(action);
            }
        }
        let (due, later): (Vec<_>, Vec<_>) = delayed.into_iter().partition(|(t, _)| *t <= at);
        delayed = later;
        for (_, action) in due {
            history.push((at, action.clone()));
            let _ = actions.send(action);
        }
        snapshots.send_replace(Snapshot::of(&model, history.clone()));
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeliveredPush, IphoneConfig, PushPayload, WallClock};
    use timeline::{Protocol, Recorder};

    const DEADLINE: Duration = Duration::from_secs(30);

    fn phone(wake_delay: Duration) -> (PhoneHandle, mpsc::UnboundedReceiver<Action>, Instant) {
        let t0 = now();
        let model = Iphone::new(
            IphoneConfig::default(),
            WallClock::new(t0, 1_700_000_000_000),
            Recorder::off("alice-iphone", Protocol::Note),
        );
        let (handle, actions) = spawn(model, DriverConfig { wake_delay });
        (handle, actions, t0)
    }

    fn call_push(call_id: &str) -> Input {
        let payload = PushPayload::call(call_id, "sip:bob@example.com", 1_700_000_000_000);
        Input::Push(DeliveredPush::voip(
            "com.example.app.voip",
            "id-1",
            payload.to_json(),
        ))
    }

    async fn next_action(rx: &mut mpsc::UnboundedReceiver<Action>) -> Action {
        tokio::time::timeout(DEADLINE, rx.recv())
            .await
            .expect("an action within the deadline")
            .expect("the driver runs")
    }

    #[tokio::test(start_paused = true)]
    async fn the_call_is_reported_at_once_and_the_account_woken_after_the_wake_delay() {
        let (handle, mut actions, t0) = phone(Duration::from_secs(1));
        assert!(handle.send(call_push("c1")));
        assert!(matches!(
            next_action(&mut actions).await,
            Action::ReportIncomingCall { .. }
        ));
        assert_eq!(now(), t0, "reported with no delay");
        assert!(matches!(
            next_action(&mut actions).await,
            Action::WakeAccount {
                new_connection: true
            }
        ));
        assert_eq!(now().duration_since(t0), Duration::from_secs(1));
        let s = handle.snapshot();
        assert_eq!(s.rang_from_push("c1"), Some(t0));
        let s = handle
            .wait_until("ringing", DEADLINE, |s| s.is_ringing("c1"))
            .await
            .unwrap();
        assert_eq!(s.actions.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_grace_timer_fires_without_any_input() {
        let (handle, _actions, t0) = phone(Duration::ZERO);
        handle.send(call_push("c1"));
        let s = handle
            .wait_until("a missed call", DEADLINE, |s| {
                s.outcomes
                    .iter()
                    .any(|o| matches!(o, Outcome::Missed { .. }))
            })
            .await
            .unwrap();
        assert_eq!(now().duration_since(t0), Duration::from_secs(4));
        assert!(s.calls.is_empty());
        assert!(s.missed("c1") && !s.ghost("c1"));
        assert_eq!(
            s.ended("c1"),
            Some((t0 + Duration::from_secs(4), EndReason::Failed))
        );
        assert_eq!((s.bogus_calls(), s.terminations()), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn an_early_answer_is_fulfilled_when_the_offer_arrives() {
        let (handle, mut actions, _) = phone(Duration::ZERO);
        handle.send(call_push("c1"));
        handle.send(Input::Answer { call_id: None });
        handle.send(Input::Offer {
            call_id: "c1".into(),
            caller: "sip:bob@example.com".into(),
        });
        let mut seen = Vec::new();
        while !matches!(seen.last(), Some(Action::Answer { .. })) {
            seen.push(next_action(&mut actions).await);
        }
        assert_eq!(
            seen.last(),
            Some(&Action::Answer {
                call_id: "c1".into()
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_that_times_out_says_what_the_phone_showed() {
        let (handle, _actions, _) = phone(Duration::ZERO);
        handle.send(call_push("c1"));
        let err = handle
            .wait_until("an answered call", Duration::from_millis(500), |s| {
                s.outcomes
                    .iter()
                    .any(|o| matches!(o, Outcome::Answered { .. }))
            })
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("did not show an answered call"), "{text}");
        assert!(text.contains("Ringing"), "{text}");
    }
}

#[cfg(test)]
mod display_tests {
    use super::*;

    #[test]
    fn a_snapshot_reads_as_sentences_with_times_from_the_scenario_start() {
        let origin = Instant::now();
        let later = origin + Duration::from_millis(1234);
        let s = Snapshot {
            outcomes: vec![
                Outcome::BogusCall {
                    apns_id: "A-1".into(),
                    at: later,
                },
                Outcome::Missed {
                    call_id: "c1".into(),
                    at: later,
                    reason: crate::EndReason::Unanswered,
                },
            ],
            origin: Some(origin),
            ..Snapshot::default()
        };
        let text = s.to_string();
        assert!(
            text.contains("rang for a VoIP push that carried no call (apns-id A-1) at +1234 ms"),
            "{text}"
        );
        assert!(
            text.contains("missed call c1 at +1234 ms (unanswered)"),
            "{text}"
        );
        assert!(!text.contains("Instant"), "no debug structs: {text}");
        assert!(!text.contains('{'), "no debug structs: {text}");
    }
}
