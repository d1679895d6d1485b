//! Chat messages: body, XEP-0184 receipts, XEP-0085 chat states, and the parsed view of any
//! received `<message>` (JMI, delay and stanza-id included).

use crate::error::InvalidStanza;
use crate::jmi::Jmi;
use crate::ns;
use crate::xml::Element;

/// A `<message type='chat'>` with a body, an id and a receipt request.
pub fn chat(to: &str, body: &str) -> Element {
    Element::new("message", ns::CLIENT)
        .attr("type", "chat")
        .attr("to", to)
        .attr("id", uuid::Uuid::new_v4().to_string())
        .child(Element::new("body", ns::CLIENT).text(body))
        .child(Element::new("request", ns::RECEIPTS))
        .child(Element::new("active", ns::CHATSTATES))
}

/// The XEP-0184 receipt for message `id`.
pub fn receipt(to: &str, id: &str) -> Element {
    Element::new("message", ns::CLIENT)
        .attr("to", to)
        .attr("id", uuid::Uuid::new_v4().to_string())
        .child(Element::new("received", ns::RECEIPTS).attr("id", id))
}

/// A standalone chat state notification (`active`, `composing`, `paused`, `inactive`, `gone`).
pub fn chat_state(to: &str, state: &str) -> Element {
    Element::new("message", ns::CLIENT)
        .attr("type", "chat")
        .attr("to", to)
        .child(Element::new(state, ns::CHATSTATES))
}

/// What a received `<message>` carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// `id`.
    pub id: Option<String>,
    /// `from`.
    pub from: Option<String>,
    /// `to`.
    pub to: Option<String>,
    /// `type` (defaults to `normal`).
    pub kind: String,
    /// `<body>`.
    pub body: Option<String>,
    /// A receipt was requested.
    pub receipt_request: bool,
    /// This is a receipt for that id.
    pub receipt_for: Option<String>,
    /// The chat state element's name.
    pub chat_state: Option<String>,
    /// A JMI payload.
    pub jmi: Option<Jmi>,
    /// XEP-0203 delay stamp (offline delivery).
    pub delay: Option<String>,
    /// XEP-0359 stanza-id assigned by the archive (`by` ignored).
    pub stanza_id: Option<String>,
    /// XEP-0280: this is a carbon copy of a message another of our devices sent or received.
    pub carbon: Option<Carbon>,
}

/// A XEP-0280 carbon copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Carbon {
    /// `sent` (another of our devices sent it) or `received`.
    pub direction: CarbonDirection,
    /// The copied message.
    pub message: Box<Message>,
}

/// Which way the carbon-copied message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CarbonDirection {
    /// Sent by another of our resources.
    Sent,
    /// Received by another of our resources.
    Received,
}

/// `<iq type='set'><enable xmlns='urn:xmpp:carbons:2'/></iq>`.
pub fn enable_carbons() -> Element {
    Element::new("iq", ns::CLIENT)
        .attr("type", "set")
        .child(Element::new("enable", ns::CARBONS))
}

impl Message {
    /// Parses a message stanza.
    pub fn parse(e: &Element) -> Result<Self, InvalidStanza> {
        if e.name() != "message" {
            return Err(InvalidStanza::new("not a message", e));
        }
        let carbon = match e
            .children()
            .find(|c| c.ns() == ns::CARBONS && matches!(c.name(), "sent" | "received"))
        {
            Some(c) => {
                let inner = c
                    .get_child("forwarded", ns::FORWARD)
                    .and_then(|f| f.children().find(|m| m.name() == "message"))
                    .ok_or_else(|| InvalidStanza::new("carbon without a forwarded message", e))?;
                Some(Carbon {
                    direction: if c.name() == "sent" {
                        CarbonDirection::Sent
                    } else {
                        CarbonDirection::Received
                    },
                    message: Box::new(Message::parse(inner)?),
                })
            }
            None => None,
        };
        let receipt_for = match e.get_child("received", ns::RECEIPTS) {
            Some(r) => Some(
                r.get_attr("id")
                    .ok_or_else(|| InvalidStanza::new("receipt without id", e))?
                    .to_string(),
            ),
            None => None,
        };
        Ok(Message {
            id: e.get_attr("id").map(str::to_string),
            from: e.get_attr("from").map(str::to_string),
            to: e.get_attr("to").map(str::to_string),
            kind: e.get_attr("type").unwrap_or("normal").to_string(),
            body: e
                .children()
                .find(|c| c.name() == "body")
                .map(|b| b.text_content()),
            receipt_request: e.get_child("request", ns::RECEIPTS).is_some(),
            receipt_for,
            chat_state: e.child_in_ns(ns::CHATSTATES).map(|c| c.name().to_string()),
            jmi: Jmi::from_message(e)?,
            delay: e
                .get_child("delay", ns::DELAY)
                .and_then(|d| d.get_attr("stamp"))
                .map(str::to_string),
            stanza_id: e
                .get_child("stanza-id", ns::SID)
                .and_then(|d| d.get_attr("id"))
                .map(str::to_string),
            carbon,
        })
    }

    /// The sender's bare JID.
    pub fn from_bare(&self) -> Option<&str> {
        self.from
            .as_deref()
            .map(|f| f.split('/').next().unwrap_or(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_parses_back() {
        let m = Message::parse(&chat("bob@localhost", "hi")).unwrap();
        assert_eq!(m.body.as_deref(), Some("hi"));
        assert!(m.receipt_request);
        assert_eq!(m.chat_state.as_deref(), Some("active"));
        let r = Message::parse(&receipt("a@b", "x1")).unwrap();
        assert_eq!(r.receipt_for.as_deref(), Some("x1"));
        let bad = crate::xml::parse_str(
            "<message xmlns='jabber:client'><received xmlns='urn:xmpp:receipts'/></message>",
        )
        .unwrap();
        assert!(Message::parse(&bad).is_err());
    }
}
