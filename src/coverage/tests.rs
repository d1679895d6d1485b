//! Unit tests of the coverage map parser and its totals.

use super::*;

const SAMPLE: &str = "\
# Map

Some text | with a bar that is not a table.

| id | § | keyword | statement | status | requirements | note |
|---|---|---|---|---|---|---|
| 8599-5.6.2-h | §5.6.2 | MUST | … the proxy MUST remove the SIP request … and send a 480 | covered | SIP-C5, SIP-E3 | |
| 8599-5.5-a | §5.5 | RECOMMENDED | It is RECOMMENDED that the proxy requests the push … | planned | — | refresh push 120 s before expiry |
| 8599-5.3-b | §5.3 | MAY | a proxy MAY still consider the comparison successful | optional | — | tolerate both |
| 8599-4.1.3-a | §4.1.3 | MUST | the UA MUST send a binding-refresh REGISTER request | not applicable | — | UA rule |
| 0357-7-c | §7 | SHOULD | the publish request SHOULD include the data as publish options | partly | `XMPP-1` | the secret \\| not named |
| 8599-5.6.1.1-j | §5.6.1.1 | MUST | … sip.vapid … | other PNS | — | VAPID is Web Push |

| requirement | why no statement |
|---|---|
| APNS-1 | Apple's push contract |

| document | statements |
|---|---|
| RFC 8599 | 99 |
";

#[test]
fn parses_rows_documents_and_escaped_bars() {
    let m = parse(SAMPLE).unwrap();
    assert_eq!(m.statements.len(), 6);
    let h = &m.statements[0];
    assert_eq!(
        (h.id.as_str(), h.document.as_str(), h.section.as_str()),
        ("8599-5.6.2-h", "RFC 8599", "5.6.2")
    );
    assert_eq!(h.requirements, ["SIP-C5", "SIP-E3"]);
    assert_eq!(h.keyword, Keyword::Must);
    assert_eq!(h.line, 7);
    let x = &m.statements[4];
    assert_eq!(x.document, "XEP-0357");
    assert_eq!(x.requirements, ["XMPP-1"]);
    assert_eq!(x.note, "the secret | not named");
    assert_eq!(m.unmapped.len(), 1);
    assert_eq!(m.unmapped[0].requirement, "APNS-1");
    assert_eq!(m.statements_checked_by("SIP-E3").len(), 1);
    assert_eq!(m.unmapped_reason("APNS-1"), Some("Apple's push contract"));
}

#[test]
fn totals_count_must_and_should_against_the_gateway() {
    let m = parse(SAMPLE).unwrap();
    let t = m.totals();
    assert_eq!(t.len(), 3, "two documents and all: {t:?}");
    let rfc = &t[0];
    assert_eq!(
        (rfc.statements, rfc.must, rfc.should, rfc.may),
        (5, 3, 1, 1)
    );
    assert_eq!(
        (
            rfc.relevant,
            rfc.covered,
            rfc.planned,
            rfc.not_applicable,
            rfc.other_pns
        ),
        (2, 1, 1, 1, 1)
    );
    assert_eq!(t[2].statements, 6);
    assert_eq!(t[2].partly, 1);
    let text = m.totals_text();
    assert!(text.contains("1 (50 %)"), "{text}");
    let md = m.totals_markdown();
    assert!(md.starts_with("| document | statements |"), "{md}");
    assert_eq!(md.lines().count(), 2 + 3);
}

#[test]
fn every_bad_row_is_reported_with_its_line() {
    let bad = "\
| id | § | keyword | statement | status | requirements | note |
|---|---|---|---|---|---|---|
| 8599-5.6.2-h | §5.6.2 | MUST | x | covered | — | |
| 8599-5.6.2-i | §5.6.1 | MUST | x | covered | SIP-C5 | |
| 8599-5.6.2-j | §5.6.2 | MOST | x | covered | SIP-C5 | |
| 8599-5.6.2-k | §5.6.2 | MUST | x | sort of | SIP-C5 | |
| 8599-5.6.2-l | §5.6.2 | MUST | x | planned | SIP-C5 | new id |
| 8599-5.6.2-m | §5.6.2 | MUST | x | optional | — | may |
| 8599-5.6.2-n | §5.6.2 | MUST | x | not applicable | — | |
| 8599-5.6.2-o | §5.6.2 | MUST | x | covered | SIP-C5 | |
| 8599-5.6.2-o | §5.6.2 | MUST | x | covered | SIP-C5 | |
| 8599-5.6.2-p | §5.6.2 | MUST | x | covered | sip-c5 | |
| 8599-5.6.2-q | §5.6.2 | MUST | x | covered | SIP-C5 |
| 5.6.2-r | §5.6.2 | MUST | x | covered | SIP-C5 | |
";
    let e = parse(bad).unwrap_err();
    let lines: Vec<usize> = e.problems.iter().map(|(l, _)| *l).collect();
    let mut expected: Vec<usize> = (3..=9).collect();
    expected.extend(11..=14);
    assert_eq!(lines, expected, "{e}");
    let text = e.to_string();
    for needle in [
        "names no requirement id",
        "the § column says",
        "not a BCP 14 keyword",
        "unknown status",
        "only covered or partly rows name requirement ids",
        "only a MAY or OPTIONAL statement can be optional",
        "needs a note",
        "is also on line 10",
        "not a requirement id",
        "has 6 cells",
        "is not an id like",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert!(parse("no tables here").is_err());
}

#[test]
fn cross_check_names_both_directions() {
    let m = parse(SAMPLE).unwrap();
    assert!(m
        .cross_check(["SIP-C5", "SIP-E3", "XMPP-1", "APNS-1"])
        .is_empty());
    let found = m.cross_check(["SIP-C5", "XMPP-1", "APNS-1", "SIP-B1"]);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("SIP-E3") && found[0].contains("no scenario"));
    assert!(found[1].contains("@req:SIP-B1"));
}

#[test]
fn keywords_and_statuses_round_trip() {
    for (k, n) in Keyword::ALL {
        assert_eq!(Keyword::parse(n), Some(k));
        assert_eq!(k.as_str(), n);
    }
    assert_eq!(
        Keyword::parse("NOT  RECOMMENDED"),
        Some(Keyword::NotRecommended)
    );
    assert_eq!(Keyword::NotRecommended.family(), Family::Should);
    assert_eq!(
        Keyword::parse("must"),
        None,
        "BCP 14 keywords count in capitals only"
    );
    for (s, n) in Status::ALL {
        assert_eq!(Status::parse(n), Some(s));
        assert_eq!(Status::parse(&n.to_uppercase()), Some(s));
    }
}
