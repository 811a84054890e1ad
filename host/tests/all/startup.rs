//! A warm start: built-in skills are described without compiling them, and
//! any other component is described once, under the configured limits, with
//! the answer (a failure included) cached beside its compiled code.

use crate::common::guest;
use c41::config::Limits;
use c41::runtime::describe::{self, DescribeRecord};
use c41::runtime::{LoadError, Origin, Runtime, RuntimeOptions};
use std::time::Duration;

/// The description read from a built-in's custom section is exactly what
/// the component's own `describe()` answers.
#[tokio::test(flavor = "multi_thread")]
async fn every_builtin_fast_path_description_equals_its_describe() {
    let runtime = Runtime::new(RuntimeOptions { cache_dir: Some(crate::common::cache_dir()), pooling: None }).unwrap();
    assert!(!c41::guests::BUILTIN.is_empty());
    for (crate_name, bytes, _) in c41::guests::BUILTIN {
        let fast = describe::embedded(bytes).unwrap_or_else(|| panic!("{crate_name}: no embedded description"));
        let called = runtime.describe_by_calling(*bytes, &Limits::default()).await.unwrap();
        assert_eq!(fast, called, "{crate_name}");
    }
}

/// Loading the built-ins with no cache at all compiles nothing: the catalog
/// has every skill, and compiling happens on first use.
#[tokio::test(flavor = "multi_thread")]
async fn builtins_load_without_compiling() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeOptions { cache_dir: Some(cache.path().to_path_buf()), pooling: None }).unwrap();
    for (crate_name, bytes, sha256) in c41::guests::BUILTIN {
        let skill = runtime.load(*bytes, Origin::Builtin, &Limits::default()).await.unwrap();
        assert_eq!(skill.description.name, *crate_name);
        // What the catalog trusts instead of hashing each start.
        assert_eq!(skill.sha256, *sha256, "{crate_name}: the hash build.rs recorded");
    }
    let cached: Vec<_> = walk(cache.path());
    assert!(cached.is_empty(), "loading compiled or described something: {cached:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

fn limits(memory_mb: u64, timeout: Duration) -> Limits {
    Limits { memory_bytes: memory_mb << 20, timeout, ..Limits::default() }
}

async fn load_hog(runtime: &Runtime, limits: &Limits) -> String {
    let bytes = std::fs::read(guest("describe-hog")).unwrap();
    match runtime.load(bytes, Origin::File(guest("describe-hog")), limits).await {
        Err(e @ LoadError::Description { .. }) => e.to_string(),
        Err(other) => panic!("expected a description error, got {other}"),
        Ok(_) => panic!("describe-hog described itself"),
    }
}

/// `describe()` runs under the configured memory limit, not a fixed one.
#[tokio::test(flavor = "multi_thread")]
async fn describe_runs_under_the_configured_memory_limit() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeOptions { cache_dir: Some(cache.path().to_path_buf()), pooling: None }).unwrap();
    let message = load_hog(&runtime, &limits(64, Duration::from_secs(30))).await;
    assert!(message.contains("memory limit of 64 MiB (limits.memory-mb)"), "{message}");
}

/// A component that loops in `describe()` is stopped at the configured
/// deadline, and costs that time once: the failure is cached with the
/// compiled component and answered from there next time.
#[tokio::test(flavor = "multi_thread")]
async fn a_component_that_loops_in_describe_costs_once() {
    let cache = tempfile::tempdir().unwrap();
    let options = RuntimeOptions { cache_dir: Some(cache.path().to_path_buf()), pooling: None };
    let deadline = Duration::from_secs(1);
    let runtime = Runtime::new(options.clone()).unwrap();
    let first = load_hog(&runtime, &limits(512, deadline)).await;
    assert_eq!(runtime.describe_calls(), 1);
    assert!(first.contains("did not return within 1 s (limits.timeout-secs"), "{first}");

    let record = walk(cache.path()).into_iter().find(|p| p.to_string_lossy().ends_with(".describe.json"));
    let record: DescribeRecord =
        serde_json::from_slice(&std::fs::read(record.expect("a cached record")).unwrap()).unwrap();
    assert!(matches!(record, DescribeRecord::Failed { timeout_ms: 1000, .. }), "{record:?}");

    // A new process (runtime) with the same cache: the same answer, without
    // running describe() into its deadline again.
    let again = Runtime::new(options).unwrap();
    let second = load_hog(&again, &limits(512, deadline)).await;
    assert_eq!(second, first);
    assert_eq!(again.describe_calls(), 0, "the cached failure was described again");
}
