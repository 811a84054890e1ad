//! Test guest: misbehaves in `describe()` itself, so tests can prove the host
//! describes a component under the configured limits, and only once. Its
//! `describe()` takes 96 MiB of memory, then loops forever.

use c41_kit::{Description, Invocation, Outcome, Skill, SkillError};

struct DescribeHog;

impl Skill for DescribeHog {
    fn describe() -> Description {
        let hoard = vec![1u8; 96 << 20];
        std::hint::black_box(&hoard);
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    async fn invoke(_cx: Invocation) -> Result<Outcome, SkillError> {
        Ok(Outcome::default())
    }
}

c41_kit::skill!(DescribeHog);
