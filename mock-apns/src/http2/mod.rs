//! mock-apns's own HTTP/2 server engine (RFC 9113, HPACK per RFC 7541).
//!
//! It replaces the `h2` crate for one reason, speed (see the README), and does what APNs needs
//! and `h2` could not: change MAX_CONCURRENT_STREAMS after the handshake, put a JSON reason in a
//! GOAWAY, and answer requests in the connection's own task, batching responses into few TLS
//! writes. It is a server only, for requests with small bodies: the body is collected whole and the
//! `Service` sees a complete `Request`.

mod conn;
pub mod frame;
pub mod hpack;
pub mod message;

pub use conn::{serve, Ended, Settings};
pub use hpack::HeaderList;

use std::future::Future;
use std::pin::Pin;

/// A complete request: its header list (pseudo-headers first) and its body.
#[derive(Debug)]
pub struct Request {
    /// The stream it came on.
    pub stream: u32,
    /// Its header list, as decoded.
    pub fields: HeaderList,
    /// Its body (empty if over the limit).
    pub body: Vec<u8>,
    /// The body went over [`Settings::body_limit`]; it is answered before the client is done.
    pub body_too_large: bool,
}

/// A response: `:status`, other fields, and an optional body.
#[derive(Debug, Default)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Fields after `:status`: (name, value, never indexed).
    pub fields: Vec<(&'static [u8], Vec<u8>, bool)>,
    /// The body, sent as DATA.
    pub body: Option<Vec<u8>>,
}

/// What to do with a request's stream.
#[derive(Debug)]
pub enum Reply {
    /// Answer it.
    Respond(Response),
    /// Reset it with REFUSED_STREAM and send GOAWAY(NO_ERROR) with this debug data.
    RefuseAndGoAway(Vec<u8>),
    /// Close the connection at once, without a frame.
    DropConnection,
}

/// A reply to come (a delay fault).
pub type LaterReply = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// What the [`Service`] makes of a request.
pub struct Answer {
    /// The reply, now or later.
    pub reply: Result<Reply, LaterReply>,
    /// Raise MAX_CONCURRENT_STREAMS to this (a SETTINGS frame goes out before the reply).
    pub max_streams: Option<u32>,
}

/// The application behind the engine: one per connection, called from the connection's task.
pub trait Service {
    /// Answers a complete, well-formed request. The engine keeps the request's buffers for the
    /// next one: what a later reply needs, the service copies.
    fn call(&mut self, request: &Request) -> Answer;
    /// The debug data of the GOAWAY sent on shutdown.
    fn shutdown_debug(&self) -> Vec<u8>;
}
