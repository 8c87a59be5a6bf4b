//! The public producer.

use crate::config::ProducerConfig;

/// Builds a [`Producer`]; every setter of [`ProducerConfig`] is available.
#[derive(Debug, Clone, Default)]
pub struct ProducerBuilder {
    pub(crate) config: ProducerConfig,
}
