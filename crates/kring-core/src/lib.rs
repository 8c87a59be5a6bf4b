//! Sans-IO Kafka producer core.
