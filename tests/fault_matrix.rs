//! The fault matrix, as a test: the whole suite runs against the embedded reference gateway in
//! each of its three cancel profiles and each of its designs (`ref_gateway::Design`: the RFC 8599
//! bucket, tsilo-like relay then hand-over), first correct, then with each fault of that design
//! switched on alone (rows of the tsilo design say "(tsilo)"). Runs
//! are one after the other (scenarios inside a run are concurrent): three suites at once on two
//! cores starve the shared mock APNs and the 2 s windows of SIP-E2 fail for the wrong reason. The correct gateway passes
//! every applicable scenario; with a fault, the suite fails and the failing requirement ids are
//! exactly `Fault::breaks(profile)` (restricted to the ids the embedded target applies):
//! no expected id passes, no other id fails. The matrix is printed (`-- --nocapture`).
//!
//! Requirement ids whose scenarios the bench cannot set up yet are inconclusive; they are listed
//! in [`BENCH_GAPS`] and asserted to be exactly the inconclusive ones, so a new gap or a closed
//! one both fail this test.

use pushbench::report::RunReport;
use pushbench::runner::{run_blocking, RunOptions};
use pushbench::scenario::GatewayFaults;
use pushbench::target::CancelPolicy;
use pushbench::Verdict;
use ref_gateway::{Design, Fault, Faults};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Requirement ids the bench cannot establish the precondition of yet, with why.
const BENCH_GAPS: &[(&str, &str)] = &[];

/// The cancel policies, in the order the matrix prints them.
const PROFILES: [CancelPolicy; 3] = [
    CancelPolicy::FlexisipReplay,
    CancelPolicy::Rfc8599Drop,
    CancelPolicy::CancelPush,
];

struct Outcome {
    failing: BTreeSet<String>,
    inconclusive: BTreeSet<String>,
    applicable: BTreeSet<String>,
    took: Duration,
}

fn run(faults: Faults, design: Design, cancel: CancelPolicy) -> Outcome {
    let started = Instant::now();
    let opts = RunOptions {
        embedded_cancel: Some(cancel),
        features: vec![PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/features"
        ))],
        print: false,
        timeout: Duration::from_secs(240),
        faults: GatewayFaults {
            sip: faults,
            design,
            ..GatewayFaults::default()
        },
        ..RunOptions::default()
    };
    let report: RunReport = run_blocking(&opts).expect("the suite starts");
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

/// The suite in every profile, with these faults, in this design.
fn run_all_profiles(faults: &Faults, design: Design) -> Vec<(CancelPolicy, Outcome)> {
    PROFILES
        .iter()
        .map(|&cancel| (cancel, run(faults.clone(), design, cancel)))
        .collect()
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
        "{:<28} {:<16} {:>5}  failing requirement ids",
        "fault", "profile", "secs"
    )];
    // Each design: correct, then with each of its faults alone.
    let configs: Vec<(Design, Option<Fault>)> = Design::ALL
        .into_iter()
        .flat_map(|d| {
            std::iter::once((d, None)).chain(
                Fault::ALL
                    .into_iter()
                    .filter(move |f| f.design() == d)
                    .map(move |f| (d, Some(f))),
            )
        })
        .collect();
    for (design, fault) in configs {
        let faults = fault.map(Faults::only).unwrap_or_default();
        for (profile, o) in run_all_profiles(&faults, design) {
            let bare = fault.map(Fault::name).unwrap_or("(none)");
            let name = match design {
                Design::Bucket => bare.to_owned(),
                d => format!("{bare} ({d})"),
            };
            matrix.push(format!(
                "{name:<28} {:<16} {:>5.1}  {}",
                profile.as_str(),
                o.took.as_secs_f64(),
                list(&o.failing)
            ));
            if o.inconclusive != gaps.intersection(&o.applicable).cloned().collect() {
                problems.push(format!(
                    "{name}/{profile}: inconclusive {} (known bench gaps: {})",
                    list(&o.inconclusive),
                    list(&gaps)
                ));
            }
            let Some(fault) = fault else {
                if !o.failing.is_empty() {
                    problems.push(format!(
                        "the correct gateway ({design}, {profile}) fails {}",
                        list(&o.failing)
                    ));
                }
                continue;
            };
            let expected: BTreeSet<String> = fault
                .breaks(profile)
                .into_iter()
                .map(str::to_owned)
                .filter(|id| o.applicable.contains(id) && !gaps.contains(id))
                .collect();
            let passing_expected: BTreeSet<_> = expected.difference(&o.failing).cloned().collect();
            let unexpected: BTreeSet<_> = o.failing.difference(&expected).cloned().collect();
            if o.failing.is_empty() {
                problems.push(format!("{fault}/{profile}: the suite did not fail"));
            }
            if !passing_expected.is_empty() {
                problems.push(format!(
                    "{fault}/{profile}: expected to fail but did not: {}",
                    list(&passing_expected)
                ));
            }
            if !unexpected.is_empty() {
                problems.push(format!(
                    "{fault}/{profile}: failed but not in the matrix: {}",
                    list(&unexpected)
                ));
            }
        }
    }
    println!("fault matrix:\n{}", matrix.join("\n"));
    for (id, why) in BENCH_GAPS {
        println!("bench gap: {id}: {why}");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The point of the relaunch wake: a gateway that never hands the call to the woken device's new
/// registration fails SIP-B1 on every transport, scenario by scenario (the matrix above checks
/// ids only), while the same gateway still reaches a suspended app that kept its socket only
/// where its old Contact still works.
#[test]
fn a_missing_hand_over_fails_sip_b1_on_udp_tcp_and_tls() {
    let wake = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/features/sip/wake.feature"
    ));
    let mut problems = Vec::new();
    for fault in [Fault::NoHandOver, Fault::ContactUriMatch] {
        let opts = RunOptions {
            features: vec![wake.clone()],
            print: false,
            timeout: Duration::from_secs(120),
            faults: GatewayFaults {
                sip: Faults::only(fault),
                design: fault.design(),
                ..GatewayFaults::default()
            },
            ..RunOptions::default()
        };
        let report: RunReport = run_blocking(&opts).expect("the suite starts");
        for transport in ["(UDP", "(TCP", "(TLS"] {
            let s = report
                .scenarios
                .iter()
                .find(|s| {
                    s.info.requirements.iter().any(|r| r == "SIP-B1")
                        && s.info.name.contains(transport)
                })
                .expect("wake.feature has a SIP-B1 scenario per transport");
            if s.verdict != Verdict::Fail {
                problems.push(format!(
                    "{fault}: {:?} is {:?}, not a failure",
                    s.info.name, s.verdict
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `[apns.payload]`: a target whose app reads the Call-ID at `/call-id` and declares no
/// `send_time` passes APNS-5 when the gateway puts the Call-ID there, and fails it, naming
/// `/call-id` and showing the payload, when the key is missing (fault `no-call-id-in-payload`).
#[test]
fn apns_5_checks_the_payload_contract_the_target_declares() {
    let contract = pushbench::target::PayloadContract {
        call_id: "/call-id".into(),
        send_time: None,
        caller: None,
        cancel: None,
    };
    let run = |faults: Faults| {
        let opts = RunOptions {
            embedded_payload: Some(contract.clone()),
            features: vec![PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/features/apns/call-push.feature"
            ))],
            req: vec!["APNS-5".into()],
            print: false,
            timeout: Duration::from_secs(60),
            faults: GatewayFaults {
                sip: faults,
                ..GatewayFaults::default()
            },
            ..RunOptions::default()
        };
        let report: RunReport = run_blocking(&opts).expect("the suite starts");
        let s = report
            .scenarios
            .into_iter()
            .find(|s| s.info.requirements.iter().any(|r| r == "APNS-5"))
            .expect("an APNS-5 scenario");
        (s.verdict, s.reason.unwrap_or_default())
    };
    let (verdict, reason) = run(Faults::none());
    assert_eq!(verdict, Verdict::Pass, "{reason}");
    let (verdict, reason) = run(Faults::only(Fault::NoCallIdInPayload));
    assert_eq!(verdict, Verdict::Fail);
    assert!(
        reason.contains("\"/call-id\"") && reason.contains("\"aps\""),
        "the failure names the pointer and shows the payload: {reason}"
    );
}
