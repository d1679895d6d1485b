//! The target contract: the gateway under test, described by a TOML file.
//!
//! A target says where the gateway listens (SIP per transport, XMPP c2s and component), which
//! accounts the bench may use, how the gateway's APNs client is pointed at the bench's mock APNs,
//! which behaviour profile it claims where the standards allow two answers, its timers, optional
//! start/stop/reset commands, and its expected-failures file. `targets/example.toml` is a complete
//! example; the README section "Point it at your own gateway" explains each key.
//!
//! With no target file the bench uses [`Target::embedded_reference`], the in-process reference
//! gateway.

use crate::container_section::{ContainerSection, ContainerSectionError};
pub use mock_apns::{AuthMethod, Environment, UnknownTokens};
pub use phone::PayloadContract;
pub use ref_gateway::CancelPolicy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Why a target file was rejected. Every variant names the offending key (`sip.accounts[1].aor`).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown key, a missing key or a value of the wrong type.
    #[error("{key}: {message}")]
    Syntax {
        /// The key the TOML parser blamed (empty when it blamed none).
        key: String,
        /// The parser's message.
        message: String,
    },
    /// A required value is empty.
    #[error("{key}: must not be empty")]
    Empty {
        /// The key.
        key: String,
    },
    /// An address is not `host:port` (an IP address or a host name, and a port).
    #[error("{key}: {value:?} is not an address like 127.0.0.1:5060 or gateway:5060 ({reason})")]
    BadAddress {
        /// The key.
        key: String,
        /// The value found.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A SIP address-of-record that is not a `sip:` or `sips:` URI with a user and a host.
    #[error("{key}: {value:?} is not a SIP AoR like sip:alice@example.com")]
    BadAor {
        /// The key.
        key: String,
        /// The value found.
        value: String,
    },
    /// A JID without a local part and a domain.
    #[error("{key}: {value:?} is not a bare JID like alice@example.com")]
    BadJid {
        /// The key.
        key: String,
        /// The value found.
        value: String,
    },
    /// Two accounts share a name.
    #[error("{key}: account name {name:?} is used twice")]
    DuplicateAccount {
        /// The key.
        key: String,
        /// The name.
        name: String,
    },
    /// A digest username without a password or the other way round.
    #[error("{key}: username and password go together")]
    HalfCredentials {
        /// The key.
        key: String,
    },
    /// A section that lists no transport address.
    #[error("{key}: give at least one of udp, tcp, tls")]
    NoTransport {
        /// The key.
        key: String,
    },
    /// Neither a `[sip]` nor an `[xmpp]` section: nothing to test.
    #[error("{key}: a target needs a [sip] or an [xmpp] section")]
    NoProtocol {
        /// The key (the file's top level).
        key: String,
    },
    /// A host name that does not resolve (when the run starts).
    #[error("{key}: {value:?} does not resolve: {reason}")]
    Unresolvable {
        /// The key.
        key: String,
        /// The value found.
        value: String,
        /// The resolver's answer.
        reason: String,
    },
    /// A timer of zero.
    #[error("{key}: must be greater than zero")]
    ZeroTimer {
        /// The key.
        key: String,
    },
    /// A command that is empty or whose timeout is zero.
    #[error("{key}: {reason}")]
    BadCommand {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A value that names nothing the bench knows (a payload pointer that is not RFC 6901, an
    /// entitlement it does not model).
    #[error("{key}: {value:?} {reason}")]
    BadValue {
        /// The key.
        key: String,
        /// The value found.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A `[container]` value that cannot work.
    #[error(transparent)]
    Container(#[from] ContainerSectionError),
}

impl TargetError {
    /// The offending key, dotted (`apns.listen`, `sip.accounts[0].aor`).
    pub fn key(&self) -> &str {
        match self {
            TargetError::Read { .. } => "",
            TargetError::Syntax { key, .. }
            | TargetError::Empty { key }
            | TargetError::BadAddress { key, .. }
            | TargetError::Unresolvable { key, .. }
            | TargetError::BadAor { key, .. }
            | TargetError::BadJid { key, .. }
            | TargetError::DuplicateAccount { key, .. }
            | TargetError::HalfCredentials { key }
            | TargetError::NoTransport { key }
            | TargetError::NoProtocol { key }
            | TargetError::ZeroTimer { key }
            | TargetError::BadCommand { key, .. }
            | TargetError::BadValue { key, .. } => key,
            TargetError::Container(e) => &e.key,
        }
    }
}

/// Where a target comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// A gateway the bench does not own, described by a file.
    #[default]
    External,
    /// The in-process reference gateway (`ref-gateway`), started by the bench per scenario.
    EmbeddedReference,
}

/// The gateway under test.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// A short name for reports ("kamailio-5.6-tsilo").
    pub name: String,
    /// Free text for the report.
    #[serde(default)]
    pub description: String,
    /// Where the target came from; never read from the file.
    #[serde(skip_deserializing, default)]
    pub kind: TargetKind,
    /// The SIP side (RFC 8599), if the gateway speaks SIP.
    pub sip: Option<SipSection>,
    /// The XMPP side (XEP-0357), if the gateway speaks XMPP.
    pub xmpp: Option<XmppSection>,
    /// How the gateway's APNs client reaches the bench's mock APNs.
    pub apns: ApnsSection,
    /// The behaviour the gateway claims where the standards allow more than one answer.
    pub profile: Profile,
    /// The gateway's timers, which the scenarios' deadlines are derived from.
    #[serde(default)]
    pub timers: Timers,
    /// Commands the bench runs around the run.
    #[serde(default)]
    pub commands: Commands,
    /// The expected-failures file for this target, relative to the target file.
    pub expected_failures: Option<PathBuf>,
    /// The gateway as a container image the bench starts and stops itself (see
    /// [`crate::container`]).
    pub container: Option<ContainerSection>,
    /// Addresses given as host names, as resolved when the run started (for the report).
    #[serde(skip)]
    pub resolved: Vec<ResolvedAddress>,
}

/// `[sip]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SipSection {
    /// The SIP domain of the accounts (`example.com`).
    pub domain: String,
    /// `host:port` of the UDP listener.
    pub udp: Option<String>,
    /// `host:port` of the TCP listener.
    pub tcp: Option<String>,
    /// `host:port` of the TLS listener.
    pub tls: Option<String>,
    /// CA certificate (PEM) the bench trusts for the TLS listener.
    pub tls_ca_file: Option<PathBuf>,
    /// Accounts the bench registers and calls.
    #[serde(default)]
    pub accounts: Vec<SipAccount>,
}

/// `[[sip.accounts]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SipAccount {
    /// The bench's name for it, as the steps say it ("alice", "bob").
    pub name: String,
    /// Address-of-record (`sip:alice@example.com`).
    pub aor: String,
    /// Digest username, when the gateway challenges.
    pub username: Option<String>,
    /// Digest password.
    pub password: Option<String>,
}

/// `[xmpp]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct XmppSection {
    /// The XMPP domain (`example.com`).
    pub domain: String,
    /// `host:port` of client-to-server connections.
    pub c2s: String,
    /// The component the bench's app server connects as (XEP-0114), if the gateway pushes
    /// through an external app server.
    pub component: Option<XmppComponent>,
    /// Accounts the bench logs in as.
    #[serde(default)]
    pub accounts: Vec<XmppAccount>,
    /// CA certificate (PEM) the bench trusts for c2s STARTTLS, relative to the target file (a
    /// server with a private CA). Without it the bench's XMPP clients trust nothing and cannot log
    /// in: STARTTLS is always required.
    pub tls_ca_file: Option<PathBuf>,
    /// The server's log, relative to the target file. When given, "… its XMPP session hibernates"
    /// waits (5 s at most) for the server to log one more line containing
    /// `hibernation_log_line`; without it the step waits `hibernation_confirm_ms`.
    pub log_file: Option<PathBuf>,
    /// What the server's log says when it keeps a dropped session for XEP-0198 resumption (a
    /// substring of the line). Default: Prosody's `Session going into hibernation`; ejabberd
    /// says `seconds for stream resumption`.
    #[serde(default = "default_hibernation_log_line")]
    pub hibernation_log_line: String,
    /// How long after the phone's connection closed the server is taken to have hibernated the
    /// session, when there is no `log_file` to confirm it (default 1000).
    #[serde(
        rename = "hibernation_confirm_ms",
        with = "crate::millis",
        default = "default_hibernation_confirm"
    )]
    pub hibernation_confirm: Duration,
}

fn default_hibernation_confirm() -> Duration {
    Duration::from_secs(1)
}

/// Prosody's log line for a session kept for resumption (`[xmpp] hibernation_log_line` default).
pub const PROSODY_HIBERNATION_LINE: &str = "Session going into hibernation";

fn default_hibernation_log_line() -> String {
    PROSODY_HIBERNATION_LINE.to_owned()
}

/// `[xmpp.component]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct XmppComponent {
    /// `host:port` of the component listener.
    pub address: String,
    /// The component's domain (`push.example.com`).
    pub domain: String,
    /// The shared secret.
    pub secret: String,
}

/// `[[xmpp.accounts]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct XmppAccount {
    /// The bench's name for it ("alice").
    pub name: String,
    /// Bare JID.
    pub jid: String,
    /// Password.
    pub password: String,
}

/// `[apns]`: how the gateway's APNs client is pointed at the bench.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsSection {
    /// The address the bench's mock APNs binds, because the gateway is configured to reach it
    /// there (`127.0.0.1:8443`; port 0 only for the embedded target).
    pub listen: String,
    /// Which APNs environment the gateway believes it talks to.
    #[serde(default)]
    pub environment: Environment,
    /// How the gateway authenticates to APNs.
    pub auth: AuthMethod,
    /// The directory `pushbench credentials --out DIR` wrote, relative to the target file.
    pub credentials_dir: PathBuf,
    /// The app's bundle id; VoIP pushes go to `<bundle_id>.voip`.
    pub bundle_id: String,
    /// What the mock answers for a device token it does not know.
    #[serde(default)]
    pub unknown_token: UnknownTokens,
    /// `[apns.payload]`: where the app finds the call's id, send time, caller and call-ended mark
    /// in a push (RFC 6901 pointers). Absent: the reference gateway's contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<PayloadContract>,
    /// Apple entitlements the app holds that change what iOS allows it (`unrestricted-voip`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_entitlements: Vec<String>,
}

/// The profile every target has unless its app holds [`UNRESTRICTED_VOIP`]: its VoIP pushes must
/// each report a CallKit call (iOS 13+).
pub const CALLKIT_VOIP: &str = "callkit-voip";

/// The entitlement `com.apple.developer.pushkit.unrestricted-voip`, as `[apns] app_entitlements`
/// names it.
pub const UNRESTRICTED_VOIP: &str = "unrestricted-voip";

impl ApnsSection {
    /// The app's payload contract: the declared one, else the reference gateway's.
    pub fn payload_contract(&self) -> PayloadContract {
        self.payload.clone().unwrap_or_default()
    }

    /// True when the app holds the unrestricted VoIP entitlement: its VoIP pushes need not report
    /// a CallKit call.
    pub fn unrestricted_voip(&self) -> bool {
        self.app_entitlements.iter().any(|e| e == UNRESTRICTED_VOIP)
    }
}

/// `[profile]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The cancel policy.
    pub cancel: CancelPolicy,
    /// Capabilities the gateway claims (`"fork"`, `"tls"`, `"retry-5xx"`, …). Scenarios tagged
    /// `@profile:NAME` only run when NAME is the cancel policy or one of these.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// `[timers]`, in milliseconds in the file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timers {
    /// How long the gateway keeps an INVITE waiting for the phone's REGISTER before 480.
    #[serde(rename = "bucket_ms", with = "crate::millis")]
    pub bucket: Duration,
    /// How long after the INVITE the push is expected at APNs.
    #[serde(rename = "push_latency_ms", with = "crate::millis")]
    pub push_latency: Duration,
    /// Slack added to every deadline derived from the gateway's timers.
    #[serde(rename = "grace_ms", with = "crate::millis")]
    pub grace: Duration,
    /// How long the gateway holds a push after the INVITE before sending it (0: none). A
    /// gateway configured with one runs the `@profile:push-delay` scenario (SIP-C1), which needs
    /// at least 500 ms of it to hang up in.
    #[serde(rename = "push_delay_ms", with = "crate::millis")]
    pub push_delay: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            bucket: Duration::from_secs(30),
            push_latency: Duration::from_secs(1),
            grace: Duration::from_millis(500),
            push_delay: Duration::ZERO,
        }
    }
}

/// `[commands]`: optional commands around the run.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Commands {
    /// Brings the gateway up before the run (must return; a daemon must fork).
    pub start: Option<Command>,
    /// Puts the gateway back in a clean state (after `start`, before the scenarios).
    pub reset: Option<Command>,
    /// Runs before every scenario (a failure makes that scenario inconclusive), for a gateway
    /// whose fixed accounts must be cleaned between scenarios; the scenarios then run one at a
    /// time.
    pub before_scenario: Option<Command>,
    /// Brings the gateway down after the run, even when scenarios failed.
    pub stop: Option<Command>,
}

/// One command, run with `sh -c` in the target file's directory.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// The shell command line.
    pub run: String,
    /// Killed after this long (default 30 s).
    #[serde(
        default = "default_command_timeout",
        rename = "timeout_ms",
        with = "crate::millis"
    )]
    pub timeout: Duration,
}

fn default_command_timeout() -> Duration {
    Duration::from_secs(30)
}

/// What a command did, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct CommandRun {
    /// `start`, `reset` or `stop`.
    pub which: String,
    /// The command line.
    pub run: String,
    /// Exit code, `None` when killed by a signal or the timeout.
    pub exit_code: Option<i32>,
    /// True when the timeout killed it.
    pub timed_out: bool,
    /// Captured standard output (lossy UTF-8).
    pub stdout: String,
    /// Captured standard error (lossy UTF-8).
    pub stderr: String,
    /// How long it ran.
    #[serde(serialize_with = "ser_secs")]
    pub took: Duration,
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl CommandRun {
    /// True when it exited with status 0 in time.
    pub fn succeeded(&self) -> bool {
        !self.timed_out && self.exit_code == Some(0)
    }
}

/// The process groups the target's commands started: every command runs in a group of its own,
/// so a timeout kills the whole group, and whatever a command left running (a `start` that put
/// the gateway in the background) is found and stopped when the run ends.
#[derive(Clone, Debug, Default)]
pub struct ProcessGroups {
    started: std::sync::Arc<std::sync::Mutex<Vec<(String, i32)>>>,
}

impl ProcessGroups {
    fn add(&self, which: &str, pgid: i32) {
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((which.to_owned(), pgid));
    }

    /// Stops every group a command started that still has a process: SIGTERM, then SIGKILL
    /// after `grace`. Returns one line per group that had to be stopped.
    pub async fn stop_leftovers(&self, grace: Duration) -> Vec<String> {
        let groups: Vec<(String, i32)> =
            std::mem::take(&mut *self.started.lock().unwrap_or_else(|e| e.into_inner()));
        let alive: Vec<(String, i32)> = groups
            .into_iter()
            .filter(|(_, g)| group_alive(*g))
            .collect();
        for (_, g) in &alive {
            signal_group(*g, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && alive.iter().any(|(_, g)| group_alive(*g)) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        alive
            .into_iter()
            .map(|(which, g)| {
                let killed = group_alive(g);
                if killed {
                    signal_group(g, libc::SIGKILL);
                }
                format!(
                    "the {which} command left process group {g} running; stopped it with {}",
                    if killed { "SIGKILL" } else { "SIGTERM" }
                )
            })
            .collect()
    }
}

/// True while any process of group `pgid` exists (zombies of our own children included until
/// they are reaped).
fn group_alive(pgid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks for existence and permission.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) on a process group this run created; errors (already gone) are ignored.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

impl Command {
    /// Runs it with `sh -c` in `dir`, in a process group of its own (recorded in `groups`),
    /// killing the whole group after its timeout; output is captured.
    pub async fn execute(
        &self,
        which: &str,
        dir: &Path,
        groups: &ProcessGroups,
    ) -> std::io::Result<CommandRun> {
        let started = Instant::now();
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&self.run)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let pgid = child.id().map(|id| id as i32);
        if let Some(g) = pgid {
            groups.add(which, g);
        }
        let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
        let read = async {
            use tokio::io::AsyncReadExt as _;
            let (mut o, mut e) = (Vec::new(), Vec::new());
            let read_out = async {
                if let Some(s) = out.as_mut() {
                    let _ = s.read_to_end(&mut o).await;
                }
            };
            let read_err = async {
                if let Some(s) = err.as_mut() {
                    let _ = s.read_to_end(&mut e).await;
                }
            };
            tokio::join!(read_out, read_err);
            (o, e)
        };
        // The command's own exit is what counts; a background process it started may keep the
        // pipes open, so output is read only while the command runs (and briefly after).
        let waited = tokio::time::timeout(self.timeout, async {
            tokio::pin!(read);
            let mut output = None;
            let status = tokio::select! {
                status = child.wait() => status,
                o = &mut read => {
                    output = Some(o);
                    child.wait().await
                }
            };
            let output = match output {
                Some(o) => o,
                None => tokio::time::timeout(Duration::from_millis(200), &mut read)
                    .await
                    .unwrap_or_default(),
            };
            (status, output)
        })
        .await;
        let (exit_code, timed_out, stdout, stderr) = match waited {
            Ok((status, (o, e))) => (
                status?.code(),
                false,
                String::from_utf8_lossy(&o).into_owned(),
                String::from_utf8_lossy(&e).into_owned(),
            ),
            Err(_) => {
                if let Some(g) = pgid {
                    signal_group(g, libc::SIGKILL);
                }
                let _ = child.wait().await;
                (None, true, String::new(), String::new())
            }
        };
        Ok(CommandRun {
            which: which.to_owned(),
            run: self.run.clone(),
            exit_code,
            timed_out,
            stdout,
            stderr,
            took: started.elapsed(),
        })
    }
}

impl Target {
    /// Parses and validates a target from TOML text. Relative paths stay relative; [`Target::load`]
    /// resolves them against the file's directory.
    pub fn from_toml_str(text: &str) -> Result<Target, TargetError> {
        let target: Target = toml::from_str(text).map_err(|e| TargetError::Syntax {
            key: syntax_key(&e, text),
            message: e.message().to_owned(),
        })?;
        target.validate()?;
        Ok(target)
    }

    /// Reads, parses and validates a target file; relative paths in it are resolved against the
    /// file's directory.
    pub fn load(path: &Path) -> Result<Target, TargetError> {
        let text = std::fs::read_to_string(path).map_err(|source| TargetError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut target = Target::from_toml_str(&text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        target.resolve_paths(base);
        Ok(target)
    }

    /// Makes every relative path absolute against `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.apns.credentials_dir);
        if let Some(p) = &mut self.expected_failures {
            fix(p);
        }
        if let Some(p) = self.sip.as_mut().and_then(|s| s.tls_ca_file.as_mut()) {
            fix(p);
        }
        if let Some(x) = self.xmpp.as_mut() {
            for p in [x.tls_ca_file.as_mut(), x.log_file.as_mut()]
                .into_iter()
                .flatten()
            {
                fix(p);
            }
        }
        if let Some(c) = self.container.as_mut() {
            c.resolve_paths(base);
        }
    }

    /// Resolves every address written as a host name (`kamailio:5060`) to a numeric one, which
    /// the run then uses; each is kept in [`Target::resolved`] for the report. An IPv4 answer is
    /// preferred, as the bench's own listeners are IPv4.
    pub fn resolve_addresses(&mut self) -> Result<(), TargetError> {
        let mut resolved = Vec::new();
        let mut fix = |key: &str, value: &mut String| -> Result<(), TargetError> {
            if value.parse::<SocketAddr>().is_ok() {
                return Ok(());
            }
            let unresolvable = |reason: String| TargetError::Unresolvable {
                key: key.into(),
                value: value.clone(),
                reason,
            };
            let all: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(value.as_str())
                .map_err(|e| unresolvable(e.to_string()))?
                .collect();
            let addr = all
                .iter()
                .find(|a| a.is_ipv4())
                .or(all.first())
                .copied()
                .ok_or_else(|| unresolvable("no address".into()))?;
            resolved.push(ResolvedAddress {
                key: key.into(),
                written: value.clone(),
                resolved: addr,
            });
            *value = addr.to_string();
            Ok(())
        };
        if let Some(sip) = &mut self.sip {
            for (key, a) in [
                ("sip.udp", &mut sip.udp),
                ("sip.tcp", &mut sip.tcp),
                ("sip.tls", &mut sip.tls),
            ] {
                if let Some(a) = a {
                    fix(key, a)?;
                }
            }
        }
        if let Some(x) = &mut self.xmpp {
            fix("xmpp.c2s", &mut x.c2s)?;
            if let Some(c) = &mut x.component {
                fix("xmpp.component.address", &mut c.address)?;
            }
        }
        fix("apns.listen", &mut self.apns.listen)?;
        self.resolved = resolved;
        Ok(())
    }

    /// The in-process reference gateway: the target when none is given.
    ///
    /// Integration hook: the step library starts `ref-gateway` per scenario when
    /// `kind == TargetKind::EmbeddedReference`, binding every listener to port 0 (so the addresses
    /// here are placeholders with port 0) and fills the real addresses into its World.
    pub fn embedded_reference() -> Target {
        Target {
            name: "ref-gateway (embedded)".into(),
            description: "the bench's reference push gateway, started in-process per scenario"
                .into(),
            kind: TargetKind::EmbeddedReference,
            sip: Some(SipSection {
                domain: "example.com".into(),
                udp: Some("127.0.0.1:0".into()),
                tcp: Some("127.0.0.1:0".into()),
                tls: Some("127.0.0.1:0".into()),
                tls_ca_file: None,
                accounts: ["alice", "bob", "carol"]
                    .into_iter()
                    .map(|n| SipAccount {
                        name: n.into(),
                        aor: format!("sip:{n}@example.com"),
                        username: None,
                        password: None,
                    })
                    .collect(),
            }),
            xmpp: None,
            apns: ApnsSection {
                listen: "127.0.0.1:0".into(),
                environment: Environment::Sandbox,
                auth: AuthMethod::Token,
                credentials_dir: PathBuf::new(),
                bundle_id: "com.example.pushbench".into(),
                unknown_token: UnknownTokens::Register,
                payload: Some(PayloadContract::reference()),
                app_entitlements: Vec::new(),
            },
            profile: Profile {
                cancel: CancelPolicy::Rfc8599Drop,
                capabilities: [
                    "sip",
                    "tls",
                    "fork",
                    "retry-5xx",
                    "push-delay",
                    "digest-auth",
                    "short-expiry",
                    "linphone-dialect",
                    "message-push",
                ]
                .into_iter()
                .map(String::from)
                .collect(),
            },
            timers: Timers::default(),
            commands: Commands::default(),
            expected_failures: None,
            container: None,
            resolved: Vec::new(),
        }
    }

    /// Every profile name this target declares: its cancel policy, its capabilities, and `sip` /
    /// `xmpp` for the sections it has.
    pub fn profile_names(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self.profile.capabilities.iter().cloned().collect();
        names.insert(self.profile.cancel.as_str().to_owned());
        if self.sip.is_some() {
            names.insert("sip".into());
        }
        if self.xmpp.is_some() {
            names.insert("xmpp".into());
        }
        // The iOS 13 CallKit rule for VoIP pushes binds every app but one holding the
        // unrestricted VoIP entitlement.
        if !self.apns.unrestricted_voip() {
            names.insert(CALLKIT_VOIP.into());
        }
        names
    }

    /// The name the bench checks the SIP TLS listener's certificate for: the host name
    /// `sip.tls` was written with, or `localhost` for a numeric address.
    pub fn sip_tls_name(&self) -> String {
        self.resolved
            .iter()
            .find(|r| r.key == "sip.tls")
            .and_then(|r| r.written.rsplit_once(':'))
            .map(|(host, _)| host.to_owned())
            .unwrap_or_else(|| "localhost".into())
    }

    /// The SIP account with this bench name.
    pub fn sip_account(&self, name: &str) -> Option<&SipAccount> {
        self.sip.as_ref()?.accounts.iter().find(|a| a.name == name)
    }

    /// The XMPP account with this bench name.
    pub fn xmpp_account(&self, name: &str) -> Option<&XmppAccount> {
        self.xmpp.as_ref()?.accounts.iter().find(|a| a.name == name)
    }

    /// Checks the values serde cannot: addresses, AoRs, JIDs, duplicates, timers, commands.
    pub fn validate(&self) -> Result<(), TargetError> {
        non_empty("name", &self.name)?;
        if self.sip.is_none() && self.xmpp.is_none() {
            return Err(TargetError::NoProtocol { key: "".into() });
        }
        if let Some(sip) = &self.sip {
            non_empty("sip.domain", &sip.domain)?;
            if sip.udp.is_none() && sip.tcp.is_none() && sip.tls.is_none() {
                return Err(TargetError::NoTransport { key: "sip".into() });
            }
            for (key, addr) in [
                ("sip.udp", &sip.udp),
                ("sip.tcp", &sip.tcp),
                ("sip.tls", &sip.tls),
            ] {
                if let Some(a) = addr {
                    address(key, a)?;
                }
            }
            let mut seen = BTreeSet::new();
            for (i, a) in sip.accounts.iter().enumerate() {
                let key = format!("sip.accounts[{i}]");
                non_empty(&format!("{key}.name"), &a.name)?;
                if !seen.insert(a.name.as_str()) {
                    return Err(TargetError::DuplicateAccount {
                        key: format!("{key}.name"),
                        name: a.name.clone(),
                    });
                }
                if !is_aor(&a.aor) {
                    return Err(TargetError::BadAor {
                        key: format!("{key}.aor"),
                        value: a.aor.clone(),
                    });
                }
                if a.username.is_some() != a.password.is_some() {
                    return Err(TargetError::HalfCredentials { key });
                }
            }
        }
        if let Some(xmpp) = &self.xmpp {
            non_empty("xmpp.domain", &xmpp.domain)?;
            address("xmpp.c2s", &xmpp.c2s)?;
            if let Some(c) = &xmpp.component {
                address("xmpp.component.address", &c.address)?;
                non_empty("xmpp.component.domain", &c.domain)?;
                non_empty("xmpp.component.secret", &c.secret)?;
            }
            for (key, p) in [
                ("xmpp.tls_ca_file", &xmpp.tls_ca_file),
                ("xmpp.log_file", &xmpp.log_file),
            ] {
                if let Some(p) = p {
                    non_empty(key, &p.to_string_lossy())?;
                }
            }
            non_empty("xmpp.hibernation_log_line", &xmpp.hibernation_log_line)?;
            if xmpp.hibernation_confirm.is_zero() {
                return Err(TargetError::ZeroTimer {
                    key: "xmpp.hibernation_confirm_ms".into(),
                });
            }
            let mut seen = BTreeSet::new();
            for (i, a) in xmpp.accounts.iter().enumerate() {
                let key = format!("xmpp.accounts[{i}]");
                non_empty(&format!("{key}.name"), &a.name)?;
                if !seen.insert(a.name.as_str()) {
                    return Err(TargetError::DuplicateAccount {
                        key: format!("{key}.name"),
                        name: a.name.clone(),
                    });
                }
                if !is_bare_jid(&a.jid) {
                    return Err(TargetError::BadJid {
                        key: format!("{key}.jid"),
                        value: a.jid.clone(),
                    });
                }
            }
        }
        address("apns.listen", &self.apns.listen)?;
        non_empty("apns.bundle_id", &self.apns.bundle_id)?;
        if let Some(p) = &self.apns.payload {
            p.validate().map_err(|e| TargetError::BadValue {
                key: format!("apns.payload.{}", e.key),
                value: e.pointer.clone(),
                reason: "is not an RFC 6901 JSON pointer (it must start with \"/\")".into(),
            })?;
        }
        for (i, e) in self.apns.app_entitlements.iter().enumerate() {
            if e != UNRESTRICTED_VOIP {
                return Err(TargetError::BadValue {
                    key: format!("apns.app_entitlements[{i}]"),
                    value: e.clone(),
                    reason: format!(
                        "is not an entitlement the bench models (known: {UNRESTRICTED_VOIP:?})"
                    ),
                });
            }
        }
        if self.kind == TargetKind::External {
            non_empty(
                "apns.credentials_dir",
                &self.apns.credentials_dir.to_string_lossy(),
            )?;
        }
        for (key, d) in [
            ("timers.bucket_ms", self.timers.bucket),
            ("timers.push_latency_ms", self.timers.push_latency),
        ] {
            if d.is_zero() {
                return Err(TargetError::ZeroTimer { key: key.into() });
            }
        }
        for (key, c) in [
            ("commands.start", &self.commands.start),
            ("commands.reset", &self.commands.reset),
            ("commands.before_scenario", &self.commands.before_scenario),
            ("commands.stop", &self.commands.stop),
        ] {
            if let Some(c) = c {
                if c.run.trim().is_empty() {
                    return Err(TargetError::BadCommand {
                        key: format!("{key}.run"),
                        reason: "empty command".into(),
                    });
                }
                if c.timeout.is_zero() {
                    return Err(TargetError::BadCommand {
                        key: format!("{key}.timeout_ms"),
                        reason: "a timeout of zero kills the command at once".into(),
                    });
                }
            }
        }
        if let Some(c) = &self.container {
            c.validate()?;
        }
        Ok(())
    }
}

fn non_empty(key: &str, value: &str) -> Result<(), TargetError> {
    if value.trim().is_empty() {
        Err(TargetError::Empty { key: key.into() })
    } else {
        Ok(())
    }
}

/// Checks `host:port`: a numeric address, or a host name resolved when the run starts
/// ([`Target::resolve_addresses`]).
fn address(key: &str, value: &str) -> Result<(), TargetError> {
    if value.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let bad = |reason: &str| TargetError::BadAddress {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    };
    let (host, port) = value.rsplit_once(':').ok_or_else(|| bad("no :port"))?;
    port.parse::<u16>()
        .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
    let name_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
        });
    if name_ok {
        Ok(())
    } else {
        Err(bad("neither an IP address nor a host name"))
    }
}

/// One address of the target file given as a host name, and what it resolved to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResolvedAddress {
    /// The key (`sip.udp`).
    pub key: String,
    /// As written (`kamailio:5060`).
    pub written: String,
    /// What the run uses (`172.18.0.3:5060`).
    pub resolved: SocketAddr,
}

fn is_aor(s: &str) -> bool {
    let rest = s.strip_prefix("sip:").or_else(|| s.strip_prefix("sips:"));
    match rest.and_then(|r| r.split_once('@')) {
        Some((user, host)) => {
            !user.is_empty() && !host.is_empty() && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

fn is_bare_jid(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('/')
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// The field of serde's "missing field `auth`".
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .split('`')
        .next()
        .filter(|f| !f.is_empty())
}

/// The dotted key a TOML error points at, found from the error's span: the table header above the
/// span plus the key on the span's line.
fn syntax_key(e: &toml::de::Error, text: &str) -> String {
    let Some(span) = e.span() else {
        return String::new();
    };
    let start = span.start.min(text.len());
    // A missing field is blamed on its whole table, whose span starts at the table's header.
    let blamed = text[start..].lines().next().unwrap_or("").trim();
    if blamed.starts_with('[') {
        let table = blamed.trim_matches(|c| c == '[' || c == ']').trim();
        return match missing_field(e.message()) {
            Some(field) => format!("{table}.{field}"),
            None => table.to_owned(),
        };
    }
    if start == 0 {
        if let Some(field) = missing_field(e.message()) {
            return field.to_owned();
        }
    }
    let before = &text[..start];
    let mut table = String::new();
    for line in before.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            table = l.trim_matches(|c| c == '[' || c == ']').trim().to_owned();
        }
    }
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let key = match line.split_once('=') {
        Some((k, _)) if !line.starts_with('[') => k.trim().to_owned(),
        _ => String::new(),
    };
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "kamailio"

[sip]
domain = "example.com"
udp = "127.0.0.1:5060"
tcp = "127.0.0.1:5060"

[[sip.accounts]]
name = "alice"
aor = "sip:alice@example.com"
username = "alice"
password = "secret"

[[sip.accounts]]
name = "bob"
aor = "sip:bob@example.com"

[apns]
listen = "127.0.0.1:8443"
environment = "sandbox"
auth = "certificate"
credentials_dir = "creds"
bundle_id = "com.example.app"

[profile]
cancel = "flexisip-replay"
capabilities = ["fork"]

[timers]
bucket_ms = 5000
push_latency_ms = 800

[commands.start]
run = "true"
timeout_ms = 1000
"#;

    fn with(from: &str, to: &str) -> Result<Target, TargetError> {
        assert!(GOOD.contains(from), "{from}");
        Target::from_toml_str(&GOOD.replacen(from, to, 1))
    }

    #[test]
    fn a_complete_file_loads() {
        let t = Target::from_toml_str(GOOD).unwrap();
        assert_eq!(t.kind, TargetKind::External);
        assert_eq!(t.profile.cancel, CancelPolicy::FlexisipReplay);
        assert_eq!(t.timers.bucket, Duration::from_secs(5));
        assert_eq!(t.timers.grace, Duration::from_millis(500));
        assert_eq!(t.apns.auth, AuthMethod::Certificate);
        assert_eq!(t.sip_account("bob").unwrap().aor, "sip:bob@example.com");
        let names = t.profile_names();
        assert!(
            names.contains("flexisip-replay") && names.contains("fork") && names.contains("sip")
        );
        assert!(!names.contains("xmpp"));
    }

    #[test]
    fn validation_errors_name_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("udp = \"127.0.0.1:5060\"", "udp = \"localhost\"", "sip.udp"),
            (
                "udp = \"127.0.0.1:5060\"",
                "udp = \"bad host:5060\"",
                "sip.udp",
            ),
            ("udp = \"127.0.0.1:5060\"", "udp = \"gw:99999\"", "sip.udp"),
            ("auth = \"certificate\"\n", "\n", "apns.auth"),
            (
                "aor = \"sip:bob@example.com\"",
                "aor = \"bob@example.com\"",
                "sip.accounts[1].aor",
            ),
            ("name = \"bob\"", "name = \"alice\"", "sip.accounts[1].name"),
            ("password = \"secret\"\n", "\n", "sip.accounts[0]"),
            (
                "listen = \"127.0.0.1:8443\"",
                "listen = \"127.0.0.1\"",
                "apns.listen",
            ),
            (
                "bundle_id = \"com.example.app\"",
                "bundle_id = \"\"",
                "apns.bundle_id",
            ),
            ("bucket_ms = 5000", "bucket_ms = 0", "timers.bucket_ms"),
            (
                "timeout_ms = 1000",
                "timeout_ms = 0",
                "commands.start.timeout_ms",
            ),
            (
                "cancel = \"flexisip-replay\"",
                "cancel = \"replay\"",
                "profile.cancel",
            ),
            ("auth = \"certificate\"", "auth = \"password\"", "apns.auth"),
            (
                "bucket_ms = 5000",
                "bucket_ms = 5000\nbukcet = 1",
                "timers.bukcet",
            ),
            ("name = \"kamailio\"", "name = \" \"", "name"),
        ];
        for (from, to, key) in cases {
            let err = with(from, to).expect_err(to);
            assert_eq!(err.key(), *key, "{to}: {err}");
        }
    }

    #[test]
    fn host_names_resolve_when_the_run_starts() {
        let mut t = with("udp = \"127.0.0.1:5060\"", "udp = \"localhost:5060\"").unwrap();
        assert_eq!(
            t.sip.as_ref().unwrap().udp.as_deref(),
            Some("localhost:5060")
        );
        t.resolve_addresses().unwrap();
        assert_eq!(
            t.sip.as_ref().unwrap().udp.as_deref(),
            Some("127.0.0.1:5060")
        );
        assert_eq!(t.resolved.len(), 1);
        assert_eq!(t.resolved[0].key, "sip.udp");
        assert_eq!(t.resolved[0].written, "localhost:5060");
        let mut t = with(
            "udp = \"127.0.0.1:5060\"",
            "udp = \"no-such-host.invalid:5060\"",
        )
        .unwrap();
        let e = t.resolve_addresses().unwrap_err();
        assert_eq!(e.key(), "sip.udp", "{e}");
        assert!(e.to_string().contains("does not resolve"), "{e}");
    }

    #[test]
    fn a_target_needs_a_protocol_and_a_transport() {
        let no_transport =
            with("udp = \"127.0.0.1:5060\"\ntcp = \"127.0.0.1:5060\"\n", "").unwrap_err();
        assert!(
            matches!(no_transport, TargetError::NoTransport { .. }),
            "{no_transport}"
        );
        let start = GOOD.find("[sip]").unwrap();
        let end = GOOD.find("[apns]").unwrap();
        let text = format!("{}{}", &GOOD[..start], &GOOD[end..]);
        let err = Target::from_toml_str(&text).unwrap_err();
        assert!(matches!(err, TargetError::NoProtocol { .. }), "{err}");
    }

    #[test]
    fn the_embedded_reference_is_valid_and_the_example_file_loads() {
        Target::embedded_reference().validate().unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("targets/example.toml");
        let t = Target::load(&path).unwrap();
        assert!(t.apns.credentials_dir.is_absolute());
        assert!(t.expected_failures.as_ref().unwrap().is_absolute());
    }

    #[test]
    fn xmpp_section_errors_name_the_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("targets/example.toml");
        let example = std::fs::read_to_string(path).unwrap();
        let cases: &[(&str, &str, &str)] = &[
            (
                "jid = \"alice@example.com\"",
                "jid = \"alice\"",
                "xmpp.accounts[0].jid",
            ),
            (
                "c2s = \"127.0.0.1:5222\"",
                "c2s = \"example com:5222\"",
                "xmpp.c2s",
            ),
            (
                "secret = \"component-secret\"",
                "secret = \"\"",
                "xmpp.component.secret",
            ),
            (
                "[xmpp.component]",
                "[xmpp.component]\nport = 5347",
                "xmpp.component.port",
            ),
        ];
        for (from, to, key) in cases {
            assert!(example.contains(from), "{from}");
            let err = Target::from_toml_str(&example.replacen(from, to, 1)).expect_err(to);
            assert_eq!(err.key(), *key, "{to}: {err}");
        }
    }

    #[test]
    fn xmpp_tls_ca_file_and_log_file_resolve_against_the_target_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("targets/example.toml");
        let t = Target::load(&path).unwrap();
        let x = t.xmpp.as_ref().unwrap();
        let ca = x.tls_ca_file.as_ref().unwrap();
        assert!(ca.is_absolute() && ca.ends_with("example-credentials/xmpp-ca.pem"));
        assert_eq!(x.hibernation_confirm, Duration::from_secs(1));
        assert_eq!(x.hibernation_log_line, PROSODY_HIBERNATION_LINE);
        let example = std::fs::read_to_string(&path).unwrap();
        let from = "hibernation_confirm_ms = 1000";
        let with_log = example.replacen(
            from,
            "log_file = \"/var/log/prosody/prosody.log\"\nhibernation_confirm_ms = 250\n\
             hibernation_log_line = \"seconds for stream resumption\"",
            1,
        );
        let mut t = Target::from_toml_str(&with_log).unwrap();
        t.resolve_paths(Path::new("/etc/pushbench"));
        let x = t.xmpp.as_ref().unwrap();
        assert_eq!(
            x.log_file.as_deref(),
            Some(Path::new("/var/log/prosody/prosody.log"))
        );
        assert_eq!(x.hibernation_confirm, Duration::from_millis(250));
        assert_eq!(x.hibernation_log_line, "seconds for stream resumption");
        for (to, key) in [
            ("tls_ca_file = \"\"", "xmpp.tls_ca_file"),
            ("hibernation_confirm_ms = 0", "xmpp.hibernation_confirm_ms"),
            ("tls_ca_file = 7", "xmpp.tls_ca_file"),
            (
                "hibernation_log_line = \" \"\nhibernation_confirm_ms = 1000",
                "xmpp.hibernation_log_line",
            ),
        ] {
            let bad = example
                .replacen("tls_ca_file = \"example-credentials/xmpp-ca.pem\"", "", 1)
                .replacen(from, to, 1);
            let err = Target::from_toml_str(&bad).expect_err(to);
            assert_eq!(err.key(), key, "{to}: {err}");
        }
    }

    #[tokio::test]
    async fn commands_capture_output_and_time_out() {
        let dir = std::env::temp_dir();
        let ok = Command {
            run: "echo hello; echo oops >&2; exit 3".into(),
            timeout: Duration::from_secs(10),
        };
        let groups = ProcessGroups::default();
        let r = ok.execute("start", &dir, &groups).await.unwrap();
        assert_eq!(r.exit_code, Some(3));
        assert_eq!(r.stdout, "hello\n");
        assert_eq!(r.stderr, "oops\n");
        assert!(!r.succeeded());
        assert!(groups
            .stop_leftovers(Duration::from_secs(1))
            .await
            .is_empty());
    }

    /// The pids of processes whose command line contains `marker`.
    fn pids_with(marker: &str) -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| {
                        String::from_utf8_lossy(&c)
                            .replace('\0', " ")
                            .contains(marker)
                    })
                    .unwrap_or(false)
            })
            .collect()
    }

    #[tokio::test]
    async fn a_command_that_times_out_leaves_no_process_behind() {
        let dir = std::env::temp_dir();
        // A background child and a foreground one, both in the command's group.
        let marker = format!("{}.{}", 400 + std::process::id() % 100, std::process::id());
        let slow = Command {
            run: format!("sleep {marker} & sleep {marker}"),
            timeout: Duration::from_millis(300),
        };
        let groups = ProcessGroups::default();
        let r = slow.execute("reset", &dir, &groups).await.unwrap();
        assert!(r.timed_out && !r.succeeded());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pids_with(&marker).is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            pids_with(&marker),
            Vec::<u32>::new(),
            "sleep {marker} survived"
        );
    }

    #[tokio::test]
    async fn what_a_command_leaves_running_is_stopped_at_the_end() {
        let dir = std::env::temp_dir();
        let marker = format!("{}.{}", 500 + std::process::id() % 100, std::process::id());
        let start = Command {
            // Output redirected, as a daemon's would be; the command itself returns at once.
            run: format!("sleep {marker} >/dev/null 2>&1 & echo started"),
            timeout: Duration::from_secs(5),
        };
        let groups = ProcessGroups::default();
        let r = start.execute("start", &dir, &groups).await.unwrap();
        assert!(r.succeeded(), "{r:?}");
        assert_eq!(r.stdout, "started\n");
        assert_eq!(pids_with(&marker).len(), 1);
        let stopped = groups.stop_leftovers(Duration::from_secs(2)).await;
        assert_eq!(stopped.len(), 1, "{stopped:?}");
        assert!(
            stopped[0].contains("start command left process group"),
            "{stopped:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pids_with(&marker).is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(pids_with(&marker).is_empty());
    }
}
