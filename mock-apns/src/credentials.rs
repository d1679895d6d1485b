//! Credentials a provider needs to talk to the mock, generated with rcgen and kept in a directory:
//! a CA, the server certificate, provider client certificates with Apple's extensions, ES256 `.p8`
//! keys, and `manifest.json` listing them. A directory that already holds a manifest is reused.

use crate::cert_ext::{self, TopicEntry};
use crate::jwt::{KeyError, ProviderKey, SignatureEncoding};
use crate::validate::topics_of_bundle;
use crate::Environment;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, DnValue, ExtendedKeyUsagePurpose,
    IsCa, KeyPair, KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bundle id used unless another is given.
pub const DEFAULT_BUNDLE_ID: &str = "com.example.pushbench";
/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// Names the server certificate always carries.
pub const SERVER_NAMES: &[&str] = &[
    "api.push.apple.com",
    "api.sandbox.push.apple.com",
    "api.development.push.apple.com",
    "localhost",
    "127.0.0.1",
    "::1",
];

/// A signing key entry of the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// `kid`.
    pub key_id: String,
    /// `iss`.
    pub team_id: String,
    /// `AuthKey_<KEYID>.p8`, relative to the directory.
    pub file: String,
    /// The one environment the key may be used in (`sandbox` or `production`); absent: both.
    /// A token signed with it on the other environment's listener gets 403
    /// BadEnvironmentKeyIdInToken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
}

/// A client certificate entry of the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCertEntry {
    /// `sandbox`, `production` or `universal`.
    pub environment: String,
    /// Certificate PEM file.
    pub cert_file: String,
    /// Its private key (PKCS#8 PEM).
    pub key_file: String,
    /// Topics of its 1.2.840.113635.100.6.3.6 extension.
    pub topics: Vec<String>,
}

/// `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Team id.
    pub team_id: String,
    /// Bundle id.
    pub bundle_id: String,
    /// Every topic the team may push to.
    pub topics: Vec<String>,
    /// Signing keys.
    pub keys: Vec<KeyEntry>,
    /// The CA certificate (PEM) clients must trust.
    pub ca_file: String,
    /// The server certificate chain (PEM).
    pub server_cert_file: String,
    /// The server key.
    pub server_key_file: String,
    /// Provider client certificates.
    pub client_certs: Vec<ClientCertEntry>,
}

/// Errors generating or loading credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// File system.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Bad manifest.
    #[error("{0}: bad manifest: {1}")]
    Manifest(PathBuf, serde_json::Error),
    /// Certificate generation.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A key could not be used.
    #[error("key {0}: {1}")]
    Key(String, KeyError),
    /// TLS configuration.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The manifest lists no signing key.
    #[error("manifest lists no signing key")]
    NoKey,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CredentialsError + '_ {
    move |source| CredentialsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Loaded credentials.
#[derive(Clone)]
pub struct Credentials {
    dir: PathBuf,
    manifest: Manifest,
    keys: Vec<Arc<ProviderKey>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("dir", &self.dir)
            .field("manifest", &self.manifest)
            .finish()
    }
}

/// A random id of 10 uppercase letters and digits, like Apple's team and key ids.
pub fn random_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(10)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn write(dir: &Path, name: &str, contents: &[u8]) -> Result<(), CredentialsError> {
    let path = dir.join(name);
    std::fs::write(&path, contents).map_err(io(&path))
}

fn client_cert(
    bundle_id: &str,
    team_id: &str,
    sandbox: bool,
    production: bool,
    topics: &[TopicEntry],
    ca: &rcgen::Certificate,
    ca_key: &KeyPair,
) -> Result<(String, String), CredentialsError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(
        DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 1]),
        DnValue::Utf8String(bundle_id.to_owned()),
    );
    params.distinguished_name.push(
        DnType::CommonName,
        format!("Apple Push Services: {bundle_id}"),
    );
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, team_id);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    if sandbox {
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                cert_ext::OID_SANDBOX,
                cert_ext::DER_NULL.to_vec(),
            ));
    }
    if production {
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                cert_ext::OID_PRODUCTION,
                cert_ext::DER_NULL.to_vec(),
            ));
    }
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            cert_ext::OID_TOPICS,
            cert_ext::encode_topics(topics),
        ));
    let cert = params.signed_by(&key, ca, ca_key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

impl Credentials {
    /// Loads the credentials in `dir`, or generates them there if it holds no manifest.
    pub fn generate_or_load(
        dir: &Path,
        bundle_id: &str,
        team_id: Option<&str>,
        extra_server_names: &[String],
    ) -> Result<Credentials, CredentialsError> {
        if dir.join(MANIFEST).exists() {
            return Credentials::load(dir);
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let team_id = team_id.map(str::to_owned).unwrap_or_else(random_id);
        let key_id = random_id();

        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "pushbench mock APNs CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key)?;

        let server_key = KeyPair::generate()?;
        let mut names: Vec<String> = SERVER_NAMES.iter().map(|s| s.to_string()).collect();
        names.extend(extra_server_names.iter().cloned());
        let mut server_params = CertificateParams::new(names)?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "api.push.apple.com");
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server_params.signed_by(&server_key, &ca, &ca_key)?;

        let cert_topics: Vec<TopicEntry> = [
            ("", "app"),
            (".voip", "voip"),
            (".complication", "complication"),
        ]
        .iter()
        .map(|(suffix, kind)| TopicEntry {
            topic: format!("{bundle_id}{suffix}"),
            kind: kind.to_string(),
        })
        .collect();
        let topic_names: Vec<String> = cert_topics.iter().map(|t| t.topic.clone()).collect();
        let mut client_certs = Vec::new();
        for (env, sandbox, production) in [
            ("sandbox", true, false),
            ("production", false, true),
            ("universal", true, true),
        ] {
            let (pem, key) = client_cert(
                bundle_id,
                &team_id,
                sandbox,
                production,
                &cert_topics,
                &ca,
                &ca_key,
            )?;
            let cert_file = format!("client-{env}.pem");
            let key_file = format!("client-{env}-key.pem");
            write(dir, &cert_file, pem.as_bytes())?;
            write(dir, &key_file, key.as_bytes())?;
            client_certs.push(ClientCertEntry {
                environment: env.to_owned(),
                cert_file,
                key_file,
                topics: topic_names.clone(),
            });
        }

        let signing = KeyPair::generate()?;
        let key_file = format!("AuthKey_{key_id}.p8");
        write(dir, &key_file, signing.serialize_pem().as_bytes())?;
        write(dir, "ca.pem", ca.pem().as_bytes())?;
        write(dir, "ca-key.pem", ca_key.serialize_pem().as_bytes())?;
        write(dir, "server.pem", server.pem().as_bytes())?;
        write(dir, "server-key.pem", server_key.serialize_pem().as_bytes())?;

        let manifest = Manifest {
            team_id: team_id.clone(),
            bundle_id: bundle_id.to_owned(),
            topics: topics_of_bundle(bundle_id),
            keys: vec![KeyEntry {
                key_id,
                team_id,
                file: key_file,
                environment: None,
            }],
            ca_file: "ca.pem".into(),
            server_cert_file: "server.pem".into(),
            server_key_file: "server-key.pem".into(),
            client_certs,
        };
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| CredentialsError::Manifest(dir.join(MANIFEST), e))?;
        write(dir, MANIFEST, &json)?;
        Credentials::load(dir)
    }

    /// Loads the credentials listed by `dir/manifest.json`.
    pub fn load(dir: &Path) -> Result<Credentials, CredentialsError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read(&path).map_err(io(&path))?;
        let manifest: Manifest = serde_json::from_slice(&text)
            .map_err(|e| CredentialsError::Manifest(path.clone(), e))?;
        let mut keys = Vec::new();
        for k in &manifest.keys {
            let p = dir.join(&k.file);
            let pem = std::fs::read(&p).map_err(io(&p))?;
            let key = ProviderKey::from_pkcs8_pem(&k.key_id, &k.team_id, &pem)
                .map_err(|e| CredentialsError::Key(k.key_id.clone(), e))?
                .restricted_to(k.environment);
            keys.push(Arc::new(key));
        }
        if keys.is_empty() {
            return Err(CredentialsError::NoKey);
        }
        Ok(Credentials {
            dir: dir.to_owned(),
            manifest,
            keys,
        })
    }

    /// Generates another signing key, writes `AuthKey_<KEYID>.p8`, lists it in the manifest and
    /// returns its entry. `team_id` defaults to the manifest's team; `environment` restricts the
    /// key to one environment (`None`: both). A server started afterwards knows the key.
    pub fn add_key(
        &mut self,
        team_id: Option<&str>,
        environment: Option<Environment>,
    ) -> Result<KeyEntry, CredentialsError> {
        let key_id = random_id();
        let entry = KeyEntry {
            team_id: team_id.unwrap_or(&self.manifest.team_id).to_owned(),
            file: format!("AuthKey_{key_id}.p8"),
            key_id,
            environment,
        };
        let pem = KeyPair::generate()?.serialize_pem();
        let key = ProviderKey::from_pkcs8_pem(&entry.key_id, &entry.team_id, pem.as_bytes())
            .map_err(|e| CredentialsError::Key(entry.key_id.clone(), e))?
            .restricted_to(environment);
        write(&self.dir, &entry.file, pem.as_bytes())?;
        let mut manifest = self.manifest.clone();
        manifest.keys.push(entry.clone());
        let path = self.dir.join(MANIFEST);
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| CredentialsError::Manifest(path.clone(), e))?;
        write(&self.dir, MANIFEST, &json)?;
        self.manifest = manifest;
        self.keys.push(Arc::new(key));
        Ok(entry)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Team id.
    pub fn team_id(&self) -> &str {
        &self.manifest.team_id
    }

    /// Bundle id.
    pub fn bundle_id(&self) -> &str {
        &self.manifest.bundle_id
    }

    /// Key id of the first key.
    pub fn key_id(&self) -> &str {
        &self.keys[0].key_id
    }

    /// Every signing key.
    pub fn keys(&self) -> &[Arc<ProviderKey>] {
        &self.keys
    }

    /// The CA certificate file.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.ca_file)
    }

    /// The server certificate file.
    pub fn server_cert_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.server_cert_file)
    }

    /// The server key file.
    pub fn server_key_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.server_key_file)
    }

    /// The first key's `.p8` file.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.keys[0].file)
    }

    /// (certificate, key) files of the client certificate for `environment`.
    pub fn client_cert(&self, environment: Environment) -> Option<(PathBuf, PathBuf)> {
        self.client_cert_named(environment.as_str())
    }

    /// (certificate, key) files of a client certificate by its manifest environment name
    /// (`sandbox`, `production`, `universal`).
    pub fn client_cert_named(&self, name: &str) -> Option<(PathBuf, PathBuf)> {
        self.manifest
            .client_certs
            .iter()
            .find(|c| c.environment == name)
            .map(|c| (self.dir.join(&c.cert_file), self.dir.join(&c.key_file)))
    }

    /// A provider token signed with the first key.
    pub fn provider_token(
        &self,
        iat: i64,
        encoding: SignatureEncoding,
    ) -> Result<String, KeyError> {
        self.keys[0].sign(iat, encoding)
    }

    /// The rustls configuration of the APNs listeners: TLS 1.2 and 1.3, ALPN `h2` (clients that
    /// offer no ALPN are accepted too), client certificates from the CA optional.
    pub fn server_tls_config(&self) -> Result<rustls::ServerConfig, CredentialsError> {
        let tls = |e: &dyn std::fmt::Display| CredentialsError::Tls(e.to_string());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = read_certs(&self.server_cert_path())?;
        let key_path = self.server_key_path();
        let key_pem = std::fs::read(&key_path).map_err(io(&key_path))?;
        let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .map_err(io(&key_path))?
            .ok_or_else(|| CredentialsError::Tls("no private key in server key file".into()))?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in read_certs(&self.ca_path())? {
            roots.add(ca).map_err(|e| tls(&e))?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| tls(&e))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| tls(&e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| tls(&e))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }

    /// A rustls client configuration trusting the CA (for in-process clients and tests),
    /// optionally presenting a client certificate (`sandbox`, `production`, `universal`).
    pub fn client_tls_config(
        &self,
        client_cert: Option<&str>,
    ) -> Result<rustls::ClientConfig, CredentialsError> {
        let tls = |e: &dyn std::fmt::Display| CredentialsError::Tls(e.to_string());
        let mut roots = rustls::RootCertStore::empty();
        for ca in read_certs(&self.ca_path())? {
            roots.add(ca).map_err(|e| tls(&e))?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_root_certificates(roots);
        let mut config = match client_cert {
            None => builder.with_no_client_auth(),
            Some(name) => {
                let (cert, key) = self.client_cert_named(name).ok_or_else(|| {
                    CredentialsError::Tls(format!("no client certificate {name}"))
                })?;
                let key_pem = std::fs::read(&key).map_err(io(&key))?;
                let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
                    .map_err(io(&key))?
                    .ok_or_else(|| CredentialsError::Tls("no private key".into()))?;
                builder
                    .with_client_auth_cert(read_certs(&cert)?, key)
                    .map_err(|e| tls(&e))?
            }
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }
}

fn read_certs(
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, CredentialsError> {
    let pem = std::fs::read(path).map_err(io(path))?;
    rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::CertIdentity;

    pub(crate) fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mock-apns-{tag}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn generated_client_certificates_carry_apples_extensions() {
        let dir = temp_dir("creds");
        let c = Credentials::generate_or_load(&dir, "com.example.app", Some("TEAM123456"), &[])
            .unwrap();
        assert_eq!(c.team_id(), "TEAM123456");
        assert_eq!(c.key_id().len(), 10);
        assert!(c
            .manifest()
            .topics
            .contains(&"com.example.app.voip".to_string()));
        for (name, sandbox, production) in [
            ("sandbox", true, false),
            ("production", false, true),
            ("universal", true, true),
        ] {
            let (cert, _) = c.client_cert_named(name).unwrap();
            let der = read_certs(&cert).unwrap().remove(0);
            let id = CertIdentity::from_der(&der).unwrap();
            assert_eq!(id.uid, "com.example.app");
            assert_eq!(
                id.topics,
                [
                    "com.example.app",
                    "com.example.app.voip",
                    "com.example.app.complication"
                ]
            );
            assert_eq!((id.sandbox, id.production), (sandbox, production), "{name}");
            // Subject CN as Apple writes it.
            use x509_parser::prelude::*;
            let (_, x) = X509Certificate::from_der(&der).unwrap();
            let cn = x
                .subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned();
            assert_eq!(cn, "Apple Push Services: com.example.app");
        }
        // Server certificate SANs.
        let der = read_certs(&c.server_cert_path()).unwrap().remove(0);
        use x509_parser::prelude::*;
        let (_, x) = X509Certificate::from_der(&der).unwrap();
        let san = x.subject_alternative_name().unwrap().unwrap().value;
        let names: Vec<String> = san.general_names.iter().map(|n| format!("{n}")).collect();
        for want in [
            "api.push.apple.com",
            "api.sandbox.push.apple.com",
            "api.development.push.apple.com",
            "localhost",
        ] {
            assert!(names.iter().any(|n| n.contains(want)), "{names:?}");
        }
        assert!(names.iter().any(|n| n.contains("7f:00:00:01")), "{names:?}");
        assert!(c.server_tls_config().is_ok());
        assert!(c.client_tls_config(Some("sandbox")).is_ok());

        // Stable: a second call loads the same credentials.
        let again = Credentials::generate_or_load(&dir, "other.bundle", None, &[]).unwrap();
        assert_eq!(again.manifest(), c.manifest());
        let token = again
            .provider_token(1_800_000_000, SignatureEncoding::Der)
            .unwrap();
        let mut ring = crate::jwt::KeyRing::new();
        ring.add_key(&c.keys()[0]);
        assert!(ring.verify(&token, 1_800_000_000).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn added_keys_keep_team_and_environment_and_old_manifests_load() {
        let dir = temp_dir("addkey");
        let mut c = Credentials::generate_or_load(&dir, "com.example.app", None, &[]).unwrap();
        // A manifest written before keys had an environment: the field is absent, not null.
        let text = std::fs::read_to_string(dir.join(MANIFEST)).unwrap();
        assert!(!text.contains("environment\": null"), "{text}");
        let other = c.add_key(Some("OTHERTEAM1"), None).unwrap();
        let prod = c.add_key(None, Some(Environment::Production)).unwrap();
        assert_eq!(other.team_id, "OTHERTEAM1");
        assert_eq!(prod.team_id, c.team_id());
        let again = Credentials::load(&dir).unwrap();
        assert_eq!(again.manifest(), c.manifest());
        assert_eq!(again.keys().len(), 3);
        let loaded = again
            .keys()
            .iter()
            .find(|k| k.key_id == prod.key_id)
            .unwrap();
        assert_eq!(loaded.environment, Some(Environment::Production));
        let text = std::fs::read_to_string(dir.join(MANIFEST)).unwrap();
        assert!(text.contains("\"environment\": \"production\""), "{text}");
        // The tokens of the added key verify with its public half.
        let mut ring = crate::jwt::KeyRing::new();
        ring.add_key(loaded);
        let t = loaded.sign(1_800_000_000, SignatureEncoding::Raw).unwrap();
        assert_eq!(
            ring.verify(&t, 1_800_000_000).unwrap().key_environment,
            Some(Environment::Production)
        );
        // A bad environment value is a clear manifest error.
        std::fs::write(
            dir.join(MANIFEST),
            text.replace("\"production\"", "\"staging\""),
        )
        .unwrap();
        let err = Credentials::load(&dir).unwrap_err().to_string();
        assert!(
            err.contains("bad manifest") && err.contains("staging"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
