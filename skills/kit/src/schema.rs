//! Input schemas derived from types, so a skill writes its input once: a
//! struct that `#[derive(Deserialize, JsonSchema)]`, whose doc comments,
//! ranges and formats become the JSON Schema agents read, and which
//! [`Invocation::input`](crate::Invocation::input) parses with field-named
//! errors.
//!
//! ```
//! use c41_kit::schema::{self, JsonSchema};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Input {
//!     /// The city to forecast.
//!     #[schemars(length(min = 1, max = 200))]
//!     city: String,
//!     /// Days ahead (default 1).
//!     #[schemars(range(min = 1, max = 14))]
//!     days: Option<u32>,
//!     /// A photo of the sky: a file path or an `artifact:` reference.
//!     #[schemars(extend("format" = "c41-file"))]
//!     sky: Option<String>,
//! }
//!
//! let s: c41_kit::Value = serde_json::from_str(&schema::input_schema::<Input>()).unwrap();
//! assert_eq!(s["required"], c41_kit::json!(["city"]));
//! assert_eq!(s["properties"]["days"]["maximum"], 14);
//! assert_eq!(s["properties"]["sky"]["format"], "c41-file");
//! assert_eq!(s["additionalProperties"], false);
//! ```
//!
//! A description embedded in the component ([`StaticDescription`]) must be
//! known when the crate compiles, so its schema is a file in the crate
//! (`include_str!`) that a unit test keeps equal to the derived one with
//! [`assert_current`]; `C41_BLESS=1 cargo test` rewrites it.
//!
//! [`StaticDescription`]: crate::StaticDescription

pub use schemars::JsonSchema;
use serde_json::Value;

/// The JSON Schema (draft 2020-12) of `T` as a skill's `input-schema`: every
/// subschema inlined (agents read one object, not `$ref`s), no `$schema` or
/// `title`, and none of the number formats (`uint32`, `double`) that say
/// only what Rust type holds the value.
pub fn input_schema<T: JsonSchema>() -> String {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    if let Some(root) = schema.as_object_mut() {
        root.remove("title");
    }
    strip_number_formats(&mut schema);
    serde_json::to_string_pretty(&schema).expect("a schema serialises") + "\n"
}

fn strip_number_formats(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let numeric = matches!(map.get("type"), Some(Value::String(t)) if t == "integer" || t == "number")
                || matches!(map.get("type"), Some(Value::Array(ts)) if ts.iter().any(|t| t == "integer" || t == "number"));
            if numeric && map.get("format").and_then(Value::as_str).is_some_and(is_rust_number_format) {
                map.remove("format");
            }
            map.values_mut().for_each(strip_number_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_number_formats),
        _ => {}
    }
}

fn is_rust_number_format(f: &str) -> bool {
    matches!(
        f,
        "int"
            | "uint"
            | "int8"
            | "uint8"
            | "int16"
            | "uint16"
            | "int32"
            | "uint32"
            | "int64"
            | "uint64"
            | "float"
            | "double"
    )
}

/// The unit test that keeps a crate's `input.schema.json` (beside its
/// Cargo.toml) equal to the schema its input type derives; `C41_BLESS=1
/// cargo test` rewrites the file after the type changed.
///
/// ```ignore
/// c41_kit::input_schema_test!(Input);
/// ```
#[macro_export]
macro_rules! input_schema_test {
    ($ty:ty) => {
        #[cfg(test)]
        #[test]
        fn input_schema_is_current() {
            $crate::schema::assert_current::<$ty>(
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/input.schema.json")),
                concat!(env!("CARGO_MANIFEST_DIR"), "/input.schema.json"),
            );
        }
    };
}

/// For a unit test: panics unless `committed` (the schema file the crate
/// embeds, read with `include_str!`) equals [`input_schema::<T>()`]; with
/// `C41_BLESS=1` in the environment it writes the derived schema to `path`
/// instead, for the next build to embed.
#[track_caller]
pub fn assert_current<T: JsonSchema>(committed: &str, path: impl AsRef<std::path::Path>) {
    let derived = input_schema::<T>();
    if committed == derived {
        return;
    }
    let path = path.as_ref();
    if std::env::var_os("C41_BLESS").is_some() {
        std::fs::write(path, &derived).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
        return;
    }
    panic!(
        "{} is not the schema the input type derives; run `C41_BLESS=1 cargo test` to rewrite it.\n--- derived:\n{derived}",
        path.display()
    );
}
