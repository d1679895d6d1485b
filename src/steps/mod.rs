//! The Gherkin step library: the sentences of `features/REQUIREMENTS.md` ("Step library"),
//! glued to the real parties — mock-apns, sip-peer's caller and phone accounts, the simulated
//! iPhone (`phone`) and, for the embedded target, one `ref-gateway` per scenario.
//!
//! - [`cast`]: who is in a scenario (its own tokens, AORs, ports) and how the world is set up:
//!   the shared mock APNs, the embedded gateway, the target's addresses.
//! - [`device`]: one of Alice's devices (iPhone, iPad, desktop): its SIP account, its iOS model
//!   and driver, its APNs deliveries, and the log of what it sent and received.
//! - [`registration`], [`calls`], [`apns`], [`iphone`]: the steps, by area.
//! - [`xmpp_cast`] and [`xmpp`]: the XMPP scenarios' parties and steps.
//!
//! Then-steps await with the step's deadline and fail saying what was expected and what was
//! observed; a precondition the bench cannot establish is [`StepError::Inconclusive`].

pub mod apns;
pub mod calls;
pub mod cast;
pub mod device;
pub mod iphone;
pub mod registration;
pub mod xmpp;
pub mod xmpp_cast;

pub use cast::{configure_embedded, Cast, EmbeddedConfig};
pub use xmpp_cast::{configure_app_server, AppServerSetup};

use crate::verdict::StepError;
use mock_apns::PushRecord;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration as the features write it: `300 ms`, `2 s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
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

/// The regex of a duration inside a step pattern (no capture group of its own).
pub const DUR: &str = r"\d+ (?:ms|s)";

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

/// A step argument that must parse: a parse failure is a bench bug, so inconclusive.
pub(crate) fn parse_dur(s: &str) -> Result<Duration, StepError> {
    s.parse::<Dur>()
        .map(|d| d.0)
        .map_err(StepError::inconclusive)
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

/// A number unique to each scenario of this process (SIP and XMPP alike): it keeps the users,
/// tokens and ports of concurrent scenarios apart.
pub(crate) fn next_scenario_number() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A std mutex's guard, poisoned or not (a panicking step must not wedge the others).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The faults an environment variable names (comma-separated), each looked up by `from_name`;
/// none when it is not set. An unknown name is a misconfigured run: inconclusive.
pub(crate) fn faults_from_env<F>(
    var: &str,
    from_name: impl Fn(&str) -> Option<F>,
) -> Result<Vec<F>, StepError> {
    let Ok(list) = std::env::var(var) else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|name| {
            from_name(name).ok_or_else(|| {
                StepError::inconclusive(format!("{var} names an unknown fault {name:?}"))
            })
        })
        .collect()
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
