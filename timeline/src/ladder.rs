//! Text ladder diagrams: one column per party, one row per message, the summary on the right.
//!
//! ```text
//!   time     bob          gateway      alice-iphone
//!   +0.000s  |----------->|            |             INVITE sip:alice@example.com
//!   +0.004s  |<-----------|            |             100 Trying
//!   +0.950s  |            |            *             CallKit: incoming call reported
//! ```

use crate::event::{Direction, Event};

const COLUMN: usize = 16;

/// Renders events as a ladder diagram. Columns appear in the order parties are first seen.
pub fn render_ladder(events: &[Event]) -> String {
    let mut columns: Vec<&str> = Vec::new();
    for e in events {
        let (a, b) = e.endpoints();
        for name in [a, b] {
            if !name.is_empty() && !columns.contains(&name) {
                columns.push(name);
            }
        }
    }
    let width = columns.len() * COLUMN;
    let mut out = String::new();
    out.push_str("  time      ");
    for c in &columns {
        let name: String = c.chars().take(COLUMN - 1).collect();
        out.push_str(&format!("{name:<COLUMN$}"));
    }
    out.push('\n');
    for e in events {
        let mut row: Vec<char> = vec![' '; width];
        for i in 0..columns.len() {
            row[i * COLUMN] = '|';
        }
        let (a, b) = e.endpoints();
        let col = |n: &str| columns.iter().position(|c| *c == n).unwrap_or(0) * COLUMN;
        let (from, to) = (col(a), col(b));
        if e.direction == Direction::Note || from == to {
            row[from] = '*';
        } else {
            let (lo, hi) = (from.min(to), from.max(to));
            for cell in row.iter_mut().take(hi).skip(lo + 1) {
                *cell = '-';
            }
            if to > from {
                row[hi - 1] = '>';
            } else {
                row[lo + 1] = '<';
            }
        }
        let secs = e.at.as_secs_f64();
        let transport = if e.transport.is_empty() {
            String::new()
        } else {
            format!(" [{}]", e.transport)
        };
        out.push_str(&format!(
            "  +{secs:>7.3}s {} {}{}\n",
            row.into_iter().collect::<String>(),
            e.summary,
            transport
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::{Protocol, Timeline};
    use bytes::Bytes;

    #[test]
    fn arrows_point_from_sender_to_receiver() {
        let t = Timeline::new();
        let bob = t.recorder("bob", Protocol::Sip);
        let alice = t.recorder("alice", Protocol::Sip);
        bob.sent("gateway", "udp", "INVITE", Bytes::new());
        alice.received("gateway", "udp", "INVITE", Bytes::new());
        alice.note("CallKit rang");
        let ladder = t.ladder();
        let lines: Vec<&str> = ladder.lines().collect();
        assert!(
            lines[0].contains("bob") && lines[0].contains("gateway") && lines[0].contains("alice")
        );
        let arrow = format!("|{}>|", "-".repeat(super::COLUMN - 2));
        assert!(lines[1].contains(&arrow), "{ladder}");
        assert!(lines[2].contains(&arrow), "{ladder}");
        assert!(
            lines[2].find(&arrow).unwrap() > lines[1].find(&arrow).unwrap(),
            "{ladder}"
        );
        assert_eq!(lines[1].find('|'), lines[0].find("bob"), "{ladder}");
        assert!(
            lines[3].contains('*') && lines[3].ends_with("CallKit rang"),
            "{ladder}"
        );
    }
}
