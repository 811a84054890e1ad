//! Test guest: a component built against `c41:skill@0.1.0`, the WIT before
//! its first compatible addition (0.1.1 added `inputs.fields`). Its
//! bindings come from that WIT (`wit/skill.wit` here, a copy kept as it
//! was), not from the kit. It must keep loading and running on today's host:
//! it uses log, progress, inputs and artifacts as a 0.1.0 component would.

wit_bindgen::generate!({ path: "wit", world: "skill" });

use c41::skill::{artifacts, inputs, log, progress};

struct OldWit;

impl Guest for OldWit {
    fn describe() -> Description {
        Description {
            name: "test-old-wit".into(),
            version: "0.1.0".into(),
            summary: "Test guest built against c41:skill@0.1.0.".into(),
            input_schema: r#"{"type":"object","properties":{"file":{"type":"string","format":"c41-file"}}}"#.into(),
            output: "text: the input file's size; one artifact: a copy of it".into(),
            services: vec![],
        }
    }

    fn invoke(_request: Request) -> Result<Outcome, SkillError> {
        log::log(log::Level::Info, "built against 0.1.0", &[]);
        progress::report(&progress::Update { stage: "copy".into(), fraction: Some(0.5), step: None, message: None });
        let file = inputs::open("file").map_err(|e| SkillError::Internal(format!("{e:?}")))?;
        let copy = artifacts::create("copy.bin", "").map_err(|e| SkillError::Internal(format!("{e:?}")))?;
        loop {
            let chunk = file.read(64 * 1024).map_err(|e| SkillError::Internal(format!("{e:?}")))?;
            if chunk.is_empty() {
                break;
            }
            copy.write(&chunk).map_err(|e| SkillError::Internal(format!("{e:?}")))?;
        }
        let stored = copy.finish().map_err(|e| SkillError::Internal(format!("{e:?}")))?;
        Ok(Outcome { text: format!("{} bytes", file.size()), artifacts: vec![stored], data: "{}".into() })
    }
}

export!(OldWit);
