//! orrery: a declarative config compiler and static executor for dbt projects.
//!
//! The modules are the stages of the flow in DESIGN.md:
//! `spec` → `project` → `render` → `graph` → `plan` → `exec`, with `adapter` (warehouses),
//! `artifacts` (dbt's manifest and run results), `callback` (fired by `exec`), `store` (object
//! stores by URL), `secrets` (scrubbing), `cli` and `diagnostics` beside them.

pub mod adapter;
pub mod artifacts;
pub mod cache;
pub mod callback;
pub mod cli;
pub mod diagnostics;
pub mod exec;
pub mod export;
pub mod graph;
pub mod json;
pub mod node;
pub mod plan;
pub mod project;
pub mod render;
pub mod secrets;
pub mod spec;
pub mod state;
pub mod store;
pub mod timing;

/// A hash map for the compiler's own keys (ids, names, paths): foldhash, much cheaper than
/// std's SipHash on short strings; still seeded per process.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// The set of [`FastMap`].
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// A digest in lowercase hex, as `hex::encode` writes it, through the crate's slice encoder:
/// `hex::encode` goes character by character through an iterator, and a compile writes a
/// checksum or a fingerprint for every node.
pub fn hex_digest(bytes: &[u8]) -> String {
    let mut out = vec![0; bytes.len() * 2];
    // The output is exactly twice the input's length, so this cannot fail.
    let _ = hex::encode_to_slice(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_digest_is_hex_encode() {
        for bytes in [&b""[..], b"\x00", b"\x01\xab\xff\x10", &[0x5a; 32]] {
            assert_eq!(super::hex_digest(bytes), hex::encode(bytes));
        }
    }
}
