//! The running gateway: [`RefGateway::start`] binds the listeners, builds the APNs clients and
//! runs the proxy core; the handle gives the bound addresses, switches faults at run time,
//! reads bindings and shuts everything down.

use crate::apns::ApnsError;
use crate::config::{Account, GatewayConfig};
use crate::faults::{Fault, Faults};
use crate::flow::{tls_server_config, Listeners};
use crate::proxy::{Event, Proxy};
use crate::push::Pusher;
use crate::registrar::Binding;
use serde::Serialize;
use sip_peer::Transport;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot bind a SIP listener: {0}")]
    Bind(#[from] std::io::Error),
    /// The TLS identity is unusable.
    #[error("TLS listener: {0}")]
    Tls(#[from] sip_peer::SipError),
    /// The APNs client configuration is unusable.
    #[error("APNs client: {0}")]
    Apns(#[from] ApnsError),
}

/// The bound SIP addresses (the JSON of the binary's ready line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Addresses {
    /// UDP listener.
    pub udp: Option<SocketAddr>,
    /// TCP listener.
    pub tcp: Option<SocketAddr>,
    /// TLS listener.
    pub tls: Option<SocketAddr>,
}

/// Fault `slow-retry`: the wait before the first retry of a 429/5xx (instead of 100 ms).
const SLOW_RETRY_BACKOFF: Duration = Duration::from_secs(1);

/// A running reference gateway. Dropping it stops it too.
pub struct RefGateway {
    addresses: Addresses,
    events: mpsc::UnboundedSender<Event>,
    core: JoinHandle<()>,
    listeners: Arc<Listeners>,
}

impl RefGateway {
    /// Binds the listeners (port 0 allowed) and starts serving.
    pub async fn start(config: GatewayConfig) -> Result<RefGateway, StartError> {
        let tls = match &config.tls {
            Some((addr, id)) => Some((*addr, tls_server_config(&id.cert_pem, &id.key_pem)?)),
            None => None,
        };
        let mut timers = config.timers;
        if config.faults.has(Fault::SlowRetry) {
            // Fault slow-retry: the same bounded retries, but the first wait is a second.
            timers.retry.initial_backoff = SLOW_RETRY_BACKOFF;
        }
        let pusher = Pusher::new(&config.apns, &timers, &config.apns_recorder)?;
        let (in_tx, mut in_rx) = mpsc::unbounded_channel();
        let listeners = Listeners::bind(
            config.udp,
            config.tcp,
            tls,
            config.sip_recorder.clone(),
            in_tx,
        )
        .await?;
        let addresses = Addresses {
            udp: listeners.local_addr(Transport::Udp),
            tcp: listeners.local_addr(Transport::Tcp),
            tls: listeners.local_addr(Transport::Tls),
        };
        let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
        let mut proxy = Proxy::new(&config, listeners.clone(), pusher, ev_tx.clone());
        let core = tokio::spawn(async move {
            loop {
                let ev = tokio::select! {
                    Some(i) = in_rx.recv() => Event::Inbound(i),
                    Some(e) = ev_rx.recv() => e,
                    else => break,
                };
                proxy.handle(ev);
            }
        });
        tracing::info!(
            ?addresses,
            cancel = config.cancel.as_str(),
            "ref-gateway ready"
        );
        Ok(RefGateway {
            addresses,
            events: ev_tx,
            core,
            listeners,
        })
    }

    /// The bound addresses.
    pub fn addresses(&self) -> Addresses {
        self.addresses
    }

    /// The bound address for a transport.
    pub fn addr(&self, t: Transport) -> Option<SocketAddr> {
        match t {
            Transport::Udp => self.addresses.udp,
            Transport::Tcp => self.addresses.tcp,
            Transport::Tls => self.addresses.tls,
        }
    }

    /// Replaces the faults switched on (takes effect for the next message handled).
    pub fn set_faults(&self, faults: Faults) {
        let _ = self.events.send(Event::SetFaults(faults));
    }

    /// Changes the push delay (takes effect for the next call).
    pub fn set_push_delay(&self, delay: Duration) {
        let _ = self.events.send(Event::SetPushDelay(delay));
    }

    /// Replaces the digest accounts (takes effect for the next REGISTER).
    pub fn set_accounts(&self, accounts: Vec<Account>) {
        let _ = self.events.send(Event::SetAccounts(accounts));
    }

    /// The live bindings of an AOR (its user part, e.g. `alice`).
    pub async fn bindings(&self, aor_user: &str) -> Vec<Binding> {
        let (tx, rx) = oneshot::channel();
        let _ = self.events.send(Event::Bindings(aor_user.to_owned(), tx));
        rx.await.unwrap_or_default()
    }

    /// How many calls (INVITE/MESSAGE transactions, finished ones until they linger out) are held.
    pub async fn calls_held(&self) -> usize {
        let (tx, rx) = oneshot::channel();
        let _ = self.events.send(Event::Calls(tx));
        rx.await.unwrap_or_default()
    }

    /// Number of open TCP/TLS connections (phones and callers on stream transports).
    pub fn connection_count(&self) -> usize {
        self.listeners.connection_count()
    }

    /// Stops serving and closes every listener and connection.
    pub async fn shutdown(self) {
        self.core.abort();
        self.listeners.shutdown();
        // The listeners' tasks are aborted; wait for the core to be gone.
        let core = &self.core;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            while !core.is_finished() {
                tokio::task::yield_now().await;
            }
        })
        .await;
    }
}

impl Drop for RefGateway {
    fn drop(&mut self) {
        self.core.abort();
        self.listeners.shutdown();
    }
}
