//! Conditions (`where` clauses, RFC 7047 section 5.1) and mutations (section 5.1, `mutate`).

use std::fmt;

use serde::ser::SerializeTuple;
use serde::{Serialize, Serializer};

use crate::value::{Datum, Uuid};

/// A comparison function of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `<` (integer and real scalars only).
    Lt,
    /// `<=` (integer and real scalars only).
    Le,
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `>=` (integer and real scalars only).
    Ge,
    /// `>` (integer and real scalars only).
    Gt,
    /// The column's value contains every element of the argument.
    Includes,
    /// The column's value contains no element of the argument.
    Excludes,
}

impl Function {
    /// Every function.
    pub const ALL: [Function; 8] = [
        Function::Lt,
        Function::Le,
        Function::Eq,
        Function::Ne,
        Function::Ge,
        Function::Gt,
        Function::Includes,
        Function::Excludes,
    ];

    /// The wire spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Function::Lt => "<",
            Function::Le => "<=",
            Function::Eq => "==",
            Function::Ne => "!=",
            Function::Ge => ">=",
            Function::Gt => ">",
            Function::Includes => "includes",
            Function::Excludes => "excludes",
        }
    }

    /// Whether this is one of the ordering comparisons (`<`, `<=`, `>=`, `>`).
    #[must_use]
    pub const fn is_ordering(self) -> bool {
        matches!(
            self,
            Function::Lt | Function::Le | Function::Ge | Function::Gt
        )
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One clause of a `where`: `[column, function, value]`.
///
/// ```
/// use ovsdb::{Condition, Datum};
///
/// let c = Condition::includes("addresses", Datum::set(["10.0.0.1"]));
/// assert_eq!(serde_json::to_string(&c).unwrap(), r#"["addresses","includes","10.0.0.1"]"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Condition {
    /// Column compared (may be `_uuid` or `_version`).
    pub column: String,
    /// Comparison.
    pub function: Function,
    /// Argument.
    pub value: Datum,
}

macro_rules! condition_ctors {
    ($($name:ident => $f:ident),* $(,)?) => {$(
        #[doc = concat!("`[column, \"", stringify!($name), "\", value]` (function `", stringify!($f), "`).")]
        pub fn $name(column: impl Into<String>, value: impl Into<Datum>) -> Self {
            Condition::new(column, Function::$f, value)
        }
    )*};
}

impl Condition {
    /// A condition.
    pub fn new(column: impl Into<String>, function: Function, value: impl Into<Datum>) -> Self {
        Condition {
            column: column.into(),
            function,
            value: value.into(),
        }
    }

    condition_ctors!(lt => Lt, le => Le, eq => Eq, ne => Ne, ge => Ge, gt => Gt,
                     includes => Includes, excludes => Excludes);

    /// `["_uuid", "==", ["uuid", ...]]`: selects one row by UUID.
    #[must_use]
    pub fn uuid(uuid: Uuid) -> Self {
        Condition::new("_uuid", Function::Eq, uuid)
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(&self.column)?;
        t.serialize_element(self.function.as_str())?;
        t.serialize_element(&self.value)?;
        t.end()
    }
}

/// A mutator of a `mutate` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutator {
    /// `+=`.
    Add,
    /// `-=`.
    Sub,
    /// `*=`.
    Mul,
    /// `/=`.
    Div,
    /// `%=` (integers only).
    Mod,
    /// `insert`: add elements to a set or pairs to a map.
    Insert,
    /// `delete`: remove elements from a set, or pairs (or keys, given as a set) from a map.
    Delete,
}

impl Mutator {
    /// Every mutator.
    pub const ALL: [Mutator; 7] = [
        Mutator::Add,
        Mutator::Sub,
        Mutator::Mul,
        Mutator::Div,
        Mutator::Mod,
        Mutator::Insert,
        Mutator::Delete,
    ];

    /// The wire spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Mutator::Add => "+=",
            Mutator::Sub => "-=",
            Mutator::Mul => "*=",
            Mutator::Div => "/=",
            Mutator::Mod => "%=",
            Mutator::Insert => "insert",
            Mutator::Delete => "delete",
        }
    }

    /// Whether this is an arithmetic mutator (`+=`, `-=`, `*=`, `/=`, `%=`).
    #[must_use]
    pub const fn is_arithmetic(self) -> bool {
        !matches!(self, Mutator::Insert | Mutator::Delete)
    }
}

impl fmt::Display for Mutator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One mutation: `[column, mutator, value]`.
///
/// ```
/// use ovsdb::{Datum, Mutation};
///
/// let m = Mutation::insert("external_ids", Datum::map([("k", "v")]));
/// assert_eq!(serde_json::to_string(&m).unwrap(), r#"["external_ids","insert",["map",[["k","v"]]]]"#);
/// assert_eq!(serde_json::to_string(&Mutation::add("n", 2)).unwrap(), r#"["n","+=",2]"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mutation {
    /// Column changed.
    pub column: String,
    /// How.
    pub mutator: Mutator,
    /// Argument.
    pub value: Datum,
}

macro_rules! mutation_ctors {
    ($($name:ident => $m:ident),* $(,)?) => {$(
        #[doc = concat!("A `", stringify!($m), "` mutation.")]
        pub fn $name(column: impl Into<String>, value: impl Into<Datum>) -> Self {
            Mutation::new(column, Mutator::$m, value)
        }
    )*};
}

impl Mutation {
    /// A mutation.
    pub fn new(column: impl Into<String>, mutator: Mutator, value: impl Into<Datum>) -> Self {
        Mutation {
            column: column.into(),
            mutator,
            value: value.into(),
        }
    }

    mutation_ctors!(add => Add, sub => Sub, mul => Mul, div => Div, rem => Mod,
                    insert => Insert, delete => Delete);
}

impl Serialize for Mutation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(&self.column)?;
        t.serialize_element(self.mutator.as_str())?;
        t.serialize_element(&self.value)?;
        t.end()
    }
}
