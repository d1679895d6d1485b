//! The Gherkin step library: the sentences of `features/REQUIREMENTS.md` ("Step library"),
//! glued to the parties ([`crate::parties`]) through the World ([`crate::world`]).
//!
//! - [`registration`], [`calls`], [`answers`], [`apns`], [`iphone`]: the SIP steps, by area ([`iphone`] and
//!   the "no VoIP push" step of [`apns`] serve XMPP scenarios too, through [`crate::parties::Alice`]).
//! - [`xmpp`]: the XMPP steps.
//!
//! The step modules import from this module (the helpers below), the World and the parties,
//! never from each other.
//!
//! Every step's body returns `Result<(), StepError>` and hands it to [`outcome`]: a failure
//! reaches the collector as the [`StepError`] itself (a typed panic payload), not as text.
//! Then-steps await with the step's deadline and fail saying what was expected and what was
//! observed; a precondition the bench cannot establish is [`StepError::Inconclusive`].

pub mod answers;
pub mod apns;
pub mod calls;
pub mod iphone;
pub mod registration;
pub mod xmpp;

pub use crate::verdict::outcome;

use crate::verdict::StepError;
use mock_apns::PushRecord;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration as the features write it: `300 ms`, `2 s`. A step takes it as an argument
/// (`d: Dur`), parsed from the capture; in a Cucumber expression it is `{duration}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, cucumber::Parameter)]
#[param(name = "duration", regex = r"\d+ (?:ms|s)")]
pub struct Dur(pub Duration);

impl FromStr for Dur {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (num, unit) = s
            .split_once(' ')
            .ok_or_else(|| format!("{s:?} is not a duration like `300 ms` or `2 s`"))?;
        let n: u64 = num
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: {num:?} is not a whole number"))?;
        match unit.trim() {
            "ms" => Ok(Dur(Duration::from_millis(n))),
            "s" => Ok(Dur(Duration::from_secs(n))),
            other => Err(format!("{s:?}: unknown unit {other:?} (ms or s)")),
        }
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms % 1000 == 0 {
            write!(f, "{} s", ms / 1000)
        } else {
            write!(f, "{ms} ms")
        }
    }
}

/// Undoes the Gherkin string escapes a quoted step argument may carry (`\"`, `\\`).
pub fn unquote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Pushes as one line each, `; `-separated (`none` for none), for failure messages.
pub(crate) fn summaries(pushes: &[PushRecord]) -> String {
    if pushes.is_empty() {
        return "none".into();
    }
    pushes
        .iter()
        .map(PushRecord::summary)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Fails, naming every push, when a "no push" window caught any.
pub(crate) fn none_of(got: &[PushRecord], what: &str, d: Duration) -> Result<(), StepError> {
    match got.first() {
        None => Ok(()),
        Some(r) => Err(StepError::fail_with_message(
            format!(
                "expected no {what} within {d:?}; mock APNs got {}: {}",
                got.len(),
                summaries(got)
            ),
            r.payload.clone(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_the_features_write_them() {
        assert_eq!(
            "300 ms".parse::<Dur>().unwrap().0,
            Duration::from_millis(300)
        );
        assert_eq!("2 s".parse::<Dur>().unwrap().0, Duration::from_secs(2));
        assert!("2s".parse::<Dur>().is_err());
        assert!("two s".parse::<Dur>().is_err());
        assert!("2 min".parse::<Dur>().is_err());
        assert_eq!(Dur(Duration::from_millis(1500)).to_string(), "1500 ms");
        assert_eq!(Dur(Duration::from_secs(3)).to_string(), "3 s");
    }

    #[test]
    fn gherkin_escapes_are_undone() {
        assert_eq!(
            unquote(r#"SIP;cause=200;text=\"Call completed elsewhere\""#),
            r#"SIP;cause=200;text="Call completed elsewhere""#
        );
        assert_eq!(unquote(r"a\\b"), r"a\b");
    }
}
