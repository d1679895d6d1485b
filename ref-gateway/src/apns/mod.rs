//! The gateway's APNs provider client: HTTP/2 over TLS (h2 + tokio-rustls, ALPN h2), token auth
//! (ES256 JWT from a `.p8` key) or certificate auth, one long-lived connection, bounded retries.
//!
//! ```no_run
//! # async fn demo(addr: std::net::SocketAddr, ca_pem: &[u8]) -> Result<(), ref_gateway::apns::ApnsError> {
//! use ref_gateway::apns::{ApnsAuth, ApnsClient, ApnsClientConfig, Push};
//! let auth = ApnsAuth::token_from_p8_file("creds/AuthKey_ABC123DEFG.p8".as_ref(), "ABC123DEFG", "TEAM012345")?;
//! let client = ApnsClient::new(ApnsClientConfig::new(addr, ca_pem, auth)?)?;
//! let payload = phone::PushPayload::call("a84b4c76e66710", "sip:bob@example.com", 1_700_000_000_000).to_json();
//! let answer = client.send(&Push::voip_call("00fc13adff78512", "com.example.app", payload.into())).await?;
//! if answer.is_unregistered() { /* drop the binding */ }
//! # Ok(()) }
//! ```

mod client;
mod config;
mod error;
pub mod jwt;
mod push;

pub use client::{ApnsClient, MAX_ANSWER_BODY};
pub use config::{ApnsAuth, ApnsClientConfig, RetryPolicy};
pub use error::ApnsError;
pub use jwt::{TokenSigner, TOKEN_LIFETIME};
pub use push::{short_token, ApnsResponse, Push};
