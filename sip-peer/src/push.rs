//! RFC 8599 push parameters in a Contact URI (`pn-provider`, `pn-prid`, `pn-param`), and the
//! APNs view of them, including the Linphone dialect (`pn-provider=apns.dev`,
//! `pn-prid=tok1:remote&tok2:voip`, `pn-param=TEAM.bundle.remote&voip`).

use crate::uri::SipUri;

/// The three RFC 8599 parameters, decoded (`%HH` undone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushParams {
    /// `pn-provider` (`apns`, `apns.dev`, `fcm`, `webpush`…).
    pub provider: String,
    /// `pn-prid`: the device token(s).
    pub prid: String,
    /// `pn-param`, if present.
    pub param: Option<String>,
}

/// Why push parameters do not name an APNs VoIP destination.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The provider is not APNs.
    #[error("pn-provider {0:?} is not apns")]
    NotApns(String),
    /// `pn-param` is missing or has no `TEAM.bundle` form.
    #[error("pn-param {0:?} is not TEAM.bundle.service")]
    BadParam(String),
    /// No token is marked for (or usable as) the `voip` service.
    #[error("no voip token in pn-prid {0:?}")]
    NoVoipToken(String),
    /// Linphone dialect: the number of tokens and of services differ.
    #[error("pn-prid has {tokens} tokens but pn-param names {services} services")]
    CountMismatch {
        /// Tokens in pn-prid.
        tokens: usize,
        /// Services in pn-param.
        services: usize,
    },
}

/// Where a VoIP push for these parameters goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApnsVoip {
    /// The device token to push to.
    pub token: String,
    /// The Team ID (before the first dot of pn-param).
    pub team_id: String,
    /// The bundle ID (between the Team ID and the service).
    pub bundle_id: String,
    /// The `apns-topic` for a VoIP push: `<bundle>.voip`.
    pub topic: String,
    /// True for the sandbox host (`pn-provider=apns.dev`).
    pub sandbox: bool,
}

impl PushParams {
    /// Reads the parameters from a URI; `None` when `pn-provider` or `pn-prid` is absent.
    pub fn from_uri(uri: &SipUri) -> Option<PushParams> {
        Some(PushParams {
            provider: uri.param_decoded("pn-provider")?,
            prid: uri.param_decoded("pn-prid")?,
            param: uri.param_decoded("pn-param"),
        })
    }

    /// Standard APNs parameters: `pn-provider=apns;pn-prid=<token>;pn-param=<team>.<bundle>.voip`.
    pub fn apns(token: &str, team_id: &str, bundle_id: &str) -> PushParams {
        PushParams {
            provider: "apns".into(),
            prid: token.into(),
            param: Some(format!("{team_id}.{bundle_id}.voip")),
        }
    }

    /// Writes the parameters into a URI (replacing any present). Characters outside RFC 3261
    /// `paramchar` are escaped; `:` and `&` are written as they are (both are allowed).
    pub fn apply_to(&self, uri: &mut SipUri) {
        uri.set_param("pn-provider", Some(&escape_param(&self.provider)));
        uri.set_param("pn-prid", Some(&escape_param(&self.prid)));
        match &self.param {
            Some(p) => uri.set_param("pn-param", Some(&escape_param(p))),
            None => uri.remove_param("pn-param"),
        }
    }

    /// The APNs VoIP destination: for RFC 8599 (`apns`) the token and `<bundle>.voip`; for the
    /// Linphone dialect the token marked `:voip` and the sandbox flag from `apns.dev`.
    pub fn apns_voip(&self) -> Result<ApnsVoip, PushError> {
        let sandbox = match self.provider.as_str() {
            "apns" => false,
            "apns.dev" => true,
            other => return Err(PushError::NotApns(other.to_owned())),
        };
        let param = self.param.as_deref().unwrap_or("");
        let (team_id, rest) = param
            .split_once('.')
            .ok_or_else(|| PushError::BadParam(param.to_owned()))?;
        let (bundle_id, services) = rest
            .rsplit_once('.')
            .ok_or_else(|| PushError::BadParam(param.to_owned()))?;
        if team_id.is_empty() || bundle_id.is_empty() || services.is_empty() {
            return Err(PushError::BadParam(param.to_owned()));
        }
        let services: Vec<&str> = services.split('&').collect();
        let tokens: Vec<&str> = self.prid.split('&').collect();
        if tokens.len() != services.len() {
            return Err(PushError::CountMismatch {
                tokens: tokens.len(),
                services: services.len(),
            });
        }
        let token = tokens
            .iter()
            .zip(&services)
            .find_map(|(tok, svc)| {
                // Linphone writes `token:service`; plain RFC 8599 writes just the token.
                match tok.rsplit_once(':') {
                    Some((t, s)) if s == "voip" && *svc == "voip" => Some(t),
                    Some(_) => None,
                    None if *svc == "voip" => Some(*tok),
                    None => None,
                }
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| PushError::NoVoipToken(self.prid.clone()))?;
        Ok(ApnsVoip {
            token: token.to_owned(),
            team_id: team_id.to_owned(),
            bundle_id: bundle_id.to_owned(),
            topic: format!("{bundle_id}.voip"),
            sandbox,
        })
    }
}

/// Escapes characters that may not appear in a URI parameter value.
fn escape_param(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let ok = b.is_ascii_alphanumeric() || b"-_.!~*'()[]/:&+$".contains(&b);
        if ok {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8599_apns() {
        let u = SipUri::parse("sip:alice@192.0.2.1;pn-provider=apns;pn-prid=00fc13adff78512;pn-param=DEF123GHIJ.com.example.yourexampleapp.voip").unwrap();
        let p = PushParams::from_uri(&u).unwrap();
        let v = p.apns_voip().unwrap();
        assert_eq!(v.token, "00fc13adff78512");
        assert_eq!(v.team_id, "DEF123GHIJ");
        assert_eq!(v.bundle_id, "com.example.yourexampleapp");
        assert_eq!(v.topic, "com.example.yourexampleapp.voip");
        assert!(!v.sandbox);
    }

    #[test]
    fn linphone_dialect_picks_the_voip_token() {
        let u = SipUri::parse("sip:alice@h;pn-provider=apns.dev;pn-prid=tok1:remote&tok2:voip;pn-param=TEAM.org.linphone.phone.remote&voip").unwrap();
        let v = PushParams::from_uri(&u).unwrap().apns_voip().unwrap();
        assert_eq!(v.token, "tok2");
        assert_eq!(v.topic, "org.linphone.phone.voip");
        assert!(v.sandbox);
    }

    #[test]
    fn linphone_mismatch_and_other_errors() {
        let p = PushParams {
            provider: "apns".into(),
            prid: "tok1:remote&tok2:voip".into(),
            param: Some("TEAM.b.voip".into()),
        };
        assert_eq!(
            p.apns_voip(),
            Err(PushError::CountMismatch {
                tokens: 2,
                services: 1
            })
        );
        let p = PushParams {
            provider: "fcm".into(),
            prid: "x".into(),
            param: None,
        };
        assert!(matches!(p.apns_voip(), Err(PushError::NotApns(_))));
        let p = PushParams {
            provider: "apns".into(),
            prid: "x".into(),
            param: Some("nodots".into()),
        };
        assert!(matches!(p.apns_voip(), Err(PushError::BadParam(_))));
        let p = PushParams {
            provider: "apns".into(),
            prid: "t:remote".into(),
            param: Some("T.b.remote".into()),
        };
        assert!(matches!(p.apns_voip(), Err(PushError::NoVoipToken(_))));
    }

    #[test]
    fn apply_and_read_back_with_escapes() {
        let mut u = SipUri::parse("sip:alice@127.0.0.1:5070").unwrap();
        let p = PushParams {
            provider: "apns".into(),
            prid: "ab cd;ef".into(),
            param: Some("T.b.voip".into()),
        };
        p.apply_to(&mut u);
        assert_eq!(u.param("pn-prid"), Some("ab%20cd%3Bef"));
        assert_eq!(PushParams::from_uri(&u), Some(p));
    }
}
