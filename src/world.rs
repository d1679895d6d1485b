//! The World: one scenario's parties and its timeline, created fresh for every scenario (and every
//! retry of it).
//!
//! cucumber creates the World with `Default`; the runner's before hook then gives it the
//! [`ScenarioContext`] (the target, the scenario's identity and requirement ids). The step library
//! keeps the parties it starts (mock APNs, SIP peers, the phone, the embedded gateway) in
//! [`Parties`], a registry by name, and registers async teardown with
//! [`BenchWorld::on_teardown`]; the runner's after hook runs the teardown with a deadline.

use crate::catalog::ScenarioKey;
use crate::target::Target;
use crate::verdict::{StepError, Verdict};
use futures::future::BoxFuture;
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use timeline::{Protocol, Recorder, Timeline};

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
}

/// The parties of one scenario, by name ("mock-apns", "bob", "alice-iphone").
#[derive(Default)]
pub struct Parties {
    by_name: BTreeMap<String, Box<dyn Any + Send + Sync>>,
}

impl fmt::Debug for Parties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl Parties {
    /// Adds (or replaces) a party.
    pub fn insert<T: Any + Send + Sync>(&mut self, name: impl Into<String>, party: T) {
        self.by_name.insert(name.into(), Box::new(party));
    }

    /// The party called `name`, of type `T`. A missing party means an earlier step did not set
    /// it up: the scenario is inconclusive.
    pub fn get<T: Any>(&self, name: &str) -> Result<&T, StepError> {
        self.by_name
            .get(name)
            .ok_or_else(|| missing(name))?
            .downcast_ref()
            .ok_or_else(|| wrong_type::<T>(name))
    }

    /// The party called `name`, mutably.
    pub fn get_mut<T: Any>(&mut self, name: &str) -> Result<&mut T, StepError> {
        self.by_name
            .get_mut(name)
            .ok_or_else(|| missing(name))?
            .downcast_mut()
            .ok_or_else(|| wrong_type::<T>(name))
    }

    /// Removes a party and returns it.
    pub fn remove<T: Any>(&mut self, name: &str) -> Result<T, StepError> {
        let boxed = self.by_name.remove(name).ok_or_else(|| missing(name))?;
        boxed
            .downcast()
            .map(|b| *b)
            .map_err(|_| wrong_type::<T>(name))
    }

    /// True when a party of that name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Drops every party (in reverse name order).
    pub fn clear(&mut self) {
        while self.by_name.pop_last().is_some() {}
    }
}

fn missing(name: &str) -> StepError {
    StepError::inconclusive(format!(
        "no party called {name:?} was set up in this scenario"
    ))
}

fn wrong_type<T>(name: &str) -> StepError {
    StepError::inconclusive(format!(
        "party {name:?} is not a {}",
        std::any::type_name::<T>()
    ))
}

/// An async cleanup registered by a step.
pub type Teardown = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// One scenario's state.
#[derive(Default, cucumber::World)]
pub struct BenchWorld {
    /// Everything the parties sent and received, and notes.
    pub timeline: Timeline,
    /// The parties.
    pub parties: Parties,
    context: Option<ScenarioContext>,
    verdicts: Vec<(Verdict, String)>,
    teardown: Vec<(String, Teardown)>,
}

impl fmt::Debug for BenchWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BenchWorld")
            .field("scenario", &self.context.as_ref().map(|c| c.name.as_str()))
            .field("parties", &self.parties)
            .field("timeline", &self.timeline)
            .field("verdicts", &self.verdicts)
            .finish()
    }
}

impl BenchWorld {
    /// Called by the runner's before hook.
    pub fn set_context(&mut self, context: ScenarioContext) {
        self.context = Some(context);
    }

    /// Runs after the context is set and before the first step (the runner's before hook).
    /// Integration hook: this is where the step library starts what every scenario needs (the
    /// embedded reference gateway when `target.kind` is `EmbeddedReference`). An error makes the
    /// scenario inconclusive.
    pub async fn prepare(&mut self) -> Result<(), StepError> {
        self.context()?;
        Ok(())
    }

    /// The scenario's context; inconclusive if the runner did not set it (a World used outside
    /// the runner).
    pub fn context(&self) -> Result<&ScenarioContext, StepError> {
        self.context.as_ref().ok_or_else(|| {
            StepError::inconclusive("the runner gave this World no scenario context")
        })
    }

    /// The target under test.
    pub fn target(&self) -> Result<&Target, StepError> {
        Ok(&self.context()?.target)
    }

    /// A recorder on this scenario's timeline.
    pub fn recorder(&self, party: &str, protocol: Protocol) -> Recorder {
        self.timeline.recorder(party, protocol)
    }

    /// Records a verdict without stopping the scenario (TTCN's `setverdict`): the scenario's
    /// verdict is the worst of these and of its steps. Also noted on the timeline.
    pub fn set_verdict(&mut self, verdict: Verdict, reason: impl Into<String>) {
        let reason = reason.into();
        self.timeline
            .note("bench", format!("verdict {verdict}: {reason}"));
        self.verdicts.push((verdict, reason));
    }

    /// The verdicts recorded with [`BenchWorld::set_verdict`].
    pub fn verdicts(&self) -> &[(Verdict, String)] {
        &self.verdicts
    }

    /// Registers a cleanup that runs after the scenario, in reverse order of registration.
    pub fn on_teardown<F>(&mut self, what: impl Into<String>, f: F)
    where
        F: FnOnce() -> BoxFuture<'static, ()> + Send + 'static,
    {
        self.teardown.push((what.into(), Box::new(f)));
    }

    /// Runs the registered cleanups (last first), each within `deadline`, then drops the parties.
    /// Returns the names of cleanups that overran their deadline.
    pub async fn teardown(&mut self, deadline: Duration) -> Vec<String> {
        let mut overran = Vec::new();
        while let Some((what, f)) = self.teardown.pop() {
            if tokio::time::timeout(deadline, f()).await.is_err() {
                self.timeline
                    .note("bench", format!("teardown {what:?} overran {deadline:?}"));
                overran.push(what);
            }
        }
        self.parties.clear();
        overran
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt as _;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn parties_by_name_and_type() {
        let mut p = Parties::default();
        p.insert("bob", 7u32);
        assert_eq!(*p.get::<u32>("bob").unwrap(), 7);
        *p.get_mut::<u32>("bob").unwrap() += 1;
        assert_eq!(
            p.get::<String>("bob").unwrap_err().verdict(),
            Verdict::Inconclusive
        );
        assert_eq!(
            p.get::<u32>("alice").unwrap_err().verdict(),
            Verdict::Inconclusive
        );
        assert_eq!(p.remove::<u32>("bob").unwrap(), 8);
        assert!(!p.contains("bob"));
    }

    #[tokio::test]
    async fn teardown_runs_last_first_with_a_deadline() {
        let mut w = BenchWorld::default();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        for name in ["first", "second"] {
            let (order, count) = (order.clone(), count.clone());
            w.on_teardown(name, move || {
                async move {
                    order.lock().unwrap().push(name);
                    count.fetch_add(1, Ordering::SeqCst);
                }
                .boxed()
            });
        }
        w.on_teardown("stuck", || futures::future::pending().boxed());
        w.parties.insert("x", 1u8);
        let overran = w.teardown(Duration::from_millis(50)).await;
        assert_eq!(overran, ["stuck"]);
        assert_eq!(*order.lock().unwrap(), ["second", "first"]);
        assert_eq!(w.parties.names().count(), 0);
        assert!(w.timeline.ladder().contains("teardown \"stuck\" overran"));
    }

    #[test]
    fn set_verdict_is_kept_and_noted() {
        let mut w = BenchWorld::default();
        assert!(w.target().is_err());
        w.set_verdict(Verdict::Inconclusive, "clock skew");
        assert_eq!(
            w.verdicts(),
            [(Verdict::Inconclusive, "clock skew".to_string())]
        );
        assert_eq!(w.timeline.len(), 1);
    }
}
