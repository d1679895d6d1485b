//! The iPhone model's unit tests (a sibling file: the model reads best whole, without them).

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
