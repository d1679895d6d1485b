//! ES256 provider tokens (JWT): signing, as a provider does, and verification, as APNs does.
//!
//! Verification accepts both signature encodings seen from real clients: JOSE raw `r||s` (64 bytes)
//! and ASN.1 DER (Java's `SHA256withECDSA`, used by Pushy). Every other algorithm, `none` included,
//! is rejected.

use crate::Environment;
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// base64url as JWTs use it: no padding written, padding tolerated when read.
const B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// An `iat` more than this many seconds old gets 403 ExpiredProviderToken (Apple: one hour).
pub const TOKEN_LIFETIME_SECS: i64 = 3600;
/// An `iat` at most this many seconds in the future is tolerated as clock skew; later ones get
/// 403 InvalidProviderToken. Apple documents no figure; 60 s covers NTP-synced hosts.
pub const FUTURE_SKEW_SECS: i64 = 60;

/// How the ECDSA signature is encoded in the JWT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    /// JOSE: 64 bytes, `r || s` (RFC 7518).
    #[default]
    Raw,
    /// ASN.1 DER `SEQUENCE { r, s }`, as Java's `SHA256withECDSA` produces.
    Der,
}

/// Errors loading or using a signing key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PEM holds no PKCS#8 private key.
    #[error("no PKCS#8 private key in PEM")]
    NoPkcs8,
    /// The key is not a valid P-256 key.
    #[error("not a P-256 ECDSA key: {0}")]
    Rejected(String),
    /// Signing failed.
    #[error("signing failed")]
    Sign,
}

/// A provider's ES256 signing key (`AuthKey_<KEYID>.p8`) with its key id and team id.
pub struct ProviderKey {
    /// The 10-character key id (`kid`).
    pub key_id: String,
    /// The 10-character team id (`iss`).
    pub team_id: String,
    /// The one environment this key may be used in (`None`: both). Apple's keys are
    /// sandbox-only, production-only, or for both environments.
    pub environment: Option<Environment>,
    raw_signer: EcdsaKeyPair,
    der_signer: EcdsaKeyPair,
}

impl std::fmt::Debug for ProviderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderKey")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .field("environment", &self.environment)
            .finish()
    }
}

impl ProviderKey {
    /// Loads a key from PKCS#8 DER bytes.
    pub fn from_pkcs8_der(key_id: &str, team_id: &str, der: &[u8]) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let raw_signer =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                .map_err(|e| KeyError::Rejected(e.to_string()))?;
        let der_signer =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der, &rng)
                .map_err(|e| KeyError::Rejected(e.to_string()))?;
        Ok(ProviderKey {
            key_id: key_id.to_owned(),
            team_id: team_id.to_owned(),
            environment: None,
            raw_signer,
            der_signer,
        })
    }

    /// Restricts the key to one environment (`None`: both).
    pub fn restricted_to(mut self, environment: Option<Environment>) -> Self {
        self.environment = environment;
        self
    }

    /// Loads a key from a `.p8` file's text (PKCS#8 PEM).
    pub fn from_pkcs8_pem(key_id: &str, team_id: &str, pem: &[u8]) -> Result<Self, KeyError> {
        let mut reader = pem;
        for item in rustls_pemfile::read_all(&mut reader) {
            if let Ok(rustls_pemfile::Item::Pkcs8Key(key)) = item {
                return Self::from_pkcs8_der(key_id, team_id, key.secret_pkcs8_der());
            }
        }
        Err(KeyError::NoPkcs8)
    }

    /// The uncompressed public point, what the verifier needs.
    pub fn public_key(&self) -> Vec<u8> {
        self.raw_signer.public_key().as_ref().to_vec()
    }

    /// A signed provider token with this key's `kid` and `iss`.
    pub fn sign(&self, iat: i64, encoding: SignatureEncoding) -> Result<String, KeyError> {
        let header = serde_json::json!({ "alg": "ES256", "kid": self.key_id });
        let claims = serde_json::json!({ "iss": self.team_id, "iat": iat });
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let signer = match encoding {
            SignatureEncoding::Raw => &self.raw_signer,
            SignatureEncoding::Der => &self.der_signer,
        };
        let sig = signer
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| KeyError::Sign)?;
        Ok(format!("{input}.{}", B64.encode(sig.as_ref())))
    }
}

/// Builds a JWT with any header, claims and signature bytes: for tests of what must be rejected.
pub fn assemble_unsigned(
    header: &serde_json::Value,
    claims: &serde_json::Value,
    sig: &[u8],
) -> String {
    format!(
        "{}.{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string()),
        B64.encode(sig)
    )
}

/// Why APNs refused a provider token. Each maps to one APNs reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// 403 InvalidProviderToken, with what was wrong (for the push log, not sent to the client).
    #[error("InvalidProviderToken: {0}")]
    Invalid(&'static str),
    /// 403 ExpiredProviderToken: `iat` older than one hour.
    #[error("ExpiredProviderToken: iat {iat} is {age} s old")]
    Expired {
        /// The token's `iat`.
        iat: i64,
        /// Its age in seconds.
        age: i64,
    },
}

impl TokenRejection {
    /// The APNs reason sent to the client.
    pub fn reason(&self) -> crate::Reason {
        match self {
            TokenRejection::Invalid(_) => crate::Reason::InvalidProviderToken,
            TokenRejection::Expired { .. } => crate::Reason::ExpiredProviderToken,
        }
    }
}

/// The claims of a verified token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifiedToken {
    /// `kid`.
    pub key_id: String,
    /// `iss`.
    pub team_id: String,
    /// `iat`.
    pub iat: i64,
    /// The environment the signing key is restricted to (`None`: both).
    #[serde(skip)]
    pub key_environment: Option<Environment>,
}

#[derive(Deserialize)]
struct Header {
    alg: Option<serde_json::Value>,
    kid: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<serde_json::Value>,
    iat: Option<serde_json::Value>,
}

/// What APNs knows about one key.
#[derive(Clone, Debug)]
struct KnownKey {
    team_id: String,
    environment: Option<Environment>,
    public_key: Vec<u8>,
}

/// The public keys APNs knows: key id -> team id, environment restriction, public point.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    keys: HashMap<String, KnownKey>,
}

impl KeyRing {
    /// An empty key ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a verification key for `key_id` of `team_id`, usable in both environments.
    pub fn add(&mut self, key_id: &str, team_id: &str, public_key: Vec<u8>) {
        self.add_restricted(key_id, team_id, None, public_key);
    }

    /// Adds a verification key usable only in `environment` (`None`: both).
    pub fn add_restricted(
        &mut self,
        key_id: &str,
        team_id: &str,
        environment: Option<Environment>,
        public_key: Vec<u8>,
    ) {
        self.keys.insert(
            key_id.to_owned(),
            KnownKey {
                team_id: team_id.to_owned(),
                environment,
                public_key,
            },
        );
    }

    /// Adds the public half of a provider key, with its environment restriction.
    pub fn add_key(&mut self, key: &ProviderKey) {
        self.add_restricted(&key.key_id, &key.team_id, key.environment, key.public_key());
    }

    /// Verifies a token's structure and signature, but not its age.
    pub fn verify_signature(&self, token: &str) -> Result<VerifiedToken, TokenRejection> {
        use TokenRejection::Invalid;
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Invalid("not three dot-separated parts"));
        };
        let header: Header = B64
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(Invalid("header is not base64url JSON"))?;
        match header.alg.as_ref().and_then(|a| a.as_str()) {
            Some("ES256") => {}
            Some(_) => return Err(Invalid("alg is not ES256")),
            None => return Err(Invalid("no alg")),
        }
        let kid = header
            .kid
            .as_ref()
            .and_then(|k| k.as_str())
            .ok_or(Invalid("no kid"))?;
        let claims: Claims = B64
            .decode(c)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(Invalid("claims are not base64url JSON"))?;
        let iss = claims
            .iss
            .as_ref()
            .and_then(|i| i.as_str())
            .ok_or(Invalid("no iss"))?;
        let iat = claims
            .iat
            .as_ref()
            .and_then(|i| i.as_i64())
            .ok_or(Invalid("iat is not an integer"))?;
        let known = self.keys.get(kid).ok_or(Invalid("unknown kid"))?;
        if known.team_id != iss {
            return Err(Invalid("kid is not a key of iss"));
        }
        let sig = B64
            .decode(s)
            .map_err(|_| Invalid("signature is not base64url"))?;
        let alg: &dyn signature::VerificationAlgorithm = if sig.len() == 64 {
            &signature::ECDSA_P256_SHA256_FIXED
        } else {
            &signature::ECDSA_P256_SHA256_ASN1
        };
        let signing_input = &token[..h.len() + 1 + c.len()];
        UnparsedPublicKey::new(alg, &known.public_key)
            .verify(signing_input.as_bytes(), &sig)
            .map_err(|_| Invalid("bad signature"))?;
        Ok(VerifiedToken {
            key_id: kid.to_owned(),
            team_id: iss.to_owned(),
            iat,
            key_environment: known.environment,
        })
    }

    /// Verifies a token fully at `now` (UNIX seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<VerifiedToken, TokenRejection> {
        let verified = self.verify_signature(token)?;
        check_age(verified.iat, now)?;
        Ok(verified)
    }
}

/// The age rule: older than [`TOKEN_LIFETIME_SECS`] is expired, beyond [`FUTURE_SKEW_SECS`] in the
/// future is invalid.
pub fn check_age(iat: i64, now: i64) -> Result<(), TokenRejection> {
    let age = now.saturating_sub(iat);
    if age > TOKEN_LIFETIME_SECS {
        return Err(TokenRejection::Expired { iat, age });
    }
    if age < -FUTURE_SKEW_SECS {
        return Err(TokenRejection::Invalid("iat is in the future"));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fixed P-256 key (PKCS#8 PEM) for unit tests and the fuzzing entry point.
    pub(crate) fn test_key() -> ProviderKey {
        ProviderKey::from_pkcs8_pem(
            "KEYID00001",
            "TEAMID0001",
            crate::fuzzing::FIXED_KEY_PEM.as_bytes(),
        )
        .unwrap()
    }

    fn ring_with(key: &ProviderKey) -> KeyRing {
        let mut ring = KeyRing::new();
        ring.add_key(key);
        ring
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn raw_and_der_signatures_are_both_accepted() {
        let key = test_key();
        let ring = ring_with(&key);
        let raw = key.sign(NOW, SignatureEncoding::Raw).unwrap();
        let der = key.sign(NOW, SignatureEncoding::Der).unwrap();
        assert_eq!(
            B64.decode(raw.rsplit('.').next().unwrap()).unwrap().len(),
            64
        );
        assert_eq!(
            B64.decode(der.rsplit('.').next().unwrap()).unwrap()[0],
            0x30
        );
        for t in [raw, der] {
            let v = ring.verify(&t, NOW).unwrap();
            assert_eq!(v.key_id, "KEYID00001");
            assert_eq!(v.team_id, "TEAMID0001");
        }
    }

    #[test]
    fn other_algorithms_and_bad_signatures_are_invalid() {
        let key = test_key();
        let ring = ring_with(&key);
        let claims = serde_json::json!({"iss": "TEAMID0001", "iat": NOW});
        let none = assemble_unsigned(
            &serde_json::json!({"alg": "none", "kid": "KEYID00001"}),
            &claims,
            b"",
        );
        assert_eq!(
            ring.verify(&none, NOW),
            Err(TokenRejection::Invalid("alg is not ES256"))
        );
        let hs = assemble_unsigned(
            &serde_json::json!({"alg": "HS256", "kid": "KEYID00001"}),
            &claims,
            &[7; 32],
        );
        assert_eq!(
            ring.verify(&hs, NOW),
            Err(TokenRejection::Invalid("alg is not ES256"))
        );
        let forged = assemble_unsigned(
            &serde_json::json!({"alg": "ES256", "kid": "KEYID00001"}),
            &claims,
            &[1; 64],
        );
        assert_eq!(
            ring.verify(&forged, NOW),
            Err(TokenRejection::Invalid("bad signature"))
        );
        // A valid signature over other claims does not verify these.
        let good = key.sign(NOW, SignatureEncoding::Raw).unwrap();
        let sig = good.rsplit('.').next().unwrap();
        let swapped = format!(
            "{}.{}",
            assemble_unsigned(
                &serde_json::json!({"alg": "ES256", "kid": "KEYID00001"}),
                &serde_json::json!({"iss": "TEAMID0001", "iat": NOW + 1}),
                b""
            )
            .trim_end_matches('.'),
            sig
        );
        assert_eq!(
            ring.verify(&swapped, NOW),
            Err(TokenRejection::Invalid("bad signature"))
        );
        assert_eq!(
            ring.verify("a.b", NOW),
            Err(TokenRejection::Invalid("not three dot-separated parts"))
        );
        assert_eq!(
            ring.verify("", NOW),
            Err(TokenRejection::Invalid("not three dot-separated parts"))
        );
        assert!(ring.verify("!!.??.**", NOW).is_err());
    }

    #[test]
    fn kid_must_belong_to_iss() {
        let key = test_key();
        let ring = ring_with(&key);
        let other_team = ProviderKey::from_pkcs8_pem(
            "KEYID00001",
            "OTHERTEAM1",
            crate::fuzzing::FIXED_KEY_PEM.as_bytes(),
        )
        .unwrap();
        let t = other_team.sign(NOW, SignatureEncoding::Raw).unwrap();
        assert_eq!(
            ring.verify(&t, NOW),
            Err(TokenRejection::Invalid("kid is not a key of iss"))
        );
        let unknown = ProviderKey::from_pkcs8_pem(
            "UNKNOWNKID",
            "TEAMID0001",
            crate::fuzzing::FIXED_KEY_PEM.as_bytes(),
        )
        .unwrap();
        let t = unknown.sign(NOW, SignatureEncoding::Raw).unwrap();
        assert_eq!(
            ring.verify(&t, NOW),
            Err(TokenRejection::Invalid("unknown kid"))
        );
    }

    #[test]
    fn age_rules() {
        let key = test_key();
        let ring = ring_with(&key);
        let old = key.sign(NOW - 3601, SignatureEncoding::Raw).unwrap();
        assert_eq!(
            ring.verify(&old, NOW),
            Err(TokenRejection::Expired {
                iat: NOW - 3601,
                age: 3601
            })
        );
        assert_eq!(
            ring.verify(&old, NOW).unwrap_err().reason(),
            crate::Reason::ExpiredProviderToken
        );
        let edge = key.sign(NOW - 3600, SignatureEncoding::Raw).unwrap();
        assert!(ring.verify(&edge, NOW).is_ok());
        let future = key.sign(NOW + 61, SignatureEncoding::Raw).unwrap();
        assert_eq!(
            ring.verify(&future, NOW),
            Err(TokenRejection::Invalid("iat is in the future"))
        );
        let skewed = key.sign(NOW + 60, SignatureEncoding::Raw).unwrap();
        assert!(ring.verify(&skewed, NOW).is_ok());
        let string_iat = assemble_unsigned(
            &serde_json::json!({"alg": "ES256", "kid": "KEYID00001"}),
            &serde_json::json!({"iss": "TEAMID0001", "iat": "1"}),
            &[0; 64],
        );
        assert_eq!(
            ring.verify(&string_iat, NOW),
            Err(TokenRejection::Invalid("iat is not an integer"))
        );
    }
}
