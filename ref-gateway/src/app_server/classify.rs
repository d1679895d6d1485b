//! What a publish is about: a call, the end of a call, a message, or unimportant traffic.
//!
//! Vanilla XEP-0357 cannot tell a call from a message (Prosody's mod_cloud_notify sends both with
//! the same dummy `last-message-body`). A call is recognised by one of the extensions that carry
//! it inside `<notification>`:
//! - Tigase's `<jingle xmlns='tigase:push:jingle:0' action='propose|retract|…' sid='…'>`
//!   (`<media>` children), which our Prosody target adds with `mod_cloud_notify_jmi`;
//! - Push 2.0's `<voip xmlns='urn:xmpp:push2:0'/>` (mod_push2 adds it for a JMI propose; it has
//!   no call id, so the publish item id, or else the IQ id, stands in for one).

use xmpp_peer::push::Publish;
use xmpp_peer::xml::Element;

/// Tigase's JMI-in-push namespace.
pub const NS_TIGASE_JINGLE: &str = "tigase:push:jingle:0";
/// Push 2.0.
pub const NS_PUSH2: &str = "urn:xmpp:push2:0";

/// How a call ended, as the JMI action says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallEnd {
    /// `retract`: the caller hung up before an answer.
    Retracted,
    /// `proceed` / `accept`: another device of the callee answered.
    AnsweredElsewhere,
    /// `reject`: another device of the callee declined.
    RejectedElsewhere,
    /// `finish`: the call is over.
    Finished,
}

/// The meaning of one publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishKind {
    /// An incoming call (JMI propose).
    Call {
        /// The JMI session id (the call id of the push payload).
        id: String,
        /// The caller, when the server says (`last-message-sender` or the jingle `from`).
        caller: Option<String>,
    },
    /// A call that ended before this device answered.
    CallEnded {
        /// The JMI session id.
        id: String,
        /// How.
        how: CallEnd,
    },
    /// Something important without a call: a message (body as the server sent it).
    Message {
        /// `last-message-body` (a dummy like "New Message!" unless the server sends real bodies).
        body: String,
        /// `last-message-sender`, if sent.
        sender: Option<String>,
    },
    /// Unimportant traffic (empty body, no call): chat states, receipts, JMI ringing.
    Unimportant,
}

/// Why a publish's call marker cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unreadable call marker in the publish: {0}")]
pub struct BadMarker(pub String);

/// Reads a publish.
pub fn classify(p: &Publish) -> Result<PublishKind, BadMarker> {
    let summary = p.notification.summary().unwrap_or_default();
    let sender = summary.last_message_sender.clone();
    if let Some(j) = p
        .notification
        .payloads
        .iter()
        .find(|e| e.is("jingle", NS_TIGASE_JINGLE))
    {
        return jingle(j, sender);
    }
    if p.notification
        .payloads
        .iter()
        .any(|e| e.is("voip", NS_PUSH2))
    {
        let id = p.item_id.clone().unwrap_or_else(|| p.id.clone());
        return Ok(PublishKind::Call { id, caller: sender });
    }
    match summary.last_message_body {
        Some(body) => Ok(PublishKind::Message { body, sender }),
        None => Ok(PublishKind::Unimportant),
    }
}

fn jingle(j: &Element, sender: Option<String>) -> Result<PublishKind, BadMarker> {
    let bad = |why: &str| BadMarker(format!("{why}: {}", j.to_xml()));
    let id = j
        .get_attr("sid")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("<jingle> without sid"))?
        .to_string();
    let action = j
        .get_attr("action")
        .ok_or_else(|| bad("<jingle> without action"))?;
    let caller = j.get_attr("from").map(str::to_string).or(sender);
    Ok(match action {
        "propose" => PublishKind::Call { id, caller },
        "retract" => PublishKind::CallEnded {
            id,
            how: CallEnd::Retracted,
        },
        "proceed" | "accept" => PublishKind::CallEnded {
            id,
            how: CallEnd::AnsweredElsewhere,
        },
        "reject" => PublishKind::CallEnded {
            id,
            how: CallEnd::RejectedElsewhere,
        },
        "finish" => PublishKind::CallEnded {
            id,
            how: CallEnd::Finished,
        },
        "ringing" => PublishKind::Unimportant,
        other => return Err(bad(&format!("unknown jingle action {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_peer::push::{Notification, Summary};

    fn publish(body: Option<&str>, payloads: Vec<Element>) -> Publish {
        Publish {
            id: "iq1".into(),
            from: "localhost".into(),
            to: "push.localhost".into(),
            node: "n".into(),
            item_id: None,
            notification: Notification {
                form: Some(
                    Summary {
                        message_count: Some("1".into()),
                        last_message_body: body.map(str::to_string),
                        ..Summary::default()
                    }
                    .to_form(),
                ),
                payloads,
            },
            publish_options: None,
        }
    }

    fn jingle(action: &str, sid: &str) -> Element {
        Element::new("jingle", NS_TIGASE_JINGLE)
            .attr("action", action)
            .attr("sid", sid)
            .attr("from", "bob@localhost/pc")
    }

    #[test]
    fn reads_calls_ends_messages_and_unimportant() {
        assert_eq!(
            classify(&publish(
                Some("New Message!"),
                vec![jingle("propose", "c1")]
            )),
            Ok(PublishKind::Call {
                id: "c1".into(),
                caller: Some("bob@localhost/pc".into())
            })
        );
        assert_eq!(
            classify(&publish(None, vec![jingle("retract", "c1")])),
            Ok(PublishKind::CallEnded {
                id: "c1".into(),
                how: CallEnd::Retracted
            })
        );
        assert_eq!(
            classify(&publish(None, vec![jingle("proceed", "c1")])).unwrap(),
            PublishKind::CallEnded {
                id: "c1".into(),
                how: CallEnd::AnsweredElsewhere
            }
        );
        assert_eq!(
            classify(&publish(Some("hi"), vec![])),
            Ok(PublishKind::Message {
                body: "hi".into(),
                sender: None
            })
        );
        assert_eq!(
            classify(&publish(None, vec![])),
            Ok(PublishKind::Unimportant)
        );
        let push2 = classify(&publish(Some("x"), vec![Element::new("voip", NS_PUSH2)]));
        assert_eq!(
            push2,
            Ok(PublishKind::Call {
                id: "iq1".into(),
                caller: None
            })
        );
    }

    #[test]
    fn a_bad_marker_is_an_error_showing_it() {
        let no_sid = Element::new("jingle", NS_TIGASE_JINGLE).attr("action", "propose");
        let e = classify(&publish(None, vec![no_sid])).unwrap_err();
        assert!(
            e.0.contains("without sid") && e.0.contains("tigase:push:jingle:0"),
            "{e}"
        );
        let e = classify(&publish(None, vec![jingle("dance", "c1")])).unwrap_err();
        assert!(e.0.contains("dance"), "{e}");
    }
}
