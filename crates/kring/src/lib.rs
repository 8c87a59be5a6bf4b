//! Kafka producer on io_uring.
