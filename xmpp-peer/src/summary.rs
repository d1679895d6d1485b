//! One-line timeline summaries of stream elements ("message chat from bob@localhost body=\"hi\"").

use crate::ns;
use crate::xml::Element;

const BODY_MAX: usize = 60;

/// Summarizes a top-level element for the timeline.
pub(crate) fn summarize(e: &Element) -> String {
    let mut out = match e.ns() {
        ns::CLIENT | ns::COMPONENT => stanza(e),
        ns::SM => sm(e),
        ns::SASL => match e.name() {
            "auth" => format!("sasl auth {}", e.get_attr("mechanism").unwrap_or("?")),
            "failure" => format!("sasl failure {}", first_child_name(e)),
            other => format!("sasl {other}"),
        },
        ns::TLS => match e.name() {
            "starttls" => "starttls".into(),
            other => format!("starttls {other}"),
        },
        ns::STREAM => match e.name() {
            "features" => {
                let names: Vec<String> = e
                    .children()
                    .map(|c| match c.name() {
                        "mechanisms" => {
                            let m: Vec<String> = c.children().map(|m| m.text_content()).collect();
                            format!("mechanisms({})", m.join(","))
                        }
                        n => n.to_string(),
                    })
                    .collect();
                format!("stream features [{}]", names.join(", "))
            }
            "error" => format!("stream error {}", first_child_name(e)),
            other => format!("stream {other}"),
        },
        other => format!("{} ({other})", e.name()),
    };
    if out.len() > 200 {
        let mut cut = 200;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

fn first_child_name(e: &Element) -> String {
    e.children()
        .next()
        .map(|c| c.name().to_string())
        .unwrap_or_default()
}

fn sm(e: &Element) -> String {
    let mut s = format!("sm {}", e.name());
    for a in ["h", "id", "previd", "resume"] {
        if let Some(v) = e.get_attr(a) {
            s.push_str(&format!(" {a}={v}"));
        }
    }
    s
}

fn stanza(e: &Element) -> String {
    let mut s = e.name().to_string();
    if let Some(t) = e.get_attr("type") {
        s.push(' ');
        s.push_str(t);
    }
    if let Some(f) = e.get_attr("from") {
        s.push_str(&format!(" from {f}"));
    }
    if let Some(t) = e.get_attr("to") {
        s.push_str(&format!(" to {t}"));
    }
    match e.name() {
        "iq" => {
            if let Some(c) = e.children().find(|c| c.name() != "error") {
                s.push(' ');
                s.push_str(&iq_payload(c));
            }
            if let Some(err) = e.children().find(|c| c.name() == "error") {
                s.push_str(&format!(" error {}", first_child_name(err)));
            }
        }
        "message" => {
            for c in e.children() {
                match (c.ns(), c.name()) {
                    (_, "body") => {
                        let body = c.text_content();
                        let short: String = body.chars().take(BODY_MAX).collect();
                        let more = if body.chars().count() > BODY_MAX {
                            "…"
                        } else {
                            ""
                        };
                        s.push_str(&format!(" body={short:?}{more}"));
                    }
                    (ns::JMI, action) => {
                        s.push_str(&format!(
                            " jmi {action} id={}",
                            c.get_attr("id").unwrap_or("?")
                        ));
                        if let Some(r) = c.get_child("reason", ns::JINGLE) {
                            if let Some(cond) = r.children().find(|x| x.name() != "text") {
                                s.push_str(&format!(" reason={}", cond.name()));
                            }
                        }
                    }
                    (ns::RECEIPTS, "request") => s.push_str(" +receipt-request"),
                    (ns::RECEIPTS, "received") => {
                        s.push_str(&format!(" receipt id={}", c.get_attr("id").unwrap_or("?")))
                    }
                    (ns::CHATSTATES, state) => s.push_str(&format!(" chatstate={state}")),
                    (ns::MAM, "result") => {
                        s.push_str(&format!(
                            " mam result id={}",
                            c.get_attr("id").unwrap_or("?")
                        ));
                        if let Some(m) = c
                            .get_child("forwarded", ns::FORWARD)
                            .and_then(|f| f.children().find(|x| x.name() == "message"))
                        {
                            s.push_str(&format!(" [{}]", stanza(m)));
                        }
                    }
                    (ns::DELAY, "delay") => s.push_str(" +delay"),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    s
}

fn iq_payload(c: &Element) -> String {
    match c.ns() {
        ns::PUSH => format!("push {}", c.name()),
        ns::PUBSUB => match c.children().next() {
            Some(op) => format!(
                "pubsub {}{}",
                op.name(),
                op.get_attr("node")
                    .map(|n| format!(" node={n}"))
                    .unwrap_or_default()
            ),
            None => "pubsub".into(),
        },
        ns::BIND => "bind".into(),
        ns::MAM => format!("mam {}", c.name()),
        ns::PING => "ping".into(),
        ns::REGISTER => "register".into(),
        ns::DISCO_INFO => "disco#info".into(),
        ns::CARBONS => format!("carbons {}", c.name()),
        other => format!("{} ({other})", c.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_str;

    #[test]
    fn summaries_read_like_the_protocol() {
        let m = parse_str("<message xmlns='jabber:client' type='chat' from='bob@localhost/x'><body>hi</body><request xmlns='urn:xmpp:receipts'/></message>").unwrap();
        assert_eq!(
            summarize(&m),
            "message chat from bob@localhost/x body=\"hi\" +receipt-request"
        );
        let iq = parse_str("<iq xmlns='jabber:client' type='set' id='1'><enable xmlns='urn:xmpp:push:0' jid='p' node='n'/></iq>").unwrap();
        assert_eq!(summarize(&iq), "iq set push enable");
        let r = parse_str("<a xmlns='urn:xmpp:sm:3' h='3'/>").unwrap();
        assert_eq!(summarize(&r), "sm a h=3");
        let j = parse_str("<message xmlns='jabber:client' type='chat'><retract xmlns='urn:xmpp:jingle-message:0' id='c1'><reason xmlns='urn:xmpp:jingle:1'><cancel/><text>x</text></reason></retract></message>").unwrap();
        assert_eq!(
            summarize(&j),
            "message chat jmi retract id=c1 reason=cancel"
        );
    }
}
