//! The credentials `mock-apns credentials` writes, checked with OpenSSL (a tool nobody here wrote):
//! the chain verifies, the server certificate names every Apple host, the provider certificates
//! carry Apple's UID, environment and topic extensions, the `.p8` is a P-256 key, and a second run
//! on the same directory changes nothing.

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use testkit::apns::server::{binary, Manifest};
use testkit::process::{require_program, run};

fn openssl(args: &[&str], dir: &Path) -> String {
    let openssl = require_program("openssl");
    let out = run(
        Command::new(openssl).args(args).current_dir(dir),
        None,
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}{}",
        out.stdout,
        out.stderr
    );
    out.stdout
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let path = e.expect("entry").path();
            (
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                std::fs::read(&path).expect("read"),
            )
        })
        .collect();
    files.sort();
    files
}

fn generate(dir: &Path) {
    let out = run(
        Command::new(binary())
            .args(["credentials", "--out"])
            .arg(dir)
            .args(["--bundle-id", "com.acme.phone", "--team-id", "ABCDE12345"]),
        None,
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "mock-apns credentials failed: {}",
        out.stderr
    );
}

#[test]
fn credentials_verify_with_openssl_and_are_stable() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    generate(dir);
    let manifest = Manifest::load(dir);
    assert_eq!(manifest.bundle_id, "com.acme.phone");
    assert_eq!(manifest.team_id, "ABCDE12345");
    assert!(
        manifest.topics.contains(&"com.acme.phone.voip".to_string()),
        "{:?}",
        manifest.topics
    );
    assert_eq!(
        manifest.key_id.len(),
        10,
        "Apple key ids are 10 characters: {}",
        manifest.key_id
    );

    let ca = manifest.ca_file.to_string_lossy().into_owned();
    let server = dir.join("server.pem").to_string_lossy().into_owned();
    assert!(openssl(&["verify", "-CAfile", &ca, &server], dir).contains(": OK"));
    let sans = openssl(
        &["x509", "-in", &server, "-noout", "-ext", "subjectAltName"],
        dir,
    );
    for name in [
        "DNS:api.push.apple.com",
        "DNS:api.sandbox.push.apple.com",
        "DNS:api.development.push.apple.com",
        "DNS:localhost",
        "IP Address:127.0.0.1",
    ] {
        assert!(
            sans.contains(name),
            "server certificate lacks {name}: {sans}"
        );
    }

    for (env, oid, other) in [
        (
            "sandbox",
            "1.2.840.113635.100.6.3.1",
            "1.2.840.113635.100.6.3.2",
        ),
        (
            "production",
            "1.2.840.113635.100.6.3.2",
            "1.2.840.113635.100.6.3.1",
        ),
    ] {
        let cert = manifest
            .client_certs
            .iter()
            .find(|c| c.environment == env)
            .expect("client cert");
        let file = cert.cert_file.to_string_lossy().into_owned();
        assert!(
            openssl(&["verify", "-CAfile", &ca, &file], dir).contains(": OK"),
            "{env}"
        );
        let text = openssl(
            &[
                "x509", "-in", &file, "-noout", "-text", "-nameopt", "RFC2253",
            ],
            dir,
        );
        assert!(
            text.contains("UID=com.acme.phone"),
            "{env} subject lacks the UID:\n{text}"
        );
        assert!(
            text.contains(&format!("{oid}:")),
            "{env} certificate lacks {oid}:\n{text}"
        );
        assert!(
            !text.contains(&format!("{other}:")),
            "{env} certificate also has {other}:\n{text}"
        );
        assert!(
            text.contains("1.2.840.113635.100.6.3.6:"),
            "{env} certificate lacks the topics:\n{text}"
        );
        for topic in ["com.acme.phone.voip", "voip", "com.acme.phone.complication"] {
            assert!(
                text.contains(topic),
                "{env} certificate topics lack {topic}:\n{text}"
            );
        }
        // The key belongs to the certificate.
        let key = cert.key_file.to_string_lossy().into_owned();
        let cert_pub = openssl(&["x509", "-in", &file, "-noout", "-pubkey"], dir);
        let key_pub = openssl(&["pkey", "-in", &key, "-pubout"], dir);
        assert_eq!(
            cert_pub, key_pub,
            "{env} key does not match its certificate"
        );
    }

    let p8 = manifest.key_file.to_string_lossy().into_owned();
    let key = openssl(&["pkey", "-in", &p8, "-noout", "-text"], dir);
    assert!(
        key.contains("prime256v1") || key.contains("P-256"),
        "the .p8 is not a P-256 key:\n{key}"
    );
    assert!(
        std::fs::read_to_string(&p8)
            .expect("p8")
            .starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8 PEM"
    );

    let before = snapshot(dir);
    generate(dir);
    assert!(
        before == snapshot(dir),
        "a second `credentials --out` on the same directory changed files"
    );
}
