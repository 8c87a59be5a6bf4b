//! Configuration errors, each naming the property at fault.

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A property kring does not know.
    #[error("unknown property `{name}`; kring accepts: {}", super::PROPERTY_NAMES.join(", "))]
    UnknownProperty {
        /// The name given.
        name: String,
    },
    /// A value that does not parse or is out of range.
    #[error("invalid value `{value}` for `{property}`: expected {expected}")]
    InvalidValue {
        /// The property.
        property: &'static str,
        /// The value given.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A required property is missing.
    #[error("`{property}` is required")]
    Missing {
        /// The property.
        property: &'static str,
    },
    /// Settings that contradict each other.
    #[error("conflicting settings: {0}")]
    Conflict(String),
}

impl ConfigError {
    pub(crate) fn invalid(property: &'static str, value: &str, expected: &'static str) -> Self {
        ConfigError::InvalidValue {
            property,
            value: value.to_owned(),
            expected,
        }
    }
}
