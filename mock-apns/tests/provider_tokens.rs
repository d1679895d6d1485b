//! Provider tokens real clients send: ES256 with a raw r||s signature (JOSE, a2/aioapns) and with
//! a DER signature (Java's SHA256withECDSA, Pushy), both accepted; `Bearer` in either case; and
//! the tokens `mock-apns token` prints really use the encoding asked for; keys of another team
//! on a bound connection (UnrelatedKeyIdInToken) and keys restricted to the other environment
//! (BadEnvironmentKeyIdInToken), with keys added by `mock-apns add-key`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use testkit::apns::cases;
use testkit::apns::clients::{curl, ClientAuth, PushRequest};
use testkit::apns::jwt::{self, Signature};
use testkit::apns::server::{cli, Environment, MockServer};

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
    let device = server.bundle_device(Environment::Sandbox);
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
            let reply =
                curl(server, Environment::Sandbox, &ClientAuth::Token, &[request]).remove(0);
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

/// A server whose credentials (made by `mock-apns credentials`) got extra keys from
/// `mock-apns add-key`, one per argument list; with the new key ids.
fn server_with_keys(add: &[&[&str]]) -> (MockServer, Vec<String>) {
    let mut ids = Vec::new();
    let server = MockServer::start_prepared(
        |dir| {
            cli(&[
                "credentials",
                "--out",
                dir.to_str().expect("UTF-8 temp dir"),
            ]);
            ids = add.iter().map(|args| add_key(dir, args)).collect();
        },
        &[],
    );
    (server, ids)
}

/// `mock-apns add-key` in `dir`: the new key's id.
fn add_key(dir: &std::path::Path, args: &[&str]) -> String {
    let dir = dir.to_str().expect("UTF-8 temp dir");
    let entry: serde_json::Value =
        serde_json::from_str(&cli(&[&["add-key", "--credentials", dir], args].concat()))
            .expect("add-key prints its manifest entry as JSON");
    entry["key_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no key_id in {entry}"))
        .to_string()
}

/// A push request for `device` authorized by `token`.
fn push_request(server: &MockServer, device: &str, token: &str) -> PushRequest {
    PushRequest {
        device_token: device.to_string(),
        headers: vec![("apns-topic".into(), server.manifest.bundle_id.clone())],
        body: cases::payload_of_size(100),
        bearer: Some(token.to_string()),
    }
}

fn answers(replies: &[testkit::apns::clients::PushResponse]) -> Vec<(u16, String)> {
    replies.iter().map(|r| (r.status, r.body.clone())).collect()
}

#[test]
fn a_key_restricted_to_the_other_environment_is_bad_environment() {
    let (server, keys) = server_with_keys(&[
        &["--environment", "production"],
        &["--environment", "sandbox"],
    ]);
    let (production_key, sandbox_key) = (&keys[0], &keys[1]);
    let device = server.bundle_device(Environment::Sandbox);
    let prod_device = server.bundle_device(Environment::Production);
    let production_token = server.cli_token(&["--key-id", production_key]);
    let sandbox_token = server.cli_token(&["--key-id", sandbox_key, "--signature", "der"]);
    let bad_env = (
        403,
        r#"{"reason":"BadEnvironmentKeyIdInToken"}"#.to_string(),
    );
    // Each on a connection of its own (a refused first token binds nothing).
    for (env, dev, token, want) in [
        (
            Environment::Sandbox,
            &device,
            &production_token,
            bad_env.clone(),
        ),
        (
            Environment::Production,
            &prod_device,
            &sandbox_token,
            bad_env,
        ),
        (
            Environment::Production,
            &prod_device,
            &production_token,
            (200, String::new()),
        ),
        (
            Environment::Sandbox,
            &device,
            &sandbox_token,
            (200, String::new()),
        ),
        (
            Environment::Sandbox,
            &device,
            &server.valid_jwt(),
            (200, String::new()),
        ),
    ] {
        let reply = curl(
            &server,
            env,
            &ClientAuth::Token,
            &[push_request(&server, dev, token)],
        );
        assert_eq!(answers(&reply), vec![want], "{env:?} with {token}");
    }
    let log = server.pushes();
    let refused: Vec<&str> = log
        .as_array()
        .expect("push log is an array")
        .iter()
        .filter(|p| p["reason"] == "BadEnvironmentKeyIdInToken")
        .map(|p| p["detail"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        refused, ["the key is restricted to the other environment"; 2],
        "{log}"
    );
}

#[test]
fn another_teams_key_on_a_bound_connection_is_unrelated() {
    let (server, keys) = server_with_keys(&[&["--team-id", "OTHERTEAM1"]]);
    let other_key = &keys[0];
    let device = server.bundle_device(Environment::Sandbox);
    let ours = server.valid_jwt();
    let theirs = server.cli_token(&["--key-id", other_key]);
    // One curl process, one connection: the first token binds the team.
    let replies = curl(
        &server,
        Environment::Sandbox,
        &ClientAuth::Token,
        &[
            push_request(&server, &device, &ours),
            push_request(&server, &device, &theirs),
            push_request(&server, &device, &ours),
        ],
    );
    assert_eq!(
        replies
            .iter()
            .map(|r| r.new_connections)
            .collect::<Vec<_>>(),
        [Some(1), Some(0), Some(0)],
        "curl did not keep one connection"
    );
    assert_eq!(
        answers(&replies),
        vec![
            (200, String::new()),
            (403, r#"{"reason":"UnrelatedKeyIdInToken"}"#.to_string()),
            (200, String::new()),
        ]
    );
    // The other team's token is valid: on a connection of its own it is accepted, and then our
    // team is the unrelated one.
    let replies = curl(
        &server,
        Environment::Sandbox,
        &ClientAuth::Token,
        &[
            push_request(&server, &device, &theirs),
            push_request(&server, &device, &ours),
        ],
    );
    assert_eq!(
        answers(&replies),
        vec![
            (200, String::new()),
            (403, r#"{"reason":"UnrelatedKeyIdInToken"}"#.to_string()),
        ]
    );
}
