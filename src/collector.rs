//! The cucumber writer that collects what happened to each scenario's attempts, prints progress as
//! scenarios finish, and decides each attempt's verdict. The reports are built from it afterwards.
//!
//! Events of concurrent scenarios interleave; every event names its feature and scenario, so the
//! collector keys everything by [`ScenarioKey`] and needs no normalisation. A retried scenario
//! starts a fresh attempt; only the last attempt counts.

use crate::catalog::{ScenarioInfo, ScenarioKey};
use crate::report::{StepRun, StepStatus};
use crate::verdict::{step_error, Verdict};
use crate::world::BenchWorld;
use cucumber::{cli, event, gherkin, parser, Event, Writer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One attempt at running a scenario.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: usize,
    /// When it started.
    pub started: Instant,
    /// When it finished, if it did.
    pub finished: Option<Instant>,
    /// Steps that ran, in order.
    pub steps: Vec<StepRun>,
    /// The step running now: (keyword, text, since).
    pub running: Option<(String, String, Instant)>,
    /// When the last step ended: the verdict is known from then on, and what the timeline
    /// records after it is teardown.
    pub steps_ended: Option<Instant>,
    /// What went wrong: (verdict, reason, the step as `Keyword text`).
    pub problems: Vec<(Verdict, String, Option<String>)>,
    /// Verdicts the steps recorded with `BenchWorld::set_verdict`.
    pub recorded: Vec<(Verdict, String)>,
    /// True when cucumber counts the attempt as failed (it retries those while retries are left).
    pub cucumber_failed: bool,
    /// True when no further attempt follows.
    pub is_final: bool,
}

impl Attempt {
    fn new(number: usize) -> Attempt {
        Attempt {
            number,
            started: Instant::now(),
            finished: None,
            steps: Vec::new(),
            running: None,
            steps_ended: None,
            problems: Vec::new(),
            recorded: Vec::new(),
            cucumber_failed: false,
            is_final: false,
        }
    }

    /// The attempt's verdict, the reason and the deciding step: the worst of its problems and
    /// recorded verdicts; pass when there are none and at least one step ran.
    pub fn decide(&self) -> (Verdict, Option<String>, Option<String>) {
        let candidates = self
            .problems
            .iter()
            .cloned()
            .chain(self.recorded.iter().map(|(v, r)| (*v, r.clone(), None)));
        let mut worst: Option<(Verdict, String, Option<String>)> = None;
        for c in candidates {
            if worst.as_ref().is_none_or(|w| c.0 > w.0) {
                worst = Some(c);
            }
        }
        match worst {
            Some((Verdict::Pass, _, _)) | None if !self.steps.is_empty() => {
                (Verdict::Pass, None, None)
            }
            None => (
                Verdict::Inconclusive,
                Some("no step ran: the scenario checks nothing".into()),
                None,
            ),
            Some((v, r, s)) => (v, Some(r), s),
        }
    }

    /// Wall time of the attempt (so far).
    pub fn duration(&self) -> Duration {
        self.finished.unwrap_or_else(Instant::now) - self.started
    }
}

/// State shared by the writer, the hooks and the runner.
#[derive(Default)]
pub struct Collected {
    /// The latest attempt of every scenario that started.
    pub attempts: HashMap<ScenarioKey, Attempt>,
    /// Timelines of the latest attempts, registered by the before hook.
    pub timelines: HashMap<ScenarioKey, timeline::Timeline>,
    /// Verdicts the latest attempts recorded with `BenchWorld::set_verdict`, stored by the after
    /// hook (which runs before the writer sees the attempt finish).
    pub recorded: HashMap<ScenarioKey, Vec<(Verdict, String)>>,
    /// Scenarios finished for good.
    pub done: usize,
    /// Things to tell the operator.
    pub warnings: Vec<String>,
}

/// Shared handle.
pub type Shared = Arc<Mutex<Collected>>;

/// Locks the shared state (a poisoned lock still holds valid data: every update is one insert).
pub fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Collected> {
    timeline::lock(shared)
}

/// A scenario the runner's before hook did not run, and why: not run (`--fail-fast`), or
/// inconclusive (the gateway stopped answering).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    /// True for "not run", false for inconclusive.
    pub not_run: bool,
    /// Why.
    pub why: String,
}

/// The scenarios skipped so far, shared by the runner's hooks and the collector.
pub type Skips = Arc<Mutex<HashMap<ScenarioKey, Skip>>>;

/// Called when a scenario's final attempt finishes: (scenario, verdict, deciding step).
pub type OnFinal = Box<dyn FnMut(&ScenarioKey, Verdict, Option<&str>)>;

/// The writer.
pub struct Collector {
    shared: Shared,
    infos: Arc<HashMap<ScenarioKey, ScenarioInfo>>,
    total: usize,
    progress: bool,
    on_final: Option<OnFinal>,
    skips: Skips,
}

impl Collector {
    /// A collector for a run of `total` scenarios; prints a line per finished scenario when
    /// `progress` is on.
    pub fn new(
        shared: Shared,
        infos: Arc<HashMap<ScenarioKey, ScenarioInfo>>,
        total: usize,
        progress: bool,
    ) -> Collector {
        Collector {
            shared,
            infos,
            total,
            progress,
            on_final: None,
            skips: Skips::default(),
        }
    }

    /// Shows the scenarios in `skips` as skipped (not as failed before hooks) in the progress.
    pub fn with_skips(mut self, skips: Skips) -> Collector {
        self.skips = skips;
        self
    }

    /// Calls `f` when a scenario's final attempt finishes (`--fail-fast` decides from it).
    pub fn on_final(mut self, f: OnFinal) -> Collector {
        self.on_final = Some(f);
        self
    }

    fn scenario(
        &mut self,
        feature: &gherkin::Feature,
        scenario: &gherkin::Scenario,
        ev: event::RetryableScenario<BenchWorld>,
    ) {
        let key = ScenarioKey::of(feature, scenario);
        let number = ev.retries.map(|r| r.current + 1).unwrap_or(1);
        let mut c = lock(&self.shared);
        let recorded = match ev.event {
            event::Scenario::Finished => c.recorded.get(&key).cloned().unwrap_or_default(),
            _ => Vec::new(),
        };
        if let event::Scenario::Started = ev.event {
            c.attempts.insert(key, Attempt::new(number));
            return;
        }
        let Some(a) = c.attempts.get_mut(&key) else {
            c.warnings
                .push(format!("{key}: event for a scenario that never started"));
            return;
        };
        match ev.event {
            event::Scenario::Started | event::Scenario::Log(_) => {}
            event::Scenario::Hook(which, event::Hook::Failed(_, info)) => {
                a.cucumber_failed = true;
                let which = match which {
                    event::HookType::Before => "before",
                    event::HookType::After => "after",
                };
                a.problems.push((
                    Verdict::Inconclusive,
                    format!("{which} hook failed: {}", panic_text(&info)),
                    None,
                ));
            }
            event::Scenario::Hook(..) => {}
            event::Scenario::Background(step, ev) | event::Scenario::Step(step, ev) => {
                step_event(a, &step, ev)
            }
            event::Scenario::Finished => {
                a.finished = Some(Instant::now());
                a.running = None;
                a.recorded = recorded;
                let retry = a.cucumber_failed && ev.retries.is_some_and(|r| r.left > 0);
                a.is_final = !retry;
                let (verdict, reason, step) = a.decide();
                let took = a.duration();
                let is_final = a.is_final;
                if is_final {
                    c.done += 1;
                }
                let done = c.done;
                let skip = self
                    .skips
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&key)
                    .cloned();
                if self.progress && (is_final || skip.is_none()) {
                    let info = self.infos.get(&key);
                    let name = info
                        .map(|i| i.full_name())
                        .unwrap_or_else(|| key.to_string());
                    let reqs = info.map(|i| i.requirements.join(",")).unwrap_or_default();
                    let width = self.total.to_string().len();
                    let (status, reason) = match &skip {
                        Some(skip) => (
                            if skip.not_run {
                                "not run"
                            } else {
                                "inconclusive"
                            }
                            .to_owned(),
                            Some(skip.why.clone()),
                        ),
                        None if retry => {
                            (format!("{verdict} (attempt {number}, retrying)"), reason)
                        }
                        None => (verdict.to_string(), reason),
                    };
                    let mut line = format!(
                        "[{done:>width$}/{}] {status:<12} {name} [{reqs}] ({:.2} s)\n",
                        self.total,
                        took.as_secs_f64()
                    );
                    if verdict != Verdict::Pass {
                        if let Some(r) = reason {
                            line.push_str(&format!(
                                "{:>w$}{}\n",
                                "",
                                r.lines().next().unwrap_or(""),
                                w = 2 * width + 4
                            ));
                        }
                    }
                    crate::report::say(&line);
                }
                if is_final {
                    drop(c);
                    if let Some(f) = self.on_final.as_mut() {
                        f(&key, verdict, step.as_deref());
                    }
                }
            }
        }
    }
}

fn step_event(a: &mut Attempt, step: &gherkin::Step, ev: event::Step<BenchWorld>) {
    let keyword = step.keyword.trim().to_owned();
    let named = format!("{keyword} {}", step.value);
    let since = |a: &Attempt| {
        a.running
            .as_ref()
            .map(|(_, _, t)| t.elapsed())
            .unwrap_or_default()
    };
    let (status, error) = match ev {
        event::Step::Started => {
            a.running = Some((keyword, step.value.clone(), Instant::now()));
            return;
        }
        event::Step::Passed(..) => (StepStatus::Passed, None),
        event::Step::Skipped => {
            let msg = format!("no step definition matches {named:?}");
            a.problems
                .push((Verdict::Inconclusive, msg.clone(), Some(named.clone())));
            (StepStatus::Undefined, Some(msg))
        }
        event::Step::Failed(_, _, _, err) => {
            a.cucumber_failed = true;
            let (verdict, msg, status) = match err {
                event::StepError::NotFound => (
                    Verdict::Inconclusive,
                    format!("no step definition matches {named:?}"),
                    StepStatus::Undefined,
                ),
                event::StepError::AmbiguousMatch(e) => (
                    Verdict::Inconclusive,
                    format!("several step definitions match: {e}"),
                    StepStatus::Undefined,
                ),
                event::StepError::Panic(info) => {
                    let (v, msg) = match step_error(info.as_ref()) {
                        Some(e) => (e.verdict(), e.to_string()),
                        None => (Verdict::Fail, panic_text(&info)),
                    };
                    let status = if v == Verdict::Fail {
                        StepStatus::Failed
                    } else {
                        StepStatus::Inconclusive
                    };
                    (v, msg, status)
                }
            };
            a.problems.push((verdict, msg.clone(), Some(named.clone())));
            (status, Some(msg))
        }
    };
    let duration = Some(since(a));
    a.running = None;
    a.steps_ended = Some(Instant::now());
    a.steps.push(StepRun {
        keyword,
        text: step.value.clone(),
        status,
        error,
        duration,
    });
}

/// The text of a panic payload (a step's [`crate::StepError`], or what `panic!` displayed).
pub fn panic_text(info: &event::Info) -> String {
    if let Some(e) = step_error(info.as_ref()) {
        e.to_string()
    } else if let Some(s) = info.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = info.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "a step panicked with a value that is not text".into()
    }
}

impl Writer<BenchWorld> for Collector {
    type Cli = cli::Empty;

    async fn handle_event(
        &mut self,
        ev: parser::Result<Event<event::Cucumber<BenchWorld>>>,
        _cli: &Self::Cli,
    ) {
        match ev.map(Event::into_inner) {
            Err(e) => lock(&self.shared)
                .warnings
                .push(format!("parse error: {e}")),
            Ok(event::Cucumber::Feature(f, event::Feature::Scenario(s, ev))) => {
                self.scenario(&f, &s, ev)
            }
            Ok(event::Cucumber::Feature(
                f,
                event::Feature::Rule(_, event::Rule::Scenario(s, ev)),
            )) => self.scenario(&f, &s, ev),
            Ok(_) => {}
        }
    }
}

// The collector keys every event by scenario, so it does not need cucumber's normalised order.
impl cucumber::writer::Normalized for Collector {}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(
        problems: &[(Verdict, &str)],
        recorded: &[(Verdict, &str)],
        steps: usize,
    ) -> Attempt {
        let mut a = Attempt::new(1);
        a.problems = problems
            .iter()
            .map(|(v, r)| (*v, r.to_string(), Some(format!("Then {r}"))))
            .collect();
        a.recorded = recorded.iter().map(|(v, r)| (*v, r.to_string())).collect();
        a.steps = (0..steps)
            .map(|_| StepRun {
                keyword: "Then".into(),
                text: "x".into(),
                status: StepStatus::Passed,
                error: None,
                duration: None,
            })
            .collect();
        a
    }

    #[test]
    fn an_attempt_takes_its_worst_verdict_and_the_first_reason_for_it() {
        assert_eq!(attempt(&[], &[], 2).decide().0, Verdict::Pass);
        assert_eq!(
            attempt(&[], &[(Verdict::Pass, "ok")], 2).decide().0,
            Verdict::Pass
        );
        let (v, r, s) = attempt(
            &[(Verdict::Fail, "late push")],
            &[(Verdict::Inconclusive, "skew")],
            1,
        )
        .decide();
        assert_eq!(
            (v, r.as_deref(), s.as_deref()),
            (Verdict::Fail, Some("late push"), Some("Then late push"))
        );
        let (v, r, _) = attempt(
            &[(Verdict::Inconclusive, "no token")],
            &[(Verdict::Inconclusive, "later")],
            1,
        )
        .decide();
        assert_eq!((v, r.as_deref()), (Verdict::Inconclusive, Some("no token")));
        let (v, r, _) = attempt(&[], &[(Verdict::Fail, "soft")], 3).decide();
        assert_eq!((v, r.as_deref()), (Verdict::Fail, Some("soft")));
        assert_eq!(attempt(&[], &[], 0).decide().0, Verdict::Inconclusive);
    }

    #[test]
    fn panic_payloads_become_text() {
        let s: event::Info = Arc::new(String::from("boom"));
        assert_eq!(panic_text(&s), "boom");
        let s: event::Info = Arc::new("static");
        assert_eq!(panic_text(&s), "static");
        let s: event::Info = Arc::new(42u8);
        assert!(panic_text(&s).contains("not text"));
    }
}
