//! SIPp (a SIP implementation nobody here wrote) as a peer: one process per scenario file, in its
//! own temp dir, on loopback; a UAS is awaited until its port is bound, every run until it exits
//! (with a deadline), and it is killed on drop. Its logs go into failure messages.

use crate::log::tail_bytes;
use crate::net::{free_port, wait_port_bound, Proto};
use crate::process::{require_program, wait_child};
use crate::workspace_root;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One SIPp process running a scenario from `tests/sipp/`, in its own temp dir.
pub struct Sipp {
    child: Child,
    dir: tempfile::TempDir,
    label: String,
}

/// How a SIPp run is set up. `transport` is SIPp's `-t` value (`u1` or `t1`).
pub struct SippConfig<'a> {
    /// The scenario file: a name in `sip-peer/tests/sipp/`, or a path relative to the workspace
    /// root.
    pub scenario: &'a str,
    /// Local address SIPp binds and writes in its messages (`127.0.0.1` or `::1`).
    pub ip: &'a str,
    /// SIPp's `-t`: `u1` (UDP) or `t1` (TCP).
    pub transport: &'a str,
    /// The port SIPp binds.
    pub local_port: u16,
    /// `host:port` to call (UAC); `None` for a UAS.
    pub remote: Option<String>,
    /// Request-URI user part (`-s`).
    pub service: &'a str,
    /// Calls to run (`-m`).
    pub calls: u32,
    /// SIPp's own global timeout.
    pub timeout: Duration,
    /// More arguments.
    pub extra: Vec<String>,
}

impl<'a> SippConfig<'a> {
    /// A UAS (until `remote` is set) running `scenario` on `local_port`, one call, 10 s.
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
        let scenario = if cfg.scenario.contains('/') {
            workspace_root().join(cfg.scenario)
        } else {
            workspace_root()
                .join("sip-peer/tests/sipp")
                .join(cfg.scenario)
        };
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
                    out.push_str(&format!("--- {name}\n{}\n", tail_bytes(&p, 6000)));
                }
            }
        }
        out.push_str(&format!(
            "--- screen (tail)\n{}\n",
            tail_bytes(&self.dir.path().join("screen.txt"), 2500)
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
