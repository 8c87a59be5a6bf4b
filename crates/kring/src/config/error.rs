//! Configuration errors, each naming the property at fault.

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A property kring does not know.
    #[error("unknown property `{name}`{}; kring accepts: {}",
        did_you_mean.map(|m| format!(" (did you mean `{m}`?)")).unwrap_or_default(),
        super::PROPERTY_NAMES.join(", "))]
    UnknownProperty {
        /// The name given.
        name: String,
        /// The accepted name closest to it, when one is close.
        did_you_mean: Option<&'static str>,
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
    /// Several problems, reported together (from
    /// [`ProducerConfig::from_properties`](super::ProducerConfig::from_properties)),
    /// so a pasted configuration can be fixed in one pass.
    #[error("{}", multiple(.0))]
    Multiple(Vec<ConfigError>),
    /// A Java or librdkafka setting whose value asks for something kring
    /// does not do (a Java class that cannot run here, transactions, ...):
    /// refused rather than ignored, since ignoring it would change what
    /// the producer does.
    #[error("`{property}={value}` is not supported: {reason}")]
    Unsupported {
        /// The property.
        property: &'static str,
        /// The value given.
        value: String,
        /// Why kring cannot do it, and what to do instead.
        reason: &'static str,
    },
    /// A value outside the range the producer can work with.
    #[error("invalid `{property}`: {reason}")]
    OutOfRange {
        /// The property.
        property: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl From<kring_core::ConfigError> for ConfigError {
    /// The core checks its settings again when it starts; its verdicts are
    /// reported in this crate's terms.
    fn from(e: kring_core::ConfigError) -> Self {
        match e {
            kring_core::ConfigError::Invalid { setting, reason } => ConfigError::OutOfRange {
                property: setting,
                reason,
            },
            kring_core::ConfigError::IdempotenceConflict(need) => {
                ConfigError::Conflict(format!("enable.idempotence=true requires {need}"))
            }
            other => ConfigError::Conflict(other.to_string()),
        }
    }
}

impl ConfigError {
    pub(crate) fn unsupported(property: &'static str, value: &str, reason: &'static str) -> Self {
        ConfigError::Unsupported {
            property,
            value: value.to_owned(),
            reason,
        }
    }

    pub(crate) fn invalid(property: &'static str, value: &str, expected: &'static str) -> Self {
        ConfigError::InvalidValue {
            property,
            value: value.to_owned(),
            expected,
        }
    }
}

/// "N configuration problems: a; b; c", naming the accepted properties once
/// at the end rather than after every unknown one.
fn multiple(errors: &[ConfigError]) -> String {
    let mut out = format!("{} configuration problems: ", errors.len());
    let mut any_unknown = false;
    for (i, e) in errors.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        match e {
            ConfigError::UnknownProperty { name, did_you_mean } => {
                any_unknown = true;
                out.push_str(&format!("unknown property `{name}`"));
                if let Some(m) = did_you_mean {
                    out.push_str(&format!(" (did you mean `{m}`?)"));
                }
            }
            other => out.push_str(&other.to_string()),
        }
    }
    if any_unknown {
        out.push_str(&format!(
            "; kring accepts: {}",
            super::PROPERTY_NAMES.join(", ")
        ));
    }
    out
}
