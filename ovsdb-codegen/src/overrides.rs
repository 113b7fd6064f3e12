//! The override table: columns whose Rust type is a domain type rather than the one the schema
//! implies.

use std::collections::BTreeMap;

use crate::CodegenError;

/// One override: the Rust type of a column and the module that converts it.
///
/// The codec module must have `fn decode(&ovsdb::Datum) -> Result<T, String>` and
/// `fn encode(&T) -> Result<ovsdb::Datum, String>`, and `T` must implement `Default`, `Clone`,
/// `Debug` and `PartialEq` (a value `decode` rejects becomes `T::default()` with a warning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The Rust type, as written in the generated field (e.g. `Vec<ipnet::IpNet>`).
    pub rust_type: String,
    /// Path of the codec module (e.g. `crate::domain::ip_networks`).
    pub codec: String,
}

/// Overrides by table and column.
///
/// The file form is a JSON object keyed by `"Table.column"`:
///
/// ```
/// let o = ovsdb_codegen::Overrides::from_json_str(r#"{
///     "Logical_Router_Port.networks": {"type": "Vec<ipnet::IpNet>", "codec": "crate::domain::ip_networks"}
/// }"#).unwrap();
/// assert_eq!(o.get("Logical_Router_Port", "networks").unwrap().codec, "crate::domain::ip_networks");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    by_column: BTreeMap<(String, String), Override>,
}

impl Overrides {
    /// No override.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an override (builder style).
    #[must_use]
    pub fn with(
        mut self,
        table: &str,
        column: &str,
        rust_type: impl Into<String>,
        codec: impl Into<String>,
    ) -> Self {
        self.by_column.insert(
            (table.to_owned(), column.to_owned()),
            Override {
                rust_type: rust_type.into(),
                codec: codec.into(),
            },
        );
        self
    }

    /// Parses the JSON file form.
    pub fn from_json_str(json: &str) -> Result<Self, CodegenError> {
        let bad = |reason: String| CodegenError::Overrides { reason };
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| bad(format!("not JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| bad("must be a JSON object".to_owned()))?;
        let mut out = Overrides::new();
        for (key, spec) in obj {
            let (table, column) = key
                .split_once('.')
                .ok_or_else(|| bad(format!("key {key:?} is not \"Table.column\"")))?;
            let field = |name: &str| {
                spec.get(name)
                    .and_then(serde_json::Value::as_str)
                    .ok_or_else(|| bad(format!("{key}: \"{name}\" must be a string")))
            };
            out = out.with(table, column, field("type")?, field("codec")?);
        }
        Ok(out)
    }

    /// The override of `table`.`column`, if any.
    #[must_use]
    pub fn get(&self, table: &str, column: &str) -> Option<&Override> {
        self.by_column.get(&(table.to_owned(), column.to_owned()))
    }

    /// Every `(table, column)` overridden.
    pub fn columns(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_column.keys().map(|(t, c)| (t.as_str(), c.as_str()))
    }
}
