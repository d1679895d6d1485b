//! The test PKI, generated per test with rcgen (nothing committed, nothing shared between
//! tests): a CA and a leaf certificate for a server's names ([`TlsChain`]), and the PKI an APNs
//! provider and server need ([`ApnsPki`]).

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A fresh CA and one certificate it signed, as PEM text.
#[derive(Clone, Debug)]
pub struct TlsChain {
    /// The CA certificate (what a client trusts).
    pub ca_pem: String,
    /// The leaf certificate.
    pub cert_pem: String,
    /// The leaf's private key.
    pub key_pem: String,
}

impl TlsChain {
    /// A CA named `ca_name` and a certificate for `names` (DNS names or IP addresses: rcgen
    /// writes an IP SAN for an address), with `names[0]` as its common name.
    pub fn generate(ca_name: &str, names: &[&str]) -> TlsChain {
        let (ca, ca_key) = new_ca(ca_name);
        let key = KeyPair::generate().expect("server key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("server names");
        if let Some(cn) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *cn);
        }
        let cert = params
            .signed_by(&key, &ca, &ca_key)
            .expect("server certificate");
        TlsChain {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A CA and a certificate for `localhost` and `127.0.0.1`.
    pub fn localhost() -> TlsChain {
        TlsChain::generate("pushbench test CA", &["localhost", "127.0.0.1"])
    }

    /// A CA that signed nothing (a client trusting it trusts no server).
    pub fn unrelated_ca() -> String {
        new_ca("an unrelated CA").0.pem()
    }
}

fn new_ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, name);
    (ca.self_signed(&ca_key).expect("CA certificate"), ca_key)
}

/// PEM texts for one APNs provider/server PKI.
#[derive(Clone, Debug)]
pub struct ApnsPki {
    /// The CA.
    pub ca_pem: String,
    /// A server certificate for Apple's APNs host names and loopback.
    pub server_cert_pem: String,
    /// Its key.
    pub server_key_pem: String,
    /// A provider client certificate.
    pub client_cert_pem: String,
    /// Its key.
    pub client_key_pem: String,
    /// An ES256 provider-token signing key (`.p8`, PKCS#8 PEM).
    pub p8_pem: String,
}

impl ApnsPki {
    /// A CA, a server certificate for `api.sandbox.push.apple.com`, `api.push.apple.com` and
    /// `localhost`, a client certificate and a `.p8` key.
    pub fn generate() -> ApnsPki {
        let (ca_cert, ca_key) = new_ca("pushbench test CA");
        let server_key = KeyPair::generate().expect("server key");
        let server = CertificateParams::new(vec![
            "api.sandbox.push.apple.com".to_owned(),
            "api.push.apple.com".to_owned(),
            "localhost".to_owned(),
        ])
        .expect("server names");
        let server_cert = server
            .signed_by(&server_key, &ca_cert, &ca_key)
            .expect("server certificate");
        let client_key = KeyPair::generate().expect("client key");
        let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
        client
            .distinguished_name
            .push(DnType::CommonName, "Apple VoIP Services: com.example.app");
        let client_cert = client
            .signed_by(&client_key, &ca_cert, &ca_key)
            .expect("client certificate");
        let p8 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("p8 key");
        ApnsPki {
            ca_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
            p8_pem: p8.serialize_pem(),
        }
    }
}
