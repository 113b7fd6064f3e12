//! Random transactions for the differential test of `Replica::transact`: per schema, the
//! tables and how their columns' values are made; operations over them as abstract values
//! (references to rows by position or by name), and [`Side`], which makes them concrete for
//! the replica or for the server (whose UUIDs differ).

#![allow(dead_code)]

use std::collections::HashMap;

use ovsdb::replica::Snapshot;
use ovsdb::{
    Atom, Condition, Datum, Delete, Function, Insert, Mutate, Mutation, Mutator, NamedUuid,
    Operation, Row, Select, Transaction, Update, Uuid, Wait, WaitUntil,
};
use proptest::prelude::*;

/// How a column's values are made.
#[derive(Debug, Clone, Copy)]
pub enum K {
    /// A name from a small pool (so that index values collide).
    Name,
    Str(&'static [&'static str]),
    Int(i64, i64),
    OptInt(i64, i64),
    Bool,
    OptBool,
    OptStr(&'static [&'static str]),
    StrSet(&'static [&'static str]),
    Map,
    /// A set of references to rows of a table (strong or weak, as the schema says).
    Refs(&'static str),
    /// At most one reference.
    OptRef(&'static str),
    /// Exactly one reference.
    OneRef(&'static str),
}

pub type Spec = (&'static str, &'static [(&'static str, K)]);

pub const ADDRS: &[&str] = &["a1", "a2", "dynamic"];
pub const DIRS: &[&str] = &["from-lport", "to-lport", "to-lport", "sideways"];

pub const NB: &[Spec] = &[
    (
        "Logical_Switch",
        &[
            ("name", K::Name),
            ("ports", K::Refs("Logical_Switch_Port")),
            ("acls", K::Refs("ACL")),
            ("qos_rules", K::Refs("QoS")),
            ("load_balancer", K::Refs("Load_Balancer")),
            ("external_ids", K::Map),
            ("other_config", K::Map),
        ],
    ),
    (
        "Logical_Switch_Port",
        &[
            ("name", K::Name),
            ("type", K::Str(&["", "router"])),
            ("addresses", K::StrSet(ADDRS)),
            ("tag_request", K::OptInt(0, 5000)),
            ("enabled", K::OptBool),
            ("external_ids", K::Map),
        ],
    ),
    (
        "ACL",
        &[
            ("priority", K::Int(0, 40000)),
            ("direction", K::Str(DIRS)),
            ("action", K::Str(&["allow", "drop", "reject"])),
            ("match", K::Str(&["m1", "m2"])),
            ("name", K::OptStr(&["n1", "n2"])),
            ("label", K::Int(0, 5)),
            ("log", K::Bool),
            ("external_ids", K::Map),
        ],
    ),
    (
        "Port_Group",
        &[
            ("name", K::Name),
            ("ports", K::Refs("Logical_Switch_Port")),
            ("acls", K::Refs("ACL")),
            ("external_ids", K::Map),
        ],
    ),
    (
        "Address_Set",
        &[
            ("name", K::Name),
            ("addresses", K::StrSet(ADDRS)),
            ("external_ids", K::Map),
        ],
    ),
    (
        "Load_Balancer",
        &[
            ("name", K::Name),
            ("protocol", K::OptStr(&["tcp", "udp", "quic"])),
            ("vips", K::Map),
            ("external_ids", K::Map),
        ],
    ),
    (
        "QoS",
        &[
            ("priority", K::Int(0, 40000)),
            ("direction", K::Str(DIRS)),
            ("match", K::Str(&["m1", "m2"])),
            ("external_ids", K::Map),
        ],
    ),
    (
        "Logical_Router",
        &[
            ("name", K::Name),
            ("ports", K::Refs("Logical_Router_Port")),
            ("static_routes", K::Refs("Logical_Router_Static_Route")),
            ("nat", K::Refs("NAT")),
            ("load_balancer", K::Refs("Load_Balancer")),
            ("enabled", K::OptBool),
            ("external_ids", K::Map),
        ],
    ),
    (
        "Logical_Router_Port",
        &[
            ("name", K::Name),
            ("networks", K::StrSet(&["10.0.0.1/24", "10.0.1.1/24"])),
            ("mac", K::Str(&["", "0a:00:00:00:00:01"])),
            ("peer", K::OptStr(&["p1"])),
            ("external_ids", K::Map),
        ],
    ),
    (
        "Logical_Router_Static_Route",
        &[
            ("ip_prefix", K::Str(&["10.0.0.0/24", "0.0.0.0/0"])),
            ("nexthop", K::Str(&["10.0.0.1"])),
            ("route_table", K::Str(&["", "t1"])),
            ("policy", K::OptStr(&["src-ip", "dst-ip"])),
            ("external_ids", K::Map),
        ],
    ),
    (
        "NAT",
        &[
            ("type", K::Str(&["snat", "dnat", "dnat_and_snat"])),
            ("external_ip", K::Str(&["1.1.1.1"])),
            ("logical_ip", K::Str(&["10.0.0.5"])),
            ("gateway_port", K::OptRef("Logical_Router_Port")),
            ("external_ids", K::Map),
        ],
    ),
];

pub const VS: &[Spec] = &[
    (
        "Open_vSwitch",
        &[
            ("bridges", K::Refs("Bridge")),
            ("next_cfg", K::Int(-3, 3)),
            ("external_ids", K::Map),
        ],
    ),
    (
        "Bridge",
        &[
            ("name", K::Name),
            ("ports", K::Refs("Port")),
            ("stp_enable", K::Bool),
            ("external_ids", K::Map),
        ],
    ),
    (
        "Port",
        &[
            ("name", K::Name),
            ("interfaces", K::Refs("Interface")),
            ("tag", K::OptInt(0, 5000)),
            ("trunks", K::StrSet(&[])),
            ("external_ids", K::Map),
        ],
    ),
    (
        "Interface",
        &[
            ("name", K::Name),
            ("type", K::Str(&["", "internal"])),
            ("ofport_request", K::OptInt(0, 70000)),
            ("external_ids", K::Map),
        ],
    ),
    (
        "Flow_Sample_Collector_Set",
        &[
            ("id", K::Int(0, 2)),
            ("bridge", K::OneRef("Bridge")),
            ("external_ids", K::Map),
        ],
    ),
];

/// A reference to a row, made concrete per side.
#[derive(Debug, Clone, Copy)]
pub enum R {
    /// `["named-uuid", "n<i>"]` when an insert of the transaction declares it, else like
    /// `Existing`.
    Named(u8),
    /// The `i`th row (mod the row count) of the target table before the transaction.
    Existing(u8),
    /// A UUID no row has.
    Ghost(u8),
}

#[derive(Debug, Clone)]
pub enum V {
    D(Datum),
    Refs(Vec<R>),
}

pub type Fields = Vec<(&'static str, V)>;

#[derive(Debug, Clone)]
pub enum Cond {
    Col(&'static str, Function, V),
    Uuid(R),
}

#[derive(Debug, Clone)]
pub enum Op {
    Insert {
        row: Fields,
        name: Option<u8>,
        fixed: Option<u8>,
    },
    Update {
        cond: Vec<Cond>,
        row: Fields,
    },
    Mutate {
        cond: Vec<Cond>,
        muts: Vec<(&'static str, Mutator, V)>,
    },
    Delete {
        cond: Vec<Cond>,
    },
    Select {
        cond: Vec<Cond>,
        cols: Option<Vec<&'static str>>,
    },
    Wait {
        cond: Vec<Cond>,
        cols: Vec<&'static str>,
        equal: bool,
        rows: Option<Vec<Fields>>,
    },
    Abort,
}

pub type Txn = Vec<(usize, Op)>;

pub fn r() -> impl Strategy<Value = R> {
    prop_oneof![
        4 => (0u8..4).prop_map(R::Named),
        4 => (0u8..6).prop_map(R::Existing),
        1 => (0u8..2).prop_map(R::Ghost),
    ]
}

pub fn map_value() -> impl Strategy<Value = Datum> {
    prop::collection::btree_map(
        prop::sample::select(vec!["k1", "k2", "ovnkit.io/object"]),
        prop::sample::select(vec!["x", "y", "pod/default/web"]),
        0..3,
    )
    .prop_map(Datum::map)
}

pub fn value(k: K) -> BoxedStrategy<V> {
    let d = |s: BoxedStrategy<Datum>| s.prop_map(V::D).boxed();
    match k {
        K::Name => d(prop::sample::select(vec!["a", "b", "c", "d"])
            .prop_map(Datum::from)
            .boxed()),
        K::Str(pool) => d(prop::sample::select(pool.to_vec())
            .prop_map(Datum::from)
            .boxed()),
        K::Int(lo, hi) => d((lo..=hi).prop_map(Datum::from).boxed()),
        K::OptInt(lo, hi) => d(prop::option::of(lo..=hi).prop_map(Datum::optional).boxed()),
        K::Bool => d(any::<bool>().prop_map(Datum::from).boxed()),
        K::OptBool => d(prop::option::of(any::<bool>())
            .prop_map(Datum::optional)
            .boxed()),
        K::OptStr(pool) => d(prop::option::of(prop::sample::select(pool.to_vec()))
            .prop_map(Datum::optional)
            .boxed()),
        K::StrSet([]) => d(prop::collection::btree_set(0i64..5, 0..3)
            .prop_map(Datum::set)
            .boxed()),
        K::StrSet(pool) => d(prop::sample::subsequence(pool.to_vec(), 0..=pool.len())
            .prop_map(Datum::set)
            .boxed()),
        K::Map => d(map_value().boxed()),
        K::Refs(_) => prop::collection::vec(r(), 0..3).prop_map(V::Refs).boxed(),
        K::OptRef(_) => prop::collection::vec(r(), 0..=1).prop_map(V::Refs).boxed(),
        K::OneRef(_) => r().prop_map(|x| V::Refs(vec![x])).boxed(),
    }
}

/// Columns an insert nearly always sets (their defaults break an enum).
pub const REQUIRED: &[&str] = &[
    "direction",
    "action",
    "type",
    "networks",
    "interfaces",
    "bridge",
];

pub fn fields(spec: Spec, n: std::ops::Range<usize>) -> BoxedStrategy<Fields> {
    let cols = spec.1;
    let required: Vec<usize> = (0..cols.len())
        .filter(|i| REQUIRED.contains(&cols[*i].0))
        .collect();
    (
        prop::collection::vec(0..cols.len(), n),
        prop::bool::weighted(0.9),
    )
        .prop_flat_map(move |(picks, with_required)| {
            let mut picks = picks;
            if with_required {
                picks.extend(&required);
            }
            picks.sort_unstable();
            picks.dedup();
            picks
                .into_iter()
                .map(|i| value(cols[i].1).prop_map(move |v| (cols[i].0, v)))
                .collect::<Vec<_>>()
        })
        .boxed()
}

pub fn cond(spec: Spec) -> BoxedStrategy<Vec<Cond>> {
    let cols = spec.1;
    let one = prop_oneof![
        3 => (0..cols.len(), prop::sample::select(vec![Function::Eq, Function::Ne, Function::Includes, Function::Excludes, Function::Lt, Function::Ge]))
            .prop_flat_map(move |(i, f)| {
                let (name, k) = cols[i];
                let f = match k {
                    K::Int(..) | K::OptInt(..) => f,
                    _ if f.is_ordering() => Function::Eq,
                    _ => f,
                };
                value(k).prop_map(move |v| Cond::Col(name, f, v))
            }),
        1 => r().prop_map(Cond::Uuid),
    ];
    prop::collection::vec(one, 0..=2).boxed()
}

pub fn mutation(spec: Spec) -> BoxedStrategy<(&'static str, Mutator, V)> {
    let cols = spec.1;
    (
        0..cols.len(),
        any::<bool>(),
        prop::sample::select(Mutator::ALL.to_vec()),
        -3i64..=3,
    )
        .prop_flat_map(move |(i, ins, arith, n)| {
            let (name, k) = cols[i];
            match k {
                K::Int(..) | K::OptInt(..) => Just((name, arith, V::D(Datum::from(n)))).boxed(),
                K::StrSet(_)
                | K::Map
                | K::Refs(_)
                | K::OptRef(_)
                | K::OptStr(_)
                | K::OptBool
                | K::Name => {
                    let m = if ins {
                        Mutator::Insert
                    } else {
                        Mutator::Delete
                    };
                    let keys = matches!(k, K::Map) && !ins && n > 0;
                    if keys {
                        Just((name, m, V::D(Datum::set(["k1", "ovnkit.io/object"])))).boxed()
                    } else {
                        value(k).prop_map(move |v| (name, m, v)).boxed()
                    }
                }
                // Other scalars: a type mismatch the server refuses (names, above, as well).
                _ => value(k)
                    .prop_map(move |v| (name, Mutator::Insert, v))
                    .boxed(),
            }
        })
        .boxed()
}

pub fn op(spec: Spec) -> BoxedStrategy<Op> {
    let plain: Vec<&'static str> = spec
        .1
        .iter()
        .filter(|(_, k)| !matches!(k, K::Refs(_) | K::OptRef(_) | K::OneRef(_)))
        .map(|(n, _)| *n)
        .collect();
    let all: Vec<&'static str> = spec.1.iter().map(|(n, _)| *n).chain(["_uuid"]).collect();
    prop_oneof![
        20 => (fields(spec, 0..5), prop::option::of(0u8..4), prop::option::weighted(0.05, 0u8..2))
            .prop_map(|(row, name, fixed)| Op::Insert { row, name, fixed }),
        8 => (cond(spec), fields(spec, 1..3)).prop_map(|(cond, row)| Op::Update { cond, row }),
        12 => (cond(spec), prop::collection::vec(mutation(spec), 1..3)).prop_map(|(cond, muts)| Op::Mutate { cond, muts }),
        6 => cond(spec).prop_map(|cond| Op::Delete { cond }),
        8 => (cond(spec), prop::option::of(prop::sample::subsequence(all, 0..3)))
            .prop_map(|(cond, cols)| Op::Select { cond, cols }),
        4 => (cond(spec), prop::sample::subsequence(plain, 0..3), any::<bool>(), prop::option::of(prop::collection::vec(fields(spec, 0..3), 0..3)))
            .prop_map(|(cond, cols, equal, rows)| Op::Wait { cond, cols, equal, rows }),
        1 => Just(Op::Abort),
    ]
    .boxed()
}

pub fn txns(specs: &'static [Spec]) -> impl Strategy<Value = Vec<Txn>> {
    let one = (0..specs.len()).prop_flat_map(move |t| op(specs[t]).prop_map(move |o| (t, o)));
    let txn = prop::collection::vec(one, 1..7).prop_filter("aborts are rare", |ops| {
        ops.iter().filter(|(_, o)| matches!(o, Op::Abort)).count() <= 1
    });
    prop::collection::vec(txn, 1..5)
}

/// One side of the comparison: how abstract references become UUIDs.
pub struct Side<'a> {
    pub specs: &'static [Spec],
    pub before: &'a Snapshot,
    /// Replica UUID to server UUID, for the server side.
    pub to_server: Option<&'a HashMap<Uuid, Uuid>>,
    /// Named UUIDs the transaction's inserts declare, with their tables.
    pub declared: HashMap<u8, &'static str>,
}

impl Side<'_> {
    fn target(&self, table: usize, column: &str) -> &'static str {
        self.specs[table]
            .1
            .iter()
            .find_map(|(n, k)| match (n, k) {
                (n, K::Refs(t) | K::OptRef(t) | K::OneRef(t)) if *n == column => Some(*t),
                _ => None,
            })
            .unwrap_or("")
    }

    /// The `i`th row of `table` before the transaction (none when the table is empty).
    fn existing(&self, table: &str, i: u8) -> Option<Atom> {
        let mut rows: Vec<Uuid> = self
            .before
            .table(table)
            .map(|t| t.rows().map(|r| r.uuid()).collect())
            .unwrap_or_default();
        rows.sort();
        let u = *rows.get(usize::from(i) % rows.len().max(1))?;
        Some(Atom::Uuid(
            self.to_server.and_then(|m| m.get(&u).copied()).unwrap_or(u),
        ))
    }

    fn atom(&self, table: &str, x: R) -> Option<Atom> {
        match x {
            R::Named(n) if self.declared.get(&n) == Some(&table) => {
                Some(Atom::NamedUuid(NamedUuid::numbered("n", n.into())))
            }
            R::Named(n) | R::Existing(n) => self.existing(table, n),
            R::Ghost(n) => Some(ghost(n)),
        }
    }

    fn datum(&self, table: usize, column: &str, v: &V) -> Datum {
        match v {
            V::D(d) => d.clone(),
            V::Refs(rs) => {
                let t = self.target(table, column);
                Datum::Set(rs.iter().filter_map(|x| self.atom(t, *x)).collect())
            }
        }
    }

    fn row(&self, table: usize, f: &Fields) -> Row {
        f.iter()
            .map(|(c, v)| (*c, self.datum(table, c, v)))
            .collect()
    }

    fn conds(&self, table: usize, cs: &[Cond]) -> Vec<Condition> {
        cs.iter()
            .map(|c| match c {
                Cond::Col(col, f, v) => Condition::new(*col, *f, self.datum(table, col, v)),
                Cond::Uuid(x) => Condition::eq(
                    "_uuid",
                    self.atom(self.specs[table].0, *x)
                        .unwrap_or_else(|| ghost(0)),
                ),
            })
            .collect()
    }

    pub fn transaction(&self, db: &str, txn: &Txn) -> Transaction {
        let mut out = Transaction::new(db);
        for (t, o) in txn {
            let table = self.specs[*t].0;
            let cs = |c: &[Cond]| self.conds(*t, c);
            let op: Operation = match o {
                Op::Insert { row, name, fixed } => {
                    let mut ins = Insert::new(table, self.row(*t, row));
                    ins.uuid_name = name.map(|n| NamedUuid::numbered("n", n.into()));
                    ins.uuid = fixed.map(|f| {
                        Uuid::from_u128(0xf1ed_0000_0000_4000_8000_0000_0000_0000 + u128::from(f))
                    });
                    Operation::Insert(ins)
                }
                Op::Update { cond, row } => {
                    let mut u = Update::new(table, self.row(*t, row));
                    u.conditions = cs(cond);
                    Operation::Update(u)
                }
                Op::Mutate { cond, muts } => {
                    let mut m = Mutate::new(table);
                    m.conditions = cs(cond);
                    m.mutations = muts
                        .iter()
                        .map(|(c, op, v)| Mutation::new(*c, *op, self.datum(*t, c, v)))
                        .collect();
                    Operation::Mutate(m)
                }
                Op::Delete { cond } => {
                    let mut d = Delete::new(table);
                    d.conditions = cs(cond);
                    Operation::Delete(d)
                }
                Op::Select { cond, cols } => {
                    let mut s = Select::new(table);
                    s.conditions = cs(cond);
                    s.columns = cols
                        .as_ref()
                        .map(|c| c.iter().map(|x| (*x).to_owned()).collect());
                    Operation::Select(s)
                }
                Op::Wait {
                    cond,
                    cols,
                    equal,
                    rows,
                } => {
                    let rows = match rows {
                        Some(rows) => rows.iter().map(|f| self.row(*t, f)).collect(),
                        // The rows as they are: the wait holds unless the transaction changed them.
                        None => self
                            .before
                            .table(table)
                            .map(|tv| {
                                tv.rows()
                                    .map(|r| {
                                        cols.iter()
                                            .map(|c| {
                                                (
                                                    *c,
                                                    r.get(c)
                                                        .cloned()
                                                        .unwrap_or_else(Datum::empty_set),
                                                )
                                            })
                                            .collect()
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                    };
                    let until = if *equal {
                        WaitUntil::Equal
                    } else {
                        WaitUntil::NotEqual
                    };
                    let mut w = Wait::new(table, cols.iter().copied(), until, rows).timeout_ms(0);
                    w.conditions = cs(cond);
                    Operation::Wait(w)
                }
                Op::Abort => Operation::Abort,
            };
            out.push(op);
        }
        out
    }
}

pub fn ghost(i: u8) -> Atom {
    Atom::Uuid(Uuid::from_u128(
        0xdead_0000_0000_4000_8000_0000_0000_0000 + u128::from(i),
    ))
}
