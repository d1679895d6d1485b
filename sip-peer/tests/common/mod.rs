//! Harness shared by the interop tests: free loopback ports, and SIPp and Kamailio processes
//! started on loopback in a temp dir, each awaited with a deadline and stopped on drop.
//!
//! A missing program is a test failure with a clear message, never a skip.

#![allow(dead_code)] // each test binary uses its own part of the harness

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The folder of this crate's test assets (`sip-peer/tests`).
pub fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// The full path of an external program, or a failure that says how to install it.
pub fn require_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in
        std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
    {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` is not installed: run scripts/install-deps.sh (Debian packages sip-tester, kamailio, kamailio-tls-modules)");
}

/// Transport a port is wanted for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Udp,
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

/// Whether some process has `port` bound on loopback or any address (UDP) or listening (TCP),
/// read from /proc/net so that probing does not disturb the peer.
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

/// Polls until `port` is bound, or fails after `deadline`.
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

fn wait_child(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if start.elapsed() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

fn tail(path: &Path, max: usize) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let start = text.len().saturating_sub(max);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

// ------------------------------------------------------------------------------------------------

/// One SIPp process running a scenario from `tests/sipp/`, in its own temp dir.
pub struct Sipp {
    child: Child,
    dir: tempfile::TempDir,
    label: String,
}

/// How a SIPp run is set up. `transport` is SIPp's `-t` value (`u1` or `t1`).
pub struct SippConfig<'a> {
    pub scenario: &'a str,
    /// Local address SIPp binds and writes in its messages (`127.0.0.1` or `::1`).
    pub ip: &'a str,
    pub transport: &'a str,
    pub local_port: u16,
    /// `host:port` to call (UAC); `None` for a UAS.
    pub remote: Option<String>,
    /// Request-URI user part (`-s`).
    pub service: &'a str,
    /// Calls to run (`-m`).
    pub calls: u32,
    /// SIPp's own global timeout.
    pub timeout: Duration,
    pub extra: Vec<String>,
}

impl<'a> SippConfig<'a> {
    pub fn new(scenario: &'a str, transport: &'a str, local_port: u16) -> Self {
        SippConfig {
            scenario,
            ip: "127.0.0.1",
            transport,
            local_port,
            remote: None,
            service: "bob",
            calls: 1,
            timeout: Duration::from_secs(10),
            extra: Vec::new(),
        }
    }
}

impl Sipp {
    /// Starts SIPp; for a UAS, returns once its port is bound.
    pub fn start(cfg: SippConfig<'_>) -> Sipp {
        let sipp = require_program("sipp");
        let dir = tempfile::tempdir().expect("tempdir");
        let scenario = assets().join("sipp").join(cfg.scenario);
        let mut cmd = Command::new(sipp);
        cmd.current_dir(dir.path())
            .arg("-sf")
            .arg(&scenario)
            .args(["-i", cfg.ip, "-mi", cfg.ip, "-bind_local"])
            .args(["-p", &cfg.local_port.to_string()])
            .args(["-t", cfg.transport])
            .args(["-m", &cfg.calls.to_string()])
            .args(["-s", cfg.service])
            .args(["-timeout", &format!("{}s", cfg.timeout.as_secs().max(1))])
            .args(["-timeout_error", "-nostdin", "-trace_err", "-trace_msg"])
            // media port: free, so parallel tests do not collide on SIPp's default 6000
            .args(["-mp", &free_port().to_string()])
            .args(&cfg.extra)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("screen.txt")).expect("screen file"))
            .stderr(std::fs::File::create(dir.path().join("stderr.txt")).expect("stderr file"));
        if let Some(remote) = &cfg.remote {
            cmd.arg(remote);
        }
        let child = cmd.spawn().expect("spawn sipp");
        let label = format!(
            "sipp {} -t {} :{}",
            cfg.scenario, cfg.transport, cfg.local_port
        );
        let sipp = Sipp { child, dir, label };
        if cfg.remote.is_none() {
            let proto = if cfg.transport.starts_with('t') {
                Proto::Tcp
            } else {
                Proto::Udp
            };
            wait_port_bound(cfg.local_port, proto, Duration::from_secs(5), &sipp.label);
        }
        sipp
    }

    /// Waits for SIPp to exit (it must, within `deadline`) and fails with its logs unless every
    /// call succeeded (exit code 0).
    pub fn expect_success(mut self, deadline: Duration) {
        let status = wait_child(&mut self.child, deadline);
        match status {
            Some(s) if s.success() => {}
            other => {
                let _ = self.child.kill();
                panic!(
                    "{} did not succeed (status {other:?}).\n{}",
                    self.label,
                    self.report()
                );
            }
        }
    }

    /// SIPp's error log, message trace and last screen, for failure messages.
    pub fn report(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                if name.ends_with("_errors.log")
                    || name.ends_with("_messages.log")
                    || name == "stderr.txt"
                {
                    out.push_str(&format!("--- {name}\n{}\n", tail(&p, 6000)));
                }
            }
        }
        out.push_str(&format!(
            "--- screen (tail)\n{}\n",
            tail(&self.dir.path().join("screen.txt"), 2500)
        ));
        out
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ------------------------------------------------------------------------------------------------

/// Options of one Kamailio run of `tests/kamailio/proxy.cfg`.
#[derive(Default, Clone)]
pub struct KamailioConfig {
    /// REGISTER must pass digest auth (password [`KAMAILIO_PASSWORD`]).
    pub register_auth: bool,
    /// INVITE and MESSAGE must pass proxy digest auth.
    pub invite_auth: bool,
    /// Route calls to the REGISTER's source address (the phone's connection).
    pub received_routing: bool,
    pub udp: bool,
    pub tcp: bool,
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
    pub fn start(cfg: KamailioConfig) -> Kamailio {
        let kamailio = require_program("kamailio");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let tls_port = if cfg.tls { free_port() } else { 0 };
        let mut cmd = Command::new(kamailio);
        cmd.current_dir(dir.path())
            .arg("-f")
            .arg(assets().join("kamailio").join("proxy.cfg"))
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
            let (ca, cert, key) = tls_chain_for_localhost();
            ca_pem = ca;
            std::fs::write(dir.path().join("cert.pem"), cert).expect("write cert");
            std::fs::write(dir.path().join("key.pem"), key).expect("write key");
            let template =
                std::fs::read_to_string(assets().join("kamailio").join("tls.cfg.template"))
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
        k.dir_keep();
        k
    }

    fn dir_keep(&mut self) {}

    /// Kamailio's log (stderr), for failure messages.
    pub fn log(&self) -> String {
        tail(&self.dir.path().join("kamailio.err"), 8000)
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SIGTERM lets the main process stop its workers; SIGKILL would orphan them
            signal(self.child.id(), "TERM");
            if wait_child(&mut self.child, Duration::from_secs(5)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// A fresh CA and a certificate for 127.0.0.1/localhost it signed: (ca_pem, cert_pem, key_pem).
pub fn tls_chain_for_localhost() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pushbench test CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("server params");
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::V4(
            std::net::Ipv4Addr::LOCALHOST,
        )));
    let cert = params.signed_by(&key, &ca, &ca_key).expect("server cert");
    (ca.pem(), cert.pem(), key.serialize_pem())
}
