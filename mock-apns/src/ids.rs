//! Fast random identifiers for `apns-id` and `apns-unique-id`: a per-thread splitmix64 stream
//! seeded once from the OS, so the hot path makes no system call.

use std::cell::Cell;

thread_local! {
    static STATE: Cell<u64> = Cell::new({
        let b = *uuid::Uuid::new_v4().as_bytes();
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    });
}

fn splitmix64() -> u64 {
    STATE.with(|s| {
        let x = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// A random (version 4) UUID in canonical lowercase form. Not for secrets.
pub(crate) fn random_uuid() -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&splitmix64().to_le_bytes());
    bytes[8..].copy_from_slice(&splitmix64().to_le_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn distinct_canonical_v4() {
        let a = super::random_uuid();
        let b = super::random_uuid();
        assert_ne!(a, b);
        assert!(crate::validate::is_canonical_uuid(a.as_bytes()));
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 4);
    }
}
