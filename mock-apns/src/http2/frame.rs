//! HTTP/2 frames (RFC 9113 §4 and §6): the 9-byte header, the frame types, flags, error codes
//! and settings this server uses, and encoders for the frames it sends.

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Length of a frame header.
pub const HEADER_LEN: usize = 9;

/// Frame type DATA.
pub const DATA: u8 = 0x0;
/// Frame type HEADERS.
pub const HEADERS: u8 = 0x1;
/// Frame type PRIORITY.
pub const PRIORITY: u8 = 0x2;
/// Frame type RST_STREAM.
pub const RST_STREAM: u8 = 0x3;
/// Frame type SETTINGS.
pub const SETTINGS: u8 = 0x4;
/// Frame type PUSH_PROMISE.
pub const PUSH_PROMISE: u8 = 0x5;
/// Frame type PING.
pub const PING: u8 = 0x6;
/// Frame type GOAWAY.
pub const GOAWAY: u8 = 0x7;
/// Frame type WINDOW_UPDATE.
pub const WINDOW_UPDATE: u8 = 0x8;
/// Frame type CONTINUATION.
pub const CONTINUATION: u8 = 0x9;

/// Flag END_STREAM (DATA, HEADERS).
pub const END_STREAM: u8 = 0x1;
/// Flag ACK (SETTINGS, PING).
pub const ACK: u8 = 0x1;
/// Flag END_HEADERS (HEADERS, CONTINUATION).
pub const END_HEADERS: u8 = 0x4;
/// Flag PADDED (DATA, HEADERS).
pub const PADDED: u8 = 0x8;
/// Flag PRIORITY (HEADERS).
pub const PRIORITY_FLAG: u8 = 0x20;

/// SETTINGS_HEADER_TABLE_SIZE.
pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
/// SETTINGS_ENABLE_PUSH.
pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
/// SETTINGS_MAX_CONCURRENT_STREAMS.
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
/// SETTINGS_INITIAL_WINDOW_SIZE.
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
/// SETTINGS_MAX_FRAME_SIZE.
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
/// SETTINGS_MAX_HEADER_LIST_SIZE.
pub const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// The largest flow-control window (RFC 9113 §6.9.1).
pub const MAX_WINDOW: i64 = (1 << 31) - 1;
/// The smallest and largest SETTINGS_MAX_FRAME_SIZE (RFC 9113 §6.5.2).
pub const FRAME_SIZE_RANGE: std::ops::RangeInclusive<u32> = 16_384..=16_777_215;

/// HTTP/2 error codes (RFC 9113 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// NO_ERROR: a graceful shutdown.
    NoError = 0x0,
    /// PROTOCOL_ERROR: the peer broke the protocol.
    ProtocolError = 0x1,
    /// INTERNAL_ERROR: this endpoint failed.
    InternalError = 0x2,
    /// FLOW_CONTROL_ERROR: a window was overrun.
    FlowControlError = 0x3,
    /// STREAM_CLOSED: a frame on a half-closed stream.
    StreamClosed = 0x5,
    /// FRAME_SIZE_ERROR: a frame of the wrong size.
    FrameSizeError = 0x6,
    /// REFUSED_STREAM: a stream refused before any processing.
    RefusedStream = 0x7,
    /// CANCEL: the stream is no longer needed.
    Cancel = 0x8,
    /// COMPRESSION_ERROR: the HPACK state cannot be kept.
    CompressionError = 0x9,
    /// ENHANCE_YOUR_CALM: the peer is abusive.
    EnhanceYourCalm = 0xb,
}

impl ErrorCode {
    /// The name RFC 9113 gives it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::NoError => "NO_ERROR",
            ErrorCode::ProtocolError => "PROTOCOL_ERROR",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::FlowControlError => "FLOW_CONTROL_ERROR",
            ErrorCode::StreamClosed => "STREAM_CLOSED",
            ErrorCode::FrameSizeError => "FRAME_SIZE_ERROR",
            ErrorCode::RefusedStream => "REFUSED_STREAM",
            ErrorCode::Cancel => "CANCEL",
            ErrorCode::CompressionError => "COMPRESSION_ERROR",
            ErrorCode::EnhanceYourCalm => "ENHANCE_YOUR_CALM",
        }
    }
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Payload length.
    pub len: usize,
    /// Frame type.
    pub kind: u8,
    /// Flags.
    pub flags: u8,
    /// Stream identifier (reserved bit cleared).
    pub stream: u32,
}

impl Head {
    /// Parses the first 9 bytes of `bytes`, if there are 9.
    pub fn parse(bytes: &[u8]) -> Option<Head> {
        let b: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Head {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize,
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        })
    }

    /// Whether `flag` is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Appends a frame header for a payload of `len` bytes.
pub fn put_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    let len = (len as u32).to_be_bytes();
    out.extend_from_slice(&[len[1], len[2], len[3], kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
}

/// Appends a whole frame.
pub fn put_frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    put_head(out, payload.len(), kind, flags, stream);
    out.extend_from_slice(payload);
}

/// Encodes one frame.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    put_frame(&mut out, kind, flags, stream, payload);
    out
}

/// Appends a SETTINGS frame with these (identifier, value) pairs.
pub fn put_settings(out: &mut Vec<u8>, settings: &[(u16, u32)]) {
    put_head(out, settings.len() * 6, SETTINGS, 0, 0);
    for (id, value) in settings {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// Appends a RST_STREAM frame.
pub fn put_rst_stream(out: &mut Vec<u8>, stream: u32, code: ErrorCode) {
    put_frame(out, RST_STREAM, 0, stream, &(code as u32).to_be_bytes());
}

/// Appends a WINDOW_UPDATE frame.
pub fn put_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    put_frame(
        out,
        WINDOW_UPDATE,
        0,
        stream,
        &(increment & 0x7fff_ffff).to_be_bytes(),
    );
}

/// A GOAWAY frame.
pub fn goaway(last_stream: u32, code: ErrorCode, debug: &[u8]) -> Vec<u8> {
    let mut payload = (last_stream & 0x7fff_ffff).to_be_bytes().to_vec();
    payload.extend_from_slice(&(code as u32).to_be_bytes());
    payload.extend_from_slice(debug);
    frame(GOAWAY, 0, 0, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_through_its_header() {
        let bytes = frame(HEADERS, END_HEADERS | END_STREAM, 0x8000_0003, b"abc");
        let head = Head::parse(&bytes).unwrap();
        assert_eq!(
            head,
            Head {
                len: 3,
                kind: HEADERS,
                flags: END_HEADERS | END_STREAM,
                stream: 3
            }
        );
        assert!(head.has(END_STREAM) && !head.has(PADDED));
        assert_eq!(&bytes[HEADER_LEN..], b"abc");
        assert_eq!(Head::parse(&bytes[..8]), None);
    }

    #[test]
    fn settings_and_goaway_are_encoded_as_rfc_9113_lays_them_out() {
        let mut out = Vec::new();
        put_settings(&mut out, &[(SETTINGS_MAX_CONCURRENT_STREAMS, 1)]);
        assert_eq!(out, [0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1]);
        let g = goaway(5, ErrorCode::FrameSizeError, b"x");
        assert_eq!(g, [0, 0, 9, 7, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 6, b'x']);
    }
}
