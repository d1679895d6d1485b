//! nghttp (nghttp2's client, verifying the server certificate against the mock's CA) against the
//! mock, with token and certificate auth.

use testkit::apns::cases::{self, AuthMethod};
use testkit::apns::clients::{
    nghttp_cases, nghttp_verbose, received_max_streams, ClientAuth, PushRequest,
};
use testkit::apns::server::{fresh_device_token, Environment, MockServer};

#[test]
fn nghttp_token_auth_gets_apples_answers() {
    let server = MockServer::start(&[]);
    let cases = cases::standard(&server, Environment::Production, AuthMethod::Token);
    let results = nghttp_cases(&server, Environment::Production, &ClientAuth::Token, &cases);
    cases::assert_all("nghttp, token auth", &server, &results);
}

#[test]
fn nghttp_certificate_auth_gets_apples_answers() {
    let server = MockServer::start(&[]);
    let cases = cases::standard(&server, Environment::Sandbox, AuthMethod::Certificate);
    let auth = ClientAuth::certificate(&server, Environment::Sandbox);
    let results = nghttp_cases(&server, Environment::Sandbox, &auth, &cases);
    cases::assert_all("nghttp, certificate auth", &server, &results);
}

#[test]
fn nghttp_sees_one_stream_until_the_first_valid_token_then_1000() {
    let server = MockServer::start(&[]);
    let device = fresh_device_token();
    server.register_device(
        &device,
        std::slice::from_ref(&server.manifest.bundle_id),
        Environment::Sandbox,
    );
    let request = |bearer: String| PushRequest {
        device_token: device.clone(),
        headers: vec![("apns-topic".into(), server.manifest.bundle_id.clone())],
        body: cases::payload_of_size(100),
        bearer: Some(bearer),
    };
    let out = nghttp_verbose(
        &server,
        Environment::Sandbox,
        &ClientAuth::Token,
        &request(server.valid_jwt()),
    );
    assert_eq!(
        received_max_streams(&out.stdout),
        vec![1, 1000],
        "{}",
        out.stdout
    );
    // A refused token leaves the connection at one stream.
    let refused = cases::provider_token(&server, cases::Jwt::AlgNone);
    let out = nghttp_verbose(
        &server,
        Environment::Sandbox,
        &ClientAuth::Token,
        &request(refused),
    );
    assert_eq!(received_max_streams(&out.stdout), vec![1], "{}", out.stdout);
}

#[test]
fn nghttp_wrong_environment_certificate_gets_goaway_with_reason() {
    let server = MockServer::start(&[]);
    let device = fresh_device_token();
    server.register_device(
        &device,
        std::slice::from_ref(&server.manifest.bundle_id),
        Environment::Sandbox,
    );
    let request = PushRequest {
        device_token: device,
        headers: vec![("apns-topic".into(), server.manifest.bundle_id.clone())],
        body: cases::payload_of_size(100),
        bearer: None,
    };
    // The production certificate on the sandbox listener, and the reverse.
    for (cert_env, listener) in [
        (Environment::Production, Environment::Sandbox),
        (Environment::Sandbox, Environment::Production),
    ] {
        let auth = ClientAuth::certificate(&server, cert_env);
        let out = nghttp_verbose(&server, listener, &auth, &request);
        assert!(
            out.stdout.contains(
                r#"(last_stream_id=0, error_code=NO_ERROR(0x00), opaque_data(38)=[{"reason":"BadCertificateEnvironment"}])"#
            ),
            "{} certificate on the {} listener:\n{}",
            cert_env.as_str(),
            listener.as_str(),
            out.stdout
        );
        assert!(
            !out.stdout.contains(":status:"),
            "no response expected:\n{}",
            out.stdout
        );
    }
}
