//! Python aioapns 4.0 (a real provider library) against the mock, with token auth (`.p8` key) and
//! certificate auth (the client certificate, topic read from its UID by aioapns itself). The
//! driver lives in `tests/python/aioapns_driver.py`; aioapns keeps Apple's host name for SNI.

use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;
use testkit::apns::cases::{self, AuthMethod, Case, Reply};
use testkit::apns::server::{Environment, MockServer};
use testkit::process::{require_program, run};

const DRIVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/aioapns_driver.py"
);

fn python() -> String {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    require_program(&python);
    let probe = run(
        Command::new(&python).args(["-c", "import aioapns, jwt, cryptography, OpenSSL"]),
        None,
        Duration::from_secs(30),
    );
    assert!(
        probe.status.success(),
        "{python} cannot import aioapns (run scripts/install-deps.sh): {}",
        probe.stderr
    );
    python
}

fn case_json(case: &Case, sends: u32, jwt: &str) -> Value {
    json!({
        "name": case.name,
        "device_token": case.device_token,
        "topic": case.topic,
        "push_type": case.push_type,
        "priority": case.priority.map(|p| p.parse::<u32>().expect("numeric priority")),
        "collapse_key": case.collapse_id,
        "payload_bytes": case.payload_bytes,
        "jwt": jwt,
        "sends": sends,
    })
}

/// Runs the driver; returns, per case name, the list of results (one per send).
fn drive(
    server: &MockServer,
    env: Environment,
    auth: Value,
    cases: Vec<Value>,
) -> Vec<(String, Vec<Value>)> {
    let config = json!({
        "port": server.addr(env).port(),
        "sandbox": env == Environment::Sandbox,
        "ca_file": server.manifest.ca_file,
        "topic": server.manifest.bundle_id,
        "auth": auth,
        "cases": cases,
    });
    let out = run(
        Command::new(python()).arg(DRIVER),
        Some(config.to_string().as_bytes()),
        Duration::from_secs(120),
    );
    out.assert_success("aioapns driver");
    out.stdout
        .lines()
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("driver line {l:?}: {e}"));
            let name = v["name"].as_str().unwrap_or_default().to_string();
            (name, v["results"].as_array().cloned().unwrap_or_default())
        })
        .collect()
}

fn reply(name: &str, result: &Value) -> Reply {
    if let Some(error) = result["error"].as_str() {
        panic!("{name}: aioapns raised {error}");
    }
    let apns_id = result["apns_id"].as_str().map(String::from);
    assert_eq!(
        apns_id.as_deref(),
        result["sent_apns_id"].as_str(),
        "{name}: the answer's apns-id is not the one aioapns sent"
    );
    Reply {
        status: result["status"].as_u64().unwrap_or(0) as u16,
        reason: result["reason"].as_str().map(String::from),
        apns_id,
        timestamp: result["timestamp"].as_u64(),
    }
}

fn run_catalogue(server: &MockServer, env: Environment, mode: AuthMethod, auth: Value) {
    let catalogue = cases::standard(server, env, mode);
    let input = catalogue
        .iter()
        .map(|c| case_json(c, 1, c.jwt.driver_name()))
        .collect();
    let output = drive(server, env, auth, input);
    assert_eq!(output.len(), catalogue.len(), "driver output: {output:?}");
    let results: Vec<(Case, Reply)> = catalogue
        .into_iter()
        .zip(output)
        .map(|(case, (name, results))| {
            assert_eq!(name, case.name);
            let r = reply(case.name, &results[0]);
            (case, r)
        })
        .collect();
    cases::assert_all(
        &format!("aioapns, {mode:?} auth, {}", env.as_str()),
        server,
        &results,
    );
}

fn token_auth(server: &MockServer) -> Value {
    let m = &server.manifest;
    json!({"mode": "token", "key_file": m.key_file, "key_id": m.key_id, "team_id": m.team_id})
}

#[test]
fn aioapns_token_auth_gets_apples_answers() {
    let server = MockServer::start(&[]);
    run_catalogue(
        &server,
        Environment::Sandbox,
        AuthMethod::Token,
        token_auth(&server),
    );
}

#[test]
fn aioapns_certificate_auth_gets_apples_answers() {
    let server = MockServer::start(&[]);
    for env in [Environment::Sandbox, Environment::Production] {
        let c = server.manifest.client_cert(env);
        let auth = json!({"mode": "cert", "cert_file": c.cert_file, "key_file": c.key_file});
        run_catalogue(&server, env, AuthMethod::Certificate, auth);
    }
}

#[test]
fn aioapns_new_token_on_same_connection_is_too_many_updates() {
    let server = MockServer::start(&[]);
    let catalogue = cases::standard(&server, Environment::Sandbox, AuthMethod::Token);
    let valid = catalogue
        .iter()
        .find(|c| c.name == "valid alert")
        .expect("valid case");
    let output = drive(
        &server,
        Environment::Sandbox,
        token_auth(&server),
        vec![case_json(valid, 2, "rotate")],
    );
    let (name, results) = &output[0];
    assert_eq!(results.len(), 2, "{output:?}");
    let first = reply(name, &results[0]);
    let second = reply(name, &results[1]);
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(
        (second.status, second.reason.as_deref()),
        (429, Some("TooManyProviderTokenUpdates")),
        "{second:?}"
    );
}
