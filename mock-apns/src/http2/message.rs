//! What makes a request well-formed in HTTP/2 (RFC 9113 §8.2 and §8.3): field names and values,
//! pseudo-header fields, connection-specific fields and `content-length`. A malformed request is
//! a stream error PROTOCOL_ERROR (§8.1.1); the APNs rules come after, in `validate`.

use super::hpack::HeaderList;

/// Why a request is malformed (RFC 9113 §8.1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// A field name with a character RFC 9113 §8.2.1 forbids (upper case, control, space, …).
    BadName(Vec<u8>),
    /// A field value with NUL, CR or LF.
    BadValue(Vec<u8>),
    /// A pseudo-header field a request cannot carry, or one given twice.
    BadPseudo(Vec<u8>),
    /// A pseudo-header field after a regular one.
    PseudoAfterRegular(Vec<u8>),
    /// `:method`, `:scheme` or `:path` missing, or `:path` empty.
    MissingPseudo(&'static str),
    /// A `:path` with a byte outside visible ASCII.
    BadPath,
    /// `connection`, `keep-alive`, `transfer-encoding`, … or `te` other than `trailers`.
    ConnectionSpecific(Vec<u8>),
    /// `content-length` that is not a number, or given twice with different values.
    BadContentLength,
    /// The body's length differs from `content-length`.
    ContentLengthMismatch {
        /// What `content-length` said.
        declared: u64,
        /// What arrived (so far, if over).
        received: u64,
    },
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            Malformed::BadName(n) => write!(f, "invalid field name {:?}", s(n)),
            Malformed::BadValue(n) => write!(f, "field {:?} has NUL, CR or LF in its value", s(n)),
            Malformed::BadPseudo(n) => write!(f, "pseudo-header {:?} not allowed here", s(n)),
            Malformed::PseudoAfterRegular(n) => {
                write!(f, "pseudo-header {:?} after a regular field", s(n))
            }
            Malformed::MissingPseudo(n) => write!(f, "{n} missing or empty"),
            Malformed::BadPath => write!(f, ":path has a byte outside visible ASCII"),
            Malformed::ConnectionSpecific(n) => {
                write!(f, "connection-specific field {:?}", s(n))
            }
            Malformed::BadContentLength => write!(f, "invalid content-length"),
            Malformed::ContentLengthMismatch { declared, received } => {
                write!(f, "content-length {declared} but {received} bytes of body")
            }
        }
    }
}

/// What the engine needs from a well-formed request head.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestHead {
    /// The `content-length`, if given.
    pub content_length: Option<u64>,
}

/// Checks a request's header list (RFC 9113 §8.2, §8.3.1).
pub fn check_request(fields: &HeaderList) -> Result<RequestHead, Malformed> {
    let mut seen = [false; 4];
    let mut method: &[u8] = b"";
    let mut path_empty = true;
    let mut regular = false;
    let mut head = RequestHead::default();
    for (name, value) in fields.iter() {
        if value.iter().any(|b| matches!(b, 0 | b'\n' | b'\r')) {
            return Err(Malformed::BadValue(name.to_vec()));
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            if regular {
                return Err(Malformed::PseudoAfterRegular(name.to_vec()));
            }
            let slot = match pseudo {
                b"method" => 0,
                b"scheme" => 1,
                b"authority" => 2,
                b"path" => 3,
                _ => return Err(Malformed::BadPseudo(name.to_vec())),
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err(Malformed::BadPseudo(name.to_vec()));
            }
            match slot {
                0 => method = value,
                3 => {
                    path_empty = value.is_empty();
                    if !value.iter().all(|b| (0x21..=0x7e).contains(b)) {
                        return Err(Malformed::BadPath);
                    }
                }
                _ => {}
            }
            continue;
        }
        regular = true;
        if name.is_empty()
            || name
                .iter()
                .any(|&b| b <= 0x20 || b.is_ascii_uppercase() || b >= 0x7f || b == b':')
        {
            return Err(Malformed::BadName(name.to_vec()));
        }
        match name {
            b"connection" | b"proxy-connection" | b"keep-alive" | b"transfer-encoding"
            | b"upgrade" => return Err(Malformed::ConnectionSpecific(name.to_vec())),
            b"te" if value != b"trailers" => {
                return Err(Malformed::ConnectionSpecific(name.to_vec()))
            }
            b"content-length" => {
                let n = parse_length(value).ok_or(Malformed::BadContentLength)?;
                if head.content_length.is_some_and(|m| m != n) {
                    return Err(Malformed::BadContentLength);
                }
                head.content_length = Some(n);
            }
            _ => {}
        }
    }
    if !seen[0] {
        return Err(Malformed::MissingPseudo(":method"));
    }
    if method == b"CONNECT" {
        if !seen[2] {
            return Err(Malformed::MissingPseudo(":authority"));
        }
    } else if !seen[1] {
        return Err(Malformed::MissingPseudo(":scheme"));
    } else if !seen[3] || path_empty {
        return Err(Malformed::MissingPseudo(":path"));
    }
    Ok(head)
}

fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::hpack::{encode_literal, Decoder};

    fn list(fields: &[(&str, &str)]) -> HeaderList {
        let mut block = Vec::new();
        for (n, v) in fields {
            encode_literal(n.as_bytes(), v.as_bytes(), &mut block);
        }
        let mut out = HeaderList::default();
        Decoder::new(4096)
            .decode(&block, &mut out, 1 << 20)
            .unwrap();
        out
    }

    const GOOD: &[(&str, &str)] = &[
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", "api.push.apple.com"),
        (":path", "/3/device/abc"),
        ("apns-topic", "com.example"),
        ("content-length", "12"),
    ];

    fn with(
        change: impl FnOnce(&mut Vec<(&'static str, &'static str)>),
    ) -> Result<RequestHead, Malformed> {
        let mut fields = GOOD.to_vec();
        change(&mut fields);
        check_request(&list(&fields))
    }

    #[test]
    fn a_well_formed_request_passes_with_its_content_length() {
        assert_eq!(
            check_request(&list(GOOD)),
            Ok(RequestHead {
                content_length: Some(12)
            })
        );
        assert!(with(|f| f.retain(|(n, _)| *n != ":authority")).is_ok());
        assert!(with(|f| f.push(("te", "trailers"))).is_ok());
    }

    #[test]
    fn each_rule_of_rfc_9113_section_8_makes_a_request_malformed() {
        let cases: Vec<(&str, Result<RequestHead, Malformed>)> = vec![
            ("upper case name", with(|f| f.push(("Apns-Topic", "x")))),
            ("space in name", with(|f| f.push(("apns topic", "x")))),
            ("NUL in value", with(|f| f.push(("x", "a\0b")))),
            ("CR in value", with(|f| f.push(("x", "a\rb")))),
            ("unknown pseudo", with(|f| f.insert(0, (":status", "200")))),
            ("pseudo twice", with(|f| f.insert(0, (":path", "/x")))),
            (
                "pseudo after regular",
                with(|f| f.push((":authority", "x"))),
            ),
            ("no :method", with(|f| f.retain(|(n, _)| *n != ":method"))),
            ("no :scheme", with(|f| f.retain(|(n, _)| *n != ":scheme"))),
            ("no :path", with(|f| f.retain(|(n, _)| *n != ":path"))),
            ("empty :path", with(|f| f[3].1 = "")),
            ("space in :path", with(|f| f[3].1 = "/3/device/a b")),
            ("connection", with(|f| f.push(("connection", "close")))),
            (
                "transfer-encoding",
                with(|f| f.push(("transfer-encoding", "chunked"))),
            ),
            ("te gzip", with(|f| f.push(("te", "gzip")))),
            ("content-length abc", with(|f| f[5].1 = "abc")),
            (
                "content-length twice",
                with(|f| f.push(("content-length", "13"))),
            ),
        ];
        for (name, result) in cases {
            assert!(result.is_err(), "{name}: accepted");
        }
    }
}
