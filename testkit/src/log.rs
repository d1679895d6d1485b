//! Log capture: the end of a peer's log for a failure message, and waiting until a log says
//! something (how tests observe a real server's internal events).

use std::path::Path;
use std::time::{Duration, Instant};

/// The last `max` bytes of a file (from a character boundary), empty when it cannot be read.
pub fn tail_bytes(path: &Path, max: usize) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let start = text.len().saturating_sub(max);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// The last `n` lines of a file, under a header naming it.
pub fn tail_lines(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "{} (last {n} lines):\n{}",
        path.display(),
        lines[lines.len().saturating_sub(n)..].join("\n")
    )
}

/// Polls (every 50 ms) until the text `read` returns contains `needle`; false after `within`.
pub async fn wait_for_text(read: impl Fn() -> String, needle: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if read().contains(needle) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
