//! TLS and HTTP/2 negotiation as real APNs clients do it: ALPN `h2` or HTTP/2 prior knowledge
//! without ALPN (Pushy's default), TLS 1.2 and 1.3, and every Apple host name as SNI verified
//! against the mock's CA.

use std::sync::Arc;
use testkit::apns::cases::payload_of_size;
use testkit::apns::server::{fresh_device_token, Environment, MockServer};
use testkit::apns::wire::{self, H2Request, Outcome};

fn tls(
    server: &MockServer,
    alpn: bool,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let base = wire::tls_config(&server.manifest.ca_file, alpn);
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .expect("versions")
    .with_root_certificates(roots(server))
    .with_no_client_auth();
    config.alpn_protocols = base.alpn_protocols.clone();
    Arc::new(config)
}

fn roots(server: &MockServer) -> rustls::RootCertStore {
    let pem = std::fs::read(&server.manifest.ca_file).expect("ca.pem");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.expect("cert")).expect("add");
    }
    roots
}

#[test]
fn pushes_are_served_with_and_without_alpn_over_tls_1_2_and_1_3_for_every_apple_name() {
    let server = MockServer::start(&[]);
    // A device token belongs to one environment, so one per listener.
    let (sandbox_device, production_device) = (fresh_device_token(), fresh_device_token());
    let topics = std::slice::from_ref(&server.manifest.bundle_id);
    server.register_device(&sandbox_device, topics, Environment::Sandbox);
    server.register_device(&production_device, topics, Environment::Production);
    let rt = wire::runtime();
    let mut failures = Vec::new();
    for (env, host) in [
        (Environment::Sandbox, "api.sandbox.push.apple.com"),
        (Environment::Sandbox, "api.development.push.apple.com"),
        (Environment::Sandbox, "localhost"),
        (Environment::Production, "api.push.apple.com"),
    ] {
        for alpn in [true, false] {
            for (version_name, version) in [
                ("TLS 1.2", &rustls::version::TLS12),
                ("TLS 1.3", &rustls::version::TLS13),
            ] {
                let device = match env {
                    Environment::Sandbox => &sandbox_device,
                    Environment::Production => &production_device,
                };
                let request = H2Request::post(
                    device,
                    vec![
                        (
                            "authorization",
                            format!("bearer {}", server.valid_jwt())
                                .parse()
                                .expect("header"),
                        ),
                        (
                            "apns-topic",
                            server.manifest.bundle_id.parse().expect("header"),
                        ),
                    ],
                    payload_of_size(100),
                );
                let outcome = rt.block_on(wire::h2_exchange(
                    server.addr(env),
                    host,
                    tls(&server, alpn, &[version]),
                    vec![request],
                ));
                if !matches!(
                    &outcome[0],
                    Outcome::Answer {
                        status: 200,
                        apns_id: Some(_),
                        ..
                    }
                ) {
                    failures.push(format!(
                        "{host} alpn={alpn} {version_name}: {:?}",
                        outcome[0]
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "not served:\n  {}",
        failures.join("\n  ")
    );
}

#[test]
fn a_name_outside_the_certificate_is_refused_by_the_client() {
    let server = MockServer::start(&[]);
    let rt = wire::runtime();
    let result = rt.block_on(wire::tls_connect(
        server.sandbox,
        "push.example.net",
        wire::tls_config(&server.manifest.ca_file, true),
    ));
    let Err(error) = result else {
        panic!("the certificate must not cover push.example.net");
    };
    let error = error.to_string();
    assert!(
        error.contains("NotValidForName") || error.contains("not valid for name"),
        "{error}"
    );
}
