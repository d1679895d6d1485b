//! The bottom layer of the parser: the lexical rules every SIP text follows (RFC 3261 §25), and
//! [`ParseError`], why a text is not SIP.
//!
//! Quote- and bracket-aware splitters, `name[=value]` parameter lists, `host[:port]`, `%HH`
//! escapes, compact header names, and the random tokens the peer writes (tags, branches). Every
//! other layer ([`crate::uri`], [`crate::headers`], [`crate::message`]) builds on these and imports
//! nothing from the layers above it.

use std::fmt;
use std::net::IpAddr;

/// Why bytes are not a SIP message (or a part of one: a URI, a header value).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No empty line ends the headers.
    #[error("no empty line ends the headers (truncated message?)")]
    NoHeaderEnd,
    /// The headers section exceeds the limit.
    #[error("headers section larger than {limit} bytes")]
    HeadersTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body exceeds the limit.
    #[error("body of {size} bytes exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// Declared or actual size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The headers are not UTF-8.
    #[error("headers are not valid UTF-8")]
    NotUtf8,
    /// The first line is neither a Request-Line nor a Status-Line.
    #[error("bad start line: {0:?}")]
    BadStartLine(String),
    /// A header line without a colon, or with an empty name.
    #[error("bad header line: {0:?}")]
    BadHeaderLine(String),
    /// Content-Length is not a number.
    #[error("bad Content-Length: {0:?}")]
    BadContentLength(String),
    /// Content-Length says more bytes than arrived.
    #[error("Content-Length {declared} but only {available} body bytes")]
    TruncatedBody {
        /// Declared by Content-Length.
        declared: usize,
        /// Actually present.
        available: usize,
    },
    /// Content-Length is missing on a stream transport (RFC 3261 §18.3 makes it mandatory).
    #[error("Content-Length missing on a stream transport")]
    MissingContentLength,
    /// A header needed by the caller is missing.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header's value could not be parsed.
    #[error("bad {name} header {value:?}: {reason}")]
    BadHeader {
        /// Header name.
        name: &'static str,
        /// The raw value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A URI could not be parsed.
    #[error("bad URI {0:?}")]
    BadUri(String),
}

/// Splits on `sep` outside double quotes (backslash escapes honoured) and outside `<…>`.
pub(crate) fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    // Every delimiter is ASCII, so a byte scan is exact (UTF-8 continuation bytes are >= 0x80).
    let sep = sep as u8;
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            b'\\' if in_quotes => escaped = true,
            b'"' => in_quotes = !in_quotes,
            b'<' if !in_quotes => in_angle = true,
            b'>' if !in_quotes => in_angle = false,
            c if c == sep && !in_quotes && !in_angle => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Splits a comma-separated header value into trimmed, non-empty items.
pub fn split_list(s: &str) -> Vec<&str> {
    split_outside_quotes(s, ',')
        .into_iter()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

/// A `name[=value]` parameter as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// Name as written.
    pub name: String,
    /// Value as written (quotes and escapes kept), `None` for a flag.
    pub value: Option<String>,
}

impl Param {
    /// A parameter with a value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Param {
        Param {
            name: name.into(),
            value: Some(value.into()),
        }
    }

    /// A flag parameter (no value).
    pub fn flag(name: impl Into<String>) -> Param {
        Param {
            name: name.into(),
            value: None,
        }
    }
}

/// Writes `;name[=value]` for each parameter.
pub(crate) fn write_params(f: &mut fmt::Formatter<'_>, params: &[Param]) -> fmt::Result {
    for p in params {
        match &p.value {
            Some(v) => write!(f, ";{}={}", p.name, v)?,
            None => write!(f, ";{}", p.name)?,
        }
    }
    Ok(())
}

/// Parses `;a=b;c` (the leading `;` optional), honouring quoted strings.
pub(crate) fn parse_params(s: &str) -> Vec<Param> {
    split_outside_quotes(s, ';')
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => Param::new(n.trim(), v.trim()),
            None => Param::flag(p),
        })
        .collect()
}

/// Finds a parameter by name (case-insensitive) and returns its raw value (`Some("")` for a flag).
pub(crate) fn find_param<'a>(params: &'a [Param], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map(|p| p.value.as_deref().unwrap_or(""))
}

/// Sets (replacing) or appends a parameter, value written as given.
pub(crate) fn set_param(params: &mut Vec<Param>, name: &str, value: Option<&str>) {
    match params
        .iter_mut()
        .find(|p| p.name.eq_ignore_ascii_case(name))
    {
        Some(p) => p.value = value.map(str::to_owned),
        None => params.push(Param {
            name: name.to_owned(),
            value: value.map(str::to_owned),
        }),
    }
}

/// Undoes `%HH` escapes (RFC 3261 §25.1). Invalid escapes are kept as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An IP address as a SIP host (IPv6 in brackets).
pub fn host_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// Splits `host[:port]`, `[v6][:port]`. `None` if the port is not a number or brackets are
/// unbalanced.
pub(crate) fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let s = s.trim();
    if s.starts_with('[') {
        let close = s.find(']')?;
        let host = &s[..=close];
        let rest = &s[close + 1..];
        if rest.is_empty() {
            return Some((host, None));
        }
        let port = rest.strip_prefix(':')?.parse().ok()?;
        return Some((host, Some(port)));
    }
    match s.split_once(':') {
        Some((h, p)) => Some((h, Some(p.trim().parse().ok()?))),
        None => Some((s, None)),
    }
}

/// Compact forms (RFC 3261 §7.3.3 and later RFCs) and their long names.
const COMPACT: &[(&str, &str)] = &[
    ("a", "Accept-Contact"),
    ("b", "Referred-By"),
    ("c", "Content-Type"),
    ("d", "Request-Disposition"),
    ("e", "Content-Encoding"),
    ("f", "From"),
    ("i", "Call-ID"),
    ("j", "Reject-Contact"),
    ("k", "Supported"),
    ("l", "Content-Length"),
    ("m", "Contact"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("s", "Subject"),
    ("t", "To"),
    ("u", "Allow-Events"),
    ("v", "Via"),
    ("x", "Session-Expires"),
    ("y", "Identity"),
];

/// True when `written` and `name` name the same header (case-insensitive; compact forms such
/// as `m` for Contact accepted on either side).
pub fn header_name_matches(written: &str, name: &str) -> bool {
    written.eq_ignore_ascii_case(name)
        || long_header_name(written).eq_ignore_ascii_case(long_header_name(name))
}

/// The long form of a header name (`m` → `Contact`); other names are returned unchanged.
pub fn long_header_name(written: &str) -> &str {
    if written.len() == 1 {
        for (c, l) in COMPACT {
            if written.eq_ignore_ascii_case(c) {
                return l;
            }
        }
    }
    written
}

/// A random lower-case hex string of 16 characters (tags, branches, Call-IDs).
pub(crate) fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_split_respects_quotes_and_angles() {
        let v = split_list("<sip:a@b;x=1,2>, \"x,y\" <sip:c@d>,sip:e@f");
        assert_eq!(v, vec!["<sip:a@b;x=1,2>", "\"x,y\" <sip:c@d>", "sip:e@f"]);
    }

    #[test]
    fn percent_decode_keeps_bad_escapes() {
        assert_eq!(percent_decode("a%3Ab%zz%4"), "a:b%zz%4");
    }

    #[test]
    fn compact_names_match_their_long_forms() {
        assert!(header_name_matches("m", "Contact"));
        assert!(header_name_matches("CONTACT", "m"));
        assert!(!header_name_matches("t", "From"));
        assert_eq!(long_header_name("V"), "Via");
        assert_eq!(long_header_name("X-Custom"), "X-Custom");
    }

    #[test]
    fn host_and_port_split() {
        assert_eq!(split_host_port("[::1]:5062"), Some(("[::1]", Some(5062))));
        assert_eq!(split_host_port("example.com"), Some(("example.com", None)));
        assert_eq!(split_host_port("h:notaport"), None);
        assert_eq!(split_host_port("[::1"), None);
    }
}
