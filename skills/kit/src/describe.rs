//! A skill's description as constants, embedded in the component.
//!
//! [`skill!`](crate::skill) writes a [`StaticDescription`] into a custom
//! section of the component named [`SECTION`]. The host reads that section to
//! list a built-in skill (MCP `tools/list`, `c41 list`) without compiling the
//! component, so an agent gets its tools at once even with an empty cache. The
//! same constants answer `describe()`, so the two cannot disagree.
//!
//! Encoding (version 1): a byte `1`, then name, version, summary,
//! input-schema and output, each as a little-endian `u32` length and UTF-8
//! bytes, then a `u32` count of services and each service the same way.

use crate::Description;

/// The custom section that carries the description.
pub const SECTION: &str = "c41:description";

/// A description whose every part is known at compile time.
#[derive(Debug, Clone, Copy)]
pub struct StaticDescription {
    /// Stable identifier (lowercase letters, digits, hyphens); the config key.
    pub name: &'static str,
    /// Semantic version, usually `env!("CARGO_PKG_VERSION")`.
    pub version: &'static str,
    /// One line for a person or an agent choosing a tool.
    pub summary: &'static str,
    /// JSON Schema of the input, as JSON text.
    pub input_schema: &'static str,
    /// What a successful outcome holds.
    pub output: &'static str,
    /// The service kinds the skill may ever need.
    pub services: &'static [&'static str],
}

impl StaticDescription {
    /// The WIT description `describe()` returns.
    pub fn to_description(&self) -> Description {
        Description {
            name: self.name.into(),
            version: self.version.into(),
            summary: self.summary.into(),
            input_schema: self.input_schema.into(),
            output: self.output.into(),
            services: self.services.iter().map(|s| (*s).into()).collect(),
        }
    }

    const fn fields(&self) -> [&'static str; 5] {
        [self.name, self.version, self.summary, self.input_schema, self.output]
    }
}

/// Length of the section for `d` (0 when the skill has no static description).
#[doc(hidden)]
pub const fn __section_len(d: &Option<StaticDescription>) -> usize {
    let Some(d) = d else { return 0 };
    let fields = d.fields();
    let mut len = 1 + 4;
    let mut i = 0;
    while i < fields.len() {
        len += 4 + fields[i].len();
        i += 1;
    }
    let mut i = 0;
    while i < d.services.len() {
        len += 4 + d.services[i].len();
        i += 1;
    }
    len
}

/// The section's bytes for `d`; `N` is [`__section_len`].
#[doc(hidden)]
pub const fn __section<const N: usize>(d: &Option<StaticDescription>) -> [u8; N] {
    let mut out = [0u8; N];
    let Some(d) = d else { return out };
    out[0] = 1;
    let mut at = 1;
    let fields = d.fields();
    let mut i = 0;
    while i < fields.len() {
        at = put(&mut out, at, fields[i].as_bytes());
        i += 1;
    }
    at = put_len(&mut out, at, d.services.len());
    let mut i = 0;
    while i < d.services.len() {
        at = put(&mut out, at, d.services[i].as_bytes());
        i += 1;
    }
    assert!(at == N, "section length mismatch");
    out
}

const fn put_len<const N: usize>(out: &mut [u8; N], at: usize, len: usize) -> usize {
    assert!(len <= u32::MAX as usize, "description part longer than 4 GiB");
    let b = (len as u32).to_le_bytes();
    let mut i = 0;
    while i < 4 {
        out[at + i] = b[i];
        i += 1;
    }
    at + 4
}

const fn put<const N: usize>(out: &mut [u8; N], at: usize, bytes: &[u8]) -> usize {
    let mut at = put_len(out, at, bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        out[at] = bytes[i];
        at += 1;
        i += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoding_is_length_prefixed_parts() {
        const D: Option<StaticDescription> = Some(StaticDescription {
            name: "ab",
            version: "1",
            summary: "",
            input_schema: "{}",
            output: "o",
            services: &["x", "yz"],
        });
        const N: usize = __section_len(&D);
        let bytes: [u8; N] = __section(&D);
        let mut expected = vec![1u8];
        for part in ["ab", "1", "", "{}", "o"] {
            expected.extend((part.len() as u32).to_le_bytes());
            expected.extend(part.as_bytes());
        }
        expected.extend(2u32.to_le_bytes());
        for s in ["x", "yz"] {
            expected.extend((s.len() as u32).to_le_bytes());
            expected.extend(s.as_bytes());
        }
        assert_eq!(bytes.to_vec(), expected);
        assert_eq!(__section_len(&None), 0);
    }
}
