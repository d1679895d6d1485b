//! curl (`--http2`, ALPN, `--connect-to` so SNI is Apple's host name) against the mock, with
//! token and certificate auth: the catalogue of Apple answers, token rotation on one connection,
//! and the response headers Apple sends.

use testkit::apns::cases::{self, AuthMethod, Jwt};
use testkit::apns::clients::{curl, curl_cases, ClientAuth, PushRequest};
use testkit::apns::server::{fresh_device_token, Environment, MockServer};

#[test]
fn curl_token_auth_gets_apples_answers() {
    let server = MockServer::start(&[]);
    let cases = cases::standard(&server, Environment::Sandbox, AuthMethod::Token);
    let results = curl_cases(&server, Environment::Sandbox, &ClientAuth::Token, &cases);
    cases::assert_all("curl, token auth", &server, &results);
}

#[test]
fn curl_certificate_auth_gets_apples_answers() {
    let server = MockServer::start(&[]);
    for env in [Environment::Sandbox, Environment::Production] {
        let cases = cases::standard(&server, env, AuthMethod::Certificate);
        let auth = ClientAuth::certificate(&server, env);
        let results = curl_cases(&server, env, &auth, &cases);
        cases::assert_all(
            &format!("curl, certificate auth, {}", env.as_str()),
            &server,
            &results,
        );
    }
}

#[test]
fn curl_second_provider_token_on_one_connection_is_too_many_updates() {
    let server = MockServer::start(&[]);
    let device = fresh_device_token();
    let topics = [server.manifest.bundle_id.clone()];
    server.register_device(&device, &topics, Environment::Sandbox);
    let push = |jwt: String| PushRequest {
        device_token: device.clone(),
        headers: vec![("apns-topic".into(), server.manifest.bundle_id.clone())],
        body: cases::payload_of_size(100),
        bearer: Some(jwt),
    };
    let first = cases::provider_token(&server, Jwt::Valid);
    let key = testkit::apns::jwt::read_p8(&server.manifest.key_file);
    let m = &server.manifest;
    let second = testkit::apns::jwt::es256(
        &key,
        &m.key_id,
        &m.team_id,
        testkit::apns::jwt::now() - 5,
        testkit::apns::jwt::Signature::Raw,
    );
    assert_ne!(first, second);
    let replies = curl(
        &server,
        Environment::Sandbox,
        &ClientAuth::Token,
        &[push(first.clone()), push(first), push(second)],
    );
    assert_eq!(
        replies[1].new_connections,
        Some(0),
        "curl did not reuse the connection: {replies:?}"
    );
    assert_eq!(
        replies[2].new_connections,
        Some(0),
        "curl did not reuse the connection: {replies:?}"
    );
    assert_eq!(replies[0].status, 200, "{replies:?}");
    assert_eq!(
        replies[1].status, 200,
        "the same token again is not an update: {replies:?}"
    );
    let third = replies[2].reply();
    assert_eq!(
        (third.status, third.reason.as_deref()),
        (429, Some("TooManyProviderTokenUpdates")),
        "{replies:?}"
    );
}

#[test]
fn curl_sees_apns_id_echoed_and_unique_id_on_sandbox_only() {
    let server = MockServer::start(&[]);
    for env in [Environment::Sandbox, Environment::Production] {
        let device = fresh_device_token();
        server.register_device(
            &device,
            std::slice::from_ref(&server.manifest.bundle_id),
            env,
        );
        let id = uuid::Uuid::new_v4().to_string();
        let request = |headers: Vec<(String, String)>| PushRequest {
            device_token: device.clone(),
            headers,
            body: cases::payload_of_size(100),
            bearer: Some(server.valid_jwt()),
        };
        let topic = ("apns-topic".to_string(), server.manifest.bundle_id.clone());
        let replies = curl(
            &server,
            env,
            &ClientAuth::Token,
            &[
                request(vec![topic.clone(), ("apns-id".into(), id.clone())]),
                request(vec![topic]),
            ],
        );
        let (given, generated) = (&replies[0], &replies[1]);
        assert_eq!(given.status, 200, "{given:?}");
        assert_eq!(
            given.header("apns-id"),
            Some(id.as_str()),
            "apns-id not echoed: {given:?}"
        );
        assert!(given.body.is_empty(), "200 has an empty body: {given:?}");
        let generated_id = generated
            .header("apns-id")
            .expect("apns-id generated when absent");
        let parsed = uuid::Uuid::parse_str(generated_id).expect("generated apns-id is a UUID");
        assert_eq!(
            generated_id,
            parsed.hyphenated().to_string(),
            "canonical lower-case UUID"
        );
        let unique = given.header("apns-unique-id");
        match env {
            Environment::Sandbox => assert!(
                unique.is_some(),
                "sandbox answers carry apns-unique-id: {given:?}"
            ),
            Environment::Production => assert!(
                unique.is_none(),
                "production has no apns-unique-id: {given:?}"
            ),
        }
    }
}

#[test]
fn curl_error_answers_are_json_with_content_type() {
    let server = MockServer::start(&[]);
    let request = PushRequest {
        device_token: fresh_device_token(),
        headers: vec![
            ("apns-topic".into(), server.manifest.bundle_id.clone()),
            ("apns-priority".into(), "3".into()),
        ],
        body: cases::payload_of_size(100),
        bearer: Some(server.valid_jwt()),
    };
    let reply = curl(
        &server,
        Environment::Sandbox,
        &ClientAuth::Token,
        &[request],
    )
    .remove(0);
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{reply:?}"
    );
    assert_eq!(reply.body, r#"{"reason":"BadPriority"}"#, "{reply:?}");
}
