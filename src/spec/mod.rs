//! The orrery.toml pipeline types, loaded with spans.
