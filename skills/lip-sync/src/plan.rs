//! The pure part of the skill: input and settings to the HuMo form's text
//! fields, the server's field names back to the skill's inputs, the
//! artifact's name and the outcome's wording. No host calls, so all of it is
//! unit-tested natively.

use c41_kit::{SkillError, Value};

/// Where the settings live in the c41 config, for error messages.
pub const SETTINGS: &str = "[skills.lip-sync.settings]";

/// The prompt used when neither the input nor the settings give one (the
/// server requires a non-empty prompt).
pub const DEFAULT_PROMPT: &str = "a person talking";
/// HuMo's own default frame rate.
pub const DEFAULT_FPS: u32 = 25;
/// HuMo's own default step count.
pub const DEFAULT_STEPS: u32 = 50;
/// The artifact's name without a `name` input.
pub const DEFAULT_NAME: &str = "lipsync";

/// The text fields of one `/generate` form, after defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Scene description (never empty).
    pub prompt: String,
    /// Output width; `None` lets the server take it from the image.
    pub width: Option<u32>,
    /// Output height; `None` lets the server take it from the image.
    pub height: Option<u32>,
    /// Output frame rate.
    pub fps: u32,
    /// Sampling seed.
    pub seed: i64,
    /// Sampling steps.
    pub steps: u32,
    /// The artifact's file name (`lipsync.mp4`, `<name>.mp4`).
    pub file_name: String,
}

impl Params {
    /// The form's text fields in the order they are sent; absent sizes are
    /// left out so the server derives them from the portrait.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![("prompt", self.prompt.clone())];
        if let Some(w) = self.width {
            v.push(("width", w.to_string()));
        }
        if let Some(h) = self.height {
            v.push(("height", h.to_string()));
        }
        v.push(("fps", self.fps.to_string()));
        v.push(("seed", self.seed.to_string()));
        v.push(("steps", self.steps.to_string()));
        v
    }
}

fn setting_error(key: &str, why: impl std::fmt::Display) -> SkillError {
    SkillError::Denied {
        target: SETTINGS.into(),
        reason: format!("the lip-sync setting `{key}` in the c41 config is unusable: {why}"),
    }
}

/// An integer setting in `lo..=hi`, or `default` when unset.
fn int_setting(settings: &Value, key: &str, default: u32, lo: u32, hi: u32) -> Result<u32, SkillError> {
    match settings.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_u64() {
            Some(n) if (u64::from(lo)..=u64::from(hi)).contains(&n) => Ok(n as u32),
            _ => Err(setting_error(key, format!("expected an integer in {lo}..={hi}, got {v}"))),
        },
    }
}

/// An integer input in `lo..=hi` (the host already checked the schema; this
/// keeps the skill honest if it is called some other way).
fn int_input(input: &Value, key: &str, lo: u32, hi: u32) -> Result<Option<u32>, SkillError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (u64::from(lo)..=u64::from(hi)).contains(&n) => Ok(Some(n as u32)),
            _ => Err(SkillError::invalid(key, format!("expected an integer in {lo}..={hi}, got {v}"))),
        },
    }
}

fn side(input: &Value, key: &str) -> Result<Option<u32>, SkillError> {
    let v = int_input(input, key, 16, 1280)?;
    match v {
        Some(n) if n % 16 != 0 => Err(SkillError::invalid(
            key,
            format!("{n} is not a multiple of 16 (HuMo needs multiples of 16; try {})", (n / 16).max(1) * 16),
        )),
        _ => Ok(v),
    }
}

/// The artifact's file name for the `name` input: the stem plus `.mp4`
/// (a trailing `.mp4` in the input is not doubled).
pub fn file_name(name: Option<&str>) -> String {
    let stem = name.map(str::trim).filter(|s| !s.is_empty()).unwrap_or(DEFAULT_NAME);
    let stem = match stem.len().checked_sub(4) {
        Some(i) if stem.is_char_boundary(i) && stem[i..].eq_ignore_ascii_case(".mp4") && i > 0 => &stem[..i],
        _ => stem,
    };
    format!("{stem}.mp4")
}

/// The form's text fields from the validated input and the settings
/// (`prompt`, `fps`, `steps` override the built-in defaults).
pub fn params(input: &Value, settings: &Value) -> Result<Params, SkillError> {
    let prompt = match input.get("prompt").and_then(Value::as_str).map(str::trim) {
        Some(p) if !p.is_empty() => p.to_string(),
        Some(_) => {
            return Err(SkillError::invalid("prompt", "the prompt is empty; describe the scene or leave `prompt` out"));
        }
        None => match settings.get("prompt") {
            None | Some(Value::Null) => DEFAULT_PROMPT.to_string(),
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(v) => return Err(setting_error("prompt", format!("expected a non-empty string, got {v}"))),
        },
    };
    let fps = match int_input(input, "fps", 1, 60)? {
        Some(f) => f,
        None => int_setting(settings, "fps", DEFAULT_FPS, 1, 60)?,
    };
    let steps = match int_input(input, "steps", 1, 200)? {
        Some(s) => s,
        None => int_setting(settings, "steps", DEFAULT_STEPS, 1, 200)?,
    };
    let seed = match input.get("seed") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().ok_or_else(|| SkillError::invalid("seed", format!("expected an integer, got {v}")))?,
    };
    Ok(Params {
        prompt,
        width: side(input, "width")?,
        height: side(input, "height")?,
        fps,
        seed,
        steps,
        file_name: file_name(input.get("name").and_then(Value::as_str)),
    })
}

/// The skill input a field of the server's form comes from (the same names:
/// the mapping exists so only fields the skill sends are ever blamed on the
/// caller).
pub fn input_field(server_field: &str) -> Option<&'static str> {
    Some(match server_field {
        "image" => "image",
        "audio" => "audio",
        "prompt" => "prompt",
        "width" => "width",
        "height" => "height",
        "fps" => "fps",
        "seed" => "seed",
        "steps" => "steps",
        _ => return None,
    })
}

/// What the MP4 turned out to hold, for the text and data.
#[derive(Debug, Clone, PartialEq)]
pub struct Made {
    /// Video frames.
    pub frames: u64,
    /// Video length in seconds.
    pub seconds: f64,
    /// Video size.
    pub width: u32,
    /// Video height.
    pub height: u32,
    /// Video codec (`avc1`).
    pub video_codec: String,
    /// Audio codec (`mp4a`), when the video has sound.
    pub audio_codec: Option<String>,
}

/// The outcome's first line: "Lip-synced face.png to voice.wav: 3.2 s at 25
/// fps (80 frames, 512×512)".
pub fn summary(image: &str, audio: &str, fps: u32, made: Option<&Made>) -> String {
    match made {
        Some(m) if m.frames > 0 => format!(
            "Lip-synced {image} to {audio}: {:.1} s at {fps} fps ({} frames, {}×{})",
            m.seconds, m.frames, m.width, m.height
        ),
        Some(m) => format!("Lip-synced {image} to {audio}: {:.1} s at {fps} fps ({}×{})", m.seconds, m.width, m.height),
        None => format!("Lip-synced {image} to {audio} at {fps} fps"),
    }
}

/// A failed exchange with no HTTP status (refused, reset, timed out)
/// reworded so the caller knows what to check; other errors pass through.
pub fn no_answer(e: SkillError, base_url: &str) -> SkillError {
    match e {
        SkillError::Backend { service, status: None, message } => {
            let message = if message.contains("ConnectionRefused") {
                format!(
                    "cannot reach HuMo ({message}): is the HuMo wrapper running at {base_url}, and is that the right URL for `{service}` in the c41 config?"
                )
            } else {
                format!(
                    "no answer from HuMo at {base_url} ({message}): the connection failed while the files were sent or the video was made"
                )
            };
            SkillError::Backend { service, status: None, message }
        }
        other => other,
    }
}

/// "12.3 KB" and friends, for progress messages.
pub fn human_bytes(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1024 * 1024 => format!("{:.1} KB", n as f64 / 1024.0),
        n => format!("{:.1} MB", n as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use c41_kit::json;

    fn invalid_field(e: SkillError) -> String {
        match e {
            SkillError::InvalidInput { field, .. } => field,
            other => panic!("expected invalid input, got {other:?}"),
        }
    }

    #[test]
    fn defaults_fill_in_and_sizes_are_left_to_the_server() {
        let p = params(&json!({"image": "face.png", "audio": "voice.wav"}), &json!({})).unwrap();
        assert_eq!(
            p,
            Params {
                prompt: "a person talking".into(),
                width: None,
                height: None,
                fps: 25,
                seed: 0,
                steps: 50,
                file_name: "lipsync.mp4".into()
            }
        );
        let names: Vec<&str> = p.fields().iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["prompt", "fps", "seed", "steps"]);
    }

    #[test]
    fn input_beats_settings_which_beat_defaults() {
        let settings = json!({"fps": 30, "steps": 20, "prompt": "a news anchor"});
        let p = params(&json!({}), &settings).unwrap();
        assert_eq!((p.prompt.as_str(), p.fps, p.steps), ("a news anchor", 30, 20));
        let input = json!({"prompt": " a singer ", "fps": 12, "steps": 8, "seed": -3, "width": 512, "height": 320, "name": "take2"});
        let p = params(&input, &settings).unwrap();
        assert_eq!((p.prompt.as_str(), p.fps, p.steps, p.seed), ("a singer", 12, 8, -3));
        assert_eq!(
            p.fields(),
            vec![
                ("prompt", "a singer".to_string()),
                ("width", "512".into()),
                ("height", "320".into()),
                ("fps", "12".into()),
                ("seed", "-3".into()),
                ("steps", "8".into())
            ]
        );
        assert_eq!(p.file_name, "take2.mp4");
    }

    #[test]
    fn bad_values_name_the_field_or_the_setting() {
        assert_eq!(invalid_field(params(&json!({"width": 500}), &json!({})).unwrap_err()), "width");
        assert_eq!(invalid_field(params(&json!({"height": 8}), &json!({})).unwrap_err()), "height");
        assert_eq!(invalid_field(params(&json!({"fps": 0}), &json!({})).unwrap_err()), "fps");
        assert_eq!(invalid_field(params(&json!({"prompt": "  "}), &json!({})).unwrap_err()), "prompt");
        match params(&json!({}), &json!({"fps": 120})).unwrap_err() {
            SkillError::Denied { target, reason } => {
                assert_eq!(target, SETTINGS);
                assert!(reason.contains("`fps`") && reason.contains("1..=60"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // A setting the input overrides is not consulted.
        assert_eq!(params(&json!({"steps": 5}), &json!({"steps": "many"})).unwrap().steps, 5);
        assert!(matches!(params(&json!({}), &json!({"prompt": 3})), Err(SkillError::Denied { .. })));
    }

    #[test]
    fn artifact_names() {
        assert_eq!(file_name(None), "lipsync.mp4");
        assert_eq!(file_name(Some("")), "lipsync.mp4");
        assert_eq!(file_name(Some("anna-hello")), "anna-hello.mp4");
        assert_eq!(file_name(Some("anna.MP4")), "anna.mp4");
        assert_eq!(file_name(Some(".mp4")), ".mp4.mp4");
    }

    #[test]
    fn server_errors_name_the_skill_inputs() {
        use c41_kit::fastapi;
        let body =
            br#"{"detail":[{"loc":["body","image"],"msg":"not a PNG or JPEG image","type":"value_error.image"}]}"#;
        match fastapi::error("humo", 400, body, input_field) {
            SkillError::InvalidInput { field, reason } => {
                assert_eq!(field, "image");
                assert!(reason.contains("not a PNG or JPEG image"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let body = br#"{"detail":[{"loc":["body","width"],"msg":"ensure this value is a multiple of 16","type":"value_error.number.not_multiple","ctx":{"multiple_of":16}}]}"#;
        assert_eq!(invalid_field(fastapi::error("humo", 422, body, input_field)), "width");
        // Not a field problem: a backend error with the status.
        match fastapi::error("forge-humo", 500, b"Internal Server Error", input_field) {
            SkillError::Backend { service, status, message } => {
                assert_eq!(
                    (service.as_str(), status, message.as_str()),
                    ("forge-humo", Some(500), "Internal Server Error")
                );
            }
            other => panic!("{other:?}"),
        }
        let body = br#"{"detail":"There was an error parsing the body"}"#;
        assert!(matches!(
            fastapi::error("humo", 400, body, input_field),
            SkillError::Backend { status: Some(400), .. }
        ));
        assert_eq!(input_field("negative_prompt"), None);
    }

    #[test]
    fn failed_connections_say_what_to_check() {
        let refused =
            SkillError::backend("forge-humo", None, "POST http://10.0.0.5:8188/generate: ErrorCode::ConnectionRefused");
        match no_answer(refused, "http://10.0.0.5:8188") {
            SkillError::Backend { service, status: None, message } => {
                assert_eq!(service, "forge-humo");
                assert!(message.starts_with("cannot reach HuMo (POST http://10.0.0.5:8188/generate:"), "{message}");
                assert!(message.contains("`forge-humo`"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let reset = SkillError::backend("forge-humo", None, "POST http://h/generate: ErrorCode::HttpProtocolError");
        assert!(
            matches!(no_answer(reset, "http://h"), SkillError::Backend { message, .. } if message.starts_with("no answer from HuMo at http://h"))
        );
        let answered = SkillError::backend("forge-humo", Some(500), "Internal Server Error");
        assert_eq!(no_answer(answered.clone(), "http://h"), answered);
    }

    #[test]
    fn summaries() {
        let m = Made {
            frames: 80,
            seconds: 3.2,
            width: 512,
            height: 512,
            video_codec: "avc1".into(),
            audio_codec: Some("mp4a".into()),
        };
        assert_eq!(
            summary("face.png", "voice.wav", 25, Some(&m)),
            "Lip-synced face.png to voice.wav: 3.2 s at 25 fps (80 frames, 512×512)"
        );
        assert_eq!(summary("face.png", "voice.wav", 25, None), "Lip-synced face.png to voice.wav at 25 fps");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(2048), "2.0 KB");
    }
}
