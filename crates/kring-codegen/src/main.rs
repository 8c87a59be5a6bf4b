//! kring-codegen.
fn main() {}
