//! The pure half of the skill: input and settings to the MMAudio form, the
//! server's complaints back to the skill's own field names, and how the
//! result is named. No host calls here, so all of it is unit-tested natively.

use c41_kit::fastapi;
use c41_kit::{SkillError, Value};

/// Longest clip MMAudio makes (the server's `max_duration`), in seconds.
pub const MAX_SECONDS: f64 = 30.0;
/// Default length when neither the input nor the settings give one.
pub const DEFAULT_SECONDS: f64 = 8.0;
/// Default sampling steps (MMAudio's own default).
pub const DEFAULT_STEPS: u64 = 25;
/// Most sampling steps the server accepts.
pub const MAX_STEPS: u64 = 1000;
/// Default guidance strength (MMAudio's own default).
pub const DEFAULT_CFG: f64 = 4.5;
/// Largest guidance strength the skill accepts (MMAudio is used around 4.5).
pub const MAX_CFG: f64 = 20.0;
/// Largest seed the skill hands out or accepts (2^53 - 1: survives any JSON client).
pub const MAX_SEED: u64 = (1 << 53) - 1;

/// Text-to-audio or video-to-audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A FLAC of the prompt's sound.
    TextToAudio,
    /// The input video with a generated soundtrack (MP4).
    VideoToAudio,
}

impl Mode {
    /// The name reported in `data.mode`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::TextToAudio => "text-to-audio",
            Mode::VideoToAudio => "video-to-audio",
        }
    }
}

/// Everything one request needs, resolved from input, settings and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// What should be heard.
    pub prompt: String,
    /// What should not be heard (empty: none).
    pub negative_prompt: String,
    /// Seconds of sound (with a video: the clip is cut to this).
    pub seconds: f64,
    /// Sampling steps.
    pub steps: u64,
    /// Guidance strength.
    pub cfg: f64,
    /// Sampling seed (drawn when the input has none).
    pub seed: u64,
    /// Whether a video was given.
    pub mode: Mode,
    /// Output file stem asked for.
    pub name: Option<String>,
}

/// A number from the input, else from the settings, else `default`. A
/// setting of the wrong type or out of range is the config's fault and is
/// reported as such, naming the key.
fn number(
    input: &Value,
    settings: &Value,
    key: &str,
    default: f64,
    ok: impl Fn(f64) -> bool,
    rule: &str,
) -> Result<f64, SkillError> {
    if let Some(v) = input.get(key).filter(|v| !v.is_null()) {
        let n = v
            .as_f64()
            .filter(|n| ok(*n))
            .ok_or_else(|| SkillError::invalid(key, format!("must be {rule}, got {v}")))?;
        return Ok(n);
    }
    match settings.get(key).filter(|v| !v.is_null()) {
        None => Ok(default),
        Some(v) => v.as_f64().filter(|n| ok(*n)).ok_or_else(|| {
            SkillError::internal(format!(
                "the c41 config sets [skills.audio-gen.settings] {key} = {v}, which must be {rule}; fix or remove it"
            ))
        }),
    }
}

impl Params {
    /// Resolves the request from the validated `input`, the skill's
    /// `settings` (`seconds`, `steps`, `cfg` override the built-in defaults;
    /// the input overrides both) and `random_seed` (called only when the
    /// input has no seed).
    pub fn resolve(input: &Value, settings: &Value, random_seed: impl FnOnce() -> u64) -> Result<Params, SkillError> {
        let prompt = input.get("prompt").and_then(Value::as_str).unwrap_or("").trim().to_string();
        if prompt.is_empty() {
            return Err(SkillError::invalid("prompt", "say what should be heard, e.g. \"rain on a tin roof\""));
        }
        let negative_prompt = input.get("negative_prompt").and_then(Value::as_str).unwrap_or("").trim().to_string();
        let seconds = number(
            input,
            settings,
            "seconds",
            DEFAULT_SECONDS,
            |s| s > 0.0 && s <= MAX_SECONDS,
            "a number of seconds above 0 and at most 30",
        )?;
        let steps = number(
            input,
            settings,
            "steps",
            DEFAULT_STEPS as f64,
            |s| s.fract() == 0.0 && (1.0..=MAX_STEPS as f64).contains(&s),
            "a whole number from 1 to 1000",
        )? as u64;
        let cfg = number(
            input,
            settings,
            "cfg",
            DEFAULT_CFG,
            |c| c.is_finite() && (0.0..=MAX_CFG).contains(&c),
            "a number from 0 to 20",
        )?;
        let seed = match input.get("seed").filter(|v| !v.is_null()) {
            Some(v) => v.as_u64().filter(|s| *s <= MAX_SEED).ok_or_else(|| {
                SkillError::invalid("seed", format!("must be a whole number from 0 to {MAX_SEED}, got {v}"))
            })?,
            None => random_seed() & MAX_SEED,
        };
        let mode =
            if input.get("video").is_some_and(|v| !v.is_null()) { Mode::VideoToAudio } else { Mode::TextToAudio };
        let name =
            input.get("name").and_then(Value::as_str).map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
        Ok(Params { prompt, negative_prompt, seconds, steps, cfg, seed, mode, name })
    }

    /// The text fields of the `/process` form, in the server's names. Every
    /// value is sent explicitly (the seed above all, so the result can be
    /// reproduced); an empty negative prompt is left out, as the server
    /// treats it as absent anyway.
    pub fn form_fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![("prompt", self.prompt.clone())];
        if !self.negative_prompt.is_empty() {
            f.push(("negative_prompt", self.negative_prompt.clone()));
        }
        f.push(("duration", fmt_number(self.seconds)));
        f.push(("num_steps", self.steps.to_string()));
        f.push(("cfg_strength", fmt_number(self.cfg)));
        f.push(("seed", self.seed.to_string()));
        f
    }
}

/// A float as Python's `float()` reads it back exactly (`8`, `2.5`).
fn fmt_number(x: f64) -> String {
    format!("{x}")
}

/// The skill's input field for a field the server blamed.
pub fn input_field(server_field: &str) -> Option<&'static str> {
    Some(match server_field {
        "prompt" => "prompt",
        "negative_prompt" => "negative_prompt",
        "duration" => "seconds",
        "num_steps" => "steps",
        "cfg_strength" => "cfg",
        "seed" => "seed",
        "video" => "video",
        _ => return None,
    })
}

/// The error for a non-2xx reply of `service`: the kit's FastAPI reading,
/// which names the skill's field (via [`input_field`]) for a validation
/// error or a wrapper's own 400 that starts with the field it refused
/// (`{"detail": "video: not an MP4/MOV file"}`). Anything else is a backend
/// error with the status and the server's words.
pub fn explain(service: &str, status: u16, body: &[u8]) -> SkillError {
    match fastapi::error(service, status, body, input_field) {
        SkillError::Backend { service, status, message } if message.is_empty() => {
            SkillError::backend(service, status, "empty error reply")
        }
        other => other,
    }
}

/// The error for a request to `service` at `url` that got no reply at all
/// (`detail`: the connection error). A refused or unresolvable address means
/// the server is not there; anything else (a protocol error, a reset) means
/// it was there and dropped the request, which with an upload usually means
/// it answered before taking the whole file.
pub fn no_reply(service: &str, url: &str, detail: &str, video: Option<&str>) -> SkillError {
    const ABSENT: &[&str] = &[
        "ConnectionRefused",
        "ConnectionTimeout",
        "DnsError",
        "DnsTimeout",
        "DestinationNotFound",
        "DestinationUnavailable",
        "DestinationIpUnroutable",
        "DestinationIpProhibited",
    ];
    let message = if ABSENT.iter().any(|a| detail.contains(a)) {
        format!("cannot reach MMAudio `{service}` at {url} ({detail}); is the server on the workstation running?")
    } else {
        let upload = match video {
            Some(v) => format!(
                "; it may have answered before taking the whole upload of {v} (an error or a size limit): see the server's log"
            ),
            None => String::new(),
        };
        format!("the request to MMAudio `{service}` at {url} failed without a reply ({detail}){upload}")
    };
    SkillError::backend(service, None, message)
}

/// The bare media type of a `Content-Type` value (`audio/flac; x=y` -> `audio/flac`).
pub fn bare_mime(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// The file extension for the reply: from its MIME type, else from the
/// `Content-Disposition` file name, else what the mode implies.
pub fn extension(mime: &str, disposition: Option<&str>, mode: Mode) -> String {
    let known = match mime {
        "audio/flac" | "audio/x-flac" => Some("flac"),
        "video/mp4" => Some("mp4"),
        "audio/mpeg" => Some("mp3"),
        "audio/wav" | "audio/x-wav" | "audio/wave" => Some("wav"),
        "audio/ogg" => Some("ogg"),
        "video/quicktime" => Some("mov"),
        "video/webm" => Some("webm"),
        _ => None,
    };
    if let Some(e) = known {
        return e.into();
    }
    let from_disposition = disposition
        .and_then(|d| d.split("filename=").nth(1))
        .map(|f| f.split(';').next().unwrap_or("").trim().trim_matches('"'))
        .and_then(|f| f.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()))
        .filter(|e| !e.is_empty() && e.len() <= 5 && e.chars().all(|c| c.is_ascii_alphanumeric()));
    from_disposition.unwrap_or_else(|| match mode {
        Mode::TextToAudio => "flac".into(),
        Mode::VideoToAudio => "mp4".into(),
    })
}

/// The stored file's name: `name` (an extension matching the result's is
/// dropped, any other kept as part of the stem), else `<video stem>-sound`
/// for a video, else `sound`; then `.ext`.
pub fn file_name(name: Option<&str>, video_name: Option<&str>, ext: &str) -> String {
    let stem = match (name, video_name) {
        (Some(n), _) => {
            let n = n.trim();
            match n.rsplit_once('.') {
                Some((s, e)) if e.eq_ignore_ascii_case(ext) && !s.is_empty() => s.to_string(),
                _ => n.to_string(),
            }
        }
        (None, Some(v)) => {
            let base = v.rsplit(['/', '\\']).next().unwrap_or(v);
            let stem = base.rsplit_once('.').map_or(base, |(s, _)| s);
            // An artifact input carries the store's `-<12 hex>` suffix; the
            // store adds a fresh one to the result.
            let stem = match stem.rsplit_once('-') {
                Some((s, h))
                    if !s.is_empty()
                        && h.len() == 12
                        && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
                {
                    s
                }
                _ => stem,
            };
            if stem.is_empty() { "video-sound".to_string() } else { format!("{stem}-sound") }
        }
        (None, None) => "sound".to_string(),
    };
    format!("{stem}.{ext}")
}

/// `'rain on a tin roof'`, cut to a readable length.
pub fn quoted_prompt(prompt: &str) -> String {
    const MAX: usize = 80;
    if prompt.chars().count() <= MAX {
        format!("'{prompt}'")
    } else {
        let cut: String = prompt.chars().take(MAX - 1).collect();
        format!("'{}…'", cut.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use c41_kit::json;

    fn resolve(input: Value, settings: Value) -> Result<Params, SkillError> {
        Params::resolve(&input, &settings, || 42)
    }

    #[test]
    fn defaults_are_mmaudios_and_a_missing_seed_is_drawn() {
        let p = resolve(json!({"prompt": " rain on a tin roof "}), json!({})).unwrap();
        assert_eq!(
            p,
            Params {
                prompt: "rain on a tin roof".into(),
                negative_prompt: String::new(),
                seconds: 8.0,
                steps: 25,
                cfg: 4.5,
                seed: 42,
                mode: Mode::TextToAudio,
                name: None,
            }
        );
        assert_eq!(
            p.form_fields(),
            vec![
                ("prompt", "rain on a tin roof".to_string()),
                ("duration", "8".into()),
                ("num_steps", "25".into()),
                ("cfg_strength", "4.5".into()),
                ("seed", "42".into()),
            ]
        );
        // A drawn seed stays below 2^53.
        let p = Params::resolve(&json!({"prompt": "x"}), &json!({}), || u64::MAX).unwrap();
        assert_eq!(p.seed, MAX_SEED);
    }

    #[test]
    fn settings_override_defaults_and_input_overrides_settings() {
        let settings = json!({"seconds": 4, "steps": 50, "cfg": 6.0});
        let p = resolve(json!({"prompt": "x"}), settings.clone()).unwrap();
        assert_eq!((p.seconds, p.steps, p.cfg), (4.0, 50, 6.0));
        let p = resolve(
            json!({"prompt": "x", "seconds": 2.5, "steps": 10, "cfg": 3, "seed": 7, "negative_prompt": "music"}),
            settings,
        )
        .unwrap();
        assert_eq!((p.seconds, p.steps, p.cfg, p.seed), (2.5, 10, 3.0, 7));
        let f = p.form_fields();
        assert!(f.contains(&("negative_prompt", "music".into())), "{f:?}");
        assert!(f.contains(&("duration", "2.5".into())), "{f:?}");
        assert!(f.contains(&("cfg_strength", "3".into())), "{f:?}");
    }

    #[test]
    fn a_video_selects_video_to_audio() {
        let p = resolve(json!({"prompt": "x", "video": "clip.mp4", "name": "take1"}), json!({})).unwrap();
        assert_eq!((p.mode, p.name.as_deref()), (Mode::VideoToAudio, Some("take1")));
        assert_eq!(p.mode.as_str(), "video-to-audio");
    }

    #[test]
    fn bad_values_name_the_input_field_or_the_setting() {
        let e = resolve(json!({"prompt": "x", "seconds": 31}), json!({})).unwrap_err();
        assert!(matches!(&e, SkillError::InvalidInput { field, .. } if field == "seconds"), "{e:?}");
        let e = resolve(json!({"prompt": "x", "seconds": 0}), json!({})).unwrap_err();
        assert!(matches!(&e, SkillError::InvalidInput { field, .. } if field == "seconds"), "{e:?}");
        let e = resolve(json!({"prompt": "x", "steps": 2.5}), json!({})).unwrap_err();
        assert!(matches!(&e, SkillError::InvalidInput { field, .. } if field == "steps"), "{e:?}");
        let e = resolve(json!({"prompt": "   "}), json!({})).unwrap_err();
        assert!(matches!(&e, SkillError::InvalidInput { field, .. } if field == "prompt"), "{e:?}");
        match resolve(json!({"prompt": "x"}), json!({"seconds": "long"})).unwrap_err() {
            SkillError::Internal(m) => {
                assert!(m.contains("seconds = \"long\"") && m.contains("skills.audio-gen.settings"), "{m}")
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn server_complaints_name_the_skills_fields() {
        let not_le = br#"{"detail":[{"loc":["body","duration"],"msg":"ensure this value is less than or equal to 30","type":"value_error.number.not_le","ctx":{"limit_value":30}}]}"#;
        match explain("forge-mmaudio", 422, not_le) {
            SkillError::InvalidInput { field, reason } => {
                assert_eq!(field, "seconds");
                assert!(reason.contains("forge-mmaudio") && reason.contains("less than or equal to 30"), "{reason}");
            }
            e => panic!("{e:?}"),
        }
        for (server, ours) in [("num_steps", "steps"), ("cfg_strength", "cfg"), ("prompt", "prompt"), ("seed", "seed")]
        {
            let body = format!(r#"{{"detail":[{{"loc":["body","{server}"],"msg":"bad","type":"x"}}]}}"#);
            assert!(
                matches!(explain("m", 422, body.as_bytes()), SkillError::InvalidInput { field, .. } if field == ours)
            );
        }
        match explain("m", 400, br#"{"detail":"video: not an MP4/MOV file"}"#) {
            SkillError::InvalidInput { field, reason } => {
                assert_eq!(field, "video");
                assert!(reason.contains("not an MP4/MOV file"), "{reason}");
            }
            e => panic!("{e:?}"),
        }
        // A broken body is nobody's field; a 5xx never blames the input.
        let e = explain("m", 400, br#"{"detail":"There was an error parsing the body"}"#);
        assert!(
            matches!(&e, SkillError::Backend { status: Some(400), message, .. } if message.contains("parsing the body")),
            "{e:?}"
        );
        let e = explain("m", 500, b"Internal Server Error");
        assert_eq!(e, SkillError::backend("m", Some(500), "Internal Server Error"));
        let e = explain("m", 500, br#"{"detail":"video: encoder crashed"}"#);
        assert!(matches!(e, SkillError::Backend { status: Some(500), .. }));
        let e = explain("m", 502, b"");
        assert_eq!(e, SkillError::backend("m", Some(502), "empty error reply"));
    }

    #[test]
    fn no_reply_says_whether_the_server_is_there() {
        let e =
            no_reply("m", "http://w:8000/process", "POST http://w:8000/process: ErrorCode::ConnectionRefused", None);
        assert!(
            matches!(&e, SkillError::Backend { status: None, message, .. } if message.starts_with("cannot reach MMAudio `m` at http://w:8000/process")),
            "{e:?}"
        );
        let e = no_reply("m", "http://w:8000/process", "ErrorCode::HttpProtocolError", Some("clip.mp4"));
        assert!(
            matches!(&e, SkillError::Backend { status: None, message, .. } if message.contains("failed without a reply (ErrorCode::HttpProtocolError)") && message.contains("whole upload of clip.mp4")),
            "{e:?}"
        );
        let e = no_reply("m", "u", "ErrorCode::ConnectionReadTimeout", None);
        assert!(
            matches!(&e, SkillError::Backend { message, .. } if !message.contains("upload") && message.contains("without a reply")),
            "{e:?}"
        );
    }

    #[test]
    fn names_and_extensions() {
        assert_eq!(bare_mime("audio/flac; charset=x"), "audio/flac");
        assert_eq!(extension("audio/flac", None, Mode::VideoToAudio), "flac");
        assert_eq!(extension("video/mp4", None, Mode::TextToAudio), "mp4");
        assert_eq!(
            extension("application/octet-stream", Some("attachment; filename=\"output.wav\""), Mode::TextToAudio),
            "wav"
        );
        assert_eq!(extension("", None, Mode::VideoToAudio), "mp4");
        assert_eq!(file_name(None, None, "flac"), "sound.flac");
        assert_eq!(file_name(None, Some("fox run.mp4"), "mp4"), "fox run-sound.mp4");
        assert_eq!(file_name(Some("rain"), Some("clip.mp4"), "mp4"), "rain.mp4");
        assert_eq!(file_name(None, Some("boat-7e0d37e9eeb5.mp4"), "mp4"), "boat-sound.mp4");
        assert_eq!(file_name(None, Some("boat-take2.mp4"), "mp4"), "boat-take2-sound.mp4");
        assert_eq!(file_name(Some("rain.FLAC"), None, "flac"), "rain.flac");
        assert_eq!(file_name(Some("take.2"), None, "flac"), "take.2.flac");
        assert_eq!(quoted_prompt("rain"), "'rain'");
        assert_eq!(quoted_prompt(&"a".repeat(200)).chars().count(), 82);
    }
}
