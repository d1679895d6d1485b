//! Builds the pushes the gateway sends — for a call, for a call that ended, for a message — from
//! the binding's tokens and the request, applying the switched-on faults. The correct push for a
//! call is `voip`, topic `<bundle>.voip`, priority 10, expiration 0, with the payload contract of
//! [`phone::PushPayload`].

use crate::apns::Push;
use crate::faults::{Fault, Faults};
use bytes::Bytes;
use phone::{CancelReason, PushPayload, PushType};

/// How long a faulty gateway asks APNs to keep a call push (Flexisip's `call-fork-timeout`).
pub(crate) const FAULTY_EXPIRATION_SECS: u64 = 90;
/// How long APNs may keep a message notification (a message is still worth showing later).
pub(crate) const MESSAGE_EXPIRATION_SECS: u64 = 24 * 3600;

/// Builds pushes for one app (bundle id) with the given faults.
#[derive(Clone, Debug)]
pub(crate) struct PushBuilder {
    bundle_id: String,
    faults: Faults,
}

impl PushBuilder {
    /// Pushes for `bundle_id` (topic `<bundle_id>.voip` for VoIP).
    pub(crate) fn new(bundle_id: impl Into<String>, faults: Faults) -> Self {
        PushBuilder {
            bundle_id: bundle_id.into(),
            faults,
        }
    }

    /// The push for an incoming call to `voip_token`, sent at `now_ms` (Unix milliseconds).
    pub(crate) fn call(&self, voip_token: &str, call_id: &str, caller: &str, now_ms: u64) -> Push {
        let payload = PushPayload::call(call_id, caller, now_ms);
        self.voip(voip_token, payload, now_ms)
    }

    /// The "call ended" push of the `cancel-push` profile.
    pub(crate) fn call_ended(
        &self,
        voip_token: &str,
        call_id: &str,
        reason: CancelReason,
        now_ms: u64,
    ) -> Push {
        let payload = PushPayload::cancel(call_id, reason, now_ms);
        self.voip(voip_token, payload, now_ms)
    }

    /// The push for a message, if any: an `alert` push to the app's alert token when the binding
    /// has one, otherwise none (a message never goes as VoIP — unless that fault is on).
    pub(crate) fn message(
        &self,
        voip_token: &str,
        alert_token: Option<&str>,
        text: &str,
        now_ms: u64,
    ) -> Option<Push> {
        let payload = PushPayload::message(text, now_ms);
        if self.faults.has(Fault::MessageAsVoip) {
            let mut push = Push::voip_call(voip_token, &self.bundle_id, json(&payload));
            push.collapse_id = None;
            return Some(push);
        }
        let token = alert_token?;
        Some(Push::alert(
            token,
            &self.bundle_id,
            now_ms / 1000 + MESSAGE_EXPIRATION_SECS,
            json(&payload),
        ))
    }

    fn voip(&self, token: &str, mut payload: PushPayload, now_ms: u64) -> Push {
        if self.faults.has(Fault::NoCallIdInPayload) {
            payload.call_id = None;
        }
        let mut push = Push::voip_call(token, &self.bundle_id, json(&payload));
        if self.faults.has(Fault::NonzeroExpiration) {
            push.expiration = Some(now_ms / 1000 + FAULTY_EXPIRATION_SECS);
        }
        if self.faults.has(Fault::AlertPushType) {
            push.push_type = PushType::Alert;
            push.topic = self.bundle_id.clone();
        }
        if self.faults.has(Fault::NoVoipSuffix) {
            push.topic = self.bundle_id.clone();
        }
        if self.faults.has(Fault::Priority5) {
            push.priority = Some(5);
        }
        push
    }
}

fn json(payload: &PushPayload) -> Bytes {
    Bytes::from(payload.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;
    use phone::PayloadKind;

    const NOW_MS: u64 = 1_700_000_000_123;

    fn builder(faults: Faults) -> PushBuilder {
        PushBuilder::new("com.example.app", faults)
    }

    /// The fields the APNS-1..5 requirements look at.
    fn shape(p: &Push) -> (String, String, Option<u8>, Option<u64>, Option<String>) {
        let payload = PushPayload::parse(&p.payload).ok();
        (
            p.push_type.to_string(),
            p.topic.clone(),
            p.priority,
            p.expiration,
            payload.and_then(|p| p.call_id),
        )
    }

    #[test]
    fn a_correct_call_push_meets_apns_1_to_5() {
        let p = builder(Faults::none()).call("00ab", "c1@host", "sip:bob@example.com", NOW_MS);
        assert_eq!(
            shape(&p),
            (
                "voip".into(),
                "com.example.app.voip".into(),
                Some(10),
                Some(0),
                Some("c1@host".into())
            )
        );
        let payload = PushPayload::parse(&p.payload).unwrap();
        assert_eq!(payload.kind, PayloadKind::Call);
        assert_eq!(payload.send_time_ms, Some(NOW_MS));
        assert_eq!(payload.caller.as_deref(), Some("sip:bob@example.com"));
        assert!(p.apns_id.is_some());
    }

    #[test]
    fn each_header_fault_changes_exactly_its_field() {
        let correct = shape(&builder(Faults::none()).call("t", "c", "b", NOW_MS));
        let cases = [
            (Fault::NonzeroExpiration, 3),
            (Fault::NoVoipSuffix, 1),
            (Fault::Priority5, 2),
            (Fault::NoCallIdInPayload, 4),
        ];
        for (fault, field) in cases {
            let faulty = shape(&builder(Faults::only(fault)).call("t", "c", "b", NOW_MS));
            let differs = [
                correct.0 != faulty.0,
                correct.1 != faulty.1,
                correct.2 != faulty.2,
                correct.3 != faulty.3,
                correct.4 != faulty.4,
            ];
            let expected: Vec<bool> = (0..5).map(|i| i == field).collect();
            assert_eq!(differs.to_vec(), expected, "{fault}: {faulty:?}");
        }
        let faulty =
            shape(&builder(Faults::only(Fault::AlertPushType)).call("t", "c", "b", NOW_MS));
        assert_eq!(
            (faulty.0.as_str(), faulty.1.as_str()),
            ("alert", "com.example.app")
        );
        assert_eq!(
            builder(Faults::only(Fault::NonzeroExpiration))
                .call("t", "c", "b", NOW_MS)
                .expiration,
            Some(NOW_MS / 1000 + 90)
        );
    }

    #[test]
    fn faults_that_are_not_about_pushes_leave_the_push_correct() {
        let correct = shape(&builder(Faults::none()).call("t", "c", "b", NOW_MS));
        for fault in [
            Fault::NoReplayOnRegister,
            Fault::ReplayCancelledCall,
            Fault::Ignore410,
            Fault::NoBucketTimer,
            Fault::MessageAsVoip,
        ] {
            let p = builder(Faults::only(fault)).call("t", "c", "b", NOW_MS);
            assert_eq!(shape(&p), correct, "{fault}");
        }
    }

    #[test]
    fn a_call_ended_push_is_a_voip_cancel_for_the_call() {
        let p =
            builder(Faults::none()).call_ended("t", "c1", CancelReason::AnsweredElsewhere, NOW_MS);
        assert_eq!(p.push_type, PushType::Voip);
        let payload = PushPayload::parse(&p.payload).unwrap();
        assert_eq!(payload.kind, PayloadKind::Cancel);
        assert_eq!(payload.reason, Some(CancelReason::AnsweredElsewhere));
        let faulty = builder(Faults::only(Fault::NoCallIdInPayload)).call_ended(
            "t",
            "c1",
            CancelReason::CallerHungUp,
            NOW_MS,
        );
        assert!(PushPayload::parse(&faulty.payload).is_err(), "no call-id");
    }

    #[test]
    fn a_message_is_an_alert_to_the_alert_token_or_nothing() {
        let b = builder(Faults::none());
        assert_eq!(b.message("voip-tok", None, "hi", NOW_MS), None);
        let p = b
            .message("voip-tok", Some("alert-tok"), "hi", NOW_MS)
            .unwrap();
        assert_eq!(p.push_type, PushType::Alert);
        assert_eq!(
            (p.device_token.as_str(), p.topic.as_str()),
            ("alert-tok", "com.example.app")
        );
        assert_eq!(p.expiration, Some(NOW_MS / 1000 + MESSAGE_EXPIRATION_SECS));
        let faulty = builder(Faults::only(Fault::MessageAsVoip))
            .message("voip-tok", Some("alert-tok"), "hi", NOW_MS)
            .unwrap();
        assert_eq!(faulty.push_type, PushType::Voip);
        assert_eq!(faulty.device_token, "voip-tok");
    }
}
