//! LXD endpoints as operators and Juju write them: `10.0.0.1`, `host:8443`, `https://[::1]:8443/`.

use std::fmt;

pub(crate) const DEFAULT_PORT: u16 = 8443;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Host without brackets: a name, an IPv4 or an IPv6 literal.
    pub host: String,
    pub port: u16,
}

/// What is wrong with an endpoint. It never carries the input: an operator who pastes a key
/// into the endpoint option must not see it echoed into a status or a log.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    #[error("is empty")]
    Empty,
    #[error("uses a scheme other than https (LXD speaks https)")]
    Scheme,
    #[error("has an invalid port")]
    Port,
    #[error("has no valid host")]
    Host,
}

impl Endpoint {
    pub fn parse(input: &str) -> Result<Endpoint, EndpointError> {
        let raw = input.trim();
        if raw.is_empty() {
            return Err(EndpointError::Empty);
        }
        let rest = match raw.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => rest,
            Some(_) => return Err(EndpointError::Scheme),
            None => raw,
        };
        // Path, query and userinfo are meaningless for the LXD API root; drop the path, refuse userinfo.
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.contains('@') || authority.is_empty() {
            return Err(EndpointError::Host);
        }
        let (host, port) = if let Some(after) = authority.strip_prefix('[') {
            let (h, tail) = after.split_once(']').ok_or(EndpointError::Host)?;
            if h.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(EndpointError::Host);
            }
            let port = match tail {
                "" => DEFAULT_PORT,
                t => parse_port(t.strip_prefix(':').ok_or(EndpointError::Port)?)?,
            };
            (h.to_string(), port)
        } else if authority.matches(':').count() > 1 {
            // A bare IPv6 literal without brackets cannot carry a port.
            if authority.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(EndpointError::Host);
            }
            (authority.to_string(), DEFAULT_PORT)
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h.to_string(), parse_port(p)?),
                None => (authority.to_string(), DEFAULT_PORT),
            }
        };
        let valid_name = |h: &str| {
            !h.is_empty()
                && h.len() <= 253
                && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
                && !h.starts_with('-')
        };
        if !host.contains(':') && !valid_name(&host) {
            return Err(EndpointError::Host);
        }
        Ok(Endpoint { host: host.to_ascii_lowercase(), port })
    }

    /// `https://host:port` with brackets around IPv6 literals, the form LXD itself publishes.
    pub fn url(&self) -> String {
        format!("https://{}", self.authority())
    }

    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn parse_port(p: &str) -> Result<u16, EndpointError> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || (p.len() > 1 && p.starts_with('0')) {
        return Err(EndpointError::Port);
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(EndpointError::Port),
        Ok(n) => Ok(n),
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Endpoint {
        Endpoint::parse(s).expect(s)
    }

    #[test]
    fn bare_host_gets_the_lxd_default_port() {
        assert_eq!(ep("10.0.0.1").url(), "https://10.0.0.1:8443");
        assert_eq!(ep("lxd.example.com").url(), "https://lxd.example.com:8443");
    }

    #[test]
    fn scheme_port_and_trailing_path_are_accepted() {
        assert_eq!(ep("https://10.0.0.1:9443/").url(), "https://10.0.0.1:9443");
        assert_eq!(ep("HTTPS://Host:1/1.0").url(), "https://host:1");
        assert_eq!(ep(" 127.0.10.1:8443 ").url(), "https://127.0.10.1:8443");
    }

    #[test]
    fn ipv6_literals_with_and_without_brackets() {
        assert_eq!(ep("[::1]:8443").url(), "https://[::1]:8443");
        assert_eq!(ep("https://[fd00::2]").url(), "https://[fd00::2]:8443");
        assert_eq!(ep("fd00::2").url(), "https://[fd00::2]:8443");
        assert_eq!(ep("[::1]").host, "::1");
    }

    #[test]
    fn nonsense_is_refused_with_a_reason() {
        assert_eq!(Endpoint::parse(""), Err(EndpointError::Empty));
        assert!(matches!(Endpoint::parse("http://x"), Err(EndpointError::Scheme)));
        assert!(matches!(Endpoint::parse("unix:///var/lib/lxd/unix.socket"), Err(EndpointError::Scheme)));
        assert!(matches!(Endpoint::parse("x:0"), Err(EndpointError::Port)));
        assert!(matches!(Endpoint::parse("x:99999"), Err(EndpointError::Port)));
        assert!(matches!(Endpoint::parse("x:"), Err(EndpointError::Port)));
        assert!(matches!(Endpoint::parse("x:+5"), Err(EndpointError::Port)));
        assert!(matches!(Endpoint::parse("[::1]:08443"), Err(EndpointError::Port)));
        assert!(matches!(Endpoint::parse("not a url"), Err(EndpointError::Host)));
        assert!(matches!(Endpoint::parse("user@host"), Err(EndpointError::Host)));
        assert!(matches!(Endpoint::parse("[zz::1]"), Err(EndpointError::Host)));
        assert!(matches!(Endpoint::parse("https://"), Err(EndpointError::Host)));
    }
}
