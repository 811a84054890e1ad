//! lora-train end to end: the real component in the real sandbox against the
//! ComfyUI simulator's training nodes (faithful to 0.3.64's
//! `nodes_train.py`): the dataset's upload layout, the derived name of the
//! file `SaveLoRANode` writes without reporting it, refusals before
//! anything is uploaded, a missing base model, cancel mid-training, and a
//! killed run resumed without training again.

use crate::comfyui::{Hooked, start};
use crate::common::*;
use c41::app::RunError;
use c41::events::{Event, Recorder};
use c41::runtime::InvokeError;
use c41_sim::comfyui::ComfyConfig;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A config granting lora-train one backend, with file inputs from `images`.
fn config(addr: SocketAddr, images: &Path) -> String {
    format!(
        "output-dir = \"{{out}}\"\n[inputs]\nallow = [{:?}]\n[services.comfyui]\nurl = \"http://{addr}\"\n\
         [skills.lora-train]\ngrants = [\"comfyui\"]\n[skills.lora-train.settings]\npoll-ms = 100\n",
        images.display().to_string()
    )
}

/// `n` small PNGs of different colours in `dir`.
fn images(dir: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let p = dir.join(format!("fox {i}.png"));
            std::fs::write(&p, c41_sim::media::png(32, 32, &[(i * 50) as u8; 32 * 32 * 3]).unwrap()).unwrap();
            p
        })
        .collect()
}

fn paths(images: &[PathBuf]) -> Value {
    json!(images.iter().map(|p| p.display().to_string()).collect::<Vec<_>>())
}

/// The header of a `.safetensors` file.
fn safetensors_header(bytes: &[u8]) -> Value {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + n]).unwrap()
}

#[tokio::test]
async fn a_lora_trains_from_captioned_images_and_comes_back_with_its_loss_graph() {
    let (sim, addr) = start(ComfyConfig::default().with_delays(Duration::from_millis(2), Duration::ZERO)).await;
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path(), 4);
    let h = harness(&config(addr, dir.path()), &[]).await;
    let input =
        json!({"images": paths(&imgs), "trigger": "fxfox", "name": "fox", "steps": 6, "resolution": 256, "rank": 8});
    let (r, _) = h.run("lora-train", input).await;
    let done = r.unwrap_or_else(|e| panic!("{e}"));

    // The dataset: a subfolder of its own, NNN.png beside NNN.txt.
    let folder = format!("c41-lora/{}", done.invocation_id);
    let mut uploaded: Vec<String> = sim
        .files()
        .into_iter()
        .filter(|f| f.kind == "input")
        .map(|f| {
            assert_eq!(f.subfolder, folder, "{f:?}");
            f.filename
        })
        .collect();
    uploaded.sort();
    let mut expected: Vec<String> = (0..4).flat_map(|i| [format!("{i:03}.png"), format!("{i:03}.txt")]).collect();
    expected.sort();
    assert_eq!(uploaded, expected);
    assert_eq!(sim.file("input", &folder, "002.txt").unwrap().as_ref(), b"a photo of fxfox");
    assert_eq!(
        sim.file("input", &folder, "001.png").unwrap().to_vec(),
        std::fs::read(&imgs[1]).unwrap(),
        "each image as given, in order"
    );

    // The LoRA: the name SaveLoRANode gave it, derived, not reported.
    let run: String = done.invocation_id.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
    let filename = format!("fox-{run}_6_steps_00001_.safetensors");
    assert_eq!(done.data["file"], json!({"subfolder": "loras/c41", "filename": filename}), "{}", done.data);
    assert_eq!(done.data["lora"], format!("c41/{filename}"));
    assert_eq!(done.data["listed"], true, "the studio's server lists output/loras: {}", done.data);
    assert_eq!((done.data["steps"].as_u64(), done.data["rank"].as_u64()), (Some(6), Some(8)), "{}", done.data);
    assert_eq!(done.data["resolution"], 256);
    assert_eq!(done.artifacts.len(), 2, "{:?}", done.artifacts);
    let lora = &done.artifacts[0];
    assert!(lora.path.to_string_lossy().ends_with(".safetensors"), "{}", lora.path.display());
    assert_eq!(lora.mime, "application/octet-stream");
    let bytes = std::fs::read(&lora.path).unwrap();
    assert_eq!(bytes, sim.file("output", "loras/c41", &filename).unwrap().to_vec(), "the server's file");
    let header = safetensors_header(&bytes);
    assert!(header.as_object().unwrap().values().all(|t| t["dtype"] == "BF16"), "{header}");
    assert!(header.as_object().unwrap().values().any(|t| t["shape"].as_array().unwrap().contains(&json!(8))));
    let graph = &done.artifacts[1];
    assert_eq!(graph.mime, "image/png");
    assert!(std::fs::read(&graph.path).unwrap().starts_with(b"\x89PNG"));
    assert!(done.text.contains("c41/fox-"), "{}", done.text);

    // The graph as sent: the dataset folder and the prefix are this run's.
    let id = done.data["prompt_id"].as_str().unwrap();
    let prompt = crate::comfyui::http_json(addr, &format!("/history/{id}")).await[id]["prompt"][2].clone();
    assert_eq!(prompt["20"]["inputs"]["folder"], folder);
    assert_eq!(prompt["23"]["inputs"]["prefix"], format!("loras/c41/fox-{run}"));
    assert_eq!(prompt["20"]["inputs"]["width"], 256);
}

#[tokio::test]
async fn a_bad_dataset_is_refused_before_anything_is_uploaded() {
    let (sim, addr) = start(ComfyConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path(), 4);
    let gif = dir.path().join("moving.gif");
    std::fs::write(&gif, b"GIF89a").unwrap();
    let h = harness(&config(addr, dir.path()), &[]).await;
    let field_of = |r: Result<c41::runtime::Invoked, RunError>| -> (String, String) {
        match r {
            Err(RunError::Invoke(InvokeError::InvalidInput { field, reason })) => (field, reason),
            Err(RunError::Input(e)) => (e.to_string(), String::new()),
            other => panic!("expected an invalid input, got {other:?}"),
        }
    };
    let base = json!({"images": paths(&imgs), "trigger": "fxfox", "name": "fox"});

    let mut three = base.clone();
    three["images"] = paths(&imgs[..3]);
    let (field, _) = field_of(h.run("lora-train", three).await.0);
    assert!(field.contains("images"), "{field}");

    let mut captions = base.clone();
    captions["captions"] = json!(["one", "two"]);
    assert_eq!(field_of(h.run("lora-train", captions).await.0).0, "captions");

    let mut with_gif = base.clone();
    with_gif["images"][1] = json!(gif.display().to_string());
    let (field, reason) = field_of(h.run("lora-train", with_gif).await.0);
    assert_eq!(field, "images/1", "{reason}");
    assert!(reason.contains("png, jpg, jpeg, webp"), "{reason}");

    let mut untriggered = base.clone();
    untriggered.as_object_mut().unwrap().remove("trigger");
    assert_eq!(field_of(h.run("lora-train", untriggered).await.0).0, "trigger");

    let mut empty_caption = base.clone();
    empty_caption["captions"] = json!(["a", "b", " ", "d"]);
    assert_eq!(field_of(h.run("lora-train", empty_caption).await.0).0, "captions/2");

    assert!(sim.files().is_empty(), "nothing was uploaded: {:?}", sim.files());
    assert_eq!(sim.history_len(), 0);
}

#[tokio::test]
async fn a_missing_base_model_is_named_with_where_it_goes() {
    let (sim, addr) =
        start(ComfyConfig::default().with_models("diffusion_models", &["flux2_dev_fp8mixed.safetensors"])).await;
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path(), 4);
    let h = harness(&config(addr, dir.path()), &[]).await;
    let (r, _) = h.run("lora-train", json!({"images": paths(&imgs), "trigger": "fxfox", "name": "fox"})).await;
    let (service, _, message) = backend_error(r);
    assert_eq!(service, "comfyui");
    assert!(message.contains("z_image_turbo_bf16.safetensors"), "{message}");
    assert!(message.contains("diffusion_models"), "says where it goes: {message}");
    assert_eq!(sim.history_len(), 0, "nothing was submitted");
    assert!(sim.files().is_empty(), "nothing was uploaded");
}

#[tokio::test]
async fn cancelling_mid_training_interrupts_it_and_saves_nothing() {
    let (sim, addr) = start(ComfyConfig::default().with_delays(Duration::from_millis(20), Duration::ZERO)).await;
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path(), 4);
    let h = harness(&config(addr, dir.path()), &[]).await;
    let token = CancellationToken::new();
    let t = token.clone();
    // The trainer reports no steps (0.3.64): the job running is the moment.
    let sink = Arc::new(Hooked {
        rec: Recorder::default(),
        hook: move |e: &Event| {
            if let Event::Progress { message: Some(m), .. } = e
                && m.contains("TrainLoraNode")
            {
                t.cancel();
            }
        },
    });
    let input = json!({"images": paths(&imgs), "trigger": "fxfox", "name": "fox", "steps": 100000});
    let started = std::time::Instant::now();
    let r = h.app.invoke("lora-train", input, sink.clone(), token).await;
    assert!(matches!(r, Err(RunError::Invoke(InvokeError::Cancelled))), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(30), "stopped, not trained for 100000 steps");
    assert_eq!(sim.queue_remaining(), 0, "interrupted on the server");
    assert!(!sim.files().iter().any(|f| f.filename.ends_with(".safetensors")), "no LoRA saved");
}

/// `c41 run lora-train` is killed while the training runs; `c41 resume`
/// follows the training already on the server (the dataset is not uploaded
/// again, nothing is trained twice) and stores the LoRA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_training_is_resumed_without_training_again() {
    let (sim, addr) = start(ComfyConfig::default().with_delays(Duration::from_millis(10), Duration::ZERO)).await;
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path(), 4);
    let cfg = dir.path().join("c41.toml");
    std::fs::write(&cfg, config(addr, dir.path()).replace("{out}", &dir.path().join("out").display().to_string()))
        .unwrap();
    let c41 = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_c41"));
        cmd.args(args)
            .env("C41_CONFIG", &cfg)
            .env("C41_CACHE_DIR", cache_dir())
            .env("C41_STATE_DIR", dir.path().join("state"))
            .env_remove("RUST_LOG");
        cmd
    };
    let input = json!({"images": paths(&imgs), "trigger": "fxfox", "name": "fox", "steps": 300}).to_string();
    let mut child = c41(&["run", "lora-train", "--input", &input])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the training runs on the server.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sim.queue_remaining() == 0 {
        assert!(std::time::Instant::now() < deadline, "the training never reached the server");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(sim.history_len(), 0, "killed before the training ended");
    let uploads = sim.files().iter().filter(|f| f.kind == "input").count();
    assert_eq!(uploads, 8);

    let out = c41(&["runs", "--json"]).output().unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = listed[0]["id"].as_str().unwrap().to_string();
    assert_eq!(listed[0]["status"], "interrupted", "{listed}");
    let out = c41(&["resume", &id, "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let resumed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(resumed["invocation_id"], id);
    assert_eq!((sim.history_len(), sim.queue_remaining()), (1, 0), "one training in all");
    assert_eq!(sim.files().iter().filter(|f| f.kind == "input").count(), 8, "the dataset was not uploaded again");
    let lora = resumed["artifacts"][0]["path"].as_str().unwrap();
    assert!(lora.ends_with(".safetensors"), "{resumed}");
    let run: String = id.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
    let server = sim.file("output", "loras/c41", &format!("fox-{run}_300_steps_00001_.safetensors")).unwrap();
    assert_eq!(std::fs::read(lora).unwrap(), server.to_vec());
}

/// A trained LoRA used in an image: its node sits between the model loader
/// and the loader's user, and of two backends the one that lists the LoRA
/// runs the image (the other is skipped as for a missing model); a LoRA no
/// backend has is named with where it goes.
#[tokio::test]
async fn a_trained_lora_is_used_on_the_backend_that_has_it() {
    let (trainer, a) = start(ComfyConfig::default()).await;
    let (other, b) = start(ComfyConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let imgs = images(dir.path(), 4);
    let config = format!(
        "output-dir = \"{{out}}\"\n[inputs]\nallow = [{:?}]\n\
         [services.forge-b]\nurl = \"http://{b}\"\nkind = \"comfyui\"\n[services.forge-a]\nurl = \"http://{a}\"\nkind = \"comfyui\"\n\
         [skills.lora-train]\ngrants = [\"forge-a\"]\n[skills.lora-train.settings]\npoll-ms = 100\n\
         [skills.comfyui-image]\ngrants = [\"forge-b\", \"forge-a\"]\n[skills.comfyui-image.settings]\npoll-ms = 100\n",
        dir.path().display().to_string()
    );
    let h = harness(&config, &[]).await;
    let (r, _) =
        h.run("lora-train", json!({"images": paths(&imgs), "trigger": "fxfox", "name": "fox", "steps": 4})).await;
    let trained = r.unwrap_or_else(|e| panic!("{e}"));
    let lora = trained.data["lora"].as_str().unwrap().to_string();

    let input = json!({"prompt": "fxfox in a meadow", "workflow": "z-image-turbo", "width": 256, "height": 256,
                       "steps": 2, "loras": [{"name": lora, "strength": 0.7}]});
    let (r, _) = h.run("comfyui-image", input).await;
    let image = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(image.data["backend"], "forge-a", "{}", image.data);
    assert_eq!(image.data["loras"], json!([{"name": lora, "strength": 0.7}]));
    assert_eq!(other.history_len(), 0, "the backend without the LoRA ran nothing");
    let id = image.data["prompt_id"].as_str().unwrap();
    let graph = crate::comfyui::http_json(a, &format!("/history/{id}")).await[id]["prompt"][2].clone();
    let (node, lora_node) = graph
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, n)| n["class_type"] == "LoraLoaderModelOnly")
        .unwrap_or_else(|| panic!("no LoRA node in {graph}"));
    assert_eq!(lora_node["inputs"]["model"], json!(["1", 0]), "after the model loader");
    assert_eq!(
        (lora_node["inputs"]["lora_name"].as_str(), lora_node["inputs"]["strength_model"].as_f64()),
        (Some(lora.as_str()), Some(0.7))
    );
    assert_eq!(graph["2"]["inputs"]["model"], json!([node, 0]), "the loader's user takes the LoRA's model");
    assert_eq!(trainer.history_len(), 2, "the training and the image");

    let input = json!({"prompt": "x", "workflow": "z-image-turbo", "width": 256, "height": 256, "steps": 2,
                       "loras": [{"name": "c41/nobody.safetensors"}]});
    let (service, _, message) = backend_error(h.run("comfyui-image", input).await.0);
    assert_eq!(service, "comfyui");
    assert!(message.contains("c41/nobody.safetensors") && message.contains("models/loras"), "{message}");
}
