//! The `check_request` fuzz input format, readable in seed files: one header per line as `name: value` (the first
//! `": "` after the first byte splits, so `:path: /3/device/…` works), an empty line, then the
//! body. Any bytes are allowed anywhere; a line without `": "` is a header with an empty value.
//! The placeholders `$JWT` and `$DERJWT` become provider tokens of the fuzzing key
//! (`mock_apns::fuzzing::fixed_token`) issued when the process started, raw- and DER-signed, so
//! static seeds get past authentication.

use std::borrow::Cow;
use std::sync::OnceLock;

/// `data` with `$DERJWT` and `$JWT` replaced by fresh tokens of the fuzzing key.
pub fn with_fresh_tokens(data: &[u8]) -> Cow<'_, [u8]> {
    static TOKENS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    if !data.windows(4).any(|w| w == b"$JWT" || w == b"$DER") {
        return Cow::Borrowed(data);
    }
    let (raw, der) = TOKENS.get_or_init(|| {
        use mock_apns::fuzzing::fixed_token;
        use mock_apns::SignatureEncoding;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        (
            fixed_token(now, SignatureEncoding::Raw).into_bytes(),
            fixed_token(now, SignatureEncoding::Der).into_bytes(),
        )
    });
    let mut out = Vec::with_capacity(data.len() + 200);
    let mut rest = data;
    while !rest.is_empty() {
        if let Some(tail) = rest.strip_prefix(b"$DERJWT") {
            out.extend_from_slice(der);
            rest = tail;
        } else if let Some(tail) = rest.strip_prefix(b"$JWT") {
            out.extend_from_slice(raw);
            rest = tail;
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    Cow::Owned(out)
}

/// A request decoded from fuzz input: `(name, value)` pairs in order, and the body.
pub struct Request<'a> {
    /// The header fields, `(name, value)`, in order.
    pub headers: Vec<(&'a [u8], &'a [u8])>,
    /// The body.
    pub body: &'a [u8],
}

/// Decodes any bytes into a request; never fails.
pub fn parse(data: &[u8]) -> Request<'_> {
    let mut headers = Vec::new();
    let mut rest = data;
    loop {
        let (line, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        if line.is_empty() {
            return Request {
                headers,
                body: after,
            };
        }
        let split = line
            .windows(2)
            .skip(1)
            .position(|w| w == b": ")
            .map(|i| i + 1);
        match split {
            Some(i) => headers.push((&line[..i], &line[i + 2..])),
            None => headers.push((line, &line[line.len()..])),
        }
        if after.is_empty() {
            return Request {
                headers,
                body: after,
            };
        }
        rest = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_format_round_trips() {
        let r =
            parse(b":method: POST\n:path: /3/device/ab\napns-topic: x: y\nbare\n\n{\"aps\":{}}");
        assert_eq!(
            r.headers,
            vec![
                (&b":method"[..], &b"POST"[..]),
                (b":path", b"/3/device/ab"),
                (b"apns-topic", b"x: y"),
                (b"bare", b""),
            ]
        );
        assert_eq!(r.body, b"{\"aps\":{}}");
        assert!(parse(b"").headers.is_empty());
    }

    #[test]
    fn placeholders_become_tokens() {
        let data = with_fresh_tokens(b"authorization: bearer $JWT\nx: $DERJWT\n\n$JWT");
        let r = parse(&data);
        assert_eq!(r.headers[0].1.split(|&b| b == b'.').count(), 3, "a JWT");
        assert!(!r.body.starts_with(b"$"), "body placeholder replaced");
        assert_ne!(r.headers[0].1, r.headers[1].1, "raw and DER tokens differ");
    }
}
