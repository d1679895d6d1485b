//! XEP-0313 MAM (`urn:xmpp:mam:2`) catch-up queries with XEP-0059 RSM paging.

use crate::client::Client;
use crate::error::{Error, InvalidStanza};
use crate::forms::DataForm;
use crate::ns;
use crate::xml::Element;
use std::time::Duration;
use tokio::time::Instant;

/// What to fetch.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only with this JID.
    pub with: Option<String>,
    /// Only after this timestamp (XEP-0082).
    pub start: Option<String>,
    /// Only after this archive id (RSM `<after>`), e.g. the last one seen before sleeping.
    pub after_id: Option<String>,
}

/// One archived message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Archived {
    /// The archive id (`<result id>`).
    pub archive_id: String,
    /// The `<delay stamp>` of the forwarded message.
    pub stamp: Option<String>,
    /// The archived `<message>`.
    pub message: Element,
}

/// The end of one page (`<fin>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fin {
    /// `complete='true'`.
    pub complete: bool,
    /// The RSM `<last>` id, to page on.
    pub last: Option<String>,
}

/// The query IQ for one page.
pub fn query_iq(query_id: &str, filter: &Filter, after: Option<&str>, max: usize) -> Element {
    let mut q = Element::new("query", ns::MAM).attr("queryid", query_id);
    if filter.with.is_some() || filter.start.is_some() {
        let mut form = DataForm::new("submit", ns::MAM);
        if let Some(w) = &filter.with {
            form = form.field("with", w);
        }
        if let Some(s) = &filter.start {
            form = form.field("start", s);
        }
        q.push_child(form.to_element());
    }
    let mut set =
        Element::new("set", ns::RSM).child(Element::new("max", ns::RSM).text(max.to_string()));
    if let Some(a) = after {
        set.push_child(Element::new("after", ns::RSM).text(a));
    }
    q.push_child(set);
    Element::new("iq", ns::CLIENT).attr("type", "set").child(q)
}

/// If `e` is a result message for `query_id`, parses it.
pub fn parse_result(e: &Element, query_id: &str) -> Option<Result<Archived, InvalidStanza>> {
    let r = e.get_child("result", ns::MAM)?;
    if r.get_attr("queryid") != Some(query_id) {
        return None;
    }
    Some((|| {
        let id = r
            .get_attr("id")
            .ok_or_else(|| InvalidStanza::new("MAM result without id", e))?;
        let fwd = r
            .get_child("forwarded", ns::FORWARD)
            .ok_or_else(|| InvalidStanza::new("MAM result without <forwarded>", e))?;
        let message = fwd
            .children()
            .find(|c| c.name() == "message")
            .ok_or_else(|| InvalidStanza::new("MAM result without a message", e))?;
        Ok(Archived {
            archive_id: id.into(),
            stamp: fwd
                .get_child("delay", ns::DELAY)
                .and_then(|d| d.get_attr("stamp"))
                .map(str::to_string),
            message: message.clone(),
        })
    })())
}

/// Parses the `<fin>` of the IQ result.
pub fn parse_fin(iq: &Element) -> Result<Fin, InvalidStanza> {
    let fin = iq
        .get_child("fin", ns::MAM)
        .ok_or_else(|| InvalidStanza::new("MAM result without <fin>", iq))?;
    Ok(Fin {
        complete: matches!(fin.get_attr("complete"), Some("true") | Some("1")),
        last: fin
            .get_child("set", ns::RSM)
            .and_then(|s| s.get_child("last", ns::RSM))
            .map(|l| l.text_content()),
    })
}

/// Fetches every archived message matching `filter`, `page` at a time, within `within` overall.
pub async fn fetch_all(
    client: &Client,
    filter: &Filter,
    page: usize,
    within: Duration,
) -> Result<Vec<Archived>, Error> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut after = filter.after_id.clone();
    loop {
        let qid = uuid::Uuid::new_v4().simple().to_string();
        let left = deadline.saturating_duration_since(Instant::now());
        let res = client
            .iq(query_iq(&qid, filter, after.as_deref(), page), left)
            .await?;
        // Results precede the IQ result on the stream, so they are already in the inbox.
        while let Ok(m) = client
            .inbox()
            .wait_for(Instant::now(), "mam result", |e| {
                parse_result(e, &qid).is_some()
            })
            .await
        {
            out.push(parse_result(&m, &qid).expect("matched")?);
        }
        let fin = parse_fin(&res)?;
        if fin.complete || fin.last.is_none() {
            return Ok(out);
        }
        if after == fin.last {
            return Err(Error::Unexpected {
                context: "MAM paging did not advance".into(),
                raw: res.to_xml(),
            });
        }
        after = fin.last;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_str;

    #[test]
    fn parses_results_and_fin() {
        let m = parse_str("<message xmlns='jabber:client'><result xmlns='urn:xmpp:mam:2' queryid='q' id='A1'>\
            <forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2026-01-01T00:00:00Z'/>\
            <message xmlns='jabber:client' type='chat' from='bob@localhost/x'><body>hi</body></message></forwarded></result></message>").unwrap();
        let a = parse_result(&m, "q").unwrap().unwrap();
        assert_eq!(a.archive_id, "A1");
        assert_eq!(
            a.message
                .get_child("body", ns::CLIENT)
                .unwrap()
                .text_content(),
            "hi"
        );
        assert!(parse_result(&m, "other").is_none());
        let bad = parse_str("<message xmlns='jabber:client'><result xmlns='urn:xmpp:mam:2' queryid='q' id='A1'/></message>").unwrap();
        assert!(parse_result(&bad, "q").unwrap().is_err());
        let fin = parse_str(
            "<iq xmlns='jabber:client' type='result'><fin xmlns='urn:xmpp:mam:2'>\
            <set xmlns='http://jabber.org/protocol/rsm'><last>A9</last></set></fin></iq>",
        )
        .unwrap();
        assert_eq!(
            parse_fin(&fin).unwrap(),
            Fin {
                complete: false,
                last: Some("A9".into())
            }
        );
        let q = query_iq(
            "q",
            &Filter {
                with: Some("bob@localhost".into()),
                ..Default::default()
            },
            Some("A1"),
            5,
        );
        assert!(q.to_xml().contains("<after>A1</after>"), "{q}");
    }
}
