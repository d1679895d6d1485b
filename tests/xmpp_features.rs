//! `features/xmpp` through the runner against the real XMPP targets, started and stopped by the
//! targets' commands, once per run (the bench's in-process app server connects as the target's
//! component), as `pushbench run --target targets/<target>.toml features/xmpp` does:
//! `targets/prosody.toml` (Prosody 0.12 + mod_cloud_notify) and `targets/ejabberd.toml`
//! (ejabberd 23.01 + mod_push).
//!
//! - with the correct app server, every XMPP id passes except those the target's expected-failures
//!   file (`targets/prosody-expected.toml`, `targets/ejabberd-expected.toml`) lists, which must
//!   fail (xfail), and the run passes;
//! - the XMPP fault matrix (REQUIREMENTS.md § "XMPP fault matrix"), against Prosody: with one
//!   `AppFault` switched on, the ids that fail are exactly `AppFault::breaks` plus the target's
//!   expected failures (an id Prosody already fails cannot show the fault: the rule is a union).
//!   Printed with `-- --nocapture`.
//!
//! - the reconnect checks can fail: `tests/xmpp-fixtures/must-fail.feature` asks a correct
//!   server (Prosody) for a live call to be gone and for a message Bob never sent; both must fail.
//!
//! The tests use the targets' fixed ports and the process-wide XMPP turn, so they take turns
//! ([`TARGET`]).

use pushbench::expected::ExpectedFailures;
use pushbench::report::RunReport;
use pushbench::runner::{run_blocking, RunOptions};
use pushbench::scenario::GatewayFaults;
use pushbench::target::Target;
use pushbench::Verdict;
use ref_gateway::app_server::{AppFault, AppFaults};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One XMPP target at a time in this binary.
static TARGET: Mutex<()> = Mutex::new(());

/// Prosody 0.12 + mod_cloud_notify.
const PROSODY: &str = "targets/prosody.toml";
/// ejabberd 23.01 + mod_push.
const EJABBERD: &str = "targets/ejabberd.toml";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The requirement ids the target's expected-failures file lists.
fn expected_ids(target: &str) -> BTreeSet<String> {
    let t = Target::load(&root().join(target)).expect("the target file loads");
    let path = t
        .expected_failures
        .expect("the target names its expected failures");
    let e = ExpectedFailures::load(&path).expect("the expected failures load");
    assert!(
        e.scenario.is_empty(),
        "this test reads requirement entries only"
    );
    e.requirement.keys().cloned().collect()
}

struct Run {
    report: RunReport,
    failing: BTreeSet<String>,
    other: BTreeSet<String>,
    took: Duration,
}

/// One run of features/xmpp against `target` with these app-server faults.
fn run(target: &str, faults: AppFaults) -> Run {
    run_features(target, faults, root().join("features/xmpp"))
}

/// One run of `features` against `target` with these app-server faults.
fn run_features(target: &str, faults: AppFaults, features: PathBuf) -> Run {
    let _turn = timeline::lock(&TARGET);
    let started = Instant::now();
    let opts = RunOptions {
        target: Some(root().join(target)),
        features: vec![features],
        print: false,
        timeout: Duration::from_secs(300),
        faults: GatewayFaults {
            app_server: faults,
            ..GatewayFaults::default()
        },
        ..RunOptions::default()
    };
    let report = run_blocking(&opts)
        .unwrap_or_else(|e| panic!("the run against {target} starts (installed?): {e}"));
    let mut r = Run {
        failing: BTreeSet::new(),
        other: BTreeSet::new(),
        took: started.elapsed(),
        report,
    };
    for s in &r.report.scenarios {
        for id in &s.info.requirements {
            match s.verdict {
                Verdict::Pass => {}
                Verdict::Fail => {
                    r.failing.insert(id.clone());
                }
                Verdict::Inconclusive | Verdict::NotApplicable => {
                    r.other.insert(format!("{id} {}", s.verdict));
                }
            }
        }
    }
    r
}

/// The ids, space-separated (`none` for none).
fn list(s: &BTreeSet<String>) -> String {
    let ids: Vec<&str> = s.iter().map(String::as_str).collect();
    match ids.as_slice() {
        [] => "none".to_owned(),
        _ => ids.join(" "),
    }
}

/// Runs features/xmpp against `target` with the correct app server: exactly the target's expected
/// failures fail, everything else passes, every scenario ran.
fn features_xmpp_pass_but_the_expected_failures(target: &str) {
    let r = run(target, AppFaults::none());
    let expected = expected_ids(target);
    println!(
        "features/xmpp against {target}: {:.1} s, failing {}\n{}",
        r.took.as_secs_f64(),
        list(&r.failing),
        r.report.table()
    );
    assert!(
        r.other.is_empty(),
        "{}\n{}",
        list(&r.other),
        r.report.failures()
    );
    assert_eq!(r.failing, expected, "{}", r.report.failures());
    assert!(r.report.passed(), "{}", r.report.failures());
    // Every baseline entry, and the step it is pinned to, matches the suite.
    let stale: Vec<&String> = r
        .report
        .warnings
        .iter()
        .filter(|w| w.contains("matches no scenario"))
        .collect();
    assert!(stale.is_empty(), "{stale:?}");
    assert_eq!(
        r.report.scenarios.len(),
        10,
        "every scenario of features/xmpp ran"
    );
}

#[test]
fn features_xmpp_pass_against_prosody_but_the_expected_failures() {
    features_xmpp_pass_but_the_expected_failures(PROSODY);
}

#[test]
fn features_xmpp_pass_against_ejabberd_but_the_expected_failures() {
    features_xmpp_pass_but_the_expected_failures(EJABBERD);
}

#[test]
fn each_app_server_fault_fails_exactly_the_xmpp_ids_it_breaks() {
    let expected_failures = expected_ids(PROSODY);
    let mut problems = Vec::new();
    let mut matrix = vec![format!(
        "{:<20} {:>6}  failing requirement ids (target's expected failures: {})",
        "fault",
        "secs",
        list(&expected_failures)
    )];
    for fault in AppFault::ALL {
        let r = run(PROSODY, AppFaults::only(fault));
        matrix.push(format!(
            "{:<20} {:>6.1}  {}",
            fault.name(),
            r.took.as_secs_f64(),
            list(&r.failing)
        ));
        let want: BTreeSet<String> = fault
            .breaks()
            .into_iter()
            .map(str::to_owned)
            .chain(expected_failures.iter().cloned())
            .collect();
        if !r.other.is_empty() {
            problems.push(format!("{fault}: not pass/fail: {}", list(&r.other)));
        }
        if r.failing != want {
            problems.push(format!(
                "{fault}: failing {}, expected {}\n{}",
                list(&r.failing),
                list(&want),
                r.report.failures()
            ));
        }
    }
    println!("XMPP fault matrix:\n{}", matrix.join("\n"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_reconnect_checks_fail_when_what_they_check_is_not_so() {
    let r = run_features(
        PROSODY,
        AppFaults::none(),
        root().join("tests/xmpp-fixtures"),
    );
    let failing: Vec<&str> = r.failing.iter().map(String::as_str).collect();
    assert_eq!(
        failing,
        ["CHECK-LIVE-CALL", "CHECK-MESSAGE"],
        "{}",
        r.report.failures()
    );
    let reasons: Vec<String> = r
        .report
        .scenarios
        .iter()
        .map(|s| s.reason.clone().unwrap_or_default())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|why| why.contains("1 live call proposal(s)")),
        "{reasons:#?}"
    );
    assert!(
        reasons
            .iter()
            .any(|why| why.contains("\"never sent\" exactly once") && why.contains("0 times")),
        "{reasons:#?}"
    );
}
