//! A SIP message as it is on the wire: a start line, an ordered list of raw headers, a body.
//!
//! Reading is tolerant (compact header names, any case, folded lines, multi-value headers) and
//! writing is exact: [`Message::to_bytes`] writes the start line, each header as `Name: value` in
//! the stored order, and the body, and adds nothing. Typed views of single headers live in
//! [`crate::headers`] and are reached through accessors here; the responses and ACKs a user agent
//! derives from a request are built in `build` ([`build_response`], [`build_non2xx_ack`]).

use crate::headers::{CSeq, Challenge, Contact, NameAddr, Via};
pub use crate::syntax::ParseError;
use crate::syntax::{header_name_matches, split_list};
use bytes::Bytes;
use std::fmt::Write as _;

mod build;

pub use build::{build_non2xx_ack, build_response, reason_phrase};

/// Limits applied when reading a message (from a datagram or a stream).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest start line + headers section, in bytes.
    pub max_header_bytes: usize,
    /// Largest body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// A Request-Line or a Status-Line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD uri SIP/2.0`
    Request {
        /// The method, as written (`INVITE`).
        method: String,
        /// The Request-URI, as written.
        uri: String,
        /// The version, as written.
        version: String,
    },
    /// `SIP/2.0 code reason`
    Response {
        /// The version, as written.
        version: String,
        /// The status code.
        code: u16,
        /// The reason phrase, as written (may be empty).
        reason: String,
    },
}

/// One header line: name as written (long or compact) and the value after the colon, trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The name as written.
    pub name: String,
    /// The value, without the leading and trailing whitespace; folded lines joined by one space.
    pub value: String,
}

/// A SIP request or response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Request-Line or Status-Line.
    pub start: StartLine,
    /// Headers in wire order.
    pub headers: Vec<Header>,
    /// The body (exactly Content-Length bytes when the header is present).
    pub body: Bytes,
}

/// Finds the end of the headers: the index just past the first `\r\n\r\n` (or `\n\n`).
pub(crate) fn find_header_end(data: &[u8]) -> Option<usize> {
    let crlf = memchr::memmem::find(data, b"\r\n\r\n").map(|i| i + 4);
    // Bare-LF messages are tolerated; only look for them before the first CRLFCRLF.
    let limit = crlf.unwrap_or(data.len());
    let lf = memchr::memmem::find(&data[..limit], b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Message {
    /// Parses one whole message from a datagram. A body longer than Content-Length is cut to it
    /// (RFC 3261 §18.3); a shorter one is an error. Without Content-Length the rest is the body.
    pub fn parse(data: &[u8]) -> Result<Message, ParseError> {
        Self::parse_with(data, &Limits::default())
    }

    /// [`Message::parse`] with explicit limits.
    pub fn parse_with(data: &[u8], limits: &Limits) -> Result<Message, ParseError> {
        // Tolerate leading CRLFs (keep-alives, RFC 5626) before the start line.
        let start = data
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(data.len());
        let data = &data[start..];
        let head_end = match find_header_end(data) {
            Some(e) => e,
            None if data.len() > limits.max_header_bytes => {
                return Err(ParseError::HeadersTooLarge {
                    limit: limits.max_header_bytes,
                })
            }
            None => return Err(ParseError::NoHeaderEnd),
        };
        if head_end > limits.max_header_bytes {
            return Err(ParseError::HeadersTooLarge {
                limit: limits.max_header_bytes,
            });
        }
        let mut msg = Self::parse_head(&data[..head_end])?;
        let rest = &data[head_end..];
        let body_len = match msg.content_length()? {
            Some(n) if n > rest.len() => {
                return Err(ParseError::TruncatedBody {
                    declared: n,
                    available: rest.len(),
                })
            }
            Some(n) => n,
            None => rest.len(),
        };
        if body_len > limits.max_body_bytes {
            return Err(ParseError::BodyTooLarge {
                size: body_len,
                limit: limits.max_body_bytes,
            });
        }
        msg.body = Bytes::copy_from_slice(&rest[..body_len]);
        Ok(msg)
    }

    /// Parses the start line and headers (everything up to and including the empty line).
    pub(crate) fn parse_head(head: &[u8]) -> Result<Message, ParseError> {
        let text = std::str::from_utf8(head).map_err(|_| ParseError::NotUtf8)?;
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let first = lines.next().unwrap_or("");
        let start = parse_start_line(first)?;
        let mut headers: Vec<Header> = Vec::new();
        for line in lines {
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                // Folded continuation (RFC 3261 §7.3.1): joins the previous value with one space.
                match headers.last_mut() {
                    Some(h) => {
                        let more = line.trim();
                        if !h.value.is_empty() && !more.is_empty() {
                            h.value.push(' ');
                        }
                        h.value.push_str(more);
                    }
                    None => return Err(ParseError::BadHeaderLine(line.to_owned())),
                }
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| ParseError::BadHeaderLine(line.to_owned()))?;
            let name = name.trim_end();
            if name.is_empty() || name.contains([' ', '\t']) {
                return Err(ParseError::BadHeaderLine(line.to_owned()));
            }
            headers.push(Header {
                name: name.to_owned(),
                value: value.trim().to_owned(),
            });
        }
        Ok(Message {
            start,
            headers,
            body: Bytes::new(),
        })
    }

    /// A new request with no headers (`METHOD uri SIP/2.0`).
    pub fn request(method: &str, uri: impl Into<String>) -> Message {
        Message {
            start: StartLine::Request {
                method: method.to_owned(),
                uri: uri.into(),
                version: "SIP/2.0".into(),
            },
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// A new response with no headers (`SIP/2.0 code reason`).
    pub fn response(code: u16, reason: impl Into<String>) -> Message {
        Message {
            start: StartLine::Response {
                version: "SIP/2.0".into(),
                code,
                reason: reason.into(),
            },
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// The exact bytes: start line, headers in order as `Name: value`, empty line, body.
    /// Nothing is added: a caller that wants Content-Length sets it (see [`Message::set_body`]).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = String::with_capacity(256 + self.headers.len() * 48);
        match &self.start {
            StartLine::Request {
                method,
                uri,
                version,
            } => {
                let _ = write!(out, "{method} {uri} {version}\r\n");
            }
            StartLine::Response {
                version,
                code,
                reason,
            } => {
                let _ = write!(out, "{version} {code} {reason}\r\n");
            }
        }
        for h in &self.headers {
            out.push_str(&h.name);
            out.push_str(": ");
            out.push_str(&h.value);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        Bytes::from(bytes)
    }

    /// True for a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The method of a request, or `None` for a response.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI as written, or `None` for a response.
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code of a response, or `None` for a request.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase of a response.
    pub fn reason_phrase(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(reason),
            StartLine::Request { .. } => None,
        }
    }

    /// One line saying what this is: `INVITE sip:alice@example.com`, `180 Ringing (INVITE)`.
    pub fn summary(&self) -> String {
        match &self.start {
            StartLine::Request { method, uri, .. } => format!("{method} {uri}"),
            StartLine::Response { code, reason, .. } => {
                let method = self.cseq().map(|c| c.method).unwrap_or_else(|_| "?".into());
                format!("{code} {reason} ({method})")
            }
        }
    }

    /// The first value of a header (compact form accepted), as written.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| header_name_matches(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// Every header line with that name, in order (one entry per line, not split).
    pub fn header_lines<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |h| header_name_matches(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// Every value of a comma-separated header, across all its lines, in order
    /// (commas inside quotes or `<…>` do not split).
    pub fn header_values<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        self.header_lines(name).flat_map(split_list).collect()
    }

    /// Appends a header line.
    pub fn push_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.headers.push(Header {
            name: name.into(),
            value: value.into(),
        });
    }

    /// Builder form of [`Message::push_header`].
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Message {
        self.push_header(name, value);
        self
    }

    /// Replaces every line of a header by one line with this value (appended if absent).
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .headers
            .iter()
            .position(|h| header_name_matches(&h.name, name))
        {
            Some(i) => {
                self.headers[i].value = value;
                let mut n = 0;
                self.headers.retain(|h| {
                    let keep = !header_name_matches(&h.name, name) || n == i;
                    n += 1;
                    keep
                });
            }
            None => self.push_header(name, value),
        }
    }

    /// Removes every line of a header.
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|h| !header_name_matches(&h.name, name));
    }

    /// Sets the body with its Content-Type and a matching Content-Length.
    pub fn set_body(&mut self, content_type: &str, body: impl Into<Bytes>) {
        self.body = body.into();
        if self.body.is_empty() {
            self.remove_header("Content-Type");
        } else {
            self.set_header("Content-Type", content_type);
        }
        self.set_header("Content-Length", self.body.len().to_string());
    }

    /// Content-Length, if present.
    pub fn content_length(&self) -> Result<Option<usize>, ParseError> {
        match self.header("Content-Length") {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .map(Some)
                .map_err(|_| ParseError::BadContentLength(v.to_owned())),
        }
    }

    /// Call-ID.
    pub fn call_id(&self) -> Result<&str, ParseError> {
        self.header("Call-ID")
            .ok_or(ParseError::MissingHeader("Call-ID"))
    }

    /// CSeq.
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        CSeq::parse(
            self.header("CSeq")
                .ok_or(ParseError::MissingHeader("CSeq"))?,
        )
    }

    /// Every Via, top first.
    pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
        self.header_values("Via")
            .into_iter()
            .map(Via::parse)
            .collect()
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via, ParseError> {
        let v = self
            .header_values("Via")
            .into_iter()
            .next()
            .ok_or(ParseError::MissingHeader("Via"))?;
        Via::parse(v)
    }

    /// From.
    pub fn from(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(
            self.header("From")
                .ok_or(ParseError::MissingHeader("From"))?,
        )
    }

    /// To.
    pub fn to(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.header("To").ok_or(ParseError::MissingHeader("To"))?)
    }

    /// Every Contact value across all Contact lines (`*` included as [`Contact::Star`]).
    pub fn contacts(&self) -> Result<Vec<Contact>, ParseError> {
        self.header_values("Contact")
            .into_iter()
            .map(Contact::parse)
            .collect()
    }

    /// Route values, in order.
    pub fn routes(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.header_values("Route")
            .into_iter()
            .map(NameAddr::parse)
            .collect()
    }

    /// Record-Route values, in order.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.header_values("Record-Route")
            .into_iter()
            .map(NameAddr::parse)
            .collect()
    }

    /// Max-Forwards.
    pub fn max_forwards(&self) -> Result<Option<u32>, ParseError> {
        parse_number(self, "Max-Forwards")
    }

    /// Expires header.
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        parse_number(self, "Expires")
    }

    /// The first WWW-Authenticate (401) or, failing that, Proxy-Authenticate (407) challenge.
    pub fn challenge(&self) -> Result<Option<Challenge>, ParseError> {
        match self
            .header("WWW-Authenticate")
            .or_else(|| self.header("Proxy-Authenticate"))
        {
            None => Ok(None),
            Some(v) => Challenge::parse(v).map(Some),
        }
    }

    /// Authorization or Proxy-Authorization fields.
    pub fn authorization(&self) -> Result<Option<Challenge>, ParseError> {
        match self
            .header("Authorization")
            .or_else(|| self.header("Proxy-Authorization"))
        {
            None => Ok(None),
            Some(v) => Challenge::parse(v).map(Some),
        }
    }

    /// Every Feature-Caps value (one per PNS per RFC 8599 §5.4), as written.
    pub fn feature_caps(&self) -> Vec<&str> {
        self.header_values("Feature-Caps")
    }

    /// The value of a feature-capability indicator such as `+sip.pns`, unquoted, from any
    /// Feature-Caps header. `Some("")` when present without a value.
    pub fn feature_cap(&self, indicator: &str) -> Option<String> {
        self.feature_caps().into_iter().find_map(|fc| {
            fc.split(';').find_map(|p| {
                let (n, v) = p.split_once('=').unwrap_or((p, ""));
                n.trim()
                    .eq_ignore_ascii_case(indicator)
                    .then(|| v.trim().trim_matches('"').to_owned())
            })
        })
    }

    /// Reason header (RFC 3326), as written.
    pub fn reason(&self) -> Option<&str> {
        self.header("Reason")
    }
}

fn parse_number(msg: &Message, name: &'static str) -> Result<Option<u32>, ParseError> {
    match msg.header(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ParseError::BadHeader {
                name,
                value: v.to_owned(),
                reason: "not a number".into(),
            }),
    }
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    let bad = || ParseError::BadStartLine(line.to_owned());
    if let Some(rest) = line.strip_prefix("SIP/") {
        let mut parts = rest.splitn(3, ' ');
        let version = format!("SIP/{}", parts.next().ok_or_else(bad)?);
        let code_str = parts.next().ok_or_else(bad)?;
        if code_str.len() != 3 {
            return Err(bad());
        }
        let code: u16 = code_str.parse().map_err(|_| bad())?;
        if !(100..700).contains(&code) {
            return Err(bad());
        }
        let reason = parts.next().unwrap_or("").to_owned();
        return Ok(StartLine::Response {
            version,
            code,
            reason,
        });
    }
    let mut parts = line.split(' ');
    let method = parts.next().ok_or_else(bad)?;
    let uri = parts.next().ok_or_else(bad)?;
    let version = parts.next().ok_or_else(bad)?;
    if parts.next().is_some()
        || method.is_empty()
        || !method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
        || uri.is_empty()
        || !version.starts_with("SIP/")
    {
        return Err(bad());
    }
    Ok(StartLine::Request {
        method: method.to_owned(),
        uri: uri.to_owned(),
        version: version.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &str = "REGISTER sip:example.com SIP/2.0\r\n\
v: SIP/2.0/TCP [2001:db8::1]:5062;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
f: <sip:alice@example.com>;tag=1928301774\r\n\
t: <sip:alice@example.com>\r\n\
i: a84b4c76e66710@pc33\r\n\
CSeq: 1 REGISTER\r\n\
m: <sip:alice@[2001:db8::1]:5062;transport=tcp;pn-provider=apns.dev;pn-prid=tok1:remote&tok2:voip;pn-param=TEAM.bundle.remote&voip>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>\";reg-id=1;expires=3600, <sip:alice@192.0.2.4;pn-prid=00fc%3A13ad>;q=0.5\r\n\
Feature-Caps: *;+sip.pns=\"apns\"\r\n\
l: 0\r\n\r\n";

    #[test]
    fn compact_register_round_trips_exactly() {
        let m = Message::parse(REGISTER.as_bytes()).unwrap();
        assert_eq!(m.method(), Some("REGISTER"));
        assert_eq!(m.call_id().unwrap(), "a84b4c76e66710@pc33");
        assert_eq!(m.to_bytes(), REGISTER.as_bytes());
        let via = m.top_via().unwrap();
        assert_eq!(via.host, "[2001:db8::1]");
        assert_eq!(via.port, Some(5062));
        assert_eq!(via.transport(), "TCP");
        assert_eq!(via.branch(), Some("z9hG4bK776asdhds"));
        let contacts = m.contacts().unwrap();
        assert_eq!(contacts.len(), 2);
        let Contact::Addr(first) = &contacts[0] else {
            panic!("star")
        };
        assert_eq!(
            first.param("+sip.instance"),
            Some("\"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>\"")
        );
        assert_eq!(first.param("reg-id"), Some("1"));
        assert_eq!(first.uri.param("pn-prid"), Some("tok1:remote&tok2:voip"));
        let Contact::Addr(second) = &contacts[1] else {
            panic!("star")
        };
        assert_eq!(
            second.uri.param_decoded("pn-prid").as_deref(),
            Some("00fc:13ad")
        );
        assert_eq!(m.feature_cap("+sip.pns").as_deref(), Some("apns"));
        assert_eq!(m.summary(), "REGISTER sip:example.com");
    }

    #[test]
    fn response_summary_names_the_method() {
        let raw = "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";
        let m = Message::parse(raw.as_bytes()).unwrap();
        assert_eq!(m.status(), Some(180));
        assert_eq!(m.summary(), "180 Ringing (INVITE)");
    }

    #[test]
    fn folded_lines_and_leading_crlf_are_tolerated() {
        let raw =
            "\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nSubject: one\r\n  two\r\nContent-Length: 0\r\n\r\n";
        let m = Message::parse(raw.as_bytes()).unwrap();
        assert_eq!(m.header("s"), Some("one two"));
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        assert_eq!(
            Message::parse(b"\x00\xff\xfe garbage\r\n\r\n"),
            Err(ParseError::NotUtf8)
        );
        assert!(matches!(
            Message::parse(b"hello world\r\n\r\n"),
            Err(ParseError::BadStartLine(_))
        ));
        assert_eq!(
            Message::parse(b"INVITE sip:a@b SIP/2.0\r\nVia: x"),
            Err(ParseError::NoHeaderEnd)
        );
        assert_eq!(
            Message::parse(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 100\r\n\r\nhi"),
            Err(ParseError::TruncatedBody {
                declared: 100,
                available: 2
            })
        );
        assert!(matches!(
            Message::parse(b"MESSAGE sip:a@b SIP/2.0\r\nl: abc\r\n\r\nhi"),
            Err(ParseError::BadContentLength(_))
        ));
        assert!(matches!(
            Message::parse(b"SIP/2.0 99999 Huh\r\n\r\n"),
            Err(ParseError::BadStartLine(_))
        ));
        assert!(matches!(
            Message::parse(b"OPTIONS sip:a@b SIP/2.0\r\nno colon here\r\n\r\n"),
            Err(ParseError::BadHeaderLine(_))
        ));
        let mut huge = b"OPTIONS sip:a@b SIP/2.0\r\nX: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 1_000_000));
        assert!(matches!(
            Message::parse(&huge),
            Err(ParseError::HeadersTooLarge { .. })
        ));
        huge.extend(b"\r\n\r\n");
        assert!(matches!(
            Message::parse(&huge),
            Err(ParseError::HeadersTooLarge { .. })
        ));
    }

    #[test]
    fn extra_datagram_bytes_beyond_content_length_are_dropped() {
        let m =
            Message::parse(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 2\r\n\r\nhijunk").unwrap();
        assert_eq!(&m.body[..], b"hi");
    }

    #[test]
    fn set_header_replaces_all_lines() {
        let mut m = Message::request("OPTIONS", "sip:a@b")
            .with_header("Route", "<sip:p1>")
            .with_header("Via", "SIP/2.0/UDP h;branch=z9hG4bK1")
            .with_header("Route", "<sip:p2>");
        m.set_header("Route", "<sip:p3>");
        assert_eq!(m.header_values("Route"), vec!["<sip:p3>"]);
        assert_eq!(m.headers.len(), 2);
        m.set_body("text/plain", &b"hello"[..]);
        assert_eq!(m.content_length().unwrap(), Some(5));
    }
}
