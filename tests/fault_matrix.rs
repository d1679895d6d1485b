//! The fault matrix, as a test: the whole suite runs against the embedded reference gateway,
//! first correct, then with each fault switched on alone. The correct gateway passes every
//! applicable scenario; with a fault, the suite fails and the failing requirement ids are exactly
//! `Fault::breaks(profile)` (restricted to the ids the embedded target's profile applies to):
//! no expected id passes, no other id fails. The matrix is printed (`-- --nocapture`).
//!
//! Requirement ids whose scenarios the bench cannot set up yet are inconclusive; they are listed
//! in [`BENCH_GAPS`] and asserted to be exactly the inconclusive ones, so a new gap or a closed
//! one both fail this test.

use pushbench::report::RunReport;
use pushbench::runner::{run_blocking, RunOptions};
use pushbench::steps::{configure_embedded, EmbeddedConfig};
use pushbench::Verdict;
use ref_gateway::{Fault, Faults, Profile};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Requirement ids the bench cannot establish the precondition of yet, with why.
const BENCH_GAPS: &[(&str, &str)] = &[(
    "SIP-E4",
    "mock-apns has no device option to keep pushes with expiration 0",
)];

/// The embedded target's cancel profile (`Target::embedded_reference()`).
const PROFILE: Profile = Profile::Rfc8599Drop;

struct Outcome {
    failing: BTreeSet<String>,
    inconclusive: BTreeSet<String>,
    applicable: BTreeSet<String>,
    took: Duration,
}

fn run(faults: Faults) -> Outcome {
    configure_embedded(Some(EmbeddedConfig { faults }));
    let started = Instant::now();
    let opts = RunOptions {
        features: vec![PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/features"
        ))],
        print: false,
        timeout: Duration::from_secs(240),
        ..RunOptions::default()
    };
    let report: RunReport = run_blocking(&opts).expect("the suite starts");
    configure_embedded(None);
    let mut o = Outcome {
        failing: BTreeSet::new(),
        inconclusive: BTreeSet::new(),
        applicable: BTreeSet::new(),
        took: started.elapsed(),
    };
    for s in &report.scenarios {
        for id in &s.info.requirements {
            match s.verdict {
                Verdict::NotApplicable => continue,
                Verdict::Fail => {
                    o.failing.insert(id.clone());
                }
                Verdict::Inconclusive => {
                    o.inconclusive.insert(id.clone());
                }
                Verdict::Pass => {}
            }
            o.applicable.insert(id.clone());
        }
    }
    if !o.failing.is_empty() || !o.inconclusive.is_empty() {
        println!("{}", report.failures());
    }
    o
}

fn list(s: &BTreeSet<String>) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.iter().cloned().collect::<Vec<_>>().join(" ")
    }
}

#[test]
fn each_fault_fails_exactly_the_requirements_it_breaks() {
    let gaps: BTreeSet<String> = BENCH_GAPS.iter().map(|(id, _)| id.to_string()).collect();
    let mut problems = Vec::new();
    let mut matrix = vec![format!(
        "{:<24} {:>6}  failing requirement ids",
        "fault", "secs"
    )];

    let correct = run(Faults::none());
    matrix.push(format!(
        "{:<24} {:>6.1}  {}",
        "(none)",
        correct.took.as_secs_f64(),
        list(&correct.failing)
    ));
    if !correct.failing.is_empty() {
        problems.push(format!(
            "the correct gateway fails {}",
            list(&correct.failing)
        ));
    }
    if correct.inconclusive != gaps {
        problems.push(format!(
            "inconclusive against the correct gateway: {} (known bench gaps: {})",
            list(&correct.inconclusive),
            list(&gaps)
        ));
    }

    for fault in Fault::ALL {
        let o = run(Faults::only(fault));
        let expected: BTreeSet<String> = fault
            .breaks(PROFILE)
            .into_iter()
            .map(str::to_owned)
            .filter(|id| o.applicable.contains(id) && !gaps.contains(id))
            .collect();
        matrix.push(format!(
            "{:<24} {:>6.1}  {}",
            fault.name(),
            o.took.as_secs_f64(),
            list(&o.failing)
        ));
        let passing_expected: BTreeSet<_> = expected.difference(&o.failing).cloned().collect();
        let unexpected: BTreeSet<_> = o
            .failing
            .difference(&expected)
            .filter(|id| !gaps.contains(*id))
            .cloned()
            .collect();
        if o.failing.is_empty() {
            problems.push(format!("{fault}: the suite did not fail"));
        }
        if !passing_expected.is_empty() {
            problems.push(format!(
                "{fault}: expected to fail but did not: {}",
                list(&passing_expected)
            ));
        }
        if !unexpected.is_empty() {
            problems.push(format!(
                "{fault}: failed but not in the matrix: {}",
                list(&unexpected)
            ));
        }
    }
    println!("fault matrix (profile {PROFILE}):\n{}", matrix.join("\n"));
    for (id, why) in BENCH_GAPS {
        println!("bench gap: {id}: {why}");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
