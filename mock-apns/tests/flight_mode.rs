//! Flight mode as APNs does it: a device that is offline gets nothing; APNs keeps only the last
//! push per topic whose `apns-expiration` is in the future (expiration 0 is never stored), and
//! delivers it on reconnect, before anything sent afterwards. Deliveries are observed through the
//! control API's server-sent event stream, the way an out-of-process phone sees them.

use std::time::Duration;
use testkit::apns::clients::{curl, ClientAuth, PushRequest};
use testkit::apns::server::{fresh_device_token, Environment, MockServer};

const WAIT: Duration = Duration::from_secs(10);

fn push(
    server: &MockServer,
    device: &str,
    marker: &str,
    expiration: Option<i64>,
    collapse: Option<&str>,
) -> PushRequest {
    let mut headers = vec![
        ("apns-topic".to_string(), server.manifest.bundle_id.clone()),
        ("apns-push-type".to_string(), "alert".to_string()),
    ];
    if let Some(e) = expiration {
        headers.push(("apns-expiration".into(), e.to_string()));
    }
    if let Some(c) = collapse {
        headers.push(("apns-collapse-id".into(), c.to_string()));
    }
    PushRequest {
        device_token: device.to_string(),
        headers,
        body: format!(r#"{{"aps":{{"alert":"{marker}"}},"marker":"{marker}"}}"#).into_bytes(),
        bearer: None,
    }
}

/// Sends `requests` on one connection with one provider token (a new token value per request
/// would be TooManyProviderTokenUpdates).
fn send_all(server: &MockServer, requests: &[PushRequest]) {
    let jwt = server.valid_jwt();
    let requests: Vec<PushRequest> = requests
        .iter()
        .map(|r| PushRequest {
            bearer: Some(jwt.clone()),
            ..r.clone()
        })
        .collect();
    let replies = curl(server, Environment::Sandbox, &ClientAuth::Token, &requests);
    for (r, reply) in requests.iter().zip(&replies) {
        assert_eq!(
            reply.status, 200,
            "APNs accepts pushes for offline devices: {r:?} got {reply:?}"
        );
    }
}

/// Reads events until one mentions `marker`; returns every event seen, in order.
fn events_until(stream: &mut testkit::apns::server::DeliveryStream, marker: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match stream.next(WAIT) {
            Some(event) => {
                let done = event.contains(marker);
                seen.push(event);
                if done {
                    return seen;
                }
            }
            None => panic!("no delivery mentioning {marker:?} within {WAIT:?}; saw {seen:#?}"),
        }
    }
}

fn markers(events: &[String], all: &[&str]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            all.iter()
                .find(|m| e.contains(*m))
                .map(|m| m.to_string())
                .unwrap_or_else(|| format!("?{e}"))
        })
        .collect()
}

#[test]
fn online_device_gets_pushes_at_once() {
    let server = MockServer::start(&[]);
    let device = fresh_device_token();
    server.register_device(
        &device,
        std::slice::from_ref(&server.manifest.bundle_id),
        Environment::Sandbox,
    );
    let mut deliveries = server.deliveries(&device);
    send_all(
        &server,
        &[push(&server, &device, "hello-online", None, None)],
    );
    let events = events_until(&mut deliveries, "hello-online");
    assert_eq!(events.len(), 1, "{events:#?}");
}

#[test]
fn offline_device_gets_only_the_last_unexpired_push_on_reconnect() {
    let server = MockServer::start(&[]);
    let device = fresh_device_token();
    server.register_device(
        &device,
        std::slice::from_ref(&server.manifest.bundle_id),
        Environment::Sandbox,
    );
    let mut deliveries = server.deliveries(&device);
    server.set_state(&device, "offline", None);
    let later = testkit::apns::jwt::now() + 3600;
    send_all(
        &server,
        &[
            push(&server, &device, "stored-first", Some(later), None),
            push(&server, &device, "stored-last", Some(later), None),
            push(&server, &device, "expires-at-once", Some(0), None),
        ],
    );
    server.set_state(&device, "online", None);
    send_all(
        &server,
        &[push(&server, &device, "after-reconnect", None, None)],
    );
    let all = [
        "stored-first",
        "stored-last",
        "expires-at-once",
        "after-reconnect",
    ];
    let events = events_until(&mut deliveries, "after-reconnect");
    assert_eq!(
        markers(&events, &all),
        vec!["stored-last", "after-reconnect"],
        "expected the last stored push, then the live one; events: {events:#?}"
    );
}

#[test]
fn expiration_zero_is_dropped_even_when_it_is_the_only_push() {
    let server = MockServer::start(&[]);
    let device = fresh_device_token();
    server.register_device(
        &device,
        std::slice::from_ref(&server.manifest.bundle_id),
        Environment::Sandbox,
    );
    let mut deliveries = server.deliveries(&device);
    server.set_state(&device, "offline", None);
    send_all(
        &server,
        &[push(&server, &device, "now-or-never", Some(0), None)],
    );
    server.set_state(&device, "online", None);
    send_all(
        &server,
        &[push(&server, &device, "live-marker", None, None)],
    );
    let events = events_until(&mut deliveries, "live-marker");
    assert_eq!(
        markers(&events, &["now-or-never", "live-marker"]),
        vec!["live-marker"],
        "{events:#?}"
    );
}

#[test]
fn a_stored_push_that_expired_while_offline_is_not_delivered() {
    let server = MockServer::start(&[]);
    let device = fresh_device_token();
    server.register_device(
        &device,
        std::slice::from_ref(&server.manifest.bundle_id),
        Environment::Sandbox,
    );
    let mut deliveries = server.deliveries(&device);
    server.set_state(&device, "offline", None);
    // An expiration in the past (but not 0) is a push that already expired.
    send_all(
        &server,
        &[push(
            &server,
            &device,
            "stale",
            Some(testkit::apns::jwt::now() - 60),
            None,
        )],
    );
    server.set_state(&device, "online", None);
    send_all(&server, &[push(&server, &device, "fresh", None, None)]);
    let events = events_until(&mut deliveries, "fresh");
    assert_eq!(
        markers(&events, &["stale", "fresh"]),
        vec!["fresh"],
        "{events:#?}"
    );
}

/// The delivery event as JSON (the control API streams `Delivery` objects).
fn delivery(event: &str) -> serde_json::Value {
    serde_json::from_str(event)
        .unwrap_or_else(|e| panic!("delivery event is not JSON ({e}): {event}"))
}

#[test]
fn deliveries_say_whether_apns_stored_them() {
    let server = MockServer::start(&[]);
    let device = fresh_device_token();
    server.register_device(
        &device,
        std::slice::from_ref(&server.manifest.bundle_id),
        Environment::Sandbox,
    );
    let mut deliveries = server.deliveries(&device);
    server.set_state(&device, "offline", None);
    let later = testkit::apns::jwt::now() + 3600;
    send_all(
        &server,
        &[push(&server, &device, "kept-while-away", Some(later), None)],
    );
    server.set_state(&device, "online", None);
    send_all(
        &server,
        &[push(&server, &device, "sent-while-here", None, None)],
    );
    let events = events_until(&mut deliveries, "sent-while-here");
    assert_eq!(events.len(), 2, "{events:#?}");
    let (stored, live) = (delivery(&events[0]), delivery(&events[1]));
    assert_eq!(stored["payload"]["marker"], "kept-while-away", "{stored}");
    assert_eq!(stored["stored"], true, "{stored}");
    assert_eq!(stored["expiration"], later, "{stored}");
    assert_eq!(stored["token"], device.as_str(), "{stored}");
    assert_eq!(live["payload"]["marker"], "sent-while-here", "{live}");
    assert_eq!(live["stored"], false, "{live}");
    let (accepted, delivered) = (&stored["accepted_at_ms"], &stored["delivered_at_ms"]);
    assert!(
        accepted.as_u64() <= delivered.as_u64() && accepted.as_u64().is_some(),
        "a stored push is delivered after it was accepted: {stored}"
    );
}

/// Collapse ids as mock-apns documents them (README, store-and-forward): APNs keeps the last push
/// per topic whatever its collapse id, and the delivery carries the collapse id so the simulated
/// phone can replace what it shows.
#[test]
fn collapse_id_is_carried_on_stored_and_live_deliveries() {
    let server = MockServer::start(&[]);
    let device = fresh_device_token();
    server.register_device(
        &device,
        std::slice::from_ref(&server.manifest.bundle_id),
        Environment::Sandbox,
    );
    let mut deliveries = server.deliveries(&device);
    server.set_state(&device, "offline", None);
    let later = testkit::apns::jwt::now() + 3600;
    send_all(
        &server,
        &[
            push(
                &server,
                &device,
                "missed-call-v1",
                Some(later),
                Some("call-42"),
            ),
            push(
                &server,
                &device,
                "missed-call-v2",
                Some(later),
                Some("call-42"),
            ),
        ],
    );
    server.set_state(&device, "online", None);
    send_all(
        &server,
        &[push(&server, &device, "chat-live", None, Some("chat-7"))],
    );
    let all = ["missed-call-v1", "missed-call-v2", "chat-live"];
    let events = events_until(&mut deliveries, "chat-live");
    assert_eq!(
        markers(&events, &all),
        vec!["missed-call-v2", "chat-live"],
        "{events:#?}"
    );
    assert_eq!(
        delivery(&events[0])["collapse_id"],
        "call-42",
        "{}",
        events[0]
    );
    assert_eq!(
        delivery(&events[1])["collapse_id"],
        "chat-7",
        "{}",
        events[1]
    );
}
