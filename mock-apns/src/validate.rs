//! Request validation: Apple's rules for `POST /3/device/<token>`, each with its exact reason.
//!
//! Order (Apple documents none; see the README): duplicate headers, method, path, authentication,
//! `apns-id`, `apns-push-type`, `apns-priority`, `apns-expiration`, `apns-collapse-id`, topic
//! (presence, syntax, permission, push-type suffix, background priority), device token syntax,
//! payload (empty, size, JSON).

use crate::auth::{AuthFailure, AuthIdentity, Authenticated, ConnectionAuth};
use crate::jwt::KeyRing;
use crate::Reason;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Payload limit of every push type but VoIP.
pub const MAX_PAYLOAD: usize = 4096;
/// Payload limit of VoIP pushes.
pub const MAX_VOIP_PAYLOAD: usize = 5120;
/// `apns-collapse-id` limit in bytes.
pub const MAX_COLLAPSE_ID: usize = 64;
/// Longest device token accepted, in hex digits (Apple: do not assume a length).
pub const MAX_TOKEN_HEX: usize = 200;

/// `apns-push-type` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushType {
    /// `alert`: topic `<bundle>`.
    Alert,
    /// `background`: topic `<bundle>`, priority 5 only.
    Background,
    /// `location`: `<bundle>.location-query`, token auth only.
    Location,
    /// `voip`: `<bundle>.voip`, payload up to 5120 bytes.
    Voip,
    /// `complication`: `<bundle>.complication`.
    Complication,
    /// `fileprovider`: `<bundle>.pushkit.fileprovider`.
    Fileprovider,
    /// `mdm`: any topic (the MDM certificate's UID).
    Mdm,
    /// `liveactivity`: `<bundle>.push-type.liveactivity`, token auth only.
    Liveactivity,
    /// `pushtotalk`: `<bundle>.voip-ptt`.
    Pushtotalk,
    /// `widgets`: `<bundle>.push-type.widgets`.
    Widgets,
    /// `controls`: `<bundle>.push-type.controls`.
    Controls,
}

impl PushType {
    /// Every push type.
    pub const ALL: &'static [PushType] = &[
        PushType::Alert,
        PushType::Background,
        PushType::Location,
        PushType::Voip,
        PushType::Complication,
        PushType::Fileprovider,
        PushType::Mdm,
        PushType::Liveactivity,
        PushType::Pushtotalk,
        PushType::Widgets,
        PushType::Controls,
    ];

    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            PushType::Alert => "alert",
            PushType::Background => "background",
            PushType::Location => "location",
            PushType::Voip => "voip",
            PushType::Complication => "complication",
            PushType::Fileprovider => "fileprovider",
            PushType::Mdm => "mdm",
            PushType::Liveactivity => "liveactivity",
            PushType::Pushtotalk => "pushtotalk",
            PushType::Widgets => "widgets",
            PushType::Controls => "controls",
        }
    }

    /// Parses the header value (exact, lowercase).
    pub fn parse(value: &[u8]) -> Option<PushType> {
        PushType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str().as_bytes() == value)
    }

    /// The suffix its topic carries after the bundle id (`None` for mdm: any topic).
    pub fn topic_suffix(self) -> Option<&'static str> {
        Some(match self {
            PushType::Alert | PushType::Background => "",
            PushType::Location => ".location-query",
            PushType::Voip => ".voip",
            PushType::Complication => ".complication",
            PushType::Fileprovider => ".pushkit.fileprovider",
            PushType::Mdm => return None,
            PushType::Liveactivity => ".push-type.liveactivity",
            PushType::Pushtotalk => ".voip-ptt",
            PushType::Widgets => ".push-type.widgets",
            PushType::Controls => ".push-type.controls",
        })
    }

    /// Payload limit.
    pub fn max_payload(self) -> usize {
        if self == PushType::Voip {
            MAX_VOIP_PAYLOAD
        } else {
            MAX_PAYLOAD
        }
    }
}

/// The suffixes a topic may carry, longest first (so `.voip-ptt` is not read as `.voip`).
const SUFFIXES: &[&str] = &[
    ".push-type.liveactivity",
    ".pushkit.fileprovider",
    ".push-type.controls",
    ".push-type.widgets",
    ".location-query",
    ".complication",
    ".voip-ptt",
    ".voip",
];

/// Every topic a bundle id owns: the bundle and each push-type suffix.
pub fn topics_of_bundle(bundle: &str) -> Vec<String> {
    std::iter::once(bundle.to_owned())
        .chain(SUFFIXES.iter().rev().map(|s| format!("{bundle}{s}")))
        .collect()
}

/// Splits a topic into (bundle, suffix) given the known suffixes.
fn split_topic(topic: &str) -> (&str, &str) {
    for s in SUFFIXES {
        if let Some(bundle) = topic.strip_suffix(s) {
            if !bundle.is_empty() {
                return (bundle, &topic[bundle.len()..]);
            }
        }
    }
    (topic, "")
}

/// The headers APNs reads, as raw bytes. Pseudo-headers come from `:method` and `:path`.
#[derive(Default, Debug)]
pub struct RequestHeaders<'a> {
    /// `:method`.
    pub method: Option<&'a [u8]>,
    /// `:path`.
    pub path: Option<&'a [u8]>,
    /// `authorization`.
    pub authorization: Option<&'a [u8]>,
    /// `apns-id`.
    pub apns_id: Option<&'a [u8]>,
    /// `apns-push-type`.
    pub push_type: Option<&'a [u8]>,
    /// `apns-priority`.
    pub priority: Option<&'a [u8]>,
    /// `apns-expiration`.
    pub expiration: Option<&'a [u8]>,
    /// `apns-collapse-id`.
    pub collapse_id: Option<&'a [u8]>,
    /// `apns-topic`.
    pub topic: Option<&'a [u8]>,
    /// A header APNs reads appeared twice.
    pub duplicate: bool,
}

impl<'a> RequestHeaders<'a> {
    /// Collects headers from (name, value) pairs; names compare case-insensitively.
    pub fn collect(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Self {
        let mut h = RequestHeaders::default();
        let mut lower = [0u8; 16];
        for (name, value) in pairs {
            // HTTP/2 names are lowercase already; others (the fuzzing entry point) are folded.
            let name = if name.len() <= lower.len() && name.iter().any(u8::is_ascii_uppercase) {
                let folded = &mut lower[..name.len()];
                folded.copy_from_slice(name);
                folded.make_ascii_lowercase();
                &*folded
            } else {
                name
            };
            let slot = match name {
                b":method" => &mut h.method,
                b":path" => &mut h.path,
                b"authorization" => &mut h.authorization,
                b"apns-id" => &mut h.apns_id,
                b"apns-push-type" => &mut h.push_type,
                b"apns-priority" => &mut h.priority,
                b"apns-expiration" => &mut h.expiration,
                b"apns-collapse-id" => &mut h.collapse_id,
                b"apns-topic" => &mut h.topic,
                _ => continue,
            };
            if slot.is_some() {
                h.duplicate = true;
            }
            *slot = Some(value);
        }
        h
    }
}

/// What APNs knows about providers: keys and the bundles of each team.
#[derive(Clone, Debug, Default)]
pub struct Providers {
    /// Verification keys.
    pub keys: KeyRing,
    /// Team id -> bundle ids it owns.
    pub bundles: HashMap<String, Vec<String>>,
    /// New token values a connection may adopt per 20 minutes.
    pub token_updates_per_window: usize,
}

/// A push that passed validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ValidPush {
    /// The device token, lowercase hex.
    pub token: String,
    /// `apns-topic` (or the certificate's default topic).
    pub topic: String,
    /// `apns-push-type` (or inferred from the topic suffix).
    pub push_type: PushType,
    /// `apns-priority` (10 when absent; 5 for background).
    pub priority: u8,
    /// `apns-expiration` (UNIX seconds), if given.
    pub expiration: Option<u64>,
    /// `apns-collapse-id`, if given.
    pub collapse_id: Option<String>,
}

/// A rejection with Apple's reason and a detail for the push log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Sent to the client.
    pub reason: Reason,
    /// Why, for humans.
    pub detail: &'static str,
}

fn reject<T>(reason: Reason, detail: &'static str) -> Result<T, Rejection> {
    Err(Rejection { reason, detail })
}

impl From<AuthFailure> for Rejection {
    fn from(f: AuthFailure) -> Self {
        Rejection {
            reason: f.reason,
            detail: f.detail,
        }
    }
}

/// The result of validating one request.
#[derive(Debug)]
pub struct Validation {
    /// `apns-id` to answer with: the request's when valid, otherwise a fresh one.
    pub apns_id: String,
    /// The device token as it appeared in the path, when there was one.
    pub token: Option<String>,
    /// Who pushed.
    pub identity: AuthIdentity,
    /// True when this request carried the connection's first valid provider token.
    pub first_valid_token: bool,
    /// The push, or why it is refused.
    pub outcome: Result<ValidPush, Rejection>,
}

/// True for the canonical 8-4-4-4-12 hex form (either case).
pub fn is_canonical_uuid(v: &[u8]) -> bool {
    v.len() == 36
        && v.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Header bytes as an owned string: UTF-8 as is (the common, fast case), anything else with
/// replacement characters.
fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

fn parse_token(raw: &[u8]) -> Result<String, Rejection> {
    if raw.is_empty()
        || raw.len() > MAX_TOKEN_HEX
        || raw.len() % 2 != 0
        || !raw.iter().all(u8::is_ascii_hexdigit)
    {
        return reject(
            Reason::BadDeviceToken,
            "device token is not an even number of hex digits",
        );
    }
    // Only ASCII hex digits are left: lowercasing keeps it UTF-8.
    Ok(String::from_utf8(raw.to_ascii_lowercase()).unwrap_or_default())
}

fn is_valid_topic(t: &[u8]) -> bool {
    !t.is_empty() && t.len() <= 255 && t.iter().all(|b| b.is_ascii_graphic())
}

/// Validates one request (everything but the device registry).
pub fn validate(
    providers: &Providers,
    auth: &mut ConnectionAuth,
    h: &RequestHeaders<'_>,
    body: &[u8],
    now: i64,
) -> Validation {
    let mut v = Validation {
        apns_id: match h.apns_id {
            Some(id) if is_canonical_uuid(id) => text(id),
            _ => crate::ids::random_uuid(),
        },
        token: None,
        identity: AuthIdentity::None,
        first_valid_token: false,
        outcome: reject(Reason::InternalServerError, "not validated"),
    };
    v.outcome = validate_inner(providers, auth, h, body, now, &mut v);
    v
}

fn validate_inner(
    providers: &Providers,
    auth: &mut ConnectionAuth,
    h: &RequestHeaders<'_>,
    body: &[u8],
    now: i64,
    v: &mut Validation,
) -> Result<ValidPush, Rejection> {
    if h.duplicate {
        return reject(Reason::DuplicateHeaders, "a header appears more than once");
    }
    if h.method != Some(b"POST") {
        return reject(Reason::MethodNotAllowed, ":method is not POST");
    }
    let path = h.path.unwrap_or_default();
    let Some(raw_token) = path.strip_prefix(b"/3/device/") else {
        if path == b"/3/device" {
            return reject(Reason::MissingDeviceToken, "no device token in :path");
        }
        return reject(Reason::BadPath, ":path is not /3/device/<token>");
    };
    if raw_token.is_empty() {
        return reject(Reason::MissingDeviceToken, "no device token in :path");
    }
    if raw_token.contains(&b'/') {
        return reject(Reason::BadPath, ":path has segments after the token");
    }
    v.token = Some(text(raw_token));

    let team_bundles: Vec<&str>;
    match auth.authenticate(
        &providers.keys,
        h.authorization,
        now,
        providers.token_updates_per_window,
    )? {
        Authenticated::Token { token, first } => {
            v.first_valid_token = first;
            team_bundles = providers
                .bundles
                .get(&token.team_id)
                .map(|b| b.iter().map(String::as_str).collect())
                .unwrap_or_default();
            v.identity = AuthIdentity::Token {
                team_id: token.team_id,
                key_id: token.key_id,
            };
        }
        Authenticated::Certificate => {
            let cert = auth
                .certificate()
                .expect("certificate auth has a certificate");
            team_bundles = vec![cert.uid.as_str()];
            v.identity = AuthIdentity::Certificate {
                uid: cert.uid.clone(),
            };
        }
    }
    let by_certificate = matches!(v.identity, AuthIdentity::Certificate { .. });

    if h.apns_id.is_some_and(|id| !is_canonical_uuid(id)) {
        return reject(Reason::BadMessageId, "apns-id is not a canonical UUID");
    }
    let explicit_type = match h.push_type {
        Some(t) => Some(PushType::parse(t).ok_or(Rejection {
            reason: Reason::InvalidPushType,
            detail: "unknown apns-push-type",
        })?),
        None => None,
    };
    let priority = match h.priority {
        None => None,
        Some(b"10") => Some(10),
        Some(b"5") => Some(5),
        Some(b"1") => Some(1),
        Some(_) => return reject(Reason::BadPriority, "apns-priority is not 1, 5 or 10"),
    };
    let expiration = match h.expiration {
        None => None,
        Some(e) => Some(
            std::str::from_utf8(e)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(Rejection {
                    reason: Reason::BadExpirationDate,
                    detail: "apns-expiration is not UNIX seconds",
                })?,
        ),
    };
    let collapse_id = match h.collapse_id {
        Some(c) if c.len() > MAX_COLLAPSE_ID => {
            return reject(Reason::BadCollapseId, "apns-collapse-id is over 64 bytes")
        }
        Some(c) => Some(text(c)),
        None => None,
    };

    // Topic.
    let topic: String = match h.topic {
        Some(t) => {
            if !is_valid_topic(t) {
                return reject(
                    Reason::BadTopic,
                    "apns-topic is empty or not printable ASCII",
                );
            }
            text(t)
        }
        None => match auth.certificate() {
            Some(cert) if by_certificate && cert.topics.len() == 1 => cert.uid.clone(),
            _ => return reject(Reason::MissingTopic, "apns-topic is required"),
        },
    };
    let allowed = if by_certificate {
        auth.certificate()
            .is_some_and(|c| c.topics.contains(&topic))
    } else {
        let (bundle, _) = split_topic(&topic);
        team_bundles.contains(&bundle)
    };
    let (_, suffix) = split_topic(&topic);
    let push_type = explicit_type.unwrap_or_else(|| {
        PushType::ALL
            .iter()
            .copied()
            .find(|t| t.topic_suffix() == Some(suffix) && *t != PushType::Background)
            .unwrap_or(PushType::Alert)
    });
    if !allowed && push_type != PushType::Mdm {
        return reject(
            Reason::TopicDisallowed,
            "apns-topic is not one of this provider's topics",
        );
    }
    if let Some(required) = push_type.topic_suffix() {
        if required != suffix {
            if required.is_empty() {
                return reject(
                    Reason::InvalidPushType,
                    "push type needs the bare bundle topic",
                );
            }
            return reject(
                Reason::TopicDisallowed,
                "topic lacks the suffix this push type needs",
            );
        }
    }
    if by_certificate && matches!(push_type, PushType::Location | PushType::Liveactivity) {
        return reject(
            Reason::TopicDisallowed,
            "this push type needs token authentication",
        );
    }
    let priority = match (push_type, priority) {
        (PushType::Background, None | Some(5)) => 5,
        (PushType::Background, Some(_)) => {
            return reject(Reason::BadPriority, "background pushes must use priority 5")
        }
        (_, p) => p.unwrap_or(10),
    };

    let token = parse_token(raw_token)?;

    if body.is_empty() {
        return reject(Reason::PayloadEmpty, "empty payload");
    }
    if body.len() > push_type.max_payload() {
        return reject(
            Reason::PayloadTooLarge,
            "payload over the push type's limit",
        );
    }
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok();
    if !is_object {
        return reject(Reason::PayloadEmpty, "payload is not a JSON object");
    }
    Ok(ValidPush {
        token,
        topic,
        push_type,
        priority,
        expiration,
        collapse_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::CertIdentity;
    use crate::jwt::SignatureEncoding;

    const NOW: i64 = 1_800_000_000;
    const TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
    const BUNDLE: &str = "com.example.pushbench";

    struct Fixture {
        providers: Providers,
        jwt: String,
    }

    fn fixture() -> Fixture {
        let key = crate::jwt::tests::test_key();
        let mut providers = Providers {
            token_updates_per_window: 1,
            ..Default::default()
        };
        providers.keys.add_key(&key);
        providers
            .bundles
            .insert(key.team_id.clone(), vec![BUNDLE.into()]);
        Fixture {
            providers,
            jwt: format!("bearer {}", key.sign(NOW, SignatureEncoding::Raw).unwrap()),
        }
    }

    fn run(
        f: &Fixture,
        edit: impl FnOnce(&mut Vec<(String, String)>),
        body: &[u8],
    ) -> Result<ValidPush, Reason> {
        run_with(f, &mut ConnectionAuth::new(None), edit, body)
    }

    fn run_with(
        f: &Fixture,
        auth: &mut ConnectionAuth,
        edit: impl FnOnce(&mut Vec<(String, String)>),
        body: &[u8],
    ) -> Result<ValidPush, Reason> {
        let mut headers: Vec<(String, String)> = vec![
            (":method".into(), "POST".into()),
            (":path".into(), format!("/3/device/{TOKEN}")),
            ("authorization".into(), f.jwt.clone()),
            ("apns-topic".into(), format!("{BUNDLE}.voip")),
            ("apns-push-type".into(), "voip".into()),
            ("apns-priority".into(), "10".into()),
            ("apns-expiration".into(), "0".into()),
        ];
        edit(&mut headers);
        let h = RequestHeaders::collect(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        validate(&f.providers, auth, &h, body, NOW)
            .outcome
            .map_err(|r| r.reason)
    }

    fn set(name: &str, value: &str) -> impl FnOnce(&mut Vec<(String, String)>) {
        let (name, value) = (name.to_owned(), value.to_owned());
        move |h| {
            h.retain(|(n, _)| *n != name);
            h.push((name, value));
        }
    }

    fn remove(name: &str) -> impl FnOnce(&mut Vec<(String, String)>) {
        let name = name.to_owned();
        move |h| h.retain(|(n, _)| *n != name)
    }

    const BODY: &[u8] = br#"{"aps":{"alert":"hi"}}"#;

    #[test]
    fn a_valid_voip_push() {
        let f = fixture();
        let p = run(&f, |_| {}, BODY).unwrap();
        assert_eq!(p.push_type, PushType::Voip);
        assert_eq!(p.topic, format!("{BUNDLE}.voip"));
        assert_eq!(p.priority, 10);
        assert_eq!(p.expiration, Some(0));
        assert_eq!(p.token, TOKEN);
    }

    #[test]
    fn header_names_match_in_any_case() {
        let h = RequestHeaders::collect([
            (&b":method"[..], &b"POST"[..]),
            (b"APNS-Topic", b"t"),
            (b"Authorization", b"bearer x"),
            (b"apns-collapse-id", b"c"),
            (b"APNS-COLLAPSE-ID", b"d"),
            (b"X-Apns-Topic-Longer-Than-Sixteen", b"ignored"),
        ]);
        assert_eq!(h.method, Some(&b"POST"[..]));
        assert_eq!(h.topic, Some(&b"t"[..]));
        assert_eq!(h.authorization, Some(&b"bearer x"[..]));
        assert_eq!(h.collapse_id, Some(&b"d"[..]));
        assert!(h.duplicate, "apns-collapse-id twice, in two cases");
        let h = RequestHeaders::collect([(&b"apns-topic"[..], &b"t"[..])]);
        assert!(!h.duplicate);
    }

    #[test]
    fn method_path_and_duplicates() {
        let f = fixture();
        assert_eq!(
            run(&f, set(":method", "GET"), BODY),
            Err(Reason::MethodNotAllowed)
        );
        assert_eq!(
            run(&f, set(":path", "/3/device/"), BODY),
            Err(Reason::MissingDeviceToken)
        );
        assert_eq!(
            run(&f, set(":path", "/3/device"), BODY),
            Err(Reason::MissingDeviceToken)
        );
        assert_eq!(run(&f, set(":path", "/"), BODY), Err(Reason::BadPath));
        assert_eq!(
            run(&f, set(":path", "/3/devices/ab"), BODY),
            Err(Reason::BadPath)
        );
        assert_eq!(
            run(&f, set(":path", "/3/device/ab/cd"), BODY),
            Err(Reason::BadPath)
        );
        assert_eq!(
            run(&f, set(":path", "/3/device/xyz"), BODY),
            Err(Reason::BadDeviceToken)
        );
        assert_eq!(
            run(&f, set(":path", "/3/device/abc"), BODY),
            Err(Reason::BadDeviceToken)
        );
        assert_eq!(
            run(&f, |h| h.push(("apns-topic".into(), BUNDLE.into())), BODY),
            Err(Reason::DuplicateHeaders)
        );
        // Uppercase hex is accepted and normalised.
        let p = run(
            &f,
            set(":path", &format!("/3/device/{}", TOKEN.to_uppercase())),
            BODY,
        )
        .unwrap();
        assert_eq!(p.token, TOKEN);
    }

    #[test]
    fn header_values() {
        let f = fixture();
        assert_eq!(
            run(&f, set("apns-id", "not-a-uuid"), BODY),
            Err(Reason::BadMessageId)
        );
        assert!(run(
            &f,
            set("apns-id", "123e4567-e89b-12d3-a456-426614174000"),
            BODY
        )
        .is_ok());
        assert_eq!(
            run(&f, set("apns-push-type", "VOIP"), BODY),
            Err(Reason::InvalidPushType)
        );
        assert_eq!(
            run(&f, set("apns-priority", "7"), BODY),
            Err(Reason::BadPriority)
        );
        assert!(run(&f, set("apns-priority", "1"), BODY).is_ok());
        assert!(run(&f, set("apns-priority", "5"), BODY).is_ok());
        assert_eq!(
            run(&f, set("apns-expiration", "-1"), BODY),
            Err(Reason::BadExpirationDate)
        );
        assert_eq!(
            run(&f, set("apns-expiration", "soon"), BODY),
            Err(Reason::BadExpirationDate)
        );
        assert_eq!(
            run(&f, set("apns-collapse-id", &"c".repeat(65)), BODY),
            Err(Reason::BadCollapseId)
        );
        assert_eq!(
            run(&f, set("apns-collapse-id", &"c".repeat(64)), BODY)
                .unwrap()
                .collapse_id
                .unwrap()
                .len(),
            64
        );
    }

    #[test]
    fn topics_and_push_types() {
        let f = fixture();
        assert_eq!(
            run(&f, remove("apns-topic"), BODY),
            Err(Reason::MissingTopic)
        );
        assert_eq!(
            run(&f, set("apns-topic", "has space"), BODY),
            Err(Reason::BadTopic)
        );
        assert_eq!(
            run(&f, set("apns-topic", "org.other.app.voip"), BODY),
            Err(Reason::TopicDisallowed)
        );
        // voip push without .voip
        assert_eq!(
            run(&f, set("apns-topic", BUNDLE), BODY),
            Err(Reason::TopicDisallowed)
        );
        // alert push to the .voip topic (apnotic#87)
        assert_eq!(
            run(&f, set("apns-push-type", "alert"), BODY),
            Err(Reason::InvalidPushType)
        );
        // Without apns-push-type the type follows the topic.
        let p = run(&f, remove("apns-push-type"), BODY).unwrap();
        assert_eq!(p.push_type, PushType::Voip);
        let p = run(
            &f,
            |h| {
                remove("apns-push-type")(h);
                set("apns-topic", BUNDLE)(h)
            },
            BODY,
        )
        .unwrap();
        assert_eq!(p.push_type, PushType::Alert);
        let p = run(
            &f,
            |h| {
                set("apns-push-type", "pushtotalk")(h);
                set("apns-topic", &format!("{BUNDLE}.voip-ptt"))(h)
            },
            BODY,
        )
        .unwrap();
        assert_eq!(p.push_type, PushType::Pushtotalk);
        // background: priority 5 only
        let bg = |p: &'static str| {
            move |h: &mut Vec<(String, String)>| {
                set("apns-push-type", "background")(h);
                set("apns-topic", BUNDLE)(h);
                set("apns-priority", p)(h);
            }
        };
        assert_eq!(run(&f, bg("10"), BODY), Err(Reason::BadPriority));
        assert_eq!(run(&f, bg("1"), BODY), Err(Reason::BadPriority));
        assert_eq!(run(&f, bg("5"), BODY).unwrap().priority, 5);
    }

    #[test]
    fn payloads() {
        let f = fixture();
        assert_eq!(run(&f, |_| {}, b""), Err(Reason::PayloadEmpty));
        assert_eq!(run(&f, |_| {}, b"[1]"), Err(Reason::PayloadEmpty));
        assert_eq!(run(&f, |_| {}, b"{\"a\":"), Err(Reason::PayloadEmpty));
        let sized = |n: usize| {
            let mut p = br#"{"p":""#.to_vec();
            p.resize(n - 2, b'x');
            p.extend_from_slice(b"\"}");
            assert_eq!(p.len(), n);
            p
        };
        assert!(run(&f, |_| {}, &sized(5120)).is_ok());
        assert_eq!(run(&f, |_| {}, &sized(5121)), Err(Reason::PayloadTooLarge));
        let alert = |h: &mut Vec<(String, String)>| {
            set("apns-push-type", "alert")(h);
            set("apns-topic", BUNDLE)(h);
        };
        assert!(run(&f, alert, &sized(4096)).is_ok());
        assert_eq!(run(&f, alert, &sized(4097)), Err(Reason::PayloadTooLarge));
    }

    #[test]
    fn authentication_errors_come_before_header_errors() {
        let f = fixture();
        assert_eq!(
            run(
                &f,
                |h| {
                    remove("authorization")(h);
                    set("apns-priority", "7")(h)
                },
                BODY
            ),
            Err(Reason::MissingProviderToken)
        );
        assert_eq!(
            run(&f, set("authorization", "bearer x.y.z"), BODY),
            Err(Reason::InvalidProviderToken)
        );
    }

    #[test]
    fn certificate_topics() {
        let f = fixture();
        let cert = CertIdentity {
            uid: BUNDLE.into(),
            topics: vec![BUNDLE.into(), format!("{BUNDLE}.voip")],
            sandbox: true,
            production: true,
        };
        let mut auth = ConnectionAuth::new(Some(cert.clone()));
        assert!(run_with(&f, &mut auth, remove("authorization"), BODY).is_ok());
        let mut auth = ConnectionAuth::new(Some(cert.clone()));
        assert_eq!(
            run_with(
                &f,
                &mut auth,
                |h| {
                    remove("authorization")(h);
                    remove("apns-topic")(h)
                },
                BODY
            ),
            Err(Reason::MissingTopic)
        );
        let mut auth = ConnectionAuth::new(Some(cert));
        assert_eq!(
            run_with(
                &f,
                &mut auth,
                |h| {
                    remove("authorization")(h);
                    set("apns-topic", &format!("{BUNDLE}.complication"))(h);
                    set("apns-push-type", "complication")(h)
                },
                BODY
            ),
            Err(Reason::TopicDisallowed)
        );
        let single = CertIdentity {
            uid: BUNDLE.into(),
            topics: vec![BUNDLE.into()],
            sandbox: true,
            production: false,
        };
        let mut auth = ConnectionAuth::new(Some(single));
        let p = run_with(
            &f,
            &mut auth,
            |h| {
                remove("authorization")(h);
                remove("apns-topic")(h);
                remove("apns-push-type")(h)
            },
            BODY,
        )
        .unwrap();
        assert_eq!(p.topic, BUNDLE);
    }

    #[test]
    fn topic_split_prefers_the_longest_suffix() {
        assert_eq!(split_topic("a.b.voip-ptt"), ("a.b", ".voip-ptt"));
        assert_eq!(split_topic("a.b.voip"), ("a.b", ".voip"));
        assert_eq!(split_topic(".voip"), (".voip", ""));
        assert_eq!(topics_of_bundle("x").len(), 9);
    }
}
