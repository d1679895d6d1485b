//! Apple's provider-certificate extensions: the topic list (1.2.840.113635.100.6.3.6) and the
//! environment markers (.3.1 sandbox, .3.2 production), encoded and parsed in plain DER.
//!
//! The topic list is `SEQUENCE { UTF8String topic, SEQUENCE { UTF8String type }, … }`, the layout
//! of Pushy's `apns-extensions.cnf` for its multi-topic test certificate.

/// OID arcs of the topics extension.
pub const OID_TOPICS: &[u64] = &[1, 2, 840, 113635, 100, 6, 3, 6];
/// OID arcs of the "APNs Development" (sandbox) environment extension.
pub const OID_SANDBOX: &[u64] = &[1, 2, 840, 113635, 100, 6, 3, 1];
/// OID arcs of the "APNs Production" environment extension.
pub const OID_PRODUCTION: &[u64] = &[1, 2, 840, 113635, 100, 6, 3, 2];
/// Dotted form of [`OID_TOPICS`].
pub const OID_TOPICS_STR: &str = "1.2.840.113635.100.6.3.6";
/// Dotted form of [`OID_SANDBOX`].
pub const OID_SANDBOX_STR: &str = "1.2.840.113635.100.6.3.1";
/// Dotted form of [`OID_PRODUCTION`].
pub const OID_PRODUCTION_STR: &str = "1.2.840.113635.100.6.3.2";
/// DER NULL: the value of the environment extensions.
pub const DER_NULL: &[u8] = &[0x05, 0x00];

const TAG_SEQUENCE: u8 = 0x30;
const TAG_UTF8: u8 = 0x0c;

/// A topic with its type tag ("app", "voip", "complication").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicEntry {
    /// The topic, e.g. `com.example.app.voip`.
    pub topic: String,
    /// Its type tag, e.g. `voip`.
    pub kind: String,
}

/// Why an extension value could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DerError {
    /// The bytes ended inside an element.
    #[error("truncated DER")]
    Truncated,
    /// A tag other than the expected one.
    #[error("unexpected DER tag 0x{0:02x}")]
    UnexpectedTag(u8),
    /// Long-form lengths over 4 bytes or indefinite lengths.
    #[error("unsupported DER length")]
    BadLength,
    /// A UTF8String that is not UTF-8.
    #[error("UTF8String is not UTF-8")]
    NotUtf8,
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    out.push(tag);
    push_len(&mut out, value.len());
    out.extend_from_slice(value);
    out
}

/// Encodes the topics extension value.
pub fn encode_topics(entries: &[TopicEntry]) -> Vec<u8> {
    let mut inner = Vec::new();
    for e in entries {
        inner.extend(tlv(TAG_UTF8, e.topic.as_bytes()));
        inner.extend(tlv(TAG_SEQUENCE, &tlv(TAG_UTF8, e.kind.as_bytes())));
    }
    tlv(TAG_SEQUENCE, &inner)
}

/// Reads one TLV: returns (tag, value, rest).
fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), DerError> {
    let (&tag, rest) = input.split_first().ok_or(DerError::Truncated)?;
    let (&first, mut rest) = rest.split_first().ok_or(DerError::Truncated)?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err(DerError::BadLength);
        }
        if rest.len() < n {
            return Err(DerError::Truncated);
        }
        let mut len = 0usize;
        for b in &rest[..n] {
            len = (len << 8) | *b as usize;
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err(DerError::Truncated);
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

fn utf8(value: &[u8]) -> Result<String, DerError> {
    std::str::from_utf8(value)
        .map(str::to_owned)
        .map_err(|_| DerError::NotUtf8)
}

/// Parses the topics extension value. A topic without a following type sequence gets an empty kind.
pub fn decode_topics(der: &[u8]) -> Result<Vec<TopicEntry>, DerError> {
    let (tag, mut body, _) = read_tlv(der)?;
    if tag != TAG_SEQUENCE {
        return Err(DerError::UnexpectedTag(tag));
    }
    let mut out: Vec<TopicEntry> = Vec::new();
    while !body.is_empty() {
        let (tag, value, rest) = read_tlv(body)?;
        body = rest;
        match tag {
            TAG_UTF8 => out.push(TopicEntry {
                topic: utf8(value)?,
                kind: String::new(),
            }),
            TAG_SEQUENCE => {
                let (t, v, _) = read_tlv(value)?;
                if t != TAG_UTF8 {
                    return Err(DerError::UnexpectedTag(t));
                }
                if let Some(last) = out.last_mut() {
                    last.kind = utf8(v)?;
                }
            }
            other => return Err(DerError::UnexpectedTag(other)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_including_long_lengths() {
        let long = "x".repeat(300);
        let entries = vec![
            TopicEntry {
                topic: "com.example.app".into(),
                kind: "app".into(),
            },
            TopicEntry {
                topic: format!("com.example.app.{long}"),
                kind: "voip".into(),
            },
        ];
        let der = encode_topics(&entries);
        assert_eq!(der[0], 0x30);
        assert_eq!(decode_topics(&der).unwrap(), entries);
    }

    #[test]
    fn matches_pushys_layout_byte_for_byte() {
        let der = encode_topics(&[TopicEntry {
            topic: "a".into(),
            kind: "app".into(),
        }]);
        assert_eq!(
            der,
            [0x30, 0x0a, 0x0c, 0x01, b'a', 0x30, 0x05, 0x0c, 0x03, b'a', b'p', b'p']
        );
    }

    #[test]
    fn malformed_values_are_errors() {
        assert_eq!(decode_topics(&[]), Err(DerError::Truncated));
        assert_eq!(decode_topics(&[0x30, 0x05, 0x0c]), Err(DerError::Truncated));
        assert_eq!(
            decode_topics(&[0x04, 0x00]),
            Err(DerError::UnexpectedTag(4))
        );
        assert_eq!(
            decode_topics(&[0x30, 0x03, 0x0c, 0x01, 0xff]),
            Err(DerError::NotUtf8)
        );
        assert_eq!(
            decode_topics(&[0x30, 0x85, 0, 0, 0, 0, 1]),
            Err(DerError::BadLength)
        );
    }
}
