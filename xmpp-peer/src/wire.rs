//! One stream on one transport: writes elements, reads events, and records both on the timeline.

use crate::error::Error;
use crate::framing::{StreamEvent, StreamParser};
use crate::summary::summarize;
use crate::transport::Transport;
use crate::xml::Element;
use bytes::Bytes;
use timeline::Recorder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// How long one write may wait for the peer to read before it is an error (a peer that
/// stops reading must not hang the sender).
pub(crate) const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A stream endpoint: the transport, the incremental parser and the recorder.
pub(crate) struct Wire {
    pub(crate) io: Transport,
    pub(crate) parser: StreamParser,
    pub(crate) rec: Recorder,
    pub(crate) peer: String,
    pub(crate) default_ns: &'static str,
}

impl Wire {
    /// Wraps a fresh transport.
    pub(crate) fn new(
        io: Transport,
        rec: Recorder,
        peer: String,
        default_ns: &'static str,
    ) -> Self {
        Wire {
            io,
            parser: StreamParser::new(),
            rec,
            peer,
            default_ns,
        }
    }

    /// Writes raw bytes and records them with `summary`.
    pub(crate) async fn send_raw(&mut self, bytes: Vec<u8>, summary: String) -> Result<(), Error> {
        let write = async {
            self.io.write_all(&bytes).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(r) => r.map_err(Error::io(format!("sending {summary}")))?,
            Err(_) => {
                return Err(Error::Timeout {
                    waiting_for: format!("the peer to take {summary} (it stopped reading)"),
                    arrived: vec![],
                })
            }
        }
        self.rec
            .sent(&self.peer, self.io.name(), summary, Bytes::from(bytes));
        Ok(())
    }

    /// Writes one element.
    pub(crate) async fn send(&mut self, e: &Element) -> Result<(), Error> {
        let xml = e.to_xml_in(self.default_ns);
        self.send_raw(xml.into_bytes(), summarize(e)).await
    }

    /// Opens (or reopens) the stream to `to`.
    pub(crate) async fn open_stream(&mut self, to: &str) -> Result<(), Error> {
        self.parser.restart();
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' to='{}' version='1.0'>",
            self.default_ns,
            crate::ns::STREAM,
            crate::xml::escape(to)
        );
        self.send_raw(header.into_bytes(), format!("stream open to={to}"))
            .await
    }

    /// Reads until one event is complete or `deadline` passes; records it.
    pub(crate) async fn recv(
        &mut self,
        deadline: Instant,
        waiting_for: &str,
    ) -> Result<StreamEvent, Error> {
        loop {
            if let Some(ev) = self.parser.next_event()? {
                self.record(&ev);
                return Ok(ev);
            }
            let mut buf = [0u8; 8192];
            let n = match tokio::time::timeout_at(deadline, self.io.read(&mut buf)).await {
                Err(_) => {
                    return Err(Error::Timeout {
                        waiting_for: waiting_for.to_string(),
                        arrived: vec![],
                    })
                }
                Ok(r) => r.map_err(Error::io(format!("reading ({waiting_for})")))?,
            };
            if n == 0 {
                return Err(Error::Closed {
                    reason: "connection closed by the server".into(),
                    waiting_for: waiting_for.to_string(),
                    arrived: vec![],
                });
            }
            self.parser.feed(&buf[..n]);
        }
    }

    /// Records a received event.
    pub(crate) fn record(&self, ev: &StreamEvent) {
        let t = self.io.name();
        match ev {
            StreamEvent::Header { header, raw } => self.rec.received(
                &self.peer,
                t,
                format!("stream open id={}", header.get_attr("id").unwrap_or("?")),
                raw.clone(),
            ),
            StreamEvent::Element { element, raw } => {
                self.rec
                    .received(&self.peer, t, summarize(element), raw.clone())
            }
            StreamEvent::End { raw } => {
                self.rec
                    .received(&self.peer, t, "stream close", raw.clone())
            }
        }
    }

    /// Reads the next element (a stream header or end here is an error).
    pub(crate) async fn recv_element(
        &mut self,
        deadline: Instant,
        waiting_for: &str,
    ) -> Result<Element, Error> {
        match self.recv(deadline, waiting_for).await? {
            StreamEvent::Element { element, raw } => {
                if element.is("error", crate::ns::STREAM) {
                    return Err(Error::Closed {
                        reason: format!("stream error {}", timeline::escape_bytes(&raw)),
                        waiting_for: waiting_for.to_string(),
                        arrived: vec![],
                    });
                }
                Ok(element)
            }
            StreamEvent::Header { raw, .. } | StreamEvent::End { raw } => Err(Error::Unexpected {
                context: waiting_for.to_string(),
                raw: timeline::escape_bytes(&raw),
            }),
        }
    }

    /// Reads a stream header.
    pub(crate) async fn recv_header(&mut self, deadline: Instant) -> Result<Element, Error> {
        match self.recv(deadline, "stream header").await? {
            StreamEvent::Header { header, .. } => Ok(header),
            StreamEvent::Element { raw, .. } | StreamEvent::End { raw } => Err(Error::Unexpected {
                context: "stream header".into(),
                raw: timeline::escape_bytes(&raw),
            }),
        }
    }
}

/// An `Unexpected` error for an element.
pub(crate) fn unexpected(context: &str, e: &Element) -> Error {
    Error::Unexpected {
        context: context.to_string(),
        raw: e.to_xml(),
    }
}
