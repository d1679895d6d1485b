//! Verdicts (TTCN-style: pass, inconclusive, fail, plus not-applicable) and the error a step returns.
//!
//! A scenario's verdict is the worst verdict any of its steps reached, with the precedence
//! `not-applicable < pass < inconclusive < fail` (a later pass never overwrites a fail, as in
//! TTCN-3's `setverdict`). Not-applicable is decided before a scenario runs, from its tags and the
//! target's profile, so in practice it only ever stands alone.
//!
//! Steps fail by returning `Err(StepError)`. cucumber turns a returned error into a panic carrying
//! its `Display` text, so the kind travels in that text: an inconclusive error is displayed with the
//! [`INCONCLUSIVE_MARK`] prefix, and [`classify_failure`] reads it back. Any other panic or error
//! text is a plain failure.

use bytes::Bytes;
use serde::Serialize;
use std::fmt;

/// The prefix that marks a step failure as inconclusive in its displayed text.
pub const INCONCLUSIVE_MARK: &str = "[inconclusive] ";

/// How a scenario (or one step of it) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The target's profile excludes the requirement; the scenario was not run.
    NotApplicable,
    /// Every step passed.
    Pass,
    /// The bench could not establish a precondition: no judgement on the target.
    Inconclusive,
    /// The target did not behave as the requirement says.
    Fail,
}

impl Verdict {
    /// The worse of two verdicts (the precedence in the module doc).
    pub fn worst(self, other: Verdict) -> Verdict {
        self.max(other)
    }

    /// The worst of many verdicts; `None` when there are none.
    pub fn worst_of(verdicts: impl IntoIterator<Item = Verdict>) -> Option<Verdict> {
        verdicts.into_iter().max()
    }

    /// `pass`, `fail`, `inconclusive`, `not-applicable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NotApplicable => "not-applicable",
            Verdict::Pass => "pass",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Fail => "fail",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error a step returns. cucumber displays it as the step's failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepError {
    /// The target misbehaved: the requirement is not met.
    Fail {
        /// What was expected and what happened.
        reason: String,
        /// The raw bytes of the offending message, when one message is to blame.
        offending: Option<Bytes>,
    },
    /// The bench could not establish the scenario's precondition (a party failed to start, the
    /// target refused a registration the scenario needs, …).
    Inconclusive(String),
}

impl StepError {
    /// A failure with a reason.
    pub fn fail(reason: impl Into<String>) -> Self {
        StepError::Fail {
            reason: reason.into(),
            offending: None,
        }
    }

    /// A failure blamed on one message, whose raw bytes are printed with the failure.
    pub fn fail_with_message(reason: impl Into<String>, raw: impl Into<Bytes>) -> Self {
        StepError::Fail {
            reason: reason.into(),
            offending: Some(raw.into()),
        }
    }

    /// An inconclusive outcome with a reason.
    pub fn inconclusive(reason: impl Into<String>) -> Self {
        StepError::Inconclusive(reason.into())
    }

    /// The verdict this error gives its step.
    pub fn verdict(&self) -> Verdict {
        match self {
            StepError::Fail { .. } => Verdict::Fail,
            StepError::Inconclusive(_) => Verdict::Inconclusive,
        }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Fail { reason, offending } => {
                f.write_str(reason)?;
                if let Some(raw) = offending {
                    write!(
                        f,
                        "\noffending message ({} bytes):\n{}",
                        raw.len(),
                        timeline::escape_bytes(raw)
                    )?;
                }
                Ok(())
            }
            StepError::Inconclusive(reason) => write!(f, "{INCONCLUSIVE_MARK}{reason}"),
        }
    }
}

impl std::error::Error for StepError {}

/// Reads back the verdict and the message from the text of a failed step (a panic message or a
/// displayed error): [`INCONCLUSIVE_MARK`] first means inconclusive, anything else is a failure.
pub fn classify_failure(text: &str) -> (Verdict, String) {
    match text.strip_prefix(INCONCLUSIVE_MARK) {
        Some(reason) => (Verdict::Inconclusive, reason.to_owned()),
        None => (Verdict::Fail, text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_only_goes_up() {
        use Verdict::*;
        assert_eq!(Pass.worst(Fail), Fail);
        assert_eq!(Fail.worst(Pass), Fail);
        assert_eq!(Pass.worst(Inconclusive), Inconclusive);
        assert_eq!(Inconclusive.worst(Fail), Fail);
        assert_eq!(Fail.worst(Inconclusive), Fail);
        assert_eq!(NotApplicable.worst(Pass), Pass);
        assert_eq!(
            Verdict::worst_of([Pass, Pass, Inconclusive, Pass]),
            Some(Inconclusive)
        );
        assert_eq!(Verdict::worst_of([Pass, Fail, Inconclusive]), Some(Fail));
        assert_eq!(Verdict::worst_of([]), None);
    }

    #[test]
    fn inconclusive_survives_the_trip_through_display() {
        let e = StepError::inconclusive("mock APNs did not start");
        let (v, msg) = classify_failure(&e.to_string());
        assert_eq!(v, Verdict::Inconclusive);
        assert_eq!(msg, "mock APNs did not start");
        let (v, msg) = classify_failure(&StepError::fail("no push within 2 s").to_string());
        assert_eq!(v, Verdict::Fail);
        assert_eq!(msg, "no push within 2 s");
        // A plain panic is a failure, even when it mentions the word.
        assert_eq!(classify_failure("inconclusive? no").0, Verdict::Fail);
    }

    #[test]
    fn offending_bytes_are_printed_escaped() {
        let e = StepError::fail_with_message("bad priority", &b"apns-priority: 5\r\n\xff"[..]);
        let text = e.to_string();
        assert!(
            text.starts_with("bad priority\noffending message (19 bytes):\n"),
            "{text}"
        );
        assert!(text.ends_with("apns-priority: 5\r\n\\xff"), "{text}");
        assert_eq!(e.verdict(), Verdict::Fail);
    }
}
