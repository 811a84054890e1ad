//! Grants: the base URLs a user allowed a skill to reach.

use std::fmt;

use crate::host::{Host, HostError, normalize_host};

/// The only schemes a skill may use; anything else has no business leaving
/// the sandbox through the HTTP interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP, port 80 unless given.
    Http,
    /// HTTP over TLS, port 443 unless given.
    Https,
}

impl Scheme {
    /// Case-insensitive, as URL schemes are; `None` for anything but http(s).
    pub fn parse(s: &str) -> Option<Scheme> {
        if s.eq_ignore_ascii_case("http") {
            Some(Scheme::Http)
        } else if s.eq_ignore_ascii_case("https") {
            Some(Scheme::Https)
        } else {
            None
        }
    }

    /// Used when a URL leaves the port out, so `http://h` and `http://h:80`
    /// are the same grant.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// Lowercase, as it is printed in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Permission for a skill to talk to one scheme, host and port.
///
/// A path in the base URL (`https://proxy.lan/comfy`) is kept in `url` for
/// the user's benefit but is not part of the match: the sandbox controls
/// where connections go, not what is asked once connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The service the grant is for; it names the grant in messages.
    pub service: String,
    /// Must equal the request's scheme.
    pub scheme: Scheme,
    /// Must equal the request's host after both are normalised.
    pub host: Host,
    /// Must equal the request's port; the scheme's default if not written.
    pub port: u16,
    /// The base URL exactly as the user wrote it, so messages quote it back.
    pub url: String,
}

impl fmt::Display for Grant {
    /// The URL as the user wrote it, so a refusal quotes their own words.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// Why a base URL cannot become a grant. Each variant names the service and
/// the URL, since the user has to find the line to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // the fields are the same everywhere: service and url
pub enum GrantError {
    /// An empty grant would have to mean either nothing or everything.
    #[error("service {service:?}: no URL given")]
    Empty { service: String },
    /// Not parseable as a URL at all.
    #[error("service {service:?}: {url:?} is not a valid URL")]
    Malformed { service: String, url: String },
    /// Only http and https leave the sandbox.
    #[error("service {service:?}: {url:?} is not an http:// or https:// URL")]
    NotHttp { service: String, url: String },
    /// Credentials in a URL are a classic way to disguise the real host.
    #[error("service {service:?}: {url:?} carries user info (user@host), which grants may not")]
    UserInfo { service: String, url: String },
    /// A grant has to say where.
    #[error("service {service:?}: {url:?} has no host")]
    MissingHost { service: String, url: String },
    /// Grants name single hosts and ports; a pattern would silently widen.
    #[error("service {service:?}: {url:?} has a wildcard; grant each host and port explicitly")]
    Wildcard { service: String, url: String },
    /// The host is neither an IP literal nor a plain DNS name.
    #[error("service {service:?}: {url:?} has an invalid host: {error}")]
    InvalidHost { service: String, url: String, error: HostError },
    /// Not a number from 1 to 65535.
    #[error("service {service:?}: {url:?} has an invalid port")]
    InvalidPort { service: String, url: String },
}

impl Grant {
    /// Parses a service's base URL into a grant; see [`GrantError`] for what
    /// is refused.
    pub fn parse(service: &str, base_url: &str) -> Result<Grant, GrantError> {
        let (service, url) = (service.to_string(), base_url.to_string());
        if base_url.is_empty() {
            return Err(GrantError::Empty { service });
        }
        // Look for `*` before parsing: `http::Uri` would take `*.lan` as a
        // host and `*` as a (later ignored) port.
        let head = base_url.split(['/', '?', '#']).take(3).collect::<String>();
        if head.contains('*') {
            return Err(GrantError::Wildcard { service, url });
        }
        // Judge the scheme first: `http::Uri` refuses `file:///x` outright,
        // and "not http" is the more useful thing to tell the user.
        let scheme = base_url.split_once("://").and_then(|(s, _)| Scheme::parse(s));
        let Some(scheme) = scheme else {
            return Err(GrantError::NotHttp { service, url });
        };
        let Ok(uri) = base_url.parse::<http::Uri>() else {
            return Err(GrantError::Malformed { service, url });
        };
        let Some(authority) = uri.authority().map(|a| a.as_str()) else {
            return Err(GrantError::MissingHost { service, url });
        };
        if authority.contains('@') {
            return Err(GrantError::UserInfo { service, url });
        }
        let (raw_host, raw_port) = split_host_port(authority);
        let host = match normalize_host(raw_host) {
            Ok(host) => host,
            Err(HostError::Empty) => return Err(GrantError::MissingHost { service, url }),
            Err(error) => {
                return Err(GrantError::InvalidHost { service, url, error });
            }
        };
        let Some(port) = parse_port(raw_port, scheme).filter(|&p| p != 0) else {
            return Err(GrantError::InvalidPort { service, url });
        };
        Ok(Grant { service, scheme, host, port, url })
    }
}

/// Splits `host[:port]`, keeping brackets on an IPv6 host. Anything odd is
/// left in the host part, where [`normalize_host`] refuses it.
pub(crate) fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    let split_at = if authority.starts_with('[') {
        authority.find(']').map(|end| end + 1).filter(|&i| authority[i..].starts_with(':'))
    } else {
        authority.rfind(':')
    };
    match split_at {
        Some(i) => (&authority[..i], Some(&authority[i + 1..])),
        None => (authority, None),
    }
}

/// `None` if the port is not a plain decimal u16. `http::Uri::port` cannot
/// be used: it reports an out-of-range port (`:99999`) as no port at all,
/// which would quietly turn into the default port.
pub(crate) fn parse_port(raw: Option<&str>, scheme: Scheme) -> Option<u16> {
    match raw {
        None | Some("") => Some(scheme.default_port()),
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok(),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse() {
        let ip = |s: &str| Host::Ip(s.parse().unwrap());
        let name = |s: &str| Host::Name(s.into());
        for (url, scheme, host, port) in [
            ("http://127.0.0.1:8188", Scheme::Http, ip("127.0.0.1"), 8188),
            ("http://127.0.0.1:8188/", Scheme::Http, ip("127.0.0.1"), 8188),
            ("https://proxy.lan/comfy", Scheme::Https, name("proxy.lan"), 443),
            ("HTTPS://Proxy.LAN./comfy?x=1", Scheme::Https, name("proxy.lan"), 443),
            ("http://localhost", Scheme::Http, name("localhost"), 80),
            ("http://localhost:", Scheme::Http, name("localhost"), 80),
            ("http://2130706433:11434", Scheme::Http, ip("127.0.0.1"), 11434),
            ("http://[::1]:8080", Scheme::Http, ip("::1"), 8080),
            ("http://[::ffff:7f00:1]", Scheme::Http, ip("127.0.0.1"), 80),
            ("http://169.254.169.254", Scheme::Http, ip("169.254.169.254"), 80),
        ] {
            let g = Grant::parse("svc", url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!((g.scheme, &g.host, g.port), (scheme, &host, port), "{url}");
            assert_eq!(g.to_string(), url, "{url}");
        }
    }

    #[test]
    fn bad_grants_are_refused() {
        type Make = fn(String, String) -> GrantError;
        let not_http: Make = |service, url| GrantError::NotHttp { service, url };
        let malformed: Make = |service, url| GrantError::Malformed { service, url };
        let userinfo: Make = |service, url| GrantError::UserInfo { service, url };
        let wildcard: Make = |service, url| GrantError::Wildcard { service, url };
        let no_host: Make = |service, url| GrantError::MissingHost { service, url };
        let bad_port: Make = |service, url| GrantError::InvalidPort { service, url };
        let bad_v4: Make = |service, url| GrantError::InvalidHost { service, url, error: HostError::Ipv4 };
        let bad_v6: Make = |service, url| GrantError::InvalidHost { service, url, error: HostError::Ipv6 };
        for (url, want) in [
            ("ftp://x", not_http),
            ("127.0.0.1:8188", not_http),
            ("/comfy", not_http),
            ("file:///etc/passwd", not_http),
            ("http://", malformed),
            ("http://exa mple", malformed),
            ("http://user@127.0.0.1:8188", userinfo),
            ("http://comfyui.lan:8188@evil.com", userinfo),
            ("http://*.lan", wildcard),
            ("http://h:*", wildcard),
            ("*://h", wildcard),
            ("http://:8188", no_host),
            ("http://h:0", bad_port),
            ("http://h:99999", bad_port),
            ("http://h:+80", bad_port),
            ("http://1.2.3.4.5", bad_v4),
            ("http://0x1g:80", bad_v4),
            ("http://[fe80::1%25eth0]", bad_v6),
        ] {
            let want = want("comfyui".into(), url.into());
            assert_eq!(Grant::parse("comfyui", url), Err(want), "{url}");
        }
        assert_eq!(Grant::parse("comfyui", ""), Err(GrantError::Empty { service: "comfyui".into() }));
    }

    #[test]
    fn grant_errors_name_service_and_url() {
        for (url, shown) in [
            ("ftp://x", r#"service "comfyui": "ftp://x" is not an http:// or https:// URL"#),
            (
                "http://0x1g",
                r#"service "comfyui": "http://0x1g" has an invalid host: it looks like an IPv4 address but is not a valid one"#,
            ),
            ("", r#"service "comfyui": no URL given"#),
        ] {
            assert_eq!(Grant::parse("comfyui", url).unwrap_err().to_string(), shown, "{url}");
        }
    }
}
