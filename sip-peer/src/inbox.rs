//! What one call has received, and the "await X within D" primitive over it.
//!
//! Every response or in-dialog request for a call lands in its inbox in arrival order. A step
//! takes the first not-yet-taken message that matches, so "await 180" then "await 200" work
//! even when both already arrived; on timeout the error lists everything received.

use crate::dispatch::Core;
use crate::error::SipError;
use crate::message::Message;
use crate::transaction::Event;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub(crate) struct Inbox {
    core: Arc<Core>,
    rx: mpsc::UnboundedReceiver<Event>,
    pub history: Vec<Message>,
    taken: Vec<bool>,
}

impl Inbox {
    pub(crate) fn new(core: Arc<Core>, rx: mpsc::UnboundedReceiver<Event>) -> Inbox {
        Inbox {
            core,
            rx,
            history: Vec::new(),
            taken: Vec::new(),
        }
    }

    /// Takes the first untaken message matching `pred`.
    pub(crate) fn take(&mut self, mut pred: impl FnMut(&Message) -> bool) -> Option<Message> {
        let i = (0..self.history.len()).find(|&i| !self.taken[i] && pred(&self.history[i]))?;
        self.taken[i] = true;
        Some(self.history[i].clone())
    }

    /// The first untaken message matching `pred`, left in place (a failed step does not eat
    /// what a later step may want, e.g. the 486 that made "await 180" fail).
    pub(crate) fn peek(&self, mut pred: impl FnMut(&Message) -> bool) -> Option<Message> {
        (0..self.history.len())
            .find(|&i| !self.taken[i] && pred(&self.history[i]))
            .map(|i| self.history[i].clone())
    }

    /// Marks message `i` as taken (handled internally, e.g. an answered challenge).
    pub(crate) fn mark_taken(&mut self, i: usize) {
        if let Some(t) = self.taken.get_mut(i) {
            *t = true;
        }
    }

    /// A counter to pass to [`Inbox::timeout_error`] later (malformed messages seen so far).
    pub(crate) fn malformed_mark(&self) -> u64 {
        self.core.net().malformed_mark()
    }

    /// The timeout error (or the malformed message that arrived meanwhile).
    pub(crate) fn timeout_error(&self, mark: u64, what: String, within: Duration) -> SipError {
        self.core
            .net()
            .timeout_error(mark, what, within, self.summaries())
    }

    /// Summaries of everything received.
    pub(crate) fn summaries(&self) -> Vec<String> {
        self.history.iter().map(Message::summary).collect()
    }

    /// Receives one more message (its index), `Ok(None)` at the deadline.
    pub(crate) async fn pull(&mut self, deadline: Instant) -> Result<Option<usize>, SipError> {
        match tokio::time::timeout_at(deadline, self.rx.recv()).await {
            Err(_) => Ok(None),
            Ok(None) => Err(SipError::State(
                "nothing more can arrive for this call (dialog ended or endpoint gone)".into(),
            )),
            Ok(Some(Event::Response(m))) | Ok(Some(Event::Request(m))) => {
                self.history.push(*m);
                self.taken.push(false);
                Ok(Some(self.history.len() - 1))
            }
            Ok(Some(Event::TxTimeout { request, timer })) => Err(SipError::TransactionTimeout {
                request,
                timer,
                received: self.summaries(),
            }),
            Ok(Some(Event::Transport(e))) => Err(SipError::Transport(e)),
        }
    }

    /// Waits for a message matching `matches`; fails at once on one matching `fails`.
    pub(crate) async fn wait(
        &mut self,
        what: &str,
        within: Duration,
        matches: impl Fn(&Message) -> bool,
        fails: impl Fn(&Message) -> bool,
    ) -> Result<Message, SipError> {
        let deadline = Instant::now() + within;
        let mark = self.malformed_mark();
        loop {
            if let Some(m) = self.take(&matches) {
                return Ok(m);
            }
            if let Some(m) = self.peek(&fails) {
                return Err(SipError::UnexpectedResponse {
                    status: m.status().unwrap_or(0),
                    waiting_for: what.to_owned(),
                    response: Box::new(m),
                });
            }
            if self.pull(deadline).await?.is_none() {
                return Err(self.timeout_error(mark, what.to_owned(), within));
            }
        }
    }
}

/// True for a response to `method` (by CSeq).
pub(crate) fn is_response_to(m: &Message, method: &str) -> bool {
    m.status().is_some() && m.cseq().is_ok_and(|c| c.method == method)
}
