//! tts ("voice it"): text to speech on the studio's OpenAI-style speech server
//! (`POST /v1/audio/speech`: OpenAI itself, Kokoro-FastAPI, openedai-speech).
//!
//! The skill resolves voice, model and format from the input, then the
//! config's `[skills.tts.settings]`, then OpenAI's defaults; streams the
//! audio reply straight into one artifact; and turns the server's OpenAI-shaped
//! refusals into errors naming the skill's own field, listing the server's
//! voices or models when the refusal was about one of them.

mod errors;
mod speech;

use c41_kit::http::ServiceClient;
use c41_kit::media::Probe;
use c41_kit::progress::Progress;
use c41_kit::schema::JsonSchema;
use c41_kit::{Invocation, Outcome, Skill, SkillError, StaticDescription, Value, artifacts, json, settings};
use errors::{Lookup, SPEECH_PATH};
use serde::Deserialize;
use speech::Speech;

/// The service kind this skill needs.
const SERVICE_KIND: &str = "tts";

struct Tts;

// The input. The schema agents see (`input.schema.json`) is derived from
// this type; `C41_BLESS=1 cargo test -p tts` rewrites it after a change.
/// Text to speak, and how.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The words to speak, exactly as they should be read (1 to 4096 characters). Punctuation shapes the pauses; split longer scripts into several calls.
    #[schemars(length(min = 1, max = 4096))]
    pub text: String,
    /// Voice name. OpenAI's eleven: alloy (neutral), ash, ballad, coral, echo, fable, onyx (deep), nova, sage, shimmer, verse. Local servers have their own (Kokoro: af_heart, am_adam, bf_emma, ...); an unknown voice is refused with the list the server has. Default: the config's settings.voice, else alloy.
    #[schemars(length(min = 1, max = 100))]
    pub voice: Option<String>,
    /// Speech model: tts-1 (fast), tts-1-hd (higher quality), gpt-4o-mini-tts (follows `instructions`); local servers may name theirs differently (Kokoro: kokoro). Default: the config's settings.model, else tts-1.
    #[schemars(length(min = 1, max = 200))]
    pub model: Option<String>,
    /// Audio file format: mp3 (small, plays everywhere), wav (16-bit PCM, for editing), flac (lossless, compressed), pcm (raw 16-bit little-endian 24 kHz mono samples, no header). Default: the config's settings.format, else mp3.
    #[schemars(extend("enum" = ["mp3", "wav", "flac", "pcm"]))]
    pub format: Option<String>,
    /// Speaking rate: 1.0 is normal, 0.5 half as fast, 2.0 twice as fast.
    #[schemars(range(min = 0.25, max = 4.0), extend("default" = 1.0))]
    pub speed: Option<f64>,
    /// How to say it (tone, accent, emotion), e.g. "warm and slow, like a bedtime story". Only models like gpt-4o-mini-tts follow it; tts-1 and most local servers ignore it.
    #[schemars(length(min = 1, max = 4096))]
    pub instructions: Option<String>,
    /// File name stem for the audio, e.g. "intro" gives intro.mp3 (the extension follows `format`). Default: speech.
    #[schemars(length(min = 1, max = 100), regex(pattern = r"^[^/\\]+$"))]
    pub name: Option<String>,
}

impl Skill for Tts {
    const DESCRIPTION: Option<StaticDescription> = Some(StaticDescription {
        name: "tts",
        version: env!("CARGO_PKG_VERSION"),
        summary: "Speak text aloud: turn text into an audio file (mp3, wav, flac or pcm) with a chosen voice on the studio's text-to-speech server.",
        input_schema: include_str!("../input.schema.json"),
        output: "text: what was spoken, by which voice and model, how long and in what format, and where; one artifact: the audio file \
                     (audio/mpeg, audio/wav, audio/flac or audio/pcm); data: {voice, model, format, speed, characters, bytes, seconds (null when \
                     the file does not say), service}. Settings: voice, model, format (defaults for the matching inputs).",
        services: &[SERVICE_KIND],
    });

    async fn invoke(cx: Invocation) -> Result<Outcome, SkillError> {
        // Field-named errors for what the schema cannot say; `resolve`
        // reads the same fields with the settings' defaults.
        let _: Input = cx.input()?;
        let service = settings::require_service(SERVICE_KIND)?;
        let speech = speech::resolve(&cx.input, &settings::all())?;
        let client = ServiceClient::new(service.clone());
        let name = service.name.as_str();
        let chars = speech.characters();

        Progress::stage("speak")
            .fraction(0.0)
            .message(format!("{chars} characters as {} ({}) on {name}", speech.voice, speech.model))
            .report();
        // The audio stays in the host on its way to the store.
        let request = client.json_request(SPEECH_PATH, &speech.body())?;
        let mut response = client.send_streamed_any(request).await.map_err(|e| unreachable_service(e, &client))?;
        let status = response.status;
        if !response.is_success() {
            let bytes = response.contents().await;
            return Err(refusal(&client, status, &bytes, &speech).await);
        }
        cx.check_cancelled()?;

        // The duration is read from the file's header as the body streams
        // to the host.
        let expected = response.content_length();
        if expected == Some(0) {
            return Err(SkillError::backend(
                name,
                Some(status),
                format!("POST {SPEECH_PATH} answered {status} with no audio"),
            ));
        }
        let format = speech.format;
        let mut probe = Probe::new();
        let artifact =
            artifacts::save_streamed(&speech.file_name(), format.mime(), &mut response, name, &mut probe, |done| {
                let p = Progress::stage("download").message(format!("{done} bytes of {}", format.name()));
                match expected {
                    Some(total) if total > 0 => p.fraction(done as f32 / total as f32).report(),
                    _ => p.report(),
                }
                Ok(())
            })
            .await?;
        if artifact.bytes == 0 {
            // A streamed reply that turned out empty (the file is stored by now).
            return Err(SkillError::backend(
                name,
                Some(status),
                format!("POST {SPEECH_PATH} answered {status} with no audio"),
            ));
        }
        let seconds = speech::seconds(format, &probe.finish()).map(|s| (s * 1000.0).round() / 1000.0);
        Progress::stage("done").fraction(1.0).report();
        Ok(outcome(&speech, name, seconds, artifact))
    }
}

/// The outcome text and data for a stored file.
fn outcome(speech: &Speech, service: &str, seconds: Option<f64>, artifact: c41_kit::Artifact) -> Outcome {
    let chars = speech.characters();
    let plural = if chars == 1 { "" } else { "s" };
    let length = match seconds {
        Some(s) => format!("{s:.1} s of {}", speech.format.name()),
        None => format!("{} bytes of {}", artifact.bytes, speech.format.name()),
    };
    let text =
        format!("Spoke {chars} character{plural} as {} ({}), {length}: {}", speech.voice, speech.model, artifact.path);
    let data = json!({
        "voice": speech.voice,
        "model": speech.model,
        "format": speech.format.name(),
        "speed": speech.speed,
        "characters": chars,
        "bytes": artifact.bytes,
        "seconds": seconds,
        "service": service,
    });
    Outcome { text, artifacts: vec![artifact], data }
}

/// A connection failure, said plainly: which server, where, and what to check.
fn unreachable_service(e: SkillError, client: &ServiceClient) -> SkillError {
    match e {
        SkillError::Backend { service, status: None, message } => SkillError::backend(
            service.clone(),
            None,
            format!(
                "cannot reach the text-to-speech server `{service}` at {} ({message}); is it running, and is the URL in the c41 config right?",
                client.service.url
            ),
        ),
        other => other,
    }
}

/// The error for a refused request, with the server's voices or models
/// listed when the refusal was about one of them (best effort: a server
/// without the listing route keeps its own message, which OpenAI's lists
/// the allowed values in anyway).
async fn refusal(client: &ServiceClient, status: u16, body: &[u8], speech: &Speech) -> SkillError {
    let service = client.service.name.as_str();
    let (err, lookup) = errors::explain(service, status, body, speech);
    let (path, what, value, from) = match lookup {
        Lookup::Nothing => return err,
        Lookup::Voices => ("/v1/audio/voices", "voice", &speech.voice, speech.voice_from),
        Lookup::Models => ("/v1/models", "model", &speech.model, speech.model_from),
    };
    let names = match client.get_json::<Value>(path).await {
        Ok(listing) => errors::names(&listing),
        Err(_) => Vec::new(),
    };
    match err {
        SkillError::InvalidInput { field, .. } if !names.is_empty() => {
            SkillError::invalid(field, errors::unknown(service, what, value, from, &names))
        }
        other => other,
    }
}

c41_kit::skill!(Tts);

#[cfg(test)]
mod tests {
    use super::*;
    use speech::Format;

    #[test]
    fn schema_is_json_and_leaves_settings_defaults_to_the_skill() {
        let schema: Value = serde_json::from_str(include_str!("../input.schema.json")).unwrap();
        assert_eq!(schema["additionalProperties"], false);
        let props = schema["properties"].as_object().unwrap();
        // The host fills in schema defaults before the skill runs, which
        // would hide settings.voice/model/format: those have none.
        for key in ["voice", "model", "format"] {
            assert!(props[key].get("default").is_none(), "{key}");
        }
        let formats: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(props["format"]["enum"], json!(formats));
        assert_eq!((props["text"]["minLength"].as_u64(), props["text"]["maxLength"].as_u64()), (Some(1), Some(4096)));
        assert!(props["voice"].get("enum").is_none(), "local servers have other voices");
    }
}

c41_kit::input_schema_test!(Input);
