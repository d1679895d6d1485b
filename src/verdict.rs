//! Verdicts (TTCN-style: pass, inconclusive, fail, plus not-applicable) and the error a step returns.
//!
//! A scenario's verdict is the worst verdict any of its steps reached, with the precedence
//! `not-applicable < pass < inconclusive < fail` (a later pass never overwrites a fail, as in
//! TTCN-3's `setverdict`). Not-applicable is decided before a scenario runs, from its tags and the
//! target's profile, so in practice it only ever stands alone.
//!
//! A step's outcome is data all the way to the verdict: the step's body returns
//! `Result<(), StepError>` (pass, or [`StepError::Fail`] / [`StepError::Inconclusive`]) and hands it
//! to [`outcome`]. cucumber would turn a returned error into a panic carrying only its `Display`
//! text; [`outcome`] instead panics with the [`StepError`] itself as the payload
//! (`std::panic::panic_any`), which the collector downcasts ([`step_error`]). Any other panic (a
//! bug, an `assert!`) is a plain failure.

use bytes::Bytes;
use serde::Serialize;
use std::fmt;

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
            StepError::Inconclusive(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for StepError {}

/// Ends a step with its outcome: returns when it passed; when it did not, stops the scenario with
/// a panic whose payload is the [`StepError`] (cucumber catches it and hands it to the collector as
/// the step's failure, see [`step_error`]).
pub fn outcome(result: Result<(), StepError>) {
    if let Err(e) = result {
        std::panic::panic_any(e);
    }
}

/// The [`StepError`] a failed step's panic carries, when [`outcome`] raised it (`None` for any
/// other panic).
pub fn step_error(payload: &(dyn std::any::Any + Send)) -> Option<&StepError> {
    payload.downcast_ref::<StepError>()
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
    fn a_failed_step_panics_with_its_error_as_data() {
        outcome(Ok(()));
        for e in [
            StepError::inconclusive("mock APNs did not start"),
            StepError::fail("no push within 2 s"),
        ] {
            let payload = std::panic::catch_unwind(|| outcome(Err(e.clone()))).unwrap_err();
            assert_eq!(step_error(payload.as_ref()), Some(&e));
        }
        // A plain panic is not a step error, even when it mentions the word.
        let payload = std::panic::catch_unwind(|| panic!("inconclusive? no")).unwrap_err();
        assert_eq!(step_error(payload.as_ref()), None);
        assert_eq!(
            StepError::inconclusive("no token").to_string(),
            "no token",
            "the kind is data, not a prefix"
        );
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
