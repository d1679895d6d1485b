//! The APNs credentials folder a gateway under test is configured with (`pushbench credentials`,
//! `[apns] credentials_dir`): what it was made for, so that a folder made for another bundle id,
//! team or server name is never silently reused.

use std::path::Path;

/// What the credentials in `dir` were made for that differs from what is asked (none when the
/// folder holds no credentials yet).
pub fn differences(
    dir: &Path,
    bundle_id: &str,
    team_id: Option<&str>,
    server_names: &[String],
) -> Vec<String> {
    let Ok(existing) = mock_apns::Credentials::load(dir) else {
        return Vec::new();
    };
    let mut differences = Vec::new();
    if existing.bundle_id() != bundle_id {
        differences.push(format!(
            "bundle id {} (asked: {bundle_id})",
            existing.bundle_id()
        ));
    }
    if let Some(team) = team_id.filter(|t| *t != existing.team_id()) {
        differences.push(format!("team id {} (asked: {team})", existing.team_id()));
    }
    let server_cert = dir.join(&existing.manifest().server_cert_file);
    for name in server_names {
        if !certificate_names(&server_cert, name) {
            differences.push(format!(
                "a server certificate without the name {name} (asked: --server-name {name})"
            ));
        }
    }
    differences
}

/// True when the first certificate in `pem_file` is valid for `name` (a DNS name or an IP).
fn certificate_names(pem_file: &Path, name: &str) -> bool {
    let Ok(pem) = std::fs::read(pem_file) else {
        return false;
    };
    let Some(Ok(der)) = rustls_pemfile::certs(&mut pem.as_slice()).next() else {
        return false;
    };
    let Ok(cert) = webpki::EndEntityCert::try_from(&der) else {
        return false;
    };
    rustls::pki_types::ServerName::try_from(name)
        .is_ok_and(|n| cert.verify_is_valid_for_subject_name(&n).is_ok())
}

/// Removes the files a credentials folder's manifest lists, and the manifest.
pub fn remove(dir: &Path) -> std::io::Result<()> {
    if let Ok(c) = mock_apns::Credentials::load(dir) {
        let m = c.manifest();
        let files = [&m.ca_file, &m.server_cert_file, &m.server_key_file]
            .into_iter()
            .chain(m.keys.iter().map(|k| &k.file))
            .chain(
                m.client_certs
                    .iter()
                    .flat_map(|c| [&c.cert_file, &c.key_file]),
            );
        for f in files {
            let _ = std::fs::remove_file(dir.join(f));
        }
    }
    // The CA's key, which mock-apns keeps beside the CA but the manifest does not list.
    let _ = std::fs::remove_file(dir.join("ca-key.pem"));
    match std::fs::remove_file(dir.join("manifest.json")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_made_for_something_else_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            differences(dir.path(), "com.a", None, &[]).is_empty(),
            "empty folder"
        );
        mock_apns::Credentials::generate_or_load(
            dir.path(),
            "com.a",
            Some("TEAM000001"),
            &["gateway.test".into()],
        )
        .unwrap();
        assert!(differences(
            dir.path(),
            "com.a",
            Some("TEAM000001"),
            &["gateway.test".into()]
        )
        .is_empty());
        let d = differences(
            dir.path(),
            "com.b",
            Some("TEAM000002"),
            &["other.test".into()],
        );
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].contains("bundle id com.a (asked: com.b)"), "{d:?}");
        assert!(d[1].contains("team id TEAM000001"), "{d:?}");
        assert!(d[2].contains("other.test"), "{d:?}");
        remove(dir.path()).unwrap();
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "every file removed"
        );
    }
}
