//! Kamailio 5.6 (Debian `kamailio`, `kamailio-tls-modules`) as a registrar and proxy: the config
//! kept in `sip-peer/tests/kamailio/`, one process per test in its own temp runtime dir on free
//! loopback ports, awaited until its listeners are bound, stopped with SIGTERM on drop.

use crate::log::tail_bytes;
use crate::net::{free_port, port_bound, Proto};
use crate::pki::TlsChain;
use crate::process::{require_program, terminate};
use crate::workspace_root;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the Kamailio configuration lives.
fn assets() -> PathBuf {
    workspace_root().join("sip-peer/tests/kamailio")
}

/// Options of one Kamailio run of `tests/kamailio/proxy.cfg`.
#[derive(Default, Clone)]
pub struct KamailioConfig {
    /// REGISTER must pass digest auth (password [`KAMAILIO_PASSWORD`]).
    pub register_auth: bool,
    /// INVITE and MESSAGE must pass proxy digest auth.
    pub invite_auth: bool,
    /// Route calls to the REGISTER's source address (the phone's connection).
    pub received_routing: bool,
    /// Listen on UDP.
    pub udp: bool,
    /// Listen on TCP (the same port as UDP).
    pub tcp: bool,
    /// Listen on TLS (its own port).
    pub tls: bool,
}

/// The digest password `proxy.cfg` checks every user against.
pub const KAMAILIO_PASSWORD: &str = "pushbench-secret";

/// A Kamailio registrar+proxy on loopback, in its own temp runtime dir; stopped on drop.
pub struct Kamailio {
    child: Child,
    dir: tempfile::TempDir,
    /// UDP and TCP share this port when both are enabled.
    pub port: u16,
    /// TLS port, when enabled.
    pub tls_port: u16,
    /// PEM of the self-signed CA that signed Kamailio's TLS certificate (empty without TLS).
    pub ca_pem: String,
}

impl Kamailio {
    /// Starts Kamailio and waits (10 s) until every listener it was given is bound.
    pub fn start(cfg: KamailioConfig) -> Kamailio {
        let kamailio = require_program("kamailio");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let tls_port = if cfg.tls { free_port() } else { 0 };
        let mut cmd = Command::new(kamailio);
        cmd.current_dir(dir.path())
            .arg("-f")
            .arg(assets().join("proxy.cfg"))
            .args(["-DD", "-E", "-m", "32", "-M", "4"])
            .arg("-Y")
            .arg(dir.path())
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"));
        if cfg.udp {
            cmd.args(["-l", &format!("udp:127.0.0.1:{port}")]);
        }
        if cfg.tcp {
            cmd.args(["-l", &format!("tcp:127.0.0.1:{port}")]);
        }
        if cfg.register_auth {
            cmd.args(["-A", "WITH_AUTH"]);
        }
        if cfg.invite_auth {
            cmd.args(["-A", "WITH_INVITE_AUTH"]);
        }
        if cfg.received_routing {
            cmd.args(["-A", "WITH_RECEIVED"]);
        }
        let mut ca_pem = String::new();
        if cfg.tls {
            let TlsChain {
                ca_pem: ca,
                cert_pem: cert,
                key_pem: key,
            } = TlsChain::localhost();
            ca_pem = ca;
            std::fs::write(dir.path().join("cert.pem"), cert).expect("write cert");
            std::fs::write(dir.path().join("key.pem"), key).expect("write key");
            let template = std::fs::read_to_string(assets().join("tls.cfg.template"))
                .expect("read tls.cfg.template");
            let tls_cfg = template
                .replace(
                    "{{CERT}}",
                    &dir.path().join("cert.pem").display().to_string(),
                )
                .replace("{{KEY}}", &dir.path().join("key.pem").display().to_string());
            std::fs::write(dir.path().join("tls.cfg"), tls_cfg).expect("write tls.cfg");
            cmd.args(["-l", &format!("tls:127.0.0.1:{tls_port}")])
                .args(["-A", "WITH_TLS", "-A"])
                .arg(format!(
                    "TLS_CONFIG=\"{}\"",
                    dir.path().join("tls.cfg").display()
                ));
        }
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("kamailio.log")).expect("log file"))
            .stderr(std::fs::File::create(dir.path().join("kamailio.err")).expect("log file"));
        let child = cmd.spawn().expect("spawn kamailio");
        let mut k = Kamailio {
            child,
            dir,
            port,
            tls_port,
            ca_pem,
        };
        let deadline = Duration::from_secs(10);
        let start = Instant::now();
        let ready = || {
            (!cfg.udp || port_bound(port, Proto::Udp))
                && (!cfg.tcp || port_bound(port, Proto::Tcp))
                && (!cfg.tls || port_bound(tls_port, Proto::Tcp))
        };
        while !ready() {
            if let Ok(Some(status)) = k.child.try_wait() {
                panic!("kamailio exited at start ({status}):\n{}", k.log());
            }
            assert!(
                start.elapsed() < deadline,
                "kamailio did not bind within {deadline:?}:\n{}",
                k.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // the listeners are bound by the main process before it forks its workers; a request that
        // arrives before a worker reads it waits in the socket buffer, so nothing more to wait for.
        k
    }

    /// Kamailio's log (stderr), for failure messages.
    pub fn log(&self) -> String {
        tail_bytes(&self.dir.path().join("kamailio.err"), 8000)
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(5));
    }
}
