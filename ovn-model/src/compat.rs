//! Checking a server's schema against a model's, as Open vSwitch's C IDL does: tables and
//! columns the server has and the model does not are fine (a newer server); tables and columns
//! the model has and the server lacks are reported (an older server), and so are columns whose
//! type changed shape.
//!
//! ```
//! use ovsdb::DatabaseSchema;
//!
//! let model = DatabaseSchema::from_json_str(r#"{"name":"D","version":"1.0.0","tables":{
//!     "T":{"columns":{"a":{"type":"string"},"b":{"type":"integer"}}}}}"#).unwrap();
//! let server = DatabaseSchema::from_json_str(r#"{"name":"D","version":"1.1.0","tables":{
//!     "T":{"columns":{"a":{"type":"string"},"c":{"type":"integer"}}},"U":{"columns":{}}}}"#).unwrap();
//! let report = ovn_model::compat::check(&model, &server);
//! assert_eq!(report.added_tables, ["U"]);
//! assert_eq!(report.problems.len(), 1); // T.b is missing
//! assert!(report.check().is_err());
//! ```

use ovsdb::{BaseType, ColumnType, DatabaseSchema, Max};

/// One way a server's schema falls short of the model's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaMismatch {
    /// The server's database is another one.
    #[error("server database is {found}, the model is {expected}")]
    Database {
        /// The model's database.
        expected: String,
        /// The server's.
        found: String,
    },
    /// The server has no such table.
    #[error("table {table} is missing on the server (schema {server_version})")]
    MissingTable {
        /// Table.
        table: String,
        /// The server's schema version.
        server_version: String,
    },
    /// The server's table has no such column.
    #[error("table {table}, column {column} is missing on the server (schema {server_version})")]
    MissingColumn {
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// The server's schema version.
        server_version: String,
    },
    /// The column exists with another type.
    #[error("table {table}, column {column}: {reason}")]
    ColumnType {
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// How the types differ.
        reason: String,
    },
}

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaReport {
    /// What the server lacks or has changed (empty when the model fits).
    pub problems: Vec<SchemaMismatch>,
    /// Tables the server has and the model does not (tolerated).
    pub added_tables: Vec<String>,
    /// `(table, column)` the server has and the model does not (tolerated).
    pub added_columns: Vec<(String, String)>,
}

impl SchemaReport {
    /// Whether the model fits the server.
    #[must_use]
    pub fn is_compatible(&self) -> bool {
        self.problems.is_empty()
    }

    /// `Ok` when the model fits, else the first problem.
    pub fn check(&self) -> Result<(), SchemaMismatch> {
        match self.problems.first() {
            None => Ok(()),
            Some(p) => Err(p.clone()),
        }
    }
}

/// Compares the `server`'s schema (from `get_schema`) with the `model`'s.
#[must_use]
pub fn check(model: &DatabaseSchema, server: &DatabaseSchema) -> SchemaReport {
    let mut r = SchemaReport::default();
    if model.name != server.name {
        r.problems.push(SchemaMismatch::Database {
            expected: model.name.clone(),
            found: server.name.clone(),
        });
        return r;
    }
    for (name, mt) in &model.tables {
        let Some(st) = server.table(name) else {
            r.problems.push(SchemaMismatch::MissingTable {
                table: name.clone(),
                server_version: server.version.clone(),
            });
            continue;
        };
        for (cname, mc) in &mt.columns {
            match st.columns.get(cname) {
                None => r.problems.push(SchemaMismatch::MissingColumn {
                    table: name.clone(),
                    column: cname.clone(),
                    server_version: server.version.clone(),
                }),
                Some(sc) => {
                    if let Some(reason) = type_difference(&mc.type_, &sc.type_) {
                        r.problems.push(SchemaMismatch::ColumnType {
                            table: name.clone(),
                            column: cname.clone(),
                            reason,
                        });
                    }
                }
            }
        }
        for cname in st.columns.keys().filter(|c| !mt.columns.contains_key(*c)) {
            r.added_columns.push((name.clone(), cname.clone()));
        }
    }
    r.added_tables = server
        .tables
        .keys()
        .filter(|t| !model.tables.contains_key(*t))
        .cloned()
        .collect();
    r
}

/// How two column types differ in a way the model cannot read: atomic types, map vs set,
/// scalar vs set, or a referenced table. Constraint changes (enums, ranges) are tolerated:
/// decoding is forgiving and writes are validated against the server anyway.
fn type_difference(model: &ColumnType, server: &ColumnType) -> Option<String> {
    let shape = |t: &ColumnType| {
        if t.is_map() {
            "map"
        } else if t.is_scalar() {
            "scalar"
        } else if t.is_optional() {
            "optional"
        } else {
            "set"
        }
    };
    if shape(model) != shape(server) && !(shape(model) == "set" && server.max == Max::Unlimited) {
        return Some(format!(
            "model has a {} ({model}), server a {} ({server})",
            shape(model),
            shape(server)
        ));
    }
    let base = |role: &str, m: &BaseType, s: &BaseType| {
        if m.atomic != s.atomic {
            return Some(format!(
                "{role} type is {} in the model, {} on the server",
                m.atomic, s.atomic
            ));
        }
        if m.ref_table != s.ref_table {
            return Some(format!(
                "{role} refers to {:?} in the model, {:?} on the server",
                m.ref_table, s.ref_table
            ));
        }
        None
    };
    base("key", &model.key, &server.key).or_else(|| match (&model.value, &server.value) {
        (Some(m), Some(s)) => base("value", m, s),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(json: &str) -> DatabaseSchema {
        DatabaseSchema::from_json_str(json).unwrap()
    }

    #[test]
    fn installed_nb_model_fits_itself() {
        let r = check(crate::nb::schema(), crate::nb::schema());
        assert!(r.is_compatible());
        assert!(r.added_tables.is_empty() && r.added_columns.is_empty());
    }

    #[test]
    fn reports_missing_and_changed_tolerates_added() {
        let model = schema(
            r#"{"name":"D","version":"1","tables":{"T":{"columns":{
                "a":{"type":"string"},"m":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}}},
                "Gone":{"columns":{}}}}"#,
        );
        let server = schema(
            r#"{"name":"D","version":"2","tables":{"T":{"columns":{
                "a":{"type":"integer"},"m":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}},
                "new":{"type":"string"}}}}}"#,
        );
        let r = check(&model, &server);
        assert_eq!(r.added_columns, [("T".to_owned(), "new".to_owned())]);
        assert!(
            matches!(&r.problems[0], SchemaMismatch::MissingTable { table, .. } if table == "Gone")
        );
        assert!(
            matches!(&r.problems[1], SchemaMismatch::ColumnType { column, .. } if column == "a")
        );
        assert_eq!(r.problems.len(), 2);
        let other = schema(r#"{"name":"E","version":"1","tables":{}}"#);
        assert!(matches!(
            check(&model, &other).check(),
            Err(SchemaMismatch::Database { .. })
        ));
    }
}
