//! The parser path over a generated mutation corpus: every corpus message, damaged thousands of
//! ways (bit flips, byte insertions and deletions, cuts, duplicated slices, stray CR/LF, huge
//! runs), must give a value or an error — never a panic — and whatever parses must survive its
//! typed views and be written back to something that reads as the same message.
//!
//! It is the deterministic companion of the AFL targets `sip_message` and `sip_stream` (the
//! workspace's `fuzz/`): it runs in every `cargo test` with a fixed seed, so a failure reproduces.

mod parser_check;

use std::path::Path;

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n\r\n",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"<",
    b">",
    b"\"",
    b"\\",
    b"=",
    b"@",
    b"[",
    b"]",
    b"%",
    b"%zz",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"SIP/2.0",
    b"Content-Length: ",
    b"l: 99999999999999999999",
    b"v: SIP/2.0/UDP [::1",
    b"m: <sip:[",
    b";pn-prid=%",
    b"*",
    b"4294967296",
    b"-1",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(len + 1);
                let token = INTERESTING[rng.below(INTERESTING.len())];
                data.splice(i..i, token.iter().copied());
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                data.drain(i..i + n);
            }
            3 => data.truncate(rng.below(len + 1)),
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let slice = data[i..i + n].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, slice);
            }
            5 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next() as u8;
            }
            6 => {
                let i = rng.below(len + 1);
                let run = vec![INTERESTING[rng.below(INTERESTING.len())][0]; 1 + rng.below(5_000)];
                data.splice(i..i, run);
            }
            _ => {
                // swap two lines
                let lines: Vec<usize> = data
                    .windows(2)
                    .enumerate()
                    .filter(|(_, w)| w == b"\r\n")
                    .map(|(i, _)| i)
                    .collect();
                if lines.len() > 2 {
                    let a = lines[rng.below(lines.len() - 1)];
                    let b = lines[rng.below(lines.len() - 1)];
                    let (a, b) = (a.min(b), a.max(b));
                    if a < b {
                        data[a + 2..b].rotate_left(((b - a - 2) / 2).max(1).min(b - a - 2));
                    }
                }
            }
        }
    }
    data
}

#[test]
fn mutated_corpus_never_panics_and_what_parses_writes_back() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("corpus");
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for sub in [dir.clone(), dir.join("malformed")] {
        let mut paths: Vec<_> = std::fs::read_dir(&sub)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|x| x == "sip") {
                seeds.push(std::fs::read(&p).unwrap());
            }
        }
    }
    assert!(seeds.len() > 40);
    let mut rng = Rng(0x5EED_0F51_11F0_0D00);
    let (mut parsed, mut refused) = (0u32, 0u32);
    for seed in &seeds {
        // the huge malformed seeds cost the most; fewer rounds for them
        let rounds = if seed.len() > 50_000 { 10 } else { 300 };
        for _ in 0..rounds {
            let input = mutate(&mut rng, seed);
            let cut = rng.below(input.len() + 1);
            match parser_check::check(&input, cut) {
                Ok(true) => parsed += 1,
                Ok(false) => refused += 1,
                Err(why) => panic!("{why}\ninput: {}", timeline::escape_bytes(&input)),
            }
        }
    }
    // both outcomes must occur, or the mutations are not reaching the parser's decisions
    assert!(
        parsed > 1000 && refused > 1000,
        "parsed {parsed}, refused {refused}"
    );
}

/// Regression from `cargo fuzz`: a message read with bare-LF line ends just under the header
/// limit is written back with CRLF, one byte longer per line.
#[test]
fn bare_lf_message_near_the_header_limit_writes_back() {
    let mut raw = b"OPTIONS sip:a@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\nFrom: <sip:b@example.com>;tag=1\nTo: <sip:a@example.com>\nCall-ID: lf@example.com\nCSeq: 1 OPTIONS\n".to_vec();
    let mut i = 0;
    while raw.len() < 16_300 {
        raw.extend_from_slice(format!("X-Pad-{i}: {i}\n").as_bytes());
        i += 1;
    }
    raw.extend_from_slice(b"Content-Length: 0\n\n");
    let m = sip_peer::message::Message::parse(&raw).expect("under the limit");
    assert!(m.to_bytes().len() > 16_384, "the written form is longer");
    parser_check::check(&raw, raw.len() / 2).expect("the property holds");
}
