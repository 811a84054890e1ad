//! Any URL a skill can build: the policy decides, never panics, and never
//! lets user info through.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let _ = c41_policy::normalize_host(s);
    let set = c41_policy::GrantSet::parse([("a", "http://127.0.0.1:8188"), ("b", "https://forge.lan")]).unwrap();
    if let Ok(uri) = s.parse::<http::Uri>() {
        let r = set.check(&uri);
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            assert!(r.is_err(), "{uri} passed with user info");
        }
    }
});
