//! Test helpers: a throw-away PKI made with rcgen (CA, APNs server certificate, provider client
//! certificate, `.p8` signing key), free loopback ports and deadlines.

#![allow(dead_code)]

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

/// Every await in these tests has this deadline unless it says otherwise.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Awaits `fut` or fails the test after `DEADLINE`.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {DEADLINE:?}"))
}

/// PEM texts for one bench PKI.
pub struct Pki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
    pub p8_pem: String,
}

impl Pki {
    /// A CA, a server certificate for Apple's APNs host names and loopback, a client certificate
    /// and an ES256 `.p8` key.
    pub fn generate() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "pushbench test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec![
            "api.sandbox.push.apple.com".to_owned(),
            "api.push.apple.com".to_owned(),
            "localhost".to_owned(),
        ])
        .unwrap();
        let server_cert = server.signed_by(&server_key, &ca_cert, &ca_key).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client
            .distinguished_name
            .push(DnType::CommonName, "Apple VoIP Services: com.example.app");
        let client_cert = client.signed_by(&client_key, &ca_cert, &ca_key).unwrap();

        let p8 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        Pki {
            ca_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
            p8_pem: p8.serialize_pem(),
        }
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls until something accepts TCP connections on `addr`, or fails after `DEADLINE`.
pub async fn wait_listening(addr: SocketAddr) -> bool {
    let start = tokio::time::Instant::now();
    while start.elapsed() < DEADLINE {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
