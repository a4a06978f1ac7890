//! No build step: this file exists so `[build-dependencies]` can pin host-side features.
//!
//! `cargo test` compiles insta's pest for the host, which turns on memchr's `default` feature
//! there; `cargo build` alone would not, so the two would resolve DuckDB's build script with
//! different dependency hashes and compile its bundled C++ (half an hour) twice. Asking for
//! memchr's defaults here makes both resolve alike.
fn main() {}
