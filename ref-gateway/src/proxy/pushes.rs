//! The pushes of a call: one per push-bound binding, de-duplicated per (Call-ID, token), sent
//! after the configured push delay; their answers (410 removes the binding); the Bucket Timer.

use super::{Event, Proxy, PUSHED_MEMORY};
use crate::bucket::EntryState;
use crate::call_push::PushBuilder;
use crate::faults::Fault;
use crate::push::{now_ms, PushOutcome};

impl Proxy {
    pub(super) fn on_push_due(&mut self, id: u64, binding: u64) {
        let faults = self.faults.clone();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(e) = call
            .bucket
            .iter_mut()
            .find(|e| e.binding_id == binding && e.state == EntryState::Delayed)
        else {
            return;
        };
        e.state = EntryState::Pushed;
        let t = e.target.clone();
        let aor = e.aor.clone();
        let key = (call.call_id.clone(), t.voip_token.clone());
        if self.pushed.contains(&key) {
            self.recorder.note(format!(
                "push for {} already sent for this Call-ID: not repeated",
                key.1
            ));
            return;
        }
        let builder = PushBuilder::new(t.bundle_id.clone(), faults);
        let push = if call.method == "MESSAGE" {
            let text = String::from_utf8_lossy(&call.request.body).into_owned();
            match builder.message(&t.voip_token, t.alert_token.as_deref(), &text, now_ms()) {
                Some(p) => p,
                None => return,
            }
        } else {
            builder.call(&t.voip_token, &call.call_id, &call.caller, now_ms())
        };
        self.pushed.insert(key.clone());
        self.pushed_order.push_back(key);
        if self.pushed_order.len() > PUSHED_MEMORY {
            if let Some(old) = self.pushed_order.pop_front() {
                self.pushed.remove(&old);
            }
        }
        let pusher = self.pusher.clone();
        let tx = self.events.clone();
        tokio::spawn(async move {
            let outcome = pusher.send(t.sandbox, &push).await;
            let _ = tx.send(Event::PushDone {
                call: id,
                binding,
                aor,
                outcome,
            });
        });
    }

    pub(super) fn on_push_done(&mut self, id: u64, binding: u64, aor: &str, outcome: PushOutcome) {
        tracing::debug!(call = id, binding, outcome = %outcome.describe(), "push answered");
        match &outcome {
            PushOutcome::Accepted => return,
            PushOutcome::Unregistered if self.faults.has(Fault::Ignore410) => {
                self.recorder
                    .note("fault ignore-410: binding kept after 410 Unregistered");
            }
            PushOutcome::Unregistered => {
                if self.registrar.remove(aor, binding) {
                    self.recorder
                        .note(format!("410: binding {binding} of {aor} removed"));
                }
            }
            PushOutcome::Refused(_) | PushOutcome::Failed(_) => {}
        }
        if self.faults.has(Fault::HoldRefusedPush)
            && matches!(outcome, PushOutcome::Unregistered | PushOutcome::Refused(_))
        {
            self.recorder.note(
                "fault hold-refused-push: the request stays in the bucket until the Bucket Timer",
            );
            return;
        }
        self.recorder.note(format!(
            "push {}: the request leaves the bucket",
            outcome.describe()
        ));
        if let Some(call) = self.calls.get_mut(&id) {
            call.bucket
                .retain(|e| !(e.binding_id == binding && e.state == EntryState::Pushed));
        }
        self.maybe_finish(id);
        self.maybe_linger(id);
    }

    pub(super) fn on_bucket_timer(&mut self, id: u64) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.timer = None;
        if !call.bucket.is_empty() {
            self.recorder
                .note(format!("bucket timer fired for {}", call.call_id));
        }
        call.bucket.clear();
        if std::mem::take(&mut call.late_487) && !call.final_sent {
            self.respond_upstream(id, 487, "Request Terminated");
        }
        self.maybe_finish(id);
        self.maybe_linger(id);
    }
}
