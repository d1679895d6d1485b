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
        let payload = match self.config.payload.read(&push.payload) {
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
        if self.config.unrestricted_voip {
            self.recorder.note(format!(
                "app: VoIP push apns-id={} carries no call; the app holds the unrestricted-voip \
                 entitlement: handled without CallKit",
                push.apns_id
            ));
            return;
        }
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
        let ended = self
            .config
            .payload
            .read(&push.payload)
            .ok()
            .filter(|p| p.kind == PayloadKind::Cancel);
        if let Some(p) = ended {
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
mod tests;
