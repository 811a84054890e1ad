//! tts: placeholder while the skill is being written; it refuses every call.

use c41_kit::{Description, Invocation, Outcome, Skill, SkillError};

struct Tts;

impl Skill for Tts {
    fn describe() -> Description {
        Description {
            name: "tts".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "(not written yet)".into(),
            input_schema: r#"{"type":"object"}"#.into(),
            output: String::new(),
            services: vec!["tts".into()],
        }
    }

    async fn invoke(_cx: Invocation) -> Result<Outcome, SkillError> {
        Err(SkillError::internal("tts is not written yet"))
    }
}

c41_kit::skill!(Tts);
