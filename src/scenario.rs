//! What a scenario is given before its first step, and what it leaves to be cleaned up after its
//! last: [`ScenarioContext`] (the target, the scenario's identity, the faults switched on in the
//! bench's own gateways) and [`Teardowns`].
//!
//! Both sit below the parties ([`crate::parties`]) and the World ([`crate::world`]): the runner
//! builds the context from its [`crate::runner::RunOptions`], the World hands it to the parties it
//! sets up, and nothing reaches a scenario by another way (no environment variable, no
//! thread-local).

use crate::catalog::ScenarioKey;
use crate::draws::Draws;
use crate::target::Target;
use futures::future::BoxFuture;
use ref_gateway::app_server::AppFaults;
use std::sync::Arc;
use std::time::Duration;
use timeline::Timeline;

/// Faults switched on in the bench's own gateways for a run: the embedded reference gateway (the
/// SIP fault matrix, `tests/fault_matrix.rs`) and the in-process XEP-0357 app server (the XMPP
/// fault matrix, `tests/xmpp_features.rs`). None by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayFaults {
    /// Faults of the embedded reference gateway (only with the embedded target).
    pub sip: ref_gateway::Faults,
    /// The embedded reference gateway's design (the bucket by default; the fault matrix also runs
    /// the tsilo-like one).
    pub design: ref_gateway::Design,
    /// Faults of the bench's app server (XMPP targets).
    pub app_server: AppFaults,
}

/// Who the scenario is and what it runs against.
#[derive(Clone, Debug)]
pub struct ScenarioContext {
    /// The gateway under test.
    pub target: Arc<Target>,
    /// The scenario's identity.
    pub key: ScenarioKey,
    /// The scenario's name.
    pub name: String,
    /// The requirement ids it checks.
    pub requirements: Vec<String>,
    /// The faults of the bench's own gateways in this run.
    pub faults: Arc<GatewayFaults>,
    /// The scenario's random draws, from the run's seed and the scenario's identity.
    pub draws: Draws,
}

/// An async cleanup a party registered.
pub type Teardown = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// The cleanups of one scenario, run last first after its last step.
#[derive(Default)]
pub struct Teardowns {
    list: Vec<(String, Teardown)>,
}

impl Teardowns {
    /// Registers a cleanup; `what` names it in the warning when it overruns its deadline.
    pub fn add<F>(&mut self, what: impl Into<String>, f: F)
    where
        F: FnOnce() -> BoxFuture<'static, ()> + Send + 'static,
    {
        self.list.push((what.into(), Box::new(f)));
    }

    /// Runs the cleanups (last first), each within `deadline`. Returns the names of those that
    /// overran it, each also noted on `timeline`.
    pub async fn run(&mut self, deadline: Duration, timeline: &Timeline) -> Vec<String> {
        let mut overran = Vec::new();
        while let Some((what, f)) = self.list.pop() {
            if tokio::time::timeout(deadline, f()).await.is_err() {
                timeline.note("bench", format!("teardown {what:?} overran {deadline:?}"));
                overran.push(what);
            }
        }
        overran
    }
}
