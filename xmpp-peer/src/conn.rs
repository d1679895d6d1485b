//! The task that owns a live stream: it reads and answers stream management, feeds the inbox, and
//! sends on request; and the three ways it can stop (graceful close, abrupt drop, going half-open).

use crate::error::Error;
use crate::framing::StreamEvent;
use crate::inbox::Inbox;
use crate::ns;
use crate::sm::{is_stanza, parse_h, SmState};
use crate::wire::Wire;
use crate::xml::Element;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How a sleeping phone leaves its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SleepMode {
    /// Close TCP (FIN) without `</stream:stream>`: the server hibernates the session at once.
    Close,
    /// Reset TCP (RST, SO_LINGER 0) without `</stream:stream>`.
    Reset,
    /// Flight mode without FIN: keep the socket, stop reading and acking, send nothing.
    HalfOpen,
}

pub(crate) type Shared<T> = Arc<Mutex<T>>;

pub(crate) use timeline::lock;

enum Command {
    Send(Element, oneshot::Sender<Result<(), Error>>),
    RequestAck(oneshot::Sender<Result<(), Error>>),
    SetAutoAck(bool),
    Sleep(SleepMode, oneshot::Sender<()>),
    Close(Duration, oneshot::Sender<Result<(), Error>>),
    Drop(oneshot::Sender<()>),
}

/// A handle to the connection task.
pub(crate) struct Connection {
    cmd: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Connection {
    /// Starts the task on a logged-in stream.
    pub(crate) fn spawn(wire: Wire, inbox: Inbox, sm: Option<Shared<SmState>>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(wire, inbox, sm, rx));
        Connection { cmd: tx, task }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(make(tx))
            .map_err(|_| Error::NotConnected("the connection has ended".into()))?;
        rx.await
            .map_err(|_| Error::NotConnected("the connection has ended".into()))
    }

    /// Sends one element (a stanza is counted and queued for stream management).
    pub(crate) async fn send(&self, e: Element) -> Result<(), Error> {
        self.ask(|tx| Command::Send(e, tx)).await?
    }

    /// Sends `<r/>`.
    pub(crate) async fn request_ack(&self) -> Result<(), Error> {
        self.ask(Command::RequestAck).await?
    }

    /// Turns automatic answers to `<r/>` on or off.
    pub(crate) fn set_auto_ack(&self, on: bool) {
        let _ = self.cmd.send(Command::SetAutoAck(on));
    }

    /// Leaves the connection the given way.
    pub(crate) async fn sleep(&self, mode: SleepMode) -> Result<(), Error> {
        self.ask(|tx| Command::Sleep(mode, tx)).await
    }

    /// Sends `</stream:stream>` and waits for the server's, within `within`.
    pub(crate) async fn close(&self, within: Duration) -> Result<(), Error> {
        self.ask(|tx| Command::Close(within, tx)).await?
    }

    /// Drops the socket with a reset (the end of a half-open connection).
    pub(crate) async fn drop_reset(&self) {
        let _ = self.ask(Command::Drop).await;
    }
}

fn reset(wire: Wire) {
    let _ = wire.io.tcp().set_zero_linger();
    drop(wire);
}

async fn run(
    mut wire: Wire,
    inbox: Inbox,
    sm: Option<Shared<SmState>>,
    mut rx: mpsc::UnboundedReceiver<Command>,
) {
    let mut auto_ack = true;
    let mut buf = vec![0u8; 16384];
    loop {
        // Events already buffered (bytes that arrived with the login's last read).
        loop {
            match wire.parser.next_event() {
                Ok(Some(ev)) => {
                    wire.record(&ev);
                    if let Err(reason) =
                        on_event(&mut wire, &inbox, sm.as_deref(), auto_ack, ev).await
                    {
                        inbox.close(reason);
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    wire.rec.note(format!("malformed input: {e}"));
                    inbox.close(format!("malformed input from the server: {e}"));
                    return;
                }
            }
        }
        tokio::select! {
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { return };
                match cmd {
                    Command::Send(e, reply) => {
                        let r = wire.send(&e).await;
                        if r.is_ok() && is_stanza(&e) {
                            if let Some(sm) = &sm { lock(sm).on_sent(&e); }
                        }
                        let _ = reply.send(r);
                    }
                    Command::RequestAck(reply) => {
                        let _ = reply.send(wire.send(&Element::new("r", ns::SM)).await);
                    }
                    Command::SetAutoAck(on) => auto_ack = on,
                    Command::Sleep(mode, reply) => {
                        wire.rec.note(format!("going to sleep: {mode:?}"));
                        inbox.close(format!("asleep ({mode:?})"));
                        match mode {
                            SleepMode::Close => drop(wire),
                            SleepMode::Reset => reset(wire),
                            SleepMode::HalfOpen => {
                                let _ = reply.send(());
                                half_open(wire, rx).await;
                                return;
                            }
                        }
                        let _ = reply.send(());
                        return;
                    }
                    Command::Close(within, reply) => {
                        let r = close(&mut wire, within).await;
                        inbox.close("closed by us");
                        let _ = reply.send(r);
                        return;
                    }
                    Command::Drop(reply) => {
                        reset(wire);
                        inbox.close("dropped");
                        let _ = reply.send(());
                        return;
                    }
                }
            }
            n = wire.io.read(&mut buf) => {
                match n {
                    Ok(0) => {
                        wire.rec.note("connection closed by the server (EOF)");
                        inbox.close("connection closed by the server (EOF)");
                        return;
                    }
                    Ok(n) => wire.parser.feed(&buf[..n]),
                    Err(e) => {
                        wire.rec.note(format!("read error: {e}"));
                        inbox.close(format!("read error: {e}"));
                        return;
                    }
                }
            }
        }
    }
}

/// Flight mode: hold the socket, read nothing, send nothing, until told to drop it.
async fn half_open(wire: Wire, mut rx: mpsc::UnboundedReceiver<Command>) {
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Command::Send(_, reply) | Command::RequestAck(reply) | Command::Close(_, reply) => {
                let _ = reply.send(Err(Error::NotConnected("half-open (flight mode)".into())));
            }
            Command::SetAutoAck(_) => {}
            Command::Sleep(_, reply) => {
                let _ = reply.send(());
            }
            Command::Drop(reply) => {
                wire.rec.note("dropping the half-open connection (RST)");
                reset(wire);
                let _ = reply.send(());
                return;
            }
        }
    }
}

async fn close(wire: &mut Wire, within: Duration) -> Result<(), Error> {
    wire.send_raw(b"</stream:stream>".to_vec(), "stream close".into())
        .await?;
    let deadline = Instant::now() + within;
    loop {
        match wire.recv(deadline, "the server's </stream:stream>").await {
            Ok(StreamEvent::End { .. }) => return Ok(()),
            Ok(_) => continue,
            Err(Error::Closed { .. }) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Handles one received event; `Err(reason)` ends the connection.
async fn on_event(
    wire: &mut Wire,
    inbox: &Inbox,
    sm: Option<&Mutex<SmState>>,
    auto_ack: bool,
    ev: StreamEvent,
) -> Result<(), String> {
    let (e, raw) = match ev {
        StreamEvent::Element { element, raw } => (element, raw),
        StreamEvent::End { .. } => return Err("the server closed the stream".into()),
        StreamEvent::Header { raw, .. } => {
            return Err(format!(
                "unexpected stream header: {}",
                timeline::escape_bytes(&raw)
            ))
        }
    };
    if e.is("error", ns::STREAM) {
        return Err(format!("stream error: {}", timeline::escape_bytes(&raw)));
    }
    if e.ns() == ns::SM {
        let Some(sm) = sm else {
            return Err(format!("stream management element without SM: {e}"));
        };
        match e.name() {
            "r" => {
                if auto_ack {
                    let a = lock(sm).ack_element();
                    wire.send(&a).await.map_err(|err| err.to_string())?;
                }
            }
            "a" => {
                let h = parse_h(&e)?;
                lock(sm).on_ack(h)?;
            }
            _ => inbox.push(e),
        }
        return Ok(());
    }
    if is_stanza(&e) {
        if let Some(sm) = sm {
            lock(sm).on_received();
        }
        if e.name() == "iq"
            && e.get_attr("type") == Some("get")
            && e.get_child("ping", ns::PING).is_some()
        {
            let mut pong = Element::new("iq", e.ns())
                .attr("type", "result")
                .attr_opt("id", e.get_attr("id"));
            if let Some(from) = e.get_attr("from") {
                pong.set_attr("to", from);
            }
            wire.send(&pong).await.map_err(|err| err.to_string())?;
            if let Some(sm) = sm {
                lock(sm).on_sent(&pong);
            }
            return Ok(());
        }
    }
    inbox.push(e);
    Ok(())
}
