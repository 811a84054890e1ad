//! The guest side of c41: everything a skill component needs besides its own
//! logic, written once so skills never copy a client or a helper.
//!
//! A skill is a type implementing [`Skill`], exported with [`skill!`]. Its
//! input is a type: the schema agents see is derived from it
//! ([`schema::input_schema`], kept in a file the component embeds) and
//! [`Invocation::input`] parses it with field-named errors.
//!
//! ```no_run
//! use c41_kit::progress::Progress;
//! use c41_kit::schema::JsonSchema;
//! use c41_kit::{Invocation, Outcome, Skill, SkillError, StaticDescription, json, settings};
//! use serde::Deserialize;
//!
//! /// The city to forecast.
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Input {
//!     /// A city name.
//!     #[schemars(length(min = 1, max = 200))]
//!     city: String,
//! }
//!
//! struct Weather;
//!
//! impl Skill for Weather {
//!     const DESCRIPTION: Option<StaticDescription> = Some(StaticDescription {
//!         name: "weather",
//!         version: "0.1.0",
//!         summary: "Today's weather for a city.",
//!         // In a real crate: include_str!("../input.schema.json"), kept
//!         // current by `schema::assert_current` in a unit test.
//!         input_schema: r#"{"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}"#,
//!         output: "text: the forecast",
//!         services: &["http"],
//!     });
//!
//!     async fn invoke(cx: Invocation) -> Result<Outcome, SkillError> {
//!         let input: Input = cx.input()?;
//!         let service = settings::require_service("http")?;
//!         Progress::stage("ask").fraction(0.5).message(format!("asking {}", service.name)).report();
//!         let client = c41_kit::http::ServiceClient::new(service);
//!         let now: c41_kit::Value = client.get_json(&format!("/now?city={}", input.city)).await?;
//!         Ok(Outcome { text: format!("{}: {}", input.city, now["sky"]), artifacts: vec![], data: json!(now) })
//!     }
//! }
//!
//! c41_kit::skill!(Weather);
//! # fn main() {}
//! ```
//!
//! **Features.** The core is always there: [`Skill`] and [`skill!`],
//! [`settings`], [`inputs`], [`artifacts`], [`progress`], [`log`],
//! [`state`], [`websocket`], [`schema`] and one HTTP client for granted
//! services ([`http::ServiceClient`]). What a weather skill does not need is
//! behind a feature: `media` (image, audio and MP4 probes), `multipart`
//! (form bodies whose input files the host splices into the request),
//! `fastapi` and `openai` (those services' error bodies, explained field
//! by field), `comfyui` (the ComfyUI client; turns on `media` and
//! `multipart`).
//!
//! The kit runs `invoke` on wstd's single-threaded executor, so skills write
//! ordinary async Rust and use `wstd::http` for outgoing requests (standard
//! `wasi:http`, filtered by the host's grants).
#![deny(missing_docs)]

pub mod artifacts;
#[cfg(feature = "comfyui")]
pub mod comfyui;
pub mod describe;
pub mod error;
#[cfg(feature = "fastapi")]
pub mod fastapi;
pub mod http;
pub mod inputs;
pub mod log;
#[cfg(feature = "media")]
pub mod media;
#[cfg(feature = "multipart")]
pub mod multipart;
#[cfg(feature = "openai")]
pub mod openai;
pub mod progress;
pub mod schema;
pub mod settings;
pub mod state;
pub mod websocket;

/// The bindings generated from `wit/skill.wit`. Skills rarely need them
/// directly: the modules of this crate wrap them.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        // The crate's own copy of the top-level `wit/`, so that the kit
        // builds wherever it is (a test keeps the two identical).
        path: "wit",
        world: "skill",
        pub_export_macro: true,
        export_macro_name: "__export_skill_world",
        default_bindings_module: "c41_kit::bindings",
        // wasi:io as wstd sees it, so that a response body's stream goes
        // to `copy-from` as is.
        with: {
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
        },
    });
}

pub use bindings::c41::skill::types::{Artifact, Description};
pub use describe::StaticDescription;
pub use error::SkillError;
pub use serde_json::{Value, json};
pub use wstd;

/// A random lowercase uuid4 (the host's randomness): job ids a server
/// insists on, multipart boundaries.
pub fn uuid4() -> String {
    let mut b = [0u8; 16];
    wstd::rand::get_random_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// What a skill returns on success.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// What the agent or person reads.
    pub text: String,
    /// Files stored through [`artifacts`], in order.
    pub artifacts: Vec<Artifact>,
    /// Structured result (an object).
    pub data: Value,
}

/// One invocation: its validated input and id.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The input object, already validated against the skill's schema.
    pub input: Value,
    /// Unique id of this invocation (a uuid), usable as a backend client id.
    pub id: String,
}

impl Invocation {
    /// The input as `T`, typically the type whose schema the skill
    /// describes ([`schema::input_schema`]). The host has checked the input
    /// against that schema already, so this fails only where the type is
    /// stricter; the error names the field (`size.width`, `images[2]`).
    pub fn input<T: serde::de::DeserializeOwned>(&self) -> Result<T, SkillError> {
        deserialize_at(&self.input).map_err(|(field, why)| SkillError::invalid(field, why))
    }

    /// A string field of the input, if present.
    pub fn str(&self, field: &str) -> Option<&str> {
        self.input.get(field).and_then(Value::as_str)
    }

    /// A seed for "random when absent": drawn from this invocation's id (a
    /// random uuid4), so it is random per call yet the same when the host
    /// resumes the call after a restart (`c41 resume` reuses the id), which
    /// keeps a resumed job's parameters and reported seed those of the job
    /// already running. At most 2^53 - 1, exact in JSON.
    pub fn random_seed(&self) -> u64 {
        // FNV-1a over the id, then splitmix64 to spread the bits.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.id.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (h ^ (h >> 31)) & ((1u64 << 53) - 1)
    }

    /// A string field the schema requires.
    pub fn required_str(&self, field: &str) -> Result<&str, SkillError> {
        self.str(field).ok_or_else(|| SkillError::invalid(field, "required string is missing"))
    }

    /// An unsigned integer field, if present.
    pub fn u64(&self, field: &str) -> Option<u64> {
        self.input.get(field).and_then(Value::as_u64)
    }

    /// True once the caller cancelled this invocation.
    pub fn cancelled(&self) -> bool {
        bindings::c41::skill::invocation::cancelled()
    }

    /// Returns `Err(SkillError::Cancelled)` once the caller cancelled.
    pub fn check_cancelled(&self) -> Result<(), SkillError> {
        if self.cancelled() { Err(SkillError::Cancelled) } else { Ok(()) }
    }

    /// Milliseconds until the host's deadline.
    pub fn remaining_ms(&self) -> u64 {
        bindings::c41::skill::invocation::remaining_ms()
    }
}

/// A skill: describe yourself, then run on validated input.
#[allow(async_fn_in_trait)]
pub trait Skill {
    /// The description as constants. When it is given, [`skill!`] embeds it
    /// in the component, so the host can list the skill without compiling
    /// it, and `describe()` returns it.
    const DESCRIPTION: Option<StaticDescription> = None;
    /// The description the host shows and enforces (see `wit/skill.wit`).
    /// Implement it only for a description computed at run time; otherwise
    /// give [`Skill::DESCRIPTION`].
    fn describe() -> Description {
        match Self::DESCRIPTION {
            Some(d) => d.to_description(),
            None => panic!("a c41 skill must give Skill::DESCRIPTION or implement Skill::describe"),
        }
    }
    /// Run once. Runs on wstd's executor: await `wstd::http` freely.
    async fn invoke(cx: Invocation) -> Result<Outcome, SkillError>;
}

/// The running skill's name (for messages that point into the config),
/// worked out on first use: a skill without a const `DESCRIPTION` builds its
/// whole description to learn it, which most invocations never need.
static SKILL_NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
static SKILL_NAME_OF: std::sync::OnceLock<fn() -> String> = std::sync::OnceLock::new();

/// The name of the skill this component runs as, once `invoke` started.
pub fn skill_name() -> &'static str {
    SKILL_NAME.get_or_init(|| SKILL_NAME_OF.get().map(|f| f()).unwrap_or_else(|| "this-skill".into()))
}

fn name_of<S: Skill>() -> String {
    S::DESCRIPTION.map(|d| d.name.to_string()).unwrap_or_else(|| S::describe().name)
}

/// Deserialize `value` as `T`; on failure, the path of the offending field
/// (empty for the whole value) and what is wrong with it.
pub(crate) fn deserialize_at<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        (path, e.into_inner().to_string())
    })
}

/// Glue between the generated export and a [`Skill`]; used by [`skill!`].
#[doc(hidden)]
pub fn __run<S: Skill>(
    request: bindings::c41::skill::types::Request,
) -> Result<bindings::c41::skill::types::Outcome, bindings::c41::skill::types::SkillError> {
    let input: Value = match serde_json::from_str(&request.input) {
        Ok(v) => v,
        Err(e) => return Err(SkillError::invalid("", format!("input is not JSON: {e}")).into()),
    };
    let _ = SKILL_NAME_OF.set(name_of::<S>);
    let cx = Invocation { input, id: request.invocation_id };
    let outcome = wstd::runtime::block_on(S::invoke(cx)).map_err(bindings::c41::skill::types::SkillError::from)?;
    Ok(bindings::c41::skill::types::Outcome {
        text: outcome.text,
        artifacts: outcome.artifacts,
        data: if outcome.data.is_null() { "{}".into() } else { outcome.data.to_string() },
    })
}

/// Export a [`Skill`] implementation as the component's `skill` world.
#[macro_export]
macro_rules! skill {
    ($ty:ty) => {
        struct __C41SkillExport;
        /// The description, for the host to read without compiling the component.
        #[cfg(target_arch = "wasm32")]
        #[unsafe(link_section = "c41:description")]
        #[used]
        static __C41_DESCRIPTION: [u8; $crate::describe::__section_len(&<$ty as $crate::Skill>::DESCRIPTION)] =
            $crate::describe::__section(&<$ty as $crate::Skill>::DESCRIPTION);
        impl $crate::bindings::Guest for __C41SkillExport {
            fn describe() -> $crate::Description {
                <$ty as $crate::Skill>::describe()
            }
            fn invoke(
                request: $crate::bindings::c41::skill::types::Request,
            ) -> ::core::result::Result<
                $crate::bindings::c41::skill::types::Outcome,
                $crate::bindings::c41::skill::types::SkillError,
            > {
                $crate::__run::<$ty>(request)
            }
        }
        $crate::bindings::__export_skill_world!(__C41SkillExport with_types_in $crate::bindings);
    };
}
