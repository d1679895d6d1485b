//! The fuzz target's entry point (`mock_apns::fuzzing::check_request`) run over a generated corpus
//! in a normal test, so CI exercises it on every run: the seeds in the workspace's
//! `fuzz/corpus/check_request/` and tens of thousands of deterministic mutations of them. Every
//! input must give a status APNs uses, with an Apple reason of that status for every rejection.

// The fuzz crate's own module, shared as is: its items are public for the fuzz targets.
#[path = "../../fuzz/src/apns_input.rs"]
#[allow(unreachable_pub)]
mod input;

use std::path::Path;
use testkit::rng::Rng;

/// Apple's reasons and their statuses (Apple, "Handling notification responses from APNs";
/// `docs/evidence.md` A2).
const REASONS: &[(&str, u16)] = &[
    ("BadCollapseId", 400),
    ("BadDeviceToken", 400),
    ("BadExpirationDate", 400),
    ("BadMessageId", 400),
    ("BadPriority", 400),
    ("BadTopic", 400),
    ("DeviceTokenNotForTopic", 400),
    ("DuplicateHeaders", 400),
    ("IdleTimeout", 400),
    ("InvalidPushType", 400),
    ("MissingDeviceToken", 400),
    ("MissingTopic", 400),
    ("PayloadEmpty", 400),
    ("TopicDisallowed", 400),
    ("BadCertificate", 403),
    ("BadCertificateEnvironment", 403),
    ("ExpiredProviderToken", 403),
    ("Forbidden", 403),
    ("InvalidProviderToken", 403),
    ("MissingProviderToken", 403),
    ("UnrelatedKeyIdInToken", 403),
    ("BadEnvironmentKeyIdInToken", 403),
    ("BadPath", 404),
    ("MethodNotAllowed", 405),
    ("ExpiredToken", 410),
    ("Unregistered", 410),
    ("PayloadTooLarge", 413),
    ("TooManyProviderTokenUpdates", 429),
    ("TooManyRequests", 429),
    ("InternalServerError", 500),
    ("ServiceUnavailable", 503),
    ("Shutdown", 503),
];

/// The seed files, by name.
fn named_seeds() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/check_request");
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("dir entry").path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("read seed"))
        })
        .collect();
    seeds.sort();
    assert!(
        seeds.len() >= 3,
        "expected the seed corpus in {}",
        dir.display()
    );
    seeds
}

fn seeds() -> Vec<Vec<u8>> {
    named_seeds().into_iter().map(|(_, data)| data).collect()
}

const NASTY: &[&[u8]] = &[
    b"\xff\xfe\xfd",
    b"\x00",
    b"\xc3",
    b": ",
    b"\n",
    b"\n\n",
    b"apns-topic: com.example.pushbench\n",
    b"apns-priority: 99999999999999999999\n",
    b"apns-expiration: -1\n",
    b"authorization: bearer ...\n",
    b"authorization: bearer $JWT\n",
    b"authorization: bearer $DERJWT\n",
    b"authorization: bearer eyJhbGciOiJub25lIn0.e30.\n",
    b":path: /3/device/\n",
    b":method: PUT\n",
    b"apns-push-type: voip\n",
    b"apns-id: 00000000-0000-0000-0000-00000000000G\n",
    b"{\"aps\":",
    b"\xf0\x9f\x98\x80",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(8) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => data.insert(at, rng.next() as u8),
            2 => {
                let end = (at + rng.below(32)).min(data.len());
                data.drain(at..end);
            }
            3 => data.truncate(at),
            4 => {
                let piece = NASTY[rng.below(NASTY.len())];
                data.splice(at..at, piece.iter().copied());
            }
            5 => {
                // Duplicate a line.
                let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
                let line = lines[rng.below(lines.len())].to_vec();
                data.splice(0..0, line.into_iter().chain([b'\n']));
            }
            6 => {
                // A long run: huge header values or bodies.
                let run = vec![b"a0\xff"[rng.below(3)]; 1 + rng.below(9000)];
                data.splice(at..at, run);
            }
            _ => {
                // Splice with another seed.
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
        }
    }
    data
}

fn check(data: &[u8]) -> Result<(u16, Option<String>), String> {
    let data = input::with_fresh_tokens(data);
    let request = input::parse(&data);
    let (status, reason) = mock_apns::fuzzing::check_request(&request.headers, request.body);
    match (status, reason.as_deref()) {
        (200, None) => Ok((status, reason)),
        (200, Some(r)) => Err(format!("200 with reason {r}")),
        (s, None) => Err(format!("{s} without a reason")),
        (s, Some(r)) => match REASONS.iter().find(|(name, _)| *name == r) {
            Some((_, expected)) if *expected == s => Ok((status, reason)),
            Some((_, expected)) => Err(format!("{r} with status {s}, Apple uses {expected}")),
            None => Err(format!("{r} is not an Apple reason")),
        },
    }
}

#[test]
fn seeds_are_valid_requests_except_the_get() {
    for (name, data) in named_seeds() {
        let expected = if name == "get" {
            (405, Some("MethodNotAllowed".to_string()))
        } else {
            (200, None)
        };
        assert_eq!(check(&data), Ok(expected), "seed {name}");
    }
}

#[test]
fn generated_corpus_never_panics_and_always_gives_apple_answers() {
    let seeds = seeds();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..12_000 {
        let data = if i < seeds.len() {
            seeds[i].clone()
        } else {
            mutate(&mut rng, &seeds)
        };
        let outcome = std::panic::catch_unwind(|| check(&data));
        match outcome {
            Ok(Ok((status, reason))) => *statuses.entry((status, reason)).or_insert(0u32) += 1,
            Ok(Err(problem)) => panic!("input #{i} {:?}: {problem}", timeline::escape_bytes(&data)),
            Err(_) => panic!(
                "check_request panicked on input #{i}: {:?}",
                timeline::escape_bytes(&data)
            ),
        }
    }
    // The corpus must reach more than one branch, or it proves nothing.
    let distinct_reasons = statuses.keys().filter(|(_, r)| r.is_some()).count();
    assert!(
        distinct_reasons >= 15,
        "the corpus reached only {statuses:?}"
    );
}
