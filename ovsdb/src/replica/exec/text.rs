//! The server's error objects and the text it writes into their `details`: values as
//! `ovsdb-client` prints them, types in English, constraint messages.

use crate::result::OvsdbError;
use crate::schema::{BaseType, ColumnType, ConstraintError, Max};
use crate::value::{Atom, AtomicType, Datum, Uuid};

/// ovsdb-server's `UINT_MAX`, which it prints for an unlimited `max`.
const UNLIMITED: u64 = u32::MAX as u64;

/// An error object with `error` and `details`.
pub(super) fn error(error: &str, details: impl Into<String>) -> OvsdbError {
    OvsdbError {
        error: error.to_owned(),
        details: Some(details.into()),
        syntax: None,
    }
}

/// A `syntax error`.
pub(super) fn syntax(details: impl Into<String>) -> OvsdbError {
    error("syntax error", details)
}

/// A `constraint violation`.
pub(super) fn constraint(details: impl Into<String>) -> OvsdbError {
    error("constraint violation", details)
}

/// `unknown column`, as a row, condition or mutation naming it gets.
pub(super) fn unknown_column(column: &str, table: &str) -> OvsdbError {
    error(
        "unknown column",
        format!("No column {column} in table {table}."),
    )
}

/// What the server says when a JSON value is not of the atomic type it wants.
pub(super) fn expected(atomic: AtomicType) -> OvsdbError {
    syntax(match atomic {
        AtomicType::Uuid => r#"expected ["uuid", <string>]"#.to_owned(),
        other => format!("expected {other}"),
    })
}

/// The `syntax error` for a value with too few or too many elements.
pub(super) fn size(ty: &ColumnType, n: usize) -> OvsdbError {
    let class = if ty.is_map() { "map" } else { "set" };
    if ty.min == 1 && ty.max == Max::Limited(1) {
        return syntax(format!(
            "{class} must have exactly one member but {n} are present"
        ));
    }
    syntax(format!(
        "{class} must have {} to {} members but {n} are present",
        ty.min,
        max_number(ty.max)
    ))
}

fn max_number(max: Max) -> u64 {
    match max {
        Max::Limited(m) => m,
        Max::Unlimited => UNLIMITED,
    }
}

/// The `constraint violation` details for an atom that `base` rejects.
pub(super) fn constraint_details(base: &BaseType, atom: &Atom, e: &ConstraintError) -> String {
    match e {
        ConstraintError::NotInEnum { .. } => {
            let allowed = base.enumeration.clone().unwrap_or_default();
            let allowed = Datum::Set(allowed);
            format!(
                "{} is not one of the allowed values ({})",
                atom_string(atom),
                datum_string(&allowed, true)
            )
        }
        ConstraintError::IntegerRange { value, min, max } => range(
            &value.to_string(),
            min.map(|m| m.to_string()),
            max.map(|m| m.to_string()),
        ),
        ConstraintError::RealRange { value, min, max } => {
            range(&real(*value), min.map(real), max.map(real))
        }
        ConstraintError::StringLength { length, min, max } => {
            let quoted =
                serde_json::to_string(atom.as_str().unwrap_or_default()).unwrap_or_default();
            match (min, max) {
                (Some(m), _) if length < m => {
                    format!("{quoted} length {length} is less than minimum allowed length {m}")
                }
                (_, Some(m)) => {
                    format!("{quoted} length {length} is greater than maximum allowed length {m}")
                }
                _ => format!("{quoted} length {length} is out of range"),
            }
        }
        other => other.to_string(),
    }
}

fn range(value: &str, min: Option<String>, max: Option<String>) -> String {
    match (min, max) {
        (Some(lo), Some(hi)) => {
            format!("{value} is not in the valid range {lo} to {hi} (inclusive)")
        }
        (Some(lo), None) => format!("{value} is less than minimum allowed value {lo}"),
        (None, Some(hi)) => format!("{value} is greater than maximum allowed value {hi}"),
        (None, None) => format!("{value} is out of range"),
    }
}

/// A real as C's `%.15g` writes it (what ovsdb-server prints).
pub(super) fn real(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return if x == 0.0 && x.is_sign_negative() {
            "-0".to_owned()
        } else {
            x.to_string()
        };
    }
    let sci = format!("{x:.14e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..15).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim_zeros(mantissa), exp.abs());
    }
    let decimals = usize::try_from(14 - exp).unwrap_or(0);
    trim_zeros(&format!("{x:.decimals$}")).to_owned()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Whether ovsdb-server quotes string `s` when it prints it (anything but an identifier-like
/// word that is not `true`, `false` or a UUID).
fn needs_quotes(s: &str) -> bool {
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    !first_ok
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        || s == "true"
        || s == "false"
        || s.parse::<Uuid>().is_ok()
}

/// An atom as ovsdb-server prints it in messages.
pub(super) fn atom_string(a: &Atom) -> String {
    match a {
        Atom::Integer(i) => i.to_string(),
        Atom::Real(r) => real(*r),
        Atom::Boolean(b) => b.to_string(),
        Atom::String(s) if needs_quotes(s) => serde_json::to_string(s).unwrap_or_default(),
        Atom::String(s) => s.clone(),
        Atom::Uuid(u) => u.to_string(),
        Atom::NamedUuid(n) => n.to_string(),
    }
}

/// A datum as ovsdb-server prints it: bracketed when the column may hold several elements
/// (`many`) or the value is empty, maps as `{k=v, ...}`.
pub(super) fn datum_string(d: &Datum, many: bool) -> String {
    let (open, close, items): (char, char, Vec<String>) = match d {
        Datum::Set(s) => ('[', ']', s.iter().map(atom_string).collect()),
        Datum::Map(m) => (
            '{',
            '}',
            m.iter()
                .map(|(k, v)| format!("{}={}", atom_string(k), atom_string(v)))
                .collect(),
        ),
    };
    let body = items.join(", ");
    if many || items.is_empty() {
        format!("{open}{body}{close}")
    } else {
        body
    }
}

/// A column type in English, as in `Attempted to store 2 elements in set of up to 1 strings.`
pub(super) fn type_english(ty: &ColumnType) -> String {
    if ty.is_scalar() {
        return ty.key.atomic.to_string();
    }
    let mut s = String::from(if ty.is_map() { "map" } else { "set" });
    match ty.max {
        Max::Unlimited if ty.min > 0 => s.push_str(&format!(" of {} or more", ty.min)),
        Max::Unlimited => s.push_str(" of"),
        Max::Limited(m) if ty.min > 0 => s.push_str(&format!(" of {} to {m}", ty.min)),
        Max::Limited(m) => s.push_str(&format!(" of up to {m}")),
    }
    match &ty.value {
        Some(v) => s.push_str(&format!(" ({}, {}) pairs", ty.key.atomic, v.atomic)),
        None => s.push_str(&format!(" {}s", ty.key.atomic)),
    }
    s
}

/// `a`, `a and b`, `a, b, and c`.
pub(super) fn english_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [rest @ .., last] => format!("{}, and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reals_print_like_percent_g() {
        assert_eq!(real(101.0), "101");
        assert_eq!(real(0.5), "0.5");
        assert_eq!(real(0.1 + 0.2), "0.3");
        assert_eq!(real(1e300), "1e+300");
        assert_eq!(real(-2.5e-7), "-2.5e-07");
    }

    #[test]
    fn strings_are_quoted_only_when_needed() {
        assert_eq!(atom_string(&Atom::from("p1")), "p1");
        assert_eq!(atom_string(&Atom::from("ab_1.2-3")), "ab_1.2-3");
        assert_eq!(atom_string(&Atom::from("x y")), r#""x y""#);
        assert_eq!(atom_string(&Atom::from("true")), r#""true""#);
        assert_eq!(atom_string(&Atom::from("")), r#""""#);
        let u = "c8a1c9e0-0000-4000-8000-000000000000";
        assert_eq!(atom_string(&Atom::from(u)), format!("\"{u}\""));
    }

    #[test]
    fn types_in_english() {
        let ty = |j: &str| serde_json::from_str::<ColumnType>(j).unwrap();
        assert_eq!(type_english(&ty(r#""string""#)), "string");
        assert_eq!(
            type_english(&ty(r#"{"key":"string","min":0,"max":1}"#)),
            "set of up to 1 strings"
        );
        assert_eq!(
            type_english(&ty(r#"{"key":"string","min":1,"max":"unlimited"}"#)),
            "set of 1 or more strings"
        );
        assert_eq!(
            type_english(&ty(
                r#"{"key":"string","value":"string","min":0,"max":"unlimited"}"#
            )),
            "map of (string, string) pairs"
        );
        let three = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert_eq!(english_list(&three), "a, b, and c");
        assert_eq!(english_list(&three[..2]), "a and b");
    }
}
