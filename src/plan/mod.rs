//! Plan types, statements per materialization and adapter, plan files.
