//! nghttp (nghttp2's client, verifying the server certificate against the mock's CA) against the
//! mock, with token and certificate auth.

mod support;

use support::cases::{self, AuthMode};
use support::clients::{nghttp_cases, ClientAuth};
use support::server::{Env, MockServer};

#[test]
fn nghttp_token_auth_gets_apples_answers() {
    let server = MockServer::start(&[]);
    let cases = cases::standard(&server, Env::Production, AuthMode::Token);
    let results = nghttp_cases(&server, Env::Production, &ClientAuth::Token, &cases);
    cases::assert_all("nghttp, token auth", &server, &results);
}

#[test]
fn nghttp_certificate_auth_gets_apples_answers() {
    let server = MockServer::start(&[]);
    let cases = cases::standard(&server, Env::Sandbox, AuthMode::Certificate);
    let auth = ClientAuth::certificate(&server, Env::Sandbox);
    let results = nghttp_cases(&server, Env::Sandbox, &auth, &cases);
    cases::assert_all("nghttp, certificate auth", &server, &results);
}
