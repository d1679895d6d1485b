//! SASL client mechanisms: SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802 / RFC 7677) and PLAIN.
//!
//! Sans-IO: a mechanism turns server challenges into responses. Channel binding is not used
//! (GS2 header `n,,`): Prosody 0.12 only offers `-PLUS` with `tls-unique`, undefined on TLS 1.3.

use base64::Engine as _;
use ring::{digest, hmac, pbkdf2};
use std::num::NonZeroU32;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A SASL mechanism this crate speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// SCRAM-SHA-256 (RFC 7677).
    ScramSha256,
    /// SCRAM-SHA-1 (RFC 5802).
    ScramSha1,
    /// PLAIN (RFC 4616), only over TLS.
    Plain,
}

impl Mechanism {
    /// The IANA name, as in `<mechanism>`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::Plain => "PLAIN",
        }
    }

    /// The mechanism with that name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Mechanism::ScramSha256,
            Mechanism::ScramSha1,
            Mechanism::Plain,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }

    /// The client's preference order, strongest first.
    pub const PREFERENCE: [Mechanism; 3] = [
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::Plain,
    ];
}

/// A SASL exchange that went wrong on the client side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The server's message did not parse.
    #[error("malformed server message {message:?}: {reason}")]
    Malformed { message: String, reason: String },
    /// The server's nonce does not extend ours.
    #[error("server nonce does not start with the client nonce")]
    NonceMismatch,
    /// The server signature did not verify: the server does not know the password.
    #[error("server signature mismatch")]
    BadServerSignature,
    /// The server reported an error in server-final.
    #[error("server error: {0}")]
    Server(String),
    /// Unusable parameters (iteration count 0).
    #[error("bad parameter: {0}")]
    BadParameter(String),
}

/// The PLAIN initial response (`\0user\0password`).
pub(crate) fn plain_initial(username: &str, password: &str) -> Vec<u8> {
    format!("\0{username}\0{password}").into_bytes()
}

/// Client state of one SCRAM exchange.
#[derive(Debug, Clone)]
pub(crate) struct Scram {
    alg: ScramAlg,
    password: String,
    client_nonce: String,
    client_first_bare: String,
    server_signature: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy)]
enum ScramAlg {
    Sha1,
    Sha256,
}

impl ScramAlg {
    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramAlg::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            ScramAlg::Sha256 => hmac::HMAC_SHA256,
        }
    }
    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramAlg::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            ScramAlg::Sha256 => &digest::SHA256,
        }
    }
    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramAlg::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
            ScramAlg::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
        }
    }
    fn len(self) -> usize {
        self.digest().output_len()
    }
}

fn saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

impl Scram {
    /// Starts SCRAM for `mechanism` (must be a SCRAM one) with a random nonce.
    pub(crate) fn new(
        mechanism: Mechanism,
        username: &str,
        password: &str,
    ) -> Result<Self, SaslError> {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        Self::with_nonce(mechanism, username, password, &nonce)
    }

    /// Starts SCRAM with a given client nonce (for the RFC test vectors).
    pub(crate) fn with_nonce(
        mechanism: Mechanism,
        username: &str,
        password: &str,
        nonce: &str,
    ) -> Result<Self, SaslError> {
        let alg = match mechanism {
            Mechanism::ScramSha1 => ScramAlg::Sha1,
            Mechanism::ScramSha256 => ScramAlg::Sha256,
            Mechanism::Plain => {
                return Err(SaslError::BadParameter("PLAIN is not SCRAM".into()));
            }
        };
        Ok(Scram {
            alg,
            password: password.into(),
            client_nonce: nonce.into(),
            client_first_bare: format!("n={},r={}", saslname(username), nonce),
            server_signature: None,
        })
    }

    /// The client-first message (GS2 header `n,,` + bare).
    pub(crate) fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Consumes server-first, returns client-final.
    pub(crate) fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, SaslError> {
        let sf = std::str::from_utf8(server_first).map_err(|_| SaslError::Malformed {
            message: String::from_utf8_lossy(server_first).into(),
            reason: "not UTF-8".into(),
        })?;
        let malformed = |reason: &str| SaslError::Malformed {
            message: sf.to_string(),
            reason: reason.to_string(),
        };
        let (mut nonce, mut salt, mut iters) = (None, None, None);
        for part in sf.split(',') {
            match part.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => {
                    salt = Some(B64.decode(v).map_err(|_| malformed("salt is not base64"))?)
                }
                Some(("i", v)) => {
                    iters = Some(
                        v.parse::<u32>()
                            .map_err(|_| malformed("bad iteration count"))?,
                    )
                }
                Some(("m", _)) => return Err(malformed("mandatory extension not supported")),
                _ => {}
            }
        }
        let nonce = nonce.ok_or_else(|| malformed("no nonce"))?;
        let salt = salt.ok_or_else(|| malformed("no salt"))?;
        let iters = NonZeroU32::new(iters.ok_or_else(|| malformed("no iteration count"))?)
            .ok_or_else(|| SaslError::BadParameter("iteration count 0".into()))?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(SaslError::NonceMismatch);
        }
        let n = self.alg.len();
        let mut salted = vec![0u8; n];
        pbkdf2::derive(
            self.alg.pbkdf2(),
            iters,
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let salted_key = hmac::Key::new(self.alg.hmac(), &salted);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        let stored_key = digest::digest(self.alg.digest(), client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{},{}", self.client_first_bare, sf, without_proof);
        let client_sig = hmac::sign(
            &hmac::Key::new(self.alg.hmac(), stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(client_sig.as_ref())
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac::sign(&salted_key, b"Server Key");
        let server_sig = hmac::sign(
            &hmac::Key::new(self.alg.hmac(), server_key.as_ref()),
            auth_message.as_bytes(),
        );
        self.server_signature = Some(server_sig.as_ref().to_vec());
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Verifies server-final (the `<success>` payload).
    pub(crate) fn verify_server_final(&self, server_final: &[u8]) -> Result<(), SaslError> {
        let sf = String::from_utf8_lossy(server_final);
        if let Some(e) = sf.strip_prefix("e=") {
            return Err(SaslError::Server(e.to_string()));
        }
        let v = sf.strip_prefix("v=").ok_or_else(|| SaslError::Malformed {
            message: sf.to_string(),
            reason: "no verifier".into(),
        })?;
        let got = B64.decode(v.trim()).map_err(|_| SaslError::Malformed {
            message: sf.to_string(),
            reason: "verifier is not base64".into(),
        })?;
        match &self.server_signature {
            Some(expected) if *expected == got => Ok(()),
            _ => Err(SaslError::BadServerSignature),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5802_scram_sha1_vector() {
        let mut s = Scram::with_nonce(
            Mechanism::ScramSha1,
            "user",
            "pencil",
            "fyko+d2lbbFgONRv9qkxdawL",
        )
        .unwrap();
        assert_eq!(s.client_first(), b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        let cf = s
            .client_final(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
            .unwrap();
        assert_eq!(
            String::from_utf8(cf).unwrap(),
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        s.verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
            .unwrap();
        assert_eq!(
            s.verify_server_final(b"v=AAAApqV8S7suAoZWja4dJRkFsKQ="),
            Err(SaslError::BadServerSignature)
        );
    }

    #[test]
    fn rfc7677_scram_sha256_vector() {
        let mut s = Scram::with_nonce(
            Mechanism::ScramSha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO",
        )
        .unwrap();
        let cf = s
            .client_final(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(cf).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    #[test]
    fn bad_server_first_is_an_error() {
        let mk = || Scram::with_nonce(Mechanism::ScramSha1, "u,=x", "p", "abc").unwrap();
        assert_eq!(mk().client_first(), b"n,,n=u=2C=3Dx,r=abc");
        for bad in [
            &b"r=zzz,s=QSXCR+Q6sek8bf92,i=4096"[..],
            b"r=abc,s=QSXCR+Q6sek8bf92,i=4096",
            b"r=abcd,s=!!,i=4096",
            b"r=abcd,s=QSXCR+Q6sek8bf92,i=0",
            b"r=abcd,s=QSXCR+Q6sek8bf92,i=x",
            b"r=abcd,s=QSXCR+Q6sek8bf92",
            b"m=ext,r=abcd,s=QSXCR+Q6sek8bf92,i=1",
            b"\xff",
        ] {
            assert!(
                mk().client_final(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(
            mk().verify_server_final(b"e=invalid-proof"),
            Err(SaslError::Server(_))
        ));
        assert!(mk()
            .verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
            .is_err());
    }

    #[test]
    fn plain_and_names() {
        assert_eq!(plain_initial("a", "b"), b"\0a\0b");
        for m in Mechanism::PREFERENCE {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
        }
    }
}
