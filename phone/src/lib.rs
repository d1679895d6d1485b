//! The simulated iPhone: what iOS 13+ does with PushKit pushes and CallKit calls, as a sans-IO
//! state machine.
//!
//! [`Iphone::handle`] takes one [`Input`] (a push APNs delivered, an offer/cancel/BYE from the
//! account, a tap, the passing of time) at an explicit `now` and returns [`Action`]s for the driver
//! (report a CallKit call, wake the account, answer, reject, end the call, show a notification). It
//! never reads a clock, so every rule is unit-tested with exact times. What the user saw is kept as
//! a list of [`Outcome`]s (rang from t1 to t2, answered, missed, ghost call, bogus call, app
//! terminated, VoIP cut off), which the Gherkin "Then" steps check. Every decision is also written
//! as a note to the phone's [`timeline::Recorder`]; wire messages are recorded by the driver.
//!
//! The rules (Apple's: the PushKit `PKPushType.voIP` documentation and Apple's answer in Developer
//! Forums thread 117939; copied with their sources in `docs/evidence.md`, I1):
//! - every VoIP push reports a CallKit call at once, unless a call with that Call-ID is already
//!   reported; an app that does not report is terminated, and after
//!   [`IphoneConfig::misses_before_cut_off`] misses iOS stops delivering its VoIP pushes;
//! - a VoIP push without a call forces a bogus call or termination ([`NonCallVoipPolicy`]);
//! - every VoIP push the app reports wakes the account (RFC 8599 §4.1.3: REGISTER on push), except
//!   a call-ended push for a call it is already ringing for;
//! - what the bench alone knows ([`Input::CallerEnded`]) only classifies ghost calls: it never
//!   changes what the phone does;
//! - an early Answer is held until the offer arrives, then answered;
//! - the CallKit call ends on cancel, on a "call ended" push, on BYE, or with `.failed` when no offer
//!   arrives within [`IphoneConfig::offer_grace`];
//! - a stale push (its `send-time` older than [`IphoneConfig::stale_after`], or for a call the phone
//!   knows has ended) is still reported, then ended at once;
//! - alert and background pushes are handled by a notification service extension (no CallKit).
//!
//! The push payload the reference gateway sends is defined here, in [`payload`]. [`driver`] runs
//! the model on a tokio task with real time, for the bench's steps.
//!
//! ```
//! use phone::{Action, DeliveredPush, Input, Iphone, IphoneConfig, Outcome, PushPayload, WallClock};
//! use std::time::{Duration, Instant};
//! use timeline::{Protocol, Recorder};
//!
//! let t0 = Instant::now();
//! let mut phone = Iphone::new(IphoneConfig::default(), WallClock::new(t0, 1_700_000_000_000),
//!                             Recorder::off("alice-iphone", Protocol::Note));
//! let payload = PushPayload::call("c1", "sip:bob@example.com", 1_700_000_000_000).to_json();
//! let actions = phone.handle(t0, Input::Push(DeliveredPush::voip("com.example.app.voip", "id-1", payload)));
//! assert!(matches!(actions[1], Action::ReportIncomingCall { .. }));
//! // The caller hangs up; the INVITE never comes: CallKit ends the call after the grace period.
//! phone.tick(t0 + Duration::from_secs(5));
//! assert!(phone.outcomes().iter().any(|o| matches!(o, Outcome::Missed { .. })));
//! ```

pub mod action;
pub mod config;
pub mod contract;
pub mod driver;
pub mod input;
pub mod iphone;
pub mod outcome;
pub mod payload;

pub use action::{Action, EndReason, STATUS_DECLINE, STATUS_GONE};
pub use config::{IphoneConfig, NonCallVoipPolicy, WallClock};
pub use contract::{CancelMark, PayloadContract, PointerError};
pub use driver::{spawn, DriverConfig, PhoneHandle, Snapshot, WaitError};
pub use input::{DeliveredPush, Input, PushType};
pub use iphone::{CallEnd, CallState, CallView, Iphone, Report};
pub use outcome::Outcome;
pub use payload::{CancelReason, PayloadError, PayloadKind, PushPayload};
