//! audio-gen: placeholder while the skill is being written; it refuses every call.

use c41_kit::{Description, Invocation, Outcome, Skill, SkillError};

struct AudioGen;

impl Skill for AudioGen {
    fn describe() -> Description {
        Description {
            name: "audio-gen".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "(not written yet)".into(),
            input_schema: r#"{"type":"object"}"#.into(),
            output: String::new(),
            services: vec!["mmaudio".into()],
        }
    }

    async fn invoke(_cx: Invocation) -> Result<Outcome, SkillError> {
        Err(SkillError::internal("audio-gen is not written yet"))
    }
}

c41_kit::skill!(AudioGen);
