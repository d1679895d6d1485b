//! Sends the pushes [`crate::call_push::PushBuilder`] makes: finds the binding's VoIP or alert
//! token (RFC 8599 and the Linphone dialect), refuses malformed tokens before any request, and
//! sends with one [`ApnsClient`] per APNs environment (`pn-provider=apns` → production,
//! `apns.dev` → sandbox), classifying APNs' answer for the bucket.

use crate::apns::{ApnsClient, ApnsClientConfig, ApnsError, ApnsResponse, Push};
use crate::config::{ApnsSettings, Timers};
use crate::faults::{Fault, Faults};
use mock_apns::Environment;
use sip_peer::{PushError, PushParams};
use timeline::Recorder;

/// Where pushes for a binding go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PushTarget {
    /// The VoIP token (hex).
    pub voip_token: String,
    /// The alert ("remote") token, Linphone dialect only.
    pub alert_token: Option<String>,
    /// The app's bundle id.
    pub bundle_id: String,
    /// `pn-provider=apns.dev`: the sandbox.
    pub sandbox: bool,
}

/// Why no push can be sent for a binding.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TargetError {
    /// The push parameters name no usable VoIP token.
    #[error(transparent)]
    Params(#[from] PushError),
    /// The token is not an even number of hex digits (APNs would answer BadDeviceToken).
    #[error("malformed device token {0:?} (not hex)")]
    MalformedToken(String),
}

fn is_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() % 2 == 0
        && token.len() <= 200
        && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The alert token of the Linphone dialect (`tok:remote` with a `remote` service).
fn alert_token(p: &PushParams) -> Option<String> {
    let param = p.param.as_deref()?;
    let services = param.rsplit_once('.')?.1;
    let services: Vec<&str> = services.split('&').collect();
    let tokens: Vec<&str> = p.prid.split('&').collect();
    if services.len() != tokens.len() {
        return None;
    }
    tokens
        .iter()
        .zip(&services)
        .find_map(|(tok, svc)| match tok.rsplit_once(':') {
            Some((t, "remote")) if *svc == "remote" => Some(t),
            _ => None,
        })
        .filter(|t| is_token(t))
        .map(str::to_owned)
}

/// The push target of a binding's parameters.
pub(crate) fn target(p: &PushParams) -> Result<PushTarget, TargetError> {
    let v = p.apns_voip()?;
    if !is_token(&v.token) {
        return Err(TargetError::MalformedToken(v.token));
    }
    Ok(PushTarget {
        alert_token: alert_token(p),
        voip_token: v.token,
        bundle_id: v.bundle_id,
        sandbox: v.sandbox,
    })
}

/// [`target`], with the faults that change it (`first-prid-token`: the first token of a
/// multi-token `pn-prid` is pushed whatever its service).
pub(crate) fn target_for(p: &PushParams, faults: &Faults) -> Result<PushTarget, TargetError> {
    let mut t = target(p)?;
    if faults.has(Fault::FirstPridToken) {
        let first = p.prid.split('&').next().unwrap_or_default();
        let first = first.rsplit_once(':').map_or(first, |(tok, _)| tok);
        if is_token(first) {
            t.voip_token = first.to_owned();
        }
    }
    Ok(t)
}

pub(crate) use timeline::now_ms;

/// What became of a push.
#[derive(Debug)]
pub(crate) enum PushOutcome {
    /// APNs accepted it.
    Accepted,
    /// 410: the token is dead; drop the binding.
    Unregistered,
    /// Any other refusal, after the bounded retries for 429/5xx.
    Refused(ApnsResponse),
    /// No answer at all (connection, TLS, timeout).
    Failed(ApnsError),
}

impl PushOutcome {
    /// One line for logs.
    pub(crate) fn describe(&self) -> String {
        match self {
            PushOutcome::Accepted => "accepted".into(),
            PushOutcome::Unregistered => "410 Unregistered".into(),
            PushOutcome::Refused(r) => format!("refused: {}", r.summary()),
            PushOutcome::Failed(e) => format!("failed: {e}"),
        }
    }
}

/// The APNs clients, one per environment.
#[derive(Clone)]
pub(crate) struct Pusher {
    production: ApnsClient,
    sandbox: ApnsClient,
}

impl Pusher {
    /// Clients for both environments (connections open on first use).
    pub(crate) fn new(
        settings: &ApnsSettings,
        timers: &Timers,
        recorder: &Recorder,
    ) -> Result<Pusher, ApnsError> {
        let client = |addr, env: Environment| -> Result<ApnsClient, ApnsError> {
            ApnsClient::new(
                ApnsClientConfig::new(addr, &settings.ca_pem, settings.auth.clone())?
                    .environment(env)
                    .retry(timers.retry)
                    .recorder(recorder.clone()),
            )
        };
        Ok(Pusher {
            production: client(settings.production, Environment::Production)?,
            sandbox: client(settings.sandbox, Environment::Sandbox)?,
        })
    }

    /// Sends a push to the environment and classifies the answer.
    pub(crate) async fn send(&self, sandbox: bool, push: &Push) -> PushOutcome {
        let client = if sandbox {
            &self.sandbox
        } else {
            &self.production
        };
        match client.send(push).await {
            Ok(r) if r.is_success() => PushOutcome::Accepted,
            Ok(r) if r.is_unregistered() => PushOutcome::Unregistered,
            Ok(r) => PushOutcome::Refused(r),
            Err(e) => PushOutcome::Failed(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_push_params() {
        let lin = PushParams {
            provider: "apns.dev".into(),
            prid: format!("{}:remote&{}:voip", "aa".repeat(32), "bb".repeat(32)),
            param: Some("TEAM.org.linphone.phone.remote&voip".into()),
        };
        let t = target(&lin).unwrap();
        assert_eq!(t.voip_token, "bb".repeat(32));
        assert_eq!(t.alert_token, Some("aa".repeat(32)));
        assert_eq!(
            (t.bundle_id.as_str(), t.sandbox),
            ("org.linphone.phone", true)
        );
        let plain = PushParams::apns(&"cc".repeat(32), "TEAM", "com.example.app");
        let t = target(&plain).unwrap();
        assert_eq!((t.alert_token, t.sandbox), (None, false));
        let bad = PushParams::apns("not-hex!", "TEAM", "com.example.app");
        assert!(matches!(target(&bad), Err(TargetError::MalformedToken(_))));
        let odd = PushParams::apns("abc", "TEAM", "com.example.app");
        assert!(matches!(target(&odd), Err(TargetError::MalformedToken(_))));
    }

    #[test]
    fn first_prid_token_fault_pushes_the_remote_token() {
        let lin = PushParams {
            provider: "apns.dev".into(),
            prid: format!("{}:remote&{}:voip", "aa".repeat(32), "bb".repeat(32)),
            param: Some("TEAM.org.linphone.phone.remote&voip".into()),
        };
        let right = target_for(&lin, &Faults::none()).unwrap();
        assert_eq!(right.voip_token, "bb".repeat(32));
        let wrong = target_for(&lin, &Faults::only(Fault::FirstPridToken)).unwrap();
        assert_eq!(wrong.voip_token, "aa".repeat(32));
        let plain = PushParams::apns(&"cc".repeat(32), "TEAM", "com.example.app");
        let same = target_for(&plain, &Faults::only(Fault::FirstPridToken)).unwrap();
        assert_eq!(same.voip_token, "cc".repeat(32));
    }
}
