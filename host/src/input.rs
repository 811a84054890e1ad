//! A skill's input, before the skill sees it: parsed from the command line,
//! checked against the skill's JSON Schema (errors name the field), and its
//! file fields resolved to files the user may read.
//!
//! File fields are string properties with `"format": "c41-file"` (or arrays
//! of them). The user passes a path or an artifact reference
//! (`artifact:<sha256>`); the host resolves it, checks it lies in an allowed
//! directory (the output directory, the current directory, or
//! `inputs.allow-dirs`), and replaces the value the skill sees with the bare
//! file name: host paths do not leak into the sandbox.

use c41_artifacts::ArtifactStore;
use indexmap::IndexMap;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The schema `format` that marks a file input.
pub const FILE_FORMAT: &str = "c41-file";

/// Why an input was refused. Every case names the field.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InputError {
    /// The input text is not a JSON object.
    #[error("input is not a JSON object: {reason}")]
    NotJson {
        /// Why.
        reason: String,
    },
    /// The input does not match the schema.
    #[error("invalid input `{field}`: {reason}")]
    Schema {
        /// The field (JSON pointer without the leading slash; empty for the
        /// object itself).
        field: String,
        /// Why.
        reason: String,
    },
    /// A file input cannot be used.
    #[error("invalid input `{field}`: {reason}")]
    File {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
}

impl InputError {
    /// The field at fault.
    pub fn field(&self) -> &str {
        match self {
            InputError::NotJson { .. } => "",
            InputError::Schema { field, .. } | InputError::File { field, .. } => field,
        }
    }
}

/// Build the input object from `--input` (JSON text, or `@file`) and
/// `key=value` pairs. A value is taken as JSON when the schema gives the
/// property a non-string type (`steps=20`, `tags=["a"]`), else as a string.
pub fn from_cli(input: Option<&str>, pairs: &[String], schema: &Value) -> Result<Value, InputError> {
    let mut obj = match input {
        None => Map::new(),
        Some(text) => {
            let text = match text.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|e| InputError::NotJson { reason: format!("cannot read {path}: {e}") })?,
                None => text.to_string(),
            };
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(m)) => m,
                Ok(other) => return Err(InputError::NotJson { reason: format!("got {}", type_name(&other)) }),
                Err(e) => return Err(InputError::NotJson { reason: e.to_string() }),
            }
        }
    };
    for pair in pairs {
        let Some((key, raw)) = pair.split_once('=') else {
            return Err(InputError::Schema { field: pair.clone(), reason: "expected key=value".into() });
        };
        let declared = schema.pointer(&format!("/properties/{key}/type"));
        let wants_string = match declared {
            Some(Value::String(t)) => t == "string",
            Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
            None => false,
            _ => false,
        };
        let value = if wants_string {
            Value::String(raw.to_string())
        } else {
            serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
        };
        obj.insert(key.to_string(), value);
    }
    Ok(Value::Object(obj))
}

/// "an array", "a number", ...: what a JSON value is, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A compiled input schema.
pub struct InputSchema {
    validator: jsonschema::Validator,
    schema: Value,
}

impl std::fmt::Debug for InputSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputSchema").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl InputSchema {
    /// Compile `schema`; an invalid schema is the skill author's bug.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        let validator = jsonschema::validator_for(schema).map_err(|e| e.to_string())?;
        Ok(InputSchema { validator, schema: schema.clone() })
    }

    /// The schema itself.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Check `input`; the first error names its field.
    pub fn validate(&self, input: &Value) -> Result<(), InputError> {
        if !input.is_object() {
            return Err(InputError::NotJson { reason: format!("got {}", type_name(input)) });
        }
        if let Some(err) = self.validator.iter_errors(input).next() {
            let mut field = err.instance_path().to_string().trim_start_matches('/').to_string();
            let mut reason = err.to_string();
            // "required" errors point at the parent; name the missing field.
            if let jsonschema::error::ValidationErrorKind::Required { property } = err.kind() {
                let missing = property.as_str().unwrap_or_default();
                field = if field.is_empty() { missing.to_string() } else { format!("{field}/{missing}") };
                reason = "is required".into();
            }
            if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } = err.kind()
                && let Some(first) = unexpected.first()
            {
                field = if field.is_empty() { first.clone() } else { format!("{field}/{first}") };
                reason = "is not a field of this skill's input".into();
            }
            return Err(InputError::Schema { field, reason });
        }
        Ok(())
    }

    /// Apply schema defaults for absent top-level properties, so skills and
    /// users see the same values the schema documents.
    pub fn apply_defaults(&self, input: &mut Value) {
        let (Some(props), Some(obj)) =
            (self.schema.get("properties").and_then(Value::as_object), input.as_object_mut())
        else {
            return;
        };
        for (k, p) in props {
            if let Some(d) = p.get("default") {
                obj.entry(k.clone()).or_insert_with(|| d.clone());
            }
        }
    }

    /// The fields marked as file inputs: (pointer, is it an array).
    pub fn file_fields(&self) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        if let Some(props) = self.schema.get("properties").and_then(Value::as_object) {
            for (k, p) in props {
                if p.get("format").and_then(Value::as_str) == Some(FILE_FORMAT) {
                    out.push((k.clone(), false));
                } else if p.pointer("/items/format").and_then(Value::as_str) == Some(FILE_FORMAT) {
                    out.push((k.clone(), true));
                }
            }
        }
        out
    }
}

/// One resolved file input.
#[derive(Debug, Clone, PartialEq)]
pub struct FileInput {
    /// The canonical path on the host.
    pub path: PathBuf,
    /// The file name the skill sees.
    pub name: String,
    /// MIME type from the extension.
    pub mime: String,
}

/// The file inputs of one invocation, by field pointer.
#[derive(Debug, Clone, Default)]
pub struct FileInputs(IndexMap<String, FileInput>);

impl FileInputs {
    /// The file input at `field`.
    pub fn get(&self, field: &str) -> Option<&FileInput> {
        self.0.get(field)
    }
    /// All file fields.
    pub fn fields(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
}

/// Where file inputs may come from.
#[derive(Debug, Clone)]
pub struct FilePolicy<'a> {
    /// Resolves `artifact:` references (and is always an allowed directory).
    pub store: Option<&'a ArtifactStore>,
    /// Other allowed directories (canonicalised here): config `inputs.allow`.
    pub allow_dirs: Vec<PathBuf>,
    /// The working directory, when it counts (`c41 run` at a terminal):
    /// relative paths resolve against it and its files may be read. Without
    /// it a relative path is refused.
    pub cwd: Option<PathBuf>,
}

/// Resolve the file fields of `input` in place (values become file names)
/// and return where each one is.
pub fn resolve_files(
    schema: &InputSchema,
    input: &mut Value,
    policy: &FilePolicy<'_>,
) -> Result<FileInputs, InputError> {
    let mut files = FileInputs::default();
    let mut allowed: Vec<PathBuf> =
        policy.allow_dirs.iter().chain(&policy.cwd).filter_map(|d| d.canonicalize().ok()).collect();
    if let Some(store) = policy.store {
        allowed.push(store.dir().to_path_buf());
    }
    for (field, is_array) in schema.file_fields() {
        // Absent and null alike mean no file (schemas derived from an
        // `Option` allow null).
        let Some(value) = input.get_mut(&field).filter(|v| !v.is_null()) else { continue };
        if is_array {
            if let Value::Array(items) = value {
                for (i, item) in items.iter_mut().enumerate() {
                    let pointer = format!("{field}/{i}");
                    let file = resolve_one(&pointer, item, policy, &allowed)?;
                    *item = Value::String(file.name.clone());
                    files.0.insert(pointer, file);
                }
            }
        } else {
            let file = resolve_one(&field, value, policy, &allowed)?;
            *value = Value::String(file.name.clone());
            files.0.insert(field, file);
        }
    }
    Ok(files)
}

fn resolve_one(
    field: &str,
    value: &Value,
    policy: &FilePolicy<'_>,
    allowed: &[PathBuf],
) -> Result<FileInput, InputError> {
    let fail = |reason: String| InputError::File { field: field.to_string(), reason };
    let Some(text) = value.as_str() else {
        return Err(fail("expected a path or an artifact reference".into()));
    };
    if text.starts_with(c41_artifacts::REFERENCE_PREFIX) {
        let store = policy.store.ok_or_else(|| fail("artifact references need an output directory".into()))?;
        let stored = store.resolve(text).map_err(|e| fail(e.to_string()))?;
        return Ok(FileInput { path: stored.path, name: stored.file_name, mime: stored.mime });
    }
    let path = match (Path::new(text), &policy.cwd) {
        (p, _) if p.is_absolute() => p.to_path_buf(),
        (p, Some(cwd)) => cwd.join(p),
        (_, None) => {
            return Err(fail(format!(
                "{text} is a relative path, and here the working directory is not a place skills may read: \
                 give an absolute path inside a directory of `inputs.allow` in the config, or an artifact reference"
            )));
        }
    };
    let canonical = path.canonicalize().map_err(|e| fail(format!("{text}: {e}")))?;
    if c41_artifacts::is_partial(&path) || c41_artifacts::is_partial(&canonical) {
        return Err(fail(format!(
            "{} is an unfinished artifact (a temporary `.c41-partial-*` file of a skill still writing, or left by \
             a crash); pass the finished file or its `artifact:` reference",
            canonical.display()
        )));
    }
    if !canonical.is_file() {
        return Err(fail(format!("{text} is not a regular file")));
    }
    if !allowed.iter().any(|dir| canonical.starts_with(dir)) {
        let dirs: Vec<String> = allowed.iter().map(|d| d.display().to_string()).collect();
        return Err(fail(format!(
            "{} is outside the directories skills may read ({}); add its directory to `inputs.allow` in the config",
            canonical.display(),
            dirs.join(", ")
        )));
    }
    let name = canonical.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mime = canonical
        .extension()
        .and_then(|e| c41_artifacts::mime_for_extension(&e.to_string_lossy()))
        .unwrap_or("application/octet-stream")
        .to_string();
    Ok(FileInput { path: canonical, name, mime })
}

#[cfg(test)]
mod tests;
