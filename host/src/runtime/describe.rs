//! Where a skill's description comes from, without compiling when possible.
//!
//! - A built-in skill carries its description in the custom section
//!   `c41:description` (written by the kit's `skill!` from the same constants
//!   its `describe()` returns): read by scanning the component's sections, no
//!   Cranelift, so `c41 mcp` lists the tools at once even with an empty cache.
//! - Any other component is described once by calling `describe()` under the
//!   configured limits, and the result, success or failure, is cached beside
//!   its compiled code (same key: engine compatibility hash + SHA-256), so a
//!   component that loops in `describe()` costs its time once, not per command.

use super::{LoadError, Origin, SkillDescription};
use crate::config::Limits;
use crate::input::InputSchema;
use crate::skill_text;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Name of the custom section holding a built-in's description (see
/// `skills/kit/src/describe.rs` for the encoding).
pub const SECTION: &str = "c41:description";

/// The longest `describe()` may run, whatever `limits.timeout-secs` says: a
/// description is static, and a long wait here delays every `c41` command
/// that meets the component for the first time.
pub const DESCRIBE_MAX: Duration = Duration::from_secs(10);

/// A description as the component gave it (before checks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawDescription {
    /// `name`.
    pub name: String,
    /// `version`.
    pub version: String,
    /// `summary`.
    pub summary: String,
    /// `input-schema`, as JSON text.
    pub input_schema: String,
    /// `output`.
    pub output: String,
    /// `services`.
    pub services: Vec<String>,
}

impl From<super::bindings::c41::skill::types::Description> for RawDescription {
    fn from(d: super::bindings::c41::skill::types::Description) -> Self {
        RawDescription {
            name: d.name,
            version: d.version,
            summary: d.summary,
            input_schema: d.input_schema,
            output: d.output,
            services: d.services,
        }
    }
}

/// The limits `describe()` runs under: the configured memory, and the
/// configured deadline up to [`DESCRIBE_MAX`].
pub fn describe_limits(configured: &Limits) -> Limits {
    Limits { timeout: configured.timeout.min(DESCRIBE_MAX), ..*configured }
}

/// The description embedded in `bytes` (section [`SECTION`], in the component
/// or any module inside it); `None` when there is none or it is malformed.
///
/// Every start reads the built-ins' sections, so the walk skips what it need
/// not read: function bodies are stepped over whole (a full parse of the
/// built-ins was a tenth of a `c41 run`).
pub fn embedded(bytes: &[u8]) -> Option<RawDescription> {
    use wasmparser::{Chunk, Parser, Payload};
    let (mut parser, mut outer, mut rest) = (Parser::new(0), Vec::new(), bytes);
    loop {
        let Chunk::Parsed { consumed, payload } = parser.parse(rest, true).ok()? else { return None };
        rest = &rest[consumed..];
        match payload {
            Payload::CustomSection(reader) if reader.name() == SECTION => return decode(reader.data()),
            Payload::CodeSectionStart { size, .. } => {
                parser.skip_section();
                rest = rest.get(size as usize..)?;
            }
            // The skill's core module sits inside the component.
            Payload::ModuleSection { parser: inner, .. } | Payload::ComponentSection { parser: inner, .. } => {
                outer.push(std::mem::replace(&mut parser, inner));
            }
            Payload::End(_) => parser = outer.pop()?,
            _ => {}
        }
    }
}

fn decode(data: &[u8]) -> Option<RawDescription> {
    let (&version, mut rest) = data.split_first()?;
    if version != 1 {
        return None;
    }
    let mut take = || -> Option<String> {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        let (s, tail) = (tail.get(..len)?, tail.get(len..)?);
        rest = tail;
        String::from_utf8(s.to_vec()).ok()
    };
    let [name, version, summary, input_schema, output] = [take()?, take()?, take()?, take()?, take()?];
    let (count, tail) = rest.split_first_chunk::<4>()?;
    rest = tail;
    let count = u32::from_le_bytes(*count) as usize;
    let mut services = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        services.push(String::from_utf8(tail.get(..len)?.to_vec()).ok()?);
        rest = tail.get(len..)?;
    }
    rest.is_empty().then_some(RawDescription { name, version, summary, input_schema, output, services })
}

/// Check a raw description: a valid name, an input schema that is JSON and
/// a valid JSON Schema.
pub fn check(raw: RawDescription, origin: &Origin) -> Result<(SkillDescription, InputSchema), LoadError> {
    let bad = |message: String| LoadError::Description { origin: origin.clone(), message };
    if !valid_name(&raw.name) {
        return Err(bad(format!("name {:?} must be lowercase letters, digits and hyphens", raw.name)));
    }
    let mut input_schema: serde_json::Value =
        serde_json::from_str(&raw.input_schema).map_err(|e| bad(format!("input-schema is not JSON: {e}")))?;
    let schema = InputSchema::compile(&input_schema)
        .map_err(|e| bad(format!("input-schema is not a valid JSON Schema: {e}")))?;
    clean_annotations(&mut input_schema);
    let description = SkillDescription {
        name: raw.name,
        version: skill_text::clean_line(&raw.version, VERSION_MAX),
        summary: skill_text::clean_max(&raw.summary, TEXT_MAX),
        input_schema,
        output: skill_text::clean_max(&raw.output, TEXT_MAX),
        services: raw.services,
    };
    Ok((description, schema))
}

/// Whether `name` can be a skill's name: lowercase letters, digits and
/// hyphens, not starting with a hyphen.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
}

/// Most bytes kept of a description's `summary`, `output` and each schema
/// `title`/`description`: they reach MCP tool lists, agents' prompts and
/// exported SKILL.md files.
pub const TEXT_MAX: usize = 4096;

/// Most bytes kept of a description's `version` (one line).
pub const VERSION_MAX: usize = 64;

/// Clean the human-readable annotations (`title`, `description`) of an
/// input schema like any text a skill prints: they are shown to MCP
/// clients and written into SKILL.md, where a forged `MEDIA:` line or an
/// escape sequence must not pass. Validation keywords are left alone.
fn clean_annotations(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    serde_json::Value::String(text) if key == "title" || key == "description" => {
                        *text = skill_text::clean_max(text, TEXT_MAX);
                    }
                    other => clean_annotations(other),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(clean_annotations),
        _ => {}
    }
}

/// What the cache keeps of one `describe()` call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DescribeRecord {
    /// It answered.
    Described(RawDescription),
    /// It failed (trap, deadline, memory); retried only under other limits.
    Failed {
        /// Why.
        message: String,
        /// `limits.memory-mb` it ran under, in bytes.
        memory_bytes: u64,
        /// The deadline it ran under, in milliseconds.
        timeout_ms: u64,
    },
}

impl DescribeRecord {
    /// A failure under `limits`.
    pub fn failed(message: String, limits: &Limits) -> Self {
        DescribeRecord::Failed {
            message,
            memory_bytes: limits.memory_bytes,
            timeout_ms: limits.timeout.as_millis() as u64,
        }
    }

    /// Whether this record answers for a describe under `limits` (a failure
    /// under other limits is tried again).
    pub fn applies_to(&self, limits: &Limits) -> bool {
        match self {
            DescribeRecord::Described(_) => true,
            DescribeRecord::Failed { memory_bytes, timeout_ms, .. } => {
                *memory_bytes == limits.memory_bytes && *timeout_ms == limits.timeout.as_millis() as u64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_or_padded_section_is_refused() {
        let mut good = vec![1u8];
        for part in ["n", "1", "s", "{}", "o"] {
            good.extend((part.len() as u32).to_le_bytes());
            good.extend(part.as_bytes());
        }
        good.extend(1u32.to_le_bytes());
        good.extend(1u32.to_le_bytes());
        good.push(b'x');
        let d = decode(&good).unwrap();
        assert_eq!((d.name.as_str(), d.services), ("n", vec!["x".to_string()]));
        assert!(decode(&good[..good.len() - 1]).is_none());
        let mut padded = good.clone();
        padded.push(0);
        assert!(decode(&padded).is_none());
        let mut other_version = good;
        other_version[0] = 2;
        assert!(decode(&other_version).is_none());
    }
}
