//! What keeps a run under control: the signals that interrupt it, the gate that stops scenarios
//! from starting (`--fail-fast`, a gateway that stopped answering), the probes before and during the
//! run, and the target's commands with the process groups they leave.

use super::*;
use crate::catalog::ScenarioKey;
use crate::collector;
use crate::expected::ExpectedFailures;
use crate::preflight::{Liveness, Probes};
use crate::report::{self, Interruption};
use crate::target::{CommandRun, ProcessGroups, Target};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// SIGINT and SIGTERM, as a future the run can wait on beside its work. The handlers are
/// installed when the run starts; a second signal while the run cleans up ends the process at
/// once with the same exit code.
pub(super) struct Interrupts {
    pub(super) int: tokio::signal::unix::Signal,
    pub(super) term: tokio::signal::unix::Signal,
}

impl Interrupts {
    pub(super) fn new() -> Result<Interrupts, RunError> {
        use tokio::signal::unix::{signal, SignalKind};
        let io = |source| RunError::Io {
            path: "signal handlers".into(),
            source,
        };
        Ok(Interrupts {
            int: signal(SignalKind::interrupt()).map_err(io)?,
            term: signal(SignalKind::terminate()).map_err(io)?,
        })
    }

    /// The next signal.
    pub(super) async fn recv(&mut self) -> Interruption {
        tokio::select! {
            _ = self.int.recv() => Interruption::Sigint,
            _ = self.term.recv() => Interruption::Sigterm,
        }
    }

    /// From now on a second signal exits the process at once.
    pub(super) fn second_one_exits(mut self, first: Interruption) {
        report::say_err(&format!(
            "\npushbench: {} received: stopping the scenarios, running the target's stop command and writing the reports (again to quit at once)\n",
            first.name()
        ));
        tokio::spawn(async move {
            let sig = self.recv().await;
            report::say_err(&format!("pushbench: {}: quitting\n", sig.name()));
            std::process::exit(i32::from(first.exit_code()));
        });
    }
}

/// What the hooks share to decide whether a scenario still starts: `--fail-fast` after a
/// failure, or a gateway that stopped answering.
#[derive(Clone, Default)]
pub(super) struct Gate {
    /// Why no further scenario starts, once that is so.
    pub(super) stop: Arc<std::sync::Mutex<Option<String>>>,
    /// Scenarios the before hook did not run, and why.
    pub(super) skipped: collector::Skips,
    /// Target commands running now (the background probe pauses meanwhile: before_scenario may
    /// restart the gateway).
    pub(super) commands_running: Arc<std::sync::atomic::AtomicUsize>,
    /// Target commands started so far.
    pub(super) commands_started: Arc<std::sync::atomic::AtomicUsize>,
}

impl Gate {
    pub(super) fn stop_reason(&self) -> Option<String> {
        self.stop.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn stop_starting(&self, why: String) {
        let mut s = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        if s.is_none() {
            *s = Some(why);
        }
    }

    pub(super) fn skip(&self, key: ScenarioKey, not_run: bool, why: String) {
        self.skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, collector::Skip { not_run, why });
    }
}

/// Creates each report's folder and checks the file can be written, before anything runs (a
/// file created only for the check is removed again).
pub(super) fn check_report_paths(opts: &RunOptions) -> Result<(), RunError> {
    for p in [&opts.junit, &opts.json, &opts.html].into_iter().flatten() {
        let err = |source| RunError::ReportPath {
            path: p.clone(),
            source,
        };
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let existed = p.exists();
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(p)
            .map_err(err)?;
        if !existed {
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(())
}

/// The mock APNs must be able to listen where the gateway sends its pushes: it is started now,
/// once, instead of failing in every scenario.
pub(super) async fn start_mock_apns(target: &Target) -> Result<(), RunError> {
    crate::parties::apns::shared_apns(target)
        .await
        .map(drop)
        .map_err(|e| RunError::ApnsListen {
            address: target.apns.listen.clone(),
            reason: e.to_string(),
        })
}

/// Probes until the gateway answers, for a few seconds at most (a `start` command may return a
/// moment before its gateway listens).
pub(super) async fn preflight(probes: &Probes) -> Result<(), RunError> {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let failures = probes.run().await;
        if failures.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(RunError::Unreachable(failures));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Probes the gateway every 2 s while the scenarios run, not while a target command runs
/// (`before_scenario` may restart it): a round that overlapped a command does not count. Once
/// the gateway is found down, no further scenario starts.
pub(super) async fn watch_gateway(probes: Probes, liveness: Liveness, gate: Gate) {
    use std::sync::atomic::Ordering::SeqCst;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let started = gate.commands_started.load(SeqCst);
        if gate.commands_running.load(SeqCst) > 0 {
            continue;
        }
        if let Err(d) = Liveness::probe(&probes, Duration::from_secs(4)).await {
            if gate.commands_started.load(SeqCst) != started
                || gate.commands_running.load(SeqCst) > 0
            {
                continue;
            }
            liveness.set_down(d);
            if let Some(d) = liveness.down() {
                gate.stop_starting(format!("the gateway stopped answering ({})", d.describe()));
            }
            return;
        }
    }
}

/// The `stop` command, the target's container, then whatever a command left running.
pub(super) async fn finish_commands(
    target: &Target,
    dir: &Path,
    groups: &ProcessGroups,
    commands: &mut Vec<CommandRun>,
    warnings: &mut Vec<String>,
    gateway: &mut Option<crate::container::Managed>,
) {
    stop(target, dir, groups, commands).await;
    if let Some(g) = gateway.take() {
        commands.push(g.stop().await);
    }
    warnings.extend(groups.stop_leftovers(Duration::from_secs(2)).await);
}

pub(super) async fn stop(
    target: &Target,
    dir: &Path,
    groups: &ProcessGroups,
    commands: &mut Vec<CommandRun>,
) {
    if let Some(c) = &target.commands.stop {
        match c.execute("stop", dir, groups).await {
            Ok(r) => commands.push(r),
            Err(e) => commands.push(CommandRun {
                which: "stop".into(),
                run: c.run.clone(),
                exit_code: None,
                timed_out: false,
                stdout: String::new(),
                stderr: format!("could not start: {e}"),
                took: Duration::ZERO,
            }),
        }
    }
}

/// Runs the target's `before_scenario` command; a failure is the scenario's precondition failing
/// (inconclusive). Not noted on the timeline, which holds the parties' events only.
pub(super) async fn run_before_scenario(
    c: &crate::target::Command,
    dir: &Path,
    groups: &ProcessGroups,
) -> Result<(), String> {
    let r = c
        .execute("before_scenario", dir, groups)
        .await
        .map_err(|e| format!("target command before_scenario ({}): {e}", c.run))?;
    if !r.succeeded() {
        return Err(format!(
            "target command before_scenario failed ({}): {}",
            r.run,
            command_failure(&r)
        ));
    }
    Ok(())
}

/// What the hooks need besides the target: whether scenarios may still start, the gateway's
/// liveness, the process groups, and (with `--fail-fast`) the baseline.
#[derive(Clone)]
pub(super) struct Control {
    pub(super) gate: Gate,
    pub(super) liveness: Liveness,
    pub(super) probes: Arc<Probes>,
    pub(super) groups: ProcessGroups,
    pub(super) expected: Option<Arc<ExpectedFailures>>,
}
