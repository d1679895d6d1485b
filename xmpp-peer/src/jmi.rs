//! XEP-0353 Jingle Message Initiation (`urn:xmpp:jingle-message:0`): propose, ringing, retract,
//! accept, proceed, reject and finish, with the XEP-0166 `<reason>`.

use crate::error::InvalidStanza;
use crate::ns;
use crate::xml::Element;

/// The JMI action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Caller → callee: a call is offered.
    Propose,
    /// Callee device → caller: it is ringing.
    Ringing,
    /// Caller: offer withdrawn before answer.
    Retract,
    /// Legacy (≤0.3): sent to one's own bare JID on accepting.
    Accept,
    /// Callee → caller: accepted on this device.
    Proceed,
    /// Callee → caller: declined.
    Reject,
    /// Either side: the call is over.
    Finish,
}

impl Kind {
    /// The element name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Propose => "propose",
            Kind::Ringing => "ringing",
            Kind::Retract => "retract",
            Kind::Accept => "accept",
            Kind::Proceed => "proceed",
            Kind::Reject => "reject",
            Kind::Finish => "finish",
        }
    }

    /// From an element name.
    pub fn from_name(n: &str) -> Option<Kind> {
        use Kind::*;
        [Propose, Ringing, Retract, Accept, Proceed, Reject, Finish]
            .into_iter()
            .find(|k| k.name() == n)
    }
}

/// A Jingle `<reason>`: a condition (`cancel`, `busy`, `success`, `decline`, `expired`…),
/// optional text, and extra elements such as `<tie-break/>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    /// The condition element's name.
    pub condition: String,
    /// `<text>`.
    pub text: Option<String>,
    /// Other children in the reason (e.g. `tie-break`).
    pub extra: Vec<Element>,
}

impl Reason {
    /// A reason with just a condition.
    pub fn new(condition: &str) -> Self {
        Reason {
            condition: condition.into(),
            text: None,
            extra: vec![],
        }
    }

    fn to_element(&self) -> Element {
        let mut r = Element::new("reason", ns::JINGLE)
            .child(Element::new(self.condition.clone(), ns::JINGLE));
        if let Some(t) = &self.text {
            r.push_child(Element::new("text", ns::JINGLE).text(t.clone()));
        }
        for e in &self.extra {
            r.push_child(e.clone());
        }
        r
    }

    fn parse(r: &Element) -> Result<Self, InvalidStanza> {
        let cond = r
            .children()
            .find(|c| c.ns() == ns::JINGLE && c.name() != "text")
            .ok_or_else(|| InvalidStanza::new("<reason> without a condition", r))?;
        Ok(Reason {
            condition: cond.name().into(),
            text: r.get_child("text", ns::JINGLE).map(|t| t.text_content()),
            extra: r
                .children()
                .filter(|c| c.ns() != ns::JINGLE)
                .cloned()
                .collect(),
        })
    }
}

/// One JMI element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jmi {
    /// The action.
    pub kind: Kind,
    /// The session id (shared by all messages of one call).
    pub id: String,
    /// `<description>`s of a propose.
    pub descriptions: Vec<Element>,
    /// `<reason>`, if any.
    pub reason: Option<Reason>,
}

impl Jmi {
    /// A JMI element of `kind` for session `id`.
    pub fn new(kind: Kind, id: &str) -> Self {
        Jmi {
            kind,
            id: id.into(),
            descriptions: vec![],
            reason: None,
        }
    }

    /// A propose with an RTP description of `media` (`audio` or `video`).
    pub fn propose(id: &str, media: &str) -> Self {
        Jmi {
            descriptions: vec![Element::new("description", ns::JINGLE_RTP).attr("media", media)],
            ..Self::new(Kind::Propose, id)
        }
    }

    /// Builder: sets the reason.
    pub fn with_reason(mut self, reason: Reason) -> Self {
        self.reason = Some(reason);
        self
    }

    /// The media of the first RTP description.
    pub fn media(&self) -> Option<&str> {
        self.descriptions.iter().find_map(|d| d.get_attr("media"))
    }

    /// The JMI element.
    pub fn to_element(&self) -> Element {
        let mut e = Element::new(self.kind.name(), ns::JMI).attr("id", self.id.clone());
        for d in &self.descriptions {
            e.push_child(d.clone());
        }
        if let Some(r) = &self.reason {
            e.push_child(r.to_element());
        }
        e
    }

    /// The `<message type='chat'>` carrying it, with a store hint, to `to`.
    pub fn to_message(&self, to: &str) -> Element {
        Element::new("message", ns::CLIENT)
            .attr("type", "chat")
            .attr("to", to)
            .attr("id", uuid::Uuid::new_v4().to_string())
            .child(self.to_element())
            .child(Element::new("store", ns::HINTS))
    }

    /// Parses a JMI element.
    pub fn parse(e: &Element) -> Result<Self, InvalidStanza> {
        if e.ns() != ns::JMI {
            return Err(InvalidStanza::new("not a JMI element", e));
        }
        let kind =
            Kind::from_name(e.name()).ok_or_else(|| InvalidStanza::new("unknown JMI action", e))?;
        let id = e
            .get_attr("id")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| InvalidStanza::new("JMI element without id", e))?;
        let reason = e
            .get_child("reason", ns::JINGLE)
            .map(Reason::parse)
            .transpose()?;
        let descriptions: Vec<Element> = e
            .children()
            .filter(|c| c.name() == "description")
            .cloned()
            .collect();
        if kind == Kind::Propose && descriptions.is_empty() {
            return Err(InvalidStanza::new("propose without <description>", e));
        }
        Ok(Jmi {
            kind,
            id: id.into(),
            descriptions,
            reason,
        })
    }

    /// The JMI in a message, if it carries one.
    pub fn from_message(m: &Element) -> Result<Option<Self>, InvalidStanza> {
        m.child_in_ns(ns::JMI).map(Jmi::parse).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_str;

    #[test]
    fn every_action_round_trips() {
        for k in [
            Kind::Ringing,
            Kind::Retract,
            Kind::Accept,
            Kind::Proceed,
            Kind::Reject,
            Kind::Finish,
        ] {
            let j = Jmi::new(k, "sid-1").with_reason(Reason {
                condition: "cancel".into(),
                text: Some("Retracted".into()),
                extra: vec![],
            });
            let m = j.to_message("bob@localhost");
            assert_eq!(Jmi::from_message(&m).unwrap(), Some(j));
            assert!(m.get_child("store", ns::HINTS).is_some());
        }
        let p = Jmi::propose("sid-2", "audio");
        assert_eq!(Jmi::parse(&p.to_element()).unwrap().media(), Some("audio"));
    }

    #[test]
    fn xep_examples_parse_and_bad_ones_do_not() {
        let r = parse_str(
            "<retract xmlns='urn:xmpp:jingle-message:0' id='a'><reason xmlns='urn:xmpp:jingle:1'>\
            <expired/><tie-break xmlns='urn:xmpp:jingle-message:0'/></reason></retract>",
        )
        .unwrap();
        let j = Jmi::parse(&r).unwrap();
        assert_eq!(j.reason.as_ref().unwrap().condition, "expired");
        assert_eq!(j.reason.unwrap().extra.len(), 1);
        for bad in [
            "<propose xmlns='urn:xmpp:jingle-message:0' id='a'/>",
            "<ringing xmlns='urn:xmpp:jingle-message:0'/>",
            "<dance xmlns='urn:xmpp:jingle-message:0' id='a'/>",
            "<reject xmlns='urn:xmpp:jingle-message:0' id='a'><reason xmlns='urn:xmpp:jingle:1'/></reject>",
            "<ringing xmlns='urn:xmpp:jingle-message:1' id='a'/>",
        ] {
            assert!(Jmi::parse(&parse_str(bad).unwrap()).is_err(), "{bad}");
        }
    }
}
