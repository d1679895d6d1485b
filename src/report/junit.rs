//! JUnit XML, written from the final verdicts: exactly one `<testcase>` per scenario, however
//! many attempts `@retry` made (cucumber's own JUnit writer emits one per attempt).
//!
//! Mapping: pass → plain testcase; fail → `<failure type="fail">`; xpass → `<failure
//! type="xpass">` (the baseline is stale); inconclusive → `<error type="inconclusive">` (the bench
//! could not judge: an error of the test, not a failure of the target, and it fails the run);
//! not-applicable → `<skipped message="not applicable: …">`; xfail → `<skipped message="expected
//! failure: …">` (the run passes). Each testcase carries its requirement ids and outcome as
//! properties and its ladder diagram in `<system-out>`. One `<testsuite>` per feature.

use super::{xml_escape, RunReport, ScenarioResult};
use crate::expected::Outcome;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The JUnit XML document.
pub fn render(report: &RunReport) -> String {
    let mut suites: BTreeMap<&str, Vec<&ScenarioResult>> = BTreeMap::new();
    for s in &report.scenarios {
        suites.entry(s.info.feature.as_str()).or_default().push(s);
    }
    let t = report.totals();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"pushbench: {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        xml_escape(&report.target),
        t.total(),
        t.fail + t.xpass,
        t.inconclusive,
        t.xfail + t.not_applicable + t.not_run,
        report.duration.as_secs_f64()
    );
    for (feature, scenarios) in suites {
        let count = |f: fn(Outcome) -> bool| scenarios.iter().filter(|s| f(s.outcome)).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            xml_escape(feature),
            scenarios.len(),
            count(|o| matches!(o, Outcome::Fail | Outcome::Xpass)),
            count(|o| o == Outcome::Inconclusive),
            count(|o| matches!(
                o,
                Outcome::Xfail | Outcome::NotApplicable | Outcome::NotRun
            )),
            scenarios.iter().map(|s| s.duration.as_secs_f64()).sum::<f64>()
        );
        if let Some(seed) = report.header.seed {
            let _ = writeln!(
                out,
                "    <properties>\n      <property name=\"seed\" value=\"{seed}\"/>\n    </properties>"
            );
        }
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &scenarios {
            *names.entry(s.info.name.as_str()).or_default() += 1;
        }
        for s in scenarios {
            let name = if names[s.info.name.as_str()] > 1 {
                format!("{} (line {})", s.info.name, s.info.key.line)
            } else {
                s.info.name.clone()
            };
            testcase(&mut out, s, &name);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn testcase(out: &mut String, s: &ScenarioResult, name: &str) {
    let _ = writeln!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\" time=\"{:.3}\">",
        xml_escape(name),
        xml_escape(&s.info.feature),
        xml_escape(&s.info.key.path.display().to_string()),
        s.info.key.line,
        s.duration.as_secs_f64()
    );
    out.push_str("      <properties>\n");
    for r in &s.info.requirements {
        let _ = writeln!(
            out,
            "        <property name=\"requirement\" value=\"{}\"/>",
            xml_escape(r)
        );
    }
    let _ = writeln!(
        out,
        "        <property name=\"outcome\" value=\"{}\"/>\n        <property name=\"attempts\" value=\"{}\"/>",
        s.outcome, s.attempts
    );
    out.push_str("      </properties>\n");
    let reason = s.reason.as_deref().unwrap_or("");
    let expected = s
        .expectation
        .as_ref()
        .map(|e| e.reason.as_str())
        .unwrap_or("");
    let body = || {
        let mut b = String::new();
        if let Some(step) = &s.failed_step {
            let _ = writeln!(b, "step: {step}");
        }
        let _ = writeln!(b, "{reason}");
        xml_escape(&b)
    };
    match s.outcome {
        Outcome::Pass => {}
        Outcome::Fail => {
            let _ = writeln!(
                out,
                "      <failure type=\"fail\" message=\"{}\">{}</failure>",
                xml_escape(first_line(reason)),
                body()
            );
        }
        Outcome::Xpass => {
            let _ = writeln!(
                out,
                "      <failure type=\"xpass\" message=\"passed, but expected to fail: {}\"/>",
                xml_escape(first_line(expected))
            );
        }
        Outcome::Inconclusive => {
            let _ = writeln!(
                out,
                "      <error type=\"inconclusive\" message=\"{}\">{}</error>",
                xml_escape(first_line(reason)),
                body()
            );
        }
        Outcome::NotApplicable => {
            let _ = writeln!(
                out,
                "      <skipped message=\"not applicable: {}\"/>",
                xml_escape(first_line(reason))
            );
        }
        Outcome::NotRun => {
            let _ = writeln!(
                out,
                "      <skipped message=\"{}\"/>",
                xml_escape(first_line(reason))
            );
        }
        Outcome::Xfail => {
            let _ = writeln!(
                out,
                "      <skipped message=\"expected failure: {}\"/>",
                xml_escape(first_line(expected))
            );
        }
    }
    if !s.events.is_empty() {
        let _ = writeln!(
            out,
            "      <system-out>{}</system-out>",
            xml_escape(&s.ladder())
        );
    }
    out.push_str("    </testcase>\n");
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{report, result};
    use crate::verdict::Verdict;
    use quick_xml::events::Event;

    /// Parses the document with a real XML parser and returns every testcase's name with the
    /// names of its child elements.
    fn parse(xml: &str) -> Vec<(String, Vec<String>)> {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut cases: Vec<(String, Vec<String>)> = Vec::new();
        let mut in_case = false;
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testcase" => {
                    let name = e
                        .try_get_attribute("name")
                        .unwrap()
                        .unwrap()
                        .unescape_value()
                        .unwrap()
                        .into_owned();
                    cases.push((name, vec![]));
                    in_case = true;
                }
                Event::Start(e) | Event::Empty(e) if in_case => {
                    let tag = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                    if ["failure", "error", "skipped", "system-out"].contains(&tag.as_str()) {
                        cases.last_mut().unwrap().1.push(tag);
                    }
                }
                Event::End(e) if e.name().as_ref() == b"testcase" => in_case = false,
                Event::Eof => break,
                _ => {}
            }
        }
        cases
    }

    #[test]
    fn one_testcase_per_scenario_with_the_right_element() {
        let mut retried = result("retried <twice>", &["R-1"], Verdict::Pass, false);
        retried.attempts = 3;
        let r = report(vec![
            retried,
            result("fails", &["R-2"], Verdict::Fail, false),
            result("xfails", &["R-2"], Verdict::Fail, true),
            result("xpasses", &["R-3"], Verdict::Pass, true),
            result("inconc", &["R-4"], Verdict::Inconclusive, false),
            result("n/a", &["R-5"], Verdict::NotApplicable, false),
        ]);
        let xml = render(&r);
        let cases = parse(&xml);
        let names: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "retried <twice>",
                "fails",
                "xfails",
                "xpasses",
                "inconc",
                "n/a"
            ],
            "{xml}"
        );
        let kinds: Vec<Vec<&str>> = cases
            .iter()
            .map(|c| {
                c.1.iter()
                    .map(String::as_str)
                    .filter(|t| *t != "system-out")
                    .collect()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                vec![],
                vec!["failure"],
                vec!["skipped"],
                vec!["failure"],
                vec!["error"],
                vec!["skipped"]
            ]
        );
        assert!(
            xml.contains("tests=\"6\" failures=\"2\" errors=\"1\" skipped=\"2\""),
            "{xml}"
        );
        // The offending byte in the ladder is escaped text, never a raw control character.
        assert!(xml.contains("<system-out>"), "{xml}");
    }

    #[test]
    fn duplicate_names_get_their_line() {
        let r = report(vec![result("same", &["R-1"], Verdict::Pass, false), {
            let mut s = result("same", &["R-1"], Verdict::Pass, false);
            s.info.key.line = 99;
            s
        }]);
        let cases = parse(&render(&r));
        assert_eq!(cases[0].0, "same (line 4)");
        assert_eq!(cases[1].0, "same (line 99)");
    }
}
