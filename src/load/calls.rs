//! One call of a load run, followed end to end: its timestamps (INVITE sent, APNs request
//! received, push delivered, REGISTER sent, INVITE at the phone, 200 at the caller), the checks
//! of the call mix against the target's cancel profile, and the one [`Outcome`] it ends in.

use super::phones::LoadPhone;
use super::plan::CallKind;
use super::stats::{Outcome, Stage, Stats};
use crate::draws::WakeDelay;
use crate::parties::device::Event;
use crate::parties::instant_of_ms;
use crate::target::CancelPolicy;
use mock_apns::{DeviceState, MockApns};
use phone::{Input, PayloadKind};
use sip_peer::{Call, Caller};
use std::time::{Duration, Instant};

/// How long after the REGISTER a cancelled call's phone is watched for what the profile says it
/// gets (nothing, the replayed INVITE and CANCEL, or a cancel push).
const CANCEL_WATCH: Duration = Duration::from_millis(1500);

/// How long a cancelled call's phone takes to wake at least, so the CANCEL goes out before its
/// REGISTER.
const CANCEL_WAKE: Duration = Duration::from_millis(500);

/// What every call of a run shares.
#[derive(Clone)]
pub struct CallContext {
    /// The caller (one UDP endpoint for every call).
    pub caller: Caller,
    /// The mock APNs.
    pub apns: std::sync::Arc<MockApns>,
    /// The target's cancel profile.
    pub cancel: CancelPolicy,
    /// How long a call may take.
    pub deadline: Duration,
    /// The phones' normal wake delay.
    pub wake_delay: Duration,
}

/// The timestamps and outcome of one call.
#[derive(Clone, Debug)]
pub struct CallRecord {
    /// What kind of call.
    pub kind: CallKind,
    /// INVITE sent.
    pub invite_sent: Instant,
    /// APNs request received (the mock's push log: millisecond resolution).
    pub apns_request: Option<Instant>,
    /// Push delivered to the phone.
    pub push_delivered: Option<Instant>,
    /// The phone's REGISTER sent.
    pub register_sent: Option<Instant>,
    /// INVITE at the phone.
    pub invite_at_phone: Option<Instant>,
    /// 200 at the caller.
    pub answered: Option<Instant>,
    /// The final status the caller got, if any.
    pub final_status: Option<u16>,
    /// Call pushes (kind call) delivered for the call.
    pub call_pushes: usize,
    /// How it ended.
    pub outcome: Outcome,
}

impl CallRecord {
    /// Adds its stage latencies to `stats` (only the stages it reached, in order) and counts its
    /// outcome. `offset` is when it started, from the step's start.
    pub fn record(&self, offset: Duration, stats: &mut Stats) {
        let pairs = [
            (Stage::Push, Some(self.invite_sent), self.apns_request),
            (Stage::Delivery, self.apns_request, self.push_delivered),
            (Stage::Wake, self.push_delivered, self.register_sent),
            (Stage::Relay, self.register_sent, self.invite_at_phone),
            (Stage::Answer, self.invite_at_phone, self.answered),
            (Stage::Setup, Some(self.invite_sent), self.answered),
        ];
        if self.kind == CallKind::Plain {
            for (stage, from, to) in pairs {
                if let (Some(a), Some(b)) = (from, to) {
                    stats.record(stage, offset, b.saturating_duration_since(a));
                }
            }
        } else if let Some(at) = self.apns_request {
            stats.record(
                Stage::Push,
                offset,
                at.saturating_duration_since(self.invite_sent),
            );
        }
        stats.count(self.outcome.clone());
        if self.outcome.is_failure() {
            stats.example(|| self.describe());
        }
    }

    /// One line: the kind, the outcome, and each timestamp in ms from the INVITE.
    pub fn describe(&self) -> String {
        let ms = |t: Option<Instant>| {
            t.map(|t| {
                format!(
                    "{:.1}",
                    t.saturating_duration_since(self.invite_sent).as_secs_f64() * 1000.0
                )
            })
            .unwrap_or_else(|| "–".into())
        };
        format!(
            "{:?} call: {} (final {}); APNs request {}, push delivered {}, REGISTER {}, INVITE at phone {}, 200 {} ms after the INVITE; {} call push(es)",
            self.kind,
            self.outcome.name(),
            self.final_status.map(|s| s.to_string()).unwrap_or_else(|| "none".into()),
            ms(self.apns_request),
            ms(self.push_delivered),
            ms(self.register_sent),
            ms(self.invite_at_phone),
            ms(self.answered),
            self.call_pushes
        )
    }
}

/// Places one call of `kind` to `phone` and follows it to its end (the phone is asleep again,
/// or repaired after a dead token or flight mode, when this returns).
pub async fn run_call(ctx: &CallContext, phone: &LoadPhone, kind: CallKind) -> CallRecord {
    let apns = &ctx.apns;
    match kind {
        CallKind::DeadToken => {
            let _ = apns.set_state(&phone.token, DeviceState::Unregistered);
        }
        CallKind::Flight => {
            let _ = apns.set_state(&phone.token, DeviceState::Offline);
            phone.device.silence();
        }
        CallKind::Cancel => phone
            .device
            .set_wake_delay(WakeDelay::Fixed(ctx.wake_delay.max(CANCEL_WAKE))),
        CallKind::Plain => {}
    }
    let seq = apns.push_seq();
    let invite_sent = Instant::now();
    let mut rec = CallRecord {
        kind,
        invite_sent,
        apns_request: None,
        push_delivered: None,
        register_sent: None,
        invite_at_phone: None,
        answered: None,
        final_status: None,
        call_pushes: 0,
        outcome: Outcome::Other,
    };
    let deadline = invite_sent + ctx.deadline;
    let call = match ctx.caller.invite(&phone.aor) {
        Ok(c) => c,
        Err(_) => return rec,
    };
    let call_id = call.call_id().to_owned();
    let call = match kind {
        CallKind::Cancel => cancelled(ctx, phone, call, seq, deadline, &mut rec).await,
        _ => answered(ctx, phone, call, &call_id, deadline, &mut rec).await,
    };
    if rec.apns_request.is_none() {
        rec.apns_request =
            first_push_after(apns, &phone.token, seq, Duration::from_millis(50)).await;
    }
    read_phone_log(phone, &call_id, &mut rec);
    rec.outcome = classify(ctx.cancel, phone, &rec, &call_id);
    if let Some(mut call) = call {
        if rec.answered.is_some() {
            let _ = call.bye(Duration::from_secs(4)).await;
        }
    }
    match kind {
        CallKind::DeadToken | CallKind::Flight => repair(ctx, phone).await,
        CallKind::Cancel => phone
            .device
            .set_wake_delay(WakeDelay::Fixed(ctx.wake_delay)),
        CallKind::Plain => {}
    }
    if !phone.awake {
        phone.device.sleep();
    }
    rec
}

/// A call the phone should answer: answers it on the phone (through the iOS model, as the user
/// would) as soon as its INVITE arrives, and waits for the caller's final response.
async fn answered(
    ctx: &CallContext,
    phone: &LoadPhone,
    mut call: Call,
    call_id: &str,
    deadline: Instant,
    rec: &mut CallRecord,
) -> Option<Call> {
    let log = phone.device.log.clone();
    let model = phone.device.phone().ok();
    let id = call_id.to_owned();
    let answer = async {
        let seen = log
            .wait_until(deadline, |es| {
                es.iter()
                    .any(|e| matches!(&e.event, Event::Invite { call_id, .. } if *call_id == id))
                    .then_some(())
            })
            .await;
        if let (Some(()), Some(m)) = (seen, &model) {
            m.send(Input::Answer {
                call_id: Some(id.clone()),
            });
        }
        futures::future::pending::<()>().await;
    };
    let fin = tokio::select! {
        r = call.await_final(ctx.deadline) => r,
        _ = answer => unreachable!("the answering side never finishes"),
    };
    if let Ok(m) = fin {
        rec.final_status = m.status();
        if m.status().is_some_and(|s| (200..300).contains(&s)) {
            rec.answered = Some(Instant::now());
        }
    }
    Some(call)
}

/// A call the caller cancels once its push reached APNs, before the phone's REGISTER.
async fn cancelled(
    ctx: &CallContext,
    phone: &LoadPhone,
    mut call: Call,
    seq: u64,
    deadline: Instant,
    rec: &mut CallRecord,
) -> Option<Call> {
    let left = deadline.saturating_duration_since(Instant::now());
    // cancelled whether or not the push came: a call without a push is "no push" all the same
    rec.apns_request = first_push_after(&ctx.apns, &phone.token, seq, left).await;
    let _ = call.cancel(Duration::from_secs(4)).await;
    let left = deadline.saturating_duration_since(Instant::now());
    if let Ok(m) = call.await_final(left).await {
        rec.final_status = m.status();
        if m.status().is_some_and(|s| (200..300).contains(&s)) {
            rec.answered = Some(Instant::now());
        }
    }
    // what the woken phone gets after its REGISTER, per the profile
    tokio::time::sleep(CANCEL_WAKE + CANCEL_WATCH).await;
    Some(call)
}

/// The time of the first APNs request for `token` after push-log position `seq`.
async fn first_push_after(
    apns: &MockApns,
    token: &str,
    seq: u64,
    within: Duration,
) -> Option<Instant> {
    let until = Instant::now() + within;
    // bounded: stale records of earlier calls are skipped, at most this many
    for _ in 0..16 {
        let left = until.saturating_duration_since(Instant::now());
        let r = apns.next_push_for(token, left).await.ok()?;
        if r.seq > seq {
            return Some(instant_of_ms(r.time_ms));
        }
    }
    None
}

/// Reads the phone's side of the call from its log: the call pushes delivered, its REGISTER,
/// the INVITE.
fn read_phone_log(phone: &LoadPhone, call_id: &str, rec: &mut CallRecord) {
    let since = rec.invite_sent;
    for e in phone.device.log.entries().iter().filter(|e| e.at >= since) {
        match &e.event {
            Event::Push { kind, .. } if *kind != Some(PayloadKind::Cancel) => {
                rec.call_pushes += 1;
                rec.push_delivered.get_or_insert(e.at);
            }
            Event::RegisterSent if rec.push_delivered.is_some() => {
                rec.register_sent.get_or_insert(e.at);
            }
            Event::Invite { call_id: c, .. } if c == call_id => {
                rec.invite_at_phone.get_or_insert(e.at);
            }
            _ => {}
        }
    }
}

/// The one outcome of a call.
fn classify(policy: CancelPolicy, phone: &LoadPhone, rec: &CallRecord, call_id: &str) -> Outcome {
    let status = rec.final_status;
    match rec.kind {
        CallKind::Plain => {
            if rec.call_pushes > 1 {
                Outcome::DuplicatePush
            } else if rec.answered.is_some() {
                Outcome::Answered
            } else if rec.apns_request.is_none() && !phone.awake {
                Outcome::NoPush
            } else if rec.register_sent.is_some() && rec.invite_at_phone.is_none() {
                Outcome::InviteNeverReachedPhone
            } else {
                failed(status)
            }
        }
        CallKind::Cancel => {
            if rec.apns_request.is_none() {
                return Outcome::NoPush;
            }
            if rec.call_pushes > 1 {
                return Outcome::DuplicatePush;
            }
            let entries = phone.device.log.entries();
            let after = entries.iter().filter(|e| e.at >= rec.invite_sent);
            let invite = after
                .clone()
                .any(|e| matches!(&e.event, Event::Invite { call_id: c, .. } if c == call_id));
            let cancel_push = after.clone().any(|e| {
                matches!(
                    &e.event,
                    Event::Push {
                        kind: Some(PayloadKind::Cancel),
                        ..
                    }
                )
            });
            let profile_ok = match policy {
                CancelPolicy::Rfc8599Drop => !invite,
                CancelPolicy::FlexisipReplay => invite,
                CancelPolicy::CancelPush => cancel_push && !invite,
            };
            match status {
                Some(487) if profile_ok => Outcome::AsExpected,
                Some(487) | None => Outcome::Other,
                _ => failed(status),
            }
        }
        CallKind::DeadToken | CallKind::Flight => match status {
            Some(s) if s >= 300 && rec.answered.is_none() => Outcome::AsExpected,
            None => Outcome::Failed408,
            _ => Outcome::Other,
        },
    }
}

fn failed(status: Option<u16>) -> Outcome {
    match status {
        Some(480) => Outcome::Failed480,
        Some(408) | None => Outcome::Failed408,
        _ => Outcome::Other,
    }
}

/// After a dead-token or flight-mode call: the token is live again (a stored push is
/// delivered), and the phone registers afresh (the gateway may have dropped its binding on 410).
async fn repair(ctx: &CallContext, phone: &LoadPhone) {
    let _ = ctx.apns.set_state(&phone.token, DeviceState::Online);
    let _ = phone
        .device
        .account
        .wake(true, Duration::from_secs(4))
        .await;
    // let a stored push's wake settle before the phone sleeps again
    tokio::time::sleep(Duration::from_millis(300)).await;
}
