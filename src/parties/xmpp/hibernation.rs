//! Whether the XMPP server kept a dropped session for resumption (XEP-0198 hibernation): one more
//! line in its log that says so (`[xmpp] log_file` and `hibernation_log_line`), read from a mark
//! so a long-running server's log is not read whole every poll; without a log, a configured wait.

use crate::verdict::StepError;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the server may take to log the hibernation.
const HIBERNATION_DEADLINE: Duration = Duration::from_secs(5);

/// The server's log and what it says when it keeps a dropped session for resumption
/// (`[xmpp] log_file` and `hibernation_log_line`).
#[derive(Clone, Copy, Debug)]
pub struct HibernationLog<'a> {
    /// The log file.
    pub path: &'a Path,
    /// The substring of the line (Prosody: `Session going into hibernation`, ejabberd:
    /// `seconds for stream resumption`).
    pub line: &'a str,
}

/// Where the server's log ended when a step looked at it: `HibernationLog::more_than` reads
/// only what the server wrote after it, so a long-running server's log is not read again whole
/// every poll.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogMark(u64);

impl HibernationLog<'_> {
    /// The end of the log now (the start, without a readable log).
    pub fn mark(&self) -> LogMark {
        LogMark(std::fs::metadata(self.path).map(|m| m.len()).unwrap_or(0))
    }

    /// Whether the server logged the line after `mark`. The read starts `line.len() - 1` bytes
    /// before the mark, so a line the server was half-way through writing at the mark counts,
    /// and one it had finished does not. A log shorter than the mark (rotated) is read whole.
    pub(crate) fn logged_since(&self, mark: LogMark) -> bool {
        use std::io::{Read as _, Seek as _, SeekFrom};
        let Ok(mut f) = std::fs::File::open(self.path) else {
            return false;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let back = self.line.len().saturating_sub(1) as u64;
        let from = if len < mark.0 {
            0
        } else {
            mark.0.saturating_sub(back)
        };
        let mut tail = Vec::new();
        if f.seek(SeekFrom::Start(from)).is_err() || f.read_to_end(&mut tail).is_err() {
            return false;
        }
        let needle = self.line.as_bytes();
        !needle.is_empty() && tail.windows(needle.len()).any(|w| w == needle)
    }

    /// Waits until the server logs the line after `mark`, at most `within`.
    pub(crate) async fn more_than(&self, mark: LogMark, within: Duration) -> Result<(), StepError> {
        let deadline = Instant::now() + within;
        loop {
            if self.logged_since(mark) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StepError::inconclusive(format!(
                    "the server never logged {:?} in {} within {within:?}",
                    self.line,
                    self.path.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Confirms that the server hibernated a session that just dropped: a hibernation line in its
/// log after `mark` (within 5 s), or, without a log, `confirm` elapsed.
pub async fn confirm_hibernation(
    log: Option<HibernationLog<'_>>,
    mark: LogMark,
    confirm: Duration,
) -> Result<(), StepError> {
    let Some(log) = log else {
        tokio::time::sleep(confirm).await;
        return Ok(());
    };
    log.more_than(mark, HIBERNATION_DEADLINE).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Verdict;
    use std::io::Write as _;

    #[test]
    fn a_line_half_written_at_the_mark_counts_and_a_rotated_log_is_read_whole() {
        use std::io::Write as _;
        let line = crate::target::PROSODY_HIBERNATION_LINE;
        let (head, rest) = line.split_at(line.len() / 2);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(f, "c2s1 info {line}\nc2s2 info {head}").unwrap();
        f.flush().unwrap();
        let path = f.path().to_owned();
        let log = HibernationLog { path: &path, line };
        let mark = log.mark();
        assert!(
            !log.logged_since(mark),
            "the finished line is before the mark"
        );
        writeln!(f, "{rest}").unwrap();
        f.flush().unwrap();
        assert!(log.logged_since(mark), "the line finished after the mark");
        // Truncated and rewritten (log rotation): shorter than the mark, read from the start.
        std::fs::write(&path, format!("{line}\n")).unwrap();
        assert!(log.logged_since(mark));
        std::fs::write(&path, "nothing\n").unwrap();
        assert!(!log.logged_since(mark));
    }

    #[tokio::test]
    async fn hibernation_is_confirmed_by_one_more_log_line_or_is_inconclusive() {
        // Prosody's wording (the default) and ejabberd 23.01's (mod_stream_mgmt).
        let prosody = crate::target::PROSODY_HIBERNATION_LINE;
        let ejabberd = "seconds for stream resumption";
        for (line, old, new) in [
            (
                prosody,
                format!("c2s1 debug {prosody} (old)"),
                format!("c2s2 info {prosody} (new)"),
            ),
            (
                ejabberd,
                "[info] <0.61.0>@mod_stream_mgmt:transition_to_pending/2:459 (tls|<0.60.0>) \
                 Closing c2s connection for alice@localhost/a: Connection closed; \
                 waiting 60 seconds for stream resumption"
                    .to_owned(),
                "[info] <0.71.0>@mod_stream_mgmt:transition_to_pending/2:459 (tls|<0.70.0>) \
                 Closing c2s connection for alice@localhost/b: Connection reset by peer; \
                 waiting 60 seconds for stream resumption"
                    .to_owned(),
            ),
        ] {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            writeln!(f, "{old}").unwrap();
            // The other server's wording is not counted.
            writeln!(f, "{}", if line == prosody { ejabberd } else { prosody }).unwrap();
            let path = f.path().to_owned();
            let log = HibernationLog { path: &path, line };
            let before = log.mark();
            // The line logged before the mark is not counted.
            assert!(!log.logged_since(before), "{line}");
            assert!(log.logged_since(LogMark(0)), "{line}");
            let err = log
                .more_than(before, Duration::from_millis(120))
                .await
                .unwrap_err();
            assert_eq!(err.verdict(), Verdict::Inconclusive);
            assert!(err.to_string().contains(line), "{err}");
            let writer = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(60)).await;
                writeln!(f, "{new}").unwrap();
                f
            });
            confirm_hibernation(Some(log), before, Duration::from_secs(60))
                .await
                .unwrap();
            drop(writer.await.unwrap());
        }
        let missing = HibernationLog {
            path: Path::new("/nonexistent/prosody.log"),
            line: prosody,
        };
        assert_eq!(missing.mark(), LogMark(0));
        assert!(!missing.logged_since(LogMark(0)));
        // Without a log file the configured time is waited.
        let t0 = Instant::now();
        confirm_hibernation(None, LogMark(0), Duration::from_millis(30))
            .await
            .unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(30));
    }
}
