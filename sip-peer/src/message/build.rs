//! What a user agent derives from a request it received or sent: the response to it (with the
//! standard reason phrase) and the ACK for a non-2xx final response (RFC 3261 §17.1.1.3).

use super::Message;
use crate::headers::NameAddr;
use crate::syntax::long_header_name;

/// The standard reason phrase for a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        555 => "Push Notification Service Not Supported",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Unknown",
    }
}

/// A response to `req`: its Via lines, From, To (with `to_tag` added when it has none and the
/// code is above 100), Call-ID, CSeq, and Record-Route for dialog-forming responses. No
/// Content-Length: callers add it.
pub fn build_response(req: &Message, code: u16, reason: &str, to_tag: Option<&str>) -> Message {
    let mut resp = Message::response(code, reason);
    for h in &req.headers {
        let long = long_header_name(&h.name);
        let copy = ["Via", "From", "Call-ID", "CSeq"]
            .iter()
            .any(|n| long.eq_ignore_ascii_case(n))
            || (long.eq_ignore_ascii_case("Record-Route")
                && req.method() == Some("INVITE")
                && (101..300).contains(&code));
        if copy {
            resp.headers.push(h.clone());
        } else if long.eq_ignore_ascii_case("To") {
            let mut value = h.value.clone();
            if code > 100 {
                if let (Ok(to), Some(tag)) = (NameAddr::parse(&h.value), to_tag) {
                    if to.tag().is_none() {
                        value = to.with_param("tag", Some(tag)).to_string();
                    }
                }
            }
            resp.push_header(h.name.clone(), value);
        }
    }
    resp
}

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same Request-URI, top Via, Route,
/// From, Call-ID and CSeq number as the INVITE; To from the response.
pub fn build_non2xx_ack(invite: &Message, resp: &Message) -> Message {
    let mut ack = Message::request("ACK", invite.request_uri().unwrap_or("sip:invalid"));
    if let Some(v) = invite.header_values("Via").first() {
        ack.push_header("Via", *v);
    }
    for r in invite.header_lines("Route") {
        ack.push_header("Route", r);
    }
    ack.push_header("Max-Forwards", "70");
    if let Some(f) = invite.header("From") {
        ack.push_header("From", f);
    }
    if let Some(t) = resp.header("To") {
        ack.push_header("To", t);
    }
    if let Some(c) = invite.header("Call-ID") {
        ack.push_header("Call-ID", c);
    }
    let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
    ack.push_header("CSeq", format!("{seq} ACK"));
    ack.push_header("Content-Length", "0");
    ack
}
