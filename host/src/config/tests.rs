use super::*;

fn parse_str(text: &str) -> Result<LoadedConfig, ConfigError> {
    parse(text, Path::new("/etc/c41/c41.toml"))
}

#[test]
fn starter_config_parses_and_grants() {
    let loaded = parse_str(&starter_config("/tmp/out")).expect("starter config must parse");
    assert_eq!(loaded.output_dir(), PathBuf::from("/tmp/out"));
    assert_eq!(loaded.granted_services("comfyui-image"), vec!["comfyui"]);
    let (granted, ignored) = loaded.effective_grants("comfyui-image", &["comfyui".to_string()]);
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0].url, "http://forge.local:8188");
    assert!(ignored.is_empty());
    assert_eq!(loaded.limits_for("comfyui-video").timeout, Duration::from_secs(3600));
    assert_eq!(loaded.limits_for("comfyui-image").timeout, Duration::from_secs(1800));
}

#[test]
fn errors_name_file_line_and_key() {
    let cases = [
        (
            "[services.comfyui]\nurl = \"http://a:1\"\nport = 3\n",
            vec!["/etc/c41/c41.toml", "line 3", "unknown field `port`"],
        ),
        (
            "[services.comfyui]\nurl = \"http://a:1\"\n\n[skills.x]\ngrants = [\"ollama\"]\n",
            vec!["/etc/c41/c41.toml:5", "skills.x.grants", "`ollama`", "known: comfyui"],
        ),
        ("[services.comfyui]\nurl = \"ftp://a:1\"\n", vec!["/etc/c41/c41.toml:2", "services.comfyui.url", "ftp://a:1"]),
        ("[services.forge]\nurl = \"http://a:1\"\n", vec!["/etc/c41/c41.toml:2", "services.forge.kind", "set `kind`"]),
        ("[limits]\nmemory-mb = \"lots\"\n", vec!["line 2", "memory-mb"]),
    ];
    for (text, needles) in cases {
        let err = parse_str(text).expect_err(text).to_string();
        for n in needles {
            assert!(err.contains(n), "error for {text:?} should contain {n:?}, got: {err}");
        }
    }
}

#[test]
fn kinds_are_inferred_from_names() {
    let loaded = parse_str(
        "[services.comfyui-2]\nurl = \"http://b:8188\"\n[services.my-llm]\nurl = \"http://c:1\"\nkind = \"openai\"\n",
    )
    .unwrap();
    assert_eq!(loaded.config.services["comfyui-2"].kind(), "comfyui");
    assert_eq!(loaded.config.services["my-llm"].kind(), "openai");
}

#[test]
fn grants_are_capped_by_what_the_skill_declares() {
    let loaded = parse_str(
        "[services.ollama]\nurl = \"http://127.0.0.1:11434\"\n[services.comfyui]\nurl = \"http://127.0.0.1:8188\"\n\
         [skills.s]\ngrants = [\"ollama\", \"comfyui\"]\n",
    )
    .unwrap();
    let (granted, ignored) = loaded.effective_grants("s", &["comfyui".to_string()]);
    assert_eq!(granted.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), vec!["comfyui"]);
    assert_eq!(ignored, vec!["ollama"]);
    let (none, _) = loaded.effective_grants("unknown-skill", &["comfyui".to_string()]);
    assert!(none.is_empty(), "a skill the config does not name gets nothing");
}

#[test]
fn tokens_become_headers_the_skill_never_sees() {
    let loaded = parse_str("[services.comfyui]\nurl = \"http://a:1\"\ntoken = \"s3cret\"\n").unwrap();
    assert_eq!(
        loaded.config.services["comfyui"].auth_headers(),
        vec![("authorization".to_string(), "Bearer s3cret".to_string())]
    );
}

#[test]
fn relative_paths_resolve_against_the_config_file() {
    let loaded = parse_str("output-dir = \"out\"\n").unwrap();
    assert_eq!(loaded.output_dir(), PathBuf::from("/etc/c41/out"));
}

#[test]
fn shipped_example_configs_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/configs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            load(Some(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 1, "examples/configs has configs");
}

#[test]
fn limits_and_headers_are_checked_at_load_with_file_line_and_key() {
    let cases = [
        ("[limits]\ntimeout-secs = 9223372036854775807\n", vec!["c41.toml:2", "limits.timeout-secs", "out of range"]),
        ("[limits]\nmemory-mb = 17592186044416\n", vec!["c41.toml:2", "limits.memory-mb", "1 to 65536 MiB"]),
        ("[skills.x.limits]\n\nopen-files = 0\n", vec!["c41.toml:3", "skills.x.limits.open-files"]),
        ("[limits]\nconnections = 100000\n", vec!["c41.toml:2", "limits.connections"]),
        ("[limits]\nmax-output-mb = 0\n", vec!["c41.toml:2", "limits.max-output-mb"]),
        (
            "[services.comfyui]\nurl = \"http://a:1\"\ntoken = \"abc\\ndef\"\n",
            vec!["c41.toml:3", "services.comfyui.token", "not a valid HTTP header value"],
        ),
        (
            "[services.comfyui]\nurl = \"http://a:1\"\nheaders = { X-Key = \"a\\u0007b\" }\n",
            vec!["c41.toml:3", "services.comfyui.headers.X-Key", "not a valid HTTP header value"],
        ),
        (
            "[services.comfyui]\nurl = \"http://a:1\"\nheaders = { \"bad name\" = \"v\" }\n",
            vec!["c41.toml:3", "not a valid HTTP header name"],
        ),
    ];
    for (text, needles) in cases {
        let err = parse_str(text).expect_err(text).to_string();
        for n in needles {
            assert!(err.contains(n), "error for {text:?} should contain {n:?}, got: {err}");
        }
    }
    let ok = parse_str("[limits]\ntimeout-secs = 604800\nmemory-mb = 65536\nopen-files = 4096\n").unwrap();
    assert_eq!(ok.limits_for("x").memory_bytes, 65536 << 20);
}

#[test]
fn inputs_allow_resolves_relative_to_the_config_and_allow_dirs_still_works() {
    for key in ["allow", "allow-dirs"] {
        let loaded = parse_str(&format!("[inputs]\n{key} = [\"pictures\", \"/srv/in\"]\n")).expect(key);
        assert_eq!(
            loaded.config.inputs.allow,
            vec![PathBuf::from("/etc/c41/pictures"), PathBuf::from("/srv/in")],
            "{key}"
        );
    }
}

#[test]
fn answer_within_defaults_to_45_s_and_is_range_checked() {
    assert_eq!(parse_str("").unwrap().config.mcp.answer_within(), Duration::from_secs(45));
    let set = parse_str("[mcp]\nanswer-within-secs = 5\n").unwrap();
    assert_eq!(set.config.mcp.answer_within(), Duration::from_secs(5));
    let e = parse_str("output-dir = \"/o\"\n[mcp]\nanswer-within-secs = 0\n").unwrap_err().to_string();
    for part in ["/etc/c41/c41.toml:3", "mcp.answer-within-secs", "1 to 3600"] {
        assert!(e.contains(part), "{e}");
    }
}
