//! XEP-0198 stream management state on the client side: counters, the unacked queue, resumption.

use crate::ns;
use crate::xml::Element;
use std::collections::VecDeque;

/// What a client must keep to ack, and to resume after a reconnect.
#[derive(Debug, Clone, Default)]
pub struct SmState {
    /// The resumption id from `<enabled id>` (None if the server did not allow resumption).
    pub id: Option<String>,
    /// Stanzas received since `<enabled>` (our `h`), modulo 2^32.
    pub inbound: u32,
    /// Stanzas sent since `<enabled>`, modulo 2^32.
    pub outbound: u32,
    /// The last `h` the server acknowledged.
    pub acked: u32,
    /// Sent stanzas the server has not acknowledged yet, oldest first.
    pub unacked: VecDeque<Element>,
}

impl SmState {
    /// The state right after `<enabled>`.
    pub fn enabled(enabled: &Element) -> Self {
        let resume = matches!(enabled.get_attr("resume"), Some("true") | Some("1"));
        SmState {
            id: if resume {
                enabled.get_attr("id").map(str::to_string)
            } else {
                None
            },
            ..Default::default()
        }
    }

    /// Records a sent stanza.
    pub fn on_sent(&mut self, stanza: &Element) {
        self.outbound = self.outbound.wrapping_add(1);
        self.unacked.push_back(stanza.clone());
    }

    /// Records a received stanza.
    pub fn on_received(&mut self) {
        self.inbound = self.inbound.wrapping_add(1);
    }

    /// Applies an `h` from `<a>` or `<resumed>`; an `h` beyond what was sent is an error.
    pub fn on_ack(&mut self, h: u32) -> Result<(), String> {
        let newly = h.wrapping_sub(self.acked);
        if newly as usize > self.unacked.len() {
            return Err(format!(
                "server acked h={h} but only {} stanza(s) were outstanding after h={}",
                self.unacked.len(),
                self.acked
            ));
        }
        for _ in 0..newly {
            self.unacked.pop_front();
        }
        self.acked = h;
        Ok(())
    }

    /// `<a h='…'/>` for the current inbound count.
    pub fn ack_element(&self) -> Element {
        Element::new("a", ns::SM).attr("h", self.inbound.to_string())
    }
}

/// True for the stanzas XEP-0198 counts.
pub(crate) fn is_stanza(e: &Element) -> bool {
    (e.ns() == ns::CLIENT || e.ns() == ns::COMPONENT)
        && matches!(e.name(), "message" | "presence" | "iq")
}

/// Parses the `h` attribute.
pub(crate) fn parse_h(e: &Element) -> Result<u32, String> {
    e.get_attr("h")
        .ok_or_else(|| format!("no h in {e}"))?
        .parse::<u32>()
        .map_err(|_| format!("bad h in {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_drop_the_acked_and_reject_overacks() {
        let mut s = SmState::enabled(
            &Element::new("enabled", ns::SM)
                .attr("id", "x")
                .attr("resume", "true"),
        );
        assert_eq!(s.id.as_deref(), Some("x"));
        let m = Element::new("message", ns::CLIENT);
        s.on_sent(&m);
        s.on_sent(&m);
        s.on_ack(1).unwrap();
        assert_eq!(s.unacked.len(), 1);
        assert!(s.on_ack(5).is_err());
        s.on_ack(2).unwrap();
        assert!(s.unacked.is_empty());
        let mut w = SmState {
            acked: u32::MAX,
            ..Default::default()
        };
        w.on_sent(&m);
        w.on_ack(0).unwrap();
        assert!(w.unacked.is_empty());
        assert!(
            SmState::enabled(&Element::new("enabled", ns::SM).attr("id", "x"))
                .id
                .is_none()
        );
    }
}
