//! Test guest: misbehaves on purpose so tests can prove the host's limits
//! stop it while the host carries on. `mode`: "memory" grows memory without
//! end, "spin" loops forever, "sleep" waits on a host timer, "ok" returns.

use c41_kit::{Description, Invocation, Outcome, Skill, SkillError};

struct Runaway;

impl Skill for Runaway {
    fn describe() -> Description {
        Description {
            name: "test-runaway".into(),
            version: "0.0.0".into(),
            summary: "Test guest that exhausts memory or time on purpose.".into(),
            input_schema: r#"{"type":"object","properties":{"mode":{"type":"string","enum":["memory","spin","sleep","ok"]}},"required":["mode"]}"#.into(),
            output: "nothing useful".into(),
            services: vec![],
        }
    }

    async fn invoke(cx: Invocation) -> Result<Outcome, SkillError> {
        match cx.str("mode") {
            Some("memory") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Some("spin") => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Some("sleep") => loop {
                c41_kit::wstd::task::sleep(c41_kit::wstd::time::Duration::from_secs(3600)).await;
            },
            _ => Ok(Outcome { text: "fine".into(), ..Default::default() }),
        }
    }
}

c41_kit::skill!(Runaway);
