//! The framing of SIP messages on a byte stream by Content-Length (RFC 3261 §18.3), with limits
//! that become error values.

use crate::message::{find_header_end, Limits, Message};
use crate::syntax::ParseError;
use bytes::{Buf, Bytes, BytesMut};

/// Cuts SIP messages out of a byte stream by Content-Length (RFC 3261 §18.3).
///
/// Push bytes as they arrive with [`StreamFramer::buffer`], then call [`StreamFramer::next`]
/// until it returns `Ok(None)`. CRLF keep-alives between messages are skipped. An error means
/// the stream cannot be resynchronised and the connection should be closed.
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    limits: Limits,
}

/// A message cut out of a stream, with its exact bytes.
#[derive(Debug)]
pub struct Framed {
    /// The parsed message.
    pub message: Message,
    /// The bytes it came from.
    pub raw: Bytes,
}

/// A stream that could not be framed: what is wrong and the bytes that show it.
#[derive(Debug)]
pub struct FrameError {
    /// What is wrong.
    pub error: ParseError,
    /// The offending bytes (at most the limit plus a little).
    pub bytes: Bytes,
}

impl StreamFramer {
    /// A framer with these limits.
    pub fn new(limits: Limits) -> StreamFramer {
        StreamFramer {
            buf: BytesMut::with_capacity(4096),
            limits,
        }
    }

    /// The buffer to read into.
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// The next whole message, `Ok(None)` when more bytes are needed.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Framed>, FrameError> {
        // Skip keep-alive CRLFs (RFC 5626 §3.5.1).
        let skip = self
            .buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(self.buf.len());
        self.buf.advance(skip);
        if self.buf.is_empty() {
            return Ok(None);
        }
        let fail = |error: ParseError, buf: &BytesMut| FrameError {
            error,
            bytes: Bytes::copy_from_slice(&buf[..buf.len().min(self.limits.max_header_bytes + 64)]),
        };
        let head_end = match find_header_end(&self.buf) {
            Some(e) => e,
            None if self.buf.len() > self.limits.max_header_bytes => {
                return Err(fail(
                    ParseError::HeadersTooLarge {
                        limit: self.limits.max_header_bytes,
                    },
                    &self.buf,
                ))
            }
            None => return Ok(None),
        };
        if head_end > self.limits.max_header_bytes {
            return Err(fail(
                ParseError::HeadersTooLarge {
                    limit: self.limits.max_header_bytes,
                },
                &self.buf,
            ));
        }
        let mut message =
            Message::parse_head(&self.buf[..head_end]).map_err(|e| fail(e, &self.buf))?;
        let body_len = match message.content_length() {
            Ok(Some(n)) => n,
            Ok(None) => return Err(fail(ParseError::MissingContentLength, &self.buf)),
            Err(e) => return Err(fail(e, &self.buf)),
        };
        if body_len > self.limits.max_body_bytes {
            return Err(fail(
                ParseError::BodyTooLarge {
                    size: body_len,
                    limit: self.limits.max_body_bytes,
                },
                &self.buf,
            ));
        }
        if self.buf.len() < head_end + body_len {
            return Ok(None);
        }
        let raw = self.buf.split_to(head_end + body_len).freeze();
        message.body = raw.slice(head_end..);
        Ok(Some(Framed { message, raw }))
    }

    /// Bytes buffered but not yet framed.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"MESSAGE sip:a@b SIP/2.0\r\nCSeq: 1 MESSAGE\r\nl: 5\r\n\r\nhello";

    #[test]
    fn frames_split_and_joined_messages() {
        let mut f = StreamFramer::new(Limits::default());
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(MSG);
        // Feed one byte at a time: every prefix is "need more", never an error.
        let mut got = Vec::new();
        for b in &stream {
            f.buffer().extend_from_slice(&[*b]);
            while let Some(m) = f.next().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(&got[1].raw[..], MSG);
        assert_eq!(&got[0].message.body[..], b"hello");
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn stream_errors_are_values() {
        let mut f = StreamFramer::new(Limits::default());
        f.buffer()
            .extend_from_slice(b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n");
        assert_eq!(
            f.next().unwrap_err().error,
            ParseError::MissingContentLength
        );

        let mut f = StreamFramer::new(Limits {
            max_header_bytes: 100,
            max_body_bytes: 10,
        });
        f.buffer().extend_from_slice(&[b'a'; 200]);
        assert!(matches!(
            f.next().unwrap_err().error,
            ParseError::HeadersTooLarge { .. }
        ));

        let mut f = StreamFramer::new(Limits {
            max_header_bytes: 100,
            max_body_bytes: 10,
        });
        f.buffer()
            .extend_from_slice(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 11\r\n\r\n");
        assert!(matches!(
            f.next().unwrap_err().error,
            ParseError::BodyTooLarge { size: 11, .. }
        ));

        let mut f = StreamFramer::new(Limits::default());
        f.buffer()
            .extend_from_slice(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert!(matches!(
            f.next().unwrap_err().error,
            ParseError::BadContentLength(_)
        ));
    }
}
