//! Output nodes: encode real files, store them where `/view` finds them, and
//! describe them in the UI output exactly as ComfyUI does (`images` for
//! pictures and videos, `animated: [true]` for animations, `audio`, and VHS's
//! `gifs`).

use super::FileRef;
use super::execute::{NodeRun, Stop};
use super::nodes::{Args, Aud, Img, Out, Val, Vid, fail, ui_file};
use crate::media;
use bytes::Bytes;
use serde_json::{Value, json};

fn image(a: &Args<'_>, k: &str) -> Result<Img, Stop> {
    match a.linked.iter().find(|(n, _)| n == k) {
        Some((_, Val::Image(i))) => Ok(i.clone()),
        _ => Err(fail("KeyError", format!("'{k}'"))),
    }
}

/// Applies the configured video size limit.
fn limited(run: &NodeRun<'_>, img: Img) -> Img {
    match run.shared.cfg.video_max_side {
        Some(max) if img.w.max(img.h) > max.max(2) => {
            let max = max.max(2);
            let (w, h) = if img.w >= img.h {
                (max, (u64::from(img.h) * u64::from(max) / u64::from(img.w)).max(2) as u32)
            } else {
                ((u64::from(img.w) * u64::from(max) / u64::from(img.h)).max(2) as u32, max)
            };
            super::nodes::resize(img, w, h)
        }
        _ => img,
    }
}

fn audio(a: &Args<'_>) -> Result<Aud, Stop> {
    match a.linked.iter().find(|(n, _)| n == "audio") {
        Some((_, Val::Audio(x))) => Ok(x.clone()),
        _ => Err(fail("KeyError", "'audio'")),
    }
}

async fn encode<T: Send + 'static>(f: impl FnOnce() -> media::Result<T> + Send + 'static) -> Result<T, Stop> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(fail("RuntimeError", e.0)),
        Err(e) => Err(fail("RuntimeError", e.to_string())),
    }
}

/// Splits "sub/dir/name" into ("sub/dir", "name"), as get_save_image_path does.
pub(crate) fn split_prefix(prefix: &str) -> (String, String) {
    match prefix.rsplit_once('/') {
        Some((dir, name)) => (dir.trim_matches('/').to_string(), name.to_string()),
        None => (String::new(), prefix.to_string()),
    }
}

/// The next free counter for `name_` files in `sub`, counting what is on "disk".
pub(crate) fn next_counter(run: &NodeRun<'_>, kind: &str, sub: &str, name: &str) -> u32 {
    let st = run.shared.lock();
    let lead = format!("{name}_");
    st.files
        .keys()
        .filter(|f| f.kind == kind && f.subfolder == sub && f.filename.starts_with(&lead))
        .filter_map(|f| {
            let digits: String = f.filename[lead.len()..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok()
        })
        .max()
        .unwrap_or(0)
        + 1
}

pub(crate) fn store(run: &NodeRun<'_>, kind: &str, sub: &str, filename: &str, data: Vec<u8>) {
    let key = FileRef { kind: kind.into(), subfolder: sub.into(), filename: filename.into() };
    run.shared.lock().files.insert(key, Bytes::from(data));
}

fn temp_prefix(sig: u64) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstupvxyz";
    let mut x = sig;
    let s: String = (0..5)
        .map(|_| {
            x = x.rotate_left(13) ^ 0x9E37_79B9_7F4A_7C15;
            LETTERS[(x % LETTERS.len() as u64) as usize] as char
        })
        .collect();
    format!("ComfyUI_temp_{s}")
}

fn done(ui: Value) -> Result<Out, Stop> {
    Ok(Out { values: vec![], ui: Some(ui) })
}

pub(crate) async fn save(run: &mut NodeRun<'_>, class: &str, a: &Args<'_>) -> Result<Out, Stop> {
    let (kind, (sub, name)) = match class {
        "PreviewImage" | "PreviewAudio" => ("temp", (String::new(), temp_prefix(run.sig))),
        _ => ("output", split_prefix(&a_str(a, "filename_prefix", "ComfyUI"))),
    };
    match class {
        "SaveImage" | "PreviewImage" => {
            let img = image(a, "images")?;
            let first = next_counter(run, kind, &sub, &name);
            let mut list = Vec::new();
            for (counter, frame) in (first..).zip(img.frames().rgb) {
                let (w, h) = (img.w, img.h);
                let bytes = encode(move || media::png(w, h, &frame)).await?;
                let filename = format!("{name}_{counter:05}_.png");
                store(run, kind, &sub, &filename, bytes);
                list.push(ui_file(&filename, &sub, kind));
            }
            done(json!({"images": list}))
        }
        "SaveImageWebsocket" => {
            let img = image(a, "images")?;
            let n = img.pics.len() as u32;
            for (i, frame) in img.frames().rgb.into_iter().enumerate() {
                let (w, h) = (img.w, img.h);
                let bytes = encode(move || media::png(w, h, &frame)).await?;
                run.progress_only(i as u32, n, Some(bytes)).await?;
            }
            Ok(Out { values: vec![], ui: None })
        }
        "SaveAnimatedWEBP" | "SaveAnimatedPNG" | "SaveWEBM" => {
            let frames = limited(run, image(a, "images")?).frames();
            let fps = a.literal.get("fps").and_then(Value::as_f64).unwrap_or(6.0);
            let (ext, bytes) = match class {
                "SaveAnimatedWEBP" => ("webp", encode(move || media::webp_animated(&frames, fps)).await?),
                "SaveAnimatedPNG" => ("png", encode(move || media::apng(&frames, fps)).await?),
                _ => {
                    let crf = a.literal.get("crf").and_then(Value::as_f64).unwrap_or(32.0) as u32;
                    ("webm", encode(move || media::webm(&frames, fps, crf)).await?)
                }
            };
            let counter = next_counter(run, kind, &sub, &name);
            let filename = format!("{name}_{counter:05}_.{ext}");
            store(run, kind, &sub, &filename, bytes);
            done(json!({"images": [ui_file(&filename, &sub, kind)], "animated": [true]}))
        }
        "SaveVideo" => {
            let video = match a.linked.iter().find(|(n, _)| n == "video") {
                Some((_, Val::Video(v))) => v.clone(),
                _ => return Err(fail("KeyError", "'video'")),
            };
            let bytes = match video {
                Vid::Made { images, fps, audio } => {
                    let frames = limited(run, images).frames();
                    let pcm = audio.map(|au| au.pcm());
                    encode(move || media::mp4(&frames, fps, pcm.as_ref())).await?
                }
                Vid::File { name: file, data } => {
                    if data.len() < 12 || &data[4..8] != b"ftyp" {
                        return Err(run.invalid_video(&file));
                    }
                    data.to_vec()
                }
            };
            let counter = next_counter(run, kind, &sub, &name);
            let filename = format!("{name}_{counter:05}_.mp4");
            store(run, kind, &sub, &filename, bytes);
            done(json!({"images": [ui_file(&filename, &sub, kind)], "animated": [true]}))
        }
        "SaveAudio" | "PreviewAudio" | "SaveAudioMP3" => {
            let pcm = audio(a)?.pcm();
            let (ext, bytes) = if class == "SaveAudioMP3" {
                let kbps = match a_str(a, "quality", "V0").as_str() {
                    "128k" => 128,
                    "320k" => 320,
                    _ => 256,
                };
                ("mp3", encode(move || media::mp3(&pcm, kbps)).await?)
            } else {
                ("flac", encode(move || media::flac(&pcm)).await?)
            };
            let counter = next_counter(run, kind, &sub, &name);
            let filename = format!("{name}_{counter:05}_.{ext}");
            store(run, kind, &sub, &filename, bytes);
            done(json!({"audio": [ui_file(&filename, &sub, kind)]}))
        }
        "VHS_VideoCombine" => vhs(run, a, sub, name).await,
        _ => Err(fail("NotImplementedError", format!("{class} is not supported by the simulator"))),
    }
}

fn a_str(a: &Args<'_>, k: &str, d: &str) -> String {
    a.literal.get(k).and_then(Value::as_str).unwrap_or(d).to_string()
}

/// VideoHelperSuite's combine node: its own file naming (no trailing `_`)
/// and its own output key, `gifs`.
async fn vhs(run: &mut NodeRun<'_>, a: &Args<'_>, sub: String, name: String) -> Result<Out, Stop> {
    let frames = image(a, "images")?.frames();
    let fps = a.literal.get("frame_rate").and_then(Value::as_f64).unwrap_or(8.0);
    let format = a_str(a, "format", "image/gif");
    let kind = if a.literal.get("save_output").and_then(Value::as_bool) == Some(false) { "temp" } else { "output" };
    let pcm = match a.linked.iter().find(|(n, _)| n == "audio") {
        Some((_, Val::Audio(au))) => Some(au.pcm()),
        _ => None,
    };
    let (ext, bytes) = match format.as_str() {
        "image/webp" => ("webp", encode(move || media::webp_animated(&frames, fps)).await?),
        "video/webm" => ("webm", encode(move || media::webm(&frames, fps, 32)).await?),
        "image/gif" => ("gif", encode(move || media::gif(&frames, fps)).await?),
        f if f.starts_with("video/") => ("mp4", encode(move || media::mp4(&frames, fps, pcm.as_ref())).await?),
        other => return Err(fail("ValueError", format!("Unsupported format {other}"))),
    };
    let counter = next_counter(run, kind, &sub, &name);
    let filename = format!("{name}_{counter:05}.{ext}");
    let fullpath = format!(
        "{}/{kind}/{}{filename}",
        run.shared.cfg.base_dir,
        if sub.is_empty() { String::new() } else { format!("{sub}/") }
    );
    store(run, kind, &sub, &filename, bytes);
    let workflow = format!("{name}_{counter:05}.png");
    done(json!({"gifs": [{
        "filename": filename, "subfolder": sub, "type": kind, "format": format,
        "frame_rate": fps, "workflow": workflow, "fullpath": fullpath,
    }]}))
}
