//! The fuzzing entry points: the whole request-validation path with a fixed configuration, no
//! I/O (`check_request`), and the HTTP/2 engine fed raw client bytes (`serve_http2_bytes`).

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

/// Answers every request 200 with its body, and counts them: the service behind
/// [`serve_http2_bytes`].
struct Echo<'a>(&'a mut usize);

impl crate::http2::Service for Echo<'_> {
    fn call(&mut self, request: &crate::http2::Request) -> crate::http2::Answer {
        *self.0 += 1;
        crate::http2::Answer {
            reply: Ok(crate::http2::Reply::Respond(crate::http2::Response {
                status: 200,
                fields: vec![(
                    b"apns-id",
                    b"00000000-0000-0000-0000-000000000000".to_vec(),
                    true,
                )],
                body: Some(request.body.clone()),
            })),
            max_streams: Some(1000),
        }
    }

    fn shutdown_debug(&self) -> Vec<u8> {
        Vec::new()
    }
}

/// What [`serve_http2_bytes`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineRun {
    /// How the connection ended (`crate::http2::Ended`, as text).
    pub ended: String,
    /// Requests the engine handed to the service.
    pub requests: usize,
}

/// Runs the HTTP/2 engine (`crate::http2`) on `client_bytes` as all a client sends after TLS (the
/// preface is added unless `client_bytes` starts with it), then closes the client's side.
/// Never panics; ends as soon as the engine has read everything (the engine's deadlines are not
/// reached: the client closes).
pub fn serve_http2_bytes(client_bytes: &[u8]) -> EngineRun {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    thread_local! {
        static RUNTIME: Option<tokio::runtime::Runtime> = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok();
    }
    RUNTIME.with(|rt| {
        let Some(rt) = rt else {
            return EngineRun {
                ended: "no runtime".to_owned(),
                requests: 0,
            };
        };
        rt.block_on(async {
            let (client, server) = tokio::io::duplex(64 * 1024);
            // The client writes and reads at once: an engine that answers more than the pipe
            // holds before the client is done writing must not wait for it (a deadlock that
            // would end only at the engine's 10 s write deadline).
            let (mut from_server, mut to_server) = tokio::io::split(client);
            let (_shutdown, rx) = tokio::sync::watch::channel(false);
            let mut requests = 0;
            let engine = crate::http2::serve(
                server,
                // Room for the seeds' streams at once (the limit of 1 refuses all but the first of a
                // burst, as `tests/stream_limit.rs` proves); the service raises it to 1000.
                crate::http2::Settings::apns(0, 100),
                Echo(&mut requests),
                rx,
            );
            let preface = crate::http2::frame::PREFACE;
            let client_writes = async {
                if !client_bytes.starts_with(preface) {
                    let _ = to_server.write_all(preface).await;
                }
                let _ = to_server.write_all(client_bytes).await;
                let _ = to_server.shutdown().await;
            };
            let client_reads = async {
                let mut sink = vec![0u8; 16 * 1024];
                while matches!(from_server.read(&mut sink).await, Ok(n) if n > 0) {}
            };
            let (ended, (), ()) = tokio::join!(engine, client_writes, client_reads);
            EngineRun {
                ended: ended.to_string(),
                requests,
            }
        })
    })
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
