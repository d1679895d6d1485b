//! Push registrations by XEP-0357 node: which device token, app and APNs environment a node
//! stands for, and the secret the XMPP server must echo in `publish-options`.
//!
//! Filled in-process ([`Registry::register`]) or from configuration; a 410 from APNs removes
//! the node, so the next publish for it is answered `item-not-found`.

use mock_apns::Environment;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// One device registration (what the app told its app server when it enabled push).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The XEP-0357 node the phone enabled.
    pub node: String,
    /// The `secret` publish-option the XMPP server must echo (`None`: not checked).
    #[serde(default)]
    pub secret: Option<String>,
    /// The PushKit (VoIP) device token, hex.
    pub voip_token: String,
    /// The user-notification (alert/background) device token, if the app registered one.
    #[serde(default)]
    pub alert_token: Option<String>,
    /// The app's bundle id (topic `<bundle>` for alerts, `<bundle>.voip` for calls).
    pub bundle_id: String,
    /// Which APNs environment issued the tokens.
    #[serde(default = "sandbox", with = "environment_name")]
    pub environment: Environment,
}

fn sandbox() -> Environment {
    Environment::Sandbox
}

mod environment_name {
    use mock_apns::Environment;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(e: &Environment, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match e {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
        })
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Environment, D::Error> {
        match String::deserialize(d)?.as_str() {
            "sandbox" | "development" => Ok(Environment::Sandbox),
            "production" => Ok(Environment::Production),
            other => Err(serde::de::Error::custom(format!(
                "environment {other:?}: expected \"sandbox\" or \"production\""
            ))),
        }
    }
}

impl Registration {
    /// A registration with a VoIP token only, sandbox, no secret.
    pub fn new(node: &str, voip_token: &str, bundle_id: &str) -> Self {
        Registration {
            node: node.into(),
            secret: None,
            voip_token: voip_token.into(),
            alert_token: None,
            bundle_id: bundle_id.into(),
            environment: Environment::Sandbox,
        }
    }

    /// With an alert token.
    pub fn alert_token(mut self, token: &str) -> Self {
        self.alert_token = Some(token.into());
        self
    }

    /// With a secret.
    pub fn secret(mut self, secret: &str) -> Self {
        self.secret = Some(secret.into());
        self
    }
}

/// Why a publish does not match a registration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No registration for this node (never registered, or removed after a 410).
    #[error("no registration for node {0:?}")]
    UnknownNode(String),
    /// The publish-options secret is missing or differs.
    #[error("wrong or missing secret for node {0:?}")]
    BadSecret(String),
}

/// The registrations, shared between the app server task and its owner.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    inner: Arc<Mutex<BTreeMap<String, Registration>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Registration>> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
        timeline::lock(&self.inner)
    }

    /// Adds or replaces the registration for its node.
    pub fn register(&self, r: Registration) {
        self.lock().insert(r.node.clone(), r);
    }

    /// Removes a node; true if it was there.
    pub fn remove(&self, node: &str) -> bool {
        self.lock().remove(node).is_some()
    }

    /// The registration for `node`, if any.
    pub fn get(&self, node: &str) -> Option<Registration> {
        self.lock().get(node).cloned()
    }

    /// All nodes, sorted.
    pub fn nodes(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// The registration a publish for `node` with `secret` (from publish-options) refers to.
    pub fn lookup(&self, node: &str, secret: Option<&str>) -> Result<Registration, LookupError> {
        let r = self
            .get(node)
            .ok_or_else(|| LookupError::UnknownNode(node.into()))?;
        match &r.secret {
            Some(s) if Some(s.as_str()) != secret => Err(LookupError::BadSecret(node.into())),
            _ => Ok(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_checks_node_and_secret() {
        let reg = Registry::new();
        reg.register(Registration::new("n1", "aa", "com.example.app").secret("s"));
        assert!(reg.lookup("n1", Some("s")).is_ok());
        assert_eq!(
            reg.lookup("n1", Some("x")),
            Err(LookupError::BadSecret("n1".into()))
        );
        assert_eq!(
            reg.lookup("n1", None),
            Err(LookupError::BadSecret("n1".into()))
        );
        assert_eq!(
            reg.lookup("n2", Some("s")),
            Err(LookupError::UnknownNode("n2".into()))
        );
        assert!(reg.remove("n1"));
        assert!(reg.lookup("n1", Some("s")).is_err());
    }

    #[test]
    fn registrations_read_from_toml() {
        #[derive(Deserialize)]
        struct File {
            registrations: Vec<Registration>,
        }
        let f: File = toml::from_str(
            r#"[[registrations]]
               node = "n1"
               secret = "s"
               voip_token = "aa"
               alert_token = "bb"
               bundle_id = "com.example.app"
               environment = "production""#,
        )
        .unwrap();
        assert_eq!(f.registrations[0].environment, Environment::Production);
        assert_eq!(f.registrations[0].alert_token.as_deref(), Some("bb"));
        let bad: Result<File, _> = toml::from_str(
            r#"[[registrations]]
               node = "n1"
               voip_token = "aa"
               bundle_id = "b"
               environment = "staging""#,
        );
        assert!(bad.is_err());
    }
}
