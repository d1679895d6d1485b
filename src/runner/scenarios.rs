//! The scenarios on cucumber: the features the catalogue loaded, the hooks around each scenario
//! (context, `before_scenario`, the gate and the liveness probe, teardown), and the collector.

use super::*;
use crate::catalog::{ScenarioInfo, ScenarioKey};
use crate::collector::{self, Collector, Shared};
use crate::draws::{scenario_seed, Draws};
use crate::expected::Expectation;
use crate::scenario::ScenarioContext;
use crate::target::Target;
use crate::world::BenchWorld;
use cucumber::{cli, gherkin, World as _};
use futures::FutureExt as _;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A parser that hands cucumber the features the catalogue already loaded and trimmed.
pub(super) struct Preloaded(Vec<gherkin::Feature>);

impl cucumber::Parser<()> for Preloaded {
    type Cli = cli::Empty;
    type Output =
        futures::stream::Iter<std::vec::IntoIter<cucumber::parser::Result<gherkin::Feature>>>;

    fn parse(self, _input: (), _cli: cli::Empty) -> Self::Output {
        futures::stream::iter(self.0.into_iter().map(Ok).collect::<Vec<_>>())
    }
}

pub(super) async fn execute(
    features: Vec<gherkin::Feature>,
    target: &Arc<Target>,
    dir: &Path,
    infos: &Arc<HashMap<ScenarioKey, ScenarioInfo>>,
    shared: &Shared,
    opts: &RunOptions,
    control: Control,
) {
    let total = infos.len();
    let (before_target, before_infos, before_shared) =
        (target.clone(), infos.clone(), shared.clone());
    let faults = Arc::new(opts.faults.clone());
    let run_seed = RunSeed(opts.seed.unwrap_or_default());
    let after_shared = shared.clone();
    let teardown_timeout = opts.teardown_timeout;
    let before_scenario = target.commands.before_scenario.clone().map(Arc::new);
    let command_dir = Arc::new(dir.to_path_buf());
    let mut collector = Collector::new(shared.clone(), infos.clone(), total, opts.print)
        .with_skips(control.gate.skipped.clone());
    if let Some(expected) = control.expected.clone() {
        // --fail-fast: the first scenario whose outcome fails the run stops the others starting.
        let (gate, infos) = (control.gate.clone(), infos.clone());
        collector = collector.on_final(Box::new(move |key, verdict, step| {
            let Some(info) = infos.get(key) else { return };
            let outcome = Expectation::gate(expected.lookup(info), verdict, step);
            if outcome.fails_run() {
                gate.stop_starting(format!(
                    "--fail-fast: \"{}\" ({key}) ended {outcome}",
                    info.full_name()
                ));
            }
        }));
    }
    let hook_control = control.clone();
    let mut cucumber = BenchWorld::cucumber::<&Path>()
        .with_parser(Preloaded(features))
        .with_writer(collector)
        .before(move |feature, _rule, scenario, world| {
            let key = ScenarioKey::of(feature, scenario);
            let info = before_infos.get(&key);
            world.set_context(ScenarioContext {
                target: before_target.clone(),
                key: key.clone(),
                name: scenario.name.clone(),
                requirements: info.map(|i| i.requirements.clone()).unwrap_or_default(),
                faults: faults.clone(),
                draws: Draws::new(scenario_seed(run_seed, &key.seed_name(&scenario.name))),
            });
            collector::lock(&before_shared)
                .timelines
                .insert(key.clone(), world.timeline.clone());
            let (command, command_dir) = (before_scenario.clone(), command_dir.clone());
            let control = hook_control.clone();
            async move {
                use std::sync::atomic::Ordering::SeqCst;
                if let Some(why) = control.gate.stop_reason() {
                    let why = format!("not run: {why}");
                    control
                        .gate
                        .skip(key, control.liveness.down().is_none(), why.clone());
                    panic!("{why}");
                }
                if let Some(c) = command {
                    control.gate.commands_started.fetch_add(1, SeqCst);
                    control.gate.commands_running.fetch_add(1, SeqCst);
                    let r = run_before_scenario(&c, &command_dir, &control.groups).await;
                    control.gate.commands_running.fetch_sub(1, SeqCst);
                    if let Err(e) = r {
                        crate::verdict::outcome(Err(crate::verdict::StepError::inconclusive(e)));
                    }
                }
                if !control.probes.is_empty() {
                    let down = control
                        .liveness
                        .check(&control.probes, Duration::from_secs(5))
                        .await;
                    if let Some(d) = down {
                        let why =
                            format!("not run: the gateway stopped answering ({})", d.describe());
                        control.gate.stop_starting(why.clone());
                        control.gate.skip(key, false, why.clone());
                        panic!("{why}");
                    }
                }
                crate::verdict::outcome(world.prepare().await);
            }
            .boxed_local()
        })
        .after(move |feature, _rule, scenario, _finished, world| {
            let key = ScenarioKey::of(feature, scenario);
            let shared = after_shared.clone();
            async move {
                let Some(world) = world else { return };
                let overran = world.teardown(teardown_timeout).await;
                let mut c = collector::lock(&shared);
                for what in overran {
                    c.warnings.push(format!(
                        "{key}: teardown {what:?} overran {teardown_timeout:?}"
                    ));
                }
                c.recorded.insert(key, world.verdicts().to_vec());
            }
            .boxed_local()
        });
    // Scenarios of a target cleaned before each one share its accounts: one at a time.
    let concurrency = match target.commands.before_scenario {
        Some(_) => {
            if opts.concurrency.is_some_and(|n| n > 1) {
                eprintln!(
                    "pushbench: the target has a before_scenario command, so its scenarios share \
                     its accounts and run one at a time (--concurrency ignored)"
                );
            }
            Some(1)
        }
        None => opts.concurrency,
    };
    if let Some(n) = concurrency {
        cucumber = cucumber.max_concurrent_scenarios(n.max(1));
    }
    cucumber.with_default_cli().run(()).await;
}
