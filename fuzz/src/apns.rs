//! mock-apns's parsers: its HTTP/2 engine fed raw client bytes, its HPACK decoder, its request
//! check (headers, JWT, topic, payload, device registry) and its provider-token verifier.

use crate::apns_input;
use mock_apns::fuzzing::{check_request as check, fixed_token, serve_http2_bytes};
use mock_apns::fuzzing::{FIXED_KEY_ID, FIXED_KEY_PEM, FIXED_TEAM_ID};
use mock_apns::http2::hpack::{Decoder, HeaderList};
use mock_apns::jwt::{KeyRing, ProviderKey};
use mock_apns::SignatureEncoding;
use std::sync::OnceLock;

/// The HTTP/2 engine on any client bytes (after the preface): the connection ends, with a
/// reason, and never panics or hangs (AFL's timeout catches a hang).
pub fn http2_frames(data: &[u8]) {
    let run = serve_http2_bytes(data);
    assert!(!run.ended.is_empty());
}

/// The HPACK decoder on any header block, decoded twice on one connection's decoder (the second
/// time against the dynamic table the first left). A decoded list adds up: its RFC 9113 size is the
/// sum of its fields' sizes, and a list within the limit keeps every field.
pub fn hpack(data: &[u8]) {
    // The first byte picks the list limit: from 0 (every field over it) to 8000 (APNs').
    let (limit, block) = match data.split_first() {
        Some((&b, rest)) => (usize::from(b) * 8000 / 255, rest),
        None => (8000, data),
    };
    let mut decoder = Decoder::new(4096);
    let mut list = HeaderList::default();
    for _ in 0..2 {
        if decoder.decode(block, &mut list, limit).is_err() {
            return;
        }
        let stored: usize = list.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
        assert_eq!(
            list.iter().count(),
            list.len(),
            "every stored field reads back"
        );
        if list.oversized() {
            assert!(
                list.size() > limit,
                "oversized at {} of {limit}",
                list.size()
            );
            assert!(
                stored <= limit,
                "stored {stored} bytes over the limit {limit}"
            );
        } else {
            assert_eq!(stored, list.size(), "sizes do not add up");
            assert!(list.size() <= limit);
        }
    }
}

/// The request check on any header list and body (`apns_input`'s format): a status APNs uses,
/// with an Apple reason exactly when it is not 200.
pub fn check_request(data: &[u8]) {
    let data = apns_input::with_fresh_tokens(data);
    let request = apns_input::parse(&data);
    let (status, reason) = check(&request.headers, request.body);
    assert!(
        matches!(
            status,
            200 | 400 | 403 | 404 | 405 | 410 | 413 | 429 | 500 | 503
        ),
        "status {status} is not one APNs uses"
    );
    assert_eq!(
        status == 200,
        reason.is_none(),
        "status {status} with reason {reason:?}"
    );
}

/// The keys the JWT target knows: the fuzzing key.
fn key_ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| {
        let mut ring = KeyRing::new();
        if let Ok(key) =
            ProviderKey::from_pkcs8_pem(FIXED_KEY_ID, FIXED_TEAM_ID, FIXED_KEY_PEM.as_bytes())
        {
            ring.add_key(&key);
        }
        ring
    })
}

/// The provider-token verifier on any text (`$JWT` and `$DERJWT` become tokens of the fuzzing
/// key issued at 1 000 000 000, as in `apns_input`): a token it accepts names the fuzzing key and
/// its team, was signed by it, and is accepted again; one it rejects has an Apple reason of 403.
pub fn jwt(data: &[u8]) {
    const IAT: i64 = 1_000_000_000;
    let text = String::from_utf8_lossy(data);
    let text = text
        .replace("$DERJWT", &fixed_token(IAT, SignatureEncoding::Der))
        .replace("$JWT", &fixed_token(IAT, SignatureEncoding::Raw));
    let ring = key_ring();
    match ring.verify(&text, IAT + 60) {
        Ok(token) => {
            assert_eq!(token.key_id, FIXED_KEY_ID);
            assert_eq!(token.team_id, FIXED_TEAM_ID);
            assert_eq!(ring.verify(&text, IAT + 60), Ok(token), "not deterministic");
        }
        Err(rejection) => {
            assert_eq!(rejection.reason().status(), 403, "{rejection:?}");
        }
    }
}
