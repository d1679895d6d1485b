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

/// A stand-in for an external gateway the demo steps never talk to: it answers the runner's
/// pre-flight SIP OPTIONS (any datagram) with 200 OK. One per test process.
fn fake_gateway() -> std::net::SocketAddr {
    static ADDR: std::sync::OnceLock<std::net::SocketAddr> = std::sync::OnceLock::new();
    *ADDR.get_or_init(|| {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((_, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", from);
            }
        });
        addr
    })
}

/// The fixture target `name` (under tests/runner-fixtures), copied into `dir` with its
/// expected-failures file: its SIP address is the fake gateway's, and its mock APNs listens on
/// a free port (tests run at once).
fn fixture_target(dir: &Path, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(FIXTURES)
        .join(name);
    let text = std::fs::read_to_string(&src)
        .unwrap()
        .replace("127.0.0.1:5060", &fake_gateway().to_string())
        .replace("127.0.0.1:8443", "127.0.0.1:0");
    if let Some(line) = text.lines().find(|l| l.starts_with("expected_failures")) {
        let file = line.split('"').nth(1).unwrap();
        std::fs::copy(src.parent().unwrap().join(file), dir.join(file)).unwrap();
    }
    let dest = dir.join(src.file_name().unwrap());
    std::fs::write(&dest, text).unwrap();
    dest
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
    assert_eq!(cases.len(), 6, "one testcase per scenario: {cases:?}");
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
    assert!(case(&cases, "Passes").is_empty());

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let elements = json[0]["elements"].as_array().unwrap();
    assert_eq!(elements.len(), 6);
    let retried = elements
        .iter()
        .find(|e| e["name"] == "Passes on its second attempt")
        .unwrap();
    assert_eq!(retried["pushbench_attempts"], 2);
    assert_eq!(retried["pushbench_outcome"], "pass");

    let html = std::fs::read_to_string(&html).unwrap();
    assert_eq!(html.matches("<section").count(), 6);
    assert!(html.contains("<svg"), "sequence diagrams");
    assert!(!html.contains("<script"));
}

#[test]
fn expected_failures_gate_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let target = fixture_target(dir.path(), "demo-target.toml");
    let target = target.to_str().unwrap();
    let mixed = format!("{FIXTURES}/mixed");
    // DEMO-FAIL is expected to fail: xfail, exit 0.
    let r = pushbench(&[
        "run",
        "--target",
        target,
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
        target,
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
        target,
        "--tags",
        "@req:DEMO-PANIC",
        &mixed,
    ]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    // A known failure pinned to another step than the one that failed: a new failure, exit 1.
    let pinned = fixture_target(dir.path(), "demo-pinned-target.toml");
    let pinned = pinned.to_str().unwrap();
    let r = pushbench(&[
        "run",
        "--target",
        pinned,
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
    let r = pushbench(&["run", "--target", target, &format!("{FIXTURES}/pass")]);
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
fn the_static_check_finds_mistakes_before_anything_runs() {
    // An unknown step: the closest known step is suggested, with file:line:column.
    for cmd in ["check", "run"] {
        let r = pushbench(&[cmd, &format!("{FIXTURES}/undefined")]);
        assert_eq!(r.code, 2, "{cmd}: {}\n{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains("undefined/demo.feature:7:5: no step definition matches \"Then the demo timeline has 1 events at most\"; the closest known step is \"the demo timeline has … event"),
            "{cmd}: {}",
            r.stderr
        );
        assert!(
            !r.stdout.contains("[1/1]"),
            "{cmd}: nothing ran: {}",
            r.stdout
        );
    }
    // A Gherkin syntax error names file:line.
    let r = pushbench(&["check", &format!("{FIXTURES}/bad-syntax")]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("bad-syntax/demo.feature:8:")
            && r.stderr.contains(
                "Gherkin syntax error: unknown keyword in \"Scenari: a keyword with a typo\""
            ),
        "{}",
        r.stderr
    );
    // A capability nobody knows, with a guess.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("typo.toml");
    let text = std::fs::read_to_string(format!("{FIXTURES}/demo-target.toml"))
        .unwrap()
        .replace("capabilities = [", "capabilities = [\"forking\", ");
    assert!(
        text.contains("forking"),
        "the fixture declares capabilities"
    );
    std::fs::write(&target, text).unwrap();
    let r = pushbench(&["check", "--target", target.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("capability \"forking\" is not known")
            && r.stderr.contains("did you mean \"fork\""),
        "{}",
        r.stderr
    );
    // The suite itself is clean.
    let r = pushbench(&["check"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("0 finding(s)"), "{}", r.stdout);
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
    // Another bundle id: refused, nothing changed, until --force.
    let other = [
        "credentials",
        "--out",
        out.to_str().unwrap(),
        "--bundle-id",
        "com.other.app",
    ];
    let refused = pushbench(&other);
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    assert!(
        refused
            .stderr
            .contains("bundle id com.example.pushbench (asked: com.other.app)")
            && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read_to_string(out.join(key_file)).unwrap(),
        key,
        "kept"
    );
    let forced = pushbench(&[&other[..], &["--force"]].concat());
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(
        forced.stdout.contains("bundle id com.other.app"),
        "{}",
        forced.stdout
    );
    // A server name the certificate lacks is also a difference.
    let renamed = pushbench(&[
        "credentials",
        "--out",
        out.to_str().unwrap(),
        "--bundle-id",
        "com.other.app",
        "--server-name",
        "apns.gateway.test",
    ]);
    assert_eq!(renamed.code, 2, "{}", renamed.stdout);
    assert!(
        renamed.stderr.contains("apns.gateway.test"),
        "{}",
        renamed.stderr
    );
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
            fixture_target(dir.path(), "commands/start-ok.toml")
                .to_str()
                .unwrap(),
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
            fixture_target(dir.path(), "commands/start-fails.toml")
                .to_str()
                .unwrap(),
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
            fixture_target(dir.path(), "commands/before-fails.toml")
                .to_str()
                .unwrap(),
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

/// The pids of processes whose command line contains `marker`.
fn pids_with(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(marker)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Waits up to 5 s for every process with `marker` to be gone; the survivors.
fn survivors(marker: &str) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pids_with(marker).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    pids_with(marker)
}

/// A target file in `dir` for the fake gateway, with extra TOML appended.
fn target_file(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!(
            "name = \"{name}\"\n\n[sip]\ndomain = \"example.com\"\nudp = \"{}\"\n\n[apns]\nlisten = \"127.0.0.1:0\"\nauth = \"token\"\ncredentials_dir = \"credentials\"\nbundle_id = \"com.example.pushbench\"\n\n[profile]\ncancel = \"rfc8599-drop\"\n\n{extra}",
            fake_gateway()
        ),
    )
    .unwrap();
    p
}

#[test]
fn the_embedded_suite_runs_from_an_empty_folder() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_pushbench"))
        .args(["run", "--junit", "junit.xml"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("spawn pushbench");
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert_eq!(
        child.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&child.stderr)
    );
    assert!(stdout.contains("Overall: PASS"), "{stdout}");
    let cases = testcases(&dir.path().join("junit.xml"));
    assert!(
        cases.len() > 40,
        "the whole embedded suite ran: {}",
        cases.len()
    );
    // And the suite can be written out for editing, then run from there.
    let export = pushbench(&[
        "features",
        "export",
        dir.path().join("mine").to_str().unwrap(),
    ]);
    assert_eq!(export.code, 0, "{}", export.stderr);
    assert!(dir.path().join("mine/REQUIREMENTS.md").is_file());
    assert!(dir.path().join("mine/sip/answer.feature").is_file());
}

#[test]
fn a_gateway_that_is_not_there_is_reported_once_not_as_failures() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let target = target_file(dir.path(), "down", "");
    let text = std::fs::read_to_string(&target)
        .unwrap()
        .replace(&fake_gateway().to_string(), &closed.to_string());
    std::fs::write(&target, text).unwrap();
    let started = Instant::now();
    let r = pushbench(&[
        "run",
        "--target",
        target.to_str().unwrap(),
        &format!("{FIXTURES}/pass"),
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "one message: {}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "the gateway does not answer: sip.udp {closed}: sent a SIP OPTIONS over UDP"
        )),
        "{}",
        r.stderr
    );
    assert!(
        !r.stdout.contains("[1/"),
        "no scenario verdicts: {}",
        r.stdout
    );
    assert!(!r.stdout.contains("FAIL"), "{}", r.stdout);
}

#[test]
fn a_start_command_that_times_out_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("6{}.{}", std::process::id() % 100, std::process::id());
    let target = target_file(
        dir.path(),
        "slow-start",
        &format!("[commands.start]\nrun = \"sleep {marker} & sleep {marker}\"\ntimeout_ms = 500\n"),
    );
    let r = pushbench(&[
        "run",
        "--target",
        target.to_str().unwrap(),
        &format!("{FIXTURES}/pass"),
    ]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("timed out"), "{}", r.stderr);
    assert_eq!(
        survivors(&marker),
        Vec::<u32>::new(),
        "sleep {marker} survived"
    );
}

#[test]
fn sigint_writes_the_reports_runs_stop_and_leaves_nothing_running() {
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("7{}.{}", std::process::id() % 100, std::process::id());
    let trace = dir.path().join("stopped");
    // start leaves a "gateway" running in its process group; stop only leaves a trace, so what
    // ends the gateway is the runner's clean-up.
    let target = target_file(
        dir.path(),
        "interrupted",
        &format!(
            "[commands.start]\nrun = \"sleep {marker} >/dev/null 2>&1 & echo up\"\n\n[commands.stop]\nrun = \"echo stopped > {}\"\n",
            trace.display()
        ),
    );
    let (junit, html) = (out(&dir, "junit.xml"), out(&dir, "report.html"));
    let child = Command::new(env!("CARGO_BIN_EXE_pushbench"))
        .args([
            "run",
            "--target",
            target.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
            &format!("{FIXTURES}/hang"),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pushbench");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(pids_with(&marker).len(), 1, "start ran its gateway");
    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after SIGINT"
    );
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(stderr.contains("SIGINT received"), "{stderr}");
    let cases = testcases(&junit);
    assert!(
        case(&cases, "Passes while the other hangs").is_empty(),
        "finished: {cases:?}"
    );
    assert_eq!(case(&cases, "Hangs"), ["skipped"], "not run");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("interrupted by SIGINT"),
        "the HTML report says so"
    );
    assert_eq!(
        std::fs::read_to_string(&trace).unwrap_or_default().trim(),
        "stopped",
        "the target's stop command ran"
    );
    assert_eq!(
        survivors(&marker),
        Vec::<u32>::new(),
        "the gateway start left must be stopped"
    );
}

#[test]
fn a_gateway_that_stops_answering_mid_run_is_named_as_the_cause() {
    // Answers the pre-flight probes for 1.5 s, then its socket closes.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    std::thread::spawn(move || {
        let born = Instant::now();
        let mut buf = [0u8; 4096];
        while born.elapsed() < Duration::from_millis(1500) {
            if let Ok((_, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", from);
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let target = target_file(dir.path(), "quiet", "");
    let text = std::fs::read_to_string(&target)
        .unwrap()
        .replace(&fake_gateway().to_string(), &addr.to_string());
    std::fs::write(&target, text).unwrap();
    let r = pushbench(&[
        "run",
        "--concurrency",
        "1",
        "--target",
        target.to_str().unwrap(),
        &format!("{FIXTURES}/down"),
    ]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let s = &r.stdout;
    assert!(
        s.contains("Running when the gateway goes quiet [fail]"),
        "{s}"
    );
    assert!(
        s.contains("error: the gateway stopped answering at +"),
        "{s}"
    );
    assert!(
        s.contains("Would start after the gateway went quiet [inconclusive]"),
        "{s}"
    );
    assert!(s.contains("Would start later still [inconclusive]"), "{s}");
    assert!(
        s.contains("Gateway: stopped answering at +"),
        "the summary says so: {s}"
    );
    assert!(s.contains(&format!("sip.udp {addr}")), "{s}");
}

#[test]
fn scenarios_are_picked_by_name_requirement_prefix_and_file_line() {
    let pass = format!("{FIXTURES}/pass");
    let listed = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["list"];
        all.extend_from_slice(args);
        let r = pushbench(&all);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        r.stdout
            .lines()
            .filter(|l| l.contains("Runner demo, passing: "))
            .map(|l| l.split("Runner demo, passing: ").nth(1).unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        listed(&["--name", r"recorded \(1[08]0", &pass]),
        [
            "Several messages are recorded (100 Trying)",
            "Several messages are recorded (180 Ringing)"
        ]
    );
    assert_eq!(
        listed(&["--req", "DEMO-M", &pass]),
        [
            "Several messages are recorded (100 Trying)",
            "Several messages are recorded (180 Ringing)"
        ]
    );
    // A line inside a scenario picks it; an Examples row picks that row.
    assert_eq!(
        listed(&[&format!("{pass}/demo.feature:9")]),
        ["A message is recorded"]
    );
    assert_eq!(
        listed(&[&format!("{pass}/demo.feature:19")]),
        ["Several messages are recorded (180 Ringing)"]
    );
    let r = pushbench(&["list", "--name", "(unclosed", &pass]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--name"), "{}", r.stderr);
}

#[test]
fn fail_fast_starts_nothing_after_the_first_failure() {
    let dir = tempfile::tempdir().unwrap();
    let junit = out(&dir, "ff.xml");
    let r = pushbench(&[
        "run",
        "--fail-fast",
        "--concurrency",
        "1",
        "--junit",
        junit.to_str().unwrap(),
        &format!("{FIXTURES}/mixed"),
    ]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("Fails with the offending message [fail]"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("A step panics [not-run]"), "{}", r.stdout);
    assert!(r.stdout.contains(", 4 not run ("), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("] not run      Runner demo, every verdict: A step panics"),
        "{}",
        r.stdout
    );
    let cases = testcases(&junit);
    assert_eq!(case(&cases, "A step panics"), ["skipped"]);
}

#[test]
fn a_busy_apns_address_is_reported_once_at_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let target = target_file(dir.path(), "busy-apns", "");
    let text = std::fs::read_to_string(&target)
        .unwrap()
        .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{addr}\""));
    std::fs::write(&target, text).unwrap();
    let r = pushbench(&[
        "run",
        "--target",
        target.to_str().unwrap(),
        &format!("{FIXTURES}/pass"),
    ]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "one message: {}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "apns.listen {addr}: the mock APNs cannot listen there"
        )),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("[1/"), "no scenario ran: {}", r.stdout);
    drop(busy);
}
