//! APNs provider tokens: ES256 JWTs signed with the team's `.p8` key, reused for 50 minutes.
//!
//! Header `{"alg":"ES256","kid":"<key id>"}`, claims `{"iss":"<team id>","iat":<unix seconds>}`,
//! signature JOSE-style raw `r||s` (ring's `ECDSA_P256_SHA256_FIXED_SIGNING`). APNs rejects tokens
//! older than an hour and refreshing more than once per 20 minutes, so a token is reused for 50
//! minutes (Pushy and sideshow/apns2 do the same), and refreshed early only after
//! `ExpiredProviderToken`.

use super::ApnsError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a token is reused.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(50 * 60);

/// Signs and caches provider tokens for one key.
pub struct TokenSigner {
    key: EcdsaKeyPair,
    key_id: String,
    team_id: String,
    rng: SystemRandom,
    cached: Mutex<Option<(SystemTime, String)>>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A signer from the PEM text of a `.p8` file (PKCS#8 `PRIVATE KEY`).
    pub fn from_p8_pem(
        pem: &[u8],
        key_id: impl Into<String>,
        team_id: impl Into<String>,
    ) -> Result<Self, ApnsError> {
        let der = rustls_pemfile::private_key(&mut &pem[..])
            .map_err(|e| ApnsError::InvalidKey(format!("unreadable PEM: {e}")))?
            .ok_or_else(|| ApnsError::InvalidKey("no private key in the PEM".into()))?;
        let rustls::pki_types::PrivateKeyDer::Pkcs8(pkcs8) = der else {
            return Err(ApnsError::InvalidKey(
                "the .p8 key must be PKCS#8 (BEGIN PRIVATE KEY)".into(),
            ));
        };
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|e| ApnsError::InvalidKey(format!("not a P-256 ECDSA key: {e}")))?;
        Ok(TokenSigner {
            key,
            key_id: key_id.into(),
            team_id: team_id.into(),
            rng,
            cached: Mutex::new(None),
        })
    }

    /// A signer from a `.p8` file.
    pub fn from_p8_file(
        path: &Path,
        key_id: impl Into<String>,
        team_id: impl Into<String>,
    ) -> Result<Self, ApnsError> {
        let pem = std::fs::read(path).map_err(|source| ApnsError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        Self::from_p8_pem(&pem, key_id, team_id)
    }

    /// The key id (`kid`).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The team id (`iss`).
    pub fn team_id(&self) -> &str {
        &self.team_id
    }

    /// The public key as an uncompressed P-256 point (for verifying tokens).
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    /// The current token: the cached one while younger than [`TOKEN_LIFETIME`] at `now`, else a
    /// new one issued at `now`.
    pub fn token_at(&self, now: SystemTime) -> Result<String, ApnsError> {
        let mut cached = timeline::lock(&self.cached);
        if let Some((issued, token)) = cached.as_ref() {
            let age = now.duration_since(*issued).unwrap_or(Duration::MAX);
            if age < TOKEN_LIFETIME {
                return Ok(token.clone());
            }
        }
        let token = self.sign(now)?;
        *cached = Some((now, token.clone()));
        Ok(token)
    }

    /// The current token at the system time.
    pub fn token(&self) -> Result<String, ApnsError> {
        self.token_at(SystemTime::now())
    }

    /// Drops the cached token (after APNs answered `ExpiredProviderToken`).
    pub fn invalidate(&self) {
        *timeline::lock(&self.cached) = None;
    }

    fn sign(&self, now: SystemTime) -> Result<String, ApnsError> {
        let iat = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let header = serde_json::json!({"alg": "ES256", "kid": self.key_id});
        let claims = serde_json::json!({"iss": self.team_id, "iat": iat});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| ApnsError::InvalidKey("ECDSA signing failed".into()))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    fn signer() -> TokenSigner {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        TokenSigner::from_p8_pem(key.serialize_pem().as_bytes(), "ABC123DEFG", "TEAM012345")
            .unwrap()
    }

    fn decode(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn the_token_is_an_es256_jwt_whose_signature_verifies() {
        let s = signer();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = s.token_at(now).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            decode(parts[0]),
            serde_json::json!({"alg":"ES256","kid":"ABC123DEFG"})
        );
        assert_eq!(
            decode(parts[1]),
            serde_json::json!({"iss":"TEAM012345","iat":1_700_000_000u64})
        );
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        assert_eq!(sig.len(), 64, "raw r||s, not DER");
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, s.public_key());
        let input = format!("{}.{}", parts[0], parts[1]);
        public
            .verify(input.as_bytes(), &sig)
            .expect("signature verifies");
        // A tampered claim does not verify: the check can fail.
        let tampered = format!(
            "{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(r#"{"iss":"EVIL"}"#)
        );
        assert!(public.verify(tampered.as_bytes(), &sig).is_err());
    }

    #[test]
    fn the_token_is_reused_for_50_minutes_then_renewed() {
        let s = signer();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let first = s.token_at(t0).unwrap();
        assert_eq!(
            s.token_at(t0 + Duration::from_secs(49 * 60 + 59)).unwrap(),
            first
        );
        let renewed = s.token_at(t0 + TOKEN_LIFETIME).unwrap();
        assert_ne!(renewed, first);
        let claims = decode(renewed.split('.').nth(1).unwrap());
        assert_eq!(claims["iat"], 1_700_000_000u64 + 3000);
        s.invalidate();
        assert_ne!(s.token_at(t0 + TOKEN_LIFETIME).unwrap(), renewed);
    }

    #[test]
    fn bad_keys_are_errors() {
        assert!(matches!(
            TokenSigner::from_p8_pem(b"garbage", "k", "t"),
            Err(ApnsError::InvalidKey(_))
        ));
        let rsa_like = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            TokenSigner::from_p8_pem(rsa_like.as_bytes(), "k", "t"),
            Err(ApnsError::InvalidKey(_))
        ));
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        assert!(matches!(
            TokenSigner::from_p8_pem(ed.serialize_pem().as_bytes(), "k", "t"),
            Err(ApnsError::InvalidKey(_))
        ));
        assert!(matches!(
            TokenSigner::from_p8_file(Path::new("/nonexistent/key.p8"), "k", "t"),
            Err(ApnsError::ReadFile { .. })
        ));
    }
}
