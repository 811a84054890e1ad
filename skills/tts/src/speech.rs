//! The skill's input, with the config's settings as defaults, turned into the
//! JSON body of `POST /v1/audio/speech` and the name of the file to store.
//!
//! Pure logic (no host calls), so it is unit-tested natively.

use c41_kit::media::{Media, audio};
use c41_kit::{SkillError, Value, json};

/// Voice used when neither the input nor `settings.voice` names one: OpenAI's
/// first voice, which the OpenAI-compatible local servers also accept or map.
pub const DEFAULT_VOICE: &str = "alloy";
/// Model used when neither the input nor `settings.model` names one.
pub const DEFAULT_MODEL: &str = "tts-1";
/// Stem of the stored file when the input gives no `name`.
pub const DEFAULT_STEM: &str = "speech";
/// Sample rate of headerless `pcm` replies: OpenAI's (and Kokoro's) 24 kHz.
pub const PCM_RATE: u32 = 24_000;

/// The audio container the server is asked for; each has its extension and
/// MIME type, so the stored file opens in the right player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// MPEG Layer III (the OpenAI default).
    Mp3,
    /// RIFF/WAVE, 16-bit PCM.
    Wav,
    /// FLAC, lossless.
    Flac,
    /// Raw signed 16-bit little-endian samples, 24 kHz mono, no header.
    Pcm,
}

impl Format {
    /// Every format the skill accepts, in schema order.
    pub const ALL: [Format; 4] = [Format::Mp3, Format::Wav, Format::Flac, Format::Pcm];

    /// The `response_format` value, also the file extension.
    pub fn name(self) -> &'static str {
        match self {
            Format::Mp3 => "mp3",
            Format::Wav => "wav",
            Format::Flac => "flac",
            Format::Pcm => "pcm",
        }
    }

    /// The MIME type the artifact is stored with (OpenAI's `Content-Type`).
    pub fn mime(self) -> &'static str {
        match self {
            Format::Mp3 => "audio/mpeg",
            Format::Wav => "audio/wav",
            Format::Flac => "audio/flac",
            Format::Pcm => "audio/pcm",
        }
    }

    /// The kit's reader for this format's header (`None` for headerless PCM).
    pub fn kind(self) -> Option<audio::Kind> {
        match self {
            Format::Mp3 => Some(audio::Kind::Mp3),
            Format::Wav => Some(audio::Kind::Wav),
            Format::Flac => Some(audio::Kind::Flac),
            Format::Pcm => None,
        }
    }

    /// Parses a format name (case-insensitive).
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(s))
    }
}

/// Where a defaulted value came from, so an error about it can say where to
/// fix it (the call, or the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The caller's input.
    Input,
    /// `[skills.tts.settings]` in the config.
    Settings,
    /// The skill's built-in default.
    Builtin,
}

/// Seconds of audio in a stored `format` reply (`None` when its header does
/// not say): PCM is measured at [`PCM_RATE`], mono, 16-bit.
pub fn seconds(format: Format, media: &Media) -> Option<f64> {
    match format.kind() {
        Some(kind) => media.audio(kind)?.seconds,
        None => Some(audio::pcm_seconds(media.bytes, PCM_RATE, 1, 2)),
    }
}

/// One resolved speech request.
#[derive(Debug, Clone, PartialEq)]
pub struct Speech {
    /// The text to speak.
    pub text: String,
    /// Voice name, sent as is (servers have their own voices).
    pub voice: String,
    /// Where `voice` came from.
    pub voice_from: Source,
    /// Model id.
    pub model: String,
    /// Where `model` came from.
    pub model_from: Source,
    /// Audio format.
    pub format: Format,
    /// Speaking rate, 0.25 to 4.
    pub speed: f64,
    /// Style instructions (only `gpt-4o-mini-tts`-like models follow them).
    pub instructions: Option<String>,
    /// File stem of the stored artifact.
    pub stem: String,
}

impl Speech {
    /// Number of characters (Unicode scalar values, as the server counts).
    pub fn characters(&self) -> usize {
        self.text.chars().count()
    }

    /// The JSON body of `POST /v1/audio/speech`. Format and speed are always
    /// sent, so the server never applies a default of its own that differs
    /// from the one reported back.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "model": self.model,
            "input": self.text,
            "voice": self.voice,
            "response_format": self.format.name(),
            "speed": self.speed,
        });
        if let Some(i) = &self.instructions {
            body["instructions"] = json!(i);
        }
        body
    }

    /// The artifact's suggested file name (`speech.mp3`, `<name>.wav`).
    pub fn file_name(&self) -> String {
        format!("{}.{}", self.stem, self.format.name())
    }
}

/// A string from the input, else a string setting, else the built-in default.
fn pick(input: &Value, settings: &Value, key: &str, builtin: &str) -> (String, Source) {
    let nonempty =
        |v: &Value, k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.trim().is_empty()).map(str::to_string);
    if let Some(v) = nonempty(input, key) {
        (v, Source::Input)
    } else if let Some(v) = nonempty(settings, key) {
        (v, Source::Settings)
    } else {
        (builtin.to_string(), Source::Builtin)
    }
}

/// The file stem from `name`: without a trailing audio extension (so
/// `hello.mp3` does not become `hello.mp3.mp3`), `speech` when empty. The
/// host sanitises the rest of the name.
fn stem(name: Option<&str>) -> String {
    let name = name.map(str::trim).unwrap_or("");
    let name = match name.rsplit_once('.') {
        Some((s, ext)) if Format::parse(ext).is_some() => s,
        _ => name,
    };
    if name.is_empty() { DEFAULT_STEM.to_string() } else { name.to_string() }
}

/// Resolves the host-validated `input` against the skill's `settings`
/// (`voice`, `model`, `format`). The schema already bounds every field; this
/// only catches what the schema cannot (whitespace-only text, a bad
/// `settings.format`).
pub fn resolve(input: &Value, settings: &Value) -> Result<Speech, SkillError> {
    let text = input
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| SkillError::invalid("text", "required string is missing"))?;
    if text.trim().is_empty() {
        return Err(SkillError::invalid("text", "is only whitespace: give the words to speak"));
    }
    let (voice, voice_from) = pick(input, settings, "voice", DEFAULT_VOICE);
    let (model, model_from) = pick(input, settings, "model", DEFAULT_MODEL);
    let (format_name, format_from) = pick(input, settings, "format", Format::Mp3.name());
    let format = Format::parse(&format_name).ok_or_else(|| {
        let allowed: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        let whence = if format_from == Source::Settings { " (from settings.format in the c41 config)" } else { "" };
        SkillError::invalid("format", format!("`{format_name}`{whence} is not one of {}", allowed.join(", ")))
    })?;
    let speed = input.get("speed").and_then(Value::as_f64).unwrap_or(1.0);
    if !(0.25..=4.0).contains(&speed) {
        return Err(SkillError::invalid("speed", format!("{speed} is outside 0.25..4.0")));
    }
    let instructions =
        input.get("instructions").and_then(Value::as_str).filter(|s| !s.trim().is_empty()).map(str::to_string);
    Ok(Speech {
        text: text.to_string(),
        voice,
        voice_from,
        model,
        model_from,
        format,
        speed,
        instructions,
        stem: stem(input.get("name").and_then(Value::as_str)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_wins_over_settings_which_win_over_builtins() {
        let settings = json!({"voice": "nova", "model": "tts-1-hd", "format": "wav"});
        let s = resolve(&json!({"text": "Hi.", "speed": 1.0}), &settings).unwrap();
        assert_eq!((s.voice.as_str(), s.voice_from), ("nova", Source::Settings));
        assert_eq!((s.model.as_str(), s.model_from), ("tts-1-hd", Source::Settings));
        assert_eq!(s.format, Format::Wav);

        let s =
            resolve(&json!({"text": "Hi.", "voice": "echo", "model": "gpt-4o-mini-tts", "format": "flac"}), &settings)
                .unwrap();
        assert_eq!((s.voice.as_str(), s.voice_from), ("echo", Source::Input));
        assert_eq!((s.model.as_str(), s.format), ("gpt-4o-mini-tts", Format::Flac));

        let s = resolve(&json!({"text": "Hi."}), &json!({})).unwrap();
        assert_eq!((s.voice.as_str(), s.voice_from), (DEFAULT_VOICE, Source::Builtin));
        assert_eq!((s.model.as_str(), s.format, s.speed), (DEFAULT_MODEL, Format::Mp3, 1.0));
        assert_eq!(s.file_name(), "speech.mp3");
    }

    #[test]
    fn body_has_openai_field_names() {
        let s = resolve(
            &json!({"text": "Hello there.", "voice": "coral", "format": "pcm", "speed": 1.5, "instructions": "cheerful", "name": "greeting"}),
            &json!({}),
        )
        .unwrap();
        assert_eq!(
            s.body(),
            json!({"model": "tts-1", "input": "Hello there.", "voice": "coral", "response_format": "pcm", "speed": 1.5, "instructions": "cheerful"})
        );
        assert_eq!(s.file_name(), "greeting.pcm");
        assert_eq!(s.characters(), 12);
        let plain = resolve(&json!({"text": "x"}), &json!({})).unwrap().body();
        assert!(plain.get("instructions").is_none(), "{plain}");
    }

    #[test]
    fn seconds_read_the_asked_format() {
        let mut probe = c41_kit::media::Probe::new();
        probe.feed(&[0u8; 48_000]);
        let media = probe.finish();
        assert_eq!(seconds(Format::Pcm, &media), Some(1.0), "24 kHz mono 16-bit");
        assert_eq!(seconds(Format::Wav, &media), None, "no RIFF header");
    }

    #[test]
    fn name_keeps_no_duplicate_extension() {
        assert_eq!(stem(Some("intro.mp3")), "intro");
        assert_eq!(stem(Some("intro.WAV")), "intro");
        assert_eq!(stem(Some("v1.2-intro")), "v1.2-intro");
        assert_eq!(stem(Some("  ")), "speech");
        assert_eq!(stem(None), "speech");
    }

    #[test]
    fn refusals_name_the_field() {
        let field = |e: SkillError| match e {
            SkillError::InvalidInput { field, reason } => (field, reason),
            other => panic!("{other:?}"),
        };
        let (f, _) = field(resolve(&json!({"text": "  \n"}), &json!({})).unwrap_err());
        assert_eq!(f, "text");
        let (f, why) = field(resolve(&json!({"text": "x"}), &json!({"format": "ogg"})).unwrap_err());
        assert_eq!(f, "format");
        assert!(why.contains("settings.format") && why.contains("mp3, wav, flac, pcm"), "{why}");
        let (f, _) = field(resolve(&json!({"text": "x", "speed": 9.0}), &json!({})).unwrap_err());
        assert_eq!(f, "speed");
    }
}
