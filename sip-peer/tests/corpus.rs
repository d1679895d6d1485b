//! The parser against the message corpus in `tests/corpus/` (see its README for the source of
//! each file): every message parses, its fields read back as the source says, and it is written
//! back byte for byte after the parser's documented normalisation; every file in
//! `tests/corpus/malformed/` gives an error value.

use sip_peer::message::{Message, ParseError};
use sip_peer::push::{PushError, PushParams};
use sip_peer::transport::StreamFramer;
use sip_peer::uri::SipUri;
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("corpus")
}

fn sip_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .collect();
    files.sort();
    files
}

fn load(name: &str) -> Vec<u8> {
    let path = corpus_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn parse(name: &str) -> Message {
    Message::parse(&load(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The normalisation `Message::to_bytes` documents, written independently of the parser:
/// continuation lines join the previous value with one space, each header becomes
/// `Name: value` (name as written, value trimmed), the body follows unchanged.
fn normalised(raw: &[u8]) -> Vec<u8> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("corpus message has an empty line")
        + 4;
    let head = std::str::from_utf8(&raw[..split - 4]).expect("corpus head is UTF-8");
    let mut lines = head.split("\r\n");
    let mut out = String::new();
    out.push_str(lines.next().unwrap());
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().expect("continuation after a header");
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            let (n, v) = line.split_once(':').expect("header has a colon");
            headers.push((n.trim_end().to_owned(), v.trim().to_owned()));
        }
    }
    out.push_str("\r\n");
    for (n, v) in headers {
        // a value that starts on a continuation line (RFC 4475 `TO :` CRLF SP `sip:…`) has
        // no leading space once trimmed
        out.push_str(&format!("{n}: {}\r\n", v.trim()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&raw[split..]);
    bytes
}

#[test]
fn every_corpus_message_parses_and_is_written_back_exactly() {
    let files = sip_files(&corpus_dir());
    assert!(files.len() >= 25, "corpus has only {} files", files.len());
    let mut identical = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy();
        let raw = std::fs::read(path).unwrap();
        assert!(
            raw.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r'),
            "{name}: a bare LF; the corpus keeps CRLF"
        );
        let msg = Message::parse(&raw).unwrap_or_else(|e| panic!("{name}: {e}"));
        // the body is exactly Content-Length bytes
        let cl = msg
            .content_length()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(cl, Some(msg.body.len()), "{name}: Content-Length vs body");
        // mandatory headers read through the typed views
        msg.call_id()
            .unwrap_or_else(|e| panic!("{name}: Call-ID {e}"));
        msg.cseq().unwrap_or_else(|e| panic!("{name}: CSeq {e}"));
        msg.from().unwrap_or_else(|e| panic!("{name}: From {e}"));
        msg.to().unwrap_or_else(|e| panic!("{name}: To {e}"));
        let vias = msg.vias().unwrap_or_else(|e| panic!("{name}: Via {e}"));
        assert!(!vias.is_empty(), "{name}: no Via");
        msg.contacts()
            .unwrap_or_else(|e| panic!("{name}: Contact {e}"));
        msg.max_forwards()
            .unwrap_or_else(|e| panic!("{name}: Max-Forwards {e}"));
        // exact writing after the documented normalisation
        let written = msg.to_bytes();
        let expected = normalised(&raw);
        assert_eq!(
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(&expected),
            "{name}: written form differs from the normalised source"
        );
        if written[..] == raw[..] {
            identical += 1;
        }
        // and what is written reads back to the same message
        let again = Message::parse(&written).unwrap_or_else(|e| panic!("{name} re-read: {e}"));
        assert_eq!(again, msg, "{name}: re-read differs");
    }
    // messages already in `Name: value` form come back byte-identical
    assert!(
        identical >= 15,
        "only {identical} files came back byte-identical"
    );
}

#[test]
fn every_corpus_message_frames_from_a_stream_in_small_pieces() {
    let files = sip_files(&corpus_dir());
    // all messages back to back, with keep-alive CRLFs between two of them (RFC 5626 §3.5.1)
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let raw = std::fs::read(path).unwrap();
        expected.push(Message::parse(&raw).unwrap());
        stream.extend_from_slice(&raw);
        if i == 3 {
            stream.extend_from_slice(b"\r\n\r\n");
        }
    }
    for piece in [1usize, 7, 64, 1500] {
        let mut framer = StreamFramer::new(Default::default());
        let mut got = Vec::new();
        for chunk in stream.chunks(piece) {
            framer.buffer().extend_from_slice(chunk);
            while let Some(framed) = framer
                .next()
                .unwrap_or_else(|e| panic!("piece {piece}: {:?}", e.error))
            {
                got.push(framed.message);
            }
        }
        assert_eq!(framer.pending(), 0, "piece {piece}: bytes left over");
        assert_eq!(got.len(), expected.len(), "piece {piece}: message count");
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g, e, "piece {piece}");
        }
    }
}

#[test]
fn malformed_messages_are_errors() {
    let files = sip_files(&corpus_dir().join("malformed"));
    assert!(
        files.len() >= 15,
        "malformed corpus has only {} files",
        files.len()
    );
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let raw = std::fs::read(path).unwrap();
        let result = Message::parse(&raw);
        if name == "content_length_short.sip" {
            // RFC 3261 §18.3: octets past Content-Length in a datagram are discarded
            match result {
                Err(_) => {}
                Ok(m) => assert_eq!(&m.body[..], b"this", "{name}: body must be cut to 4 bytes"),
            }
            continue;
        }
        let err = match result {
            Err(e) => e,
            Ok(m) => panic!("{name}: parsed as {:?}", m.summary()),
        };
        // the error names the right problem where the file has exactly one
        let matches = match name.as_str() {
            "content_length_long.sip" => {
                matches!(err, ParseError::TruncatedBody { declared: 9999, .. })
            }
            "content_length_negative.sip" | "content_length_not_a_number.sip" => {
                matches!(err, ParseError::BadContentLength(_))
            }
            "huge_header_value.sip" | "huge_header_count.sip" => {
                matches!(err, ParseError::HeadersTooLarge { .. })
            }
            "header_without_colon.sip" => matches!(err, ParseError::BadHeaderLine(_)),
            "bad_status_code.sip"
            | "missing_start_line.sip"
            | "garbage_text.sip"
            | "nul_in_start_line.sip" => {
                matches!(err, ParseError::BadStartLine(_))
            }
            "empty.sip"
            | "only_crlf.sip"
            | "truncated_headers.sip"
            | "truncated_start_line.sip" => {
                matches!(err, ParseError::NoHeaderEnd)
            }
            _ => true,
        };
        assert!(matches, "{name}: unexpected error {err:?}");
        // the error can be shown to a human
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn malformed_streams_are_errors_or_wait_for_more_bytes() {
    for name in [
        "garbage_text.sip",
        "missing_start_line.sip",
        "huge_header_value.sip",
        "huge_header_count.sip",
        "content_length_not_a_number.sip",
        "header_without_colon.sip",
    ] {
        let raw = std::fs::read(corpus_dir().join("malformed").join(name)).unwrap();
        let mut framer = StreamFramer::new(Default::default());
        framer.buffer().extend_from_slice(&raw);
        assert!(
            framer.next().is_err(),
            "{name}: a stream framer must refuse it"
        );
    }
    // a Content-Length larger than what arrived only waits for more bytes on a stream
    let raw = std::fs::read(
        corpus_dir()
            .join("malformed")
            .join("content_length_long.sip"),
    )
    .unwrap();
    let mut framer = StreamFramer::new(Default::default());
    framer.buffer().extend_from_slice(&raw);
    assert!(matches!(framer.next(), Ok(None)));
}

// ---------------------------------------------------------------------------------------------
// Field checks, one per corpus file that exercises something specific.

#[test]
fn rfc4475_short_tortuous_invite() {
    let m = parse("rfc4475_3_1_1_1_wsinv.sip");
    assert_eq!(m.method(), Some("INVITE"));
    assert_eq!(
        m.request_uri(),
        Some("sip:vivekg@chair-dnrc.example.com;unknownparam")
    );
    let ruri = SipUri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!(
        ruri.param("unknownparam"),
        Some(""),
        "a flag reads as an empty value"
    );
    assert!(ruri
        .params
        .iter()
        .any(|p| p.name == "unknownparam" && p.value.is_none()));
    assert_eq!(m.to().unwrap().tag(), Some("1918181833n"));
    assert_eq!(m.from().unwrap().tag(), Some("98asjd8"));
    assert_eq!(
        m.from().unwrap().display.as_deref(),
        Some(r#""J Rosenberg \\\"""#)
    );
    assert_eq!(m.max_forwards().unwrap(), Some(68));
    let cseq = m.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method.as_str()), (9, "INVITE"));
    let vias = m.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].host.as_str(), vias[0].transport(), vias[0].branch()),
        ("192.0.2.2", "UDP", Some("390skdjuw"))
    );
    assert_eq!(
        (vias[1].host.as_str(), vias[1].transport(), vias[1].branch()),
        ("spindle.example.com", "TCP", Some("z9hG4bK9ikj8"))
    );
    assert_eq!(
        (vias[2].host.as_str(), vias[2].transport(), vias[2].branch()),
        ("192.168.255.111", "UDP", Some("z9hG4bK30239"))
    );
    assert_eq!(m.header("Subject"), Some(""));
    assert_eq!(
        m.header("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(m.header("UnknownHeaderWithUnusualValue"), Some(";;,,;;,;"));
    let routes = m.routes().unwrap();
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].uri.host, "services.example.com");
    let contacts = m.contacts().unwrap();
    assert_eq!(contacts.len(), 1);
    let c = contacts[0].addr().unwrap();
    assert_eq!(c.uri.user.as_deref(), Some("jdrosen"));
    assert_eq!(c.param("q"), Some("0.33"));
    assert_eq!(c.param("newparam"), Some("newvalue"));
    assert_eq!(m.body.len(), 150);
}

#[test]
fn rfc4475_escapes_and_compact_forms() {
    let m = parse("rfc4475_3_1_1_3_esc01.sip");
    assert_eq!(m.call_id().unwrap(), "esc01.239409asdfakjkn23onasd0-3234");
    assert_eq!(
        m.header("Content-Type"),
        Some("application/sdp"),
        "upper-case compact C:"
    );
    let to = m.to().unwrap();
    assert_eq!(to.uri.user.as_deref(), Some("%75se%72"), "kept as written");
    let c = m.contacts().unwrap();
    let uri = &c[0].addr().unwrap().uri;
    assert_eq!(uri.user.as_deref(), Some("cal%6Cer"));
    assert_eq!(uri.host, "host5.example.net");

    let m = parse("rfc4475_3_1_1_6_lwsdisp.sip");
    assert_eq!(m.from().unwrap().display.as_deref(), Some("caller"));
    assert_eq!(m.from().unwrap().uri.user.as_deref(), Some("caller"));
    assert_eq!(m.content_length().unwrap(), Some(0));

    let m = parse("rfc4475_3_1_1_10_semiuri.sip");
    assert_eq!(m.header_values("Accept").len(), 6);

    let m = parse("rfc4475_3_1_1_13_noreason.sip");
    assert_eq!((m.status(), m.reason_phrase()), (Some(100), Some("")));

    let m = parse("rfc4475_3_1_1_12_unreason.sip");
    assert_eq!(m.status(), Some(200));
    assert_eq!(
        m.reason_phrase(),
        Some("= 2**3 * 5**2 \u{43d}\u{43e} \u{441}\u{442}\u{43e} \u{434}\u{435}\u{432}\u{44f}\u{43d}\u{43e}\u{441}\u{442}\u{43e} \u{434}\u{435}\u{432}\u{44f}\u{442}\u{44c} - \u{43f}\u{440}\u{43e}\u{441}\u{442}\u{43e}\u{435}")
    );
}

#[test]
fn compact_forms_name_the_long_headers() {
    let m = parse("compact_forms_invite.sip");
    assert_eq!(m.call_id().unwrap(), "compact-1@[::1]");
    assert_eq!(m.from().unwrap().display.as_deref(), Some("\"Alice\""));
    assert_eq!(m.to().unwrap().uri.user.as_deref(), Some("bob"));
    assert_eq!(m.header("Supported"), Some("100rel, timer"));
    assert_eq!(m.header("Subject"), Some("compact forms"));
    assert_eq!(m.header("Content-Type"), Some("application/sdp"));
    assert_eq!(m.content_length().unwrap(), Some(m.body.len()));
    let via = m.top_via().unwrap();
    assert_eq!(
        (via.host.as_str(), via.port, via.transport()),
        ("[::1]", Some(40001), "TCP")
    );
    let c = m.contacts().unwrap();
    assert_eq!(c.len(), 1);
    let a = c[0].addr().unwrap();
    assert_eq!(
        a.param("+sip.instance"),
        Some("\"<urn:uuid:0c0ffee0-0000-4000-8000-000000000001>\"")
    );
    assert_eq!(a.uri.param("transport"), Some("tcp"));
    let ruri = SipUri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!((ruri.host.as_str(), ruri.port), ("[::1]", Some(5070)));
}

#[test]
fn ipv6_hosts_and_multi_value_contact() {
    let m = parse("ipv6_register_multi_contact.sip");
    let ruri = SipUri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!(
        (ruri.host.as_str(), ruri.port),
        ("[2001:db8::10]", Some(5060))
    );
    assert_eq!(ruri.ip(), Some("2001:db8::10".parse().unwrap()));
    let vias = m.vias().unwrap();
    assert_eq!(
        (vias[0].host.as_str(), vias[0].port),
        ("[2001:db8::1]", Some(5062))
    );
    assert_eq!(
        (vias[1].host.as_str(), vias[1].port),
        ("[2001:db8::2]", None)
    );
    assert_eq!(vias[1].param("received"), Some("2001:db8::2"));
    assert_eq!(m.from().unwrap().uri.host, "[2001:db8::10]");
    let contacts = m.contacts().unwrap();
    assert_eq!(
        contacts.len(),
        4,
        "three in one comma list, one on its own line"
    );
    let first = contacts[0].addr().unwrap();
    assert_eq!(
        (first.uri.host.as_str(), first.uri.port),
        ("[2001:db8::1]", Some(5062))
    );
    assert_eq!(
        first.param("+sip.instance"),
        Some("\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\"")
    );
    assert_eq!(first.param("reg-id"), Some("1"));
    assert_eq!(contacts[0].expires(), Some(3600));
    let second = contacts[1].addr().unwrap();
    assert_eq!(
        (second.uri.host.as_str(), second.param("q")),
        ("192.0.2.1", Some("0.5"))
    );
    let third = contacts[2].addr().unwrap();
    assert_eq!(third.display.as_deref(), Some("\"Desk\""));
    assert_eq!(
        (third.uri.scheme.as_str(), third.uri.host.as_str()),
        ("sips", "[2001:db8::3]")
    );
    assert_eq!(contacts[3].expires(), Some(0));
    assert_eq!(contacts[3].addr().unwrap().uri.host, "[::1]");
    let push = PushParams::from_uri(&first.uri).expect("pn-* on the first contact");
    assert_eq!(push.prid, "00fc13adff78512");
}

#[test]
fn linphone_pn_dialect() {
    let m = parse("linphone_ios_register_pn_dialect.sip");
    let contacts = m.contacts().unwrap();
    assert_eq!(contacts.len(), 1);
    let c = contacts[0].addr().unwrap();
    assert_eq!(
        c.param("+sip.instance"),
        Some("\"<urn:uuid:8b6c3a4e-2f0d-4e1a-9b7c-5d4e3f2a1b0c>\"")
    );
    assert_eq!(c.uri.param("pn-timeout"), Some("0"));
    assert_eq!(c.uri.param("transport"), Some("udp"));
    let push = PushParams::from_uri(&c.uri).expect("pn-* params");
    assert_eq!(push.provider, "apns.dev");
    let voip = push.apns_voip().expect("a voip destination");
    assert_eq!(
        voip.token,
        "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
    );
    assert_eq!(voip.team_id, "ABCD1234");
    assert_eq!(voip.bundle_id, "org.linphone.linphone");
    assert_eq!(voip.topic, "org.linphone.linphone.voip");
    assert!(voip.sandbox);
    assert_eq!(m.header_lines("Accept").count(), 3);
}

#[test]
fn pjsip_instance_and_reg_id() {
    let m = parse("pjsip_register_instance_regid.sip");
    let via = m.top_via().unwrap();
    assert_eq!(via.transport(), "TCP");
    assert!(via
        .params
        .iter()
        .any(|p| p.name == "alias" && p.value.is_none()));
    assert!(via
        .params
        .iter()
        .any(|p| p.name == "rport" && p.value.is_none()));
    let c = m.contacts().unwrap();
    let a = c[0].addr().unwrap();
    assert_eq!(a.param("reg-id"), Some("1"));
    assert_eq!(
        a.param("+sip.instance"),
        Some("\"<urn:uuid:00000000-0000-0000-0000-0000a1b2c3d4>\"")
    );
    assert!(a
        .uri
        .params
        .iter()
        .any(|p| p.name == "ob" && p.value.is_none()));
    let voip = PushParams::from_uri(&a.uri).unwrap().apns_voip().unwrap();
    assert_eq!(voip.topic, "org.pjsip.ipjsua.voip");
    assert_eq!(voip.team_id, "ABCD123456");
    assert!(!voip.sandbox);
    assert_eq!(
        m.content_length().unwrap(),
        Some(0),
        "two spaces after the colon"
    );
}

#[test]
fn escaped_pn_prid_is_decoded() {
    let m = parse("escaped_pn_prid_register.sip");
    let c = m.contacts().unwrap();
    let uri = &c[0].addr().unwrap().uri;
    assert_eq!(
        uri.param("pn-prid"),
        Some("4f5e6d7c8b9a%3Avoip%26deadbeef%3Aremote")
    );
    assert_eq!(
        uri.param_decoded("pn-prid").as_deref(),
        Some("4f5e6d7c8b9a:voip&deadbeef:remote")
    );
    let push = PushParams::from_uri(uri).unwrap();
    assert_eq!(push.prid, "4f5e6d7c8b9a:voip&deadbeef:remote");
    // two tokens but pn-param names one service
    assert!(matches!(
        push.apns_voip(),
        Err(PushError::CountMismatch {
            tokens: 2,
            services: 1
        })
    ));
}

#[test]
fn rfc8599_messages() {
    let m = parse("rfc8599_register_apns.sip");
    let c = m.contacts().unwrap();
    let a = c[0].addr().unwrap();
    assert!(a
        .params
        .iter()
        .any(|p| p.name == "+sip.pnsreg" && p.value.is_none()));
    let voip = PushParams::from_uri(&a.uri).unwrap().apns_voip().unwrap();
    assert_eq!(voip.token, "00fc13adff78512");
    assert_eq!(voip.team_id, "DEF123GHIJ");
    assert_eq!(voip.topic, "com.example.yourexampleapp.voip");
    assert_eq!(m.feature_cap("+sip.pns").as_deref(), Some("apns"));

    let m = parse("rfc8599_register_200_feature_caps.sip");
    assert_eq!(m.feature_caps().len(), 2, "one Feature-Caps per PNS");
    assert_eq!(m.feature_cap("+sip.pnsreg").as_deref(), Some("121"));
    assert!(m
        .feature_caps()
        .iter()
        .any(|f| f.contains("+sip.pns=\"apns\"")));

    let m = parse("rfc8599_capability_query.sip");
    let c = m.contacts().unwrap();
    let uri = &c[0].addr().unwrap().uri;
    assert!(uri
        .params
        .iter()
        .any(|p| p.name == "pn-provider" && p.value.is_none()));
    assert_eq!(PushParams::from_uri(uri), None, "a query has no pn-prid");

    let m = parse("rfc8599_555.sip");
    assert_eq!(m.status(), Some(555));
    assert_eq!(
        m.reason_phrase(),
        Some("Push Notification Service Not Supported")
    );
}

#[test]
fn rfc3665_digest_headers() {
    let m = parse("rfc3665_2_1_f2_401.sip");
    let ch = m.challenge().unwrap().expect("WWW-Authenticate");
    assert_eq!(ch.scheme, "Digest");
    assert_eq!(ch.field("realm"), Some("atlanta.example.com"));
    assert_eq!(ch.field("nonce"), Some("ea9c8e88df84f1cec4341ae6cbe5a359"));
    assert_eq!(ch.field("qop"), Some("auth"));
    assert_eq!(ch.field("opaque"), Some(""));
    assert_eq!(ch.field("algorithm"), Some("MD5"));
    assert_eq!(m.top_via().unwrap().param("received"), Some("192.0.2.201"));

    let m = parse("rfc3665_2_1_f3_register_auth.sip");
    let auth = m.authorization().unwrap().expect("Authorization");
    assert_eq!(auth.field("username"), Some("bob"));
    assert_eq!(auth.field("uri"), Some("sips:ss2.biloxi.example.com"));
    assert_eq!(m.request_uri(), Some("sips:ss2.biloxi.example.com"));
    assert_eq!(m.top_via().unwrap().transport(), "TLS");

    let m = parse("rfc3665_2_1_f4_200.sip");
    assert_eq!(m.contacts().unwrap()[0].expires(), Some(3600));

    let m = parse("rfc3665_3_8_cancel.sip");
    assert_eq!(m.method(), Some("CANCEL"));
    assert_eq!(m.cseq().unwrap().method, "CANCEL");
    let m = parse("rfc3665_3_8_487.sip");
    assert_eq!(
        (m.status(), m.cseq().unwrap().method.as_str()),
        (Some(487), "INVITE")
    );
}

#[test]
fn rfc3261_call_flow() {
    let m = parse("rfc3261_24_2_180_ringing.sip");
    let vias = m.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        vias[0].param("received"),
        Some("192.0.2.3"),
        "folded ;received joins its Via"
    );
    assert_eq!(vias[2].branch(), Some("z9hG4bKnashds8"));
    assert_eq!(m.to().unwrap().tag(), Some("a6c85cf"));
    let m = parse("rfc3261_24_2_invite.sip");
    assert_eq!(m.cseq().unwrap().seq, 314159);
    assert_eq!(m.header("Content-Type"), Some("application/sdp"));
    let m = parse("rfc3261_24_1_register.sip");
    assert_eq!(m.expires().unwrap(), Some(7200));
    let m = parse("message_text_plain.sip");
    assert_eq!(
        std::str::from_utf8(&m.body).unwrap(),
        "Watson, come here. \u{2014} I want to see you."
    );
    assert_eq!(
        m.content_length().unwrap(),
        Some(41),
        "bytes, not characters"
    );
}

/// Minimal reproductions of what the corpus and the mutation test found: a folded value must be
/// trimmed after its lines are joined, or what is written does not read back the same. RFC 4475
/// §3.1.1.1 starts a value on a continuation line (`TO :` CRLF SP `sip:…`); a whitespace-only
/// continuation line is folding LWS too (RFC 3261 §7.3.1).
#[test]
fn folded_values_are_trimmed_after_joining() {
    for (raw, expected) in [
        (&b"OPTIONS sip:a@example.com SIP/2.0\r\nTo:\r\n <sip:a@example.com>\r\nContent-Length: 0\r\n\r\n"[..], "<sip:a@example.com>"),
        (&b"OPTIONS sip:a@example.com SIP/2.0\r\nTo: <sip:a@example.com>\r\n   \r\nContent-Length: 0\r\n\r\n"[..], "<sip:a@example.com>"),
    ] {
        let m = Message::parse(raw).unwrap();
        assert_eq!(m.header("To"), Some(expected), "{}", timeline::escape_bytes(raw));
        let again = Message::parse(&m.to_bytes()).unwrap();
        assert_eq!(again, m, "writing then reading gives the same message");
    }
}
