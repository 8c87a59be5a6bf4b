//! The kring command-line tool.
fn main() {}
