//! The control API driven from outside the process, observed through real clients: injected
//! rejections and GOAWAYs, the push log, and what happens to tokens nobody registered.

use serde_json::{json, Value};
use testkit::apns::cases;
use testkit::apns::clients::{curl, nghttp_verbose, ClientAuth, PushRequest};
use testkit::apns::server::{fresh_device_token, Environment, MockServer};

fn push(server: &MockServer, device: &str, extra: &[(&str, &str)]) -> PushRequest {
    let mut headers = vec![("apns-topic".to_string(), server.manifest.bundle_id.clone())];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    PushRequest {
        device_token: device.to_string(),
        headers,
        body: cases::payload_of_size(120),
        bearer: None,
    }
}

/// Sends on one connection with one provider token.
fn send(server: &MockServer, requests: Vec<PushRequest>) -> Vec<(u16, Option<String>)> {
    let jwt = server.valid_jwt();
    let requests: Vec<PushRequest> = requests
        .into_iter()
        .map(|r| PushRequest {
            bearer: Some(jwt.clone()),
            ..r
        })
        .collect();
    curl(server, Environment::Sandbox, &ClientAuth::Token, &requests)
        .iter()
        .map(|r| {
            let reply = r.reply();
            (reply.status, reply.reason)
        })
        .collect()
}

fn records(server: &MockServer) -> Vec<Value> {
    let log = server.pushes();
    log.as_array()
        .or_else(|| log["pushes"].as_array())
        .cloned()
        .unwrap_or_else(|| panic!("GET /pushes is not a list of records: {log}"))
}

#[test]
fn injected_rejections_hit_the_next_n_pushes_for_that_token_only() {
    let server = MockServer::start(&[]);
    let (a, b) = (fresh_device_token(), fresh_device_token());
    for d in [&a, &b] {
        server.register_device(
            d,
            std::slice::from_ref(&server.manifest.bundle_id),
            Environment::Sandbox,
        );
    }
    let fault = json!({"match": {"token": a}, "count": 2, "action": {"reject": {"status": 503, "reason": "Shutdown"}}});
    server.control_ok("POST", "/faults", Some(&fault));
    let shutdown = (503, Some("Shutdown".to_string()));
    let answers = send(
        &server,
        vec![
            push(&server, &a, &[]),
            push(&server, &b, &[]),
            push(&server, &a, &[]),
            push(&server, &a, &[]),
        ],
    );
    assert_eq!(
        answers,
        vec![shutdown.clone(), (200, None), shutdown, (200, None)]
    );
}

#[test]
fn injected_rejections_for_a_topic_leave_other_topics_alone() {
    let server = MockServer::start(&[]);
    let device = fresh_device_token();
    let voip = server.manifest.voip_topic();
    server.register_device(
        &device,
        &[server.manifest.bundle_id.clone(), voip.clone()],
        Environment::Sandbox,
    );
    let fault = json!({"match": {"topic": voip}, "action": {"reject": {"status": 410, "reason": "Unregistered"}}});
    server.control_ok("POST", "/faults", Some(&fault));
    let mut voip_push = push(&server, &device, &[("apns-push-type", "voip")]);
    voip_push.headers[0].1 = voip;
    let jwt = server.valid_jwt();
    let replies = curl(
        &server,
        Environment::Sandbox,
        &ClientAuth::Token,
        &[
            PushRequest {
                bearer: Some(jwt.clone()),
                ..push(&server, &device, &[])
            },
            PushRequest {
                bearer: Some(jwt),
                ..voip_push
            },
        ],
    );
    assert_eq!(replies[0].status, 200, "{replies:?}");
    let rejected = replies[1].reply();
    assert_eq!(
        (rejected.status, rejected.reason.as_deref()),
        (410, Some("Unregistered")),
        "{replies:?}"
    );
    assert!(
        rejected.timestamp.is_some(),
        "an injected 410 carries a timestamp: {replies:?}"
    );
}

#[test]
fn injected_goaway_reaches_nghttp_with_its_json_reason() {
    let server = MockServer::start(&[]);
    let device = fresh_device_token();
    server.register_device(
        &device,
        std::slice::from_ref(&server.manifest.bundle_id),
        Environment::Sandbox,
    );
    let fault = json!({"match": {}, "action": {"goaway": {"reason": "Shutdown"}}});
    server.control_ok("POST", "/faults", Some(&fault));
    let request = PushRequest {
        bearer: Some(server.valid_jwt()),
        ..push(&server, &device, &[])
    };
    let out = nghttp_verbose(&server, Environment::Sandbox, &ClientAuth::Token, &request);
    assert!(
        out.stdout
            .contains(r#"opaque_data(21)=[{"reason":"Shutdown"}])"#)
            && out.stdout.contains("error_code=NO_ERROR(0x00)"),
        "no GOAWAY(NO_ERROR, {{\"reason\":\"Shutdown\"}}) in:\n{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("error_code=REFUSED_STREAM(0x07)"),
        "the matching stream is refused:\n{}",
        out.stdout
    );
    // The fault was used up: the next connection is served.
    let answers = send(&server, vec![push(&server, &device, &[])]);
    assert_eq!(answers, vec![(200, None)]);
}

#[test]
fn push_log_records_what_a_real_client_sent_and_what_it_got() {
    let server = MockServer::start(&[]);
    let device = fresh_device_token();
    server.register_device(
        &device,
        std::slice::from_ref(&server.manifest.bundle_id),
        Environment::Sandbox,
    );
    let id = "1e0c5a4b-7f7e-4c5e-9d3b-0a1b2c3d4e5f";
    let answers = send(
        &server,
        vec![
            push(&server, &device, &[("apns-id", id)]),
            push(&server, &device, &[("apns-priority", "2")]),
        ],
    );
    assert_eq!(
        answers,
        vec![(200, None), (400, Some("BadPriority".to_string()))]
    );
    let log = records(&server);
    assert_eq!(log.len(), 2, "{log:#?}");
    let (ok, bad) = (&log[0], &log[1]);
    assert_eq!(ok["status"], 200, "{ok}");
    assert_eq!(ok["apns_id"], id, "{ok}");
    assert_eq!(ok["token"], device.as_str(), "{ok}");
    assert_eq!(ok["environment"], "sandbox", "{ok}");
    assert_eq!(ok["delivery"], "delivered", "{ok}");
    let sent = String::from_utf8(cases::payload_of_size(120)).expect("ASCII payload");
    assert_eq!(
        ok["payload"],
        sent.as_str(),
        "the payload bytes as sent: {ok}"
    );
    assert!(
        ok.to_string().contains(&server.manifest.team_id),
        "auth identity recorded: {ok}"
    );
    assert!(
        ok["headers"].to_string().contains("apns-topic"),
        "headers recorded: {ok}"
    );
    assert_eq!(
        ok["connection_id"], bad["connection_id"],
        "one curl connection: {log:#?}"
    );
    assert_eq!(bad["status"], 400, "{bad}");
    assert_eq!(bad["reason"], "BadPriority", "{bad}");
    server.control_ok("DELETE", "/pushes", None);
    assert!(records(&server).is_empty(), "DELETE /pushes clears the log");
}

#[test]
fn unknown_tokens_are_registered_by_default_and_refused_when_asked() {
    let open = MockServer::start(&[]);
    let device = fresh_device_token();
    assert_eq!(
        send(&open, vec![push(&open, &device, &[])]),
        vec![(200, None)]
    );
    let strict = MockServer::start(&["--unknown-tokens", "reject"]);
    assert_eq!(
        send(&strict, vec![push(&strict, &device, &[])]),
        vec![(400, Some("BadDeviceToken".to_string()))]
    );
}
