//! The studio's page (`c41 serve` at `/`) in a real headless Chromium,
//! driven over WebDriver (Debian's `chromium` and `chromium-driver`, which
//! `.ci/run` installs): a person starts a run from the form generated from
//! the skill's schema, watches its progress bar move and its sampler preview
//! appear, cancels a second run while it waits in the queue, and opens the
//! finished image from the gallery.

use crate::common::write_config;
use crate::serve::start;
use c41_sim::comfyui::{ComfyConfig, ComfySim};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver child process.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start chromedriver; `None` (the test is skipped) when Chromium is not
/// installed, except under CI, where that is a failure.
async fn driver() -> Option<Driver> {
    let installed = std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "{CHROMIUM} and {CHROMEDRIVER} are missing: .ci/run installs Debian's chromium and chromium-driver"
        );
        eprintln!("skipped: {CHROMIUM} or {CHROMEDRIVER} is not installed (apt install chromium chromium-driver)");
        return None;
    }
    let port = crate::common::closed_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "chromedriver never listened on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(Driver { child, url })
}

/// A headless Chromium session. Chromium's own background traffic is off:
/// this machine's network is closed, and the test must not depend on it.
async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": CHROMIUM, "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--window-size=1280,800", format!("--user-data-dir={}", profile.display()),
        ]}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// Evaluate `script` in the page (its `return` value) until `done` holds
/// for the values it returned so far (each change once, the latest last),
/// within `secs`; those values.
async fn until(browser: &Client, what: &str, secs: u64, script: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seen: Vec<Value> = Vec::new();
    loop {
        let v = browser.execute(script, vec![]).await.unwrap_or(Value::Null);
        if seen.last() != Some(&v) {
            seen.push(v);
        }
        if done(&seen) {
            return seen;
        }
        assert!(Instant::now() < deadline, "{what}: not within {secs}s; the page showed {seen:?}");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

/// Fill the form of `skill` on the "New run" tab and submit it.
async fn start_from_form(browser: &Client, skill: &str, fields: &[(&str, &str)]) {
    browser.find(Locator::Css("nav button[data-tab=new]")).await.unwrap().click().await.unwrap();
    let select = browser.wait().for_element(Locator::Css(&format!("#skill option[value={skill}]"))).await.unwrap();
    select.click().await.unwrap();
    for (name, value) in fields {
        let input = browser.wait().for_element(Locator::Css(&format!("#run-form [name={name}]"))).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }
    browser.find(Locator::Css("#run-form button[type=submit]")).await.unwrap().click().await.unwrap();
}

/// The newest run's row as the page shows it: state, progress bar, queue
/// place, backend, and the width of its loaded preview image.
const NEWEST_ROW: &str = "const row = document.querySelector('#runs tbody tr');
    if (!row) return null;
    const img = row.querySelector('img.preview');
    return {id: row.dataset.run, state: row.dataset.state,
            fraction: Number(row.querySelector('.bar').dataset.fraction),
            queue: row.querySelector('td.queue').textContent,
            backend: row.querySelector('td.backend').textContent,
            preview: img && img.complete ? img.naturalWidth : 0};";

/// A run's state as its row shows it.
fn state_of(run: &str) -> String {
    format!("const row = document.querySelector(\"#runs tr[data-run='{run}']\"); return row && row.dataset.state;")
}

/// Whether the progress bars seen moved: two different fractions strictly
/// between 0 and 1.
fn moved(seen: &[Value]) -> bool {
    let mut fs: Vec<f64> =
        seen.iter().filter_map(|v| v["fraction"].as_f64()).filter(|f| *f > 0.0 && *f < 1.0).collect();
    fs.dedup();
    fs.len() >= 2
}

fn last(seen: &[Value]) -> &Value {
    seen.last().unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_starts_watches_cancels_and_opens_runs_in_a_real_chromium() {
    let Some(driver) = driver().await else { return };
    // A sampler step every 100 ms, with previews: a run takes seconds.
    let sim = ComfySim::new(
        ComfyConfig { previews: true, ..ComfyConfig::default() }
            .with_delays(Duration::from_millis(100), Duration::from_millis(5)),
    );
    let comfy = sim.start("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "output-dir = \"{{out}}\"\n[services.comfyui]\nurl = \"http://{comfy}\"\nmax-jobs = 1\n\
             [skills.comfyui-image]\ngrants = [\"comfyui\"]\n"
        ),
    );
    let state = dir.path().join("state").display().to_string();
    let daemon = start(&cfg, &["--listen", "127.0.0.1:0"], &[("C41_STATE_DIR", state.as_str())]);
    let browser = browser(&driver, &dir.path().join("profile")).await;
    let page = format!("http://{}/", daemon.addr);
    browser.goto(&page).await.unwrap();
    browser.wait().for_element(Locator::Css("#live.on")).await.expect("the page connects to the daemon's events");

    // The first run, from the form generated from the input schema.
    let fields = [("prompt", "a lighthouse at dusk"), ("steps", "40"), ("width", "256"), ("height", "256")];
    start_from_form(&browser, "comfyui-image", &fields).await;
    // Its bar moves and its sampler preview appears, while it runs.
    let seen = until(&browser, "the first run's bar moves and its preview shows", 60, NEWEST_ROW, |seen| {
        moved(seen) && last(seen)["preview"].as_u64() > Some(0)
    })
    .await;
    let running = last(&seen);
    assert_eq!(running["state"], "running", "{seen:?}");
    assert_eq!(running["backend"], "comfyui", "{seen:?}");
    let id = running["id"].as_str().unwrap().to_string();

    // A second run waits for the one ComfyUI place (max-jobs = 1): the page
    // says where it stands; the person cancels it there.
    start_from_form(&browser, "comfyui-image", &[("prompt", "a second lighthouse"), ("steps", "5")]).await;
    let waiting = until(&browser, "the second run waits in the queue", 30, NEWEST_ROW, |seen| {
        last(seen)["state"] == "waiting" && last(seen)["id"] != id.as_str()
    })
    .await;
    let waiting = last(&waiting).clone();
    assert_eq!(waiting["queue"], "#1", "{waiting}");
    if let Some(shot) = std::env::var_os("C41_PAGE_SCREENSHOT") {
        std::fs::write(shot, browser.screenshot().await.unwrap()).unwrap();
    }
    let cancel = format!("#runs tr[data-run='{}'] button.cancel", waiting["id"].as_str().unwrap());
    browser.find(Locator::Css(&cancel)).await.unwrap().click().await.unwrap();
    until(&browser, "the second run is cancelled", 30, &state_of(waiting["id"].as_str().unwrap()), |seen| {
        last(seen) == "cancelled"
    })
    .await;
    until(&browser, "the first run ends", 120, &state_of(&id), |seen| last(seen) == "ok").await;
    assert_eq!(sim.history_len(), 1, "the cancelled run never reached ComfyUI");

    // The gallery shows the image with its seed and reference; it opens.
    browser.find(Locator::Css("nav button[data-tab=outputs]")).await.unwrap().click().await.unwrap();
    let card = until(
        &browser,
        "the gallery shows the image",
        30,
        "const c = document.querySelector('#gallery .card'); if (!c) return null; const img = c.querySelector('img');
         return {file: c.dataset.file, width: img && img.complete ? img.naturalWidth : 0,
                 reference: c.querySelector('.reference').textContent,
                 seed: (c.querySelector('.seed') || {}).textContent || ''};",
        |seen| last(seen)["width"].as_u64() > Some(0),
    )
    .await;
    let card = last(&card).clone();
    let file = card["file"].as_str().unwrap().to_string();
    assert_eq!(card["width"], 256, "{card}");
    assert_eq!(card["reference"], format!("artifact:{file}"), "{card}");
    assert!(card["seed"].as_str().unwrap().contains("seed "), "{card}");
    browser.find(Locator::Css("#gallery .card a.open")).await.unwrap().click().await.unwrap();
    let windows = browser.windows().await.unwrap();
    assert_eq!(windows.len(), 2, "the image opens in a tab of its own");
    browser.switch_to_window(windows[1].clone()).await.unwrap();
    let opened = until(
        &browser,
        "the opened image",
        30,
        "return {url: location.pathname, width: document.images.length ? document.images[0].naturalWidth : 0};",
        |seen| last(seen)["width"].as_u64() > Some(0),
    )
    .await;
    let opened = last(&opened);
    assert_eq!(opened["url"], format!("/files/{file}"), "{opened}");
    assert_eq!(opened["width"], 256, "{opened}");
    browser.close().await.unwrap();
}
