//! Any config text: a config or an error that points inside the file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(c41::config::ConfigError::Invalid { line, .. }) = c41::config::parse(text, std::path::Path::new("/c41.toml")) {
        assert!(line >= 1 && line <= text.lines().count().max(1));
    }
});
