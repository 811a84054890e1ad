//! Property tests of the URL and IP parsing every outgoing request goes
//! through: whatever bytes a skill puts in a URL, the policy never panics,
//! and every spelling of a granted address is that address — and only that
//! address on that port. Bounded, so they run in `cargo test`; `fuzz/` has
//! the unbounded cargo-fuzz targets of the same functions.

use c41_policy::{GrantSet, Host, normalize_host};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr};

/// The `inet_aton` spellings of one IPv4 address that a resolver would
/// accept: 1 to 4 parts, each in decimal, octal or hex.
fn spellings(ip: Ipv4Addr) -> Vec<String> {
    let [a, b, c, d] = ip.octets().map(u32::from);
    let n = u32::from(ip);
    let forms: [fn(u32) -> String; 3] = [|x| x.to_string(), |x| format!("0{x:o}"), |x| format!("0x{x:x}")];
    let mut out = Vec::new();
    for f in forms {
        out.push(f(n));
        out.push(format!("{}.{}", f(a), f(n & 0xff_ffff)));
        out.push(format!("{}.{}.{}", f(a), f(b), f((c << 8) | d)));
        out.push(format!("{}.{}.{}.{}", f(a), f(b), f(c), f(d)));
    }
    out.push(format!("[::ffff:{ip}]"));
    out.push(format!("[::ffff:{:x}:{:x}]", n >> 16, n & 0xffff));
    out
}

fn uri(s: &str) -> Option<http::Uri> {
    s.parse().ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Every spelling normalises to the same address.
    #[test]
    fn every_spelling_of_an_ipv4_address_is_that_address(raw in any::<u32>()) {
        let ip = Ipv4Addr::from(raw);
        for s in spellings(ip) {
            prop_assert_eq!(normalize_host(&s), Ok(Host::Ip(IpAddr::V4(ip))), "{}", s);
        }
    }

    /// A grant allows its address in any spelling, on its port only, and no
    /// other address.
    #[test]
    fn a_grant_allows_exactly_its_address_and_port(
        granted in any::<u32>(),
        other in any::<u32>(),
        port in 1u16..,
        other_port in 1u16..,
    ) {
        let ip = Ipv4Addr::from(granted);
        let set = GrantSet::parse([("svc", format!("http://{ip}:{port}"))]).unwrap();
        for s in spellings(ip) {
            let Some(u) = uri(&format!("http://{s}:{port}/x")) else { continue };
            let t = set.check(&u);
            prop_assert!(t.is_ok(), "{} should pass: {:?}", u, t);
            if other_port != port {
                let u = uri(&format!("http://{s}:{other_port}/x")).unwrap();
                prop_assert!(set.check(&u).is_err(), "{} must be refused (another port)", u);
            }
            let u = uri(&format!("https://{s}:{port}/x")).unwrap();
            prop_assert!(set.check(&u).is_err(), "{} must be refused (another scheme)", u);
        }
        if other != granted {
            for s in spellings(Ipv4Addr::from(other)) {
                let Some(u) = uri(&format!("http://{s}:{port}/")) else { continue };
                prop_assert!(set.check(&u).is_err(), "{} must be refused (another address)", u);
            }
        }
    }

    /// Arbitrary host strings: an answer, never a panic; a name that comes
    /// back is lowercase, has no trailing dot, and normalises to itself.
    #[test]
    fn normalize_host_never_panics_and_is_idempotent(s in "\\PC{0,80}") {
        if let Ok(Host::Name(n)) = normalize_host(&s) {
            prop_assert!(!n.ends_with('.') && n == n.to_ascii_lowercase(), "{}", n);
            prop_assert_eq!(normalize_host(&n), Ok(Host::Name(n.clone())));
        }
    }

    /// Arbitrary URLs (anything `http::Uri` accepts, as the wasi:http layer
    /// hands them over): a decision, never a panic; user info never passes.
    #[test]
    fn check_never_panics_and_never_passes_userinfo(
        scheme in "(http|https|ws|ftp)",
        authority in "[a-z0-9.:@\\[\\]%_-]{0,40}",
        path in "(/[a-z0-9%?=&]{0,10}){0,3}",
    ) {
        let set = GrantSet::parse([("a", "http://127.0.0.1:8188"), ("b", "https://forge.lan")]).unwrap();
        if let Some(u) = uri(&format!("{scheme}://{authority}{path}")) {
            let r = set.check(&u);
            if authority.contains('@') {
                prop_assert!(r.is_err(), "{} passed with user info", u);
            }
            if let Ok(t) = r {
                prop_assert!(t.service == "a" || t.service == "b");
            }
        }
    }
}
