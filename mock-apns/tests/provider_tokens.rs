//! Provider tokens real clients send: ES256 with a raw r||s signature (JOSE, a2/aioapns) and with
//! a DER signature (Java's SHA256withECDSA, Pushy), both accepted; `Bearer` in either case; and
//! the tokens `mock-apns token` prints really use the encoding asked for.

mod support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use support::cases;
use support::clients::{curl, ClientAuth, PushRequest};
use support::jwt::{self, Signature};
use support::server::{fresh_device_token, Env, MockServer};

fn signature_bytes(token: &str) -> Vec<u8> {
    let sig = token.rsplit('.').next().expect("JWT");
    URL_SAFE_NO_PAD
        .decode(sig)
        .unwrap_or_else(|e| panic!("signature of {token} is not base64url: {e}"))
}

fn assert_encoding(token: &str, encoding: Signature) {
    let sig = signature_bytes(token);
    match encoding {
        Signature::Raw => assert_eq!(
            sig.len(),
            64,
            "raw ES256 signature must be 64 bytes: {token}"
        ),
        Signature::Der => {
            assert_eq!(sig[0], 0x30, "DER signature must be a SEQUENCE: {token}");
            assert_eq!(sig[1] as usize, sig.len() - 2, "DER length byte: {token}");
            assert!(
                (68..=72).contains(&sig.len()),
                "DER ES256 signature is 68-72 bytes: {token}"
            );
        }
    }
}

/// Sends one push per token, each on its own connection, and returns the statuses.
fn push_with(server: &MockServer, authorizations: &[String]) -> Vec<(u16, String)> {
    let device = fresh_device_token();
    server.register_device(
        &device,
        std::slice::from_ref(&server.manifest.bundle_id),
        Env::Sandbox,
    );
    authorizations
        .iter()
        .map(|authorization| {
            let request = PushRequest {
                device_token: device.clone(),
                headers: vec![
                    ("apns-topic".into(), server.manifest.bundle_id.clone()),
                    ("authorization".into(), authorization.clone()),
                ],
                body: cases::payload_of_size(100),
                bearer: None,
            };
            let reply = curl(server, Env::Sandbox, &ClientAuth::Token, &[request]).remove(0);
            (reply.status, reply.body)
        })
        .collect()
}

#[test]
fn raw_and_der_signed_tokens_are_both_accepted() {
    let server = MockServer::start(&[]);
    let m = &server.manifest;
    let key = jwt::read_p8(&m.key_file);
    let raw = jwt::es256(&key, &m.key_id, &m.team_id, jwt::now(), Signature::Raw);
    let der = jwt::es256(&key, &m.key_id, &m.team_id, jwt::now(), Signature::Der);
    assert_encoding(&raw, Signature::Raw);
    assert_encoding(&der, Signature::Der);
    let answers = push_with(&server, &[format!("bearer {raw}"), format!("bearer {der}")]);
    assert_eq!(answers, vec![(200, String::new()), (200, String::new())]);
    // The same tokens with a flipped signature bit are refused: the signature is really checked.
    let answers = push_with(
        &server,
        &[
            format!("bearer {}", jwt::tampered(&raw)),
            format!("bearer {}", jwt::tampered(&der)),
        ],
    );
    let refused = (403, r#"{"reason":"InvalidProviderToken"}"#.to_string());
    assert_eq!(answers, vec![refused.clone(), refused]);
}

#[test]
fn tokens_from_the_cli_use_the_requested_encoding_and_are_accepted() {
    let server = MockServer::start(&[]);
    let raw = server.cli_token(&["--signature", "raw"]);
    let der = server.cli_token(&["--signature", "der"]);
    assert_encoding(&raw, Signature::Raw);
    assert_encoding(&der, Signature::Der);
    let answers = push_with(&server, &[format!("bearer {raw}"), format!("bearer {der}")]);
    assert_eq!(answers, vec![(200, String::new()), (200, String::new())]);
}

#[test]
fn bearer_scheme_is_case_insensitive_like_apns() {
    let server = MockServer::start(&[]);
    let token = server.valid_jwt();
    let answers = push_with(
        &server,
        &[format!("Bearer {token}"), format!("BEARER {token}")],
    );
    assert_eq!(answers, vec![(200, String::new()), (200, String::new())]);
}

#[test]
fn cli_token_with_an_old_iat_is_expired() {
    let server = MockServer::start(&[]);
    let old = (jwt::now() - 3700).to_string();
    let token = server.cli_token(&["--iat", &old]);
    let answers = push_with(&server, &[format!("bearer {token}")]);
    assert_eq!(
        answers,
        vec![(403, r#"{"reason":"ExpiredProviderToken"}"#.to_string())]
    );
}
