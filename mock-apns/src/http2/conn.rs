//! One HTTP/2 server connection, driven by one task: it reads frames, answers complete requests
//! through the [`Service`] in the same task, and writes every response produced by one read in
//! one TLS write.
//!
//! Flow control follows APNs as seen on the wire: windows stay at 65 535 and a WINDOW_UPDATE
//! gives back half a window at a time. Streams, errors and GOAWAY follow RFC 9113: a malformed
//! request is a stream error, a broken frame a connection error (GOAWAY with the error code and
//! a line of text saying why, then a lingering close so the GOAWAY is read before the socket
//! closes).
//!
//! Against hostile clients (README, "Hostile clients"): a deadline for the preface and for each
//! request body, a budget of PING and SETTINGS frames ([`ACK_BURST`]), at most
//! [`MAX_CONTINUATIONS`] CONTINUATION frames per header block, and a header list stored only up
//! to SETTINGS_MAX_HEADER_LIST_SIZE however much its block decodes to.

use super::frame::{self, ErrorCode, Head};
use super::hpack::{self, Decoder, HeaderList};
use super::message;
use super::{Reply, Request, Service};
use bytes::{Buf, BytesMut};
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

/// Read buffer growth step.
const READ_CHUNK: usize = 32 * 1024;
/// A header block (HEADERS + CONTINUATION) larger than this ends the connection.
const MAX_HEADER_BLOCK: usize = 1 << 20;
/// At most this many CONTINUATION frames in one header block: nghttp2's
/// `NGHTTP2_DEFAULT_MAX_CONTINUATIONS` (its fix for CVE-2024-28182). Empty CONTINUATION frames
/// never grow the block, so the byte limit alone does not stop a flood of them.
const MAX_CONTINUATIONS: usize = 8;
/// PING and SETTINGS frames (the ones we must acknowledge) a client may send at once, and how many
/// more per second: nghttp2 calls 1000 unsent acknowledgements a flood
/// (`NGHTTP2_DEFAULT_MAX_OBQ_FLOOD_ITEM`, CVE-2019-9512 and CVE-2019-9515). A client that goes
/// over gets GOAWAY ENHANCE_YOUR_CALM.
const ACK_BURST: u32 = 1000;
/// See [`ACK_BURST`]: far above any client's keep-alive or settings change.
const ACK_PER_SECOND: u32 = 100;
/// Ranges of stream ids a client skipped that are remembered, to tell a HEADERS on one of them
/// (RFC 9113 §5.1.1, PROTOCOL_ERROR) from one on a stream it opened and closed (§5.1,
/// STREAM_CLOSED). A client that skips more ranges gets STREAM_CLOSED for the oldest.
const SKIPPED_RANGES: usize = 256;
/// At most this much is read and discarded in a lingering close.
const LINGER_BUDGET: usize = 1 << 20;
/// Header lists and bodies kept for reuse.
const POOL: usize = 64;

/// The connection's parameters.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Connection id, for logs.
    pub id: u64,
    /// MAX_CONCURRENT_STREAMS advertised at first.
    pub max_streams: u32,
    /// SETTINGS_HEADER_TABLE_SIZE (the HPACK decoder's table).
    pub header_table_size: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE, and the connection's receive window.
    pub initial_window: u32,
    /// SETTINGS_MAX_FRAME_SIZE.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: a larger request gets 431.
    pub max_header_list_size: u32,
    /// Largest body collected: a larger one is answered at once (`body_too_large`).
    pub body_limit: usize,
    /// How long the preface, a request body or a write may take.
    pub io_deadline: Duration,
    /// How long open streams get to finish after our GOAWAY.
    pub goaway_grace: Duration,
    /// How long a closing connection waits for the client to close first.
    pub close_grace: Duration,
}

impl Settings {
    /// APNs' SETTINGS as seen on the wire (`docs/evidence.md` A1: jchambers/pushy#878,
    /// sideshow/apns2#117).
    pub fn apns(id: u64, max_streams: u32) -> Self {
        Settings {
            id,
            max_streams,
            header_table_size: 4096,
            initial_window: 65_535,
            max_frame_size: 16_384,
            max_header_list_size: 8000,
            body_limit: 64 * 1024,
            io_deadline: Duration::from_secs(10),
            goaway_grace: Duration::from_secs(2),
            close_grace: Duration::from_secs(1),
        }
    }
}

/// How a connection ended.
#[derive(Debug)]
pub enum Ended {
    /// The client closed it.
    ClientClosed,
    /// It closed after our GOAWAY.
    WentAway,
    /// We found a connection error and sent GOAWAY with this code.
    ConnectionError {
        /// The GOAWAY's error code.
        code: ErrorCode,
        /// Why.
        detail: String,
    },
    /// The service dropped it.
    Dropped,
    /// The client did not start with the HTTP/2 preface.
    BadPreface,
    /// Shutdown came before the preface.
    ShutDown,
    /// Reading or writing failed or took too long.
    Io(std::io::Error),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::ClientClosed => write!(f, "closed by the client"),
            Ended::WentAway => write!(f, "closed after GOAWAY"),
            Ended::ConnectionError { code, detail } => {
                write!(f, "connection error {}: {detail}", code.name())
            }
            Ended::Dropped => write!(f, "dropped (fault)"),
            Ended::BadPreface => write!(f, "no HTTP/2 preface"),
            Ended::ShutDown => write!(f, "shut down before the preface"),
            Ended::Io(e) => write!(f, "I/O: {e}"),
        }
    }
}

/// A connection error: GOAWAY with this code.
#[derive(Debug)]
struct ConnError {
    code: ErrorCode,
    detail: String,
}

fn conn_error(code: ErrorCode, detail: impl Into<String>) -> ConnError {
    ConnError {
        code,
        detail: detail.into(),
    }
}

/// A receive window: what the client may still send, and what was consumed since the last
/// WINDOW_UPDATE. Given back half a window at a time, as APNs does.
#[derive(Clone, Copy, Debug, Default)]
struct RecvWindow {
    left: i64,
    unacked: i64,
}

impl RecvWindow {
    fn new(size: u32) -> Self {
        RecvWindow {
            left: i64::from(size),
            unacked: 0,
        }
    }

    /// Takes `len` bytes out of the window; false if they do not fit.
    fn consume(&mut self, len: i64) -> bool {
        if len > self.left {
            return false;
        }
        self.left -= len;
        self.unacked += len;
        true
    }

    /// The WINDOW_UPDATE increment to send once half of `size` was consumed.
    fn give_back(&mut self, size: u32) -> Option<u32> {
        if self.unacked < i64::from(size / 2).max(1) {
            return None;
        }
        let increment = self.unacked;
        self.left += increment;
        self.unacked = 0;
        Some(increment as u32)
    }
}

/// A client stream we have not closed.
#[derive(Default)]
struct Stream {
    fields: HeaderList,
    body: Vec<u8>,
    body_too_large: bool,
    received: u64,
    content_length: Option<u64>,
    recv_window: RecvWindow,
    send_window: i64,
    /// Handed to the service.
    dispatched: bool,
    /// A response body waiting for send window, and how much of it went out.
    pending: Option<(Vec<u8>, usize)>,
    /// When it started waiting for its body; `None` once the client sent END_STREAM.
    waiting_since: Option<Instant>,
}

impl Stream {
    /// The client sent END_STREAM.
    fn remote_closed(&self) -> bool {
        self.waiting_since.is_none()
    }
}

/// A header block still arriving in CONTINUATION frames.
struct Continuing {
    stream: u32,
    end_stream: bool,
    self_dependent: bool,
    block: Vec<u8>,
    /// CONTINUATION frames so far.
    frames: usize,
}

/// A token bucket: `burst` at once, `per_second` more each second.
#[derive(Debug)]
struct Budget {
    tokens: f64,
    burst: f64,
    per_second: f64,
    at: Instant,
}

impl Budget {
    fn new(burst: u32, per_second: u32, now: Instant) -> Self {
        Budget {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            per_second: f64::from(per_second),
            at: now,
        }
    }

    /// Takes one token at `now`; false if none is left.
    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

type Later = Pin<Box<dyn Future<Output = (u32, Reply)> + Send>>;

/// Where the connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Our GOAWAY is out: open streams finish, new ones are refused.
    GoingAway,
    /// Nothing left to answer: waiting for the client to close.
    Closing,
}

struct Conn {
    settings: Settings,
    decoder: Decoder,
    out: Vec<u8>,
    streams: HashMap<u32, Stream>,
    /// Highest stream id the client opened.
    last_stream: u32,
    max_streams: u32,
    /// A raised MAX_CONCURRENT_STREAMS, enforced once its SETTINGS is written ([`Conn::written`]):
    /// streams that came in the same read as the request that raised it were sent before the
    /// client could see it.
    raised_max_streams: Option<u32>,
    recv_window: RecvWindow,
    send_window: i64,
    peer_initial_window: i64,
    peer_max_frame: usize,
    got_settings: bool,
    continuing: Option<Continuing>,
    phase: Phase,
    dropped: bool,
    /// Streams waiting for their body.
    receiving: usize,
    /// When the current read's frames began to be handled (one clock read per read, not per
    /// request: it only starts the 10 s body deadline).
    now: Instant,
    /// PING and SETTINGS frames the client may still send ([`ACK_BURST`]).
    ack_budget: Budget,
    /// Client stream ids skipped (never opened) below `last_stream`, oldest first: `(first, last)`.
    skipped: std::collections::VecDeque<(u32, u32)>,
    /// Streams answered since the last write ([`Conn::written`]): they count against
    /// MAX_CONCURRENT_STREAMS until their END_STREAM is on the wire, as the client sees them (with a limit of 1, a second
    /// stream sent with the first is refused even when both arrive in one read).
    answered_unwritten: usize,
    later: FuturesUnordered<Later>,
    spare_fields: Vec<HeaderList>,
    spare_bodies: Vec<Vec<u8>>,
}

/// Serves one HTTP/2 connection on `io` (after TLS) until it ends.
pub async fn serve<IO, S>(
    mut io: IO,
    settings: Settings,
    mut service: S,
    mut shutdown: watch::Receiver<bool>,
) -> Ended
where
    IO: AsyncRead + AsyncWrite + Unpin,
    S: Service,
{
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let deadline = settings.io_deadline;
    let preface = async {
        while buf.len() < frame::PREFACE.len() {
            if !frame::PREFACE.starts_with(&buf) {
                return Err(Ended::BadPreface);
            }
            match io.read_buf(&mut buf).await {
                Ok(0) => return Err(Ended::ClientClosed),
                Ok(_) => {}
                Err(e) => return Err(Ended::Io(e)),
            }
        }
        if !buf.starts_with(frame::PREFACE) {
            return Err(Ended::BadPreface);
        }
        Ok(())
    };
    let started = tokio::select! {
        r = tokio::time::timeout(deadline, preface) => r.unwrap_or_else(|e| Err(Ended::Io(e.into()))),
        _ = shutdown.wait_for(|down| *down) => Err(Ended::ShutDown),
    };
    if let Err(ended) = started {
        return ended;
    }
    buf.advance(frame::PREFACE.len());

    let mut conn = Conn::new(settings);
    let mut shutdown_signal = std::pin::pin!(async move {
        let _ = shutdown.wait_for(|down| *down).await;
    });
    // One timer for the connection's waiting bodies, one for its GOAWAY and close: armed rarely,
    // never one per request.
    let mut body_timer = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
    let mut body_timer_armed = false;
    let mut phase_timer = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
    let mut shutting_down = false;
    // The phase whose deadline `phase_timer` holds.
    let mut timed_phase = Phase::Serving;
    loop {
        if let Err(e) = conn.process(&mut buf, &mut service) {
            return conn.fail(io, e).await;
        }
        if conn.dropped {
            return Ended::Dropped;
        }
        if conn.phase == Phase::GoingAway && conn.streams.is_empty() && conn.later.is_empty() {
            conn.phase = Phase::Closing;
        }
        if conn.phase != timed_phase {
            timed_phase = conn.phase;
            let grace = match timed_phase {
                Phase::GoingAway => conn.settings.goaway_grace,
                _ => conn.settings.close_grace,
            };
            phase_timer.as_mut().reset(Instant::now() + grace);
        }
        if let Err(e) = write_out(&mut io, &mut conn.out, deadline).await {
            return Ended::Io(e);
        }
        conn.written();
        if conn.receiving > 0 && !body_timer_armed {
            body_timer_armed = true;
            body_timer.as_mut().reset(Instant::now() + deadline);
        }
        if buf.capacity() - buf.len() < frame::HEADER_LEN + 1024 {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            biased;
            _ = &mut shutdown_signal, if !shutting_down => {
                shutting_down = true;
                let debug = service.shutdown_debug();
                conn.goaway(&debug);
            }
            Some((stream, reply)) = conn.later.next(), if !conn.later.is_empty() => {
                conn.apply(stream, reply);
            }
            _ = &mut body_timer, if body_timer_armed => {
                body_timer_armed = false;
                if let Some(next) = conn.expire_bodies(deadline) {
                    body_timer_armed = true;
                    body_timer.as_mut().reset(next);
                }
            }
            _ = &mut phase_timer, if timed_phase != Phase::Serving => {
                if timed_phase == Phase::GoingAway {
                    // Streams that did not finish within the grace are abandoned.
                    conn.phase = Phase::Closing;
                } else {
                    let _ = tokio::time::timeout(deadline, io.shutdown()).await;
                    return Ended::WentAway;
                }
            }
            read = io.read_buf(&mut buf) => match read {
                Ok(0) => {
                    return if conn.phase == Phase::Serving { Ended::ClientClosed } else { Ended::WentAway };
                }
                Ok(_) => {}
                Err(e) => return Ended::Io(e),
            },
        }
    }
}

async fn write_out<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    out: &mut Vec<u8>,
    deadline: Duration,
) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let written = tokio::time::timeout(deadline, async {
        io.write_all(out).await?;
        io.flush().await
    })
    .await;
    out.clear();
    written.map_err(std::io::Error::from)?
}

fn strip_padding(head: Head, payload: &[u8]) -> Result<&[u8], ConnError> {
    if !head.has(frame::PADDED) {
        return Ok(payload);
    }
    let Some((&pad, rest)) = payload.split_first() else {
        return Err(conn_error(
            ErrorCode::FrameSizeError,
            "PADDED frame without a pad length",
        ));
    };
    rest.len()
        .checked_sub(pad as usize)
        .map(|end| &rest[..end])
        .ok_or_else(|| {
            conn_error(
                ErrorCode::ProtocolError,
                format!("padding of {pad} bytes in a payload of {}", payload.len()),
            )
        })
}

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

impl Conn {
    fn new(settings: Settings) -> Conn {
        let mut out = Vec::with_capacity(16 * 1024);
        frame::put_settings(
            &mut out,
            &[
                (
                    frame::SETTINGS_HEADER_TABLE_SIZE,
                    settings.header_table_size,
                ),
                (frame::SETTINGS_MAX_CONCURRENT_STREAMS, settings.max_streams),
                (frame::SETTINGS_INITIAL_WINDOW_SIZE, settings.initial_window),
                (frame::SETTINGS_MAX_FRAME_SIZE, settings.max_frame_size),
                (
                    frame::SETTINGS_MAX_HEADER_LIST_SIZE,
                    settings.max_header_list_size,
                ),
            ],
        );
        Conn {
            decoder: Decoder::new(settings.header_table_size as usize),
            out,
            streams: HashMap::new(),
            last_stream: 0,
            max_streams: settings.max_streams,
            raised_max_streams: None,
            // The connection window starts at 65 535 whatever SETTINGS say (RFC 9113 §6.9.2).
            recv_window: RecvWindow::new(65_535),
            send_window: 65_535,
            peer_initial_window: 65_535,
            peer_max_frame: 16_384,
            got_settings: false,
            continuing: None,
            phase: Phase::Serving,
            dropped: false,
            receiving: 0,
            now: Instant::now(),
            ack_budget: Budget::new(ACK_BURST, ACK_PER_SECOND, Instant::now()),
            skipped: std::collections::VecDeque::new(),
            answered_unwritten: 0,
            later: FuturesUnordered::new(),
            spare_fields: Vec::new(),
            spare_bodies: Vec::new(),
            settings,
        }
    }

    /// Handles every whole frame in `buf`.
    fn process<S: Service>(
        &mut self,
        buf: &mut BytesMut,
        service: &mut S,
    ) -> Result<(), ConnError> {
        self.now = Instant::now();
        let mut at = 0;
        let result = loop {
            let Some(head) = Head::parse(&buf[at..]) else {
                break Ok(());
            };
            if head.len > self.settings.max_frame_size as usize {
                break Err(conn_error(
                    ErrorCode::FrameSizeError,
                    format!(
                        "frame of {} bytes (type {:#x}) over SETTINGS_MAX_FRAME_SIZE {}",
                        head.len, head.kind, self.settings.max_frame_size
                    ),
                ));
            }
            let end = at + frame::HEADER_LEN + head.len;
            if buf.len() < end {
                break Ok(());
            }
            let payload = &buf[at + frame::HEADER_LEN..end];
            at = end;
            if let Err(e) = self.on_frame(head, payload, service) {
                break Err(e);
            }
            if self.dropped {
                break Ok(());
            }
        };
        buf.advance(at);
        result
    }

    fn on_frame<S: Service>(
        &mut self,
        head: Head,
        payload: &[u8],
        service: &mut S,
    ) -> Result<(), ConnError> {
        if !self.got_settings {
            if head.kind != frame::SETTINGS || head.has(frame::ACK) {
                return Err(conn_error(
                    ErrorCode::ProtocolError,
                    format!("first frame of type {:#x}, not SETTINGS", head.kind),
                ));
            }
            self.got_settings = true;
        }
        if let Some(c) = &self.continuing {
            if head.kind != frame::CONTINUATION || head.stream != c.stream {
                return Err(conn_error(
                    ErrorCode::ProtocolError,
                    format!(
                        "frame of type {:#x} on stream {} inside the header block of stream {}",
                        head.kind, head.stream, c.stream
                    ),
                ));
            }
        }
        match head.kind {
            frame::DATA => self.on_data(head, payload, service),
            frame::HEADERS => self.on_headers(head, payload, service),
            frame::CONTINUATION => self.on_continuation(head, payload, service),
            frame::PRIORITY => self.on_priority(head, payload),
            frame::RST_STREAM => self.on_rst_stream(head, payload),
            frame::SETTINGS => self.on_settings(head, payload),
            frame::PUSH_PROMISE => Err(conn_error(
                ErrorCode::ProtocolError,
                "PUSH_PROMISE from a client",
            )),
            frame::PING => self.on_ping(head, payload),
            frame::GOAWAY => {
                if head.stream != 0 {
                    return Err(conn_error(ErrorCode::ProtocolError, "GOAWAY on a stream"));
                }
                if payload.len() < 8 {
                    return Err(conn_error(
                        ErrorCode::FrameSizeError,
                        "GOAWAY under 8 bytes",
                    ));
                }
                tracing::debug!(
                    conn = self.settings.id,
                    code = be32(&payload[4..]),
                    "GOAWAY from the client"
                );
                Ok(())
            }
            frame::WINDOW_UPDATE => self.on_window_update(head, payload),
            // Unknown frame types are ignored (RFC 9113 §4.1).
            _ => Ok(()),
        }
    }

    /// The stream must be one the client may have opened.
    fn check_client_stream(&self, head: Head, what: &str) -> Result<(), ConnError> {
        if head.stream == 0 {
            return Err(conn_error(
                ErrorCode::ProtocolError,
                format!("{what} on stream 0"),
            ));
        }
        if head.stream > self.last_stream {
            return Err(conn_error(
                ErrorCode::ProtocolError,
                format!("{what} on idle stream {}", head.stream),
            ));
        }
        Ok(())
    }

    fn on_data<S: Service>(
        &mut self,
        head: Head,
        payload: &[u8],
        service: &mut S,
    ) -> Result<(), ConnError> {
        self.check_client_stream(head, "DATA")?;
        // Flow control counts the whole payload, padding included (RFC 9113 §6.9).
        let len = payload.len() as i64;
        if !self.recv_window.consume(len) {
            return Err(conn_error(
                ErrorCode::FlowControlError,
                format!(
                    "DATA of {len} bytes with {} left in the connection window",
                    self.recv_window.left
                ),
            ));
        }
        if let Some(increment) = self.recv_window.give_back(self.settings.initial_window) {
            frame::put_window_update(&mut self.out, 0, increment);
        }
        let data = strip_padding(head, payload)?;
        let id = head.stream;
        let limit = self.settings.body_limit;
        // A stream we closed (reset, or answered) may still get DATA in flight: ignored.
        let Some(s) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        if s.remote_closed() {
            self.reset(id, ErrorCode::StreamClosed);
            return Ok(());
        }
        if !s.recv_window.consume(len) {
            self.reset(id, ErrorCode::FlowControlError);
            return Ok(());
        }
        s.received += data.len() as u64;
        if s.content_length.is_some_and(|n| s.received > n) {
            self.malformed(id, "more body than content-length");
            return Ok(());
        }
        if !s.body_too_large {
            if s.body.len() + data.len() > limit {
                s.body_too_large = true;
                s.body.clear();
            } else {
                s.body.extend_from_slice(data);
            }
        }
        if head.has(frame::END_STREAM) {
            self.end_of_request(id, service);
        } else if s.body_too_large && !s.dispatched {
            // Answered before the client is done (RFC 9113 §8.1).
            self.dispatch(id, service);
        } else if let Some(increment) = s.recv_window.give_back(self.settings.initial_window) {
            frame::put_window_update(&mut self.out, id, increment);
        }
        Ok(())
    }

    /// The client ended stream `id`: check its length and answer it.
    fn end_of_request<S: Service>(&mut self, id: u32, service: &mut S) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.waiting_since = None;
        self.receiving -= 1;
        if let Some(declared) = s.content_length {
            if declared != s.received && !s.body_too_large {
                let received = s.received;
                self.malformed(
                    id,
                    &message::Malformed::ContentLengthMismatch { declared, received }.to_string(),
                );
                return;
            }
        }
        if !s.dispatched {
            self.dispatch(id, service);
        }
    }

    fn on_headers<S: Service>(
        &mut self,
        head: Head,
        payload: &[u8],
        service: &mut S,
    ) -> Result<(), ConnError> {
        if head.stream == 0 || head.stream % 2 == 0 {
            return Err(conn_error(
                ErrorCode::ProtocolError,
                format!("HEADERS on stream {}, not a client stream", head.stream),
            ));
        }
        let mut fragment = strip_padding(head, payload)?;
        let mut self_dependent = false;
        if head.has(frame::PRIORITY_FLAG) {
            if fragment.len() < 5 {
                return Err(conn_error(
                    ErrorCode::FrameSizeError,
                    "HEADERS with PRIORITY shorter than 5 bytes",
                ));
            }
            self_dependent = be32(fragment) & 0x7fff_ffff == head.stream;
            fragment = &fragment[5..];
        }
        let end_stream = head.has(frame::END_STREAM);
        if head.has(frame::END_HEADERS) {
            self.on_header_block(head.stream, end_stream, self_dependent, fragment, service)
        } else {
            self.continuing = Some(Continuing {
                stream: head.stream,
                end_stream,
                self_dependent,
                block: fragment.to_vec(),
                frames: 0,
            });
            Ok(())
        }
    }

    fn on_continuation<S: Service>(
        &mut self,
        head: Head,
        payload: &[u8],
        service: &mut S,
    ) -> Result<(), ConnError> {
        let Some(c) = self.continuing.as_mut() else {
            return Err(conn_error(
                ErrorCode::ProtocolError,
                "CONTINUATION without a header block",
            ));
        };
        if c.block.len() + payload.len() > MAX_HEADER_BLOCK {
            return Err(conn_error(
                ErrorCode::EnhanceYourCalm,
                format!("header block over {MAX_HEADER_BLOCK} bytes"),
            ));
        }
        c.frames += 1;
        if c.frames > MAX_CONTINUATIONS {
            return Err(conn_error(
                ErrorCode::EnhanceYourCalm,
                format!(
                    "header block of stream {} in over {MAX_CONTINUATIONS} CONTINUATION frames",
                    c.stream
                ),
            ));
        }
        c.block.extend_from_slice(payload);
        if !head.has(frame::END_HEADERS) {
            return Ok(());
        }
        let Some(c) = self.continuing.take() else {
            return Ok(());
        };
        self.on_header_block(c.stream, c.end_stream, c.self_dependent, &c.block, service)
    }

    fn on_header_block<S: Service>(
        &mut self,
        id: u32,
        end_stream: bool,
        self_dependent: bool,
        block: &[u8],
        service: &mut S,
    ) -> Result<(), ConnError> {
        let mut fields = self.spare_fields.pop().unwrap_or_default();
        // Every block is decoded, even one for a stream about to be refused: the decoder's
        // table must follow the client's encoder.
        self.decoder
            .decode(
                block,
                &mut fields,
                self.settings.max_header_list_size as usize,
            )
            .map_err(|e| {
                conn_error(
                    ErrorCode::CompressionError,
                    format!("header block of stream {id}: {e}"),
                )
            })?;
        if id <= self.last_stream {
            self.recycle_fields(fields);
            if self.was_skipped(id) {
                // RFC 9113 §5.1.1: a new stream's id must be greater than every stream the client
                // opened; "an unexpected stream identifier" is a connection error PROTOCOL_ERROR.
                return Err(conn_error(
                    ErrorCode::ProtocolError,
                    format!(
                        "HEADERS opening stream {id} after stream {} (RFC 9113 §5.1.1)",
                        self.last_stream
                    ),
                ));
            }
            return self.on_trailers(id, end_stream, service);
        }
        self.skip_to(id);
        self.last_stream = id;
        let refusal = if self_dependent {
            Some((ErrorCode::ProtocolError, "stream depends on itself"))
        } else if self.phase != Phase::Serving {
            Some((ErrorCode::RefusedStream, "stream after GOAWAY"))
        } else if self.streams.len() + self.answered_unwritten >= self.max_streams as usize {
            Some((
                ErrorCode::RefusedStream,
                "stream over MAX_CONCURRENT_STREAMS",
            ))
        } else {
            None
        };
        if let Some((code, why)) = refusal {
            tracing::debug!(
                conn = self.settings.id,
                stream = id,
                "{why}: {}",
                code.name()
            );
            frame::put_rst_stream(&mut self.out, id, code);
            self.recycle_fields(fields);
            return Ok(());
        }
        if fields.oversized() {
            tracing::debug!(
                conn = self.settings.id,
                stream = id,
                "header list over {} bytes: 431",
                self.settings.max_header_list_size
            );
            self.recycle_fields(fields);
            let start = self.out.len();
            frame::put_head(
                &mut self.out,
                0,
                frame::HEADERS,
                frame::END_HEADERS | frame::END_STREAM,
                id,
            );
            hpack::encode_status(431, &mut self.out);
            patch_len(&mut self.out, start);
            if !end_stream {
                frame::put_rst_stream(&mut self.out, id, ErrorCode::NoError);
            }
            return Ok(());
        }
        let checked = message::check_request(&fields);
        let request = match checked {
            Ok(r) => r,
            Err(m) => {
                tracing::debug!(
                    conn = self.settings.id,
                    stream = id,
                    "malformed request: {m}"
                );
                frame::put_rst_stream(&mut self.out, id, ErrorCode::ProtocolError);
                self.recycle_fields(fields);
                return Ok(());
            }
        };
        if end_stream && request.content_length.is_some_and(|n| n != 0) {
            tracing::debug!(
                conn = self.settings.id,
                stream = id,
                "content-length without a body"
            );
            frame::put_rst_stream(&mut self.out, id, ErrorCode::ProtocolError);
            self.recycle_fields(fields);
            return Ok(());
        }
        let mut body = self.spare_bodies.pop().unwrap_or_default();
        if let Some(n) = request.content_length {
            // Up front only what a push can be: a larger body grows as it arrives.
            body.reserve((n as usize).min(self.settings.body_limit).min(16 * 1024));
        }
        self.streams.insert(
            id,
            Stream {
                fields,
                body,
                content_length: request.content_length,
                recv_window: RecvWindow::new(self.settings.initial_window),
                send_window: self.peer_initial_window,
                waiting_since: (!end_stream).then_some(self.now),
                ..Stream::default()
            },
        );
        if end_stream {
            self.dispatch(id, service);
        } else {
            self.receiving += 1;
        }
        Ok(())
    }

    /// Remembers the client ids below `id` that were never opened (`id` is a new stream).
    fn skip_to(&mut self, id: u32) {
        let first = if self.last_stream == 0 {
            1
        } else {
            self.last_stream + 2
        };
        if id > first {
            if self.skipped.len() == SKIPPED_RANGES {
                self.skipped.pop_front();
            }
            self.skipped.push_back((first, id - 2));
        }
    }

    /// Stream `id` (below `last_stream`) was skipped by the client, never opened.
    fn was_skipped(&self, id: u32) -> bool {
        self.skipped
            .iter()
            .any(|&(first, last)| (first..=last).contains(&id))
    }

    /// A header block on a stream the client opened before: trailers, or an error.
    fn on_trailers<S: Service>(
        &mut self,
        id: u32,
        end_stream: bool,
        service: &mut S,
    ) -> Result<(), ConnError> {
        match self.streams.get(&id) {
            None => Err(conn_error(
                ErrorCode::StreamClosed,
                format!("HEADERS on closed stream {id}"),
            )),
            Some(s) if s.remote_closed() => {
                self.reset(id, ErrorCode::StreamClosed);
                Ok(())
            }
            Some(_) if !end_stream => {
                self.malformed(id, "a second HEADERS without END_STREAM");
                Ok(())
            }
            Some(_) => {
                self.end_of_request(id, service);
                Ok(())
            }
        }
    }

    fn on_priority(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if head.stream == 0 {
            return Err(conn_error(ErrorCode::ProtocolError, "PRIORITY on stream 0"));
        }
        if payload.len() != 5 {
            frame::put_rst_stream(&mut self.out, head.stream, ErrorCode::FrameSizeError);
            self.forget(head.stream);
            return Ok(());
        }
        if be32(payload) & 0x7fff_ffff == head.stream {
            frame::put_rst_stream(&mut self.out, head.stream, ErrorCode::ProtocolError);
            self.forget(head.stream);
        }
        Ok(())
    }

    fn on_rst_stream(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if payload.len() != 4 {
            return Err(conn_error(
                ErrorCode::FrameSizeError,
                format!("RST_STREAM of {} bytes", payload.len()),
            ));
        }
        self.check_client_stream(head, "RST_STREAM")?;
        tracing::debug!(
            conn = self.settings.id,
            stream = head.stream,
            code = be32(payload),
            "RST_STREAM from the client"
        );
        self.forget(head.stream);
        Ok(())
    }

    fn on_settings(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if head.stream != 0 {
            return Err(conn_error(ErrorCode::ProtocolError, "SETTINGS on a stream"));
        }
        if head.has(frame::ACK) {
            if !payload.is_empty() {
                return Err(conn_error(
                    ErrorCode::FrameSizeError,
                    "SETTINGS ACK with a payload",
                ));
            }
            return Ok(());
        }
        if payload.len() % 6 != 0 {
            return Err(conn_error(
                ErrorCode::FrameSizeError,
                format!("SETTINGS of {} bytes, not a multiple of 6", payload.len()),
            ));
        }
        self.take_ack_budget("SETTINGS")?;
        for setting in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([setting[0], setting[1]]);
            let value = be32(&setting[2..]);
            match id {
                frame::SETTINGS_ENABLE_PUSH if value > 1 => {
                    return Err(conn_error(
                        ErrorCode::ProtocolError,
                        format!("SETTINGS_ENABLE_PUSH {value}"),
                    ));
                }
                frame::SETTINGS_INITIAL_WINDOW_SIZE => {
                    let value = i64::from(value);
                    if value > frame::MAX_WINDOW {
                        return Err(conn_error(
                            ErrorCode::FlowControlError,
                            format!("SETTINGS_INITIAL_WINDOW_SIZE {value}"),
                        ));
                    }
                    let delta = value - self.peer_initial_window;
                    self.peer_initial_window = value;
                    for s in self.streams.values_mut() {
                        s.send_window += delta;
                        if s.send_window > frame::MAX_WINDOW {
                            return Err(conn_error(
                                ErrorCode::FlowControlError,
                                "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window",
                            ));
                        }
                    }
                }
                frame::SETTINGS_MAX_FRAME_SIZE => {
                    if !frame::FRAME_SIZE_RANGE.contains(&value) {
                        return Err(conn_error(
                            ErrorCode::ProtocolError,
                            format!("SETTINGS_MAX_FRAME_SIZE {value}"),
                        ));
                    }
                    self.peer_max_frame = value as usize;
                }
                // The response encoder never uses the dynamic table, and the other settings
                // (and unknown ones) do not bind a server that never pushes.
                _ => {}
            }
        }
        frame::put_frame(&mut self.out, frame::SETTINGS, frame::ACK, 0, &[]);
        self.send_all_pending();
        Ok(())
    }

    /// Takes one frame from the PING/SETTINGS budget ([`ACK_BURST`]); a flood is a connection
    /// error ENHANCE_YOUR_CALM.
    fn take_ack_budget(&mut self, what: &str) -> Result<(), ConnError> {
        if self.ack_budget.take(self.now) {
            return Ok(());
        }
        Err(conn_error(
            ErrorCode::EnhanceYourCalm,
            format!(
                "{what} flood: over {ACK_BURST} PING and SETTINGS frames at once, \
                 or {ACK_PER_SECOND} a second"
            ),
        ))
    }

    fn on_ping(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if head.stream != 0 {
            return Err(conn_error(ErrorCode::ProtocolError, "PING on a stream"));
        }
        if payload.len() != 8 {
            return Err(conn_error(
                ErrorCode::FrameSizeError,
                format!("PING of {} bytes", payload.len()),
            ));
        }
        if !head.has(frame::ACK) {
            self.take_ack_budget("PING")?;
            frame::put_frame(&mut self.out, frame::PING, frame::ACK, 0, payload);
        }
        Ok(())
    }

    fn on_window_update(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if payload.len() != 4 {
            return Err(conn_error(
                ErrorCode::FrameSizeError,
                format!("WINDOW_UPDATE of {} bytes", payload.len()),
            ));
        }
        let increment = i64::from(be32(payload) & 0x7fff_ffff);
        if head.stream == 0 {
            if increment == 0 {
                return Err(conn_error(
                    ErrorCode::ProtocolError,
                    "WINDOW_UPDATE of 0 on the connection",
                ));
            }
            self.send_window += increment;
            if self.send_window > frame::MAX_WINDOW {
                return Err(conn_error(
                    ErrorCode::FlowControlError,
                    "connection window over 2^31-1",
                ));
            }
            self.send_all_pending();
            return Ok(());
        }
        self.check_client_stream(head, "WINDOW_UPDATE")?;
        let Some(s) = self.streams.get_mut(&head.stream) else {
            return Ok(());
        };
        if increment == 0 {
            self.reset(head.stream, ErrorCode::ProtocolError);
            return Ok(());
        }
        s.send_window += increment;
        if s.send_window > frame::MAX_WINDOW {
            self.reset(head.stream, ErrorCode::FlowControlError);
            return Ok(());
        }
        self.send_pending(head.stream);
        Ok(())
    }

    /// Hands a complete (or too large) request to the service.
    fn dispatch<S: Service>(&mut self, id: u32, service: &mut S) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.dispatched = true;
        let request = Request {
            stream: id,
            fields: std::mem::take(&mut s.fields),
            body: std::mem::take(&mut s.body),
            body_too_large: s.body_too_large,
        };
        let answer = service.call(&request);
        self.recycle_fields(request.fields);
        self.recycle_body(request.body);
        if let Some(n) = answer.max_streams {
            if n != self.raised_max_streams.unwrap_or(self.max_streams) {
                self.raised_max_streams = Some(n);
                frame::put_settings(
                    &mut self.out,
                    &[(frame::SETTINGS_MAX_CONCURRENT_STREAMS, n)],
                );
            }
        }
        match answer.reply {
            Ok(reply) => self.apply(id, reply),
            Err(later) => self.later.push(Box::pin(async move { (id, later.await) })),
        }
    }

    /// Carries out the service's reply on stream `id` (if the client has not reset it).
    fn apply(&mut self, id: u32, reply: Reply) {
        match reply {
            Reply::DropConnection => self.dropped = true,
            Reply::RefuseAndGoAway(debug) => {
                // GOAWAY first: a client that closes on the reset has read it.
                self.goaway(&debug);
                if self.streams.contains_key(&id) {
                    self.reset(id, ErrorCode::RefusedStream);
                }
            }
            Reply::Respond(response) => {
                if !self.streams.contains_key(&id) {
                    return;
                }
                let body = response.body.filter(|b| !b.is_empty());
                let start = self.out.len();
                let flags = frame::END_HEADERS | if body.is_none() { frame::END_STREAM } else { 0 };
                frame::put_head(&mut self.out, 0, frame::HEADERS, flags, id);
                hpack::encode_status(response.status, &mut self.out);
                for (name, value, never_indexed) in &response.fields {
                    if *never_indexed {
                        hpack::encode_never_indexed(name, value, &mut self.out);
                    } else {
                        hpack::encode_literal(name, value, &mut self.out);
                    }
                }
                if self.out.len() - start - frame::HEADER_LEN > self.peer_max_frame {
                    // Far beyond any APNs response: refuse rather than split.
                    self.out.truncate(start);
                    self.reset(id, ErrorCode::InternalError);
                    return;
                }
                patch_len(&mut self.out, start);
                match body {
                    None => self.local_close(id),
                    Some(body) => {
                        if let Some(s) = self.streams.get_mut(&id) {
                            s.pending = Some((body, 0));
                        }
                        self.send_pending(id);
                    }
                }
            }
        }
    }

    /// What was produced is on the wire: the client can now see the answered streams closed and
    /// a raised MAX_CONCURRENT_STREAMS, so both count from the next read on.
    fn written(&mut self) {
        self.answered_unwritten = 0;
        if let Some(n) = self.raised_max_streams.take() {
            self.max_streams = n;
        }
    }

    /// Sends what the windows allow of stream `id`'s pending body.
    fn send_pending(&mut self, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let Some((body, sent)) = s.pending.as_mut() else {
            return;
        };
        while *sent < body.len() {
            let room = self
                .send_window
                .min(s.send_window)
                .min(self.peer_max_frame as i64);
            if room <= 0 {
                return;
            }
            let n = (body.len() - *sent).min(room as usize);
            let last = *sent + n == body.len();
            frame::put_frame(
                &mut self.out,
                frame::DATA,
                if last { frame::END_STREAM } else { 0 },
                id,
                &body[*sent..*sent + n],
            );
            *sent += n;
            self.send_window -= n as i64;
            s.send_window -= n as i64;
        }
        s.pending = None;
        self.local_close(id);
    }

    fn send_all_pending(&mut self) {
        let waiting: Vec<u32> = self
            .streams
            .iter()
            .filter(|(_, s)| s.pending.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            self.send_pending(id);
        }
    }

    /// We sent END_STREAM on `id`.
    fn local_close(&mut self, id: u32) {
        let Some(s) = self.streams.get(&id) else {
            return;
        };
        if !s.remote_closed() {
            // Answered before the request ended: the client may stop sending (RFC 9113 §8.1).
            frame::put_rst_stream(&mut self.out, id, ErrorCode::NoError);
        }
        self.answered_unwritten += 1;
        self.forget(id);
    }

    /// Resets stream `id` with `code`.
    fn reset(&mut self, id: u32, code: ErrorCode) {
        frame::put_rst_stream(&mut self.out, id, code);
        self.forget(id);
    }

    fn malformed(&mut self, id: u32, why: &str) {
        tracing::debug!(
            conn = self.settings.id,
            stream = id,
            "malformed request: {why}"
        );
        self.reset(id, ErrorCode::ProtocolError);
    }

    /// Drops stream `id`'s state.
    fn forget(&mut self, id: u32) {
        if let Some(s) = self.streams.remove(&id) {
            if !s.remote_closed() {
                self.receiving -= 1;
            }
            self.recycle_fields(s.fields);
            self.recycle_body(s.body);
        }
    }

    fn recycle_fields(&mut self, mut fields: HeaderList) {
        if self.spare_fields.len() < POOL {
            fields.clear();
            self.spare_fields.push(fields);
        }
    }

    fn recycle_body(&mut self, mut body: Vec<u8>) {
        if self.spare_bodies.len() < POOL && body.capacity() <= self.settings.body_limit {
            body.clear();
            self.spare_bodies.push(body);
        }
    }

    /// Sends GOAWAY(NO_ERROR) with `debug`, once: streams opened after it are refused.
    fn goaway(&mut self, debug: &[u8]) {
        if self.phase != Phase::Serving {
            return;
        }
        self.phase = Phase::GoingAway;
        self.out
            .extend(frame::goaway(self.last_stream, ErrorCode::NoError, debug));
    }

    /// Cancels the bodies that waited past `deadline`; returns when to check again.
    fn expire_bodies(&mut self, deadline: Duration) -> Option<Instant> {
        let now = Instant::now();
        let expired: Vec<u32> = self
            .streams
            .iter()
            .filter(|(_, s)| s.waiting_since.is_some_and(|t| now >= t + deadline))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            tracing::debug!(
                conn = self.settings.id,
                stream = id,
                "request body not received within {deadline:?}: CANCEL"
            );
            self.reset(id, ErrorCode::Cancel);
        }
        self.streams
            .values()
            .filter_map(|s| s.waiting_since)
            .min()
            .map(|t| t + deadline)
    }

    /// Ends the connection on a connection error: GOAWAY, then a lingering close.
    async fn fail<IO: AsyncRead + AsyncWrite + Unpin>(mut self, mut io: IO, e: ConnError) -> Ended {
        tracing::debug!(
            conn = self.settings.id,
            "connection error {}: {}",
            e.code.name(),
            e.detail
        );
        self.out
            .extend(frame::goaway(self.last_stream, e.code, e.detail.as_bytes()));
        let deadline = self.settings.io_deadline;
        if write_out(&mut io, &mut self.out, deadline).await.is_ok() {
            let _ = tokio::time::timeout(deadline, io.shutdown()).await;
            linger(&mut io, self.settings.close_grace).await;
        }
        Ended::ConnectionError {
            code: e.code,
            detail: e.detail,
        }
    }
}

impl Drop for Conn {
    /// Replies still to come (delay faults) finish on their own when the connection ends first:
    /// the service records each request when its reply is made, and none may be lost.
    fn drop(&mut self) {
        if self.later.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            for later in std::mem::take(&mut self.later) {
                runtime.spawn(later);
            }
        }
    }
}

/// Sets the length of the frame whose header starts at `start` to what follows it in `out`.
fn patch_len(out: &mut [u8], start: usize) {
    let len = (out.len() - start - frame::HEADER_LEN) as u32;
    out[start..start + 3].copy_from_slice(&len.to_be_bytes()[1..]);
}

/// A lingering close (nginx's `lingering_close`): what the client still sends is read and thrown
/// away until it closes, [`LINGER_BUDGET`] bytes or `grace`. Closing with unread bytes makes the
/// kernel answer with a reset, and a reset can discard the GOAWAY before the client reads it: a
/// client in the middle of writing an oversized frame would see "broken pipe" instead of
/// FRAME_SIZE_ERROR.
async fn linger<IO: AsyncRead + Unpin>(io: &mut IO, grace: Duration) {
    let _ = tokio::time::timeout(grace, async {
        let mut sink = vec![0u8; 16 * 1024];
        let mut read = 0;
        while read < LINGER_BUDGET {
            match io.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    //! The engine against a scripted client over an in-memory pipe: the frames it must answer
    //! that the interop tests (curl, nghttp, aioapns, h2) never send.

    use super::*;
    use crate::http2::{Answer, Response};
    use tokio::io::DuplexStream;

    /// Echoes the body; `/later` answers after 10 ms, `/drop` drops the connection, a body over
    /// the limit gets 413.
    #[derive(Clone, Default)]
    struct Echo {
        /// Later replies made so far.
        later_made: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Service for Echo {
        fn call(&mut self, request: &Request) -> Answer {
            let path = request
                .fields
                .iter()
                .find(|(n, _)| *n == b":path")
                .map(|(_, v)| v.to_vec())
                .unwrap_or_default();
            let response = Response {
                status: if request.body_too_large { 413 } else { 200 },
                fields: vec![(b"x-stream", request.stream.to_string().into_bytes(), false)],
                body: Some(request.body.clone()),
            };
            let reply = match path.as_slice() {
                b"/later" => Err(Box::pin({
                    let made = self.later_made.clone();
                    async move {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        Reply::Respond(response)
                    }
                }) as super::super::LaterReply),
                b"/drop" => Ok(Reply::DropConnection),
                _ => Ok(Reply::Respond(response)),
            };
            Answer {
                reply,
                max_streams: None,
            }
        }

        fn shutdown_debug(&self) -> Vec<u8> {
            b"bye".to_vec()
        }
    }

    struct Client {
        io: DuplexStream,
        buf: Vec<u8>,
        server: tokio::task::JoinHandle<Ended>,
        echo: Echo,
        _shutdown: watch::Sender<bool>,
    }

    #[derive(Debug, PartialEq, Eq)]
    struct Frame {
        kind: u8,
        flags: u8,
        stream: u32,
        payload: Vec<u8>,
    }

    /// Connects with these client SETTINGS, and reads the server's SETTINGS and its ACK.
    async fn connect(settings: Settings, client_settings: &[(u16, u32)]) -> Client {
        let (io, server_io) = tokio::io::duplex(1 << 20);
        let (tx, rx) = watch::channel(false);
        let echo = Echo::default();
        let server = tokio::spawn(serve(server_io, settings, echo.clone(), rx));
        let mut client = Client {
            io,
            buf: Vec::new(),
            server,
            echo,
            _shutdown: tx,
        };
        let mut hello = frame::PREFACE.to_vec();
        frame::put_settings(&mut hello, client_settings);
        client.send(&hello).await;
        let first = client.frame().await.expect("server SETTINGS");
        assert_eq!(
            (first.kind, first.flags, first.payload.len()),
            (frame::SETTINGS, 0, 30)
        );
        let ack = client.frame().await.expect("SETTINGS ACK");
        assert_eq!((ack.kind, ack.flags), (frame::SETTINGS, frame::ACK));
        client
    }

    fn request(path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut block = Vec::new();
        for (n, v) in [(":method", "POST"), (":scheme", "https"), (":path", path)]
            .iter()
            .chain(extra)
        {
            hpack::encode_literal(n.as_bytes(), v.as_bytes(), &mut block);
        }
        block
    }

    /// A request in one HEADERS frame with END_STREAM.
    fn whole(stream: u32, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        frame::frame(
            frame::HEADERS,
            frame::END_HEADERS | frame::END_STREAM,
            stream,
            &request(path, extra),
        )
    }

    /// The `:status` of a response HEADERS frame.
    fn status(headers: &Frame) -> Vec<u8> {
        let mut fields = HeaderList::default();
        Decoder::new(4096)
            .decode(&headers.payload, &mut fields, 8000)
            .expect("response header block");
        let status = fields.iter().next().map(|(_, v)| v.to_vec());
        status.unwrap_or_default()
    }

    impl Client {
        async fn send(&mut self, bytes: &[u8]) {
            self.io.write_all(bytes).await.expect("write");
        }

        async fn frame(&mut self) -> Option<Frame> {
            tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    if let Some(head) = Head::parse(&self.buf) {
                        if self.buf.len() >= frame::HEADER_LEN + head.len {
                            let rest = self.buf.split_off(frame::HEADER_LEN + head.len);
                            let payload = self.buf[frame::HEADER_LEN..].to_vec();
                            self.buf = rest;
                            return Some(Frame {
                                kind: head.kind,
                                flags: head.flags,
                                stream: head.stream,
                                payload,
                            });
                        }
                    }
                    let mut chunk = [0u8; 4096];
                    match self.io.read(&mut chunk).await {
                        Ok(0) | Err(_) => return None,
                        Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                    }
                }
            })
            .await
            .expect("a frame or the end within 5 s")
        }

        /// The GOAWAY's (error code, debug text), skipping other frames.
        async fn goaway(&mut self) -> (u32, String) {
            loop {
                let f = self.frame().await.expect("GOAWAY before the end");
                if f.kind == frame::GOAWAY {
                    return (
                        be32(&f.payload[4..]),
                        String::from_utf8_lossy(&f.payload[8..]).into_owned(),
                    );
                }
            }
        }
    }

    fn settings() -> Settings {
        Settings::apns(1, 100)
    }

    #[tokio::test]
    async fn a_request_is_answered_and_a_ping_acknowledged() {
        let mut c = connect(settings(), &[]).await;
        let mut bytes = frame::frame(frame::HEADERS, frame::END_HEADERS, 1, &request("/", &[]));
        bytes.extend(frame::frame(frame::DATA, frame::END_STREAM, 1, b"hi"));
        bytes.extend(frame::frame(frame::PING, 0, 0, b"12345678"));
        c.send(&bytes).await;
        let headers = c.frame().await.unwrap();
        assert_eq!(
            (headers.kind, headers.flags, headers.stream),
            (frame::HEADERS, frame::END_HEADERS, 1)
        );
        let mut fields = HeaderList::default();
        Decoder::new(4096)
            .decode(&headers.payload, &mut fields, 8000)
            .unwrap();
        let fields: Vec<_> = fields
            .iter()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(
            fields,
            [
                (b":status".to_vec(), b"200".to_vec()),
                (b"x-stream".to_vec(), b"1".to_vec())
            ]
        );
        let data = c.frame().await.unwrap();
        assert_eq!(
            (data.kind, data.flags, data.payload),
            (frame::DATA, frame::END_STREAM, b"hi".to_vec())
        );
        let ping = c.frame().await.unwrap();
        assert_eq!(
            (ping.kind, ping.flags, ping.payload),
            (frame::PING, frame::ACK, b"12345678".to_vec())
        );
    }

    #[tokio::test]
    async fn a_response_body_waits_for_the_clients_window() {
        let mut c = connect(settings(), &[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 0)]).await;
        let mut bytes = frame::frame(frame::HEADERS, frame::END_HEADERS, 1, &request("/", &[]));
        bytes.extend(frame::frame(frame::DATA, frame::END_STREAM, 1, b"hello"));
        c.send(&bytes).await;
        let headers = c.frame().await.unwrap();
        assert_eq!(
            (headers.kind, headers.flags),
            (frame::HEADERS, frame::END_HEADERS)
        );
        let mut update = Vec::new();
        frame::put_window_update(&mut update, 1, 3);
        c.send(&update).await;
        let part = c.frame().await.unwrap();
        assert_eq!(
            (part.kind, part.flags, part.payload),
            (frame::DATA, 0, b"hel".to_vec())
        );
        update.clear();
        frame::put_window_update(&mut update, 1, 10);
        c.send(&update).await;
        let rest = c.frame().await.unwrap();
        assert_eq!(
            (rest.kind, rest.flags, rest.payload),
            (frame::DATA, frame::END_STREAM, b"lo".to_vec())
        );
    }

    #[tokio::test]
    async fn continuation_frames_padding_and_trailers_make_one_request() {
        let mut c = connect(settings(), &[]).await;
        let block = request("/", &[("apns-topic", "com.example")]);
        let (a, b) = block.split_at(10);
        let mut padded = vec![3u8];
        padded.extend_from_slice(a);
        padded.extend_from_slice(&[0, 0, 0]);
        let mut bytes = frame::frame(frame::HEADERS, frame::PADDED, 1, &padded);
        bytes.extend(frame::frame(frame::CONTINUATION, frame::END_HEADERS, 1, b));
        bytes.extend(frame::frame(frame::DATA, 0, 1, b"body"));
        let mut trailers = Vec::new();
        hpack::encode_literal(b"x-trailer", b"1", &mut trailers);
        bytes.extend(frame::frame(
            frame::HEADERS,
            frame::END_HEADERS | frame::END_STREAM,
            1,
            &trailers,
        ));
        c.send(&bytes).await;
        assert_eq!(c.frame().await.unwrap().kind, frame::HEADERS);
        assert_eq!(c.frame().await.unwrap().payload, b"body");
    }

    #[tokio::test]
    async fn malformed_requests_reset_their_stream_and_the_connection_serves_on() {
        let mut c = connect(settings(), &[]).await;
        // A body longer than its content-length, then a body shorter than it.
        let mut bytes = frame::frame(
            frame::HEADERS,
            frame::END_HEADERS,
            1,
            &request("/", &[("content-length", "2")]),
        );
        bytes.extend(frame::frame(frame::DATA, frame::END_STREAM, 1, b"abc"));
        bytes.extend(frame::frame(
            frame::HEADERS,
            frame::END_HEADERS,
            3,
            &request("/", &[("content-length", "5")]),
        ));
        bytes.extend(frame::frame(frame::DATA, frame::END_STREAM, 3, b"abc"));
        // An upper-case field name.
        bytes.extend(whole(5, "/", &[("Apns-Topic", "x")]));
        bytes.extend(whole(7, "/", &[]));
        c.send(&bytes).await;
        for stream in [1, 3, 5] {
            let f = c.frame().await.unwrap();
            assert_eq!(
                (f.kind, f.stream, be32(&f.payload)),
                (frame::RST_STREAM, stream, ErrorCode::ProtocolError as u32)
            );
        }
        let f = c.frame().await.unwrap();
        assert_eq!((f.kind, f.stream), (frame::HEADERS, 7));
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_answered_before_it_ends() {
        let mut c = connect(
            Settings {
                body_limit: 8,
                ..settings()
            },
            &[],
        )
        .await;
        let mut bytes = frame::frame(frame::HEADERS, frame::END_HEADERS, 1, &request("/", &[]));
        bytes.extend(frame::frame(frame::DATA, 0, 1, &[b'x'; 20]));
        c.send(&bytes).await;
        let headers = c.frame().await.unwrap();
        assert_eq!(status(&headers), b"413");
        // Its (empty) body would be DATA: an empty body ends with the HEADERS.
        assert!(headers.flags & frame::END_STREAM != 0);
        let rst = c.frame().await.unwrap();
        assert_eq!(
            (rst.kind, be32(&rst.payload)),
            (frame::RST_STREAM, ErrorCode::NoError as u32)
        );
        // The rest of that body is ignored.
        c.send(&frame::frame(frame::DATA, frame::END_STREAM, 1, b"more"))
            .await;
        c.send(&whole(3, "/", &[])).await;
        assert_eq!(c.frame().await.unwrap().stream, 3);
    }

    #[tokio::test]
    async fn a_header_list_over_the_limit_gets_431() {
        let mut c = connect(
            Settings {
                max_header_list_size: 200,
                ..settings()
            },
            &[],
        )
        .await;
        let long = "v".repeat(300);
        c.send(&whole(1, "/", &[("x-long", &long)])).await;
        let headers = c.frame().await.unwrap();
        assert_eq!(status(&headers), b"431");
    }

    #[tokio::test]
    async fn later_replies_arrive_and_a_dropped_connection_sends_nothing() {
        let mut c = connect(settings(), &[]).await;
        c.send(&whole(1, "/later", &[])).await;
        assert_eq!(c.frame().await.unwrap().stream, 1);
        c.send(&whole(3, "/drop", &[])).await;
        assert_eq!(c.frame().await, None);
        assert!(matches!(c.server.await.unwrap(), Ended::Dropped));
    }

    #[tokio::test]
    async fn a_later_reply_is_still_made_when_the_client_closes_first() {
        let mut c = connect(settings(), &[]).await;
        c.send(&whole(1, "/later", &[])).await;
        c.io.shutdown().await.unwrap();
        drop(c.io);
        assert!(matches!(c.server.await.unwrap(), Ended::ClientClosed));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            c.echo.later_made.load(std::sync::atomic::Ordering::SeqCst),
            1
        );
    }

    #[tokio::test]
    async fn broken_frames_are_connection_errors_with_a_reason() {
        let cases: Vec<(&str, Vec<u8>, ErrorCode)> = vec![
            (
                "PING inside a header block",
                {
                    let mut b = frame::frame(frame::HEADERS, 0, 1, &request("/", &[]));
                    b.extend(frame::frame(frame::PING, 0, 0, b"12345678"));
                    b
                },
                ErrorCode::ProtocolError,
            ),
            (
                "even stream",
                frame::frame(frame::HEADERS, frame::END_HEADERS, 2, &request("/", &[])),
                ErrorCode::ProtocolError,
            ),
            (
                "DATA on an idle stream",
                frame::frame(frame::DATA, 0, 9, b"x"),
                ErrorCode::ProtocolError,
            ),
            (
                "PING of 7 bytes",
                frame::frame(frame::PING, 0, 0, b"1234567"),
                ErrorCode::FrameSizeError,
            ),
            (
                "WINDOW_UPDATE of 0",
                frame::frame(frame::WINDOW_UPDATE, 0, 0, &[0; 4]),
                ErrorCode::ProtocolError,
            ),
            (
                "window over 2^31-1",
                frame::frame(frame::WINDOW_UPDATE, 0, 0, &0x7fff_ffffu32.to_be_bytes()),
                ErrorCode::FlowControlError,
            ),
            (
                "SETTINGS_MAX_FRAME_SIZE 100",
                {
                    let mut b = Vec::new();
                    frame::put_settings(&mut b, &[(frame::SETTINGS_MAX_FRAME_SIZE, 100)]);
                    b
                },
                ErrorCode::ProtocolError,
            ),
            (
                "PUSH_PROMISE",
                frame::frame(frame::PUSH_PROMISE, 0, 1, &[0; 4]),
                ErrorCode::ProtocolError,
            ),
            (
                "undecodable header block",
                frame::frame(frame::HEADERS, frame::END_HEADERS, 1, &[0xff; 8]),
                ErrorCode::CompressionError,
            ),
        ];
        for (name, bytes, code) in cases {
            let mut c = connect(settings(), &[]).await;
            c.send(&bytes).await;
            let (got, why) = c.goaway().await;
            assert_eq!(got, code as u32, "{name}: {why}");
            assert!(!why.is_empty(), "{name}: no reason in the GOAWAY");
            assert_eq!(c.frame().await, None, "{name}: still open after GOAWAY");
        }
    }

    #[tokio::test]
    async fn a_stream_id_lower_than_one_opened_is_a_protocol_error() {
        // RFC 9113 §5.1.1: stream 3 was skipped when 5 opened; opening it now is a connection
        // error PROTOCOL_ERROR.
        let mut c = connect(settings(), &[]).await;
        c.send(&whole(5, "/", &[])).await;
        assert_eq!(c.frame().await.unwrap().stream, 5);
        c.send(&whole(3, "/", &[])).await;
        let (code, why) = c.goaway().await;
        assert_eq!(code, ErrorCode::ProtocolError as u32, "{why}");
        assert!(why.contains("§5.1.1"), "{why}");
        // A stream opened and closed (answered) is another matter: HEADERS on it after its
        // END_STREAM is STREAM_CLOSED (§5.1), as before.
        let mut c = connect(settings(), &[]).await;
        c.send(&whole(1, "/", &[])).await;
        assert_eq!(c.frame().await.unwrap().stream, 1);
        c.send(&whole(3, "/", &[])).await;
        assert_eq!(c.frame().await.unwrap().stream, 3);
        c.send(&whole(1, "/", &[])).await;
        let (code, why) = c.goaway().await;
        assert_eq!(code, ErrorCode::StreamClosed as u32, "{why}");
    }

    #[tokio::test]
    async fn a_continuation_flood_is_enhance_your_calm() {
        let mut c = connect(settings(), &[]).await;
        // Eight CONTINUATION frames are still one request.
        let block = request("/", &[]);
        let mut bytes = frame::frame(frame::HEADERS, frame::END_STREAM, 1, &block[..4]);
        for (i, piece) in block[4..].chunks(block[4..].len().div_ceil(8)).enumerate() {
            let last = 4 + (i + 1) * block[4..].len().div_ceil(8) >= block.len();
            let flags = if last { frame::END_HEADERS } else { 0 };
            bytes.extend(frame::frame(frame::CONTINUATION, flags, 1, piece));
        }
        c.send(&bytes).await;
        assert_eq!(status(&c.frame().await.unwrap()), b"200");
        // Empty CONTINUATION frames without end: the ninth ends the connection.
        let mut bytes = frame::frame(frame::HEADERS, frame::END_STREAM, 3, &block);
        for _ in 0..10_000 {
            bytes.extend(frame::frame(frame::CONTINUATION, 0, 3, &[]));
        }
        c.send(&bytes).await;
        let (code, why) = c.goaway().await;
        assert_eq!(code, ErrorCode::EnhanceYourCalm as u32, "{why}");
    }

    #[tokio::test]
    async fn a_ping_or_settings_flood_is_enhance_your_calm() {
        for (name, one) in [
            ("PING", frame::frame(frame::PING, 0, 0, b"12345678")),
            ("SETTINGS", frame::frame(frame::SETTINGS, 0, 0, &[])),
        ] {
            let mut c = connect(settings(), &[]).await;
            // A burst under the limit is acknowledged in full (the client's SETTINGS took one).
            c.send(&one.repeat(ACK_BURST as usize - 1)).await;
            for _ in 1..ACK_BURST {
                let f = c.frame().await.expect("ACK");
                assert_eq!(f.flags, frame::ACK, "{name}");
            }
            // Thousands more at once: a flood.
            c.send(&one.repeat(5000)).await;
            let (code, why) = c.goaway().await;
            assert_eq!(code, ErrorCode::EnhanceYourCalm as u32, "{name}: {why}");
            assert!(why.contains("flood"), "{name}: {why}");
        }
    }

    #[tokio::test]
    async fn an_hpack_bomb_gets_431_and_the_connection_serves_on() {
        // One 4000-byte field in the dynamic table, then 4000 one-byte references to it: a 4 KB
        // block that decodes into 16 MB. The decoder stores nothing past the list limit.
        // A literal with incremental indexing, new name "x-big", a value of 4000 bytes.
        let mut first = vec![0x40];
        hpack_str(b"x-big", &mut first);
        hpack_str(&[b'v'; 4000], &mut first);
        let mut bomb = request("/", &[]);
        bomb.extend(&first);
        bomb.extend(std::iter::repeat_n(0x80 | 62, 4000));
        let mut c = connect(settings(), &[]).await;
        c.send(&frame::frame(
            frame::HEADERS,
            frame::END_HEADERS | frame::END_STREAM,
            1,
            &bomb,
        ))
        .await;
        assert_eq!(status(&c.frame().await.unwrap()), b"431");
        c.send(&whole(3, "/", &[])).await;
        assert_eq!(status(&c.frame().await.unwrap()), b"200");
    }

    /// An HPACK string literal, not Huffman-coded.
    fn hpack_str(s: &[u8], out: &mut Vec<u8>) {
        let mut rest = s.len();
        if rest < 127 {
            out.push(rest as u8);
        } else {
            out.push(127);
            rest -= 127;
            while rest >= 128 {
                out.push(0x80 | (rest & 0x7f) as u8);
                rest >>= 7;
            }
            out.push(rest as u8);
        }
        out.extend_from_slice(s);
    }

    #[tokio::test]
    async fn shutdown_sends_goaway_and_refuses_new_streams() {
        let mut c = connect(settings(), &[]).await;
        c._shutdown.send(true).unwrap();
        let (code, debug) = c.goaway().await;
        assert_eq!((code, debug.as_str()), (0, "bye"));
        c.send(&whole(1, "/", &[])).await;
        let f = c.frame().await.unwrap();
        assert_eq!(
            (f.kind, be32(&f.payload)),
            (frame::RST_STREAM, ErrorCode::RefusedStream as u32)
        );
    }
}
