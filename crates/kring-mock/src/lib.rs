//! In-process Kafka cluster at the wire level, with fault injection.
