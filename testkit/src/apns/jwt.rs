//! Provider tokens built by hand, so the tests control every byte: ES256 with a raw or DER
//! signature, unsecured (`alg: none`), HS256, and garbage.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// How the ES256 signature is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signature {
    /// JOSE: r || s, 64 bytes.
    Raw,
    /// ASN.1 DER, as Java's SHA256withECDSA (Pushy) produces.
    Der,
}

/// Seconds since the UNIX epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Milliseconds since the UNIX epoch.
pub use timeline::now_ms;

/// The PKCS#8 DER inside a `.p8` file.
pub fn read_p8(path: &Path) -> Vec<u8> {
    let pem = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let key = rustls_pemfile::private_key(&mut pem.as_slice())
        .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
        .unwrap_or_else(|| panic!("{} holds no private key", path.display()));
    key.secret_der().to_vec()
}

/// A fresh P-256 key nobody registered with the server, as PKCS#8 DER.
pub fn stranger_key() -> Vec<u8> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .expect("generate key")
        .as_ref()
        .to_vec()
}

/// Base64url without padding (JWT encoding).
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn signing_input(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

fn claims(iss: &str, iat: i64) -> serde_json::Value {
    serde_json::json!({ "iss": iss, "iat": iat })
}

/// An ES256 provider token signed with `pkcs8` (DER), with the given signature encoding.
pub fn es256(pkcs8: &[u8], kid: &str, iss: &str, iat: i64, encoding: Signature) -> String {
    let header = serde_json::json!({ "alg": "ES256", "kid": kid });
    es256_with_header(pkcs8, &header, &claims(iss, iat), encoding)
}

/// ES256 over arbitrary header and claims (for tokens with extra or missing fields).
pub fn es256_with_header(
    pkcs8: &[u8],
    header: &serde_json::Value,
    claims: &serde_json::Value,
    encoding: Signature,
) -> String {
    let alg = match encoding {
        Signature::Raw => &ECDSA_P256_SHA256_FIXED_SIGNING,
        Signature::Der => &ECDSA_P256_SHA256_ASN1_SIGNING,
    };
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8, &rng).expect("a P-256 PKCS#8 key");
    let input = signing_input(header, claims);
    let sig = key.sign(&rng, input.as_bytes()).expect("sign");
    let sig = sig.as_ref();
    match encoding {
        Signature::Raw => assert_eq!(sig.len(), 64, "raw ES256 signatures are 64 bytes"),
        Signature::Der => assert_eq!(sig[0], 0x30, "DER signatures start with SEQUENCE"),
    }
    format!("{input}.{}", b64(sig))
}

/// An unsecured JWT (`alg: none`, empty signature).
pub fn alg_none(kid: &str, iss: &str, iat: i64) -> String {
    let header = serde_json::json!({ "alg": "none", "kid": kid });
    format!("{}.", signing_input(&header, &claims(iss, iat)))
}

/// An HS256 JWT with a shared secret (APNs must refuse anything but ES256).
pub fn hs256(kid: &str, iss: &str, iat: i64, secret: &[u8]) -> String {
    let header = serde_json::json!({ "alg": "HS256", "kid": kid });
    let input = signing_input(&header, &claims(iss, iat));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// The token with one signature byte flipped.
pub fn tampered(token: &str) -> String {
    let (input, sig) = token.rsplit_once('.').expect("a JWT has dots");
    let mut sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .expect("b64");
    let last = sig.len() - 1;
    sig[last] ^= 0x01;
    format!("{input}.{}", b64(&sig))
}
