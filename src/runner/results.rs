//! From what the collector saw to the run's report: each scenario's result (ran, skipped, not
//! applicable), the header, and the report files.

use super::*;
use crate::catalog::ScenarioInfo;
use crate::collector::Attempt;
use crate::expected::{Expectation, Outcome};
use crate::report::{self, RunHeader, RunReport, ScenarioResult, StepRun, StepStatus};
use crate::target::{Target, TargetKind};
use crate::verdict::Verdict;
use std::path::PathBuf;
use std::time::Duration;

/// The header every report shows.
pub(super) fn header(target: &Target, opts: &RunOptions) -> RunHeader {
    let t = &target.timers;
    let ms = |d: Duration| format!("{} ms", d.as_millis());
    let mut timers = vec![
        ("bucket".to_owned(), ms(t.bucket)),
        ("push_latency".to_owned(), ms(t.push_latency)),
        ("grace".to_owned(), ms(t.grace)),
    ];
    if !t.push_delay.is_zero() {
        timers.push(("push_delay".to_owned(), ms(t.push_delay)));
    }
    RunHeader {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        kind: match target.kind {
            TargetKind::EmbeddedReference => "embedded reference gateway".into(),
            TargetKind::External => "external gateway".into(),
        },
        description: target.description.clone(),
        cancel: target.profile.cancel.as_str().to_owned(),
        capabilities: target.profile.capabilities.clone(),
        timers,
        resolved: target
            .resolved
            .iter()
            .map(|r| format!("{} {} → {}", r.key, r.written, r.resolved))
            .collect(),
        features: describe_features(&opts.features),
        seed: opts.seed,
    }
}

pub(super) fn all_steps_not_run(info: &ScenarioInfo) -> Vec<StepRun> {
    info.steps
        .iter()
        .map(|(k, t)| StepRun {
            keyword: k.clone(),
            text: t.clone(),
            status: StepStatus::NotRun,
            error: None,
            duration: None,
        })
        .collect()
}

pub(super) fn not_applicable(
    info: &ScenarioInfo,
    why: &str,
    expectation: Option<Expectation>,
) -> ScenarioResult {
    ScenarioResult {
        info: info.clone(),
        verdict: Verdict::NotApplicable,
        outcome: Outcome::NotApplicable,
        reason: Some(why.to_owned()),
        failed_step: None,
        steps: all_steps_not_run(info),
        attempts: 0,
        duration: Duration::ZERO,
        events: Vec::new(),
        verdict_at: None,
        expectation,
    }
}

/// A scenario the run did not start (or stopped): not run, or inconclusive when the gateway
/// was down. What its timeline recorded is kept.
pub(super) fn skipped_result(
    info: &ScenarioInfo,
    not_run: bool,
    why: &str,
    timeline: Option<&timeline::Timeline>,
    expectation: Option<Expectation>,
) -> ScenarioResult {
    let (verdict, outcome) = if not_run {
        (Verdict::Inconclusive, Outcome::NotRun)
    } else {
        (Verdict::Inconclusive, Outcome::Inconclusive)
    };
    ScenarioResult {
        info: info.clone(),
        verdict,
        outcome,
        reason: Some(why.to_owned()),
        failed_step: None,
        steps: all_steps_not_run(info),
        attempts: 0,
        duration: Duration::ZERO,
        events: timeline.map(|t| t.events()).unwrap_or_default(),
        verdict_at: None,
        expectation,
    }
}

pub(super) fn ran(
    info: &ScenarioInfo,
    attempt: Option<&Attempt>,
    timeline: Option<&timeline::Timeline>,
    expectation: Option<Expectation>,
    deadline: Duration,
) -> ScenarioResult {
    let events = timeline.map(|t| t.events()).unwrap_or_default();
    let (verdict, reason, failed_step, steps, attempts, duration) = match attempt {
        None => (
            Verdict::Inconclusive,
            Some(format!(
                "not started before the run's deadline of {deadline:?}"
            )),
            None,
            all_steps_not_run(info),
            0,
            Duration::ZERO,
        ),
        Some(a) => {
            let (mut verdict, mut reason, mut step) = a.decide();
            if a.finished.is_none() {
                verdict = Verdict::Inconclusive;
                let running = a.running.as_ref().map(|(k, t, since)| {
                    format!(
                        "{k} {t} (running for {:.1} s)",
                        since.elapsed().as_secs_f64()
                    )
                });
                reason = Some(format!(
                    "still running at the run's deadline of {deadline:?}: {}",
                    running.as_deref().unwrap_or("between steps")
                ));
                step = running;
            }
            let mut steps = a.steps.clone();
            steps.extend(all_steps_not_run(info).into_iter().skip(a.steps.len()));
            (verdict, reason, step, steps, a.number, a.duration())
        }
    };
    let outcome = Expectation::gate(expectation.as_ref(), verdict, failed_step.as_deref());
    let reason = match (&expectation, outcome) {
        (Some(e), Outcome::Fail) => Some(format!(
            "expected to fail at the step {:?}, failed at another one: {}",
            e.step.as_deref().unwrap_or_default(),
            reason.unwrap_or_default()
        )),
        _ => reason,
    };
    let verdict_at = attempt
        .and_then(|a| a.steps_ended)
        .zip(timeline)
        .map(|(t, tl)| tl.offset_of(t));
    ScenarioResult {
        info: info.clone(),
        verdict,
        outcome,
        reason,
        failed_step,
        steps,
        attempts,
        duration,
        events,
        verdict_at,
        expectation,
    }
}

pub(super) fn write_reports(report: &RunReport, opts: &RunOptions) -> Result<(), RunError> {
    let write = |path: &Option<PathBuf>, text: String| -> Result<(), RunError> {
        let Some(p) = path else { return Ok(()) };
        let io = |source| RunError::Io {
            path: p.clone(),
            source,
        };
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(p, text).map_err(io)
    };
    write(&opts.junit, report::junit::render(report))?;
    write(
        &opts.json,
        serde_json::to_string_pretty(&report::json::render(report)).unwrap_or_default(),
    )?;
    write(&opts.html, report::html::render(report))?;
    Ok(())
}
