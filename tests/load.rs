//! `pushbench load` as a test of correctness, not of speed: 500 sleeping phones, 20 calls/s for
//! 10 s against the embedded reference gateway. Every call is answered, every stage latency
//! histogram has values, and the JSON report reads back. No timing is asserted.

use pushbench::load::plan::LoadOptions;
use pushbench::load::report::LoadReport;
use pushbench::load::stats::Stage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_sleeping_phones_answer_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("load.json");
    let html = dir.path().join("load.html");
    let opts = LoadOptions {
        phones: 500,
        rate: 20.0,
        duration: 10,
        json: Some(json.clone()),
        html: Some(html.clone()),
        ..LoadOptions::default()
    };
    let report = pushbench::load::run(&opts).await.expect("the load run ran");
    let step = &report.steps[0];
    assert_eq!(step.offered, 200, "{}", step.text());
    assert_eq!(step.finished, 200, "{}", step.text());
    assert_eq!(
        step.outcomes.get("answered").copied(),
        Some(200),
        "every call answered:\n{}",
        step.text()
    );
    assert_eq!(step.failures, 0, "{}", step.text());
    for stage in Stage::ALL {
        let p = step
            .latency_ms
            .get(stage.name())
            .unwrap_or_else(|| panic!("no {} latency:\n{}", stage.name(), step.text()));
        assert!(p.count > 0, "{} histogram empty", stage.name());
    }
    let back: LoadReport = serde_json::from_str(&std::fs::read_to_string(&json).unwrap())
        .expect("the JSON reads back");
    assert_eq!(back.steps[0].outcomes, step.outcomes);
    assert_eq!(back.phones, 500);
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg").count(), 2);
}

#[tokio::test]
async fn bad_shares_stop_the_run_before_anything_starts() {
    let opts = LoadOptions {
        cancel_share: 0.8,
        flight_share: 0.8,
        ..LoadOptions::default()
    };
    let err = pushbench::load::run(&opts).await.expect_err("refused");
    assert!(matches!(err, pushbench::load::LoadError::Usage(_)), "{err}");
}
