//! lip-sync: placeholder while the skill is being written; it refuses every call.

use c41_kit::{Description, Invocation, Outcome, Skill, SkillError};

struct LipSync;

impl Skill for LipSync {
    fn describe() -> Description {
        Description {
            name: "lip-sync".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "(not written yet)".into(),
            input_schema: r#"{"type":"object"}"#.into(),
            output: String::new(),
            services: vec!["humo".into()],
        }
    }

    async fn invoke(_cx: Invocation) -> Result<Outcome, SkillError> {
        Err(SkillError::internal("lip-sync is not written yet"))
    }
}

c41_kit::skill!(LipSync);
