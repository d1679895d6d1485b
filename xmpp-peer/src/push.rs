//! XEP-0357 push: the client's enable/disable, and the server's pubsub publish to the app server
//! (builder and parser, so the app server and tests share one definition).
//!
//! The parser is strict where real bugs hid: the summary form must be inside `<notification>`
//! (prosody-modules 2021-01/02 put it beside it), and the publish must have exactly one item.

use crate::error::InvalidStanza;
use crate::forms::DataForm;
use crate::ns;
use crate::xml::Element;

/// FORM_TYPE of the summary.
pub const SUMMARY_FORM_TYPE: &str = "urn:xmpp:push:summary";

/// `<enable xmlns='urn:xmpp:push:0'>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enable {
    /// The app server's JID.
    pub jid: String,
    /// The node (device or registration id).
    pub node: String,
    /// The publish-options form (secret and app-server fields).
    pub publish_options: Option<DataForm>,
}

impl Enable {
    /// The IQ set (no `to`: addressed to the own account).
    pub fn to_iq(&self) -> Element {
        let mut en = Element::new("enable", ns::PUSH)
            .attr("jid", self.jid.clone())
            .attr("node", self.node.clone());
        if let Some(f) = &self.publish_options {
            en.push_child(f.to_element());
        }
        Element::new("iq", ns::CLIENT).attr("type", "set").child(en)
    }

    /// Parses the `<enable>` inside an IQ (or the element itself).
    pub fn parse(e: &Element) -> Result<Self, InvalidStanza> {
        let en = if e.is("enable", ns::PUSH) {
            e
        } else {
            e.get_child("enable", ns::PUSH)
                .ok_or_else(|| InvalidStanza::new("no push enable", e))?
        };
        Ok(Enable {
            jid: en
                .get_attr("jid")
                .ok_or_else(|| InvalidStanza::new("enable without jid", en))?
                .into(),
            node: en.get_attr("node").unwrap_or_default().into(),
            publish_options: en
                .get_child("x", ns::DATA)
                .map(DataForm::from_element)
                .transpose()?,
        })
    }
}

/// `<disable xmlns='urn:xmpp:push:0'>` (no node = every node of that JID).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disable {
    /// The app server's JID.
    pub jid: String,
    /// The node, if only one.
    pub node: Option<String>,
}

impl Disable {
    /// The IQ set.
    pub fn to_iq(&self) -> Element {
        Element::new("iq", ns::CLIENT).attr("type", "set").child(
            Element::new("disable", ns::PUSH)
                .attr("jid", self.jid.clone())
                .attr_opt("node", self.node.clone()),
        )
    }
}

/// The `urn:xmpp:push:summary` fields (all optional; empty fields read as `None`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// `message-count`.
    pub message_count: Option<String>,
    /// `pending-subscription-count`.
    pub pending_subscription_count: Option<String>,
    /// `last-message-sender`.
    pub last_message_sender: Option<String>,
    /// `last-message-body` (Prosody: the configured important text, or empty when unimportant).
    pub last_message_body: Option<String>,
}

impl Summary {
    /// The summary form (`type='form'` as Prosody sends it).
    pub fn to_form(&self) -> DataForm {
        let mut f = DataForm::new("form", SUMMARY_FORM_TYPE);
        for (var, v) in [
            ("message-count", &self.message_count),
            (
                "pending-subscription-count",
                &self.pending_subscription_count,
            ),
            ("last-message-sender", &self.last_message_sender),
            ("last-message-body", &self.last_message_body),
        ] {
            if let Some(v) = v {
                f = f.field(var, v);
            }
        }
        f
    }
}

/// `<notification xmlns='urn:xmpp:push:0'>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notification {
    /// The summary form, if the server sent one (ejabberd omits it for body-less stanzas).
    pub form: Option<DataForm>,
    /// Other children (Tigase `<jingle>`, encrypted payloads…).
    pub payloads: Vec<Element>,
}

impl Notification {
    /// The summary fields, if the form is a summary.
    pub fn summary(&self) -> Option<Summary> {
        let f = self.form.as_ref()?;
        if f.form_type() != Some(SUMMARY_FORM_TYPE) {
            return None;
        }
        let get = |v: &str| f.value(v).filter(|s| !s.is_empty()).map(str::to_string);
        Some(Summary {
            message_count: get("message-count"),
            pending_subscription_count: get("pending-subscription-count"),
            last_message_sender: get("last-message-sender"),
            last_message_body: get("last-message-body"),
        })
    }

    fn to_element(&self) -> Element {
        let mut n = Element::new("notification", ns::PUSH);
        if let Some(f) = &self.form {
            n.push_child(f.to_element());
        }
        for p in &self.payloads {
            n.push_child(p.clone());
        }
        n
    }
}

/// The server's publish to the app server: `<iq type='set'><pubsub><publish node><item><notification>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// The IQ id (to answer it).
    pub id: String,
    /// The publishing server (`from`).
    pub from: String,
    /// The app server (`to`).
    pub to: String,
    /// The node from the enable.
    pub node: String,
    /// The item id, if any.
    pub item_id: Option<String>,
    /// The notification.
    pub notification: Notification,
    /// The enable's form, echoed.
    pub publish_options: Option<DataForm>,
}

impl Publish {
    /// True when `e` looks like a push publish (to route it to [`Publish::parse`]).
    pub fn matches(e: &Element) -> bool {
        e.name() == "iq"
            && e.get_attr("type") == Some("set")
            && e.get_child("pubsub", ns::PUBSUB)
                .and_then(|p| p.get_child("publish", ns::PUBSUB))
                .is_some()
    }

    /// Parses a publish IQ.
    pub fn parse(iq: &Element) -> Result<Self, InvalidStanza> {
        let bad = |r: &str| InvalidStanza::new(r, iq);
        if iq.name() != "iq" || iq.get_attr("type") != Some("set") {
            return Err(bad("a push publish is an iq set"));
        }
        let pubsub = iq
            .get_child("pubsub", ns::PUBSUB)
            .ok_or_else(|| bad("no <pubsub>"))?;
        let publish = pubsub
            .get_child("publish", ns::PUBSUB)
            .ok_or_else(|| bad("no <publish>"))?;
        let node = publish
            .get_attr("node")
            .ok_or_else(|| bad("<publish> without node"))?;
        let items: Vec<&Element> = publish
            .children()
            .filter(|c| c.is("item", ns::PUBSUB))
            .collect();
        let [item] = items[..] else {
            return Err(bad("<publish> must hold exactly one <item>"));
        };
        let notif = item
            .get_child("notification", ns::PUSH)
            .ok_or_else(|| bad("<item> without <notification xmlns='urn:xmpp:push:0'>"))?;
        if item.get_child("x", ns::DATA).is_some() {
            return Err(bad(
                "summary form is a sibling of <notification> (prosody-modules 2021 nesting bug)",
            ));
        }
        let form = notif
            .get_child("x", ns::DATA)
            .map(DataForm::from_element)
            .transpose()?;
        let payloads = notif
            .children()
            .filter(|c| !c.is("x", ns::DATA))
            .cloned()
            .collect();
        let publish_options = pubsub
            .get_child("publish-options", ns::PUBSUB)
            .and_then(|po| po.get_child("x", ns::DATA))
            .map(DataForm::from_element)
            .transpose()?;
        Ok(Publish {
            id: iq
                .get_attr("id")
                .ok_or_else(|| bad("iq without id"))?
                .into(),
            from: iq.get_attr("from").unwrap_or_default().into(),
            to: iq.get_attr("to").unwrap_or_default().into(),
            node: node.into(),
            item_id: item.get_attr("id").map(str::to_string),
            notification: Notification { form, payloads },
            publish_options,
        })
    }

    /// Builds the publish IQ (in `stanza_ns`: `jabber:client` or `jabber:component:accept`).
    pub fn to_iq(&self, stanza_ns: &str) -> Element {
        let mut item = Element::new("item", ns::PUBSUB).child(self.notification.to_element());
        if let Some(id) = &self.item_id {
            item.set_attr("id", id.clone());
        }
        let mut pubsub = Element::new("pubsub", ns::PUBSUB).child(
            Element::new("publish", ns::PUBSUB)
                .attr("node", self.node.clone())
                .child(item),
        );
        if let Some(po) = &self.publish_options {
            pubsub.push_child(Element::new("publish-options", ns::PUBSUB).child(po.to_element()));
        }
        Element::new("iq", stanza_ns)
            .attr("type", "set")
            .attr("id", self.id.clone())
            .attr("from", self.from.clone())
            .attr("to", self.to.clone())
            .child(pubsub)
    }

    /// The success reply.
    pub fn result_iq(&self, stanza_ns: &str) -> Element {
        Element::new("iq", stanza_ns)
            .attr("type", "result")
            .attr("id", self.id.clone())
            .attr("from", self.to.clone())
            .attr("to", self.from.clone())
    }

    /// An error reply: `kind` is `cancel`/`wait`/`modify`/`auth`, `condition` an RFC 6120 one.
    pub fn error_iq(
        &self,
        stanza_ns: &str,
        kind: &str,
        condition: &str,
        text: Option<&str>,
    ) -> Element {
        let mut err = Element::new("error", stanza_ns)
            .attr("type", kind)
            .child(Element::new(condition, ns::STANZAS));
        if let Some(t) = text {
            err.push_child(Element::new("text", ns::STANZAS).text(t));
        }
        Element::new("iq", stanza_ns)
            .attr("type", "error")
            .attr("id", self.id.clone())
            .attr("from", self.to.clone())
            .attr("to", self.from.clone())
            .child(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_str;

    /// What Prosody 0.12.3 + mod_cloud_notify hg20230223 sent in our runs (captured bytes).
    const PROSODY_PUBLISH: &str = "<iq xmlns='jabber:component:accept' type='set' id='4b8f' from='localhost' to='push.localhost'>\
        <pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='DEVICE-1'><item>\
        <notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='form'>\
        <field type='hidden' var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>\
        <field type='text-single' var='message-count'><value>1</value></field>\
        <field type='text-single' var='pending-subscription-count'/>\
        <field type='jid-single' var='last-message-sender'/>\
        <field type='text-single' var='last-message-body'><value>New Message!</value></field></x>\
        </notification></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'>\
        <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
        <field var='secret'><value>s3cret</value></field></x></publish-options></pubsub></iq>";

    #[test]
    fn parses_a_prosody_publish() {
        let p = Publish::parse(&parse_str(PROSODY_PUBLISH).unwrap()).unwrap();
        assert_eq!(p.node, "DEVICE-1");
        let s = p.notification.summary().unwrap();
        assert_eq!(s.message_count.as_deref(), Some("1"));
        assert_eq!(s.last_message_body.as_deref(), Some("New Message!"));
        assert_eq!(s.last_message_sender, None);
        assert_eq!(p.publish_options.unwrap().value("secret"), Some("s3cret"));
    }

    #[test]
    fn round_trips_and_rejects_bad_nesting() {
        let p = Publish {
            id: "1".into(),
            from: "localhost".into(),
            to: "push.localhost".into(),
            node: "n".into(),
            item_id: None,
            notification: Notification {
                form: Some(
                    Summary {
                        message_count: Some("1".into()),
                        ..Default::default()
                    }
                    .to_form(),
                ),
                payloads: vec![],
            },
            publish_options: Some(DataForm::publish_options().field("secret", "x")),
        };
        assert_eq!(Publish::parse(&p.to_iq(ns::COMPONENT)).unwrap(), p);
        let sibling = "<iq xmlns='jabber:client' type='set' id='1'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <publish node='n'><item><notification xmlns='urn:xmpp:push:0'/><x xmlns='jabber:x:data' type='form'>\
            <field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field></x></item></publish></pubsub></iq>";
        let err = Publish::parse(&parse_str(sibling).unwrap()).unwrap_err();
        assert!(err.reason.contains("sibling"), "{err}");
        for bad in [
            "<iq xmlns='jabber:client' type='get' id='1'/>",
            "<iq xmlns='jabber:client' type='set' id='1'><pubsub xmlns='http://jabber.org/protocol/pubsub'/></iq>",
            "<iq xmlns='jabber:client' type='set' id='1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish/></pubsub></iq>",
            "<iq xmlns='jabber:client' type='set' id='1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'/></pubsub></iq>",
            "<iq xmlns='jabber:client' type='set' id='1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item/></publish></pubsub></iq>",
        ] {
            assert!(Publish::parse(&parse_str(bad).unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn enable_round_trip() {
        let en = Enable {
            jid: "push.localhost".into(),
            node: "tok".into(),
            publish_options: Some(DataForm::publish_options().field("secret", "s")),
        };
        assert_eq!(Enable::parse(&en.to_iq()).unwrap(), en);
        assert!(Enable::parse(&parse_str("<enable xmlns='urn:xmpp:push:0'/>").unwrap()).is_err());
    }
}
