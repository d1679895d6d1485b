//! Typed views of single header values: Via, name-addr (From/To/Route/Record-Route), Contact,
//! CSeq, and digest challenge/credentials fields. Each keeps what it read in order so that
//! `Display` writes it back unchanged.

use crate::syntax::{
    find_param, parse_params, set_param, split_host_port, split_list, write_params, Param,
    ParseError,
};
use crate::uri::SipUri;
use std::fmt;

/// One Via value: `SIP/2.0/UDP host:port;branch=…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// `SIP/2.0/UDP` as written.
    pub protocol: String,
    /// The sent-by host as written (IPv6 bracketed).
    pub host: String,
    /// The sent-by port.
    pub port: Option<u16>,
    /// Parameters in order.
    pub params: Vec<Param>,
}

impl Via {
    /// Parses one Via value.
    pub fn parse(s: &str) -> Result<Via, ParseError> {
        let bad = |reason: &str| ParseError::BadHeader {
            name: "Via",
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let s = s.trim();
        // The protocol may contain spaces around '/' (RFC 3261 allows LWS); normalise nothing,
        // but find where sent-by starts: after the third token.
        let mut slashes = 0;
        let mut idx = None;
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'/' {
                slashes += 1;
            }
            if slashes == 2 && bytes[i].is_ascii_whitespace() {
                // Skip whitespace after the transport token.
                let prev_nonspace = s[..i].trim_end();
                if !prev_nonspace.ends_with('/') {
                    idx = Some(i);
                    break;
                }
            }
            i += 1;
        }
        let idx = idx.ok_or_else(|| bad("no sent-by after the protocol"))?;
        let protocol = s[..idx].trim().to_owned();
        let rest = s[idx..].trim();
        let (sent_by, params) = rest.split_once(';').unwrap_or((rest, ""));
        let (host, port) = split_host_port(sent_by).ok_or_else(|| bad("bad sent-by"))?;
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        Ok(Via {
            protocol,
            host: host.to_owned(),
            port,
            params: parse_params(params),
        })
    }

    /// The transport token (`UDP`, `TCP`, `TLS`, …).
    pub fn transport(&self) -> &str {
        self.protocol.rsplit('/').next().unwrap_or("").trim()
    }

    /// A parameter's raw value.
    pub fn param(&self, name: &str) -> Option<&str> {
        find_param(&self.params, name)
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch")
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.protocol, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write_params(f, &self.params)
    }
}

/// A name-addr or addr-spec with header parameters (From, To, Contact, Route, Record-Route).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name as written (quotes kept), if any.
    pub display: Option<String>,
    /// The URI.
    pub uri: SipUri,
    /// True when the URI was written in `<…>` (always written so when params follow).
    pub angle: bool,
    /// Header parameters (after the URI) in order.
    pub params: Vec<Param>,
}

impl NameAddr {
    /// Parses one value.
    pub fn parse(s: &str) -> Result<NameAddr, ParseError> {
        let s = s.trim();
        let bad = |reason: &str| ParseError::BadHeader {
            name: "name-addr",
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        // Find '<' outside quotes.
        let mut in_quotes = false;
        let mut escaped = false;
        let mut lt = None;
        for (i, c) in s.char_indices() {
            if escaped {
                escaped = false;
                continue;
            }
            match c {
                '\\' if in_quotes => escaped = true,
                '"' => in_quotes = !in_quotes,
                '<' if !in_quotes => {
                    lt = Some(i);
                    break;
                }
                _ => {}
            }
        }
        if in_quotes {
            return Err(bad("unterminated quoted display name"));
        }
        match lt {
            Some(lt) => {
                let gt = s[lt..]
                    .find('>')
                    .map(|g| g + lt)
                    .ok_or_else(|| bad("no '>'"))?;
                let display = s[..lt].trim();
                let uri = SipUri::parse(&s[lt + 1..gt])?;
                Ok(NameAddr {
                    display: (!display.is_empty()).then(|| display.to_owned()),
                    uri,
                    angle: true,
                    params: parse_params(&s[gt + 1..]),
                })
            }
            None => {
                let (uri, params) = s.split_once(';').unwrap_or((s, ""));
                Ok(NameAddr {
                    display: None,
                    uri: SipUri::parse(uri)?,
                    angle: false,
                    params: parse_params(params),
                })
            }
        }
    }

    /// `<uri>` with no display name and no parameters.
    pub fn new(uri: SipUri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            angle: true,
            params: Vec::new(),
        }
    }

    /// A header parameter's raw value (`Some("")` for a flag).
    pub fn param(&self, name: &str) -> Option<&str> {
        find_param(&self.params, name)
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.param("tag")
    }

    /// Sets (replacing) or appends a header parameter.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        set_param(&mut self.params, name, value);
    }

    /// Builder: with a header parameter.
    pub fn with_param(mut self, name: &str, value: Option<&str>) -> NameAddr {
        self.set_param(name, value);
        self
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{d} ")?;
        }
        if self.angle || !self.params.is_empty() || !self.uri.params.is_empty() {
            write!(f, "<{}>", self.uri)?;
        } else {
            write!(f, "{}", self.uri)?;
        }
        write_params(f, &self.params)
    }
}

/// One Contact value: `*` or an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contact {
    /// `Contact: *` (remove all bindings).
    Star,
    /// An address with its parameters (`expires`, `q`, `+sip.instance`, `reg-id`, …).
    Addr(NameAddr),
}

impl Contact {
    /// Parses one Contact value.
    pub fn parse(s: &str) -> Result<Contact, ParseError> {
        if s.trim() == "*" {
            Ok(Contact::Star)
        } else {
            NameAddr::parse(s).map(Contact::Addr)
        }
    }

    /// The address, unless this is `*`.
    pub fn addr(&self) -> Option<&NameAddr> {
        match self {
            Contact::Star => None,
            Contact::Addr(a) => Some(a),
        }
    }

    /// The `expires` parameter.
    pub fn expires(&self) -> Option<u32> {
        self.addr()?.param("expires")?.parse().ok()
    }
}

impl fmt::Display for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contact::Star => f.write_str("*"),
            Contact::Addr(a) => a.fmt(f),
        }
    }
}

/// CSeq: sequence number and method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    /// The number.
    pub seq: u32,
    /// The method.
    pub method: String,
}

impl CSeq {
    /// Parses `1 INVITE`.
    pub fn parse(s: &str) -> Result<CSeq, ParseError> {
        let bad = |reason: &str| ParseError::BadHeader {
            name: "CSeq",
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let mut it = s.split_whitespace();
        let seq = it
            .next()
            .ok_or_else(|| bad("empty"))?
            .parse()
            .map_err(|_| bad("sequence is not a 32-bit number"))?;
        let method = it.next().ok_or_else(|| bad("no method"))?.to_owned();
        if it.next().is_some() {
            return Err(bad("trailing text"));
        }
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// An authentication header: scheme plus comma-separated `name=value` fields
/// (WWW-Authenticate, Proxy-Authenticate, Authorization, Proxy-Authorization).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// `Digest`.
    pub scheme: String,
    /// Fields in order, values unquoted.
    pub fields: Vec<(String, String)>,
}

impl Challenge {
    /// Parses `Digest realm="x", nonce="y", qop="auth"`.
    pub fn parse(s: &str) -> Result<Challenge, ParseError> {
        let s = s.trim();
        let (scheme, rest) = s
            .split_once([' ', '\t'])
            .ok_or_else(|| ParseError::BadHeader {
                name: "authentication",
                value: s.to_owned(),
                reason: "no fields after the scheme".into(),
            })?;
        let mut fields = Vec::new();
        for item in split_list(rest) {
            let (n, v) = item.split_once('=').ok_or_else(|| ParseError::BadHeader {
                name: "authentication",
                value: s.to_owned(),
                reason: format!("field {item:?} has no '='"),
            })?;
            let v = v.trim();
            let v = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
                v[1..v.len() - 1].replace("\\\"", "\"")
            } else {
                v.to_owned()
            };
            fields.push((n.trim().to_owned(), v));
        }
        Ok(Challenge {
            scheme: scheme.to_owned(),
            fields,
        })
    }

    /// A field's unquoted value (case-insensitive name).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_variants() {
        let v = Via::parse("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport;received=10.0.0.1")
            .unwrap();
        assert_eq!(v.transport(), "UDP");
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.param("rport"), Some(""));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport;received=10.0.0.1"
        );
        let v = Via::parse("SIP / 2.0 / TLS [::1];branch=z9hG4bKa").unwrap();
        assert_eq!(v.transport(), "TLS");
        assert_eq!(v.host, "[::1]");
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("garbage").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            "\"Bob, the <caller>\" <sip:bob@example.com;transport=tcp>;tag=a6c85cf",
        )
        .unwrap();
        assert_eq!(n.display.as_deref(), Some("\"Bob, the <caller>\""));
        assert_eq!(n.tag(), Some("a6c85cf"));
        assert_eq!(n.uri.param("transport"), Some("tcp"));
        assert_eq!(
            n.to_string(),
            "\"Bob, the <caller>\" <sip:bob@example.com;transport=tcp>;tag=a6c85cf"
        );
        let n = NameAddr::parse("sip:alice@example.com;tag=88sja8x").unwrap();
        assert!(n.uri.params.is_empty());
        assert_eq!(n.tag(), Some("88sja8x"));
        assert!(NameAddr::parse("\"unterminated <sip:a@b>").is_err());
        assert!(NameAddr::parse("<sip:a@b").is_err());
    }

    #[test]
    fn challenge_fields() {
        let c = Challenge::parse("Digest realm=\"atlanta.com\", nonce=\"84a4cc6f3082121f32b42a2187831a9e\", qop=\"auth,auth-int\", algorithm=MD5").unwrap();
        assert_eq!(c.scheme, "Digest");
        assert_eq!(c.field("qop"), Some("auth,auth-int"));
        assert_eq!(c.field("ALGORITHM"), Some("MD5"));
        assert!(Challenge::parse("Digest").is_err());
    }

    #[test]
    fn cseq_errors() {
        assert_eq!(CSeq::parse("314159 INVITE").unwrap().seq, 314159);
        assert!(CSeq::parse("99999999999 INVITE").is_err());
        assert!(CSeq::parse("1").is_err());
    }
}
