//! orrery: a declarative config compiler and static executor for dbt projects.
//!
//! The modules are the stages of the flow in DESIGN.md:
//! `spec` → `project` → `render` → `graph` → `plan` → `exec`, with `adapter` (warehouses),
//! `artifacts` (dbt's manifest and run results), `callback` (fired by `exec`), `store` (object
//! stores by URL), `secrets` (scrubbing), `sql` (SQL text: lexical contexts, values bound as
//! literals), `cli` and `diagnostics` beside them.

pub mod adapter;
pub mod artifacts;
pub mod cache;
pub mod callback;
pub mod cli;
pub mod codes;
pub mod diagnostics;
pub mod dirs;
pub mod duration;
pub mod exec;
pub mod export;
pub mod graph;
pub mod json;
pub mod node;
pub mod plan;
pub mod project;
pub mod relation;
pub mod render;
pub mod replace;
pub mod secrets;
pub mod spec;
pub mod sql;
pub mod state;
pub mod store;
pub mod timing;

/// A hash map for the compiler's own keys (ids, names, paths): foldhash, much cheaper than
/// std's SipHash on short strings; still seeded per process.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// The set of [`FastMap`].
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// The last few values a worker thread made, each beside what it was made from: for values most
/// nodes share (a folder's config, and its JSON), found again by comparing a handful of entries
/// rather than hashing every node's.
pub struct Recent<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> Recent<K, V> {
    /// How many it keeps; a new one pushes out the oldest.
    const KEEP: usize = 4;

    pub const fn new() -> Self {
        Recent { entries: Vec::new() }
    }

    /// The value of the first entry `same` accepts, else the one `make` makes, kept.
    pub fn get_or_make<E>(&mut self, same: impl Fn(&K) -> bool, make: impl FnOnce() -> Result<(K, V), E>) -> Result<&V, E> {
        let i = match self.entries.iter().position(|(k, _)| same(k)) {
            Some(i) => i,
            None => {
                let made = make()?;
                if self.entries.len() == Self::KEEP {
                    self.entries.remove(0);
                }
                self.entries.push(made);
                self.entries.len() - 1
            }
        };
        Ok(&self.entries[i].1)
    }
}

/// A digest in lowercase hex, as `hex::encode` writes it, through the crate's slice encoder:
/// `hex::encode` goes character by character through an iterator, and a compile writes a
/// checksum or a fingerprint for every node.
pub fn hex_digest(bytes: &[u8]) -> String {
    let mut out = vec![0; bytes.len() * 2];
    // The output is exactly twice the input's length, so this cannot fail.
    let _ = hex::encode_to_slice(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// The md5 of a text in lowercase hex (dbt's test-name hashes, `local_md5`, the project id).
pub fn md5_hex(text: &str) -> String {
    use md5::Digest as _;
    hex_digest(&md5::Md5::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn recent_keeps_the_last_four_and_makes_each_once() {
        let mut recent = super::Recent::new();
        let mut made = 0;
        for key in [1, 2, 1, 3, 4, 5, 1, 5] {
            let value = *recent
                .get_or_make(
                    |k| *k == key,
                    || {
                        made += 1;
                        Ok::<_, ()>((key, key * 10))
                    },
                )
                .expect("made");
            assert_eq!(value, key * 10);
        }
        // 1, 2, 3, 4, 5 made once each; then 1 again, the oldest when 5 came, was pushed out.
        assert_eq!(made, 6);
        assert_eq!(recent.get_or_make(|_| false, || Err("failed")), Err("failed"));
    }

    #[test]
    fn hex_digest_is_hex_encode() {
        for bytes in [&b""[..], b"\x00", b"\x01\xab\xff\x10", &[0x5a; 32]] {
            assert_eq!(super::hex_digest(bytes), hex::encode(bytes));
        }
    }
}
