//! Hosts as the network sees them, not as they are spelled.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Where a URL points once its spelling is normalised.
///
/// Grants and requests are both turned into a `Host` before they are compared,
/// so `127.0.0.1`, `2130706433` and `[::ffff:7f00:1]` are one and the same
/// host and a skill cannot walk around a grant by respelling it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IP literal. IPv4-mapped IPv6 addresses are stored as IPv4, because
    /// that is where a connection to them ends up.
    Ip(IpAddr),
    /// A DNS name, lowercased and without a trailing dot. The host resolves
    /// it and asks [`crate::GrantSet::check_resolved`] which address to use.
    Name(String),
}

impl fmt::Display for Host {
    /// Prints the host as it would appear in a URL (IPv6 in brackets), so a
    /// `Host` can be pasted between `scheme://` and `:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// Why a host string is neither an IP literal nor a usable DNS name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Nothing to connect to.
    #[error("the host is empty")]
    Empty,
    /// Grants name single hosts; a pattern would be a silent widening.
    #[error("wildcards are not allowed")]
    Wildcard,
    /// The resolver would read it as an IPv4 address (or fail to), so it
    /// cannot be treated as a name either.
    #[error("it looks like an IPv4 address but is not a valid one")]
    Ipv4,
    /// Bracketed, so it can only be an IPv6 address; zone ids are refused.
    #[error("it is not a valid IPv6 address")]
    Ipv6,
    /// Anything a resolver might interpret in surprising ways.
    #[error("it is not a valid host name")]
    Name,
}

/// Turns a URL host (IPv6 in brackets) into the [`Host`] it denotes.
///
/// IPv4 is parsed the way `inet_aton` (and so `getaddrinfo`) parses it, with
/// one to four parts in decimal, octal or hex, because that is how the
/// address would be read if the string reached a resolver. A host whose last
/// label is numeric (all digits, or `0x…`) is taken to be an IPv4 literal and
/// refused if it is not a valid one, rather than sent to DNS.
pub fn normalize_host(s: &str) -> Result<Host, HostError> {
    if s.is_empty() {
        return Err(HostError::Empty);
    }
    if s.contains('*') {
        return Err(HostError::Wildcard);
    }
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(HostError::Ipv6)?;
        let ip: Ipv6Addr = inner.parse().map_err(|_| HostError::Ipv6)?;
        return Ok(Host::Ip(canonical_ip(IpAddr::V6(ip))));
    }
    let lower = s.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() {
        return Err(HostError::Empty);
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    let numeric = last.starts_with("0x") || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()));
    if numeric {
        return parse_inet_aton(name).map(|ip| Host::Ip(IpAddr::V4(ip))).ok_or(HostError::Ipv4);
    }
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(HostError::Name);
    }
    Ok(Host::Name(name.to_string()))
}

/// IPv4-mapped IPv6 addresses reach the IPv4 host, so they compare as IPv4.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// `inet_aton`: `a.b.c.d`, `a.b.c` (c is 16 bits), `a.b` (b is 24 bits) or
/// `a` (32 bits); each part decimal, `0`-prefixed octal or `0x` hex.
fn parse_inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<u32> = s.split('.').map(parse_inet_part).collect::<Option<_>>()?;
    let (last, leading) = parts.split_last()?;
    if leading.len() > 3 || leading.iter().any(|&p| p > 255) {
        return None;
    }
    let last_bits = 32 - 8 * leading.len() as u32;
    if last_bits < 32 && *last >= 1 << last_bits {
        return None;
    }
    let high = leading.iter().enumerate().fold(0u32, |acc, (i, &p)| acc | (p << (24 - 8 * i)));
    Some(Ipv4Addr::from(high | last))
}

fn parse_inet_part(p: &str) -> Option<u32> {
    let (digits, radix) = if let Some(hex) = p.strip_prefix("0x") {
        (hex, 16)
    } else if p.len() > 1 && p.starts_with('0') {
        (&p[1..], 8)
    } else {
        (p, 10)
    };
    // `from_str_radix` alone would accept a sign; `0x` alone is refused too.
    if digits.is_empty() || !digits.bytes().all(|b| (b as char).is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Host {
        Host::Ip(s.parse().unwrap())
    }
    fn name(s: &str) -> Host {
        Host::Name(s.into())
    }

    #[test]
    fn spellings_normalise() {
        let lo = v4("127.0.0.1");
        for (input, want) in [
            ("127.0.0.1", lo.clone()),
            ("2130706433", lo.clone()),
            ("127.1", lo.clone()),
            ("127.0.1", lo.clone()),
            ("0x7f000001", lo.clone()),
            ("0X7F000001", lo.clone()),
            ("0x7f.1", lo.clone()),
            ("0177.0.0.1", lo.clone()),
            ("0177.0x0.0.01", lo.clone()),
            ("127.0.0.1.", lo.clone()),
            ("[::ffff:127.0.0.1]", lo.clone()),
            ("[::ffff:7f00:1]", lo.clone()),
            ("[0:0:0:0:0:ffff:7f00:0001]", lo.clone()),
            ("0", v4("0.0.0.0")),
            ("4294967295", v4("255.255.255.255")),
            ("169.254.169.254", v4("169.254.169.254")),
            ("0xa9fea9fe", v4("169.254.169.254")),
            ("[::1]", Host::Ip("::1".parse().unwrap())),
            ("[0:0:0:0:0:0:0:1]", Host::Ip("::1".parse().unwrap())),
            ("[FE80::1]", Host::Ip("fe80::1".parse().unwrap())),
            ("localhost", name("localhost")),
            ("localhost.", name("localhost")),
            ("ComfyUI.LAN", name("comfyui.lan")),
            ("my_box-1.lan.", name("my_box-1.lan")),
            ("1password.com", name("1password.com")),
            ("3dprinter", name("3dprinter")),
        ] {
            assert_eq!(normalize_host(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn bad_hosts_are_refused() {
        for (input, want) in [
            ("", HostError::Empty),
            (".", HostError::Empty),
            ("*.lan", HostError::Wildcard),
            ("*", HostError::Wildcard),
            ("1.2.3.4.5", HostError::Ipv4),
            ("0x1g", HostError::Ipv4),
            ("256.1.1.1.", HostError::Ipv4),
            ("1.2.3.256", HostError::Ipv4),
            ("1.2.65536", HostError::Ipv4),
            ("1.16777216", HostError::Ipv4),
            ("4294967296", HostError::Ipv4),
            ("08", HostError::Ipv4),
            ("0x", HostError::Ipv4),
            ("1..1", HostError::Ipv4),
            ("+1", HostError::Name),
            ("a/b", HostError::Name),
            ("foo.0x", HostError::Ipv4),
            ("[::1", HostError::Ipv6),
            ("[1.2.3.4]", HostError::Ipv6),
            ("[fe80::1%25eth0]", HostError::Ipv6),
            ("::1", HostError::Name),
            ("a..b", HostError::Name),
            ("localhost..", HostError::Name),
            ("h%41", HostError::Name),
            ("bücher.de", HostError::Name),
        ] {
            assert_eq!(normalize_host(input), Err(want), "{input:?}");
        }
    }

    #[test]
    fn display_is_url_form() {
        for (input, shown) in [("[::1]", "[::1]"), ("0x7f.1", "127.0.0.1"), ("Box.LAN.", "box.lan")] {
            assert_eq!(normalize_host(input).unwrap().to_string(), shown, "{input}");
        }
    }
}
