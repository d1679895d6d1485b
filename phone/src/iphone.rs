//! The iPhone state machine: iOS 13+ PushKit/CallKit rules applied to pushes, signalling, taps and
//! time. Sans-IO: every input comes with its `now`, nothing reads a clock, and the result is a list
//! of [`Action`]s for the driver plus the [`Outcome`]s the user saw.

use crate::action::{Action, EndReason, STATUS_DECLINE, STATUS_GONE};
use crate::config::{IphoneConfig, NonCallVoipPolicy, WallClock};
use crate::input::{DeliveredPush, Input, PushType};
use crate::outcome::Outcome;
use crate::payload::{CancelReason, PayloadKind, PushPayload};
use std::collections::{HashMap, HashSet};
use std::time::Instant;
use timeline::Recorder;
use uuid::Uuid;

/// Where a CallKit call stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    /// The phone is ringing.
    Ringing,
    /// The user tapped Answer before the offer arrived: `CXAnswerCallAction` is held.
    AnswerPending,
    /// Answered and connected.
    Connected,
}

/// A CallKit call the phone currently has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallView {
    /// CallKit's id.
    pub uuid: Uuid,
    /// The call's id (`None` for a bogus call).
    pub call_id: Option<String>,
    /// The caller, when known.
    pub caller: Option<String>,
    /// Its state.
    pub state: CallState,
    /// Whether the offer (INVITE) has arrived.
    pub has_offer: bool,
    /// When ringing started.
    pub ringing_since: Instant,
}

/// One `reportNewIncomingCall`: when, for which call, and whether a push triggered it (the iOS 13
/// rule) or the offer did (a phone that was awake).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// CallKit's id.
    pub uuid: Uuid,
    /// The call's id (`None` for a bogus call).
    pub call_id: Option<String>,
    /// When.
    pub at: Instant,
    /// True when a VoIP push made the phone report it; false when an offer did.
    pub by_push: bool,
}

/// One CallKit call that ended: when and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallEnd {
    /// CallKit's id.
    pub uuid: Uuid,
    /// The call's id (`None` for a bogus call).
    pub call_id: Option<String>,
    /// When.
    pub at: Instant,
    /// Why.
    pub reason: EndReason,
}

#[derive(Clone, Debug)]
struct Call {
    view: CallView,
    /// When ringing stopped (answer tapped), for calls that are no longer ringing.
    ring_to: Option<Instant>,
    /// End with `.failed` if no offer by then.
    offer_deadline: Option<Instant>,
    /// End with `.unanswered` if still ringing by then.
    ring_deadline: Option<Instant>,
}

/// The simulated iPhone with one VoIP app. See the crate docs for the rules.
#[derive(Debug)]
pub struct Iphone {
    config: IphoneConfig,
    clock: WallClock,
    recorder: Recorder,
    calls: Vec<Call>,
    /// Calls that ended on the phone; the value is true when the user declined.
    ended_here: HashMap<String, bool>,
    /// When each call ended at the caller, as the phone learnt it (CANCEL, BYE, cancel push).
    known_ended: HashMap<String, Instant>,
    /// When each call ended at the caller, as the bench knows it (also the phone's knowledge);
    /// only used to classify ghost calls, never to decide what the phone does.
    caller_ended: HashMap<String, Instant>,
    ghosts: HashSet<String>,
    outcomes: Vec<Outcome>,
    reports: Vec<Report>,
    ends: Vec<CallEnd>,
    misses: u32,
    voip_cut_off: bool,
    app_running: bool,
    dropped_voip_pushes: u32,
    next_uuid: u64,
}

impl Iphone {
    /// A phone whose app is not running (asleep), with no calls.
    pub fn new(config: IphoneConfig, clock: WallClock, recorder: Recorder) -> Self {
        Iphone {
            config,
            clock,
            recorder,
            calls: Vec::new(),
            ended_here: HashMap::new(),
            known_ended: HashMap::new(),
            caller_ended: HashMap::new(),
            ghosts: HashSet::new(),
            outcomes: Vec::new(),
            reports: Vec::new(),
            ends: Vec::new(),
            misses: 0,
            voip_cut_off: false,
            app_running: false,
            dropped_voip_pushes: 0,
            next_uuid: 1,
        }
    }

    /// Applies one input at `now` (first firing any timer due by `now`) and returns what the driver
    /// must do, in order.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        self.fire_timers(now, &mut out);
        match input {
            Input::Push(push) => self.on_push(now, push, &mut out),
            Input::Offer { call_id, caller } => self.on_offer(now, call_id, caller, &mut out),
            Input::Cancel { call_id, reason } => {
                self.recorder.note(format!(
                    "SIP: offer cancelled call-id={call_id} ({reason:?})"
                ));
                self.learn_ended(call_id.clone(), now);
                self.end_by_remote(now, &call_id, reason, &mut out);
            }
            Input::RemoteBye { call_id } => {
                self.learn_ended(call_id.clone(), now);
                self.end_by_remote(now, &call_id, CancelReason::CallerHungUp, &mut out);
            }
            Input::Registered { ok } => {
                self.recorder.note(if ok {
                    "account: registered"
                } else {
                    "account: registration failed"
                });
            }
            Input::Answer { call_id } => self.on_answer(now, call_id, &mut out),
            Input::Decline { call_id } => self.on_decline(now, call_id, &mut out),
            Input::HangUp { call_id } => self.on_hang_up(now, call_id, &mut out),
            Input::CallerEnded { call_id, at } => self.on_caller_ended(call_id, at),
            Input::Tick => {}
        }
        out
    }

    /// Fires the timers due by `now` (same as `handle(now, Input::Tick)`).
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        self.handle(now, Input::Tick)
    }

    /// The earliest time a timer is due, for the driver to sleep until.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.calls
            .iter()
            .flat_map(|c| [c.offer_deadline, c.ring_deadline])
            .flatten()
            .min()
    }

    /// The scenario's start (its timeline's origin), from which times are shown to people.
    pub fn origin(&self) -> Option<Instant> {
        self.recorder.origin()
    }

    /// Everything the user saw so far, in order.
    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    /// Every CallKit report so far, in order.
    pub fn reports(&self) -> &[Report] {
        &self.reports
    }

    /// Every CallKit call that ended so far, in order.
    pub fn ends(&self) -> &[CallEnd] {
        &self.ends
    }

    /// The CallKit calls the phone has now.
    pub fn calls(&self) -> impl Iterator<Item = &CallView> {
        self.calls.iter().map(|c| &c.view)
    }

    /// Whether the phone is ringing for this call now.
    pub fn is_ringing(&self, call_id: &str) -> bool {
        self.calls.iter().any(|c| {
            c.view.call_id.as_deref() == Some(call_id) && c.view.state == CallState::Ringing
        })
    }

    /// Whether the phone is ringing at all.
    pub fn is_ringing_any(&self) -> bool {
        self.calls
            .iter()
            .any(|c| c.view.state == CallState::Ringing)
    }

    /// True once iOS has stopped delivering VoIP pushes to the app.
    pub fn voip_cut_off(&self) -> bool {
        self.voip_cut_off
    }

    /// How many VoIP pushes the app failed to report.
    pub fn misses(&self) -> u32 {
        self.misses
    }

    /// How many VoIP pushes iOS dropped because delivery was cut off.
    pub fn dropped_voip_pushes(&self) -> u32 {
        self.dropped_voip_pushes
    }

    /// Whether the app process is running (launched by a push, not terminated since).
    pub fn app_running(&self) -> bool {
        self.app_running
    }

    // ---- pushes ---------------------------------------------------------------------------

    fn on_push(&mut self, now: Instant, push: DeliveredPush, out: &mut Vec<Action>) {
        if push.push_type != PushType::Voip {
            self.on_notification_push(now, push, out);
            return;
        }
        if self.voip_cut_off {
            self.dropped_voip_pushes += 1;
            self.recorder.note(format!(
                "iOS: VoIP push apns-id={} not delivered: VoIP delivery is cut off for this app",
                push.apns_id
            ));
            return;
        }
        self.recorder.note(format!(
            "PushKit: VoIP push apns-id={} topic={} priority={} expiration={}",
            push.apns_id, push.topic, push.priority, push.expiration
        ));
        if !self.app_running {
            self.app_running = true;
            self.recorder
                .note("iOS: app launched in the background for a VoIP push");
        }
        if !self.config.reports_voip_pushes {
            self.miss(now, "VoIP push not reported", out);
            return;
        }
        let payload = match PushPayload::parse(&push.payload) {
            Ok(p) => p,
            Err(e) => {
                self.recorder
                    .note(format!("app: VoIP push payload unusable: {e}"));
                self.on_non_call_voip(now, &push, out);
                return;
            }
        };
        match payload.kind {
            PayloadKind::Message => self.on_non_call_voip(now, &push, out),
            PayloadKind::Call => self.on_call_push(now, payload, out),
            PayloadKind::Cancel => self.on_cancel_push(now, payload, true, out),
        }
    }

    fn on_call_push(&mut self, now: Instant, payload: PushPayload, out: &mut Vec<Action>) {
        let call_id = payload.call_id.unwrap_or_default();
        out.push(Action::WakeAccount {
            new_connection: self.config.new_connection_on_wake,
        });
        if let Some(existing) = self.find(&call_id) {
            let uuid = self.calls[existing].view.uuid;
            self.recorder.note(format!(
                "CallKit: call-id={call_id} already reported (uuid {uuid}); no new call"
            ));
            return;
        }
        let idx = self.report(now, Some(call_id.clone()), payload.caller, false, out);
        let known_ended =
            self.known_ended.contains_key(&call_id) || self.ended_here.contains_key(&call_id);
        let age = payload
            .send_time_ms
            .and_then(|ms| self.clock.instant(ms))
            .map(|sent| now.saturating_duration_since(sent));
        if known_ended {
            self.recorder.note(format!(
                "app: push for call-id={call_id} that already ended: reported, ending at once"
            ));
            self.end_call(idx, now, EndReason::RemoteEnded, out);
        } else if let Some(age) = age.filter(|a| *a > self.config.stale_after) {
            self.recorder.note(format!(
                "app: stale push for call-id={call_id} (sent {} ms ago): reported, ending at once",
                age.as_millis()
            ));
            self.end_call(idx, now, EndReason::Failed, out);
        }
    }

    fn on_cancel_push(
        &mut self,
        now: Instant,
        payload: PushPayload,
        is_voip: bool,
        out: &mut Vec<Action>,
    ) {
        let call_id = payload.call_id.unwrap_or_default();
        let ended_at = payload
            .send_time_ms
            .and_then(|ms| self.clock.instant(ms))
            .filter(|t| *t <= now)
            .unwrap_or(now);
        self.learn_ended(call_id.clone(), ended_at);
        let reason = payload.reason.unwrap_or_default();
        if self.find(&call_id).is_some() {
            self.recorder
                .note(format!("app: call-ended push for call-id={call_id}"));
            self.end_by_remote(now, &call_id, reason, out);
        } else if is_voip {
            // iOS still demands a CallKit report for this VoIP push: the user sees a flash ring.
            self.recorder.note(format!(
                "app: call-ended VoIP push for unknown call-id={call_id}: reported, ending at once"
            ));
            out.push(Action::WakeAccount {
                new_connection: self.config.new_connection_on_wake,
            });
            let idx = self.report(now, Some(call_id), None, false, out);
            self.end_call(idx, now, EndReason::RemoteEnded, out);
        }
    }

    fn on_non_call_voip(&mut self, now: Instant, push: &DeliveredPush, out: &mut Vec<Action>) {
        match self.config.non_call_voip {
            NonCallVoipPolicy::Terminate => {
                self.miss(now, "VoIP push without a call not reported", out)
            }
            NonCallVoipPolicy::BogusCall => {
                self.recorder.note(format!(
                    "app: VoIP push apns-id={} carries no call: bogus CallKit call",
                    push.apns_id
                ));
                self.outcomes.push(Outcome::BogusCall {
                    apns_id: push.apns_id.clone(),
                    at: now,
                });
                out.push(Action::WakeAccount {
                    new_connection: self.config.new_connection_on_wake,
                });
                let idx = self.report(now, None, None, false, out);
                self.end_call(idx, now, EndReason::Failed, out);
            }
        }
    }

    fn on_notification_push(&mut self, now: Instant, push: DeliveredPush, out: &mut Vec<Action>) {
        let payload = PushPayload::parse(&push.payload).ok();
        let text = match push.push_type {
            PushType::Alert => payload.as_ref().and_then(PushPayload::alert_text),
            _ => None,
        };
        self.recorder.note(format!(
            "NSE: {} push apns-id={} handled without CallKit{}",
            push.push_type,
            push.apns_id,
            text.as_deref()
                .map(|t| format!(", shows {t:?}"))
                .unwrap_or_default()
        ));
        self.outcomes.push(Outcome::Notification {
            apns_id: push.apns_id.clone(),
            push_type: push.push_type.clone(),
            text: text.clone(),
            at: now,
        });
        out.push(Action::ShowNotification {
            apns_id: push.apns_id,
            push_type: push.push_type,
            text,
        });
        if let Some(p) = payload.filter(|p| p.kind == PayloadKind::Cancel) {
            self.on_cancel_push(now, p, false, out);
        }
    }

    fn miss(&mut self, now: Instant, why: &str, out: &mut Vec<Action>) {
        self.misses += 1;
        let reason = why.to_owned();
        self.recorder
            .note(format!("iOS: app terminated: {why} (miss {})", self.misses));
        while !self.calls.is_empty() {
            self.end_call(0, now, EndReason::Failed, out);
        }
        self.app_running = false;
        self.outcomes.push(Outcome::AppTerminated {
            at: now,
            reason: reason.clone(),
        });
        out.push(Action::AppTerminated { reason });
        if self.misses >= self.config.misses_before_cut_off && !self.voip_cut_off {
            self.voip_cut_off = true;
            self.recorder.note(format!(
                "iOS: VoIP delivery cut off for this app after {} unreported pushes",
                self.misses
            ));
            self.outcomes.push(Outcome::VoipCutOff { at: now });
        }
    }

    // ---- signalling ---------------------------------------------------------------------

    fn on_offer(&mut self, now: Instant, call_id: String, caller: String, out: &mut Vec<Action>) {
        if let Some(idx) = self.find(&call_id) {
            let call = &mut self.calls[idx];
            if call.view.has_offer {
                self.recorder
                    .note(format!("SIP: repeated offer for call-id={call_id} ignored"));
                return;
            }
            call.view.has_offer = true;
            call.offer_deadline = None;
            if call.view.caller.is_none() {
                call.view.caller = Some(caller);
            }
            match call.view.state {
                CallState::Ringing => {
                    call.ring_deadline = Some(now + self.config.ring_timeout);
                    self.recorder
                        .note(format!("SIP: offer arrived for ringing call-id={call_id}"));
                }
                CallState::AnswerPending => {
                    call.view.state = CallState::Connected;
                    let waited = now.saturating_duration_since(call.ring_to.unwrap_or(now));
                    self.recorder.note(format!(
                        "CallKit: held answer fulfilled for call-id={call_id} after {} ms",
                        waited.as_millis()
                    ));
                    out.push(Action::Answer {
                        call_id: call_id.clone(),
                    });
                    self.outcomes.push(Outcome::Answered { call_id, at: now });
                }
                CallState::Connected => {}
            }
            return;
        }
        if let Some(&declined) = self.ended_here.get(&call_id) {
            let status = if declined {
                STATUS_DECLINE
            } else {
                STATUS_GONE
            };
            self.recorder.note(format!(
                "app: offer for call-id={call_id} that already ended here: rejected {status}"
            ));
            out.push(Action::Reject { call_id, status });
            return;
        }
        self.report(now, Some(call_id.clone()), Some(caller), true, out);
        if let Some(idx) = self.find(&call_id) {
            self.calls[idx].ring_deadline = Some(now + self.config.ring_timeout);
        }
    }

    fn end_by_remote(
        &mut self,
        now: Instant,
        call_id: &str,
        reason: CancelReason,
        out: &mut Vec<Action>,
    ) {
        let Some(idx) = self.find(call_id) else {
            self.recorder.note(format!(
                "app: end of call-id={call_id} for a call the phone does not have"
            ));
            return;
        };
        let end = match reason {
            CancelReason::CallerHungUp => EndReason::RemoteEnded,
            CancelReason::AnsweredElsewhere => EndReason::AnsweredElsewhere,
            CancelReason::DeclinedElsewhere => EndReason::DeclinedElsewhere,
        };
        self.end_call(idx, now, end, out);
    }

    // ---- the user -----------------------------------------------------------------------

    fn on_answer(&mut self, now: Instant, call_id: Option<String>, out: &mut Vec<Action>) {
        let Some(idx) = self.target(call_id.as_deref(), CallState::Ringing) else {
            self.recorder
                .note("user: tapped Answer, but nothing is ringing");
            return;
        };
        let call = &mut self.calls[idx];
        let id = call.view.call_id.clone().unwrap_or_default();
        call.ring_to = Some(now);
        call.ring_deadline = None;
        self.outcomes.push(Outcome::Rang {
            call_id: call.view.call_id.clone(),
            from: call.view.ringing_since,
            to: now,
        });
        if call.view.has_offer {
            call.view.state = CallState::Connected;
            self.recorder
                .note(format!("CallKit: answered call-id={id}"));
            out.push(Action::Answer {
                call_id: id.clone(),
            });
            self.outcomes.push(Outcome::Answered {
                call_id: id.clone(),
                at: now,
            });
        } else {
            call.view.state = CallState::AnswerPending;
            self.recorder.note(format!(
                "CallKit: Answer tapped before the offer for call-id={id}: holding CXAnswerCallAction"
            ));
        }
        self.check_ghost(&id, now);
    }

    fn on_decline(&mut self, now: Instant, call_id: Option<String>, out: &mut Vec<Action>) {
        let Some(idx) = self.target(call_id.as_deref(), CallState::Ringing) else {
            self.recorder
                .note("user: tapped Decline, but nothing is ringing");
            return;
        };
        if let (true, Some(id)) = (
            self.calls[idx].view.has_offer,
            self.calls[idx].view.call_id.clone(),
        ) {
            out.push(Action::Reject {
                call_id: id,
                status: STATUS_DECLINE,
            });
        }
        self.end_call(idx, now, EndReason::Declined, out);
    }

    fn on_hang_up(&mut self, now: Instant, call_id: Option<String>, out: &mut Vec<Action>) {
        let Some(idx) = self.target(call_id.as_deref(), CallState::Connected) else {
            self.recorder
                .note("user: tapped Hang Up, but no call is connected");
            return;
        };
        if let Some(id) = self.calls[idx].view.call_id.clone() {
            out.push(Action::HangUp { call_id: id });
        }
        self.end_call(idx, now, EndReason::HungUp, out);
    }

    /// The phone learnt that the call ended at the caller at `at`.
    fn learn_ended(&mut self, call_id: String, at: Instant) {
        let entry = self.known_ended.entry(call_id.clone()).or_insert(at);
        if at < *entry {
            *entry = at;
        }
        self.on_caller_ended(call_id, at);
    }

    fn on_caller_ended(&mut self, call_id: String, at: Instant) {
        let at = match self.caller_ended.get(&call_id) {
            Some(&earlier) if earlier <= at => earlier,
            _ => at,
        };
        self.caller_ended.insert(call_id.clone(), at);
        // A ring that already happened may turn out to have been a ghost.
        let late_rings: Vec<(Instant, Instant)> = self
            .outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Rang {
                    call_id: Some(id),
                    from,
                    to,
                } if *id == call_id && *from >= at => Some((*from, *to)),
                _ => None,
            })
            .collect();
        if let Some((from, to)) = late_rings.first() {
            if self.ghosts.insert(call_id.clone()) {
                self.recorder.note(format!(
                    "user: rang for call-id={call_id} that had already ended at the caller (ghost call)"
                ));
                self.outcomes.push(Outcome::GhostCall {
                    call_id,
                    from: *from,
                    to: *to,
                });
            }
        }
    }

    // ---- timers -------------------------------------------------------------------------

    fn fire_timers(&mut self, now: Instant, out: &mut Vec<Action>) {
        loop {
            let due = self
                .calls
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let offer = c.offer_deadline.map(|d| (d, i, EndReason::Failed));
                    let ring = c.ring_deadline.map(|d| (d, i, EndReason::Unanswered));
                    [offer, ring].into_iter().flatten().min_by_key(|t| t.0)
                })
                .filter(|(d, _, _)| *d <= now)
                .min_by_key(|t| t.0);
            let Some((deadline, idx, reason)) = due else {
                return;
            };
            let id = self.calls[idx].view.call_id.clone().unwrap_or_default();
            if reason == EndReason::Failed {
                self.recorder.note(format!(
                    "app: no offer for call-id={id} within {} ms",
                    self.config.offer_grace.as_millis()
                ));
            } else if self.calls[idx].view.has_offer {
                out.push(Action::Reject {
                    call_id: id,
                    status: STATUS_GONE,
                });
            }
            self.end_call(idx, deadline, reason, out);
        }
    }

    // ---- CallKit bookkeeping ------------------------------------------------------------

    fn report(
        &mut self,
        now: Instant,
        call_id: Option<String>,
        caller: Option<String>,
        has_offer: bool,
        out: &mut Vec<Action>,
    ) -> usize {
        let uuid = Uuid::from_u64_pair(self.config.uuid_seed, self.next_uuid);
        self.next_uuid += 1;
        self.recorder.note(format!(
            "CallKit: reportNewIncomingCall call-id={} uuid={uuid}",
            call_id.as_deref().unwrap_or("(none)")
        ));
        out.push(Action::ReportIncomingCall {
            uuid,
            call_id: call_id.clone(),
            caller: caller.clone(),
        });
        self.reports.push(Report {
            uuid,
            call_id: call_id.clone(),
            at: now,
            by_push: !has_offer,
        });
        self.calls.push(Call {
            view: CallView {
                uuid,
                call_id,
                caller,
                state: CallState::Ringing,
                has_offer,
                ringing_since: now,
            },
            ring_to: None,
            offer_deadline: (!has_offer).then(|| now + self.config.offer_grace),
            ring_deadline: None,
        });
        self.calls.len() - 1
    }

    fn end_call(&mut self, idx: usize, now: Instant, reason: EndReason, out: &mut Vec<Action>) {
        let call = self.calls.remove(idx);
        let view = call.view;
        let id = view.call_id.clone();
        self.recorder.note(format!(
            "CallKit: call ended ({reason}) call-id={}",
            id.as_deref().unwrap_or("(none)")
        ));
        out.push(Action::EndCall {
            uuid: view.uuid,
            call_id: id.clone(),
            reason,
        });
        self.ends.push(CallEnd {
            uuid: view.uuid,
            call_id: id.clone(),
            at: now,
            reason,
        });
        if view.state == CallState::Ringing {
            self.outcomes.push(Outcome::Rang {
                call_id: id.clone(),
                from: view.ringing_since,
                to: now,
            });
        }
        let Some(id) = id else {
            return; // a bogus call: its outcome is already recorded
        };
        let outcome = match (view.state, reason) {
            (CallState::Connected, _) => Outcome::CallEnded {
                call_id: id.clone(),
                at: now,
                reason,
            },
            (_, EndReason::AnsweredElsewhere) => Outcome::AnsweredElsewhere {
                call_id: id.clone(),
                at: now,
            },
            (_, EndReason::DeclinedElsewhere) => Outcome::DeclinedElsewhere {
                call_id: id.clone(),
                at: now,
            },
            (CallState::AnswerPending, _) => Outcome::AnswerFailed {
                call_id: id.clone(),
                at: now,
            },
            (CallState::Ringing, EndReason::Declined) => Outcome::Declined {
                call_id: id.clone(),
                at: now,
            },
            (CallState::Ringing, _) => Outcome::Missed {
                call_id: id.clone(),
                at: now,
                reason,
            },
        };
        self.outcomes.push(outcome);
        self.ended_here
            .insert(id.clone(), reason == EndReason::Declined);
        if view.state != CallState::Connected {
            self.check_ghost(&id, now);
        }
    }

    /// Records a ghost call if this call's ring started at or after the caller's end.
    fn check_ghost(&mut self, call_id: &str, _now: Instant) {
        if let Some(&ended) = self.caller_ended.get(call_id) {
            self.on_caller_ended(call_id.to_owned(), ended);
        }
    }

    fn find(&self, call_id: &str) -> Option<usize> {
        self.calls
            .iter()
            .position(|c| c.view.call_id.as_deref() == Some(call_id))
    }

    /// The call a tap applies to: the named one, or the latest call in `state`.
    fn target(&self, call_id: Option<&str>, state: CallState) -> Option<usize> {
        match call_id {
            Some(id) => self.find(id).filter(|&i| self.calls[i].view.state == state),
            None => self.calls.iter().rposition(|c| c.view.state == state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use timeline::{Protocol, Timeline};

    const T0_MS: u64 = 1_700_000_000_000;
    const TOPIC: &str = "com.example.app.voip";

    struct Bench {
        t0: Instant,
        phone: Iphone,
        timeline: Timeline,
    }

    impl Bench {
        fn new(config: IphoneConfig) -> Self {
            let t0 = Instant::now();
            let timeline = Timeline::new();
            let phone = Iphone::new(
                config,
                WallClock::new(t0, T0_MS),
                timeline.recorder("alice-iphone", Protocol::Note),
            );
            Bench {
                t0,
                phone,
                timeline,
            }
        }
        fn at(&self, ms: u64) -> Instant {
            self.t0 + Duration::from_millis(ms)
        }
        fn send(&mut self, ms: u64, input: Input) -> Vec<Action> {
            let now = self.at(ms);
            self.phone.handle(now, input)
        }
        fn call_push(&mut self, ms: u64, call_id: &str) -> Vec<Action> {
            self.call_push_sent_at(ms, call_id, T0_MS + ms)
        }
        fn call_push_sent_at(&mut self, ms: u64, call_id: &str, sent_ms: u64) -> Vec<Action> {
            let payload = PushPayload::call(call_id, "sip:bob@example.com", sent_ms).to_json();
            self.send(
                ms,
                Input::Push(DeliveredPush::voip(TOPIC, format!("apns-{ms}"), payload)),
            )
        }
        fn raw_voip(&mut self, ms: u64, payload: &[u8]) -> Vec<Action> {
            self.send(
                ms,
                Input::Push(DeliveredPush::voip(
                    TOPIC,
                    format!("apns-{ms}"),
                    payload.to_vec(),
                )),
            )
        }
        fn offer(&mut self, ms: u64, call_id: &str) -> Vec<Action> {
            self.send(
                ms,
                Input::Offer {
                    call_id: call_id.into(),
                    caller: "sip:bob@example.com".into(),
                },
            )
        }
        fn notes(&self) -> Vec<String> {
            self.timeline
                .events()
                .into_iter()
                .map(|e| e.summary)
                .collect()
        }
    }

    fn reports(actions: &[Action]) -> usize {
        actions
            .iter()
            .filter(|a| matches!(a, Action::ReportIncomingCall { .. }))
            .count()
    }

    fn end_reasons(actions: &[Action]) -> Vec<EndReason> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::EndCall { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_voip_call_push_reports_a_call_at_once_and_wakes_the_account() {
        let mut b = Bench::new(IphoneConfig::default());
        let actions = b.call_push(0, "c1");
        assert_eq!(
            actions[0],
            Action::WakeAccount {
                new_connection: true
            }
        );
        match &actions[1] {
            Action::ReportIncomingCall {
                call_id, caller, ..
            } => {
                assert_eq!(call_id.as_deref(), Some("c1"));
                assert_eq!(caller.as_deref(), Some("sip:bob@example.com"));
            }
            other => panic!("expected a CallKit report, got {other:?}"),
        }
        assert_eq!(actions.len(), 2);
        assert!(b.phone.is_ringing("c1"));
        assert!(b.phone.app_running());
        assert!(b
            .notes()
            .iter()
            .any(|n| n.starts_with("CallKit: reportNewIncomingCall call-id=c1")));
    }

    #[test]
    fn a_second_push_for_the_same_call_is_not_reported_again() {
        let mut b = Bench::new(IphoneConfig::default());
        b.call_push(0, "c1");
        let again = b.call_push(100, "c1");
        assert_eq!(reports(&again), 0, "{again:?}");
        assert_eq!(b.phone.calls().count(), 1);
        assert_eq!(b.phone.misses(), 0);
        // A different call is reported.
        assert_eq!(reports(&b.call_push(200, "c2")), 1);
    }

    #[test]
    fn offer_then_answer_connects_the_call() {
        let mut b = Bench::new(IphoneConfig::default());
        b.call_push(0, "c1");
        assert!(b.offer(900, "c1").is_empty());
        let actions = b.send(
            1500,
            Input::Answer {
                call_id: Some("c1".into()),
            },
        );
        assert_eq!(
            actions,
            vec![Action::Answer {
                call_id: "c1".into()
            }]
        );
        assert_eq!(
            b.phone.outcomes(),
            &[
                Outcome::Rang {
                    call_id: Some("c1".into()),
                    from: b.at(0),
                    to: b.at(1500)
                },
                Outcome::Answered {
                    call_id: "c1".into(),
                    at: b.at(1500)
                }
            ]
        );
        assert_eq!(b.phone.next_deadline(), None);
    }

    #[test]
    fn an_early_answer_waits_for_the_offer_then_answers() {
        let mut b = Bench::new(IphoneConfig::default());
        b.call_push(0, "c1");
        let tap = b.send(300, Input::Answer { call_id: None });
        assert!(tap.is_empty(), "no answer before the offer: {tap:?}");
        assert!(!b.phone.is_ringing("c1"));
        let actions = b.offer(1200, "c1");
        assert_eq!(
            actions,
            vec![Action::Answer {
                call_id: "c1".into()
            }]
        );
        assert!(b.phone.outcomes().contains(&Outcome::Answered {
            call_id: "c1".into(),
            at: b.at(1200)
        }));
        assert!(b.phone.outcomes().contains(&Outcome::Rang {
            call_id: Some("c1".into()),
            from: b.at(0),
            to: b.at(300)
        }));
    }

    #[test]
    fn an_early_answer_without_an_offer_fails_after_the_grace_period() {
        let mut b = Bench::new(IphoneConfig::default());
        b.call_push(0, "c1");
        b.send(300, Input::Answer { call_id: None });
        assert!(b.phone.tick(b.at(3999)).is_empty());
        let actions = b.phone.tick(b.at(4000));
        assert_eq!(end_reasons(&actions), vec![EndReason::Failed]);
        assert!(b.phone.outcomes().contains(&Outcome::AnswerFailed {
            call_id: "c1".into(),
            at: b.at(4000)
        }));
    }

    #[test]
    fn no_offer_within_the_grace_period_ends_the_call_as_failed_and_missed() {
        let mut b = Bench::new(IphoneConfig::default());
        b.call_push(1000, "c1");
        assert_eq!(b.phone.next_deadline(), Some(b.at(5000)));
        assert!(b.phone.tick(b.at(4999)).is_empty());
        // A late tick still ends the call at its deadline.
        let actions = b.phone.tick(b.at(7000));
        assert_eq!(end_reasons(&actions), vec![EndReason::Failed]);
        assert_eq!(
            b.phone.outcomes(),
            &[
                Outcome::Rang {
                    call_id: Some("c1".into()),
                    from: b.at(1000),
                    to: b.at(5000)
                },
                Outcome::Missed {
                    call_id: "c1".into(),
                    at: b.at(5000),
                    reason: EndReason::Failed
                }
            ]
        );
        assert!(b
            .notes()
            .contains(&"CallKit: call ended (failed) call-id=c1".to_owned()));
    }

    #[test]
    fn an_offer_after_the_call_ended_is_rejected_not_rung() {
        let mut b = Bench::new(IphoneConfig::default());
        b.call_push(0, "c1");
        b.phone.tick(b.at(5000));
        let actions = b.offer(6000, "c1");
        assert_eq!(
            actions,
            vec![Action::Reject {
                call_id: "c1".into(),
                status: STATUS_GONE
            }]
        );
        assert!(!b.phone.is_ringing_any());
    }

    #[test]
    fn cancel_ends_the_call_with_the_reason_it_carries() {
        for (reason, end, expected) in [
            (
                CancelReason::CallerHungUp,
                EndReason::RemoteEnded,
                Outcome::Missed {
                    call_id: "c1".into(),
                    at: Instant::now(), // replaced below
                    reason: EndReason::RemoteEnded,
                },
            ),
            (
                CancelReason::AnsweredElsewhere,
                EndReason::AnsweredElsewhere,
                Outcome::AnsweredElsewhere {
                    call_id: "c1".into(),
                    at: Instant::now(),
                },
            ),
            (
                CancelReason::DeclinedElsewhere,
                EndReason::DeclinedElsewhere,
                Outcome::DeclinedElsewhere {
                    call_id: "c1".into(),
                    at: Instant::now(),
                },
            ),
        ] {
            let mut b = Bench::new(IphoneConfig::default());
            b.call_push(0, "c1");
            b.offer(800, "c1");
            let actions = b.send(
                900,
                Input::Cancel {
                    call_id: "c1".into(),
                    reason,
                },
            );
            assert_eq!(end_reasons(&actions), vec![end]);
            let last = b.phone.outcomes().last().unwrap().clone();
            assert_eq!(
                std::mem::discriminant(&last),
                std::mem::discriminant(&expected)
            );
            assert_eq!(last.at(), b.at(900));
            // The caller ended after ringing started: a missed call, not a ghost.
            assert!(!b
                .phone
                .outcomes()
                .iter()
                .any(|o| matches!(o, Outcome::GhostCall { .. })));
        }
    }

    #[test]
    fn replayed_invite_then_cancel_ends_the_ringing_call_as_missed() {
        // Flexisip style: the phone wakes, gets the stored INVITE and at once its CANCEL.
        let mut b = Bench::new(IphoneConfig::default());
        b.call_push(0, "c1");
        b.send(
            300,
            Input::CallerEnded {
                call_id: "c1".into(),
                at: b.at(300),
            },
        );
        b.offer(1800, "c1");
        let actions = b.send(
            1810,
            Input::Cancel {
                call_id: "c1".into(),
                reason: CancelReason::CallerHungUp,
            },
        );
        assert_eq!(end_reasons(&actions), vec![EndReason::RemoteEnded]);
        assert!(b.phone.outcomes().contains(&Outcome::Missed {
            call_id: "c1".into(),
            at: b.at(1810),
            reason: EndReason::RemoteEnded
        }));
        assert!(!b
            .phone
            .outcomes()
            .iter()
            .any(|o| matches!(o, Outcome::GhostCall { .. })));
    }

    #[test]
    fn a_push_delivered_after_the_caller_hung_up_rings_as_a_ghost_call() {
        // Flight mode: APNs stored the push and delivers it after Bob hung up. Only the bench
        // knows that: the phone rings until its grace period ends.
        let mut b = Bench::new(IphoneConfig::default());
        b.send(
            500,
            Input::CallerEnded {
                call_id: "c1".into(),
                at: b.at(500),
            },
        );
        let actions = b.call_push_sent_at(3000, "c1", T0_MS);
        assert_eq!(reports(&actions), 1, "iOS demands the report: {actions:?}");
        assert_eq!(
            end_reasons(&actions),
            vec![],
            "bench knowledge is not the phone's"
        );
        assert!(b.phone.is_ringing("c1"));
        b.phone.tick(b.at(7000));
        assert!(b.phone.outcomes().contains(&Outcome::GhostCall {
            call_id: "c1".into(),
            from: b.at(3000),
            to: b.at(7000)
        }));
    }

    #[test]
    fn a_push_for_a_call_the_phone_knows_ended_is_reported_then_ended_at_once() {
        let mut b = Bench::new(IphoneConfig::default());
        // A call-ended alert push told the phone first (APNs delivered it before the call push).
        let notice = DeliveredPush::voip(
            "com.example.app",
            "a1",
            PushPayload::cancel("c1", CancelReason::CallerHungUp, T0_MS + 500).to_json(),
        )
        .with_type(PushType::Alert);
        b.send(2000, Input::Push(notice));
        let actions = b.call_push_sent_at(3000, "c1", T0_MS);
        assert_eq!(reports(&actions), 1, "iOS demands the report: {actions:?}");
        assert_eq!(end_reasons(&actions), vec![EndReason::RemoteEnded]);
        assert!(b.phone.outcomes().contains(&Outcome::GhostCall {
            call_id: "c1".into(),
            from: b.at(3000),
            to: b.at(3000)
        }));
    }

    #[test]
    fn every_reported_voip_push_wakes_the_account() {
        let mut b = Bench::new(IphoneConfig::default());
        let wakes = |a: &[Action]| {
            a.iter()
                .filter(|a| matches!(a, Action::WakeAccount { .. }))
                .count()
        };
        assert_eq!(wakes(&b.raw_voip(0, b"{}")), 1, "bogus call");
        let cancel = PushPayload::cancel("x", CancelReason::CallerHungUp, T0_MS).to_json();
        assert_eq!(
            wakes(&b.raw_voip(10, &cancel)),
            1,
            "cancel for an unknown call"
        );
        b.call_push(20, "c1");
        let cancel = PushPayload::cancel("c1", CancelReason::CallerHungUp, T0_MS).to_json();
        assert_eq!(
            wakes(&b.raw_voip(30, &cancel)),
            0,
            "cancel for a ringing call"
        );
    }

    #[test]
    fn a_ghost_is_recognised_when_the_bench_learns_the_caller_ended_later() {
        let mut b = Bench::new(IphoneConfig::default());
        b.call_push(3000, "c1");
        b.phone.tick(b.at(7000));
        assert!(!b
            .phone
            .outcomes()
            .iter()
            .any(|o| matches!(o, Outcome::GhostCall { .. })));
        b.send(
            8000,
            Input::CallerEnded {
                call_id: "c1".into(),
                at: b.at(1000),
            },
        );
        assert!(b.phone.outcomes().contains(&Outcome::GhostCall {
            call_id: "c1".into(),
            from: b.at(3000),
            to: b.at(7000)
        }));
        // Told twice: still one ghost.
        b.send(
            8100,
            Input::CallerEnded {
                call_id: "c1".into(),
                at: b.at(900),
            },
        );
        let ghosts = b
            .phone
            .outcomes()
            .iter()
            .filter(|o| matches!(o, Outcome::GhostCall { .. }))
            .count();
        assert_eq!(ghosts, 1);
    }

    #[test]
    fn a_caller_ending_after_ringing_started_is_not_a_ghost() {
        let mut b = Bench::new(IphoneConfig::default());
        b.call_push(1000, "c1");
        b.send(
            1300,
            Input::CallerEnded {
                call_id: "c1".into(),
                at: b.at(1300),
            },
        );
        b.phone.tick(b.at(6000));
        assert!(!b
            .phone
            .outcomes()
            .iter()
            .any(|o| matches!(o, Outcome::GhostCall { .. })));
        assert!(b
            .phone
            .outcomes()
            .iter()
            .any(|o| matches!(o, Outcome::Missed { .. })));
    }

    #[test]
    fn a_stale_push_is_reported_then_ended_at_once() {
        let mut b = Bench::new(IphoneConfig::default());
        // Sent 31 s before delivery; the threshold is 30 s.
        let actions = b.call_push_sent_at(40_000, "old", T0_MS + 9_000);
        assert_eq!(reports(&actions), 1);
        assert_eq!(end_reasons(&actions), vec![EndReason::Failed]);
        assert!(!b.phone.is_ringing_any());
        // Exactly at the threshold it still rings.
        let actions = b.call_push_sent_at(40_000, "fresh", T0_MS + 10_000);
        assert_eq!(end_reasons(&actions), vec![]);
        assert!(b.phone.is_ringing("fresh"));
    }

    #[test]
    fn an_app_that_does_not_report_is_terminated_and_cut_off_after_three_misses() {
        let mut b = Bench::new(IphoneConfig {
            reports_voip_pushes: false,
            ..IphoneConfig::default()
        });
        for i in 0..3u64 {
            let actions = b.call_push(i * 1000, &format!("c{i}"));
            assert_eq!(reports(&actions), 0);
            assert!(matches!(actions.last(), Some(Action::AppTerminated { .. })));
            assert_eq!(b.phone.voip_cut_off(), i == 2, "after miss {}", i + 1);
        }
        assert!(b
            .notes()
            .iter()
            .any(|n| n.starts_with("iOS: app terminated: VoIP push not reported")));
        assert!(b
            .phone
            .outcomes()
            .iter()
            .any(|o| matches!(o, Outcome::VoipCutOff { .. })));
        let actions = b.call_push(5000, "c9");
        assert!(actions.is_empty(), "{actions:?}");
        assert_eq!(b.phone.dropped_voip_pushes(), 1);
        assert_eq!(b.phone.misses(), 3);
    }

    #[test]
    fn the_cut_off_threshold_is_configurable() {
        let mut b = Bench::new(IphoneConfig {
            reports_voip_pushes: false,
            misses_before_cut_off: 1,
            ..IphoneConfig::default()
        });
        b.call_push(0, "c1");
        assert!(b.phone.voip_cut_off());
    }

    #[test]
    fn a_message_sent_as_voip_forces_a_bogus_call() {
        let mut b = Bench::new(IphoneConfig::default());
        let payload = PushPayload::message("hi", T0_MS).to_json();
        let actions = b.raw_voip(100, &payload);
        assert_eq!(reports(&actions), 1);
        assert_eq!(end_reasons(&actions), vec![EndReason::Failed]);
        assert!(b.phone.outcomes().contains(&Outcome::BogusCall {
            apns_id: "apns-100".into(),
            at: b.at(100)
        }));
        // Garbage and call-less payloads are treated the same, never a panic.
        for raw in [&b"not json"[..], b"{}", br#"{"kind":"call"}"#, b"\xff"] {
            let actions = b.raw_voip(200, raw);
            assert_eq!(reports(&actions), 1, "{raw:?}");
        }
    }

    #[test]
    fn a_message_sent_as_voip_kills_an_app_whose_policy_is_to_ignore_it() {
        let mut b = Bench::new(IphoneConfig {
            non_call_voip: NonCallVoipPolicy::Terminate,
            ..IphoneConfig::default()
        });
        b.call_push(0, "c1");
        let actions = b.raw_voip(100, &PushPayload::message("hi", T0_MS).to_json());
        // The ringing call dies with the app.
        assert_eq!(end_reasons(&actions), vec![EndReason::Failed]);
        assert!(matches!(actions.last(), Some(Action::AppTerminated { .. })));
        assert_eq!(b.phone.misses(), 1);
        assert!(!b.phone.app_running());
    }

    #[test]
    fn alert_and_background_pushes_never_ring() {
        let mut b = Bench::new(IphoneConfig::default());
        let alert = DeliveredPush {
            push_type: PushType::Alert,
            topic: "com.example.app".into(),
            apns_id: "a1".into(),
            priority: 10,
            expiration: 0,
            collapse_id: None,
            payload: PushPayload::message("Bob: hi", T0_MS).to_json(),
        };
        let actions = b.send(0, Input::Push(alert.clone()));
        assert_eq!(
            actions,
            vec![Action::ShowNotification {
                apns_id: "a1".into(),
                push_type: PushType::Alert,
                text: Some("Bob: hi".into())
            }]
        );
        // A call sent as an alert push shows a notification, not a CallKit call.
        let call_as_alert = DeliveredPush {
            payload: PushPayload::call("c1", "sip:bob@x", T0_MS).to_json(),
            ..alert.clone()
        };
        assert_eq!(reports(&b.send(10, Input::Push(call_as_alert))), 0);
        let background = alert.with_type(PushType::Background);
        let actions = b.send(20, Input::Push(background));
        assert!(matches!(
            &actions[0],
            Action::ShowNotification { text: None, .. }
        ));
        assert!(!b.phone.is_ringing_any());
        assert_eq!(b.phone.misses(), 0);
    }

    #[test]
    fn a_call_ended_push_stops_the_ringing() {
        let mut b = Bench::new(IphoneConfig::default());
        b.call_push(0, "c1");
        let cancel = PushPayload::cancel("c1", CancelReason::AnsweredElsewhere, T0_MS + 400);
        let actions = b.raw_voip(500, &cancel.to_json());
        assert_eq!(reports(&actions), 0);
        assert_eq!(end_reasons(&actions), vec![EndReason::AnsweredElsewhere]);
        // As an alert push it works too.
        b.call_push(1000, "c2");
        let alert = DeliveredPush::voip(
            "com.example.app",
            "a2",
            PushPayload::cancel("c2", CancelReason::CallerHungUp, T0_MS + 1100).to_json(),
        )
        .with_type(PushType::Alert);
        let actions = b.send(1200, Input::Push(alert));
        assert_eq!(end_reasons(&actions), vec![EndReason::RemoteEnded]);
        assert!(!b.phone.is_ringing_any());
    }

    #[test]
    fn a_call_ended_voip_push_for_an_unknown_call_flashes_a_ghost() {
        let mut b = Bench::new(IphoneConfig::default());
        let cancel = PushPayload::cancel("gone", CancelReason::CallerHungUp, T0_MS + 100);
        let actions = b.raw_voip(2000, &cancel.to_json());
        assert_eq!(reports(&actions), 1);
        assert_eq!(end_reasons(&actions), vec![EndReason::RemoteEnded]);
        assert!(b
            .phone
            .outcomes()
            .iter()
            .any(|o| matches!(o, Outcome::GhostCall { call_id, .. } if call_id == "gone")));
    }

    #[test]
    fn decline_rejects_the_offer_and_a_later_offer_for_it() {
        let mut b = Bench::new(IphoneConfig::default());
        b.call_push(0, "c1");
        b.offer(500, "c1");
        let actions = b.send(800, Input::Decline { call_id: None });
        assert_eq!(
            actions[0],
            Action::Reject {
                call_id: "c1".into(),
                status: STATUS_DECLINE
            }
        );
        assert_eq!(end_reasons(&actions), vec![EndReason::Declined]);
        assert!(b.phone.outcomes().contains(&Outcome::Declined {
            call_id: "c1".into(),
            at: b.at(800)
        }));
        // Declined before the offer came: the offer is rejected with 603 when it arrives.
        b.call_push(1000, "c2");
        assert_eq!(
            end_reasons(&b.send(1100, Input::Decline { call_id: None })),
            vec![EndReason::Declined]
        );
        assert_eq!(
            b.offer(1500, "c2"),
            vec![Action::Reject {
                call_id: "c2".into(),
                status: STATUS_DECLINE
            }]
        );
    }

    #[test]
    fn an_unanswered_call_ends_at_the_ring_timeout() {
        let mut b = Bench::new(IphoneConfig {
            ring_timeout: Duration::from_secs(20),
            ..IphoneConfig::default()
        });
        b.call_push(0, "c1");
        b.offer(1000, "c1");
        assert_eq!(b.phone.next_deadline(), Some(b.at(21_000)));
        let actions = b.phone.tick(b.at(21_000));
        assert_eq!(
            actions[0],
            Action::Reject {
                call_id: "c1".into(),
                status: STATUS_GONE
            }
        );
        assert_eq!(end_reasons(&actions), vec![EndReason::Unanswered]);
    }

    #[test]
    fn an_established_call_ends_on_bye_or_hang_up() {
        let mut b = Bench::new(IphoneConfig::default());
        b.call_push(0, "c1");
        b.offer(500, "c1");
        b.send(600, Input::Answer { call_id: None });
        let actions = b.send(
            9000,
            Input::RemoteBye {
                call_id: "c1".into(),
            },
        );
        assert_eq!(end_reasons(&actions), vec![EndReason::RemoteEnded]);
        assert!(b.phone.outcomes().contains(&Outcome::CallEnded {
            call_id: "c1".into(),
            at: b.at(9000),
            reason: EndReason::RemoteEnded
        }));
        // A cancel after the answer has nothing to end.
        b.call_push(10_000, "c2");
        b.offer(10_100, "c2");
        b.send(10_200, Input::Answer { call_id: None });
        let actions = b.send(10_300, Input::HangUp { call_id: None });
        assert_eq!(
            actions[0],
            Action::HangUp {
                call_id: "c2".into()
            }
        );
        assert_eq!(end_reasons(&actions), vec![EndReason::HungUp]);
    }

    #[test]
    fn an_offer_without_a_push_rings_an_awake_phone() {
        let mut b = Bench::new(IphoneConfig::default());
        let actions = b.offer(0, "c1");
        assert_eq!(reports(&actions), 1);
        assert!(b.phone.is_ringing("c1"));
        // A retransmitted INVITE is not a second call.
        assert!(b.offer(500, "c1").is_empty());
        assert_eq!(b.phone.calls().count(), 1);
        // No offer grace for a call that has its offer.
        assert_eq!(b.phone.next_deadline(), Some(b.at(60_000)));
    }

    #[test]
    fn taps_with_nothing_to_act_on_do_nothing() {
        let mut b = Bench::new(IphoneConfig::default());
        assert!(b.send(0, Input::Answer { call_id: None }).is_empty());
        assert!(b.send(0, Input::Decline { call_id: None }).is_empty());
        assert!(b.send(0, Input::HangUp { call_id: None }).is_empty());
        assert!(b
            .send(
                0,
                Input::Cancel {
                    call_id: "x".into(),
                    reason: CancelReason::CallerHungUp
                }
            )
            .is_empty());
        assert!(b.phone.outcomes().is_empty());
    }

    #[test]
    fn reports_say_whether_a_push_or_an_offer_made_the_phone_ring() {
        let mut b = Bench::new(IphoneConfig::default());
        b.call_push(100, "c1");
        b.offer(200, "c2");
        b.raw_voip(300, b"{}");
        let r: Vec<(Option<&str>, u64, bool)> = b
            .phone
            .reports()
            .iter()
            .map(|r| {
                (
                    r.call_id.as_deref(),
                    r.at.duration_since(b.t0).as_millis() as u64,
                    r.by_push,
                )
            })
            .collect();
        assert_eq!(
            r,
            vec![
                (Some("c1"), 100, true),
                (Some("c2"), 200, false),
                (None, 300, true)
            ]
        );
        let ends: Vec<(Option<&str>, EndReason)> = b
            .phone
            .ends()
            .iter()
            .map(|e| (e.call_id.as_deref(), e.reason))
            .collect();
        assert_eq!(ends, vec![(None, EndReason::Failed)]);
    }

    #[test]
    fn the_wall_clock_maps_both_ways() {
        let t0 = Instant::now();
        let clock = WallClock::new(t0, T0_MS);
        let later = t0 + Duration::from_millis(1234);
        assert_eq!(clock.unix_ms(later), T0_MS + 1234);
        assert_eq!(clock.instant(T0_MS + 1234), Some(later));
        assert_eq!(clock.unix_ms(t0), T0_MS);
    }
}
