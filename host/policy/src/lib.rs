//! Which outgoing HTTP requests a sandboxed skill may make.
//!
//! The host calls [`GrantSet::check`] from its wasi:http `send_request` hook;
//! nothing else compares URLs with grants, so this crate is the whole policy.
//!
//! - **Deny by default.** A skill with no grants reaches nothing. A grant is
//!   a service's base URL (`http://127.0.0.1:8188`, `https://proxy.lan/comfy`)
//!   and allows exactly one scheme, host and port; the path is ignored. There
//!   are no wildcards, and a missing port means the scheme's default.
//! - **Parse, don't pattern-match.** Hosts are normalised before comparison,
//!   on both sides: IPv4 literals in every `inet_aton` spelling (`2130706433`,
//!   `127.1`, `0x7f.1`, `0177.0.0.1`), IPv6 literals including IPv4-mapped
//!   ones, names case-insensitively and without a trailing dot. Something
//!   that looks numeric but is no valid address is refused, never looked up.
//!   URLs with user info (`http://granted:8188@evil.com/`) are always refused.
//! - **Names are resolved by the host and pinned.** For a name grant `check`
//!   returns a [`Target`]; the host resolves the name itself and connects to
//!   the address [`GrantSet::check_resolved`] picks, so there is no window
//!   for DNS rebinding between the check and the connection.
//! - **Link-local is never reached through a name.** `check_resolved` drops
//!   unspecified, link-local (which includes cloud metadata at
//!   169.254.169.254), multicast and broadcast addresses. An IP grant naming
//!   such an address is honoured: the user wrote it down.
//!
//! A refusal is a [`Denial`] whose message names the grant that came closest,
//! so the user can tell which grant to change.

#![deny(missing_docs)]
#![allow(
    clippy::result_large_err,
    reason = "a Denial is built once per refused request, next to a network round trip; \
              keeping `closest` unboxed keeps it easy to match on"
)]

mod grant;
mod host;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

pub use grant::{Grant, GrantError, Scheme};
pub use host::{Host, HostError, normalize_host};

use grant::{parse_port, split_host_port};
use host::canonical_ip;

/// Everything one skill may reach. Order matters only for naming: when two
/// grants allow the same scheme, host and port, the first one's service wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantSet {
    /// The grants, in the order the user listed them.
    pub grants: Vec<Grant>,
}

/// A request that passed [`GrantSet::check`], in normalised form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The service whose grant allowed the request, for logs and metering.
    pub service: String,
    /// The request's scheme, which decides whether to use TLS.
    pub scheme: Scheme,
    /// An IP literal to connect to as is, or a name to resolve and pass to
    /// [`GrantSet::check_resolved`].
    pub host: Host,
    /// The port to connect to, the scheme's default filled in.
    pub port: u16,
}

impl Target {
    /// The address to connect to, if the host is an IP literal; a name needs
    /// [`GrantSet::check_resolved`] first.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.host {
            Host::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            Host::Name(_) => None,
        }
    }
}

impl fmt::Display for Target {
    /// `scheme://host:port`, the form refusals and logs use.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// A refused request, with what the user needs to fix the grants.
///
/// It does not name the skill: the host knows which skill asked and says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The attempted URL as `scheme://host:port` (IPv6 in brackets), or as
    /// close to that as the request allowed, so it can be compared at a
    /// glance with the grants.
    pub url: String,
    /// Why it was refused.
    pub reason: DenialReason,
    /// The grant that would have allowed the request had only its port or
    /// scheme been different.
    pub closest: Option<Grant>,
    /// All grants, listed when none is close but the request was otherwise
    /// well-formed, so the user sees what the skill may reach.
    pub granted: Vec<Grant>,
}

impl Denial {
    fn new(url: String, reason: DenialReason) -> Denial {
        Denial { url, reason, closest: None, granted: Vec::new() }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused {}: {}", self.url, self.reason)?;
        if let Some(g) = &self.closest {
            write!(f, " ({} = {})", g.service, g.url)?;
        } else if !self.granted.is_empty() {
            f.write_str(" (granted: ")?;
            for (i, g) in self.granted.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                write!(f, "{sep}{} = {}", g.service, g.url)?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl std::error::Error for Denial {}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DenialReason {
    /// Deny by default: nothing was granted.
    #[error("the skill has no network grants")]
    NoGrants,
    /// A relative URL says nothing about where to connect.
    #[error("the URL has no scheme")]
    MissingScheme,
    /// Only http and https leave the sandbox.
    #[error("scheme {scheme:?} is not http or https")]
    UnsupportedScheme {
        /// The scheme as the request spelled it.
        scheme: String,
    },
    /// An absolute URL without an authority.
    #[error("the URL has no host")]
    MissingHost,
    /// `user@host` is how a URL disguises its real host
    /// (`http://granted:8188@evil.com/`), so it is refused outright.
    #[error("URLs with user info (user@host) are never allowed")]
    UserInfo,
    /// Neither an IP literal nor a plain name; sending it to a resolver
    /// could mean anything.
    #[error("invalid host {host:?}: {error}")]
    InvalidHost {
        /// The host as the request spelled it.
        host: String,
        /// What is wrong with it.
        error: HostError,
    },
    /// Not a plain decimal port number; `http::Uri` would silently read an
    /// out-of-range port as the default one.
    #[error("invalid port {port:?}")]
    InvalidPort {
        /// The port as the request spelled it.
        port: String,
    },
    /// The host is granted with this scheme, but on another port.
    #[error("no grant for that port")]
    NoGrantForPort,
    /// The host is granted, but only with another scheme.
    #[error("no grant for that scheme")]
    NoGrantForScheme,
    /// No grant names the host at all.
    #[error("no grant for that host")]
    NoGrantForHost,
    /// A granted name resolved to nothing, so there is nothing to pin.
    #[error("the name resolved to no addresses")]
    Unresolved,
    /// A granted name resolved only to addresses a name may not lead to.
    #[error("it resolves to {addr}, a {kind} address, which is never reached through a name")]
    BlockedAddress {
        /// The first offending address.
        addr: IpAddr,
        /// What kind of address it is.
        kind: AddressKind,
    },
}

/// Addresses a granted name may never lead to: a DNS answer is not the
/// user's word, and these reach the machine itself, the local link (cloud
/// metadata services live at 169.254.169.254) or many hosts at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressKind {
    /// 0.0.0.0 or `::`, which connect to the local machine.
    #[error("unspecified")]
    Unspecified,
    /// 169.254.0.0/16 or fe80::/10.
    #[error("link-local")]
    LinkLocal,
    /// 224.0.0.0/4 or ff00::/8.
    #[error("multicast")]
    Multicast,
    /// 255.255.255.255.
    #[error("broadcast")]
    Broadcast,
}

impl AddressKind {
    /// `None` for an address a name may lead to. Expects IPv4-mapped
    /// addresses to be unmapped already.
    fn of(ip: IpAddr) -> Option<AddressKind> {
        let kind = match ip {
            IpAddr::V4(v4) if v4.is_broadcast() => AddressKind::Broadcast,
            IpAddr::V4(v4) if v4.is_link_local() => AddressKind::LinkLocal,
            IpAddr::V6(v6) if v6.is_unicast_link_local() => AddressKind::LinkLocal,
            _ if ip.is_unspecified() => AddressKind::Unspecified,
            _ if ip.is_multicast() => AddressKind::Multicast,
            _ => return None,
        };
        Some(kind)
    }
}

impl GrantSet {
    /// Wraps grants that were parsed already.
    pub fn new(grants: Vec<Grant>) -> GrantSet {
        GrantSet { grants }
    }

    /// Parses `(service, base URL)` pairs, stopping at the first bad one.
    pub fn parse<S, U>(pairs: impl IntoIterator<Item = (S, U)>) -> Result<GrantSet, GrantError>
    where
        S: AsRef<str>,
        U: AsRef<str>,
    {
        let grants = pairs
            .into_iter()
            .map(|(service, url)| Grant::parse(service.as_ref(), url.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(GrantSet { grants })
    }

    /// Decides whether a skill may send a request to `uri`.
    ///
    /// Only the scheme and authority matter. On success an IP target can be
    /// connected to directly ([`Target::socket_addr`]); a name target must be
    /// resolved by the host and passed to [`GrantSet::check_resolved`].
    pub fn check(&self, uri: &http::Uri) -> Result<Target, Denial> {
        match parse_request(uri) {
            Ok((scheme, host, port)) => self.find(scheme, &host, port),
            Err((url, _)) if self.grants.is_empty() => Err(Denial::new(url, DenialReason::NoGrants)),
            Err((url, reason)) => Err(Denial::new(url, reason)),
        }
    }

    /// Picks the address to connect to for a target that passed
    /// [`GrantSet::check`], given what the host's resolver returned.
    ///
    /// The host must connect to the returned address and no other: that pins
    /// the connection to an address that was checked. Addresses a name may
    /// not lead to ([`AddressKind`]) are skipped. An IP target is returned as
    /// is, since `check` already compared it with the user's own grant.
    pub fn check_resolved(&self, target: &Target, addrs: &[IpAddr]) -> Result<SocketAddr, Denial> {
        // `Target` can be built by hand, so make sure it is really granted.
        let target = self.find(target.scheme, &target.host, target.port)?;
        if let Host::Ip(ip) = target.host {
            return Ok(SocketAddr::new(canonical_ip(ip), target.port));
        }
        let mut blocked = None;
        for &addr in addrs {
            let addr = canonical_ip(addr);
            match AddressKind::of(addr) {
                None => return Ok(SocketAddr::new(addr, target.port)),
                Some(kind) => _ = blocked.get_or_insert(DenialReason::BlockedAddress { addr, kind }),
            }
        }
        Err(Denial::new(target.to_string(), blocked.unwrap_or(DenialReason::Unresolved)))
    }

    /// The grant for exactly this scheme, host and port, or a denial naming
    /// the grant that came closest.
    fn find(&self, scheme: Scheme, host: &Host, port: u16) -> Result<Target, Denial> {
        let url = format!("{scheme}://{host}:{port}");
        if self.grants.is_empty() {
            return Err(Denial::new(url, DenialReason::NoGrants));
        }
        let same_host = || self.grants.iter().filter(|g| g.host == *host);
        if let Some(g) = same_host().find(|g| g.scheme == scheme && g.port == port) {
            return Ok(Target { service: g.service.clone(), scheme, host: host.clone(), port });
        }
        let (reason, closest) = if let Some(g) = same_host().find(|g| g.scheme == scheme) {
            (DenialReason::NoGrantForPort, Some(g))
        } else if let Some(g) = same_host().find(|g| g.port == port).or_else(|| same_host().next()) {
            (DenialReason::NoGrantForScheme, Some(g))
        } else {
            (DenialReason::NoGrantForHost, None)
        };
        Err(Denial {
            url,
            reason,
            closest: closest.cloned(),
            granted: if closest.is_none() { self.grants.clone() } else { Vec::new() },
        })
    }
}

/// Scheme, normalised host and port of a request, or the URL to show and the
/// reason it cannot be matched at all.
fn parse_request(uri: &http::Uri) -> Result<(Scheme, Host, u16), (String, DenialReason)> {
    let (Some(raw_scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        let reason = match uri.scheme_str() {
            None => DenialReason::MissingScheme,
            Some(_) => DenialReason::MissingHost,
        };
        return Err((uri.to_string(), reason));
    };
    let authority = authority.as_str();
    let Some(scheme) = Scheme::parse(raw_scheme) else {
        let reason = DenialReason::UnsupportedScheme { scheme: raw_scheme.to_string() };
        return Err((format!("{raw_scheme}://{authority}"), reason));
    };
    // With user info the connection goes to what follows the last `@`; show
    // that, since it is where the request was really headed.
    let (user_info, host_port) = match authority.rsplit_once('@') {
        Some((_, host_port)) => (true, host_port),
        None => (false, authority),
    };
    let (raw_host, raw_port) = split_host_port(host_port);
    let host = normalize_host(raw_host);
    let port = parse_port(raw_port, scheme);
    let url = format!(
        "{scheme}://{}:{}",
        host.as_ref().map_or_else(|_| raw_host.to_string(), Host::to_string),
        port.map_or_else(|| raw_port.unwrap_or_default().to_string(), |p| p.to_string()),
    );
    let reason = match (user_info, host, port) {
        (true, _, _) => DenialReason::UserInfo,
        (false, Err(error), _) => DenialReason::InvalidHost { host: raw_host.to_string(), error },
        (false, Ok(_), None) => DenialReason::InvalidPort { port: raw_port.unwrap_or_default().to_string() },
        (false, Ok(host), Some(port)) => return Ok((scheme, host, port)),
    };
    Err((url, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMFY: &str = "http://127.0.0.1:8188";
    const OLLAMA: &str = "http://127.0.0.1:11434";

    fn grants(pairs: &[(&str, &str)]) -> GrantSet {
        GrantSet::parse(pairs.iter().copied()).unwrap()
    }

    fn check(set: &GrantSet, url: &str) -> Result<Target, Denial> {
        set.check(&url.parse().unwrap_or_else(|e| panic!("{url}: {e}")))
    }

    fn reason(set: &GrantSet, url: &str) -> Option<DenialReason> {
        check(set, url).err().map(|d| d.reason)
    }

    /// Spin-style: one grant, one request, allowed or not.
    #[test]
    fn single_grant_matching() {
        for (grant, url, ok) in [
            (COMFY, "http://127.0.0.1:8188/prompt", true),
            (COMFY, "http://127.0.0.1:8188", true),
            (COMFY, "HTTP://127.0.0.1:8188/", true),
            (COMFY, "http://127.0.0.1:9999/", false),
            (COMFY, "https://127.0.0.1:8188/", false),
            (COMFY, "http://127.0.0.2:8188/", false),
            (COMFY, "http://localhost:8188/", false),
            (COMFY, "http://169.254.169.254/latest/meta-data/", false),
            (COMFY, "http://2130706433:8188/", true),
            (COMFY, "http://2130706433:9999/", false),
            (COMFY, "http://127.1:8188/", true),
            (COMFY, "http://127.0.1:8188/", true),
            (COMFY, "http://0x7f000001:8188/", true),
            (COMFY, "http://0x7f.1:8188/", true),
            (COMFY, "http://0177.0.0.1:8188/", true),
            (COMFY, "http://0177.0.0.01:8188/", true),
            (COMFY, "http://127.0.0.1.:8188/", true),
            (COMFY, "http://[::ffff:127.0.0.1]:8188/", true),
            (COMFY, "http://[::ffff:7f00:1]:8188/", true),
            (COMFY, "http://[0:0:0:0:0:ffff:7f00:1]:8188/", true),
            (COMFY, "http://[::1]:8188/", false),
            (COMFY, "http://[::127.0.0.1]:8188/", false),
            (COMFY, "http://127.0.0.1:08188/", true),
            (COMFY, "http://127.0.0.1:73724/", false), // 73724 = 8188 + 65536
            (COMFY, "http://user@127.0.0.1:8188/", false),
            (COMFY, "http://127.0.0.1:8188@evil.com/", false),
            ("http://[::1]:8080", "http://[0:0:0:0:0:0:0:1]:8080/", true),
            ("http://[::ffff:127.0.0.1]:8188", "http://127.0.0.1:8188/", true),
            ("http://2130706433:8188", "http://127.0.0.1:8188/", true),
            ("http://h", "http://h:80/", true),
            ("http://h:80", "http://h/", true),
            ("https://h", "https://h:443/", true),
            ("https://h", "http://h:443/", false),
            ("http://h", "https://h/", false),
            ("http://h:", "http://h/", true),
            ("http://localhost:8188", "http://LOCALHOST:8188/", true),
            ("http://localhost:8188", "http://localhost.:8188/", true),
            ("http://Localhost.:8188", "http://localhost:8188/", true),
            ("http://localhost:8188", "http://localhost..:8188/", false),
            ("http://localhost:8188", "http://127.0.0.1:8188/", false),
            ("https://proxy.lan/comfy", "https://proxy.lan/ollama/api", true),
            ("https://proxy.lan/comfy", "https://proxy.lan:8443/comfy", false),
            ("http://169.254.169.254", "http://169.254.169.254/latest/", true),
        ] {
            let set = grants(&[("svc", grant)]);
            assert_eq!(check(&set, url).is_ok(), ok, "{grant} {url}: {:?}", check(&set, url));
        }
    }

    #[test]
    fn denial_reasons_and_closest() {
        let set = grants(&[("comfyui", COMFY), ("ollama", OLLAMA), ("web", "https://example.com")]);
        let comfy = Some(set.grants[0].clone());
        let web = Some(set.grants[2].clone());
        let invalid = |host: &str, error| DenialReason::InvalidHost { host: host.into(), error };
        for (url, want_url, want_reason, want_closest) in [
            ("http://127.0.0.1:9999/", "http://127.0.0.1:9999", DenialReason::NoGrantForPort, comfy.clone()),
            ("http://2130706433:9999/", "http://127.0.0.1:9999", DenialReason::NoGrantForPort, comfy.clone()),
            ("http://example.com/", "http://example.com:80", DenialReason::NoGrantForScheme, web.clone()),
            ("http://example.com:443/", "http://example.com:443", DenialReason::NoGrantForScheme, web.clone()),
            ("https://example.com:8443/", "https://example.com:8443", DenialReason::NoGrantForPort, web.clone()),
            ("https://127.0.0.1:8188/", "https://127.0.0.1:8188", DenialReason::NoGrantForScheme, comfy.clone()),
            ("http://169.254.169.254/", "http://169.254.169.254:80", DenialReason::NoGrantForHost, None),
            ("http://[::1]:8188/", "http://[::1]:8188", DenialReason::NoGrantForHost, None),
            ("http://user@127.0.0.1:8188/", "http://127.0.0.1:8188", DenialReason::UserInfo, None),
            ("http://127.0.0.1:8188@evil.com/", "http://evil.com:80", DenialReason::UserInfo, None),
            ("http://a@b@127.0.0.1:8188/", "http://127.0.0.1:8188", DenialReason::UserInfo, None),
            ("http://:@127.0.0.1:8188/", "http://127.0.0.1:8188", DenialReason::UserInfo, None),
            (
                "ftp://127.0.0.1:8188/",
                "ftp://127.0.0.1:8188",
                DenialReason::UnsupportedScheme { scheme: "ftp".into() },
                None,
            ),
            ("/relative", "/relative", DenialReason::MissingScheme, None),
            ("127.0.0.1:8188", "127.0.0.1:8188", DenialReason::MissingScheme, None),
            ("http://1.2.3.4.5/", "http://1.2.3.4.5:80", invalid("1.2.3.4.5", HostError::Ipv4), None),
            ("http://0x1g:8188/", "http://0x1g:8188", invalid("0x1g", HostError::Ipv4), None),
            ("http://256.1.1.1./", "http://256.1.1.1.:80", invalid("256.1.1.1.", HostError::Ipv4), None),
            (
                "http://[fe80::1%25eth0]/",
                "http://[fe80::1%25eth0]:80",
                invalid("[fe80::1%25eth0]", HostError::Ipv6),
                None,
            ),
            ("http://:8188/", "http://:8188", invalid("", HostError::Empty), None),
            (
                "http://127.0.0.1:99999/",
                "http://127.0.0.1:99999",
                DenialReason::InvalidPort { port: "99999".into() },
                None,
            ),
            (
                "http://127.0.0.1:+8188/",
                "http://127.0.0.1:+8188",
                DenialReason::InvalidPort { port: "+8188".into() },
                None,
            ),
        ] {
            let d = check(&set, url).expect_err(url);
            assert_eq!((d.url.as_str(), &d.reason, &d.closest), (want_url, &want_reason, &want_closest), "{url}");
            let lists_all = want_reason == DenialReason::NoGrantForHost;
            assert_eq!(d.granted.len(), if lists_all { 3 } else { 0 }, "{url}");
        }
    }

    #[test]
    fn no_grants_denies_everything() {
        let set = GrantSet::default();
        for url in ["http://127.0.0.1:8188/", "https://example.com/", "http://user@h/", "ftp://x/"] {
            assert_eq!(reason(&set, url), Some(DenialReason::NoGrants), "{url}");
        }
        let d = check(&set, "http://localhost/").unwrap_err();
        assert_eq!(d.to_string(), "refused http://localhost:80: the skill has no network grants");
    }

    #[test]
    fn targets() {
        let set = grants(&[("comfyui", COMFY), ("a", "https://proxy.lan/a"), ("b", "https://proxy.lan/b")]);
        let t = check(&set, "http://0x7f.1:8188/x").unwrap();
        assert_eq!(t.service, "comfyui");
        assert_eq!(t.socket_addr(), Some("127.0.0.1:8188".parse().unwrap()));
        assert_eq!(t.to_string(), "http://127.0.0.1:8188");
        let t = check(&set, "https://PROXY.lan./b").unwrap();
        assert_eq!((t.service.as_str(), t.to_string().as_str()), ("a", "https://proxy.lan:443"));
        assert_eq!(t.socket_addr(), None);
    }

    #[test]
    fn check_resolved_pins_and_blocks() {
        let set = grants(&[("nas", "http://nas.lan:8080"), ("comfyui", COMFY), ("meta", "http://169.254.169.254")]);
        let nas = check(&set, "http://NAS.lan:8080/").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let blocked = |addr: &str, kind| DenialReason::BlockedAddress { addr: ip(addr), kind };
        for (addrs, want) in [
            (&["192.168.1.10"][..], Ok("192.168.1.10:8080")),
            (&["127.0.0.1"], Ok("127.0.0.1:8080")),
            (&["::1"], Ok("[::1]:8080")),
            (&["169.254.169.254", "10.0.0.5"], Ok("10.0.0.5:8080")),
            (&["fe80::1", "0.0.0.0", "::", "fd00::5"], Ok("[fd00::5]:8080")),
            (&["::ffff:10.0.0.5"], Ok("10.0.0.5:8080")),
            (&["169.254.169.254"], Err(blocked("169.254.169.254", AddressKind::LinkLocal))),
            (&["::ffff:169.254.169.254"], Err(blocked("169.254.169.254", AddressKind::LinkLocal))),
            (&["fe80::1"], Err(blocked("fe80::1", AddressKind::LinkLocal))),
            (&["0.0.0.0", "169.254.0.1"], Err(blocked("0.0.0.0", AddressKind::Unspecified))),
            (&["::"], Err(blocked("::", AddressKind::Unspecified))),
            (&["224.0.0.1"], Err(blocked("224.0.0.1", AddressKind::Multicast))),
            (&["ff02::1"], Err(blocked("ff02::1", AddressKind::Multicast))),
            (&["255.255.255.255"], Err(blocked("255.255.255.255", AddressKind::Broadcast))),
            (&[], Err(DenialReason::Unresolved)),
        ] {
            let addrs: Vec<IpAddr> = addrs.iter().map(|a| ip(a)).collect();
            let got = set.check_resolved(&nas, &addrs).map_err(|d| d.reason);
            assert_eq!(got, want.map(|a| a.parse().unwrap()), "{addrs:?}");
        }

        // IP targets were checked against the user's own grant: no filtering.
        let meta = check(&set, "http://169.254.169.254/latest").unwrap();
        assert_eq!(set.check_resolved(&meta, &[]), Ok("169.254.169.254:80".parse().unwrap()));
        let comfy = check(&set, "http://127.1:8188/").unwrap();
        assert_eq!(set.check_resolved(&comfy, &[ip("10.9.9.9")]), Ok("127.0.0.1:8188".parse().unwrap()));

        // A hand-made target is checked again.
        let forged = Target { port: 22, ..nas.clone() };
        let d = set.check_resolved(&forged, &[ip("192.168.1.10")]).unwrap_err();
        assert_eq!(d.reason, DenialReason::NoGrantForPort);
        let d = GrantSet::default().check_resolved(&nas, &[ip("192.168.1.10")]).unwrap_err();
        assert_eq!(d.reason, DenialReason::NoGrants);
    }

    #[test]
    fn denial_messages() {
        let set = grants(&[("comfyui", COMFY), ("ollama", OLLAMA), ("nas", "http://nas.lan:8080/")]);
        for (url, shown) in [
            (
                "http://127.0.0.1:9999/",
                "refused http://127.0.0.1:9999: no grant for that port (comfyui = http://127.0.0.1:8188)",
            ),
            (
                "http://2130706433:9999/",
                "refused http://127.0.0.1:9999: no grant for that port (comfyui = http://127.0.0.1:8188)",
            ),
            (
                "http://169.254.169.254/latest/meta-data/",
                "refused http://169.254.169.254:80: no grant for that host \
                 (granted: comfyui = http://127.0.0.1:8188, ollama = http://127.0.0.1:11434, nas = http://nas.lan:8080/)",
            ),
            (
                "https://127.0.0.1:11434/",
                "refused https://127.0.0.1:11434: no grant for that scheme (ollama = http://127.0.0.1:11434)",
            ),
            (
                "http://127.0.0.1:8188@evil.com/",
                "refused http://evil.com:80: URLs with user info (user@host) are never allowed",
            ),
            (
                "http://0x1g:8188/",
                "refused http://0x1g:8188: invalid host \"0x1g\": it looks like an IPv4 address but is not a valid one",
            ),
            ("gopher://nas.lan/", "refused gopher://nas.lan: scheme \"gopher\" is not http or https"),
        ] {
            assert_eq!(check(&set, url).unwrap_err().to_string(), shown, "{url}");
        }
        let nas = check(&set, "http://nas.lan:8080/").unwrap();
        let d = set.check_resolved(&nas, &["169.254.169.254".parse().unwrap()]).unwrap_err();
        assert_eq!(
            d.to_string(),
            "refused http://nas.lan:8080: it resolves to 169.254.169.254, a link-local address, \
             which is never reached through a name"
        );
    }
}
