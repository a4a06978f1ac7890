//! Warehouse connections behind one trait: DuckDB (embedded default), Postgres.
