//! The crate's error type: every failure says what was expected and shows what arrived.

use crate::framing::FramingError;
use crate::sasl::SaslError;

/// Why a connection step or an awaited event failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket operation failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What the peer was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// TLS setup or handshake failed.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// The deadline passed before the awaited thing arrived.
    #[error(
        "timed out waiting for {waiting_for}; arrived meanwhile: {}",
        list(arrived)
    )]
    Timeout {
        /// What was awaited.
        waiting_for: String,
        /// Summaries of what did arrive (unconsumed), oldest first.
        arrived: Vec<String>,
    },
    /// The server closed the stream or the connection.
    #[error(
        "connection closed ({reason}) while waiting for {waiting_for}; arrived: {}",
        list(arrived)
    )]
    Closed {
        /// Why (stream end, EOF, stream error with its bytes).
        reason: String,
        /// What was awaited.
        waiting_for: String,
        /// Summaries of what did arrive.
        arrived: Vec<String>,
    },
    /// The server sent bytes that are not a valid stream.
    #[error("malformed input from the server: {0}")]
    Malformed(#[from] FramingError),
    /// The server sent a well-formed element that is wrong at this point.
    #[error("unexpected from the server while {context}: {raw}")]
    Unexpected {
        /// What was expected.
        context: String,
        /// The element as received.
        raw: String,
    },
    /// SASL failed on our side (bad server message or signature).
    #[error("SASL: {0}")]
    Sasl(#[from] SaslError),
    /// The server refused authentication (`<failure>`, shown raw).
    #[error("authentication refused: {0}")]
    AuthRefused(String),
    /// No mechanism we allow was offered.
    #[error("no acceptable SASL mechanism; the server offers {offered:?}")]
    NoMechanism {
        /// What the server offered.
        offered: Vec<String>,
    },
    /// STARTTLS was required and not offered.
    #[error("the server did not offer STARTTLS: {0}")]
    NoStartTls(String),
    /// An IQ came back as an error (shown raw).
    #[error("IQ error: {0}")]
    IqError(String),
    /// The peer is asleep (or closed) and cannot send.
    #[error("cannot send: {0}")]
    NotConnected(String),
    /// A bad argument (unreadable CA file, bad JID).
    #[error("configuration: {0}")]
    Config(String),
    /// The CA file the configuration names cannot be read.
    #[error("reading CA file {path}: {source}")]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(" | ")
    }
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

/// A well-formed stanza whose content is not what the protocol says, with the stanza.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {xml}")]
pub struct InvalidStanza {
    /// What is wrong.
    pub reason: String,
    /// The offending element.
    pub xml: String,
}

impl InvalidStanza {
    /// An error about `e`.
    pub fn new(reason: impl Into<String>, e: &crate::xml::Element) -> Self {
        InvalidStanza {
            reason: reason.into(),
            xml: e.to_xml(),
        }
    }
}

impl From<InvalidStanza> for Error {
    fn from(e: InvalidStanza) -> Self {
        Error::Unexpected {
            context: e.reason,
            raw: e.xml,
        }
    }
}

/// Why TLS could not be set up or negotiated.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// STARTTLS on a connection that is already TLS.
    #[error("already TLS")]
    AlreadyTls,
    /// The name to verify is not a valid server name.
    #[error("bad server name {name}: {source}")]
    ServerName {
        /// The name.
        name: String,
        /// Why it is not one.
        source: rustls::pki_types::InvalidDnsNameError,
    },
    /// The handshake failed.
    #[error("handshake with {name}: {source}")]
    Handshake {
        /// The server name.
        name: String,
        /// The handshake's error.
        source: std::io::Error,
    },
    /// CA PEM text that does not read.
    #[error("bad CA PEM: {0}")]
    CaPem(#[source] std::io::Error),
    /// CA PEM text without a certificate.
    #[error("no certificate in the CA PEM")]
    NoCaCertificate,
    /// rustls refused the material or the protocol versions.
    #[error("{what}: {source}")]
    Rustls {
        /// What was being set up.
        what: &'static str,
        /// rustls' error.
        source: rustls::Error,
    },
}
