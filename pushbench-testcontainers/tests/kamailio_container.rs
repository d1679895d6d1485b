//! What a gateway vendor writes: start the gateway image through testcontainers, run the SIP
//! scenarios against it, and assert that only the expected failures occur. Here the gateway is
//! the project's pushbench/kamailio image (Kamailio 5.6 + tsilo + http_client, built by
//! `containers/build.sh`), described by `targets/container/kamailio.toml`, whose baseline is the
//! host Kamailio target's, `targets/kamailio-expected.toml`.
//!
//! Docker and the image are required: without them this test FAILS, saying what is missing
//! (CI builds the images before the tests; nothing is ever pulled). Ports (host networking,
//! 127.0.0.1): SIP 26060/26061, park 26069, control 26068, mock APNs 29443; no other test uses
//! them. About 2 minutes: Kamailio restarts before each scenario, which run one at a time.

use pushbench::expected::{ExpectedFailures, Outcome};
use pushbench::Verdict;
use pushbench_testcontainers::Gateway;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kamailio_image_fails_only_its_expected_requirements() {
    let started = Instant::now();
    let gateway = Gateway::start(root().join("targets/container/kamailio.toml"))
        .await
        .unwrap_or_else(|e| panic!("the Kamailio container did not start: {e}"));
    let up = started.elapsed();
    let report = gateway.run(&[root().join("features/sip")]).await;
    let id = gateway.id().to_owned();
    let stopped = gateway.stop().await;
    let report = report.unwrap_or_else(|e| panic!("the run could not start: {e}"));
    stopped.unwrap_or_else(|e| panic!("container {id} did not stop cleanly: {e}"));

    let baseline = ExpectedFailures::load(&root().join("targets/kamailio-expected.toml"))
        .expect("targets/kamailio-expected.toml loads");
    let mut xfailed = BTreeSet::new();
    let mut passed = BTreeSet::new();
    let mut wrong = Vec::new();
    for s in &report.scenarios {
        match s.outcome {
            Outcome::Pass => passed.extend(s.info.requirements.iter().cloned()),
            Outcome::Xfail => xfailed.extend(s.info.requirements.iter().cloned()),
            Outcome::NotApplicable => {}
            other => wrong.push(format!(
                "{} [{}]: {other:?} ({:?}) {}",
                s.info.name,
                s.info.requirements.join(","),
                s.verdict,
                s.reason.as_deref().unwrap_or("")
            )),
        }
    }
    println!(
        "kamailio image: up in {:.1} s; {} scenarios in {:.0} s (total {:.0} s); xfail {:?}",
        up.as_secs_f64(),
        report.scenarios.len(),
        report.duration.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        xfailed
    );
    assert!(
        wrong.is_empty(),
        "verdicts that do not match targets/kamailio-expected.toml:\n{}\n{}",
        wrong.join("\n"),
        report.failures()
    );
    let listed = baseline.listed_requirements(report.scenarios.iter().map(|s| &s.info));
    assert_eq!(
        xfailed, listed,
        "the requirements that failed are exactly the ones the baseline lists"
    );
    assert!(report.passed(), "{}", report.failures());
    assert!(report
        .scenarios
        .iter()
        .all(|s| s.verdict != Verdict::Inconclusive));
    // Pushes went from the container's http_client to the in-process mock APNs.
    assert!(passed.contains("SIP-B1"), "SIP-B1 did not pass: {passed:?}");
}
