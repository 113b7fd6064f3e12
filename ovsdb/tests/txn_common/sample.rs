//! Valid sample values for every column of a schema, honouring every constraint.
//!
//! One row per table; a UUID column with a `refTable` points at the sample row of that table
//! through the named UUID `t_<Table>`.

use std::collections::{BTreeMap, BTreeSet};

use ovsdb::{
    Atom, AtomicType, BaseType, ColumnType, DatabaseSchema, Datum, Max, NamedUuid, RefType, Row,
    Uuid,
};

/// The named UUID of `table`'s sample row.
pub fn name_of(table: &str) -> NamedUuid {
    NamedUuid::new(format!("t_{table}")).expect("table names are identifiers")
}

fn sample_atom(b: &BaseType, i: usize) -> Option<Atom> {
    if let Some(e) = &b.enumeration {
        return e.as_slice().get(i).cloned();
    }
    let i64i = i64::try_from(i).ok()?;
    match b.atomic {
        AtomicType::Integer => {
            let v = match b.min_integer {
                Some(lo) => lo.checked_add(i64i)?,
                None if b.max_integer.is_none() && i == 1 => 1 << 40,
                None => -7 + i64i,
            };
            (b.max_integer.is_none_or(|hi| v <= hi)).then_some(Atom::Integer(v))
        }
        AtomicType::Real => {
            #[allow(clippy::cast_precision_loss)]
            let v = b.min_real.unwrap_or(-2.5) + i as f64 * 0.25;
            (b.max_real.is_none_or(|hi| v <= hi)).then_some(Atom::Real(v))
        }
        AtomicType::Boolean => [false, true].get(i).map(|&b| Atom::Boolean(b)),
        AtomicType::String => {
            let mut s: String = format!("{i}:\u{e9} \"q\" {{a=b}} [x,y]\\n")
                .chars()
                .take(usize::try_from(b.max_length.unwrap_or(64)).ok()?)
                .collect();
            while (s.chars().count() as u64) < b.min_length.unwrap_or(0) {
                s.push('x');
            }
            Some(Atom::String(s))
        }
        AtomicType::Uuid => match &b.ref_table {
            Some(t) => (i == 0).then(|| Atom::NamedUuid(name_of(t))),
            None => Some(Atom::Uuid(Uuid::from_u128(
                0x5eed_0000_0000_4000_8000_0000_0000_0000 + i as u128,
            ))),
        },
    }
}

/// A valid value for `ty` with as many elements as fit in `min(max, 2)`, or `None` when none
/// can be made.
pub fn sample(ty: &ColumnType) -> Option<Datum> {
    let want = match ty.max {
        Max::Limited(m) => m.min(2),
        Max::Unlimited => 2,
    };
    let mut keys = Vec::new();
    for i in 0..usize::try_from(want).ok()? {
        match sample_atom(&ty.key, i) {
            Some(a) => keys.push(a),
            None => break,
        }
    }
    if (keys.len() as u64) < ty.min {
        return None;
    }
    Some(match &ty.value {
        None => Datum::set(keys),
        Some(vt) => {
            let mut pairs = Vec::new();
            for (i, k) in keys.into_iter().enumerate() {
                // Values may repeat; only keys must be distinct.
                let v = sample_atom(vt, i).or_else(|| sample_atom(vt, 0))?;
                pairs.push((k, v));
            }
            Datum::map(pairs)
        }
    })
}

/// One sample row per table: every column that can take a value gets one.
pub fn rows(schema: &DatabaseSchema) -> BTreeMap<String, Row> {
    schema
        .tables
        .values()
        .map(|t| {
            let row = t
                .columns
                .values()
                .filter_map(|c| sample(&c.type_).map(|d| (c.name.clone(), d)))
                .collect();
            (t.name.clone(), row)
        })
        .collect()
}

/// What a sample row reads back as once the named UUIDs are `uuids` and the rows that did not
/// survive garbage collection (`alive` holds the survivors) are gone from weak references.
pub fn resolve(
    schema: &DatabaseSchema,
    table: &str,
    row: &Row,
    uuids: &BTreeMap<String, Uuid>,
    alive: &BTreeSet<Uuid>,
) -> Row {
    let ts = schema.table(table).expect("table");
    row.iter()
        .map(|(c, d)| {
            let ty = &ts.columns[c].type_;
            let fix = |a: &Atom, b: Option<&BaseType>| -> Option<Atom> {
                match a {
                    Atom::NamedUuid(n) => {
                        let u = uuids[n.as_str().trim_start_matches("t_")];
                        let weak = b.is_some_and(|b| b.ref_type == RefType::Weak);
                        (!weak || alive.contains(&u)).then_some(Atom::Uuid(u))
                    }
                    other => Some(other.clone()),
                }
            };
            let d = match d {
                Datum::Set(s) => Datum::set(s.iter().filter_map(|a| fix(a, Some(&ty.key)))),
                Datum::Map(m) => Datum::map(m.iter().filter_map(|(k, v)| {
                    Some((fix(k, Some(&ty.key))?, fix(v, ty.value.as_ref())?))
                })),
            };
            (c.to_owned(), d)
        })
        .collect()
}

/// `value` in the syntax of `ovn-nbctl create` / `set` (`[a,b]`, `{k=v}`, `"str"`, `@name`).
pub fn ctl_syntax(value: &Datum) -> String {
    fn atom(a: &Atom) -> String {
        match a {
            Atom::Integer(i) => i.to_string(),
            Atom::Real(r) => format!("{r:?}"),
            Atom::Boolean(b) => b.to_string(),
            Atom::String(s) => serde_json::to_string(s).expect("string"),
            Atom::Uuid(u) => u.to_string(),
            Atom::NamedUuid(n) => format!("@{n}"),
        }
    }
    match value {
        Datum::Set(s) => format!("[{}]", s.iter().map(atom).collect::<Vec<_>>().join(",")),
        Datum::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}={}", atom(k), atom(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}
