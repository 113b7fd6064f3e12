//! Fuzzes schema parsing: `DatabaseSchema::from_slice` on arbitrary bytes.
//!
//! Whatever parses must be parsed the same way by every entry point (`from_slice`,
//! `from_json_str`, `from_value`, serde), keep the schema rules the parser enforces, compile
//! into a monitor `Layout` whose ids find every table and column, and give every column a
//! default value that survives encoding and decoding against the column's own type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ovsdb::monitor::{Layout, default_datum};
use ovsdb::{AtomicType, DatabaseSchema, DatumSeed, Max};

fuzz_target!(|data: &[u8]| {
    let Ok(schema) = DatabaseSchema::from_slice(data) else {
        return;
    };

    let text = std::str::from_utf8(data).expect("a schema that parsed is UTF-8");
    let again = DatabaseSchema::from_json_str(text).expect("from_json_str accepts it too");
    assert_eq!(again, schema, "from_json_str and from_slice differ");
    let value: serde_json::Value = serde_json::from_slice(data).expect("it is JSON");
    let from_value = DatabaseSchema::from_value(&value).expect("from_value accepts it too");
    assert_eq!(from_value, schema, "from_value and from_slice differ");
    let via_serde: DatabaseSchema = serde_json::from_value(value).expect("serde accepts it too");
    assert_eq!(via_serde, schema, "Deserialize and from_slice differ");

    for (name, table) in &schema.tables {
        assert_eq!(&table.name, name);
        assert!(schema.table(name).is_some());
        assert!(table.column("_uuid").is_some() && table.column("_version").is_some());
        for (cname, column) in &table.columns {
            assert_eq!(&column.name, cname);
            assert!(!cname.starts_with('_'), "reserved column name {cname}");
            assert!(table.column(cname).is_some());
            let ty = &column.type_;
            assert!(ty.min <= 1, "min {} accepted", ty.min);
            assert!(ty.max != Max::Limited(0) && ty.max.allows(ty.min));
            for base in std::iter::once(&ty.key).chain(ty.value.as_ref()) {
                if let Some(target) = &base.ref_table {
                    assert_eq!(base.atomic, AtomicType::Uuid, "refTable on {}", base.atomic);
                    assert!(
                        schema.tables.contains_key(target),
                        "dangling refTable {target}"
                    );
                }
            }
            let _ = ty.to_string();

            // The default value encodes to JSON and decodes back to itself with the column's
            // type, and checking it against the constraints does not panic.
            let default = default_datum(ty);
            let json = serde_json::to_string(&default).expect("a datum encodes");
            let back = DatumSeed(ty)
                .decode_str(&json)
                .unwrap_or_else(|e| panic!("default {json} of {ty} does not decode: {e}"));
            assert_eq!(back, default, "default of {ty} changed through {json}");
            let _ = ty.check(&default);
        }
        for index in &table.indexes {
            for c in index {
                assert!(
                    c == "_uuid" || table.columns.contains_key(c),
                    "index on {c}"
                );
            }
        }
    }

    let layout = Layout::new(&schema);
    assert_eq!(layout.tables.len(), schema.tables.len());
    for (name, table) in &schema.tables {
        let Some((id, tl)) = layout.table(name) else {
            // Ids are 16 bits: only a schema with more tables than that has unnumbered ones.
            assert!(schema.tables.len() > usize::from(u16::MAX));
            continue;
        };
        assert_eq!(layout.table_by_id(id).map(|t| &t.name), Some(name));
        assert_eq!(tl.columns.len(), table.columns.len());
        for cname in table.columns.keys() {
            if let Some(cid) = tl.column_id(cname) {
                assert_eq!(tl.column(cid).map(|c| &c.name), Some(cname));
            } else {
                assert!(table.columns.len() > usize::from(u16::MAX));
            }
        }
        assert!(tl.indexes.len() <= table.indexes.len());
    }
});
