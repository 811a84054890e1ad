//! Property tests of config loading: whatever a user (or a tool editing
//! the file) writes, `parse` answers with a config or an error that points
//! inside the file, never a panic. Bounded, so they run in `cargo test`;
//! `fuzz/` has the unbounded cargo-fuzz target.

use super::*;
use proptest::prelude::*;

/// Config-shaped TOML: the real sections and keys, with values of every
/// type and extreme numbers, plus some unknown keys.
fn config_text() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0u64..u64::MAX).prop_map(|n| n.to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "\\PC{0,24}".prop_map(|s| format!("{s:?}")),
        Just("\"http://127.0.0.1:8188\"".to_string()),
        Just("\"http://forge.local:8188/comfy\"".to_string()),
        Just("\"ftp://x\"".to_string()),
        Just("[\"comfyui\", \"ollama\"]".to_string()),
        Just("{ X-Api-Key = \"k\" }".to_string()),
        Just("[]".to_string()),
    ];
    let section = prop_oneof![
        Just(""),
        Just("[services.comfyui]"),
        Just("[services.ollama]"),
        Just("[services.web]"),
        Just("[limits]"),
        Just("[skills.comfyui-image]"),
        Just("[skills.comfyui-image.limits]"),
        Just("[skills.comfyui-image.settings]"),
        Just("[skills.llm-route]"),
        Just("[inputs]"),
    ];
    let key = prop_oneof![
        Just("url"),
        Just("kind"),
        Just("token"),
        Just("token-env"),
        Just("headers"),
        Just("grants"),
        Just("memory-mb"),
        Just("timeout-secs"),
        Just("max-artifact-mb"),
        Just("output-dir"),
        Just("allow-dirs"),
        Just("workflow"),
        Just("component"),
        Just("bogus"),
    ];
    prop::collection::vec((section, prop::collection::vec((key, value), 0..4)), 0..6).prop_map(|sections| {
        let mut text = String::new();
        for (section, entries) in sections {
            text.push_str(section);
            text.push('\n');
            for (k, v) in entries {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_config_text_gets_a_config_or_an_error_inside_the_file(text in prop_oneof![config_text(), "\\PC{0,200}"]) {
        let lines = text.lines().count().max(1);
        match parse(&text, Path::new("/etc/c41/c41.toml")) {
            Ok(loaded) => {
                for skill in loaded.config.skills.keys() {
                    let _ = loaded.limits_for(skill);
                    let _ = loaded.settings_for(skill);
                    let _ = loaded.granted_services(skill);
                }
            }
            Err(ConfigError::Invalid { line, key, .. }) => {
                prop_assert!(line >= 1 && line <= lines, "line {} of {} for `{}`:\n{}", line, lines, key, text);
                prop_assert!(!key.is_empty());
            }
            Err(ConfigError::Parse { message, .. }) => prop_assert!(!message.is_empty()),
            Err(e) => prop_assert!(false, "unexpected error kind: {e}"),
        }
    }
}
