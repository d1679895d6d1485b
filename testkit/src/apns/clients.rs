//! Runners for the real command-line clients: curl (HTTP/2 over ALPN, Apple's host name kept for
//! SNI with `--connect-to`) and nghttp (nghttp2's client). Each turns pushes into one process run
//! and parses what the client printed.

use crate::apns::cases::{payload_of_size, provider_token, Case, Reply};
use crate::apns::server::{Environment, MockServer};
use crate::process::{require_program, run, run_ok};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Deadline for one client process.
const CLIENT_LIMIT: Duration = Duration::from_secs(30);

/// How a client proves who it is.
#[derive(Clone, Debug)]
pub enum ClientAuth {
    /// `authorization: bearer <jwt>` per request.
    Token,
    /// The manifest's client certificate for the environment.
    Certificate {
        /// The certificate file.
        cert: PathBuf,
        /// Its key file.
        key: PathBuf,
    },
}

impl ClientAuth {
    /// Certificate auth with the manifest's certificate for `env`.
    pub fn certificate(server: &MockServer, env: Environment) -> ClientAuth {
        let c = server.manifest.client_cert(env);
        ClientAuth::Certificate {
            cert: c.cert_file.clone(),
            key: c.key_file.clone(),
        }
    }
}

/// One HTTP/2 request to `/3/device/<device_token>`.
#[derive(Clone, Debug)]
pub struct PushRequest {
    /// The device token in the path.
    pub device_token: String,
    /// Header fields (name, value).
    pub headers: Vec<(String, String)>,
    /// The payload.
    pub body: Vec<u8>,
    /// The provider token, sent as `authorization: bearer …`.
    pub bearer: Option<String>,
}

impl PushRequest {
    /// The request a case describes (its provider token only when `token_auth`).
    pub fn from_case(server: &MockServer, case: &Case, token_auth: bool) -> PushRequest {
        let mut headers = vec![("apns-topic".to_string(), case.topic.clone())];
        if let Some(t) = case.push_type {
            headers.push(("apns-push-type".into(), t.into()));
        }
        if let Some(p) = case.priority {
            headers.push(("apns-priority".into(), p.into()));
        }
        if let Some(c) = &case.collapse_id {
            headers.push(("apns-collapse-id".into(), c.clone()));
        }
        PushRequest {
            device_token: case.device_token.clone(),
            headers,
            body: payload_of_size(case.payload_bytes),
            bearer: token_auth.then(|| provider_token(server, case.jwt)),
        }
    }
}

/// What a client printed for one request.
#[derive(Clone, Debug, Default)]
pub struct PushResponse {
    /// `:status`.
    pub status: u16,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    pub body: String,
    /// curl only: new connections this transfer opened (0 = reused).
    pub new_connections: Option<u32>,
    /// curl only: "2" for HTTP/2.
    pub http_version: Option<String>,
}

impl PushResponse {
    /// A header's value by its lower-cased name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `{"reason", "timestamp"}` view of it.
    pub fn reply(&self) -> Reply {
        let json: serde_json::Value = serde_json::from_str(&self.body).unwrap_or_default();
        Reply {
            status: self.status,
            reason: json["reason"].as_str().map(String::from),
            apns_id: self.header("apns-id").map(String::from),
            timestamp: json["timestamp"].as_u64(),
        }
    }
}

/// Where a client finds a mock APNs: its listener per environment and the CA to trust.
pub trait ApnsTarget {
    /// The listener of `env`.
    fn apns_addr(&self, env: Environment) -> SocketAddr;
    /// The CA certificate (PEM) the server certificate is issued by.
    fn ca_file(&self) -> &Path;
}

impl ApnsTarget for MockServer {
    fn apns_addr(&self, env: Environment) -> SocketAddr {
        self.addr(env)
    }

    fn ca_file(&self) -> &Path {
        &self.manifest.ca_file
    }
}

/// Runs `requests` through one `curl --http2` process (one connection, reused via `--next`).
pub fn curl(
    server: &impl ApnsTarget,
    env: Environment,
    auth: &ClientAuth,
    requests: &[PushRequest],
) -> Vec<PushResponse> {
    let curl = require_program("curl");
    let work = tempfile::tempdir().expect("temp dir");
    let host = env.host();
    let addr = server.apns_addr(env);
    let connect_to = format!("{host}:443:{}:{}", addr.ip(), addr.port());
    let mut cmd = Command::new(curl);
    for (i, r) in requests.iter().enumerate() {
        if i > 0 {
            cmd.arg("--next");
        }
        let body = work.path().join(format!("body-{i}"));
        std::fs::write(&body, &r.body).expect("write body");
        cmd.args(["--http2", "-sS", "--max-time", "10", "--cacert"])
            .arg(server.ca_file())
            .args(["--connect-to", &connect_to]);
        if let ClientAuth::Certificate { cert, key } = auth {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        cmd.args(["-H", "content-type: application/json"]);
        if let Some(jwt) = &r.bearer {
            cmd.args(["-H", &format!("authorization: bearer {jwt}")]);
        }
        for (k, v) in &r.headers {
            cmd.args(["-H", &format!("{k}: {v}")]);
        }
        cmd.arg("--data-binary")
            .arg(format!("@{}", body.display()))
            .arg("-D")
            .arg(work.path().join(format!("head-{i}")))
            .arg("-o")
            .arg(work.path().join(format!("resp-{i}")))
            .args(["-w", "%{http_code} %{num_connects} %{http_version}\\n"])
            .arg(format!("https://{host}/3/device/{}", r.device_token));
    }
    let out = run_ok(&mut cmd, CLIENT_LIMIT);
    let summaries: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        summaries.len(),
        requests.len(),
        "curl printed {:?}",
        out.stdout
    );
    summaries
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let mut parts = line.split_whitespace();
            let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            let new_connections = parts.next().and_then(|s| s.parse().ok());
            let http_version = parts.next().map(String::from);
            let head =
                std::fs::read_to_string(work.path().join(format!("head-{i}"))).unwrap_or_default();
            let headers = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let body =
                std::fs::read_to_string(work.path().join(format!("resp-{i}"))).unwrap_or_default();
            PushResponse {
                status,
                headers,
                body,
                new_connections,
                http_version,
            }
        })
        .collect()
}

/// Runs one request through `nghttp` (nghttp2's client). The server certificate is checked
/// against the mock's CA (nghttp warns on stderr otherwise, and that fails the test).
pub fn nghttp(
    server: &MockServer,
    env: Environment,
    auth: &ClientAuth,
    request: &PushRequest,
) -> PushResponse {
    let out = nghttp_verbose(server, env, auth, request);
    out.assert_success("nghttp");
    parse_nghttp(&out.stdout)
}

/// Runs `nghttp -v` for one request and returns what it printed (frames included), whatever its
/// exit status; fails only if nghttp did not trust the mock's certificate.
pub fn nghttp_verbose(
    server: &MockServer,
    env: Environment,
    auth: &ClientAuth,
    request: &PushRequest,
) -> crate::process::Output {
    let nghttp = require_program("nghttp");
    let work = tempfile::tempdir().expect("temp dir");
    let body = work.path().join("body");
    std::fs::write(&body, &request.body).expect("write body");
    let mut cmd = Command::new(nghttp);
    cmd.env("SSL_CERT_FILE", &server.manifest.ca_file)
        .args(["-v", "-t", "10", "-d"])
        .arg(&body)
        .args(["-H", "content-type: application/json"]);
    if let ClientAuth::Certificate { cert, key } = auth {
        cmd.arg(format!("--cert={}", cert.display()))
            .arg(format!("--key={}", key.display()));
    }
    if let Some(jwt) = &request.bearer {
        cmd.args(["-H", &format!("authorization: bearer {jwt}")]);
    }
    for (k, v) in &request.headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    cmd.arg(format!(
        "https://localhost:{}/3/device/{}",
        server.addr(env).port(),
        request.device_token
    ));
    let out = run(&mut cmd, None, CLIENT_LIMIT);
    let all = format!("{}\n{}", out.stdout, out.stderr);
    assert!(
        !all.contains("Certificate verification failed"),
        "nghttp did not trust the mock's certificate:\n{all}"
    );
    out
}

/// The MAX_CONCURRENT_STREAMS values of the SETTINGS frames nghttp received, in order.
pub fn received_max_streams(nghttp_stdout: &str) -> Vec<u32> {
    let mut values = Vec::new();
    let mut in_received_settings = false;
    for line in nghttp_stdout.lines() {
        if line.contains("] recv ") || line.contains("] send ") {
            in_received_settings = line.contains("] recv SETTINGS frame");
        } else if in_received_settings {
            if let Some(v) = line
                .trim()
                .strip_prefix("[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):")
            {
                values.extend(v.trim_end_matches(']').parse::<u32>().ok());
            }
        }
    }
    values
}

/// Reads `recv (stream_id=N) name: value` lines and the JSON body from `nghttp -v` output.
fn parse_nghttp(stdout: &str) -> PushResponse {
    let mut response = PushResponse::default();
    for line in stdout.lines() {
        if let Some((_, rest)) = line.split_once("] recv (stream_id=") {
            if let Some((_, header)) = rest.split_once(") ") {
                // Pseudo-headers start with ':', so split after the first char.
                let split_at = header[1..].find(':').map(|i| i + 1);
                if let Some(i) = split_at {
                    let (k, v) = header.split_at(i);
                    let v = v[1..].trim().to_string();
                    if k == ":status" {
                        response.status = v.parse().unwrap_or(0);
                    }
                    response.headers.push((k.to_ascii_lowercase(), v));
                }
            }
        }
    }
    if let Some(start) = stdout.find("{\"reason\"") {
        let end = stdout[start..]
            .find('}')
            .map(|e| start + e + 1)
            .unwrap_or(stdout.len());
        response.body = stdout[start..end].to_string();
    }
    response
}

/// Runs every case through curl; each case on its own connection (the provider token differs).
pub fn curl_cases(
    server: &MockServer,
    env: Environment,
    auth: &ClientAuth,
    cases: &[Case],
) -> Vec<(Case, Reply)> {
    let token_auth = matches!(auth, ClientAuth::Token);
    cases
        .iter()
        .map(|case| {
            let request = PushRequest::from_case(server, case, token_auth);
            let response = curl(server, env, auth, std::slice::from_ref(&request)).remove(0);
            assert_eq!(
                response.http_version.as_deref(),
                Some("2"),
                "{}: curl did not use HTTP/2",
                case.name
            );
            (case.clone(), response.reply())
        })
        .collect()
}

/// Runs every case through nghttp.
pub fn nghttp_cases(
    server: &MockServer,
    env: Environment,
    auth: &ClientAuth,
    cases: &[Case],
) -> Vec<(Case, Reply)> {
    let token_auth = matches!(auth, ClientAuth::Token);
    cases
        .iter()
        .map(|case| {
            let request = PushRequest::from_case(server, case, token_auth);
            (case.clone(), nghttp(server, env, auth, &request).reply())
        })
        .collect()
}
