//! `c41 openclaw install` against a real OpenClaw: the installer edits the
//! config OpenClaw reads (keeping the user's other keys, refusing an entry
//! it did not write), writes the SKILL.md folders, and then a real agent run
//! through that config calls a c41 tool and delivers its image.

use crate::common::cache_dir;
use crate::openclaw::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Output;

/// `c41 --config CFG openclaw install ARGS` with HOME = `home`.
fn install(home: &Path, cfg: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_c41"))
        .arg("--config")
        .arg(cfg)
        .args(["openclaw", "install"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("C41_CACHE_DIR", cache_dir())
        .output()
        .unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openclaw_install_sets_up_a_real_openclaw_in_one_command() {
    let Some(oc) = openclaw_setup() else { return };
    let _one_at_a_time = AGENT.lock().await;
    let Scene { studio: _studio, dir, workspace, out_dir, cfg } = Scene::new().await;

    let model = FakeModel::start(red_fox()).await;

    // The user's OpenClaw config: a model, another MCP server, and someone
    // else's `c41` entry.
    let home = dir.path().join("home");
    let config = write_openclaw_config(
        &home,
        model.addr,
        json!({"other": {"command": "/bin/true"}, "c41": {"url": "https://example.invalid/mcp"}}),
    );
    let before = read_json(&config);
    let refused = tokio::task::spawn_blocking({
        let (home, cfg, workspace) = (home.clone(), cfg.clone(), workspace.clone());
        move || install(&home, &cfg, &["--both", "--workspace", workspace.to_str().unwrap()])
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("mcp.servers.c41") && stderr.contains("--force"), "{stderr}");
    assert_eq!(read_json(&config), before, "a refused install leaves the config as it was");

    let done = tokio::task::spawn_blocking({
        let (home, cfg, workspace) = (home.clone(), cfg.clone(), workspace.clone());
        move || install(&home, &cfg, &["--both", "--force", "--workspace", workspace.to_str().unwrap()])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&done.stdout).into_owned();
    assert!(done.status.success(), "{stdout}{}", String::from_utf8_lossy(&done.stderr));
    assert!(stdout.contains(&format!("mcp.servers.c41 in {}", config.display())), "it says what it did: {stdout}");
    let skill_md = workspace.join("skills/comfyui-image/SKILL.md");
    assert!(stdout.contains(&skill_md.display().to_string()), "{stdout}");
    assert!(skill_md.is_file());

    // The entry OpenClaw reads, and every other key as it was.
    let after = read_json(&config);
    let entry = &after["mcp"]["servers"]["c41"];
    assert_eq!(
        PathBuf::from(entry["command"].as_str().unwrap()).canonicalize().unwrap(),
        Path::new(env!("CARGO_BIN_EXE_c41")).canonicalize().unwrap()
    );
    assert_eq!(entry["args"], json!(["mcp", "--config", cfg.canonicalize().unwrap()]), "{entry}");
    assert!(entry["requestTimeoutMs"].as_u64().unwrap() >= 3_600_000, "{entry}");
    assert_eq!(entry["env"]["C41_CACHE_DIR"], json!(cache_dir()), "the server uses the installer's cache");
    assert_eq!(after["mcp"]["servers"]["other"], before["mcp"]["servers"]["other"]);
    for key in ["agents", "models", "tools"] {
        assert_eq!(after[key], before[key], "{key} is kept");
    }

    // Again: nothing to change, and it says so.
    let again = tokio::task::spawn_blocking({
        let (home, cfg) = (home.clone(), cfg.clone());
        move || install(&home, &cfg, &[])
    })
    .await
    .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).starts_with("unchanged mcp.servers.c41"), "{again:?}");
    assert_eq!(read_json(&config), after);

    // A real agent run through what the installer wrote.
    let run = run_agent(&oc, &home, &config, &workspace, "Make an image of a red fox", None).await;
    let requests = model.requests();
    let first = requests.first().unwrap_or_else(|| panic!("OpenClaw never called the model\n{}", run.logs()));
    assert!(tool_names(first).iter().any(|n| n == "c41__comfyui-image"), "{:?}", tool_names(first));
    let (called, result) = requests
        .iter()
        .find_map(last_tool_result)
        .unwrap_or_else(|| panic!("no tool result reached the model\n{}", run.logs()));
    assert_eq!(called, "c41__comfyui-image");
    let media = media_lines(&result);
    assert_eq!(media.len(), 1, "{result}");
    let png = PathBuf::from(media[0].strip_prefix("MEDIA:").unwrap());
    assert_eq!(run.code, Some(0), "openclaw agent exec exits 0\n{}", run.logs());
    assert_eq!(run.envelope["ok"], true, "{:#}", run.envelope);
    assert_eq!(delivered_media(&run.envelope), vec![png.display().to_string()], "{:#}", run.envelope);
    assert_real_png(&png, &out_dir);
}
