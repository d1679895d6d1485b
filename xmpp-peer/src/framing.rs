//! Cuts an XMPP byte stream into its header, top-level elements and end tag, keeping the raw bytes.
//!
//! Feed bytes as they arrive with [`StreamParser::feed`], then take complete events with
//! [`StreamParser::next_event`]. A top-level element is only parsed once its last byte has
//! arrived, and each event carries the exact bytes that made it (for the timeline). Bad input is a
//! [`FramingError`] that holds the offending bytes, never a panic.

use crate::xml::{parse_element, read_start, resolve_start, Element, NsScope, XmlError};
use bytes::Bytes;

/// Largest single top-level element accepted before the stream is declared broken.
pub(crate) const MAX_ELEMENT_BYTES: usize = 1 << 20;

/// One complete unit of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamEvent {
    /// The `<stream:stream …>` opening (its attributes; the element has no children).
    Header { header: Element, raw: Bytes },
    /// A top-level element (a stanza or a stream-level element such as `<r/>`).
    Element { element: Element, raw: Bytes },
    /// `</stream:stream>`.
    End { raw: Bytes },
}

/// Bytes that do not form a valid stream, with the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {}", timeline::escape_bytes(bytes))]
pub struct FramingError {
    /// What was wrong.
    pub reason: String,
    /// The offending bytes (the element, or the buffered input).
    pub bytes: Bytes,
}

/// The incremental parser for one stream (restartable after STARTTLS and SASL).
#[derive(Debug, Default)]
pub(crate) struct StreamParser {
    buf: Vec<u8>,
    scope: Option<NsScope>,
}

enum Scan {
    Need,
    Found(usize),
}

impl StreamParser {
    /// A parser waiting for a stream header.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Forgets the stream so the next bytes must start a new header (stream restart). Bytes
    /// already buffered are kept (a server never pipelines past a restart point, but be safe).
    pub(crate) fn restart(&mut self) {
        self.scope = None;
    }

    /// Appends received bytes.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event, `Ok(None)` when more bytes are needed.
    pub(crate) fn next_event(&mut self) -> Result<Option<StreamEvent>, FramingError> {
        match self.scope {
            None => self.next_header(),
            Some(_) => self.next_element(),
        }
    }

    fn fail(&self, reason: impl Into<String>, bytes: &[u8]) -> FramingError {
        FramingError {
            reason: reason.into(),
            bytes: Bytes::copy_from_slice(bytes),
        }
    }

    fn next_header(&mut self) -> Result<Option<StreamEvent>, FramingError> {
        let mut pos = skip_ws(&self.buf, 0);
        if self.buf[pos..].starts_with(b"<?") {
            match find(&self.buf, pos, b"?>") {
                Some(end) => pos = skip_ws(&self.buf, end + 2),
                None => return self.need(),
            }
        }
        if pos >= self.buf.len() {
            return Ok(None);
        }
        if self.buf[pos] != b'<' {
            return Err(self.fail("stream does not start with a tag", &self.buf));
        }
        let Some(end) = tag_end(&self.buf, pos) else {
            return self.need();
        };
        let raw = self.buf[..end].to_vec();
        let tag_bytes = &self.buf[pos..end];
        let header = parse_header(tag_bytes).map_err(|e| self.fail(e.reason, &raw))?;
        let (header, scope) = header;
        if !header.is("stream", crate::xml::NS_STREAM) {
            return Err(self.fail("first element is not <stream:stream>", &raw));
        }
        self.buf.drain(..end);
        self.scope = Some(scope);
        Ok(Some(StreamEvent::Header {
            header,
            raw: Bytes::from(raw),
        }))
    }

    fn need(&self) -> Result<Option<StreamEvent>, FramingError> {
        if self.buf.len() > MAX_ELEMENT_BYTES {
            return Err(self.fail("element too large", &self.buf[..256]));
        }
        Ok(None)
    }

    fn next_element(&mut self) -> Result<Option<StreamEvent>, FramingError> {
        let start = skip_ws(&self.buf, 0);
        if start >= self.buf.len() {
            self.buf.clear();
            return Ok(None);
        }
        if self.buf[start] != b'<' {
            let end = self.buf[start..]
                .iter()
                .position(|b| *b == b'<')
                .map_or(self.buf.len(), |p| start + p);
            return Err(self.fail("text at stream level", &self.buf[start..end]));
        }
        if self.buf[start..].starts_with(b"</") {
            let Some(end) = tag_end(&self.buf, start) else {
                return self.need();
            };
            let raw = self.buf[start..end].to_vec();
            let name = String::from_utf8_lossy(&raw[2..raw.len() - 1])
                .trim()
                .to_string();
            if name != "stream:stream" {
                return Err(self.fail("unexpected end tag at stream level", &raw));
            }
            self.buf.drain(..end);
            self.scope = None;
            return Ok(Some(StreamEvent::End {
                raw: Bytes::from(raw),
            }));
        }
        match scan_element(&self.buf, start).map_err(|r| self.fail(r, &self.buf[start..]))? {
            Scan::Need => self.need(),
            Scan::Found(end) => {
                let raw: Vec<u8> = self.buf[start..end].to_vec();
                self.buf.drain(..end);
                let scope = self.scope.as_ref().expect("checked by next_event");
                let element = parse_element(&raw, scope).map_err(|e| self.fail(e.reason, &raw))?;
                Ok(Some(StreamEvent::Element {
                    element,
                    raw: Bytes::from(raw),
                }))
            }
        }
    }
}

fn parse_header(tag: &[u8]) -> Result<(Element, NsScope), XmlError> {
    let text = std::str::from_utf8(tag).map_err(|_| XmlError::new("header is not UTF-8"))?;
    let mut reader = quick_xml::Reader::from_str(text);
    let ev = reader
        .read_event()
        .map_err(|e| XmlError::new(format!("bad stream header: {e}")))?;
    match ev {
        quick_xml::events::Event::Start(s) => {
            let mut scope = NsScope::default();
            scope.declare("xml", "http://www.w3.org/XML/1998/namespace");
            let header = resolve_start(read_start(&s)?, &mut scope)?;
            Ok((header, scope))
        }
        _ => Err(XmlError::new("stream header is not an open start tag")),
    }
}

fn skip_ws(buf: &[u8], mut pos: usize) -> usize {
    while pos < buf.len() && buf[pos].is_ascii_whitespace() {
        pos += 1;
    }
    pos
}

fn find(buf: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    buf.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// The index just after the `>` closing the tag that starts at `pos`, honouring quoted values.
fn tag_end(buf: &[u8], pos: usize) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (i, &b) in buf.iter().enumerate().skip(pos + 1) {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'>' => return Some(i + 1),
            None => {}
        }
    }
    None
}

/// The qualified name at the start of a tag's inside (`a:b x='1'` → `a:b`).
fn tag_name(inside: &[u8]) -> &[u8] {
    let end = inside
        .iter()
        .position(|b| b.is_ascii_whitespace() || *b == b'/' || *b == b'>')
        .unwrap_or(inside.len());
    &inside[..end]
}

/// Finds the end of the element starting at `start` by matching start and end tags.
fn scan_element(buf: &[u8], start: usize) -> Result<Scan, String> {
    let mut open: Vec<&[u8]> = Vec::new();
    let mut pos = start;
    loop {
        let Some(lt) = buf[pos..].iter().position(|b| *b == b'<').map(|p| pos + p) else {
            return Ok(Scan::Need);
        };
        let rest = &buf[lt..];
        // The start of a CDATA section cut by the network (`<![CD` so far) is not yet a
        // comment or a DTD (found by AFL, target `xmpp_stream`).
        if rest.len() < 2 || (rest.len() < 9 && b"<![CDATA[".starts_with(rest)) {
            return Ok(Scan::Need);
        }
        if rest.starts_with(b"<![CDATA[") {
            match find(buf, lt, b"]]>") {
                Some(e) => pos = e + 3,
                None => return Ok(Scan::Need),
            }
            continue;
        }
        if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
            return Err("comment, DTD or processing instruction in the stream".into());
        }
        let Some(end) = tag_end(buf, lt) else {
            return Ok(Scan::Need);
        };
        if rest[1] == b'/' {
            let name = tag_name(&buf[lt + 2..end - 1]);
            match open.pop() {
                Some(o) if o == name => {}
                Some(o) => {
                    return Err(format!(
                        "end tag </{}> does not match <{}>",
                        String::from_utf8_lossy(name),
                        String::from_utf8_lossy(o)
                    ))
                }
                None => return Err("end tag without a start tag".into()),
            }
        } else if buf[end - 2] != b'/' {
            open.push(tag_name(&buf[lt + 1..end - 1]));
        }
        pos = end;
        if open.is_empty() {
            return Ok(Scan::Found(end));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(p: &mut StreamParser) -> Result<Vec<StreamEvent>, FramingError> {
        let mut out = Vec::new();
        while let Some(e) = p.next_event()? {
            out.push(e);
        }
        Ok(out)
    }

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='localhost' version='1.0'>";

    #[test]
    fn byte_by_byte_gives_the_same_events() {
        let input = format!(
            "{HEADER}<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features> \
             <message from='a@b/c' a='x>y'><body>1 &lt; 2</body></message><r xmlns='urn:xmpp:sm:3'/>\
             <message><body><![CDATA[<x> & ]]></body></message></stream:stream>"
        );
        let mut whole = StreamParser::new();
        whole.feed(input.as_bytes());
        let expected = all(&mut whole).unwrap();
        // A CDATA section cut anywhere, even inside `<![CDATA[`, waits for its end (a cut after
        // `<![CD` used to be taken for a comment: AFL, target `xmpp_stream`).
        assert_eq!(expected.len(), 6);
        let mut p = StreamParser::new();
        let mut got = Vec::new();
        for b in input.as_bytes() {
            p.feed(&[*b]);
            got.extend(all(&mut p).unwrap());
        }
        assert_eq!(got, expected);
        match &got[2] {
            StreamEvent::Element { element, raw } => {
                assert!(element.is("message", "jabber:client"));
                assert_eq!(element.get_attr("a"), Some("x>y"));
                assert!(raw.starts_with(b"<message"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(got[5], StreamEvent::End { .. }));
    }

    #[test]
    fn malformed_stanza_is_an_error_with_its_bytes() {
        let mut p = StreamParser::new();
        p.feed(HEADER.as_bytes());
        p.feed(b"<message><body>x</bogus></message>");
        assert!(matches!(
            p.next_event(),
            Ok(Some(StreamEvent::Header { .. }))
        ));
        let err = p.next_event().unwrap_err();
        assert!(
            err.to_string().contains("<message><body>x</bogus>"),
            "{err}"
        );
    }

    #[test]
    fn garbage_and_bad_headers_are_errors() {
        for input in [
            &b"hello"[..],
            b"<notstream>",
            b"<stream:stream xmlns:stream='urn:wrong'>",
            b"<stream:stream>",
        ] {
            let mut p = StreamParser::new();
            p.feed(input);
            assert!(
                p.next_event().is_err(),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        let mut p = StreamParser::new();
        p.feed(HEADER.as_bytes());
        p.feed(b"text<a/>");
        assert!(p.next_event().unwrap().is_some());
        assert!(p.next_event().unwrap_err().to_string().contains("text"));
        let mut p = StreamParser::new();
        p.feed(HEADER.as_bytes());
        p.feed(b"</a>");
        p.next_event().unwrap();
        assert!(p.next_event().is_err());
        // A mismatched end tag is an error at once, not a wait for more bytes.
        let mut p = StreamParser::new();
        p.feed(HEADER.as_bytes());
        p.feed(b"<stream:features><bogus></stream:features>");
        p.next_event().unwrap();
        assert!(p
            .next_event()
            .unwrap_err()
            .to_string()
            .contains("does not match"));
        let mut p = StreamParser::new();
        p.feed(HEADER.as_bytes());
        p.feed(b"<a><!-- x --></a>");
        p.next_event().unwrap();
        assert!(p.next_event().is_err());
        let mut p = StreamParser::new();
        p.feed(HEADER.as_bytes());
        p.feed(&[b'<', b'a', b'>', 0xff, b'<', b'/', b'a', b'>']);
        p.next_event().unwrap();
        assert!(p.next_event().unwrap_err().to_string().contains("\\xff"));
    }

    #[test]
    fn oversized_element_is_an_error_not_a_hang() {
        let mut p = StreamParser::new();
        p.feed(HEADER.as_bytes());
        p.next_event().unwrap();
        p.feed(b"<message><body>");
        p.feed(&vec![b'a'; MAX_ELEMENT_BYTES + 1]);
        assert!(p.next_event().is_err());
    }
}
