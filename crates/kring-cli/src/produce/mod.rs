//! `kring produce`: records from stdin or a file to a topic, kcat style.

pub mod input;
