//! Code generation from OVSDB schemas.
//!
//! `ovsdb-codegen` will read a `.ovsschema` file (or a `get_schema` reply) and write Rust source:
//! one struct per table, typed references, enums with an `Other(String)` variant for
//! enum-constrained columns, and an override table that maps columns to domain types. It is used
//! to generate `ovn-model` and is meant for any other schema too. It is pure: it takes a schema
//! and returns source text.
//!
//! This release carries no API yet.
