//! [`SkillError`]: the typed failures of the WIT contract, with constructors
//! that make the common cases one call.

use crate::bindings::c41::skill::types as wit;
use std::fmt;

/// How an invocation failed; mirrors `skill-error` in `wit/skill.wit`.
#[derive(Debug, Clone, PartialEq)]
pub enum SkillError {
    /// The input cannot be used: which field (JSON pointer, no leading
    /// slash) and why.
    InvalidInput {
        /// The field at fault.
        field: String,
        /// Why.
        reason: String,
    },
    /// The sandbox or a service refused something.
    Denied {
        /// What was refused.
        target: String,
        /// Why.
        reason: String,
    },
    /// A service failed.
    Backend {
        /// The service's config name or kind.
        service: String,
        /// HTTP status, if it answered.
        status: Option<u16>,
        /// Its message.
        message: String,
    },
    /// Waited too long for something (named).
    Timeout(String),
    /// The caller cancelled.
    Cancelled,
    /// A bug in the skill.
    Internal(String),
}

impl SkillError {
    /// An invalid-input error.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidInput { field: field.into(), reason: reason.into() }
    }
    /// A backend error.
    pub fn backend(service: impl Into<String>, status: Option<u16>, message: impl Into<String>) -> Self {
        Self::Backend { service: service.into(), status, message: message.into() }
    }
    /// An internal error.
    pub fn internal(message: impl fmt::Display) -> Self {
        Self::Internal(message.to_string())
    }
}

impl fmt::Display for SkillError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidInput { field, reason } => write!(f, "invalid input `{field}`: {reason}"),
            Self::Denied { target, reason } => write!(f, "denied {target}: {reason}"),
            Self::Backend { service, status: Some(s), message } => write!(f, "{service} answered {s}: {message}"),
            Self::Backend { service, status: None, message } => write!(f, "{service}: {message}"),
            Self::Timeout(what) => write!(f, "timed out waiting for {what}"),
            Self::Cancelled => f.write_str("cancelled"),
            Self::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for SkillError {}

impl From<SkillError> for wit::SkillError {
    fn from(e: SkillError) -> Self {
        match e {
            SkillError::InvalidInput { field, reason } => Self::InvalidInput(wit::InvalidInput { field, reason }),
            SkillError::Denied { target, reason } => Self::Denied(wit::Denied { target, reason }),
            SkillError::Backend { service, status, message } => {
                Self::Backend(wit::BackendError { service, status, message })
            }
            SkillError::Timeout(what) => Self::Timeout(what),
            SkillError::Cancelled => Self::Cancelled,
            SkillError::Internal(m) => Self::Internal(m),
        }
    }
}
