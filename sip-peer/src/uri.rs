//! SIP URIs with ordered, as-written parameters (`sip:user@host:port;p=v?h=v`).
//!
//! Parameters keep their order and their escaping; [`SipUri::param_decoded`] undoes `%HH`.
//! IPv6 hosts keep their brackets in [`SipUri::host`], so `Display` writes back what was read.

use crate::syntax::{
    find_param, host_of, parse_params, percent_decode, set_param, split_host_port, write_params,
    Param, ParseError,
};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// A `sip:` or `sips:` URI (other schemes such as `tel:` parse with an empty host).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipUri {
    /// `sip`, `sips`, `tel`… as written.
    pub scheme: String,
    /// The userinfo before `@` (user and optional `:password`), as written.
    pub user: Option<String>,
    /// The host as written; IPv6 references keep their brackets.
    pub host: String,
    /// The port, if written.
    pub port: Option<u16>,
    /// URI parameters in order.
    pub params: Vec<Param>,
    /// The `?headers` part without the `?`, as written.
    pub headers: Option<String>,
}

impl SipUri {
    /// Parses a URI (no surrounding `<>`).
    pub fn parse(s: &str) -> Result<SipUri, ParseError> {
        let bad = || ParseError::BadUri(s.to_owned());
        let s = s.trim();
        let (scheme, rest) = s.split_once(':').ok_or_else(bad)?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        {
            return Err(bad());
        }
        let (rest, headers) = match rest.split_once('?') {
            Some((r, h)) => (r, Some(h.to_owned())),
            None => (rest, None),
        };
        let is_sip = scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips");
        if !is_sip {
            // tel: and friends: keep everything before ';' as the "user".
            let (user, params) = rest.split_once(';').unwrap_or((rest, ""));
            return Ok(SipUri {
                scheme: scheme.to_owned(),
                user: Some(user.to_owned()),
                host: String::new(),
                port: None,
                params: parse_params(params),
                headers,
            });
        }
        let (user, hostpart) = match rest.rfind('@') {
            Some(at) => (Some(rest[..at].to_owned()), &rest[at + 1..]),
            None => (None, rest),
        };
        if user.as_deref() == Some("") {
            return Err(bad());
        }
        let (hostport, params) = hostpart.split_once(';').unwrap_or((hostpart, ""));
        let (host, port) = split_host_port(hostport).ok_or_else(bad)?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok(SipUri {
            scheme: scheme.to_owned(),
            user,
            host: host.to_owned(),
            port,
            params: parse_params(params),
            headers,
        })
    }

    /// A plain `sip:user@host[:port]` URI.
    pub fn sip(user: Option<&str>, host: &str, port: Option<u16>) -> SipUri {
        SipUri {
            scheme: "sip".into(),
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
            params: Vec::new(),
            headers: None,
        }
    }

    /// `sip:[user@]ip:port` for a socket address (IPv6 bracketed).
    pub fn from_addr(user: Option<&str>, addr: SocketAddr) -> SipUri {
        SipUri::sip(user, &host_of(addr.ip()), Some(addr.port()))
    }

    /// The user part without a password.
    pub fn user_name(&self) -> Option<&str> {
        self.user
            .as_deref()
            .map(|u| u.split(':').next().unwrap_or(u))
    }

    /// The raw value of a URI parameter (`Some("")` for a flag), case-insensitive name.
    pub fn param(&self, name: &str) -> Option<&str> {
        find_param(&self.params, name)
    }

    /// A parameter's value with `%HH` escapes undone.
    pub fn param_decoded(&self, name: &str) -> Option<String> {
        self.param(name).map(percent_decode)
    }

    /// Sets (replacing) or appends a parameter, value written as given.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        set_param(&mut self.params, name, value);
    }

    /// Removes a parameter.
    pub fn remove_param(&mut self, name: &str) {
        self.params.retain(|p| !p.name.eq_ignore_ascii_case(name));
    }

    /// The host as an IP address when it is a literal (brackets removed).
    pub fn ip(&self) -> Option<IpAddr> {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()
    }

    /// The socket address when the host is an IP literal; the port defaults to 5060 (5061 for
    /// `sips`).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let default = if self.scheme.eq_ignore_ascii_case("sips") {
            5061
        } else {
            5060
        };
        self.ip()
            .map(|ip| SocketAddr::new(ip, self.port.unwrap_or(default)))
    }

    /// `user@host` without port or parameters (the address-of-record key).
    pub fn aor(&self) -> String {
        match self.user_name() {
            Some(u) => format!("{}:{}@{}", self.scheme, u, self.host),
            None => format!("{}:{}", self.scheme, self.host),
        }
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme)?;
        if self.host.is_empty() {
            if let Some(u) = &self.user {
                f.write_str(u)?;
            }
        } else {
            if let Some(u) = &self.user {
                write!(f, "{u}@")?;
            }
            f.write_str(&self.host)?;
            if let Some(p) = self.port {
                write!(f, ":{p}")?;
            }
        }
        write_params(f, &self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for SipUri {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SipUri::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_and_params_round_trip() {
        let s = "sip:alice@[2001:db8::1]:5062;transport=tcp;pn-prid=00fc%3A13ad;lr";
        let u = SipUri::parse(s).unwrap();
        assert_eq!(u.host, "[2001:db8::1]");
        assert_eq!(u.port, Some(5062));
        assert_eq!(u.param("lr"), Some(""));
        assert_eq!(u.param_decoded("pn-prid").as_deref(), Some("00fc:13ad"));
        assert_eq!(u.to_string(), s);
        assert_eq!(u.socket_addr(), Some("[2001:db8::1]:5062".parse().unwrap()));
    }

    #[test]
    fn other_schemes_and_headers() {
        let u = SipUri::parse("tel:+1-201-555-0123;phone-context=x").unwrap();
        assert_eq!(u.to_string(), "tel:+1-201-555-0123;phone-context=x");
        let u = SipUri::parse("sip:bob@example.com?subject=hi").unwrap();
        assert_eq!(u.headers.as_deref(), Some("subject=hi"));
        assert_eq!(u.to_string(), "sip:bob@example.com?subject=hi");
        assert_eq!(u.aor(), "sip:bob@example.com");
    }

    #[test]
    fn bad_uris_are_errors() {
        for s in [
            "",
            "nocolon",
            "sip:",
            "sip:@host",
            "sip:host:notaport",
            "sip:[::1",
        ] {
            assert!(SipUri::parse(s).is_err(), "{s}");
        }
    }
}
