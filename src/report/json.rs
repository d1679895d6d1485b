//! Cucumber JSON (the cucumber-json-schema format that existing report tools read), written from
//! the final verdicts: one element per scenario. Step statuses are the format's own (`passed`,
//! `failed`, `skipped`, `undefined`); the bench's outcome, requirement ids and timeline travel in
//! extra fields (`pushbench_outcome`, `pushbench_requirements`, `pushbench_timeline`) that readers
//! of the format ignore. Every scenario also carries the run's seed (`pushbench_seed`).
//!
//! An expected failure (xfail) must not read as a plain red failure in a run that exits 0: its
//! failing step and every step after it are `skipped`, with the expectation and the step's error
//! in `error_message`. That is Cucumber's own convention for an outcome that neither passes nor
//! fails: its JUnit formatter maps SKIPPED to `<skipped>`, which passes even in strict mode
//! (cucumber/junit-xml-formatter, "Test outcome mapping"), as PENDING and UNDEFINED do not.
//! Not-applicable and not-run scenarios are all `skipped` too. In Jenkins' Cucumber Reports
//! plugin, mark "skipped" as a not-failing status to keep such runs green; GitLab reads the
//! JUnit report, where the same scenarios are `<skipped>`.

use super::{RunReport, StepStatus};
use crate::expected::Outcome;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The Cucumber JSON document.
pub fn render(report: &RunReport) -> Value {
    let mut features: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for s in &report.scenarios {
        let uri = s.info.key.path.display().to_string();
        let xfail = s.outcome == Outcome::Xfail;
        let steps: Vec<Value> = s
            .steps
            .iter()
            .map(|st| {
                let status = match st.status {
                    StepStatus::Passed => "passed",
                    StepStatus::Failed | StepStatus::Inconclusive if xfail => "skipped",
                    StepStatus::Failed | StepStatus::Inconclusive => "failed",
                    StepStatus::Undefined => "undefined",
                    StepStatus::NotRun => "skipped",
                };
                let mut result = json!({ "status": status });
                if let Some(d) = st.duration {
                    result["duration"] = json!(d.as_nanos() as u64);
                }
                if let Some(e) = &st.error {
                    result["error_message"] = if xfail {
                        let why = s.expectation.as_ref().map(|e| e.reason.as_str());
                        json!(format!(
                            "expected failure ({}): {e}",
                            why.unwrap_or("in the expected-failures file")
                        ))
                    } else {
                        json!(e)
                    };
                }
                json!({
                    "keyword": format!("{} ", st.keyword),
                    "name": st.text,
                    "result": result,
                })
            })
            .collect();
        let tags: Vec<Value> = s
            .info
            .tags
            .iter()
            .map(|t| json!({ "name": format!("@{t}") }))
            .collect();
        let element = json!({
            "id": format!("{};{}", slug(&s.info.feature), slug(&s.info.name)),
            "keyword": "Scenario",
            "type": "scenario",
            "name": s.info.name,
            "line": s.info.key.line,
            "description": "",
            "tags": tags,
            "steps": steps,
            "pushbench_outcome": s.outcome.as_str(),
            "pushbench_verdict": s.verdict.as_str(),
            "pushbench_reason": s.reason,
            "pushbench_requirements": s.info.requirements,
            "pushbench_attempts": s.attempts,
            "pushbench_timeline": s.events,
            "pushbench_seed": report.header.seed,
        });
        features
            .entry((uri, s.info.feature.clone()))
            .or_default()
            .push(element);
    }
    Value::Array(
        features
            .into_iter()
            .map(|((uri, name), elements)| {
                json!({
                    "uri": uri,
                    "id": slug(&name),
                    "keyword": "Feature",
                    "name": name,
                    "description": "",
                    "line": 1,
                    "elements": elements,
                })
            })
            .collect(),
    )
}

fn slug(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{report, result};
    use crate::verdict::Verdict;

    #[test]
    fn one_element_per_scenario_with_cucumber_statuses() {
        let r = report(vec![
            result("a", &["R-1"], Verdict::Pass, false),
            result("b", &["R-2"], Verdict::Fail, false),
        ]);
        let v = render(&r);
        let elements = v[0]["elements"].as_array().unwrap();
        assert_eq!(elements.len(), 2);
        assert_eq!(elements[0]["steps"][0]["result"]["status"], "passed");
        assert_eq!(elements[1]["steps"][0]["result"]["status"], "failed");
        assert_eq!(elements[1]["pushbench_outcome"], "fail");
        assert_eq!(elements[1]["tags"][0]["name"], "@req:R-2");
        assert_eq!(elements[0]["pushbench_timeline"][0]["party"], "bob");
        assert_eq!(elements[0]["pushbench_timeline"][0]["raw"], "INVITE \\xff");
    }

    #[test]
    fn an_expected_failure_is_skipped_not_failed() {
        let mut xfail = result("x", &["R-3"], Verdict::Fail, true);
        xfail.steps[0].error = Some("no push".into());
        let v = render(&report(vec![xfail]));
        let step = &v[0]["elements"][0]["steps"][0]["result"];
        assert_eq!(step["status"], "skipped");
        assert_eq!(
            step["error_message"],
            "expected failure (known bug): no push"
        );
        assert_eq!(v[0]["elements"][0]["pushbench_outcome"], "xfail");
    }
}
