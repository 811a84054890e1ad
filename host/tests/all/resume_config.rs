//! `c41 resume` runs a run again with the config that run used, found in the
//! run journal, so the plain `c41 resume <id>` SKILL.md and `c41 runs`
//! suggest works from a bare shell; a config that is gone is reported as
//! missing, not as a grant error.

use crate::common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// `c41` in a bare environment: no C41_CONFIG, a HOME with no default
/// config, its own run journal.
fn c41(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_c41"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("C41_CACHE_DIR", cache_dir())
        .env("C41_STATE_DIR", home.join("state"))
        .output()
        .unwrap()
}

fn config(port: u16, out: &Path) -> String {
    format!(
        "output-dir = {:?}\n[services.web]\nurl = \"http://127.0.0.1:{port}\"\nkind = \"http\"\n[skills.hello-http]\ngrants = [\"web\"]\n",
        out.display().to_string()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_uses_the_config_the_run_used_and_reports_a_missing_one() {
    let (addr, seen) = serve().await;
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("my configs");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("c41.toml");
    // First the service is down: the run fails.
    std::fs::write(&cfg, config(closed_port(), &home.path().join("out"))).unwrap();
    let home_path = home.path().to_path_buf();
    let (first, runs) = tokio::task::spawn_blocking(move || {
        let first = c41(&home_path, &["--config", cfg.to_str().unwrap(), "run", "hello-http", "path=/hello.txt"]);
        // The service is back, at another address the same config file now names.
        std::fs::write(&cfg, config(addr.port(), &home_path.join("out"))).unwrap();
        (first, c41(&home_path, &["runs", "--json"]))
    })
    .await
    .unwrap();
    assert_eq!(first.status.code(), Some(1), "{}", String::from_utf8_lossy(&first.stderr));
    let runs: Value = serde_json::from_slice(&runs.stdout).unwrap();
    let run = &runs[0];
    assert_eq!(run["status"], "failed");
    let cfg = dir.join("c41.toml");
    assert_eq!(run["config"], cfg.canonicalize().unwrap().display().to_string());
    let id = run["id"].as_str().unwrap().to_string();

    // The config is gone: resume says so (exit 2), not "no http service is granted".
    let aside = dir.join("c41.toml.aside");
    std::fs::rename(&cfg, &aside).unwrap();
    let home_path = home.path().to_path_buf();
    let resumed = tokio::task::spawn_blocking({
        let id = id.clone();
        move || c41(&home_path, &["resume", &id[..8]])
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("which is missing now") && stderr.contains(run["config"].as_str().unwrap()), "{stderr}");
    assert!(!stderr.contains("granted"), "{stderr}");
    assert!(seen.paths.lock().unwrap().is_empty());

    // Back again. No --config, no C41_CONFIG: the journal's config grants
    // the service, and the run finishes.
    std::fs::rename(&aside, &cfg).unwrap();
    let home_path = home.path().to_path_buf();
    let resumed = tokio::task::spawn_blocking(move || c41(&home_path, &["resume", &id[..8]])).await.unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("MEDIA:"), "{stderr}");
    assert_eq!(seen.paths.lock().unwrap().as_slice(), ["/hello.txt"]);
}
