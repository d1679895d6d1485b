//! Received stanzas waiting to be claimed, and deadline-bounded waits that list what did arrive.

use crate::error::Error;
use crate::summary::summarize;
use crate::xml::Element;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The shared mailbox between a connection task and the code awaiting stanzas.
#[derive(Clone, Default)]
pub struct Inbox {
    inner: Arc<InboxInner>,
}

#[derive(Default)]
struct InboxInner {
    state: Mutex<State>,
    notify: Notify,
}

#[derive(Default)]
struct State {
    pending: VecDeque<Element>,
    closed: Option<String>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("pending", &self.pending_summaries())
            .finish()
    }
}

impl Inbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        timeline::lock(&self.inner.state)
    }

    /// Adds a received stanza and wakes waiters.
    pub fn push(&self, e: Element) {
        self.lock().pending.push_back(e);
        self.inner.notify.notify_waiters();
    }

    /// Marks the connection as gone (waiters fail with `reason` once nothing matches).
    pub fn close(&self, reason: impl Into<String>) {
        self.lock().closed = Some(reason.into());
        self.inner.notify.notify_waiters();
    }

    /// Clears the closed mark (a new connection feeds this inbox).
    pub fn reopen(&self) {
        self.lock().closed = None;
    }

    /// Summaries of the unclaimed stanzas, oldest first.
    pub fn pending_summaries(&self) -> Vec<String> {
        self.lock().pending.iter().map(summarize).collect()
    }

    /// Takes every unclaimed stanza.
    pub fn drain(&self) -> Vec<Element> {
        self.lock().pending.drain(..).collect()
    }

    /// Waits until a stanza matching `pred` arrives (or is already waiting), removes and returns it.
    pub async fn wait_for(
        &self,
        deadline: Instant,
        waiting_for: &str,
        mut pred: impl FnMut(&Element) -> bool,
    ) -> Result<Element, Error> {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.lock();
                if let Some(i) = st.pending.iter().position(&mut pred) {
                    return Ok(st.pending.remove(i).expect("index from position"));
                }
                if let Some(reason) = &st.closed {
                    return Err(Error::Closed {
                        reason: reason.clone(),
                        waiting_for: waiting_for.to_string(),
                        arrived: st.pending.iter().map(summarize).collect(),
                    });
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::Timeout {
                    waiting_for: waiting_for.to_string(),
                    arrived: self.pending_summaries(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_str;
    use std::time::Duration;

    #[tokio::test]
    async fn wait_returns_match_and_timeout_lists_arrivals() {
        let inbox = Inbox::new();
        let i2 = inbox.clone();
        tokio::spawn(async move {
            i2.push(
                parse_str("<message xmlns='jabber:client' type='chat'><body>a</body></message>")
                    .unwrap(),
            );
            i2.push(parse_str("<presence xmlns='jabber:client'/>").unwrap());
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        let p = inbox
            .wait_for(deadline, "presence", |e| e.name() == "presence")
            .await
            .unwrap();
        assert_eq!(p.name(), "presence");
        let err = inbox
            .wait_for(Instant::now() + Duration::from_millis(50), "iq", |e| {
                e.name() == "iq"
            })
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("iq") && text.contains("body=\"a\""), "{text}");
        inbox.close("gone");
        let err = inbox
            .wait_for(deadline, "iq", |e| e.name() == "iq")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Closed { .. }), "{err}");
    }
}
