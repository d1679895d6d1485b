//! The SIP target file `targets/kamailio.toml` end to end: the runner starts real Kamailio 5.6
//! (tsilo + http_client, `targets/kamailio/kamailio.cfg`) on loopback with the target's start
//! command, plays the mock APNs on the file's fixed address with certificate auth, Alice's devices
//! and Bob, and runs `features/sip` and `features/apns` against it. The verdicts must match
//! `targets/kamailio-expected.toml` exactly: every listed requirement fails (xfail), nothing else
//! fails, nothing listed passes (xpass), nothing is inconclusive.
//!
//! The target's accounts are fixed (`alice`, `bob`), so its `[commands.before_scenario]` restarts
//! Kamailio before each scenario and the runner runs the scenarios one at a time (about 2.5 min).
//! Ports: SIP 25060 (udp+tcp), park 25069 (udp), mock APNs 28443; no other test uses them.

use pushbench::expected::{ExpectedFailures, Outcome};
use pushbench::runner::{run_blocking, RunOptions};
use pushbench::target::Target;
use pushbench::Verdict;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The last lines of Kamailio's log, for a failure message.
fn log_tail() -> String {
    let dir = std::env::var("PUSHBENCH_KAMAILIO_DIR")
        .unwrap_or_else(|_| "/tmp/pushbench-kamailio-target".into());
    testkit::log::tail_lines(&Path::new(&dir).join("kamailio.log"), 40)
}

#[test]
fn kamailio_meets_exactly_the_requirements_its_baseline_says() {
    let target_file = root().join("targets/kamailio.toml");
    let target = Target::load(&target_file).expect("targets/kamailio.toml loads");
    let expected = ExpectedFailures::load(
        target
            .expected_failures
            .as_ref()
            .expect("the target names its expected failures"),
    )
    .expect("targets/kamailio-expected.toml loads");
    assert!(
        target.commands.before_scenario.is_some(),
        "shared accounts need the per-scenario restart"
    );
    let started = Instant::now();
    let report = run_blocking(&RunOptions {
        target: Some(target_file),
        features: vec![root().join("features/sip"), root().join("features/apns")],
        print: false,
        timeout: Duration::from_secs(600),
        ..RunOptions::default()
    })
    .unwrap_or_else(|e| panic!("the run could not start: {e}\n{}", log_tail()));
    let took = started.elapsed();

    let mut passed = BTreeSet::new();
    let mut xfailed = BTreeSet::new();
    let mut not_applicable = BTreeSet::new();
    let mut wrong = Vec::new();
    for s in &report.scenarios {
        let ids = s.info.requirements.iter().cloned();
        match s.outcome {
            Outcome::Pass => passed.extend(ids),
            Outcome::Xfail => xfailed.extend(ids),
            Outcome::NotApplicable => not_applicable.extend(ids),
            _ => wrong.push(format!(
                "{} [{}]: {:?} ({:?}) {}",
                s.info.name,
                s.info.requirements.join(","),
                s.outcome,
                s.verdict,
                s.reason.as_deref().unwrap_or("")
            )),
        }
    }
    println!(
        "kamailio: {} scenarios in {:.0} s; meets {:?}; fails (expected) {:?}; not applicable {:?}",
        report.scenarios.len(),
        took.as_secs_f64(),
        passed.difference(&xfailed).collect::<Vec<_>>(),
        xfailed,
        not_applicable.difference(&passed).collect::<Vec<_>>()
    );
    assert!(
        wrong.is_empty(),
        "verdicts that do not match targets/kamailio-expected.toml:\n{}\n{}\n{}",
        wrong.join("\n"),
        report.failures(),
        log_tail()
    );
    // Every baseline entry is a requirement that really failed in this run (a stale entry would
    // be xpass above, or match nothing and go unnoticed).
    // A scenario entry stands for its scenario's ids (SIP-A3: only some of its scenarios fail).
    let listed = expected.listed_requirements(report.scenarios.iter().map(|s| &s.info));
    assert_eq!(
        xfailed, listed,
        "the requirements that failed are exactly the ones the baseline lists"
    );
    let stale: Vec<&String> = report
        .warnings
        .iter()
        .filter(|w| w.contains("matches no scenario"))
        .collect();
    assert!(stale.is_empty(), "{stale:?}");
    // The pushes went through Kamailio's http_client to the mock APNs (HTTP/2, client
    // certificate): the push-shape requirements ran and passed.
    for id in ["APNS-1", "APNS-2", "APNS-3", "APNS-4", "APNS-5", "SIP-B1"] {
        assert!(passed.contains(id), "{id} did not pass against Kamailio");
    }
    assert!(report
        .scenarios
        .iter()
        .all(|s| s.verdict != Verdict::Inconclusive));
}
