//! HTTP digest authentication for SIP (RFC 2617 / RFC 3261 §22): MD5, with or without
//! `qop=auth`, answering 401 (WWW-Authenticate) and 407 (Proxy-Authenticate) challenges.

use crate::headers::Challenge;
use md5::{Digest, Md5};

/// A username and password for one realm (or any realm).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

/// Why a challenge cannot be answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a Digest challenge.
    #[error("unsupported auth scheme {0:?}")]
    Scheme(String),
    /// An algorithm other than MD5.
    #[error("unsupported digest algorithm {0:?}")]
    Algorithm(String),
    /// A field the computation needs is missing.
    #[error("challenge has no {0}")]
    Missing(&'static str),
    /// A qop other than `auth`.
    #[error("unsupported qop {0:?}")]
    Qop(String),
}

fn md5_hex(s: &str) -> String {
    let d = Md5::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest `response` value (RFC 2617 §3.2.2.1).
pub fn digest_response(
    username: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str, &str)>,
) -> String {
    let ha1 = md5_hex(&format!("{username}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce, qop)) => md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")),
        None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// The value of an Authorization / Proxy-Authorization header answering `challenge`.
/// `nc` counts the uses of this nonce (1 for the first).
pub fn authorization(
    challenge: &Challenge,
    creds: &Credentials,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> Result<String, AuthError> {
    if !challenge.scheme.eq_ignore_ascii_case("Digest") {
        return Err(AuthError::Scheme(challenge.scheme.clone()));
    }
    let algorithm = challenge.field("algorithm");
    if let Some(a) = algorithm {
        if !a.eq_ignore_ascii_case("MD5") {
            return Err(AuthError::Algorithm(a.to_owned()));
        }
    }
    let realm = challenge
        .field("realm")
        .ok_or(AuthError::Missing("realm"))?;
    let nonce = challenge
        .field("nonce")
        .ok_or(AuthError::Missing("nonce"))?;
    let qop = match challenge.field("qop") {
        None => None,
        Some(q) => {
            if q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")) {
                Some("auth")
            } else {
                return Err(AuthError::Qop(q.to_owned()));
            }
        }
    };
    let nc = format!("{nc:08x}");
    let response = digest_response(
        &creds.username,
        realm,
        &creds.password,
        method,
        uri,
        nonce,
        qop.map(|q| (nc.as_str(), cnonce, q)),
    );
    let mut out = format!(
        "Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\"",
        creds.username
    );
    if let Some(a) = algorithm {
        out.push_str(&format!(", algorithm={a}"));
    }
    if let Some(q) = qop {
        out.push_str(&format!(", qop={q}, nc={nc}, cnonce=\"{cnonce}\""));
    }
    if let Some(o) = challenge.field("opaque") {
        out.push_str(&format!(", opaque=\"{o}\""));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example() {
        // RFC 2617 §3.5.
        let r = digest_response(
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(("00000001", "0a4f113b", "auth")),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn authorization_header_from_challenge() {
        let c = Challenge::parse("Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"").unwrap();
        let creds = Credentials {
            username: "Mufasa".into(),
            password: "Circle Of Life".into(),
        };
        let h = authorization(&c, &creds, "GET", "/dir/index.html", "0a4f113b", 1).unwrap();
        let parsed = Challenge::parse(&h).unwrap();
        assert_eq!(
            parsed.field("response"),
            Some("6629fae49393a05397450978507c4ef1")
        );
        assert_eq!(parsed.field("nc"), Some("00000001"));
        assert_eq!(
            parsed.field("opaque"),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        let bad = Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256").unwrap();
        assert!(matches!(
            authorization(&bad, &creds, "REGISTER", "sip:x", "c", 1),
            Err(AuthError::Algorithm(_))
        ));
        let no_nonce = Challenge::parse("Digest realm=\"r\"").unwrap();
        assert_eq!(
            authorization(&no_nonce, &creds, "REGISTER", "sip:x", "c", 1),
            Err(AuthError::Missing("nonce"))
        );
    }
}
