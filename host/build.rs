//! Builds the guest components (the built-in skills, the starter example and
//! the test guests) for `wasm32-wasip2` with a nested cargo, and generates
//! `guests.rs`, which embeds the built-in ones in the `c41` binary.
//!
//! The nested cargo gets its own target directory: sharing the outer one
//! would wait forever on cargo's build lock.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates compiled into the binary as built-in skills: (package, file stem).
const BUILTIN: &[&str] =
    &["hello-http", "llm-route", "comfyui-image", "comfyui-video", "tts", "audio-gen", "lip-sync", "lora-train"];
/// Crates only the tests load.
const TEST_GUESTS: &[&str] = &["runaway", "escape", "hostile", "impostor", "forger", "describe-hog", "old-wit"];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    for watched in ["wit", "skills", "examples", "tests/guests", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=C41_GUEST_PROFILE");
    // The version of the c41:skill package the host implements.
    let wit = std::fs::read_to_string(root.join("wit/skill.wit")).unwrap();
    let version = wit
        .lines()
        .find_map(|l| l.trim().strip_prefix("package c41:skill@")?.strip_suffix(';'))
        .expect("wit/skill.wit declares `package c41:skill@X.Y.Z;`");
    println!("cargo:rustc-env=C41_WIT_VERSION={version}");

    let target_dir =
        env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target")).join("wasm-guests");
    let profile = env::var("C41_GUEST_PROFILE").unwrap_or_else(|_| "release".into());

    ensure_wasm_target();
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--target", "wasm32-wasip2", "--profile", &profile, "--target-dir"])
        .arg(&target_dir);
    for pkg in BUILTIN.iter().chain(TEST_GUESTS) {
        cmd.args(["-p", pkg]);
    }
    // Flags meant for the host build must not leak into the guest build.
    for var in
        ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "CARGO_BUILD_RUSTFLAGS"]
    {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo to build the guest components");
    if !status.success() {
        panic!(
            "building the wasm32-wasip2 guest components failed (is the target installed? `rustup target add wasm32-wasip2`)"
        );
    }

    let out_profile = if profile == "dev" { "debug" } else { &profile };
    let wasm_dir = target_dir.join("wasm32-wasip2").join(out_profile);
    let path_of = |pkg: &str| -> PathBuf {
        let p = wasm_dir.join(format!("{}.wasm", pkg.replace('-', "_")));
        assert!(p.exists(), "guest component {} was not built", p.display());
        p
    };

    // The built-ins are embedded from copies in OUT_DIR, hashed there: the
    // bytes and the recorded hash then come from the same file, whatever
    // later rebuilds the nested target directory.
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let embedded = |pkg: &str| -> PathBuf {
        let bytes = std::fs::read(path_of(pkg)).unwrap();
        let copy = out_dir.join(format!("{}.wasm", pkg.replace('-', "_")));
        if std::fs::read(&copy).ok().as_deref() != Some(&bytes[..]) {
            std::fs::write(&copy, &bytes).unwrap();
        }
        copy
    };
    let builtins: Vec<(&str, PathBuf)> = BUILTIN.iter().map(|pkg| (*pkg, embedded(pkg))).collect();
    let mut code = String::new();
    code.push_str("/// The built-in skills, compiled to components: (crate name, bytes, hex\n");
    code.push_str("/// SHA-256 of the bytes, so that a start need not hash them).\n");
    code.push_str("pub const BUILTIN: &[(&str, &[u8], &str)] = &[\n");
    for (pkg, path) in &builtins {
        let sha256 = hex_sha256(&std::fs::read(path).unwrap());
        writeln!(code, "    ({pkg:?}, include_bytes!({:?}), {sha256:?}),", path.display().to_string()).unwrap();
    }
    code.push_str("];\n");
    code.push_str("/// Paths of the built components the tests load: (crate name, path).\n");
    code.push_str("pub const TEST_GUESTS: &[(&str, &str)] = &[\n");
    for pkg in TEST_GUESTS {
        writeln!(code, "    ({pkg:?}, {:?}),", path_of(pkg).display().to_string()).unwrap();
    }
    for (pkg, path) in &builtins {
        writeln!(code, "    ({pkg:?}, {:?}),", path.display().to_string()).unwrap();
    }
    code.push_str("];\n");
    let out = out_dir.join("guests.rs");
    std::fs::write(&out, code).unwrap();
}

/// rustup installs the targets listed in rust-toolchain.toml only when it
/// installs the toolchain itself; on a machine that already had 1.95 the
/// target may be missing. Add it, so `cargo build` works on a fresh clone.
fn ensure_wasm_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc).args(["--print", "target-libdir", "--target", "wasm32-wasip2"]).output();
    let installed = libdir
        .ok()
        .filter(|o| o.status.success())
        .map(|o| Path::new(String::from_utf8_lossy(&o.stdout).trim()).exists())
        .unwrap_or(false);
    if installed {
        return;
    }
    println!("cargo:warning=installing the wasm32-wasip2 target with rustup (needed to build the skills)");
    let ok =
        Command::new("rustup").args(["target", "add", "wasm32-wasip2"]).status().map(|s| s.success()).unwrap_or(false);
    if !ok {
        panic!(
            "the wasm32-wasip2 target is missing and `rustup target add wasm32-wasip2` failed; install it and build again"
        );
    }
}

/// Lowercase hex SHA-256, as `c41` writes pins.
fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
