//! Loopback ports: one free for a peer to bind, and whether a peer has bound one (read from
//! `/proc/net`, so probing does not disturb the peer).

use std::time::{Duration, Instant};

/// Transport a port is wanted for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// A UDP socket bound to it.
    Udp,
    /// A TCP socket listening on it.
    Tcp,
}

/// A loopback port that is free for both UDP and TCP right now (the caller binds it next).
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp 127.0.0.1:0");
        let port = udp.local_addr().expect("local addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both UDP and TCP after 100 tries");
}

/// Whether some process has `port` bound on loopback or any address (UDP) or listening (TCP).
pub fn port_bound(port: u16, proto: Proto) -> bool {
    let files: &[&str] = match proto {
        Proto::Udp => &["/proc/net/udp", "/proc/net/udp6"],
        Proto::Tcp => &["/proc/net/tcp", "/proc/net/tcp6"],
    };
    let hex = format!(":{port:04X}");
    files.iter().any(|f| {
        std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|line| {
                let mut cols = line.split_whitespace();
                let local = cols.nth(1).unwrap_or("");
                let state = cols.nth(1).unwrap_or("");
                local.ends_with(&hex) && (proto == Proto::Udp || state == "0A")
            })
    })
}

/// Polls until `port` is bound, or fails after `deadline` naming `what` should have bound it.
pub fn wait_port_bound(port: u16, proto: Proto, deadline: Duration, what: &str) {
    let start = Instant::now();
    while !port_bound(port, proto) {
        assert!(
            start.elapsed() < deadline,
            "{what} did not bind {proto:?} port {port} within {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
