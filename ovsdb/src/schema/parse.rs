//! Schema JSON to [`DatabaseSchema`]. Schemas are small, so this walks a `serde_json::Value`.

use std::collections::BTreeMap;

use serde_json::{Map as JsonMap, Value};

use super::{
    BaseType, ColumnSchema, ColumnType, DatabaseSchema, Max, RefType, SchemaError, TableSchema,
};
use crate::value::{AtomicType, Datum, DatumSeed};

fn invalid(reason: impl Into<String>) -> SchemaError {
    SchemaError::Invalid {
        table: None,
        column: None,
        reason: reason.into(),
    }
}

/// Fills in the table and column of an error raised deeper down.
fn at(table: &str, column: Option<&str>) -> impl Fn(SchemaError) -> SchemaError {
    move |e| match e {
        SchemaError::Invalid {
            table: None,
            column: None,
            reason,
        } => SchemaError::Invalid {
            table: Some(table.to_owned()),
            column: column.map(str::to_owned),
            reason,
        },
        other => other,
    }
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a JsonMap<String, Value>, SchemaError> {
    v.as_object()
        .ok_or_else(|| invalid(format!("{what} must be a JSON object")))
}

fn string(o: &JsonMap<String, Value>, key: &str) -> Result<Option<String>, SchemaError> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("\"{key}\" must be a string"))),
    }
}

fn boolean(o: &JsonMap<String, Value>, key: &str) -> Result<Option<bool>, SchemaError> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(format!("\"{key}\" must be a boolean"))),
    }
}

fn unsigned(o: &JsonMap<String, Value>, key: &str) -> Result<Option<u64>, SchemaError> {
    match o.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(format!("\"{key}\" must be a non-negative integer"))),
    }
}

fn integer(o: &JsonMap<String, Value>, key: &str) -> Result<Option<i64>, SchemaError> {
    match o.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid(format!("\"{key}\" must be an integer"))),
    }
}

fn real(o: &JsonMap<String, Value>, key: &str) -> Result<Option<f64>, SchemaError> {
    match o.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| invalid(format!("\"{key}\" must be a number"))),
    }
}

pub(super) fn database(v: &Value) -> Result<DatabaseSchema, SchemaError> {
    let o = object(v, "schema")?;
    let name = string(o, "name")?.ok_or_else(|| invalid("missing \"name\""))?;
    let version = string(o, "version")?.unwrap_or_default();
    let cksum = string(o, "cksum")?;
    let tables_json = object(
        o.get("tables")
            .ok_or_else(|| invalid("missing \"tables\""))?,
        "\"tables\"",
    )?;
    let any_root = tables_json
        .values()
        .any(|t| t.as_object().is_some_and(|t| t.contains_key("isRoot")));
    let mut tables = BTreeMap::new();
    for (tname, tv) in tables_json {
        let t = table(tname, tv, any_root).map_err(at(tname, None))?;
        tables.insert(tname.clone(), t);
    }
    // Every refTable must name a table of this schema.
    for t in tables.values() {
        for c in t.columns.values() {
            let bases = std::iter::once(&c.type_.key).chain(c.type_.value.as_ref());
            for b in bases {
                if let Some(r) = &b.ref_table
                    && !tables.contains_key(r)
                {
                    return Err(at(&t.name, Some(&c.name))(invalid(format!(
                        "refTable {r} is not a table of this schema"
                    ))));
                }
            }
        }
    }
    Ok(DatabaseSchema {
        name,
        version,
        cksum,
        tables,
    })
}

fn table(name: &str, v: &Value, any_root: bool) -> Result<TableSchema, SchemaError> {
    let o = object(v, "table")?;
    let cols = object(
        o.get("columns")
            .ok_or_else(|| invalid("missing \"columns\""))?,
        "\"columns\"",
    )?;
    let mut columns = BTreeMap::new();
    for (cname, cv) in cols {
        if cname.starts_with('_') {
            return Err(at(name, Some(cname))(invalid(
                "column names starting with '_' are reserved",
            )));
        }
        let c = column(cname, cv).map_err(at(name, Some(cname)))?;
        columns.insert(cname.clone(), c);
    }
    let mut indexes = Vec::new();
    if let Some(ix) = o.get("indexes") {
        let ix = ix
            .as_array()
            .ok_or_else(|| invalid("\"indexes\" must be an array"))?;
        for index in ix {
            let cols = index
                .as_array()
                .ok_or_else(|| invalid("each index must be an array of column names"))?;
            let mut names = Vec::with_capacity(cols.len());
            for c in cols {
                let c = c
                    .as_str()
                    .ok_or_else(|| invalid("each index must be an array of column names"))?;
                if c != "_uuid" && !columns.contains_key(c) {
                    return Err(invalid(format!("index names unknown column {c}")));
                }
                names.push(c.to_owned());
            }
            indexes.push(names);
        }
    }
    Ok(TableSchema {
        name: name.to_owned(),
        columns,
        is_root: boolean(o, "isRoot")?.unwrap_or(!any_root),
        indexes,
        max_rows: unsigned(o, "maxRows")?,
    })
}

fn column(name: &str, v: &Value) -> Result<ColumnSchema, SchemaError> {
    let o = object(v, "column")?;
    let ty = o.get("type").ok_or_else(|| invalid("missing \"type\""))?;
    Ok(ColumnSchema {
        name: name.to_owned(),
        type_: column_type(ty)?,
        ephemeral: boolean(o, "ephemeral")?.unwrap_or(false),
        mutable: boolean(o, "mutable")?.unwrap_or(true),
    })
}

pub(super) fn column_type(v: &Value) -> Result<ColumnType, SchemaError> {
    if v.is_string() {
        return Ok(ColumnType::scalar(base_type(v)?));
    }
    let o = object(v, "type")?;
    let key = base_type(o.get("key").ok_or_else(|| invalid("type has no \"key\""))?)?;
    let value = o.get("value").map(base_type).transpose()?;
    let min = unsigned(o, "min")?.unwrap_or(1);
    let max = match o.get("max") {
        None => Max::Limited(1),
        Some(Value::String(s)) if s == "unlimited" => Max::Unlimited,
        Some(m) => Max::Limited(
            m.as_u64()
                .ok_or_else(|| invalid("\"max\" must be a positive integer or \"unlimited\""))?,
        ),
    };
    if min > 1 {
        return Err(invalid(format!("\"min\" is {min}; it must be 0 or 1")));
    }
    if max == Max::Limited(0) || !max.allows(min) {
        return Err(invalid(format!(
            "\"max\" {max} is below \"min\" {min} or zero"
        )));
    }
    Ok(ColumnType {
        key,
        value,
        min,
        max,
    })
}

fn atomic(v: &Value) -> Result<AtomicType, SchemaError> {
    let s = v
        .as_str()
        .ok_or_else(|| invalid("atomic type must be a string"))?;
    AtomicType::from_name(s).ok_or_else(|| invalid(format!("unknown atomic type {s:?}")))
}

fn base_type(v: &Value) -> Result<BaseType, SchemaError> {
    if v.is_string() {
        return Ok(BaseType::new(atomic(v)?));
    }
    let o = object(v, "base type")?;
    let mut b = BaseType::new(atomic(
        o.get("type")
            .ok_or_else(|| invalid("base type has no \"type\""))?,
    )?);
    if let Some(e) = o.get("enum") {
        let scalar = ColumnType {
            key: BaseType::new(b.atomic),
            value: None,
            min: 0,
            max: Max::Unlimited,
        };
        let d = DatumSeed(&scalar)
            .decode_value(e)
            .map_err(|err| invalid(format!("bad \"enum\": {err}")))?;
        match d {
            Datum::Set(s) => b.enumeration = Some(s),
            Datum::Map(_) => return Err(invalid("\"enum\" must be a set")),
        }
    }
    b.min_integer = integer(o, "minInteger")?;
    b.max_integer = integer(o, "maxInteger")?;
    b.min_real = real(o, "minReal")?;
    b.max_real = real(o, "maxReal")?;
    b.min_length = unsigned(o, "minLength")?;
    b.max_length = unsigned(o, "maxLength")?;
    b.ref_table = string(o, "refTable")?;
    b.ref_type = match string(o, "refType")?.as_deref() {
        None | Some("strong") => RefType::Strong,
        Some("weak") => RefType::Weak,
        Some(other) => return Err(invalid(format!("refType {other:?} is not strong or weak"))),
    };
    if b.ref_table.is_some() && b.atomic != AtomicType::Uuid {
        return Err(invalid("refTable on a non-uuid type"));
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(json: &str) -> String {
        DatabaseSchema::from_json_str(json).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_table_and_column() {
        let e = bad(r#"{"name":"D","tables":{"T":{"columns":{"c":{"type":"float"}}}}}"#);
        assert!(e.contains("table T, column c"), "{e}");
        assert!(e.contains("float"), "{e}");
        let e = bad(
            r#"{"name":"D","tables":{"T":{"columns":{"c":{"type":{"key":{"type":"uuid","refTable":"X"}}}}}}}"#,
        );
        assert!(e.contains("refTable X"), "{e}");
        let e = bad(r#"{"name":"D","tables":{"T":{"columns":{},"indexes":[["nope"]]}}}"#);
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn parses_enum_and_bounds() {
        let t = column_type(
            &serde_json::json!({"key":{"type":"string","enum":["set",["a","b"]]},"min":0,"max":"unlimited"}),
        )
        .unwrap();
        assert_eq!(t.key.enumeration.as_ref().map(|s| s.len()), Some(2));
        assert_eq!(t.max, Max::Unlimited);
        let one = column_type(&serde_json::json!({"key":{"type":"string","enum":"only"}})).unwrap();
        assert_eq!(one.key.enumeration.as_ref().map(|s| s.len()), Some(1));
        assert!(column_type(&serde_json::json!({"key":"integer","min":2,"max":3})).is_err());
        assert!(column_type(&serde_json::json!({"key":"integer","min":0,"max":0})).is_err());
    }
}
