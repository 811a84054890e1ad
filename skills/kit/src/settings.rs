//! The services granted to this invocation and the skill's own settings.

use crate::SkillError;
use crate::bindings::c41::skill::settings as wit;
pub use wit::Service;

/// All services granted to this invocation.
pub fn services() -> Vec<Service> {
    wit::services()
}

/// The granted services of a kind (`comfyui`), in config order.
pub fn services_of_kind(kind: &str) -> Vec<Service> {
    services().into_iter().filter(|s| s.kind == kind).collect()
}

/// The first granted service of `kind`, or a `denied` error that tells the
/// user which grant is missing.
pub fn require_service(kind: &str) -> Result<Service, SkillError> {
    services_of_kind(kind).into_iter().next().ok_or_else(|| SkillError::Denied {
        target: kind.into(),
        reason: format!(
            "no `{kind}` service is granted to this skill; add one under [services] and list it in this skill's `grants` in the c41 config"
        ),
    })
}

/// One setting, parsed from JSON; `None` when unset or of another type.
pub fn get<T: serde::de::DeserializeOwned>(key: &str) -> Option<T> {
    wit::get(key).and_then(|s| serde_json::from_str(&s).ok())
}

/// The skill's settings (`[skills.NAME.settings]` in the c41 config) as
/// `T`; a setting of the wrong shape is a `denied` error naming the key and
/// the config table, since only the user can fix it.
pub fn parse<T: serde::de::DeserializeOwned>() -> Result<T, SkillError> {
    crate::deserialize_at(&all()).map_err(|(key, why)| SkillError::Denied {
        target: format!("[skills.{}.settings]", crate::skill_name()),
        reason: format!("setting `{key}` in the c41 config: {why}"),
    })
}

/// All settings as a JSON object.
pub fn all() -> serde_json::Value {
    serde_json::from_str(&wit::all()).unwrap_or_default()
}
