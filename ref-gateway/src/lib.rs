//! ref-gateway: the reference push gateway, the bench's embedded default target and its own
//! control subject. It is built to do everything right, with switchable faults that each
//! reproduce a real vendor mistake, so the suite can be proven to catch them.
//!
//! Done now:
//! - [`apns`]: the APNs provider client (HTTP/2 over TLS, token or certificate auth, one long-lived
//!   connection, bounded retries, every request and answer on the timeline).
//! - [`call_push`]: the pushes for a call, a call that ended and a message, with the faults applied.
//! - [`faults`]: the ten fault switches and the fault matrix as data ([`faults::Fault::breaks`]).
//! - [`profile`]: the three CANCEL profiles.
//!
//! Planned layout for the SIP side (integration phase, on `sip-peer`'s parser and transports):
//! - `registrar`: bindings per AOR keyed by `+sip.instance` (else Contact URI), each with its
//!   `pn-provider` / `pn-param` / `pn-prid` (RFC 8599 §4.1, Linphone dialect included), expiry and
//!   transport flow; 2xx to REGISTER carries `Feature-Caps: *;+sip.pns="apns"`; token rotation and
//!   new source addresses update the binding instead of adding one; un-REGISTER stops pushes.
//! - `bucket`: the SIP Request Push Bucket (RFC 8599 §5.2): an INVITE to a push-bound contact is
//!   parked with its Bucket Timer, one push per (Call-ID, token); a REGISTER 2xx that matches on
//!   the pn-* params (§5.3) releases it to the new flow; the timer firing answers 480; a push failure
//!   (410/400/exhausted retries) answers 480 at once and a 410 evicts the binding.
//! - `cancel`: the CANCEL policies where the standards allow two answers: `rfc8599-drop` (200 +
//!   487, drop the bucket entry), `flexisip-replay` (200 + 487 upstream; on the device's REGISTER,
//!   send the stored INVITE and a CANCEL right after, Reason kept) and `cancel-push` (a "call ended"
//!   push with the payload's `kind: "cancel"`).
//! - `proxy` / `fork`: stateful forking to every binding (awake contacts at once, push-bound ones
//!   through the bucket); the first 2xx wins; the others get CANCEL with
//!   `Reason: SIP;cause=200;text="Call completed elsewhere"` (or cause=600 for a global decline).
//! - `push`: sends the pushes [`call_push::PushBuilder`] makes from the binding and the INVITE with
//!   [`apns::ApnsClient`], one per (Call-ID, token), and maps the answer (410 evicts the binding,
//!   other failures answer 480 at once).
//! - the fault switches of [`faults`] are read by `bucket` (no-replay-on-register,
//!   replay-cancelled-call, no-bucket-timer), `push` (ignore-410) and [`call_push`] (the rest).
//! - `config`: the gateway's TOML (listen addresses, domain, APNs client, profile, timers, faults),
//!   also buildable in-process.

pub mod apns;
pub mod call_push;
pub mod faults;
pub mod profile;
