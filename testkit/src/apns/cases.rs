//! The catalogue of pushes every real client must get Apple's exact answer for, with the devices
//! each one needs registered first. A client runner turns a [`Case`] into its own invocation and
//! hands back a [`Reply`]; [`check`] compares it with the expectation.

use crate::apns::server::{fresh_device_token, MockServer};
pub use mock_apns::{AuthMethod, Environment};

/// The provider token a case sends (token auth only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jwt {
    /// Signed with the manifest's key, `iat` now.
    Valid,
    /// Signed with the manifest's key, `iat` two hours ago.
    Expired,
    /// ES256 signed with a key the server does not know.
    BadSignature,
    /// `alg: none`.
    AlgNone,
    /// `alg: HS256`.
    Hs256,
}

impl Jwt {
    /// The name the Python driver uses.
    pub fn driver_name(self) -> &'static str {
        match self {
            Jwt::Valid => "valid",
            Jwt::Expired => "expired",
            Jwt::BadSignature => "bad_signature",
            Jwt::AlgNone => "none",
            Jwt::Hs256 => "hs256",
        }
    }
}

/// One push and the answer Apple would give.
#[derive(Clone, Debug)]
pub struct Case {
    /// What the case is about.
    pub name: &'static str,
    /// The device token in the path.
    pub device_token: String,
    /// `apns-topic`.
    pub topic: String,
    /// `apns-push-type`, if sent.
    pub push_type: Option<&'static str>,
    /// `apns-priority`, if sent.
    pub priority: Option<&'static str>,
    /// `apns-collapse-id`, if sent.
    pub collapse_id: Option<String>,
    /// Payload size in bytes (a JSON object padded to exactly this size).
    pub payload_bytes: usize,
    /// The provider token it sends (token auth).
    pub jwt: Jwt,
    /// The status Apple answers.
    pub expect_status: u16,
    /// None for 200.
    pub expect_reason: Option<&'static str>,
    /// For 410: the timestamp (ms) the device was marked unregistered.
    pub expect_timestamp: Option<u64>,
}

/// What a client saw.
#[derive(Clone, Debug, Default)]
pub struct Reply {
    /// `:status`.
    pub status: u16,
    /// The JSON body's `reason`.
    pub reason: Option<String>,
    /// `apns-id`.
    pub apns_id: Option<String>,
    /// The JSON body's `timestamp` (410).
    pub timestamp: Option<u64>,
}

/// The VoIP payload limit.
pub const VOIP_LIMIT: usize = 5120;

/// A JSON object whose compact encoding is exactly `size` bytes (at least 40).
pub fn payload_of_size(size: usize) -> Vec<u8> {
    let empty = br#"{"aps":{"alert":"pushbench"},"pad":""}"#.len();
    assert!(
        size >= empty,
        "payload of {size} bytes is below the minimum {empty}"
    );
    let body = format!(
        r#"{{"aps":{{"alert":"pushbench"}},"pad":"{}"}}"#,
        "x".repeat(size - empty)
    );
    assert_eq!(body.len(), size);
    body.into_bytes()
}

/// Registers the devices and returns the standard catalogue for one client, environment and
/// auth mode. Token-auth-only cases (provider token errors) are included for [`AuthMethod::Token`].
pub fn standard(server: &MockServer, env: Environment, auth: AuthMethod) -> Vec<Case> {
    let m = &server.manifest;
    let bundle = m.bundle_id.clone();
    let voip = m.voip_topic();
    let topics = vec![bundle.clone(), voip.clone()];

    let online = fresh_device_token();
    server.register_device(&online, &topics, env);
    let foreign = fresh_device_token();
    server.register_device(&foreign, &["com.example.someone-else".to_string()], env);
    let gone = fresh_device_token();
    server.register_device(&gone, &topics, env);
    let gone_at = crate::apns::jwt::now_ms() - 3_600_000;
    server.set_state(&gone, "unregistered", Some(gone_at));
    let stale = fresh_device_token();
    server.register_device(&stale, &topics, env);
    let stale_at = gone_at - 86_400_000;
    server.set_state(&stale, "expired", Some(stale_at));

    let base = Case {
        name: "",
        device_token: online.clone(),
        topic: bundle.clone(),
        push_type: Some("alert"),
        priority: None,
        collapse_id: None,
        payload_bytes: 248,
        jwt: Jwt::Valid,
        expect_status: 200,
        expect_reason: None,
        expect_timestamp: None,
    };
    let voip_case = Case {
        topic: voip.clone(),
        push_type: Some("voip"),
        priority: Some("10"),
        ..base.clone()
    };
    let mut cases = vec![
        Case {
            name: "valid alert",
            ..base.clone()
        },
        Case {
            name: "voip at the 5120-byte limit",
            payload_bytes: VOIP_LIMIT,
            ..voip_case.clone()
        },
        Case {
            name: "voip one byte over the limit",
            payload_bytes: VOIP_LIMIT + 1,
            expect_status: 413,
            expect_reason: Some("PayloadTooLarge"),
            ..voip_case.clone()
        },
        Case {
            name: "malformed device token",
            device_token: "not-a-device-token".into(),
            expect_status: 400,
            expect_reason: Some("BadDeviceToken"),
            ..base.clone()
        },
        Case {
            name: "device registered for another topic",
            device_token: foreign,
            expect_status: 400,
            expect_reason: Some("DeviceTokenNotForTopic"),
            ..base.clone()
        },
        Case {
            name: "voip push to the bundle topic",
            topic: bundle.clone(),
            push_type: Some("voip"),
            expect_status: 400,
            expect_reason: Some("TopicDisallowed"),
            ..base.clone()
        },
        Case {
            name: "priority 7",
            priority: Some("7"),
            expect_status: 400,
            expect_reason: Some("BadPriority"),
            ..base.clone()
        },
        Case {
            name: "collapse id of 65 bytes",
            collapse_id: Some("c".repeat(65)),
            expect_status: 400,
            expect_reason: Some("BadCollapseId"),
            ..base.clone()
        },
        Case {
            name: "collapse id of 64 bytes",
            collapse_id: Some("c".repeat(64)),
            ..base.clone()
        },
        Case {
            name: "unregistered device",
            device_token: gone,
            expect_status: 410,
            expect_reason: Some("Unregistered"),
            expect_timestamp: Some(gone_at),
            ..base.clone()
        },
        Case {
            name: "expired device token",
            device_token: stale,
            expect_status: 410,
            expect_reason: Some("ExpiredToken"),
            expect_timestamp: Some(stale_at),
            ..base.clone()
        },
    ];
    if auth == AuthMethod::Token {
        let token_error = |name, jwt, status, reason| Case {
            name,
            jwt,
            expect_status: status,
            expect_reason: Some(reason),
            ..base.clone()
        };
        cases.extend([
            token_error(
                "provider token issued two hours ago",
                Jwt::Expired,
                403,
                "ExpiredProviderToken",
            ),
            token_error(
                "provider token signed by an unknown key",
                Jwt::BadSignature,
                403,
                "InvalidProviderToken",
            ),
            token_error(
                "provider token with alg none",
                Jwt::AlgNone,
                403,
                "InvalidProviderToken",
            ),
            token_error(
                "provider token with HS256",
                Jwt::Hs256,
                403,
                "InvalidProviderToken",
            ),
        ]);
    }
    cases
}

/// The provider token for `jwt` (token auth).
pub fn provider_token(server: &MockServer, jwt: Jwt) -> String {
    use crate::apns::jwt as j;
    let m = &server.manifest;
    let key = j::read_p8(&m.key_file);
    match jwt {
        Jwt::Valid => j::es256(&key, &m.key_id, &m.team_id, j::now(), j::Signature::Raw),
        Jwt::Expired => j::es256(
            &key,
            &m.key_id,
            &m.team_id,
            j::now() - 7200,
            j::Signature::Raw,
        ),
        Jwt::BadSignature => j::es256(
            &j::stranger_key(),
            &m.key_id,
            &m.team_id,
            j::now(),
            j::Signature::Raw,
        ),
        Jwt::AlgNone => j::alg_none(&m.key_id, &m.team_id, j::now()),
        Jwt::Hs256 => j::hs256(&m.key_id, &m.team_id, j::now(), b"not-an-apple-key"),
    }
}

/// Compares a reply with the case's expectation; returns a line describing the mismatch.
pub fn check(case: &Case, reply: &Reply) -> Result<(), String> {
    let mut problems = Vec::new();
    if reply.status != case.expect_status {
        problems.push(format!(
            "status {} (want {})",
            reply.status, case.expect_status
        ));
    }
    if reply.reason.as_deref() != case.expect_reason {
        problems.push(format!(
            "reason {:?} (want {:?})",
            reply.reason, case.expect_reason
        ));
    }
    match reply.apns_id.as_deref().map(uuid::Uuid::parse_str) {
        Some(Ok(_)) => {}
        other => problems.push(format!(
            "apns-id {:?} is not a UUID ({other:?})",
            reply.apns_id
        )),
    }
    if let Some(ts) = case.expect_timestamp {
        if reply.timestamp != Some(ts) {
            problems.push(format!("timestamp {:?} (want {ts} ms)", reply.timestamp));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}", case.name, problems.join(", ")))
    }
}

/// Checks every reply and panics with all mismatches at once (plus the server log tail).
pub fn assert_all(client: &str, server: &MockServer, results: &[(Case, Reply)]) {
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(case, reply)| {
            check(case, reply)
                .err()
                .map(|e| format!("{e}\n    got {reply:?}"))
        })
        .collect();
    if !failures.is_empty() {
        let log = server.log();
        let tail: String = log
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        panic!(
            "{client}: {} of {} cases wrong:\n  {}\nserver log tail:\n{tail}",
            failures.len(),
            results.len(),
            failures.join("\n  ")
        );
    }
}
