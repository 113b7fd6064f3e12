//! Property tests of the RFC 7047 value encoding: random atoms, sets and maps of random column
//! types survive encode -> decode (typed and untyped), take the JSON form the RFC prescribes,
//! and random transactions serialize to well-formed `transact` params.

use ovsdb::{
    Atom, AtomicType, BaseType, ColumnType, Condition, Datum, DatumSeed, Delete, Function, Insert,
    Max, Mutate, Mutation, Mutator, NamedUuid, Operation, Row, Select, Transaction, Update, Uuid,
    Wait, WaitUntil,
};
use proptest::prelude::*;
use serde_json::Value;

fn atomic() -> impl Strategy<Value = AtomicType> {
    prop_oneof![
        Just(AtomicType::Integer),
        Just(AtomicType::Real),
        Just(AtomicType::Boolean),
        Just(AtomicType::String),
        Just(AtomicType::Uuid),
    ]
}

fn column_type() -> impl Strategy<Value = ColumnType> {
    (
        atomic(),
        proptest::option::of(atomic()),
        0u64..=1,
        prop_oneof![
            Just(Max::Limited(1)),
            Just(Max::Limited(3)),
            Just(Max::Unlimited)
        ],
    )
        .prop_map(|(k, v, min, max)| ColumnType {
            key: BaseType::new(k),
            value: v.map(BaseType::new),
            min,
            max,
        })
}

fn atom(t: AtomicType) -> BoxedStrategy<Atom> {
    match t {
        AtomicType::Integer => any::<i64>().prop_map(Atom::Integer).boxed(),
        AtomicType::Real => prop_oneof![
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
            Just(0.0),
            Just(-0.0),
            Just(1.0),
            Just(1e300),
            Just(f64::MIN_POSITIVE),
        ]
        .prop_map(Atom::Real)
        .boxed(),
        AtomicType::Boolean => any::<bool>().prop_map(Atom::Boolean).boxed(),
        AtomicType::String => prop_oneof![
            any::<String>(),
            "[\"\\\\{}\\[\\], \u{0}-\u{1f}\u{e9}\u{1F600}]{0,12}",
        ]
        .prop_map(Atom::String)
        .boxed(),
        AtomicType::Uuid => prop_oneof![
            any::<u128>().prop_map(|u| Atom::Uuid(Uuid::from_u128(u))),
            "[A-Za-z_][A-Za-z0-9_]{0,10}"
                .prop_map(|n| Atom::NamedUuid(NamedUuid::new(n).expect("identifier"))),
        ]
        .boxed(),
    }
}

/// A column type and a value of that type with a legal number of elements.
fn typed_datum() -> impl Strategy<Value = (ColumnType, Datum)> {
    column_type().prop_flat_map(|ty| {
        let max = match ty.max {
            Max::Limited(m) => m as usize,
            Max::Unlimited => 6,
        };
        let n = ty.min as usize..=max;
        let datum = match &ty.value {
            None => proptest::collection::vec(atom(ty.key.atomic), n)
                .prop_map(Datum::set)
                .boxed(),
            Some(v) => proptest::collection::vec((atom(ty.key.atomic), atom(v.atomic)), n)
                .prop_map(Datum::map)
                .boxed(),
        };
        // Deduplication can leave fewer elements than `min` (e.g. two equal booleans): keep
        // only data that fit the type.
        (Just(ty), datum).prop_filter("fits after dedup", |(ty, d)| ty.check(d).is_ok())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn datum_round_trips_typed_and_untyped((ty, datum) in typed_datum()) {
        let json = serde_json::to_string(&datum).expect("encode");
        let typed = DatumSeed(&ty).decode_str(&json).expect("typed decode");
        prop_assert_eq!(&typed, &datum, "typed, json {}", json);
        let untyped: Datum = serde_json::from_str(&json).expect("untyped decode");
        prop_assert_eq!(&untyped, &datum, "untyped, json {}", json);
        // The same through an already parsed serde_json::Value.
        let value: Value = serde_json::from_str(&json).expect("json");
        prop_assert_eq!(DatumSeed(&ty).decode_value(&value).expect("value decode"), datum);
    }

    #[test]
    fn datum_takes_the_rfc_json_form((ty, datum) in typed_datum()) {
        let v = serde_json::to_value(&datum).expect("encode");
        match &datum {
            Datum::Map(m) => {
                prop_assert_eq!(&v[0], "map");
                prop_assert_eq!(v[1].as_array().map(Vec::len), Some(m.len()));
            }
            Datum::Set(s) if s.len() == 1 => {
                let bare = v.as_array().is_none_or(|a| a[0] == "uuid" || a[0] == "named-uuid");
                prop_assert!(bare, "a one-element set is its atom: {}", v);
            }
            Datum::Set(s) => {
                prop_assert_eq!(&v[0], "set");
                prop_assert_eq!(v[1].as_array().map(Vec::len), Some(s.len()));
            }
        }
        prop_assert!(ty.check(&datum).is_ok());
    }

    #[test]
    fn typed_decoding_rejects_other_atomic_types(
        (ty, datum) in typed_datum(),
        other in atomic(),
    ) {
        // Decoding against a type whose key type differs must fail unless the datum is empty
        // or the difference is integer-written-as-real.
        let integer_as_real = other == AtomicType::Real && ty.key.atomic == AtomicType::Integer;
        if other == ty.key.atomic || datum.is_empty() || ty.is_map() || integer_as_real {
            return Ok(());
        }
        let wrong = ColumnType { key: BaseType::new(other), ..ty.clone() };
        let json = serde_json::to_string(&datum).expect("encode");
        prop_assert!(DatumSeed(&wrong).decode_str(&json).is_err(), "{} decoded as {:?}", json, other);
    }
}

fn row() -> impl Strategy<Value = Row> {
    proptest::collection::btree_map("[a-z_]{1,8}", typed_datum().prop_map(|(_, d)| d), 0..4)
        .prop_map(Row::from)
}

fn condition() -> impl Strategy<Value = Condition> {
    let f = proptest::sample::select(Function::ALL.to_vec());
    ("[a-z_]{1,8}", f, typed_datum()).prop_map(|(c, f, (_, d))| Condition::new(c, f, d))
}

fn operation() -> impl Strategy<Value = Operation> {
    let table = "[A-Z][a-z_]{0,8}";
    let conds = || proptest::collection::vec(condition(), 0..3);
    prop_oneof![
        (table, row(), proptest::option::of(any::<u128>())).prop_map(|(t, r, u)| {
            let mut i = Insert::new(t, r).uuid_name(NamedUuid::new("n").expect("name"));
            i.uuid = u.map(Uuid::from_u128);
            Operation::Insert(i)
        }),
        (table, conds()).prop_map(|(t, c)| {
            let mut s = Select::new(t).columns(["a", "b"]);
            s.conditions = c;
            Operation::Select(s)
        }),
        (table, conds(), row()).prop_map(|(t, c, r)| {
            let mut u = Update::new(t, r);
            u.conditions = c;
            Operation::Update(u)
        }),
        (
            table,
            proptest::sample::select(Mutator::ALL.to_vec()),
            typed_datum()
        )
            .prop_map(|(t, m, (_, d))| Operation::Mutate(
                Mutate::new(t).mutation(Mutation::new("c", m, d))
            )),
        (table, conds()).prop_map(|(t, c)| {
            let mut d = Delete::new(t);
            d.conditions = c;
            Operation::Delete(d)
        }),
        (
            table,
            proptest::collection::vec(row(), 0..3),
            proptest::option::of(0u64..10_000)
        )
            .prop_map(|(t, rows, timeout)| {
                let mut w = Wait::new(t, ["a"], WaitUntil::NotEqual, rows);
                w.timeout = timeout;
                Operation::Wait(w)
            }),
        any::<bool>().prop_map(|durable| Operation::Commit { durable }),
        Just(Operation::Abort),
        any::<String>().prop_map(Operation::Comment),
        "[a-z]{1,8}".prop_map(|lock| Operation::Assert { lock }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn transactions_serialize_to_transact_params(ops in proptest::collection::vec(operation(), 0..6)) {
        let mut txn = Transaction::new("OVN_Northbound");
        for op in &ops {
            txn.push(op.clone());
        }
        let text = serde_json::to_string(&txn).expect("encode");
        let v: Value = serde_json::from_str(&text).expect("valid JSON");
        let arr = v.as_array().expect("params are an array");
        prop_assert_eq!(arr.len(), ops.len() + 1);
        prop_assert_eq!(&arr[0], "OVN_Northbound");
        prop_assert_eq!(&txn.to_params(), &v);
        for (op, json) in ops.iter().zip(&arr[1..]) {
            prop_assert_eq!(json["op"].as_str(), Some(op.kind().as_str()));
            prop_assert_eq!(json.get("table").and_then(Value::as_str), op.table());
            match op {
                Operation::Insert(i) => {
                    let back: Row = serde_json::from_value(json["row"].clone()).expect("row");
                    prop_assert_eq!(&back, &i.row);
                }
                Operation::Update(u) => {
                    let back: Row = serde_json::from_value(json["row"].clone()).expect("row");
                    prop_assert_eq!(&back, &u.row);
                    prop_assert_eq!(json["where"].as_array().map(Vec::len), Some(u.conditions.len()));
                }
                _ => {}
            }
            if let Some(w) = json.get("where").and_then(Value::as_array) {
                for c in w {
                    let c = c.as_array().expect("condition triple");
                    prop_assert_eq!(c.len(), 3);
                    let f = c[1].as_str().expect("function");
                    prop_assert!(Function::ALL.iter().any(|x| x.as_str() == f));
                    let _: Datum = serde_json::from_value(c[2].clone()).expect("condition value");
                }
            }
        }
    }
}
