//! The fuzzing entry point: the whole request-validation path with a fixed configuration, no I/O.

use crate::auth::ConnectionAuth;
use crate::devices::Devices;
use crate::validate::{self, Providers, RequestHeaders};
use crate::{Environment, UnknownTokens};
use bytes::Bytes;
use std::sync::OnceLock;

/// A fixed P-256 key (PKCS#8 PEM), team `TEAMID0001`, key id `KEYID00001`: lets fuzz inputs carry
/// validly signed tokens. Never use it for anything else.
pub const FIXED_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgWm2wqk2mHuC4Rl1p
rlUwWM4/1yMuefNlQbQ54S/wl+ShRANCAASDK61tGOfurWntucSAup9wnla98d1L
uHDLQlnydTKpO5qkd3WJZKyj82P140nd/SK7AkvxQiTPvqxstnvQyGWP
-----END PRIVATE KEY-----
";
/// Team id of [`FIXED_KEY_PEM`].
pub const FIXED_TEAM_ID: &str = "TEAMID0001";
/// Key id of [`FIXED_KEY_PEM`].
pub const FIXED_KEY_ID: &str = "KEYID00001";

fn providers() -> &'static Providers {
    static P: OnceLock<Providers> = OnceLock::new();
    P.get_or_init(|| {
        let mut p = Providers {
            token_updates_per_window: 1,
            ..Default::default()
        };
        if let Ok(key) = crate::jwt::ProviderKey::from_pkcs8_pem(
            FIXED_KEY_ID,
            FIXED_TEAM_ID,
            FIXED_KEY_PEM.as_bytes(),
        ) {
            p.keys.add_key(&key);
        }
        p.bundles.insert(
            FIXED_TEAM_ID.to_owned(),
            vec![crate::credentials::DEFAULT_BUNDLE_ID.to_owned()],
        );
        p
    })
}

/// A provider token for the fixed key (to seed a fuzz corpus with valid requests).
pub fn fixed_token(iat: i64, encoding: crate::SignatureEncoding) -> String {
    crate::jwt::ProviderKey::from_pkcs8_pem(FIXED_KEY_ID, FIXED_TEAM_ID, FIXED_KEY_PEM.as_bytes())
        .and_then(|k| k.sign(iat, encoding))
        .unwrap_or_default()
}

/// Runs header parsing, JWT verification, topic and payload rules and the device registry (unknown
/// tokens registered, production environment) on one request, on a fresh connection.
/// Returns the status and reason the server would answer. Never panics.
pub fn check_request(headers: &[(&[u8], &[u8])], body: &[u8]) -> (u16, Option<String>) {
    let h = RequestHeaders::collect(headers.iter().copied());
    let mut auth = ConnectionAuth::new(None);
    let now = crate::server::now_ms();
    let v = validate::validate(providers(), &mut auth, &h, body, (now / 1000) as i64);
    match v.outcome {
        Err(r) => (r.reason.status(), Some(r.reason.as_str().to_owned())),
        Ok(push) => {
            let devices = Devices::new(UnknownTokens::Register);
            match devices.accept(
                &push,
                Environment::Production,
                &v.apns_id,
                &Bytes::copy_from_slice(body),
                now,
            ) {
                Ok(_) => (200, None),
                Err(refusal) => (
                    refusal.reason().status(),
                    Some(refusal.reason().as_str().to_owned()),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_request_and_garbage() {
        let now = (crate::server::now_ms() / 1000) as i64;
        let auth = format!("bearer {}", fixed_token(now, crate::SignatureEncoding::Der));
        let path = format!("/3/device/{}", "ab".repeat(32));
        let h: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"POST"),
            (b":path", path.as_bytes()),
            (b"authorization", auth.as_bytes()),
            (b"apns-topic", b"com.example.pushbench.voip"),
            (b"apns-push-type", b"voip"),
        ];
        assert_eq!(check_request(&h, br#"{"aps":{}}"#), (200, None));
        assert_eq!(
            check_request(&[], b""),
            (405, Some("MethodNotAllowed".into()))
        );
        let weird: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"POST"),
            (b":path", b"/3/device/\xff\xfe"),
            (b"authorization", b"bearer \xff.\x00.\x01"),
            (b"apns-topic", b"\xc3"),
        ];
        assert_eq!(check_request(&weird, b"\xff").0, 403);
    }
}
