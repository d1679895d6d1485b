//! The runner end to end: the real `pushbench` binary runs the demo features
//! (`tests/runner-fixtures/`) and the test checks the progress and table output, the JUnit file
//! (parsed with a real XML parser), the JSON and HTML reports, and the exit codes.

use quick_xml::events::Event;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FIXTURES: &str = "tests/runner-fixtures";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `pushbench ARGS` in the package directory, killing it after 60 s.
fn pushbench(args: &[&str]) -> Run {
    pushbench_env(args, &[])
}

/// Same, with extra environment variables.
fn pushbench_env(args: &[&str], env: &[(&str, &Path)]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pushbench"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pushbench");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pushbench {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().expect("output");
    Run {
        code: status.code().expect("exit code, not a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every `<testcase>`: (name, child element names other than properties/system-out).
fn testcases(path: &Path) -> Vec<(String, Vec<String>)> {
    let xml = std::fs::read_to_string(path).expect("JUnit file written");
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut cases: Vec<(String, Vec<String>)> = Vec::new();
    let mut depth_in_case = false;
    loop {
        match reader.read_event().expect("well-formed JUnit XML") {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testcase" => {
                let name = e
                    .try_get_attribute("name")
                    .unwrap()
                    .expect("testcase name")
                    .unescape_value()
                    .unwrap()
                    .into_owned();
                cases.push((name, Vec::new()));
                depth_in_case = true;
            }
            Event::Start(e) | Event::Empty(e) if depth_in_case => {
                let tag = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                if ["failure", "error", "skipped"].contains(&tag.as_str()) {
                    cases.last_mut().unwrap().1.push(tag);
                }
            }
            Event::End(e) if e.name().as_ref() == b"testcase" => depth_in_case = false,
            Event::Eof => break,
            _ => {}
        }
    }
    cases
}

fn case<'a>(cases: &'a [(String, Vec<String>)], name: &str) -> &'a [String] {
    let found: Vec<_> = cases.iter().filter(|c| c.0 == name).collect();
    assert_eq!(found.len(), 1, "exactly one testcase {name:?} in {cases:?}");
    &found[0].1
}

fn out(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn a_passing_run_exits_0_with_the_table_and_one_testcase_per_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let junit = out(&dir, "pass.xml");
    let r = pushbench(&[
        "run",
        "--junit",
        junit.to_str().unwrap(),
        &format!("{FIXTURES}/pass"),
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("[4/4] pass"),
        "progress lines: {}",
        r.stdout
    );
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with("DEMO-PROFILE"))
        .expect("a table row per requirement id");
    let cols: Vec<&str> = row.split_whitespace().take(7).collect();
    assert_eq!(
        cols,
        ["DEMO-PROFILE", "1", "0", "0", "0", "0", "1"],
        "{row}"
    );
    assert!(r.stdout.contains("Overall: PASS"), "{}", r.stdout);
    let cases = testcases(&junit);
    assert_eq!(cases.len(), 5, "{cases:?}");
    assert!(case(&cases, "Several messages are recorded (100 Trying)").is_empty());
    assert_eq!(
        case(&cases, "Only for gateways that send a cancel push"),
        ["skipped"]
    );
}

#[test]
fn a_mixed_run_exits_1_and_reports_every_verdict_once() {
    let dir = tempfile::tempdir().unwrap();
    let (junit, json, html) = (out(&dir, "m.xml"), out(&dir, "m.json"), out(&dir, "m.html"));
    let r = pushbench(&[
        "run",
        "--concurrency",
        "4",
        "--junit",
        junit.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
        &format!("{FIXTURES}/mixed"),
    ]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    // The failure output: step, error with the offending bytes, ladder diagram.
    let s = &r.stdout;
    assert!(
        s.contains("FAIL Runner demo, every verdict: Fails with the offending message"),
        "{s}"
    );
    assert!(
        s.contains("step: Then the demo check fails because \"no push was sent\""),
        "{s}"
    );
    assert!(s.contains("offending message (30 bytes):"), "{s}");
    assert!(s.contains("\\xff"), "offending byte escaped: {s}");
    assert!(s.contains("|<--------------|"), "ladder diagram: {s}");
    assert!(s.contains("480 Temporarily Unavailable [udp]"), "{s}");
    assert!(s.contains("(attempt 1, retrying)"), "{s}");
    assert!(s.contains("Overall: FAIL"), "{s}");

    let cases = testcases(&junit);
    assert_eq!(cases.len(), 7, "one testcase per scenario: {cases:?}");
    assert!(
        case(&cases, "Passes on its second attempt").is_empty(),
        "no phantom failure from the retry"
    );
    assert_eq!(
        case(&cases, "Fails with the offending message"),
        ["failure"]
    );
    assert_eq!(case(&cases, "A step panics"), ["failure"]);
    assert_eq!(case(&cases, "Cannot establish its precondition"), ["error"]);
    assert_eq!(
        case(&cases, "Records an inconclusive verdict and goes on"),
        ["error"]
    );
    assert_eq!(case(&cases, "A step nobody wrote"), ["error"]);
    assert!(case(&cases, "Passes").is_empty());

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let elements = json[0]["elements"].as_array().unwrap();
    assert_eq!(elements.len(), 7);
    let retried = elements
        .iter()
        .find(|e| e["name"] == "Passes on its second attempt")
        .unwrap();
    assert_eq!(retried["pushbench_attempts"], 2);
    assert_eq!(retried["pushbench_outcome"], "pass");

    let html = std::fs::read_to_string(&html).unwrap();
    assert_eq!(html.matches("<section").count(), 7);
    assert!(html.contains("<svg"), "sequence diagrams");
    assert!(!html.contains("<script"));
}

#[test]
fn expected_failures_gate_the_run() {
    let target = format!("{FIXTURES}/demo-target.toml");
    let mixed = format!("{FIXTURES}/mixed");
    // DEMO-FAIL is expected to fail: xfail, exit 0.
    let r = pushbench(&[
        "run",
        "--target",
        &target,
        "--tags",
        "@req:DEMO-FAIL",
        &mixed,
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("XFAIL Runner demo, every verdict: Fails with the offending message"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("1 xfail"), "{}", r.stdout);
    // "Passes" is listed as expected to fail but passes: xpass, exit 1.
    let r = pushbench(&[
        "run",
        "--target",
        &target,
        "--tags",
        "@req:DEMO-PASS",
        &mixed,
    ]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("XPASS Runner demo, every verdict: Passes"),
        "{}",
        r.stdout
    );
    // A failure nobody expected: exit 1.
    let r = pushbench(&[
        "run",
        "--target",
        &target,
        "--tags",
        "@req:DEMO-PANIC",
        &mixed,
    ]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    // A known failure pinned to another step than the one that failed: a new failure, exit 1.
    let pinned = format!("{FIXTURES}/demo-pinned-target.toml");
    let r = pushbench(&[
        "run",
        "--target",
        &pinned,
        "--tags",
        "@req:DEMO-FAIL",
        &mixed,
    ]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(
            "expected to fail at the step \"the demo timeline has 2 events\", failed at another one"
        ),
        "{}",
        r.stdout
    );
    // The target's profile (cancel-push) makes the drop/replay scenario not applicable.
    let r = pushbench(&["run", "--target", &target, &format!("{FIXTURES}/pass")]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("For gateways that drop or replay [not-applicable]"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("Only for gateways that send a cancel push [pass]"),
        "{}",
        r.stdout
    );
}

#[test]
fn the_embedded_gateway_runs_in_another_cancel_profile() {
    let pass = format!("{FIXTURES}/pass");
    let r = pushbench(&["run", "--embedded-cancel", "cancel-push", &pass]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("Only for gateways that send a cancel push [pass]"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("For gateways that drop or replay [not-applicable]"),
        "{}",
        r.stdout
    );
    let r = pushbench(&["run", "--embedded-cancel", "replay", &pass]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("expected rfc8599-drop, flexisip-replay or cancel-push"),
        "{}",
        r.stderr
    );
    let target = format!("{FIXTURES}/demo-target.toml");
    let r = pushbench(&[
        "run",
        "--target",
        &target,
        "--embedded-cancel",
        "cancel-push",
        &pass,
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("--embedded-cancel applies to the embedded"),
        "{}",
        r.stderr
    );
}

#[test]
fn selecting_nothing_is_an_error_not_a_pass() {
    let r = pushbench(&["run", "--tags", "@no-such-tag", &format!("{FIXTURES}/pass")]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("no scenario selected"), "{}", r.stderr);
    // Everything selected is excluded by the profile: also nothing tested.
    let r = pushbench(&[
        "run",
        "--tags",
        "@profile:cancel-push",
        &format!("{FIXTURES}/pass"),
    ]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("not applicable"), "{}", r.stderr);
    let r = pushbench(&[
        "list",
        "--tags",
        "@no-such-tag",
        &format!("{FIXTURES}/pass"),
    ]);
    assert_eq!(r.code, 2);
}

#[test]
fn load_errors_exit_2_with_the_reason() {
    let r = pushbench(&["run", &format!("{FIXTURES}/untagged")]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("\"Not tagged\" has no @req:ID tag"),
        "{}",
        r.stderr
    );
    let r = pushbench(&["run", "--tags", "@a and and", &format!("{FIXTURES}/pass")]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("bad tag expression"), "{}", r.stderr);
    let r = pushbench(&["run", "--target", "Cargo.toml", &format!("{FIXTURES}/pass")]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("target:"), "{}", r.stderr);
    let r = pushbench(&["run", &format!("{FIXTURES}/missing")]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn list_shows_requirement_ids_and_applicability() {
    let r = pushbench(&["list", &format!("{FIXTURES}/pass")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("DEMO-PASS  Runner demo, passing: A message is recorded"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Only for gateways that send a cancel push  [not applicable: target \"ref-gateway (embedded)\" does not declare profile cancel-push]"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("5 scenarios (4 applicable to ref-gateway (embedded)), 3 requirement ids"),
        "{}",
        r.stdout
    );
}

#[test]
fn credentials_are_written_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("creds");
    let first = pushbench(&[
        "credentials",
        "--out",
        out.to_str().unwrap(),
        "--team-id",
        "TEAM123456",
    ]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert!(
        first.stdout.contains("team id TEAM123456"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("certificate auth (sandbox)"),
        "{}",
        first.stdout
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let key_file = manifest["keys"][0]["file"].as_str().unwrap();
    let key = std::fs::read_to_string(out.join(key_file)).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    let ca = std::fs::read_to_string(out.join(manifest["ca_file"].as_str().unwrap())).unwrap();
    assert!(ca.contains("BEGIN CERTIFICATE"));
    // A second run keeps the same key, so a gateway configured with it keeps working.
    let second = pushbench(&["credentials", "--out", out.to_str().unwrap()]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(first.stdout, second.stdout);
}

#[test]
fn a_step_that_never_returns_is_inconclusive_at_the_run_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let junit = out(&dir, "hang.xml");
    let r = pushbench(&[
        "run",
        "--timeout",
        "2",
        "--junit",
        junit.to_str().unwrap(),
        &format!("{FIXTURES}/hang"),
    ]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(
            "still running at the run's deadline of 2s: Then the demo step never returns"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Passes while the other hangs [pass]"),
        "{}",
        r.stdout
    );
    let cases = testcases(&junit);
    assert_eq!(case(&cases, "Hangs"), ["error"]);
    assert!(case(&cases, "Passes while the other hangs").is_empty());
}

#[test]
fn target_commands_run_around_the_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let trace = [("PUSHBENCH_TRACE_DIR", dir.path())];
    let pass = format!("{FIXTURES}/pass");
    let html = out(&dir, "r.html");
    let r = pushbench_env(
        &[
            "run",
            "--target",
            &format!("{FIXTURES}/commands/start-ok.toml"),
            "--html",
            html.to_str().unwrap(),
            &pass,
        ],
        &trace,
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    for (file, text) in [
        ("start", "started"),
        ("reset", "reset"),
        ("stop", "stopped"),
    ] {
        let got = std::fs::read_to_string(dir.path().join(file)).unwrap_or_default();
        assert_eq!(got.trim(), text, "{file}");
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("command start"), "commands are in the report");
    // before_scenario ran once per scenario that ran (the others are not applicable).
    let summary = r
        .stdout
        .lines()
        .find(|l| l.contains(" scenarios: "))
        .expect("summary line");
    let count = |what: &str| -> usize {
        summary
            .split([':', ',', '('])
            .find_map(|p| {
                let mut words = p.split_whitespace();
                let n = words.next()?.parse().ok()?;
                (words.next()? == what).then_some(n)
            })
            .unwrap_or_else(|| panic!("{what:?} in {summary:?}"))
    };
    let ran = count("scenarios") - count("not-applicable");
    assert!(ran > 1, "{summary}");
    let before = std::fs::read_to_string(dir.path().join("before")).unwrap_or_default();
    assert_eq!(before.lines().count(), ran, "{summary}");

    std::fs::remove_file(dir.path().join("stop")).unwrap();
    let r = pushbench_env(
        &[
            "run",
            "--target",
            &format!("{FIXTURES}/commands/start-fails.toml"),
            &pass,
        ],
        &trace,
    );
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("target command start failed")
            && r.stderr.contains("the gateway would not start"),
        "{}",
        r.stderr
    );
    assert!(
        dir.path().join("stop").exists(),
        "stop runs even when start failed"
    );

    std::fs::remove_file(dir.path().join("stop")).unwrap();
    let r = pushbench_env(
        &[
            "run",
            "--target",
            &format!("{FIXTURES}/commands/before-fails.toml"),
            &pass,
        ],
        &trace,
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("before_scenario failed")
            && r.stdout.contains("the account cannot be cleaned")
            && r.stdout.contains(" 0 pass,"),
        "every scenario is inconclusive, saying why: {}",
        r.stdout
    );
    assert!(dir.path().join("stop").exists(), "stop runs after them");
}

/// A check no reference-gateway fault reaches (an earlier step of its scenario fails first) still
/// fails when what it checks is not so: `tests/sip-fixtures/must-fail.feature`.
#[test]
fn the_sip_checks_no_fault_reaches_fail_when_what_they_check_is_not_so() {
    let r = pushbench(&["run", "tests/sip-fixtures"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("A call Bob never cancelled still rings after the REGISTER [fail]"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("no longer ringing within"),
        "{}",
        r.stdout
    );
}
