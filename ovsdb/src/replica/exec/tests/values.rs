//! Unit tests of values, conditions and mutations, with the server's error strings.

use super::*;

#[test]
fn values_are_checked_as_the_server_parses_them() {
    let mut r = replica();
    let (i, e, d) = fails(&mut r, [ins("Acl", Row::new())]);
    assert_eq!(
        (i, e.as_str(), d.as_str()),
        (
            Some(0),
            "constraint violation",
            r#""" is not one of the allowed values ([in, out])"#
        )
    );
    let (_, e, d) = fails(&mut r, [ins("Sw", sw("s").with("n", 101))]);
    assert_eq!(
        (e.as_str(), d.as_str()),
        (
            "constraint violation",
            "101 is not in the valid range 0 to 100 (inclusive)"
        )
    );
    let (_, e, d) = fails(
        &mut r,
        [ins("Sw", sw("s").with("opt", Datum::set(["a", "b"])))],
    );
    assert_eq!(
        (e.as_str(), d.as_str()),
        (
            "syntax error",
            "set must have 0 to 1 members but 2 are present"
        )
    );
    let (_, e, d) = fails(&mut r, [ins("Sw", sw("s").with("n", "x"))]);
    assert_eq!(
        (e.as_str(), d.as_str()),
        ("syntax error", "expected integer")
    );
    let (_, e, d) = fails(&mut r, [ins("Sw", sw("s").with("nope", 1))]);
    assert_eq!(
        (e.as_str(), d.as_str()),
        ("unknown column", "No column nope in table Sw.")
    );
    let (_, e, d) = fails(&mut r, [ins("Nope", Row::new())]);
    assert_eq!(
        (e.as_str(), d.as_str()),
        (
            "syntax error",
            "Parsing ovsdb operation 1 of 1 failed: No table named Nope."
        )
    );
    let (_, e, _) = fails(
        &mut r,
        [Operation::Select(
            Select::new("Sw").filter(Condition::eq("n", 1000)),
        )],
    );
    assert_eq!(
        e, "constraint violation",
        "condition arguments are checked too"
    );
    let (_, e, d) = fails(
        &mut r,
        [Operation::Select(
            Select::new("Sw").filter(Condition::lt("name", "x")),
        )],
    );
    assert_eq!(
        (e.as_str(), d.as_str()),
        (
            "syntax error",
            "Type mismatch: \"<\" operator may not be applied to column name of type string."
        )
    );
    let (_, e, d) = fails(
        &mut r,
        [Operation::Select(
            Select::new("Sw").columns(["name", "name"]),
        )],
    );
    assert_eq!(
        (e.as_str(), d.as_str()),
        ("syntax error", "array of distinct column names expected")
    );
    // A real column takes an integer.
    ok(&mut r, [ins("Sw", sw("s").with("r", 2))]);
    assert_eq!(rows(&r, "Sw")[0].get("r"), Some(&Datum::from(2.0)));
}

#[test]
fn mutations_follow_ovsdb() {
    let mut r = replica();
    let out = ok(
        &mut r,
        [ins(
            "Sw",
            sw("s")
                .with("ext", Datum::map([("k", "v"), ("k2", "v2")]))
                .with("tags", Datum::set([1, 2])),
        )],
    );
    let OperationResult::Uuid(s) = out.results()[0] else {
        panic!()
    };
    let m = |ms: Vec<Mutation>| {
        let mut op = Mutate::new("Sw");
        for x in ms {
            op = op.mutation(x);
        }
        Operation::Mutate(op)
    };
    // A map insert does not overwrite; a delete by pairs needs the value to match.
    ok(
        &mut r,
        [m(vec![Mutation::insert(
            "ext",
            Datum::map([("k", "NEW"), ("k3", "v3")]),
        )])],
    );
    assert_eq!(
        get(&r, "Sw", s, "ext"),
        Datum::map([("k", "v"), ("k2", "v2"), ("k3", "v3")])
    );
    ok(
        &mut r,
        [m(vec![Mutation::delete(
            "ext",
            Datum::map([("k", "WRONG"), ("k2", "v2")]),
        )])],
    );
    assert_eq!(
        get(&r, "Sw", s, "ext"),
        Datum::map([("k", "v"), ("k3", "v3")])
    );
    ok(
        &mut r,
        [m(vec![Mutation::delete("ext", Datum::set(["k", "nope"]))])],
    );
    assert_eq!(get(&r, "Sw", s, "ext"), Datum::map([("k3", "v3")]));
    ok(
        &mut r,
        [m(vec![
            Mutation::add("tags", 10),
            Mutation::insert("tags", 1),
            Mutation::delete("tags", 11),
        ])],
    );
    assert_eq!(get(&r, "Sw", s, "tags"), Datum::set([1, 12]));
    ok(
        &mut r,
        [m(vec![
            Mutation::add("n", 7),
            Mutation::mul("n", 3),
            Mutation::rem("n", 5),
            Mutation::add("r", 1.5),
            Mutation::div("r", 2),
        ])],
    );
    assert_eq!(get(&r, "Sw", s, "n"), Datum::from(1));
    assert_eq!(get(&r, "Sw", s, "r"), Datum::from(0.75));

    let cases: Vec<(Mutation, &str, &str)> = vec![
        (Mutation::div("n", 0), "domain error", "Division by zero."),
        (Mutation::rem("big", 0), "domain error", "Division by zero."),
        (
            Mutation::add("n", 200),
            "constraint violation",
            "201 is not in the valid range 0 to 100 (inclusive)",
        ),
        (
            Mutation::mul("tags", 0),
            "constraint violation",
            "Result of \"*=\" operation contains duplicates.",
        ),
        (
            Mutation::insert("opt", Datum::set(["a", "b"])),
            "syntax error",
            "set must have 0 to 1 members but 2 are present",
        ),
        (
            Mutation::rem("r", 2),
            "syntax error",
            "Type mismatch: \"%=\" operator may not be applied to column r of type real.",
        ),
        (
            Mutation::add("ext", 1),
            "syntax error",
            "Type mismatch: \"+=\" operator may not be applied to column ext of type map of (string, string) pairs.",
        ),
    ];
    for (mutation, error, details) in cases {
        let (i, e, d) = fails(&mut r, [m(vec![mutation.clone()])]);
        assert_eq!(
            (i, e.as_str(), d.as_str()),
            (Some(0), error, details),
            "{mutation:?}"
        );
    }
    ok(&mut r, [m(vec![Mutation::insert("opt", "a")])]);
    let (_, e, d) = fails(&mut r, [m(vec![Mutation::insert("opt", "b")])]);
    assert_eq!(
        (e.as_str(), d.as_str()),
        (
            "constraint violation",
            "Attempted to store 2 elements in set of up to 1 strings."
        )
    );
    ok(&mut r, [m(vec![Mutation::add("big", i64::MAX)])]);
    let (_, e, d) = fails(&mut r, [m(vec![Mutation::add("big", 1)])]);
    assert_eq!(
        (e.as_str(), d.as_str()),
        ("range error", "Result of \"+=\" operation is out of range.")
    );
    // ovsdb-server refuses 1 * i64::MAX too.
    ok(
        &mut r,
        [Operation::Update(Update::new(
            "Sw",
            Row::new().with("big", 1),
        ))],
    );
    let (_, e, _) = fails(&mut r, [m(vec![Mutation::mul("big", i64::MAX)])]);
    assert_eq!(e, "range error");
    // A mutate that matches nothing cannot fail.
    let none = Mutate::new("Sw")
        .filter(Condition::eq("name", "zz"))
        .mutation(Mutation::div("n", 0));
    assert_eq!(
        ok(&mut r, [Operation::Mutate(none)]).results()[0],
        OperationResult::Count(0)
    );
}

#[test]
fn conditions_on_optional_sets_and_maps() {
    let mut r = replica();
    ok(
        &mut r,
        [
            ins(
                "Sw",
                sw("a")
                    .with("ext", Datum::map([("k", "1"), ("j", "2")]))
                    .with("tags", Datum::set([1, 2])),
            ),
            ins("Sw", sw("b").with("opt", "x").with("r", 2.5)),
        ],
    );
    let names = |r: &mut Replica, c: Condition| -> Vec<Datum> {
        select(r, Select::new("Sw").filter(c).columns(["name"]))
            .into_iter()
            .filter_map(|row| row.get("name").cloned())
            .collect()
    };
    let a = || vec![Datum::from("a")];
    let b = || vec![Datum::from("b")];
    assert_eq!(names(&mut r, Condition::eq("opt", Datum::empty_set())), a());
    assert_eq!(names(&mut r, Condition::ne("opt", Datum::empty_set())), b());
    assert_eq!(names(&mut r, Condition::excludes("opt", "x")), a());
    assert_eq!(
        names(&mut r, Condition::includes("ext", Datum::map([("k", "1")]))),
        a()
    );
    assert!(names(&mut r, Condition::includes("ext", Datum::map([("k", "2")]))).is_empty());
    assert_eq!(
        names(&mut r, Condition::excludes("ext", Datum::map([("k", "2")]))).len(),
        2
    );
    assert_eq!(
        names(&mut r, Condition::excludes("tags", Datum::set([2, 3]))),
        b()
    );
    assert_eq!(names(&mut r, Condition::gt("r", 2)), b());
    assert_eq!(names(&mut r, Condition::le("r", 0)), a());
    assert_eq!(names(&mut r, Condition::ne("_uuid", Uuid::NIL)).len(), 2);
}
