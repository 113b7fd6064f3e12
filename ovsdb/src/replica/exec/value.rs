//! Values as the server reads them (checked against a column type, named UUIDs resolved),
//! conditions and mutations.

use std::cmp::Ordering;
use std::sync::LazyLock;

use super::text::{self, constraint, syntax};
use super::{Exec, OvsdbError};
use crate::condition::{Function, Mutator};
use crate::schema::{AtomRole, BaseType, ColumnType, Max};
use crate::value::{Atom, AtomicType, Datum, Map, Set};

/// The type of `_uuid` and `_version`.
pub(super) static UUID_TYPE: LazyLock<ColumnType> =
    LazyLock::new(|| ColumnType::scalar(BaseType::new(AtomicType::Uuid)));

impl Exec<'_> {
    /// `d` read as a value of `ty`, as ovsdb-server parses one: shape and number of elements
    /// (`syntax error`), atomic types (`syntax error`), then each atom's constraints
    /// (`constraint violation`). Integers become reals in real columns and named UUIDs become
    /// UUIDs.
    pub(super) fn parse(&mut self, ty: &ColumnType, d: &Datum) -> Result<Datum, OvsdbError> {
        match (d, ty.is_map()) {
            (Datum::Set(_), true) => return Err(syntax(r#"expected ["map", <array>]"#)),
            (Datum::Map(_), false) => return Err(text::expected(ty.key.atomic)),
            _ => {}
        }
        let n = d.len() as u64;
        if n < ty.min || !ty.max.allows(n) {
            return Err(text::size(ty, d.len()));
        }
        match (d, &ty.value) {
            (Datum::Map(m), Some(vt)) => {
                let mut pairs = Vec::with_capacity(m.len());
                for (k, v) in m.iter() {
                    let k = self.atom(&ty.key, k, AtomRole::Key)?;
                    pairs.push((k, self.atom(vt, v, AtomRole::Value)?));
                }
                Ok(Datum::Map(Map::from_pairs(pairs)))
            }
            (d, _) => {
                let mut atoms = Vec::with_capacity(d.len());
                for a in d.atoms() {
                    atoms.push(self.atom(&ty.key, a, AtomRole::Key)?);
                }
                Ok(Datum::Set(Set::from_atoms(atoms)))
            }
        }
    }

    fn atom(&mut self, base: &BaseType, a: &Atom, role: AtomRole) -> Result<Atom, OvsdbError> {
        let atom = match (base.atomic, a) {
            (AtomicType::Real, Atom::Integer(i)) => {
                #[allow(clippy::cast_precision_loss)]
                let r = *i as f64;
                Atom::Real(r)
            }
            (AtomicType::Uuid, Atom::NamedUuid(n)) => Atom::Uuid(self.symbol(n.as_str())?),
            (t, a) if a.atomic_type() == t => a.clone(),
            (t, _) => return Err(text::expected(t)),
        };
        check_atom(base, &atom, role)?;
        Ok(atom)
    }
}

/// `base`'s constraints on `atom`, with the server's wording.
pub(super) fn check_atom(base: &BaseType, atom: &Atom, role: AtomRole) -> Result<(), OvsdbError> {
    base.check(atom, role)
        .map_err(|e| constraint(text::constraint_details(base, atom, &e)))
}

/// Checks the constraints of every atom of a one-element value, as the server does for the
/// columns of an inserted row (their defaults may break an enum, like an empty `direction`).
pub(super) fn check_single(ty: &ColumnType, d: &Datum) -> Result<(), OvsdbError> {
    if d.len() != 1 {
        return Ok(());
    }
    match d {
        Datum::Set(s) => s
            .iter()
            .try_for_each(|a| check_atom(&ty.key, a, AtomRole::Key)),
        Datum::Map(m) => m.iter().try_for_each(|(k, v)| {
            check_atom(&ty.key, k, AtomRole::Key)?;
            match &ty.value {
                Some(vt) => check_atom(vt, v, AtomRole::Value),
                None => Ok(()),
            }
        }),
    }
}

/// The argument type of condition function `f` on a column of type `ty`, or the server's
/// `Type mismatch` error for `column`.
pub(super) fn condition_type(
    f: Function,
    ty: &ColumnType,
    column: &str,
) -> Result<ColumnType, OvsdbError> {
    let scalar = ty.is_scalar();
    match f {
        f if f.is_ordering() => {
            let numeric = matches!(ty.key.atomic, AtomicType::Integer | AtomicType::Real);
            if !((scalar || ty.is_optional()) && numeric) {
                return Err(mismatch(f.as_str(), column, ty));
            }
            Ok(ColumnType {
                min: 1,
                max: Max::Limited(1),
                ..ty.clone()
            })
        }
        Function::Includes if !scalar => Ok(ColumnType {
            min: 0,
            ..ty.clone()
        }),
        Function::Excludes if !scalar => Ok(ColumnType {
            min: 0,
            max: Max::Unlimited,
            ..ty.clone()
        }),
        _ => Ok(ty.clone()),
    }
}

/// The server's `Type mismatch` for an operator (function or mutator) on a column.
pub(super) fn mismatch(op: &str, column: &str, ty: &ColumnType) -> OvsdbError {
    syntax(format!(
        "Type mismatch: \"{op}\" operator may not be applied to column {column} of type {}.",
        text::type_english(ty)
    ))
}

/// Whether `field` satisfies `function` with argument `arg` (already read against the column).
///
/// The ordering functions hold only between two single numbers (never for an empty optional
/// value); the others compare as sets and maps (`includes`: every element or pair of the
/// argument is in the field; `excludes`: none is).
pub(super) fn holds(function: Function, field: &Datum, arg: &Datum) -> bool {
    match function {
        Function::Eq => field == arg,
        Function::Ne => field != arg,
        Function::Includes => includes(field, arg),
        Function::Excludes => excludes(field, arg),
        ordering => match (field.as_atom(), arg.as_atom()) {
            (Some(a), Some(b)) => {
                let c = compare_numbers(a, b);
                match ordering {
                    Function::Lt => c == Ordering::Less,
                    Function::Le => c != Ordering::Greater,
                    Function::Gt => c == Ordering::Greater,
                    _ => c != Ordering::Less,
                }
            }
            _ => false,
        },
    }
}

fn compare_numbers(a: &Atom, b: &Atom) -> Ordering {
    match (a, b) {
        (Atom::Real(x), Atom::Real(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        _ => a.cmp(b),
    }
}

fn includes(field: &Datum, arg: &Datum) -> bool {
    match (field, arg) {
        (Datum::Set(f), Datum::Set(a)) => a.iter().all(|x| f.contains(x)),
        (Datum::Map(f), Datum::Map(a)) => a.iter().all(|(k, v)| f.get(k) == Some(v)),
        _ => false,
    }
}

fn excludes(field: &Datum, arg: &Datum) -> bool {
    match (field, arg) {
        (Datum::Set(f), Datum::Set(a)) => !a.iter().any(|x| f.contains(x)),
        (Datum::Map(f), Datum::Map(a)) => !a.iter().any(|(k, v)| f.get(k) == Some(v)),
        _ => true,
    }
}

/// One mutation, read against its column.
pub(super) struct MutationOp {
    pub(super) mutator: Mutator,
    /// The argument: one number for arithmetic, else a set, a map, or a set of map keys.
    pub(super) arg: Datum,
}

/// Applies `m` to `value`, a value of a column of type `ty`, as ovsdb-server does.
pub(super) fn mutate(ty: &ColumnType, value: &Datum, m: &MutationOp) -> Result<Datum, OvsdbError> {
    if m.mutator.is_arithmetic() {
        let Some(y) = m.arg.as_atom() else {
            return Err(syntax("arithmetic mutation needs one atom"));
        };
        let Datum::Set(set) = value else {
            return Err(syntax("arithmetic mutation on a map"));
        };
        let mut out = Vec::with_capacity(set.len());
        for x in set {
            let r = arithmetic(m.mutator, x, y)?;
            check_atom(&ty.key, &r, AtomRole::Key)?;
            out.push(r);
        }
        let n = out.len();
        let result = Set::from_atoms(out);
        if result.len() != n {
            return Err(constraint(format!(
                "Result of \"{}\" operation contains duplicates.",
                m.mutator
            )));
        }
        return Ok(Datum::Set(result));
    }
    let result = match (value, &m.arg, m.mutator) {
        (Datum::Set(s), Datum::Set(a), Mutator::Insert) => {
            Datum::Set(Set::from_atoms(s.iter().chain(a.iter()).cloned()))
        }
        (Datum::Set(s), Datum::Set(a), _) => {
            Datum::Set(s.iter().filter(|x| !a.contains(x)).cloned().collect())
        }
        (Datum::Map(v), Datum::Map(a), Mutator::Insert) => {
            let mut out = v.clone();
            for (k, x) in a.iter() {
                if out.get(k).is_none() {
                    out.insert(k.clone(), x.clone());
                }
            }
            Datum::Map(out)
        }
        (Datum::Map(v), Datum::Map(a), _) => Datum::Map(
            v.iter()
                .filter(|(k, x)| a.get(k) != Some(*x))
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect(),
        ),
        (Datum::Map(v), Datum::Set(keys), _) => Datum::Map(
            v.iter()
                .filter(|(k, _)| !keys.contains(k))
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect(),
        ),
        _ => return Err(syntax("mutation argument does not fit the column")),
    };
    let n = result.len() as u64;
    if n < ty.min || !ty.max.allows(n) {
        return Err(constraint(format!(
            "Attempted to store {n} elements in {}.",
            text::type_english(ty)
        )));
    }
    Ok(result)
}

fn range_error(m: Mutator) -> OvsdbError {
    text::error(
        "range error",
        format!("Result of \"{m}\" operation is out of range."),
    )
}

fn domain_error() -> OvsdbError {
    text::error("domain error", "Division by zero.")
}

/// One arithmetic step, with ovsdb-server's overflow rules (including its multiplication
/// check, which also refuses a few products that would fit, such as `1 * i64::MAX`).
fn arithmetic(m: Mutator, x: &Atom, y: &Atom) -> Result<Atom, OvsdbError> {
    match (x, y) {
        (Atom::Integer(x), Atom::Integer(y)) => {
            let (x, y) = (*x, *y);
            let r = match m {
                Mutator::Add => x.checked_add(y),
                Mutator::Sub => x.checked_sub(y),
                Mutator::Mul => (!mul_refused(x, y)).then(|| x.wrapping_mul(y)),
                Mutator::Div | Mutator::Mod if y == 0 => return Err(domain_error()),
                Mutator::Div => x.checked_div(y),
                _ => x.checked_rem(y),
            };
            r.map(Atom::Integer).ok_or_else(|| range_error(m))
        }
        (Atom::Real(x), Atom::Real(y)) => {
            let r = match m {
                Mutator::Add => x + y,
                Mutator::Sub => x - y,
                Mutator::Mul => x * y,
                Mutator::Div if *y == 0.0 => return Err(domain_error()),
                Mutator::Div => x / y,
                _ => return Err(syntax("\"%=\" on a real")),
            };
            if r.is_finite() {
                Ok(Atom::Real(r))
            } else {
                Err(range_error(m))
            }
        }
        _ => Err(syntax("arithmetic on a non-number")),
    }
}

/// ovsdb-server's overflow test for `x * y` (Hacker's Delight, as it writes it).
fn mul_refused(x: i64, y: i64) -> bool {
    if x > 0 {
        if y > 0 {
            x >= i64::MAX / y
        } else {
            y < i64::MIN / x
        }
    } else if y > 0 {
        x < i64::MIN / y
    } else {
        // The server divides by `y` here; for `y == 0` (its division by zero) the product is 0.
        x != 0 && y != 0 && y < i64::MAX / y
    }
}
