//! A thin HTTP/2 "frame tap" between the TLS stream and the `h2` server.
//!
//! `h2` 0.4 cannot change MAX_CONCURRENT_STREAMS after the handshake, nor put debug data in a
//! GOAWAY (its `Connection` offers only `set_initial_window_size`, `graceful_shutdown` and
//! `abrupt_shutdown(Reason)`), and it answers an unexpected SETTINGS ACK with a PROTOCOL_ERROR
//! GOAWAY. APNs needs all three, so the tap:
//! - follows the 9-byte frame headers in both directions;
//! - rewrites MAX_CONCURRENT_STREAMS in the server's first SETTINGS frame (APNs starts token
//!   connections at 1);
//! - injects whole frames (SETTINGS, GOAWAY, RST_STREAM) only at frame boundaries of what `h2`
//!   writes, also while `h2` writes nothing (from its pending read);
//! - swallows the client's SETTINGS ACK for each SETTINGS it injected, so `h2` never sees one;
//! - remembers the highest stream id the client opened (for GOAWAY's last-stream-id);
//! - enforces a MAX_CONCURRENT_STREAMS lower than the one `h2` was built with (APNs' 1 before
//!   the first valid token): it counts client streams open (HEADERS seen, no END_STREAM from the
//!   server nor RST_STREAM either way yet) and marks a new stream beyond the limit as refused; the
//!   connection loop resets it with REFUSED_STREAM, as `h2` does for its own limit. The HEADERS
//!   frame still goes to `h2`, whose HPACK decoder must see every header block.

use futures::task::AtomicWaker;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// Frame type SETTINGS.
pub const SETTINGS: u8 = 0x4;
/// Frame type GOAWAY.
pub const GOAWAY: u8 = 0x7;
/// Frame type RST_STREAM.
pub const RST_STREAM: u8 = 0x3;
/// Frame type HEADERS.
pub const HEADERS: u8 = 0x1;
/// Frame type DATA.
pub const DATA: u8 = 0x0;
/// Flag END_STREAM (DATA, HEADERS).
const END_STREAM: u8 = 0x1;
/// No stream limit of the tap's own (`h2` enforces the one it was built with).
const NO_LIMIT: u32 = u32::MAX;
/// SETTINGS_MAX_CONCURRENT_STREAMS.
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const ACK: u8 = 0x1;
const PREFACE_LEN: usize = 24;
const READ_CHUNK: usize = 16 * 1024;

/// Encodes one frame.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A SETTINGS frame with one MAX_CONCURRENT_STREAMS entry.
pub fn settings_max_streams(n: u32) -> Vec<u8> {
    let mut p = SETTINGS_MAX_CONCURRENT_STREAMS.to_be_bytes().to_vec();
    p.extend_from_slice(&n.to_be_bytes());
    frame(SETTINGS, 0, 0, &p)
}

/// A GOAWAY frame.
pub fn goaway(last_stream: u32, error_code: u32, debug: &[u8]) -> Vec<u8> {
    let mut p = (last_stream & 0x7fff_ffff).to_be_bytes().to_vec();
    p.extend_from_slice(&error_code.to_be_bytes());
    p.extend_from_slice(debug);
    frame(GOAWAY, 0, 0, &p)
}

struct Injection {
    bytes: Vec<u8>,
    settings: bool,
    done: Option<oneshot::Sender<()>>,
}

struct Shared {
    queue: Mutex<VecDeque<Injection>>,
    waker: AtomicWaker,
    highest_client_stream: AtomicU32,
    /// Flush for real on the next poll_flush/poll_read (set by the connection loop).
    force_flush: AtomicBool,
    /// Bytes are buffered that nobody flushed yet.
    unflushed: AtomicBool,
    /// The stream limit the tap enforces ([`NO_LIMIT`]: none).
    stream_limit: AtomicU32,
    /// Streams the tap refused, not yet reset by the connection loop.
    refused: Mutex<Vec<u32>>,
    /// `refused` is not empty (checked without the lock on every request).
    any_refused: AtomicBool,
}

/// Handle to inject frames into a tapped connection from any task.
#[derive(Clone)]
pub struct TapHandle {
    shared: Arc<Shared>,
}

impl TapHandle {
    fn push(&self, bytes: Vec<u8>, settings: bool) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(Injection {
                bytes,
                settings,
                done: Some(tx),
            });
        self.shared.waker.wake();
        rx
    }

    /// Sends SETTINGS MAX_CONCURRENT_STREAMS = `n`. The receiver fires once it is on the wire.
    pub fn set_max_concurrent_streams(&self, n: u32) -> oneshot::Receiver<()> {
        self.push(settings_max_streams(n), true)
    }

    /// Sends GOAWAY. The receiver fires once it is on the wire.
    pub fn goaway(&self, last_stream: u32, error_code: u32, debug: &[u8]) -> oneshot::Receiver<()> {
        self.push(goaway(last_stream, error_code, debug), false)
    }

    /// Enforces at most `n` concurrent client streams from now on (`None`: leave it to `h2`,
    /// whose own limit must then be the advertised one). A new stream beyond it is reported by
    /// [`take_refused`](Self::take_refused). Raising the limit takes effect at once; lowering
    /// counts only streams opened after the limit was first set.
    pub fn limit_streams(&self, n: Option<u32>) {
        // Streams already refused stay refused: they were over the limit when they arrived.
        self.shared
            .stream_limit
            .store(n.unwrap_or(NO_LIMIT), Ordering::Release);
    }

    /// True (once) if the tap refused client stream `stream`: the caller must reset it with
    /// REFUSED_STREAM.
    pub fn take_refused(&self, stream: u32) -> bool {
        if !self.shared.any_refused.load(Ordering::Acquire) {
            return false;
        }
        let mut refused = self
            .shared
            .refused
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(i) = refused.iter().position(|s| *s == stream) else {
            return false;
        };
        refused.swap_remove(i);
        if refused.is_empty() {
            self.shared.any_refused.store(false, Ordering::Release);
        }
        true
    }

    /// The highest stream id the client has opened so far.
    pub fn highest_client_stream(&self) -> u32 {
        self.shared.highest_client_stream.load(Ordering::Acquire)
    }

    /// Whether written bytes wait in the tap for a real flush.
    pub fn has_unflushed(&self) -> bool {
        self.shared.unflushed.load(Ordering::Acquire)
    }

    /// While true, every flush (and every read) writes buffered bytes out at once.
    pub fn set_force_flush(&self, on: bool) {
        self.shared.force_flush.store(on, Ordering::Release);
    }
}

/// Where the writer is within `h2`'s frames.
struct WriteTrack {
    header: [u8; 9],
    have: usize,
    payload_left: usize,
}

impl WriteTrack {
    fn at_boundary(&self) -> bool {
        self.have == 0 && self.payload_left == 0
    }
}

/// The tap: wraps the TLS stream given to `h2`.
pub struct FrameTap<IO> {
    io: IO,
    shared: Arc<Shared>,
    /// Who sent each SETTINGS frame not yet acknowledged: true = the tap.
    settings_owners: VecDeque<bool>,
    // Read side.
    rbuf: Box<[u8]>,
    rstart: usize,
    rend: usize,
    preface_left: usize,
    pass_left: usize,
    // Write side.
    track: WriteTrack,
    first_frame: Option<(u32, Vec<u8>)>,
    /// Everything to send, in order: h2's bytes and injected frames.
    out: Vec<u8>,
    out_pos: usize,
    pending_done: Vec<oneshot::Sender<()>>,
    /// Client streams counted open while the tap enforces a stream limit.
    open_streams: Vec<u32>,
}

/// Above this many buffered bytes, writes go out without waiting for a flush.
const OUT_HIGH_WATER: usize = 64 * 1024;

impl<IO> FrameTap<IO> {
    /// Wraps `io`. `initial_max_streams` replaces MAX_CONCURRENT_STREAMS in the server's first
    /// SETTINGS frame (added if `h2` did not set it).
    pub fn new(io: IO, initial_max_streams: Option<u32>) -> (Self, TapHandle) {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            waker: AtomicWaker::new(),
            highest_client_stream: AtomicU32::new(0),
            force_flush: AtomicBool::new(false),
            unflushed: AtomicBool::new(false),
            stream_limit: AtomicU32::new(NO_LIMIT),
            refused: Mutex::new(Vec::new()),
            any_refused: AtomicBool::new(false),
        });
        (
            FrameTap {
                io,
                shared: shared.clone(),
                settings_owners: VecDeque::new(),
                rbuf: vec![0; READ_CHUNK].into_boxed_slice(),
                rstart: 0,
                rend: 0,
                preface_left: PREFACE_LEN,
                pass_left: 0,
                track: WriteTrack {
                    header: [0; 9],
                    have: 0,
                    payload_left: 0,
                },
                first_frame: initial_max_streams.map(|n| (n, Vec::new())),
                out: Vec::with_capacity(OUT_HIGH_WATER),
                out_pos: 0,
                pending_done: Vec::new(),
                open_streams: Vec::new(),
            },
            TapHandle { shared },
        )
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }
}

/// Rewrites (or appends) MAX_CONCURRENT_STREAMS in a complete SETTINGS frame.
fn rewrite_max_streams(frame_bytes: &mut Vec<u8>, n: u32) {
    if frame_bytes.len() < 9 || frame_bytes[3] != SETTINGS || frame_bytes[4] & ACK != 0 {
        return;
    }
    let mut i = 9;
    while i + 6 <= frame_bytes.len() {
        if u16::from_be_bytes([frame_bytes[i], frame_bytes[i + 1]])
            == SETTINGS_MAX_CONCURRENT_STREAMS
        {
            frame_bytes[i + 2..i + 6].copy_from_slice(&n.to_be_bytes());
            return;
        }
        i += 6;
    }
    frame_bytes.extend_from_slice(&SETTINGS_MAX_CONCURRENT_STREAMS.to_be_bytes());
    frame_bytes.extend_from_slice(&n.to_be_bytes());
    let len = (frame_bytes.len() - 9) as u32;
    frame_bytes[..3].copy_from_slice(&len.to_be_bytes()[1..]);
}

impl<IO: AsyncRead + AsyncWrite + Unpin> FrameTap<IO> {
    /// Appends queued injections to the output (only at a frame boundary).
    fn take_injections(&mut self) {
        if !self.track.at_boundary() || self.first_frame.is_some() {
            return;
        }
        let mut q = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(inj) = q.pop_front() {
            if inj.settings {
                self.settings_owners.push_back(true);
            }
            self.out.extend_from_slice(&inj.bytes);
            self.pending_done.extend(inj.done);
        }
    }

    /// Writes the whole output buffer to the stream.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        self.out.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }

    /// Writes everything out, flushes the stream, and confirms injections.
    fn poll_flush_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.take_injections();
        ready!(self.poll_drain(cx))?;
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        self.shared.unflushed.store(false, Ordering::Release);
        for done in self.pending_done.drain(..) {
            let _ = done.send(());
        }
        Poll::Ready(Ok(()))
    }

    /// True when a flush must really happen now.
    fn must_flush(&self) -> bool {
        !self.pending_done.is_empty()
            || self.out.len() - self.out_pos >= OUT_HIGH_WATER
            || (self.shared.force_flush.load(Ordering::Acquire) && self.out_pos < self.out.len())
    }

    /// Counts a new client stream against the tap's limit, or marks it refused.
    fn stream_opened(&mut self, stream: u32) {
        let limit = self.shared.stream_limit.load(Ordering::Acquire);
        if limit == NO_LIMIT {
            self.open_streams.clear();
            return;
        }
        if self.open_streams.len() >= limit as usize {
            self.shared
                .refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(stream);
            self.shared.any_refused.store(true, Ordering::Release);
        } else {
            self.open_streams.push(stream);
        }
    }

    /// A stream ended (END_STREAM from the server, or RST_STREAM either way).
    fn stream_closed(&mut self, stream: u32) {
        if let Some(i) = self.open_streams.iter().position(|s| *s == stream) {
            self.open_streams.swap_remove(i);
        }
    }

    /// Follows frame headers over bytes `h2` wrote.
    fn track_written(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.track.payload_left > 0 {
                let k = self.track.payload_left.min(data.len());
                self.track.payload_left -= k;
                data = &data[k..];
                continue;
            }
            let k = (9 - self.track.have).min(data.len());
            self.track.header[self.track.have..self.track.have + k].copy_from_slice(&data[..k]);
            self.track.have += k;
            data = &data[k..];
            if self.track.have == 9 {
                let h = self.track.header;
                let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
                if h[3] == SETTINGS && h[4] & ACK == 0 {
                    self.settings_owners.push_back(false);
                }
                if !self.open_streams.is_empty()
                    && (h[3] == RST_STREAM
                        || (matches!(h[3], DATA | HEADERS) && h[4] & END_STREAM != 0))
                {
                    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                    self.stream_closed(stream);
                }
                self.track.have = 0;
                self.track.payload_left = len;
            }
        }
    }

    /// Copies client bytes to `out`, frame by frame, dropping ACKs of injected SETTINGS.
    fn drain_into(&mut self, out: &mut ReadBuf<'_>) {
        while out.remaining() > 0 && self.rstart < self.rend {
            let avail = self.rend - self.rstart;
            let passing = if self.preface_left > 0 {
                &mut self.preface_left
            } else if self.pass_left > 0 {
                &mut self.pass_left
            } else {
                if avail < 9 {
                    break;
                }
                let h = &self.rbuf[self.rstart..self.rstart + 9];
                let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
                let (kind, flags) = (h[3], h[4]);
                let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                if kind == SETTINGS && flags & ACK != 0 {
                    if let Some(ours) = self.settings_owners.pop_front() {
                        if ours && len == 0 {
                            self.rstart += 9;
                            continue;
                        }
                    }
                }
                if kind == HEADERS && stream % 2 == 1 {
                    let before = self
                        .shared
                        .highest_client_stream
                        .fetch_max(stream, Ordering::AcqRel);
                    if stream > before {
                        self.stream_opened(stream);
                    }
                } else if kind == RST_STREAM && !self.open_streams.is_empty() {
                    self.stream_closed(stream);
                }
                self.pass_left = 9 + len;
                &mut self.pass_left
            };
            let k = (*passing).min(avail).min(out.remaining());
            *passing -= k;
            out.put_slice(&self.rbuf[self.rstart..self.rstart + k]);
            self.rstart += k;
        }
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for FrameTap<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.shared.waker.register(cx.waker());
        // h2 always has a read pending, so injections (and forced flushes) also go out while
        // it writes nothing.
        this.take_injections();
        if this.must_flush() {
            if let Poll::Ready(Err(e)) = this.poll_flush_out(cx) {
                return Poll::Ready(Err(e));
            }
        }
        loop {
            let before = out.filled().len();
            this.drain_into(out);
            if out.filled().len() > before || out.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            // Need more bytes: compact a partial header to the front, then read.
            if this.rstart > 0 {
                this.rbuf.copy_within(this.rstart..this.rend, 0);
                this.rend -= this.rstart;
                this.rstart = 0;
            }
            let mut rb = ReadBuf::new(&mut this.rbuf[this.rend..]);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                // EOF: hand over a truncated header as is, so h2 reports it.
                if this.rend > this.rstart {
                    this.pass_left = this.rend - this.rstart;
                    continue;
                }
                return Poll::Ready(Ok(()));
            }
            this.rend += n;
        }
    }
}

/// Writes are buffered in order (h2's bytes and injected frames) and leave in large chunks: a
/// flush from `h2` only goes out when forced by the connection loop (it is about to wait), when
/// injections wait for confirmation, or above [`OUT_HIGH_WATER`]. This turns one TLS record and
/// one system call per response into one per burst. WINDOW_UPDATEs wait for that flush too: a
/// client blocked on flow control sends nothing more, so the connection loop soon waits and
/// forces it, and sending them at once cost a TLS record and a system call per request body.
impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for FrameTap<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.out.len() - this.out_pos >= OUT_HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        if let Some((n, buf)) = &mut this.first_frame {
            // Collect the server's first frame (its SETTINGS) whole, then rewrite it.
            let mut consumed = 0;
            if buf.len() < 9 {
                consumed = (9 - buf.len()).min(data.len());
                buf.extend_from_slice(&data[..consumed]);
            }
            if buf.len() >= 9 {
                let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
                let want = 9 + len - buf.len();
                let k = want.min(data.len() - consumed);
                buf.extend_from_slice(&data[consumed..consumed + k]);
                consumed += k;
                if buf.len() == 9 + len {
                    let mut bytes = std::mem::take(buf);
                    rewrite_max_streams(&mut bytes, *n);
                    if bytes[3] == SETTINGS && bytes[4] & ACK == 0 {
                        this.settings_owners.push_back(false);
                    }
                    this.first_frame = None;
                    this.out.extend_from_slice(&bytes);
                }
            }
            this.shared.unflushed.store(true, Ordering::Release);
            return Poll::Ready(Ok(consumed));
        }
        this.take_injections();
        let n = data.len().min(OUT_HIGH_WATER);
        this.out.extend_from_slice(&data[..n]);
        this.track_written(&data[..n]);
        this.shared.unflushed.store(true, Ordering::Release);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.take_injections();
        if this.must_flush() {
            ready!(this.poll_flush_out(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_flush_out(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn rewrites_or_adds_max_streams() {
        let mut f = frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 3, 232, 0, 4, 0, 0, 255, 255]);
        rewrite_max_streams(&mut f, 1);
        assert_eq!(&f[9..15], &[0, 3, 0, 0, 0, 1]);
        let mut g = frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 255, 255]);
        rewrite_max_streams(&mut g, 7);
        assert_eq!(g.len(), 9 + 12);
        assert_eq!(g[2], 12);
        assert_eq!(&g[15..21], &[0, 3, 0, 0, 0, 7]);
    }

    /// The tap between a fake "h2" side (the test) and a fake client (a duplex pipe).
    #[tokio::test]
    async fn injects_at_boundaries_and_swallows_its_acks() {
        let (server_io, mut client) = tokio::io::duplex(1 << 16);
        let (mut tap, handle) = FrameTap::new(server_io, Some(1));
        handle.set_force_flush(true);
        let deadline = std::time::Duration::from_secs(5);
        // The server's first SETTINGS says 1000; the client must see 1.
        let first = frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 3, 232]);
        tap.write_all(&first[..4]).await.unwrap();
        tap.write_all(&first[4..]).await.unwrap();
        tap.flush().await.unwrap();
        let mut got = [0u8; 15];
        tokio::time::timeout(deadline, client.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&got[9..], &[0, 3, 0, 0, 0, 1]);

        // h2 writes half a DATA frame; an injection must wait for the frame's end.
        let data = frame(0, 0, 1, b"0123456789");
        tap.write_all(&data[..12]).await.unwrap();
        let mut sent = handle.set_max_concurrent_streams(1000);
        tap.flush().await.unwrap();
        assert!(sent.try_recv().is_err(), "injected mid-frame");
        tap.write_all(&data[12..]).await.unwrap();
        tap.flush().await.unwrap();
        tokio::time::timeout(deadline, sent).await.unwrap().unwrap();
        let mut got = vec![0u8; data.len() + 15];
        tokio::time::timeout(deadline, client.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&got[..data.len()], &data[..]);
        assert_eq!(&got[data.len()..], &settings_max_streams(1000)[..]);

        // Client: preface, ACK of h2's SETTINGS, ACK of ours, HEADERS on stream 3.
        let mut from_client = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        let ack = frame(SETTINGS, ACK, 0, &[]);
        from_client.extend_from_slice(&ack);
        from_client.extend_from_slice(&ack);
        let headers = frame(HEADERS, 0x4, 3, b"hpack");
        from_client.extend_from_slice(&headers);
        // Split writes to exercise partial headers.
        for chunk in from_client.chunks(5) {
            client.write_all(chunk).await.unwrap();
        }
        let mut want = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        want.extend_from_slice(&ack);
        want.extend_from_slice(&headers);
        let mut seen = vec![0u8; want.len()];
        tokio::time::timeout(deadline, tap.read_exact(&mut seen))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen, want);
        assert_eq!(handle.highest_client_stream(), 3);

        // Without a forced flush, h2's writes wait in the tap; a forced read-side flush sends them.
        handle.set_force_flush(false);
        let ping = frame(0x6, 0, 0, &[0; 8]);
        tap.write_all(&ping).await.unwrap();
        tap.flush().await.unwrap();
        assert!(handle.has_unflushed());
        let mut none = [0u8; 1];
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), client.read(&mut none))
                .await
                .is_err(),
            "deferred bytes went out"
        );
        handle.set_force_flush(true);
        tap.flush().await.unwrap();
        assert!(!handle.has_unflushed());
        let mut got = vec![0u8; ping.len()];
        tokio::time::timeout(deadline, client.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, ping);

        // An injection while h2 is idle goes out from its pending read.
        let goaway_sent = handle.goaway(3, 0, br#"{"reason":"Shutdown"}"#);
        let mut one = [0u8; 1];
        let reader = tokio::spawn(async move {
            let _ = tap.read(&mut one).await;
        });
        tokio::time::timeout(deadline, goaway_sent)
            .await
            .unwrap()
            .unwrap();
        let want = goaway(3, 0, br#"{"reason":"Shutdown"}"#);
        let mut got = vec![0u8; want.len()];
        tokio::time::timeout(deadline, client.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, want);
        drop(client);
        tokio::time::timeout(deadline, reader)
            .await
            .unwrap()
            .unwrap();
    }

    /// The tap's own stream limit: counts open client streams, refuses one over the limit, frees
    /// a slot on the server's END_STREAM or a client RST_STREAM, and stops counting when lifted.
    #[tokio::test]
    async fn enforces_its_stream_limit_until_lifted() {
        let (server_io, mut client) = tokio::io::duplex(1 << 16);
        let (mut tap, handle) = FrameTap::new(server_io, None);
        handle.limit_streams(Some(1));
        let deadline = std::time::Duration::from_secs(5);
        let mut input = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        for stream in [1, 3] {
            input.extend(frame(HEADERS, 0x4 | END_STREAM, stream, b"h"));
        }
        client.write_all(&input).await.unwrap();
        let mut seen = vec![0u8; input.len()];
        tokio::time::timeout(deadline, tap.read_exact(&mut seen))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen, input, "every frame still reaches h2");
        assert!(!handle.take_refused(1));
        assert!(handle.take_refused(3));
        assert!(!handle.take_refused(3), "reported once");

        // The server ends stream 1 (its reset of 3 changes nothing): 5 fits, 7 does not.
        tap.write_all(&frame(RST_STREAM, 0, 3, &[0, 0, 0, 7]))
            .await
            .unwrap();
        tap.write_all(&frame(HEADERS, 0x4 | END_STREAM, 1, b"r"))
            .await
            .unwrap();
        let mut next = Vec::new();
        for stream in [5, 7] {
            next.extend(frame(HEADERS, 0x4, stream, b"h"));
        }
        // The client resets 5 itself: 9 fits.
        next.extend(frame(RST_STREAM, 0, 5, &[0, 0, 0, 8]));
        next.extend(frame(HEADERS, 0x4, 9, b"h"));
        client.write_all(&next).await.unwrap();
        let mut seen = vec![0u8; next.len()];
        tokio::time::timeout(deadline, tap.read_exact(&mut seen))
            .await
            .unwrap()
            .unwrap();
        assert!(!handle.take_refused(5));
        assert!(handle.take_refused(7));
        assert!(!handle.take_refused(9));

        // Lifted: nothing is refused any more, whatever is open.
        handle.limit_streams(None);
        let more: Vec<u8> = [11, 13, 15]
            .iter()
            .flat_map(|s| frame(HEADERS, 0x4, *s, b"h"))
            .collect();
        client.write_all(&more).await.unwrap();
        let mut seen = vec![0u8; more.len()];
        tokio::time::timeout(deadline, tap.read_exact(&mut seen))
            .await
            .unwrap()
            .unwrap();
        for s in [11, 13, 15] {
            assert!(!handle.take_refused(s), "stream {s}");
        }
    }
}
