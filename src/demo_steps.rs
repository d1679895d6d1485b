//! Steps of the runner's own demo features (`tests/runner-fixtures/`): they only touch the
//! scenario's timeline, so the runner, its verdicts and its reports can be proven without any
//! party. Every sentence starts with "the demo", so they cannot collide with the real step
//! library. `pushbench run tests/runner-fixtures/pass` is a self-check of an installation.

use crate::verdict::{outcome, StepError, Verdict};
use crate::world::BenchWorld;
use cucumber::{given, then, when};
use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};
use timeline::Protocol;

/// Scenarios that already failed once, for the retry demo.
static FAILED_ONCE: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);

#[given(expr = "the demo party {string} sends {string} to {string}")]
#[when(expr = "the demo party {string} sends {string} to {string}")]
fn party_sends(w: &mut BenchWorld, from: String, what: String, to: String) {
    let raw = format!("{what}\r\n");
    w.recorder(&from, Protocol::Sip)
        .sent(&to, "udp", what, raw.into_bytes());
}

#[then(expr = "the demo timeline has {int} event(s)")]
fn timeline_has(w: &mut BenchWorld, n: usize) {
    let got = w.timeline.len();
    outcome(if got == n {
        Ok(())
    } else {
        Err(StepError::fail(format!(
            "expected {n} events, the timeline has {got}"
        )))
    })
}

#[then(expr = "the demo check fails because {string}")]
fn check_fails(w: &mut BenchWorld, reason: String) {
    let last = w.timeline.events().pop();
    outcome(Err(match last {
        Some(e) => StepError::fail_with_message(
            format!("{reason} (offending: {})", e.summary),
            // A byte that is not UTF-8, to show the report escapes it.
            [e.raw.as_ref(), b"\xff"].concat(),
        ),
        None => StepError::fail(reason),
    }))
}

#[then(expr = "the demo check waits {int} ms, then fails because {string}")]
async fn waits_then_fails(_w: &mut BenchWorld, ms: u64, reason: String) {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    outcome(Err(StepError::fail(reason)))
}

#[then(expr = "the demo precondition cannot be established because {string}")]
fn precondition(_w: &mut BenchWorld, reason: String) {
    outcome(Err(StepError::inconclusive(reason)))
}

#[then("the demo check fails on the first attempt only")]
fn flaky(w: &mut BenchWorld) {
    outcome(w.context().and_then(|c| {
        let first = timeline::lock(&FAILED_ONCE).insert(c.key.to_string());
        if first {
            Err(StepError::fail("first attempt fails on purpose"))
        } else {
            Ok(())
        }
    }))
}

#[then(expr = "the demo records an inconclusive verdict because {string}")]
fn records(w: &mut BenchWorld, reason: String) {
    w.set_verdict(Verdict::Inconclusive, reason);
}

#[then("the demo step panics")]
fn panics(_w: &mut BenchWorld) {
    panic!("the demo step panicked on purpose");
}

#[then("the demo step never returns")]
async fn hangs(_w: &mut BenchWorld) {
    futures::future::pending::<()>().await;
}
