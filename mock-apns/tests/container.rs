//! The container image (containers/mock-apns): built by its build.sh from the binary cargo built
//! for these tests, run with docker on the host's network with every listener on 127.0.0.1 (as
//! this project's container tests always are: test traffic stays on loopback) and a credentials
//! volume; curl pushes to the sandbox listener and the push log is read back through the control
//! port, at the addresses the container reports; `docker stop` ends it cleanly (GOAWAY path, exit
//! status 0).
//!
//! Docker is required: without a docker client or a running engine this test FAILS with what is
//! missing (CI machines have Docker; nothing is ever pulled, the image is FROM scratch).

use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::apns::clients::{curl, ApnsTarget, ClientAuth, PushRequest};
use testkit::apns::jwt::{self, Signature};
use testkit::apns::server::{binary, control_request, fresh_device_token, Environment, Manifest};
use testkit::process::{run, run_ok, Output};

/// Deadline for one docker command (an image build included).
const DOCKER_LIMIT: Duration = Duration::from_secs(120);
/// How long the container may take to report its addresses.
const STARTUP: Duration = Duration::from_secs(30);

fn docker(args: &[&str]) -> Output {
    run(Command::new("docker").args(args), None, DOCKER_LIMIT)
}

fn docker_ok(args: &[&str]) -> String {
    run_ok(Command::new("docker").args(args), DOCKER_LIMIT)
        .stdout
        .trim()
        .to_string()
}

/// Fails loudly when Docker cannot be used.
fn require_docker() {
    if std::env::var_os("PATH")
        .is_some_and(|p| !std::env::split_paths(&p).any(|d| d.join("docker").is_file()))
    {
        panic!("this test needs Docker: no `docker` client on PATH (and a running engine)");
    }
    let out = docker(&["info", "--format", "{{.ServerVersion}}"]);
    assert!(
        out.status.success() && !out.stdout.trim().is_empty(),
        "this test needs a running Docker engine, but `docker info` failed ({}): {}{}",
        out.status,
        out.stdout,
        out.stderr
    );
}

/// An image and a container of it, removed on drop (also when a step of the test fails).
struct DockerObjects {
    image: String,
    id: String,
}

impl Drop for DockerObjects {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.id]);
        let _ = docker(&["rmi", "-f", &self.image]);
    }
}

/// The running container: published addresses and the credentials it wrote to its volume.
struct Container {
    objects: DockerObjects,
    /// The volume's host directory: kept until the container is gone (fields drop in order).
    _credentials: tempfile::TempDir,
    sandbox: SocketAddr,
    production: SocketAddr,
    control: SocketAddr,
    manifest: Manifest,
}

impl Container {
    fn build_and_run() -> Container {
        let build = Path::new(env!("CARGO_MANIFEST_DIR")).join("../containers/mock-apns/build.sh");
        let tag = format!(
            "pushbench/mock-apns:test-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let out = run(
            Command::new("bash")
                .arg(&build)
                .arg("--binary")
                .arg(binary())
                .args(["--tag", &tag]),
            None,
            DOCKER_LIMIT,
        );
        assert!(
            out.status.success() && out.stdout.trim() == tag,
            "{} failed ({}):\n{}\n{}",
            build.display(),
            out.status,
            out.stdout,
            out.stderr
        );
        let credentials = tempfile::tempdir().expect("temp dir");
        let user = format!("{}:{}", id("-u"), id("-g"));
        let volume = format!("{}:/credentials", credentials.path().display());
        // Host networking, loopback only, ports chosen by the kernel: the image's own CMD
        // (0.0.0.0 on fixed ports) is for users who publish ports; tests never leave loopback.
        let started = docker(&[
            "run",
            "-d",
            "--network",
            "host",
            "--user",
            &user,
            "-v",
            &volume,
            &tag,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--sandbox-listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
            "--credentials",
            "/credentials",
            "--server-name",
            "mock-apns",
        ]);
        let objects = DockerObjects {
            image: tag,
            id: started.stdout.trim().to_string(),
        };
        assert!(
            started.status.success(),
            "docker run failed ({}): {}",
            started.status,
            started.stderr
        );
        let report = wait_ready(&objects.id);
        let manifest = Manifest::load(credentials.path());
        Container {
            sandbox: reported(&report, "sandbox"),
            production: reported(&report, "production"),
            control: reported(&report, "control"),
            objects,
            _credentials: credentials,
            manifest,
        }
    }

    fn control(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> String {
        let (status, text) = control_request(self.control, method, path, body);
        assert!(
            (200..300).contains(&status),
            "control {method} {path} answered {status}: {text}"
        );
        text
    }
}

/// Waits for the one-line JSON address report on the container's stdout, and returns it.
fn wait_ready(id: &str) -> serde_json::Value {
    let deadline = Instant::now() + STARTUP;
    loop {
        let logs = docker(&["logs", id]);
        if let Some(line) = logs.stdout.lines().find(|l| l.starts_with('{')) {
            return serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("report is not JSON ({e}): {line}"));
        }
        let running = docker_ok(&["inspect", "-f", "{{.State.Running}}", id]);
        assert!(
            running == "true" && Instant::now() < deadline,
            "the container did not report its addresses (running: {running}):\n{}\n{}",
            logs.stdout,
            logs.stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An address of the container's report: on loopback, as the test asked.
fn reported(report: &serde_json::Value, which: &str) -> SocketAddr {
    let addr: SocketAddr = report[which]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no {which} address in the report: {report}"));
    assert!(
        addr.ip().is_loopback() && addr.port() != 0,
        "{which}: {addr}"
    );
    addr
}

impl ApnsTarget for Container {
    fn apns_addr(&self, env: Environment) -> SocketAddr {
        match env {
            Environment::Sandbox => self.sandbox,
            Environment::Production => self.production,
        }
    }

    fn ca_file(&self) -> &Path {
        &self.manifest.ca_file
    }
}

/// `id -u` / `id -g`: the container writes the credentials volume as the test's user.
fn id(flag: &str) -> String {
    let out = run(Command::new("id").arg(flag), None, Duration::from_secs(10));
    assert!(out.status.success(), "id {flag} failed: {}", out.stderr);
    out.stdout.trim().to_string()
}

#[test]
fn the_image_serves_pushes_records_them_and_stops_cleanly() {
    require_docker();
    let c = Container::build_and_run();
    let device = fresh_device_token();
    let bundle = c.manifest.bundle_id.clone();
    c.control(
        "POST",
        "/devices",
        Some(&json!({"token": device, "topics": [bundle], "environment": "sandbox", "state": "online"})),
    );
    let key = jwt::read_p8(&c.manifest.key_file);
    let good = jwt::es256(
        &key,
        &c.manifest.key_id,
        &c.manifest.team_id,
        jwt::now(),
        Signature::Der,
    );
    let push = |bearer: String| PushRequest {
        device_token: device.clone(),
        headers: vec![("apns-topic".into(), bundle.clone())],
        body: br#"{"aps":{"alert":"from a container"}}"#.to_vec(),
        bearer: Some(bearer),
    };
    let replies = curl(
        &c,
        Environment::Sandbox,
        &ClientAuth::Token,
        &[
            push(good),
            push(jwt::tampered(&jwt::es256(
                &key,
                &c.manifest.key_id,
                &c.manifest.team_id,
                jwt::now(),
                Signature::Raw,
            ))),
        ],
    );
    let answers: Vec<(u16, String)> = replies.iter().map(|r| (r.status, r.body.clone())).collect();
    assert_eq!(
        answers,
        vec![
            (200, String::new()),
            (403, r#"{"reason":"InvalidProviderToken"}"#.to_string())
        ]
    );
    assert!(
        replies[0].header("apns-unique-id").is_some(),
        "the sandbox listener answers with apns-unique-id: {:?}",
        replies[0].headers
    );

    let log: serde_json::Value =
        serde_json::from_str(&c.control("GET", "/pushes", None)).expect("push log is JSON");
    let records: Vec<(String, u64, String)> = log
        .as_array()
        .expect("push log is an array")
        .iter()
        .map(|p| {
            (
                p["token"].as_str().unwrap_or_default().to_string(),
                p["status"].as_u64().unwrap_or(0),
                p["environment"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        records,
        vec![
            (device.clone(), 200, "sandbox".to_string()),
            (device.clone(), 403, "sandbox".to_string())
        ],
        "{log}"
    );
    assert_eq!(log[0]["payload"], r#"{"aps":{"alert":"from a container"}}"#);

    // docker stop sends SIGTERM to the binary (PID 1 in the image): a clean exit.
    docker_ok(&["stop", "--time", "10", &c.objects.id]);
    let code = docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &c.objects.id]);
    assert_eq!(code, "0", "exit code after docker stop");
}
