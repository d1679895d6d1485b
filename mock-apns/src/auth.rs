//! Who is pushing on a connection: provider-token state (team binding, token updates) and the
//! identity of a provider client certificate.

use crate::cert_ext;
use crate::jwt::{check_age, KeyRing, TokenRejection, VerifiedToken};
use crate::{Environment, Reason};
use serde::Serialize;
use std::collections::VecDeque;

/// The window of Apple's "no more than once every 20 minutes" token-update rule.
pub const TOKEN_UPDATE_WINDOW_SECS: i64 = 20 * 60;

/// How a request authenticated, as the push log shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AuthIdentity {
    /// Not authenticated (the request was rejected before or at authentication).
    None,
    /// A provider token.
    Token {
        /// `iss`.
        team_id: String,
        /// `kid`.
        key_id: String,
    },
    /// A provider client certificate.
    Certificate {
        /// Subject UID (the bundle id).
        uid: String,
    },
}

/// What a provider client certificate allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertIdentity {
    /// Subject UID: the bundle id and default topic.
    pub uid: String,
    /// Allowed topics: the UID plus every topic of the 1.2.840.113635.100.6.3.6 extension.
    pub topics: Vec<String>,
    /// Carries the sandbox (.3.1) extension.
    pub sandbox: bool,
    /// Carries the production (.3.2) extension.
    pub production: bool,
}

/// Why a client certificate cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Not parseable X.509.
    #[error("certificate does not parse: {0}")]
    X509(String),
    /// No subject UID.
    #[error("certificate subject has no UID")]
    NoUid,
    /// A malformed topics extension.
    #[error("topics extension: {0}")]
    Topics(#[from] cert_ext::DerError),
}

impl CertIdentity {
    /// Reads the identity from a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertIdentity, CertError> {
        use x509_parser::prelude::*;
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| CertError::X509(e.to_string()))?;
        let uid = cert
            .subject()
            .iter_attributes()
            .find(|a| a.attr_type().to_id_string() == "0.9.2342.19200300.100.1.1")
            .and_then(|a| a.as_str().ok())
            .ok_or(CertError::NoUid)?
            .to_owned();
        let mut topics = vec![uid.clone()];
        let (mut sandbox, mut production) = (false, false);
        for ext in cert.extensions() {
            match ext.oid.to_id_string().as_str() {
                cert_ext::OID_SANDBOX_STR => sandbox = true,
                cert_ext::OID_PRODUCTION_STR => production = true,
                cert_ext::OID_TOPICS_STR => {
                    for entry in cert_ext::decode_topics(ext.value)? {
                        if !topics.contains(&entry.topic) {
                            topics.push(entry.topic);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(CertIdentity {
            uid,
            topics,
            sandbox,
            production,
        })
    }

    /// Whether this certificate may be used on `env`. A certificate with neither environment
    /// extension is treated as universal.
    pub fn allows(&self, env: Environment) -> bool {
        match env {
            Environment::Sandbox => self.sandbox || !self.production,
            Environment::Production => self.production || !self.sandbox,
        }
    }
}

/// A failed authentication: the APNs reason, and what exactly was wrong (for the push log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthFailure {
    /// Sent to the client.
    pub reason: Reason,
    /// Kept in the push log.
    pub detail: &'static str,
}

impl AuthFailure {
    fn new(reason: Reason, detail: &'static str) -> Self {
        AuthFailure { reason, detail }
    }
}

impl From<TokenRejection> for AuthFailure {
    fn from(r: TokenRejection) -> Self {
        let detail = match r {
            TokenRejection::Invalid(d) => d,
            TokenRejection::Expired { .. } => "iat older than one hour",
        };
        AuthFailure::new(r.reason(), detail)
    }
}

/// A successful authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authenticated {
    /// By provider token; `first` is true for the connection's first valid token (the moment APNs
    /// raises MAX_CONCURRENT_STREAMS).
    Token {
        /// The token's claims.
        token: VerifiedToken,
        /// First valid token on this connection.
        first: bool,
    },
    /// By client certificate.
    Certificate,
}

/// Per-connection authentication state.
#[derive(Debug, Default)]
pub struct ConnectionAuth {
    cert: Option<CertIdentity>,
    env: Option<Environment>,
    current: Option<(String, VerifiedToken)>,
    team: Option<String>,
    adoptions: VecDeque<i64>,
}

impl ConnectionAuth {
    /// A connection, with the client certificate it presented (if any).
    pub fn new(cert: Option<CertIdentity>) -> Self {
        ConnectionAuth {
            cert,
            ..Default::default()
        }
    }

    /// The environment of the listener the connection arrived on. Keys restricted to the other
    /// environment are refused with BadEnvironmentKeyIdInToken; without it (the fuzzing entry
    /// point, unit tests) every key is accepted everywhere.
    pub fn in_environment(mut self, env: Environment) -> Self {
        self.env = Some(env);
        self
    }

    /// The client certificate identity.
    pub fn certificate(&self) -> Option<&CertIdentity> {
        self.cert.as_ref()
    }

    /// The team bound to this connection by its first valid token.
    pub fn team(&self) -> Option<&str> {
        self.team.as_deref()
    }

    /// Authenticates one request from its `authorization` header value.
    ///
    /// Rules: `bearer` matched case-insensitively; no header and no certificate: MissingProviderToken;
    /// the current token is re-checked for age only; a new token value is verified, its key must
    /// be allowed in the connection's environment (BadEnvironmentKeyIdInToken), it must be of the
    /// team the connection's first valid token bound (UnrelatedKeyIdInToken), and it is adopted at
    /// most `updates_per_window` times per 20 minutes (TooManyProviderTokenUpdates otherwise).
    pub fn authenticate(
        &mut self,
        keys: &KeyRing,
        authorization: Option<&[u8]>,
        now: i64,
        updates_per_window: usize,
    ) -> Result<Authenticated, AuthFailure> {
        let Some(value) = authorization else {
            return match self.cert {
                Some(_) => Ok(Authenticated::Certificate),
                None => Err(AuthFailure::new(
                    Reason::MissingProviderToken,
                    "no authorization header and no client certificate",
                )),
            };
        };
        let value = std::str::from_utf8(value)
            .map_err(|_| {
                AuthFailure::new(Reason::InvalidProviderToken, "authorization is not UTF-8")
            })?
            .trim();
        if value.is_empty() {
            return Err(AuthFailure::new(
                Reason::MissingProviderToken,
                "empty authorization",
            ));
        }
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthFailure::new(
                Reason::InvalidProviderToken,
                "authorization scheme is not bearer",
            ));
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthFailure::new(
                Reason::MissingProviderToken,
                "bearer without a token",
            ));
        }
        if let Some((current, verified)) = &self.current {
            if current == token {
                check_age(verified.iat, now)?;
                return Ok(Authenticated::Token {
                    token: verified.clone(),
                    first: false,
                });
            }
        }
        let verified = keys.verify(token, now)?;
        if let (Some(env), Some(key_env)) = (self.env, verified.key_environment) {
            if env != key_env {
                return Err(AuthFailure::new(
                    Reason::BadEnvironmentKeyIdInToken,
                    "the key is restricted to the other environment",
                ));
            }
        }
        if let Some(team) = &self.team {
            if *team != verified.team_id {
                return Err(AuthFailure::new(
                    Reason::UnrelatedKeyIdInToken,
                    "a key of another team than the connection's first token",
                ));
            }
        }
        while self
            .adoptions
            .front()
            .is_some_and(|t| *t <= now - TOKEN_UPDATE_WINDOW_SECS)
        {
            self.adoptions.pop_front();
        }
        if self.adoptions.len() >= updates_per_window.max(1) {
            return Err(AuthFailure::new(
                Reason::TooManyProviderTokenUpdates,
                "new token value within 20 minutes of the previous one",
            ));
        }
        let first = self.current.is_none();
        self.adoptions.push_back(now);
        self.team = Some(verified.team_id.clone());
        self.current = Some((token.to_owned(), verified.clone()));
        Ok(Authenticated::Token {
            token: verified,
            first,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{ProviderKey, SignatureEncoding};

    const NOW: i64 = 1_800_000_000;

    fn setup() -> (ProviderKey, KeyRing) {
        let key = crate::jwt::tests::test_key();
        let mut ring = KeyRing::new();
        ring.add_key(&key);
        (key, ring)
    }

    fn bearer(t: &str) -> Vec<u8> {
        format!("bearer {t}").into_bytes()
    }

    #[test]
    fn first_token_is_first_and_repeats_are_cached() {
        let (key, ring) = setup();
        let mut auth = ConnectionAuth::new(None);
        let t = key.sign(NOW, SignatureEncoding::Raw).unwrap();
        match auth.authenticate(&ring, Some(&bearer(&t)), NOW, 1).unwrap() {
            Authenticated::Token { first, .. } => assert!(first),
            other => panic!("{other:?}"),
        }
        match auth
            .authenticate(&ring, Some(&bearer(&t)), NOW + 5, 1)
            .unwrap()
        {
            Authenticated::Token { first, .. } => assert!(!first),
            other => panic!("{other:?}"),
        }
        // The cached token still expires.
        assert_eq!(
            auth.authenticate(&ring, Some(&bearer(&t)), NOW + 3601, 1)
                .unwrap_err()
                .reason,
            Reason::ExpiredProviderToken
        );
    }

    #[test]
    fn second_token_value_within_20_minutes_is_429_and_later_accepted() {
        let (key, ring) = setup();
        let mut auth = ConnectionAuth::new(None);
        let a = key.sign(NOW, SignatureEncoding::Raw).unwrap();
        let b = key.sign(NOW + 1, SignatureEncoding::Der).unwrap();
        auth.authenticate(&ring, Some(&bearer(&a)), NOW, 1).unwrap();
        assert_eq!(
            auth.authenticate(&ring, Some(&bearer(&b)), NOW + 60, 1)
                .unwrap_err()
                .reason,
            Reason::TooManyProviderTokenUpdates
        );
        // The rejected update did not replace the current token.
        assert!(auth
            .authenticate(&ring, Some(&bearer(&a)), NOW + 61, 1)
            .is_ok());
        assert!(auth
            .authenticate(&ring, Some(&bearer(&b)), NOW + 1200, 1)
            .is_ok());
        // A burst of 2 allows one extra update.
        let mut burst = ConnectionAuth::new(None);
        burst
            .authenticate(&ring, Some(&bearer(&a)), NOW, 2)
            .unwrap();
        burst
            .authenticate(&ring, Some(&bearer(&b)), NOW + 1, 2)
            .unwrap();
        let c = key.sign(NOW + 2, SignatureEncoding::Raw).unwrap();
        assert_eq!(
            burst
                .authenticate(&ring, Some(&bearer(&c)), NOW + 2, 2)
                .unwrap_err()
                .reason,
            Reason::TooManyProviderTokenUpdates
        );
    }

    #[test]
    fn scheme_case_missing_and_one_team_per_connection() {
        let (key, ring) = setup();
        let t = key.sign(NOW, SignatureEncoding::Raw).unwrap();
        let mut auth = ConnectionAuth::new(None);
        assert!(auth
            .authenticate(&ring, Some(format!("Bearer {t}").as_bytes()), NOW, 1)
            .is_ok());
        let mut auth = ConnectionAuth::new(None);
        assert_eq!(
            auth.authenticate(&ring, None, NOW, 1).unwrap_err().reason,
            Reason::MissingProviderToken
        );
        assert_eq!(
            auth.authenticate(&ring, Some(b"bearer "), NOW, 1)
                .unwrap_err()
                .reason,
            Reason::MissingProviderToken
        );
        assert_eq!(
            auth.authenticate(&ring, Some(format!("Basic {t}").as_bytes()), NOW, 1)
                .unwrap_err()
                .reason,
            Reason::InvalidProviderToken
        );
        assert_eq!(
            auth.authenticate(&ring, Some(b"bearer \xff"), NOW, 1)
                .unwrap_err()
                .reason,
            Reason::InvalidProviderToken
        );

        let mut two_teams = ring.clone();
        let other = ProviderKey::from_pkcs8_pem(
            "KEYID00002",
            "TEAMID0002",
            crate::fuzzing::FIXED_KEY_PEM.as_bytes(),
        )
        .unwrap();
        two_teams.add_key(&other);
        let mut auth = ConnectionAuth::new(None);
        auth.authenticate(&two_teams, Some(&bearer(&t)), NOW, 5)
            .unwrap();
        let o = other.sign(NOW, SignatureEncoding::Raw).unwrap();
        let err = auth
            .authenticate(&two_teams, Some(&bearer(&o)), NOW, 5)
            .unwrap_err();
        assert_eq!(
            err,
            AuthFailure::new(
                Reason::UnrelatedKeyIdInToken,
                "a key of another team than the connection's first token"
            )
        );
        // The refused token did not replace the bound one.
        assert!(auth
            .authenticate(&two_teams, Some(&bearer(&t)), NOW + 1, 5)
            .is_ok());
        // The other team's token is fine on a connection of its own.
        let mut fresh = ConnectionAuth::new(None);
        assert!(fresh
            .authenticate(&two_teams, Some(&bearer(&o)), NOW, 5)
            .is_ok());
        // A second key of the same team is related: adopted as an ordinary update.
        let sibling = ProviderKey::from_pkcs8_pem(
            "KEYID00003",
            "TEAMID0001",
            crate::fuzzing::FIXED_KEY_PEM.as_bytes(),
        )
        .unwrap();
        two_teams.add_key(&sibling);
        let s = sibling.sign(NOW, SignatureEncoding::Raw).unwrap();
        assert!(auth
            .authenticate(&two_teams, Some(&bearer(&s)), NOW + 2, 5)
            .is_ok());
    }

    #[test]
    fn keys_restricted_to_the_other_environment_are_refused() {
        let base = crate::jwt::tests::test_key();
        let production_only = ProviderKey::from_pkcs8_pem(
            "KEYIDPROD1",
            "TEAMID0001",
            crate::fuzzing::FIXED_KEY_PEM.as_bytes(),
        )
        .unwrap()
        .restricted_to(Some(Environment::Production));
        let mut ring = KeyRing::new();
        ring.add_key(&base);
        ring.add_key(&production_only);
        let p = production_only.sign(NOW, SignatureEncoding::Der).unwrap();
        let b = base.sign(NOW, SignatureEncoding::Raw).unwrap();

        let mut sandbox = ConnectionAuth::new(None).in_environment(Environment::Sandbox);
        assert_eq!(
            sandbox
                .authenticate(&ring, Some(&bearer(&p)), NOW, 5)
                .unwrap_err(),
            AuthFailure::new(
                Reason::BadEnvironmentKeyIdInToken,
                "the key is restricted to the other environment"
            )
        );
        // Nothing was adopted: an unrestricted key is still the connection's first token.
        match sandbox
            .authenticate(&ring, Some(&bearer(&b)), NOW, 5)
            .unwrap()
        {
            Authenticated::Token { first, .. } => assert!(first),
            other => panic!("{other:?}"),
        }
        // After a valid token, the refusal stays the environment's, not an update limit.
        assert_eq!(
            sandbox
                .authenticate(&ring, Some(&bearer(&p)), NOW + 1, 1)
                .unwrap_err()
                .reason,
            Reason::BadEnvironmentKeyIdInToken
        );

        let mut production = ConnectionAuth::new(None).in_environment(Environment::Production);
        assert!(production
            .authenticate(&ring, Some(&bearer(&p)), NOW, 5)
            .is_ok());
        // Without an environment (fuzzing), restrictions are not applied.
        assert!(ConnectionAuth::new(None)
            .authenticate(&ring, Some(&bearer(&p)), NOW, 5)
            .is_ok());
    }

    #[test]
    fn certificate_connections_need_no_header() {
        let cert = CertIdentity {
            uid: "com.example.app".into(),
            topics: vec!["com.example.app".into()],
            sandbox: true,
            production: false,
        };
        assert!(cert.allows(Environment::Sandbox));
        assert!(!cert.allows(Environment::Production));
        let (_, ring) = setup();
        let mut auth = ConnectionAuth::new(Some(cert));
        assert_eq!(
            auth.authenticate(&ring, None, NOW, 1).unwrap(),
            Authenticated::Certificate
        );
    }
}
