//! The `mock-apns` binary as a child process: start it on port 0, read the one-line address
//! report, and talk to its control API over plain HTTP/1.1 (a hand-written client, so the tests
//! see exactly what goes over the wire).

use super::wire;
pub use mock_apns::Environment;
use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the server may take to report its addresses.
const STARTUP: Duration = Duration::from_secs(30);
/// Deadline for one control API exchange.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// A provider client certificate listed in the manifest.
#[derive(Clone, Debug)]
pub struct ClientCert {
    /// `sandbox`, `production` or `universal`.
    pub environment: String,
    /// The certificate (PEM).
    pub cert_file: PathBuf,
    /// Its key (PEM).
    pub key_file: PathBuf,
    /// The topics it covers.
    pub topics: Vec<String>,
}

/// `manifest.json`, with paths resolved against the credentials directory.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The team id.
    pub team_id: String,
    /// The app's bundle id.
    pub bundle_id: String,
    /// The app's topics.
    pub topics: Vec<String>,
    /// The signing key's id.
    pub key_id: String,
    /// The `.p8` signing key.
    pub key_file: PathBuf,
    /// The CA that signed the server certificate.
    pub ca_file: PathBuf,
    /// The provider client certificates.
    pub client_certs: Vec<ClientCert>,
    /// The whole file.
    pub raw: Value,
}

impl Manifest {
    /// Reads `DIR/manifest.json`.
    pub fn load(dir: &Path) -> Manifest {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let raw: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}\n{text}", path.display()));
        let s = |v: &Value, k: &str| -> String {
            v[k].as_str()
                .unwrap_or_else(|| panic!("manifest: `{k}` missing or not a string in {v}"))
                .to_string()
        };
        let file = |v: &Value, k: &str| -> PathBuf {
            let p = PathBuf::from(s(v, k));
            if p.is_absolute() {
                p
            } else {
                dir.join(p)
            }
        };
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let key = raw["keys"]
            .as_array()
            .and_then(|k| k.first())
            .unwrap_or_else(|| panic!("manifest: no `keys` in {raw}"))
            .clone();
        let client_certs = raw["client_certs"]
            .as_array()
            .map(|certs| {
                certs
                    .iter()
                    .map(|c| ClientCert {
                        environment: s(c, "environment"),
                        cert_file: file(c, "cert_file"),
                        key_file: file(c, "key_file"),
                        topics: strings(&c["topics"]),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Manifest {
            team_id: s(&raw, "team_id"),
            bundle_id: s(&raw, "bundle_id"),
            topics: strings(&raw["topics"]),
            key_id: s(&key, "key_id"),
            key_file: file(&key, "file"),
            ca_file: file(&raw, "ca_file"),
            client_certs,
            raw,
        }
    }

    /// The client certificate for `env`.
    pub fn client_cert(&self, env: Environment) -> &ClientCert {
        self.client_certs
            .iter()
            .find(|c| c.environment == env.as_str())
            .unwrap_or_else(|| panic!("manifest has no {} client certificate", env.as_str()))
    }

    /// The VoIP topic of the default bundle.
    pub fn voip_topic(&self) -> String {
        format!("{}.voip", self.bundle_id)
    }
}

/// A running `mock-apns serve`, killed on drop.
pub struct MockServer {
    child: Child,
    /// Its credentials directory (and log).
    pub dir: tempfile::TempDir,
    /// The production listener.
    pub production: SocketAddr,
    /// The sandbox listener.
    pub sandbox: SocketAddr,
    /// The control API.
    pub control: SocketAddr,
    /// Its credentials.
    pub manifest: Manifest,
}

/// The `mock-apns` binary cargo built for the running test: `$CARGO_BIN_EXE_mock-apns` when set,
/// else `mock-apns` in the target directory the test executable runs from (cargo builds a
/// package's binaries for its integration tests).
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CARGO_BIN_EXE_mock-apns") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test>-<hash> → target/<profile>/mock-apns
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("the test executable lives in target/<profile>/deps");
    let bin = dir.join("mock-apns");
    assert!(
        bin.is_file(),
        "{} is missing: these tests run as mock-apns's integration tests",
        bin.display()
    );
    bin
}

/// The `status` of every record in a `GET /pushes` answer, in order (0 where it has none).
pub fn statuses(log: &Value) -> Vec<u64> {
    log.as_array()
        .expect("push log array")
        .iter()
        .map(|p| p["status"].as_u64().unwrap_or(0))
        .collect()
}

impl MockServer {
    /// Starts `mock-apns serve` on port 0 with fresh credentials, plus `extra` arguments.
    pub fn start(extra: &[&str]) -> MockServer {
        Self::start_prepared(|_| {}, extra)
    }

    /// Like [`start`](Self::start), but `prepare` first gets the (empty) credentials directory,
    /// e.g. to run `mock-apns credentials` and `mock-apns add-key` there.
    pub fn start_prepared(prepare: impl FnOnce(&Path), extra: &[&str]) -> MockServer {
        let dir = tempfile::tempdir().expect("temp dir");
        prepare(dir.path());
        let log = File::create(dir.path().join("server.log")).expect("log file");
        let mut child = Command::new(binary())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--sandbox-listen",
                "127.0.0.1:0",
            ])
            .args(["--control", "127.0.0.1:0", "--credentials"])
            .arg(dir.path())
            .args(extra)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start mock-apns serve");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(STARTUP) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                let log =
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                panic!("mock-apns serve did not report its addresses ({other:?}); log:\n{log}");
            }
        };
        let report: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("first stdout line is not JSON ({e}): {line}"));
        let addr = |k: &str| -> SocketAddr {
            report[k]
                .as_str()
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("`{k}` missing or not an address in {line}"))
        };
        let manifest = Manifest::load(dir.path());
        MockServer {
            production: addr("production"),
            sandbox: addr("sandbox"),
            control: addr("control"),
            child,
            dir,
            manifest,
        }
    }

    /// The listener address for `env`.
    pub fn addr(&self, env: Environment) -> SocketAddr {
        match env {
            Environment::Sandbox => self.sandbox,
            Environment::Production => self.production,
        }
    }

    /// The credentials directory.
    pub fn credentials(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the server logged so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// True while the process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM (a graceful shutdown) to the server.
    pub fn terminate(&self) {
        let out = crate::process::run(
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]),
            None,
            Duration::from_secs(10),
        );
        assert!(out.status.success(), "kill -TERM failed: {}", out.stderr);
    }

    /// Waits (polling, with a deadline) for the process to exit; its status, or None if it runs on.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics if the server died or logged a panic.
    pub fn assert_healthy(&mut self) {
        let log = self.log();
        assert!(self.is_running(), "mock-apns exited; log:\n{log}");
        assert!(
            !log.contains("panicked"),
            "mock-apns logged a panic:\n{log}"
        );
    }

    /// One control API exchange: `(status, body)`.
    pub fn control(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
        control_request(self.control, method, path, body)
    }

    /// Like [`control`](Self::control) but panics unless the status is 2xx.
    pub fn control_ok(&self, method: &str, path: &str, body: Option<&Value>) -> String {
        let (status, text) = self.control(method, path, body);
        assert!(
            (200..300).contains(&status),
            "control {method} {path} {body:?} answered {status}: {text}"
        );
        text
    }

    /// Registers an online device for `topics` in `env`.
    pub fn register_device(&self, token: &str, topics: &[String], env: Environment) {
        let body = json!({"token": token, "topics": topics, "environment": env.as_str(), "state": "online"});
        self.control_ok("POST", "/devices", Some(&body));
    }

    /// A fresh device token, registered online in `env` for the bundle's own topic.
    pub fn bundle_device(&self, env: Environment) -> String {
        let token = fresh_device_token();
        self.register_device(&token, std::slice::from_ref(&self.manifest.bundle_id), env);
        token
    }

    /// A raw HTTP/2 client on the sandbox listener (TLS, ALPN h2) that has written the client
    /// preface, an empty SETTINGS and then `first` in one go, without waiting for the server's
    /// SETTINGS.
    pub async fn open_raw_sandbox(
        &self,
        first: &[u8],
    ) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        use tokio::io::AsyncWriteExt;
        let config = wire::tls_config(&self.manifest.ca_file, true);
        let mut tls = wire::tls_connect(self.sandbox, Environment::Sandbox.host(), config)
            .await
            .expect("TLS to the sandbox listener");
        let mut bytes = wire::PREFACE.to_vec();
        bytes.extend(wire::frame(wire::frame::SETTINGS, 0, 0, &[]));
        bytes.extend_from_slice(first);
        tls.write_all(&bytes).await.expect("write");
        tls.flush().await.expect("flush");
        tls
    }

    /// The HEADERS frame of a push on `stream` (sandbox authority, the bundle's topic),
    /// authorized by `jwt`, without END_STREAM: its body is to follow in DATA.
    pub fn raw_push_headers(&self, stream: u32, device: &str, jwt: &str) -> Vec<u8> {
        let path = format!("/3/device/{device}");
        let authorization = format!("bearer {jwt}");
        let block = wire::hpack_literals(&[
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":path", path.as_bytes()),
            (b":authority", Environment::Sandbox.host().as_bytes()),
            (b"authorization", authorization.as_bytes()),
            (b"apns-topic", self.manifest.bundle_id.as_bytes()),
        ]);
        wire::frame(
            wire::frame::HEADERS,
            wire::frame::END_HEADERS,
            stream,
            &block,
        )
    }

    /// HEADERS + DATA (a 100-byte payload, END_STREAM) of one push on `stream`, as
    /// [`raw_push_headers`](Self::raw_push_headers) describes.
    pub fn raw_push(&self, stream: u32, device: &str, jwt: &str) -> Vec<u8> {
        let mut out = self.raw_push_headers(stream, device, jwt);
        out.extend(wire::frame(
            wire::frame::DATA,
            wire::frame::END_STREAM,
            stream,
            &super::cases::payload_of_size(100),
        ));
        out
    }

    /// Sets a device's state ("online", "offline", "unregistered", "expired").
    pub fn set_state(&self, token: &str, state: &str, timestamp_ms: Option<u64>) {
        let mut body = json!({ "state": state });
        if let Some(ts) = timestamp_ms {
            body["timestamp_ms"] = json!(ts);
        }
        self.control_ok("PUT", &format!("/devices/{token}/state"), Some(&body));
    }

    /// `GET /pushes` as JSON.
    pub fn pushes(&self) -> Value {
        let text = self.control_ok("GET", "/pushes", None);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("GET /pushes is not JSON ({e}): {text}"))
    }

    /// `mock-apns token --credentials DIR ARGS…`: a provider token from the binary itself.
    pub fn cli_token(&self, args: &[&str]) -> String {
        let dir = self.dir.path().to_str().expect("UTF-8 temp dir");
        cli(&[&["token", "--credentials", dir], args].concat())
            .trim()
            .to_string()
    }

    /// A valid provider token for the manifest's key, signed here (raw signature).
    pub fn valid_jwt(&self) -> String {
        let key = crate::apns::jwt::read_p8(&self.manifest.key_file);
        crate::apns::jwt::es256(
            &key,
            &self.manifest.key_id,
            &self.manifest.team_id,
            crate::apns::jwt::now(),
            crate::apns::jwt::Signature::Raw,
        )
    }

    /// One push made with the `h2` crate (a client nobody here wrote) on a fresh connection to the
    /// sandbox listener: `jwt` as provider token, the bundle's topic, a 100-byte payload, to
    /// `device`. What a well-behaved provider sends; a hostile client's test ends with one.
    pub async fn h2_push(&self, device: &str, jwt: &str) -> wire::Outcome {
        let header = |v: &str| http::HeaderValue::from_str(v).expect("a header value");
        let request = wire::H2Request::post(
            device,
            vec![
                ("authorization", header(&format!("bearer {jwt}"))),
                ("apns-topic", header(&self.manifest.bundle_id)),
            ],
            super::cases::payload_of_size(100),
        );
        let config = wire::tls_config(&self.manifest.ca_file, true);
        let mut outcomes = wire::h2_exchange(
            self.sandbox,
            mock_apns::Environment::Sandbox.host(),
            config,
            vec![request],
        )
        .await;
        outcomes.remove(0)
    }

    /// The server process's resident memory (`VmRSS` of /proc/PID/status), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status of the server");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in {status}"))
    }

    /// Opens the server-sent event stream of deliveries for `token`.
    pub fn deliveries(&self, token: &str) -> DeliveryStream {
        DeliveryStream::open(self.control, token)
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the `mock-apns` binary with `args` (a non-serving subcommand) and returns its stdout;
/// panics with its stderr if it fails.
pub fn cli(args: &[&str]) -> String {
    crate::process::run_ok(Command::new(binary()).args(args), Duration::from_secs(30)).stdout
}

/// A 64-hex-digit device token nobody else uses.
pub fn fresh_device_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, CONTROL_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect to control API {addr}: {e}"));
    stream
        .set_read_timeout(Some(CONTROL_TIMEOUT))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(CONTROL_TIMEOUT))
        .expect("write timeout");
    stream
}

fn write_request(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    body: Option<&Value>,
    close: bool,
) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let connection = if close { "close" } else { "keep-alive" };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: {connection}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .expect("write control request");
    stream
        .write_all(body.as_bytes())
        .expect("write control body");
}

/// Reads a status line and headers; returns `(status, lower-cased headers)`.
fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad control API status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).expect("read header");
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    (status, headers)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// One exchange with a control API at `addr`: `(status, body)`.
pub fn control_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let mut stream = connect(addr);
    write_request(&mut stream, method, path, body, true);
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    let mut bytes = Vec::new();
    if header(&headers, "transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        let mut chunked = Chunked::new(reader);
        chunked.read_to_end(&mut bytes).expect("read chunked body");
    } else if let Some(len) =
        header(&headers, "content-length").and_then(|l| l.parse::<usize>().ok())
    {
        bytes.resize(len, 0);
        reader.read_exact(&mut bytes).expect("read body");
    } else {
        reader.read_to_end(&mut bytes).expect("read body");
    }
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// A decoder for `Transfer-Encoding: chunked`.
struct Chunked<R> {
    inner: R,
    left: usize,
    done: bool,
}

impl<R: BufRead> Chunked<R> {
    fn new(inner: R) -> Self {
        Chunked {
            inner,
            left: 0,
            done: false,
        }
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            if line.trim().is_empty() {
                // CRLF after the previous chunk's data.
                line.clear();
                self.inner.read_line(&mut line)?;
            }
            let size = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size, 16).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("bad chunk size {line:?}"),
                )
            })?;
            if size == 0 {
                self.done = true;
                return Ok(0);
            }
            self.left = size;
        }
        let n = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..n])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n;
        Ok(n)
    }
}

/// `GET /deliveries/<token>`: server-sent events, one per push delivered to the device.
pub struct DeliveryStream {
    reader: Box<dyn BufRead + Send>,
    stream: TcpStream,
}

impl DeliveryStream {
    fn open(addr: SocketAddr, token: &str) -> DeliveryStream {
        let mut stream = connect(addr);
        write_request(
            &mut stream,
            "GET",
            &format!("/deliveries/{token}"),
            None,
            false,
        );
        let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
        let (status, headers) = read_head(&mut reader);
        assert_eq!(
            status, 200,
            "GET /deliveries/{token} answered {status} {headers:?}"
        );
        let content_type = header(&headers, "content-type")
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("text/event-stream"),
            "GET /deliveries/{token}: content-type {content_type:?}, want text/event-stream"
        );
        let reader: Box<dyn BufRead + Send> =
            if header(&headers, "transfer-encoding").is_some_and(|t| t.contains("chunked")) {
                Box::new(BufReader::new(Chunked::new(reader)))
            } else {
                Box::new(reader)
            };
        DeliveryStream { reader, stream }
    }

    /// The `data` of the next event within `within`, or None if none came in time.
    pub fn next(&mut self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        let mut data = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("read timeout");
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => panic!("delivery stream closed by the server"),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None
                }
                Err(e) => panic!("reading the delivery stream: {e}"),
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if !data.is_empty() {
                    return Some(data);
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(rest.trim_start());
            }
        }
    }
}
