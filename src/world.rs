//! The World: one scenario's parties and its timeline, created fresh for every scenario (and every
//! retry of it).
//!
//! cucumber creates the World with `Default`; the runner's before hook then gives it the
//! [`ScenarioContext`] (the target, the scenario's identity and requirement ids, the faults of the
//! run). The World holds the two casts, typed: [`SipCast`] and [`XmppCast`], each set up on first
//! use ([`BenchWorld::sip`], [`BenchWorld::xmpp`]); the steps shared by both protocols reach the
//! scenario's cast through the [`Alice`] trait ([`BenchWorld::alice`]), and this is the one place
//! that decides which protocol a scenario speaks. Cleanups the parties register run in the
//! runner's after hook, with a deadline ([`BenchWorld::teardown`]).

use crate::parties::sip::SipCast;
use crate::parties::xmpp::XmppCast;
use crate::parties::Alice;
use crate::scenario::{ScenarioContext, Teardowns};
use crate::target::Target;
use crate::verdict::{StepError, Verdict};
use futures::future::BoxFuture;
use std::fmt;
use std::time::Duration;
use timeline::{Protocol, Recorder, Timeline};

/// One scenario's state.
#[derive(Default, cucumber::World)]
pub struct BenchWorld {
    /// Everything the parties sent and received, and notes.
    pub timeline: Timeline,
    context: Option<ScenarioContext>,
    sip: Option<SipCast>,
    xmpp: Option<XmppCast>,
    verdicts: Vec<(Verdict, String)>,
    teardowns: Teardowns,
}

impl fmt::Debug for BenchWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BenchWorld")
            .field("scenario", &self.context.as_ref().map(|c| c.name.as_str()))
            .field("sip", &self.sip.is_some())
            .field("xmpp", &self.xmpp.is_some())
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

    /// Runs after the context is set and before the first step (the runner's before hook). An
    /// error makes the scenario inconclusive.
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

    /// The scenario's SIP cast, set up on first use (every SIP step starts with this).
    pub async fn sip(&mut self) -> Result<&mut SipCast, StepError> {
        if self.sip.is_none() {
            let context = self.context()?.clone();
            let c = SipCast::set_up(&context, &self.timeline, &mut self.teardowns).await?;
            self.sip = Some(c);
        }
        self.sip
            .as_mut()
            .ok_or_else(|| StepError::inconclusive("the SIP cast is not set up"))
    }

    /// The scenario's XMPP cast, set up on first use (every XMPP step starts with this).
    pub async fn xmpp(&mut self) -> Result<&mut XmppCast, StepError> {
        if self.xmpp.is_none() {
            let context = self.context()?.clone();
            let c = XmppCast::set_up(&context, &self.timeline, &mut self.teardowns).await?;
            self.xmpp = Some(c);
        }
        self.xmpp
            .as_mut()
            .ok_or_else(|| StepError::inconclusive("the XMPP cast is not set up"))
    }

    /// True when this scenario speaks XMPP: its XMPP cast is set up, or the target has no SIP
    /// side.
    pub fn is_xmpp(&self) -> bool {
        self.xmpp.is_some()
            || self
                .target()
                .is_ok_and(|t| t.sip.is_none() && t.xmpp.is_some())
    }

    /// The scenario's cast, for the steps both protocols share: the XMPP cast in an XMPP
    /// scenario ([`BenchWorld::is_xmpp`]), else the SIP cast.
    pub async fn alice(&mut self) -> Result<&mut dyn Alice, StepError> {
        if self.is_xmpp() {
            Ok(self.xmpp().await?)
        } else {
            Ok(self.sip().await?)
        }
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
        self.teardowns.add(what, f);
    }

    /// Runs the registered cleanups (last first), each within `deadline`, then drops the parties
    /// (the XMPP cast first). Returns the names of cleanups that overran their deadline.
    pub async fn teardown(&mut self, deadline: Duration) -> Vec<String> {
        let overran = self.teardowns.run(deadline, &self.timeline).await;
        self.xmpp = None;
        self.sip = None;
        overran
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

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
        let overran = w.teardown(Duration::from_millis(50)).await;
        assert_eq!(overran, ["stuck"]);
        assert_eq!(*order.lock().unwrap(), ["second", "first"]);
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

    #[tokio::test]
    async fn a_world_without_context_cannot_set_up_a_cast() {
        let mut w = BenchWorld::default();
        assert_eq!(
            w.sip().await.err().map(|e| e.verdict()),
            Some(Verdict::Inconclusive)
        );
        assert!(!w.is_xmpp());
    }
}
