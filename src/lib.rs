//! Integration tests and benchmarks for the kring workspace live in `tests/` and `benches/`.
