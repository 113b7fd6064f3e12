//! Checking a value against a column type and its constraints, as ovsdb-server would.

use super::{BaseType, ColumnType, Max};
use crate::value::{Atom, AtomicType, Datum};

/// Whether an atom is a key (or set element) or a map value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AtomRole {
    /// A set element or a map key.
    Key,
    /// A map value.
    Value,
}

impl std::fmt::Display for AtomRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AtomRole::Key => "key",
            AtomRole::Value => "value",
        })
    }
}

/// Which constraint of a column type a value breaks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConstraintError {
    /// The column holds maps and the value is a set.
    #[error("expected a map, got a set")]
    ExpectedMap,
    /// The column holds sets (or scalars) and the value is a map.
    #[error("expected a set or atom, got a map")]
    ExpectedSet,
    /// An atom has the wrong atomic type.
    #[error("{role} atom {atom} is of type {found}, expected {expected}")]
    AtomType {
        /// Key or value.
        role: AtomRole,
        /// The atom.
        atom: Atom,
        /// The type the column wants.
        expected: AtomicType,
        /// The type of the atom.
        found: AtomicType,
    },
    /// The atom is not one of the enumerated values.
    #[error("{atom} is not one of the allowed values {allowed}")]
    NotInEnum {
        /// The atom.
        atom: Atom,
        /// The allowed values, as JSON (boxed to keep the error small).
        allowed: Box<str>,
    },
    /// An integer is out of `[minInteger, maxInteger]`.
    #[error("integer {value} is outside [{}, {}]", bound(min), bound(max))]
    IntegerRange {
        /// The integer.
        value: i64,
        /// `minInteger`.
        min: Option<i64>,
        /// `maxInteger`.
        max: Option<i64>,
    },
    /// A real is out of `[minReal, maxReal]` (or not finite).
    #[error("real {value} is outside [{}, {}]", bound(min), bound(max))]
    RealRange {
        /// The real.
        value: f64,
        /// `minReal`.
        min: Option<f64>,
        /// `maxReal`.
        max: Option<f64>,
    },
    /// A string is shorter than `minLength` or longer than `maxLength` (in characters).
    #[error(
        "string of length {length} is outside length [{}, {}]",
        bound(min),
        bound(max)
    )]
    StringLength {
        /// Length in Unicode characters.
        length: u64,
        /// `minLength`.
        min: Option<u64>,
        /// `maxLength`.
        max: Option<u64>,
    },
    /// The value has too few or too many elements.
    #[error("{length} elements, outside [{min}, {max}]")]
    Size {
        /// Number of elements.
        length: u64,
        /// Minimum.
        min: u64,
        /// Maximum.
        max: Max,
    },
}

fn bound<T: std::fmt::Display>(b: &Option<T>) -> String {
    b.as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string)
}

impl BaseType {
    /// Checks one atom's type and constraints; `role` goes in the error.
    pub fn check(&self, atom: &Atom, role: AtomRole) -> Result<(), ConstraintError> {
        let found = atom.atomic_type();
        // An integer literal is a valid real.
        let real_from_int = self.atomic == AtomicType::Real && found == AtomicType::Integer;
        if found != self.atomic && !real_from_int {
            return Err(ConstraintError::AtomType {
                role,
                atom: atom.clone(),
                expected: self.atomic,
                found,
            });
        }
        if let Some(allowed) = &self.enumeration {
            let as_real;
            let probe = match atom {
                #[allow(clippy::cast_precision_loss)]
                Atom::Integer(i) if real_from_int => {
                    as_real = Atom::Real(*i as f64);
                    &as_real
                }
                a => a,
            };
            if !allowed.contains(probe) {
                return Err(ConstraintError::NotInEnum {
                    atom: atom.clone(),
                    allowed: serde_json::to_string(allowed).unwrap_or_default().into(),
                });
            }
        }
        match atom {
            Atom::Integer(i) if !real_from_int => self.check_integer(*i),
            #[allow(clippy::cast_precision_loss)]
            Atom::Integer(i) => self.check_real(*i as f64),
            Atom::Real(r) => self.check_real(*r),
            Atom::String(s) => self.check_length(s),
            _ => Ok(()),
        }
    }

    fn check_integer(&self, value: i64) -> Result<(), ConstraintError> {
        if self.min_integer.is_some_and(|m| value < m)
            || self.max_integer.is_some_and(|m| value > m)
        {
            return Err(ConstraintError::IntegerRange {
                value,
                min: self.min_integer,
                max: self.max_integer,
            });
        }
        Ok(())
    }

    fn check_real(&self, value: f64) -> Result<(), ConstraintError> {
        if !value.is_finite()
            || self.min_real.is_some_and(|m| value < m)
            || self.max_real.is_some_and(|m| value > m)
        {
            return Err(ConstraintError::RealRange {
                value,
                min: self.min_real,
                max: self.max_real,
            });
        }
        Ok(())
    }

    fn check_length(&self, s: &str) -> Result<(), ConstraintError> {
        if self.min_length.is_none() && self.max_length.is_none() {
            return Ok(());
        }
        let length = s.chars().count() as u64;
        if self.min_length.is_some_and(|m| length < m)
            || self.max_length.is_some_and(|m| length > m)
        {
            return Err(ConstraintError::StringLength {
                length,
                min: self.min_length,
                max: self.max_length,
            });
        }
        Ok(())
    }
}

impl ColumnType {
    /// Checks a complete column value: shape, atom types, constraints and number of elements.
    ///
    /// ```
    /// use ovsdb::{ColumnType, ConstraintError, Datum};
    ///
    /// let ty: ColumnType = serde_json::from_str(
    ///     r#"{"key":{"type":"integer","minInteger":0,"maxInteger":4095},"min":0,"max":1}"#,
    /// ).unwrap();
    /// assert!(ty.check(&Datum::from(100)).is_ok());
    /// assert!(ty.check(&Datum::empty_set()).is_ok());
    /// assert!(matches!(ty.check(&Datum::from(5000)), Err(ConstraintError::IntegerRange { .. })));
    /// assert!(matches!(ty.check(&Datum::set([1, 2])), Err(ConstraintError::Size { .. })));
    /// ```
    pub fn check(&self, datum: &Datum) -> Result<(), ConstraintError> {
        self.check_elements(datum)?;
        self.check_size(datum.len() as u64, self.min, self.max)
    }

    /// Checks shape, atom types and constraints, but not the number of elements (as for the
    /// argument of `includes`, `excludes`, or an `insert` mutation).
    pub fn check_elements(&self, datum: &Datum) -> Result<(), ConstraintError> {
        match (datum, &self.value) {
            (Datum::Set(s), None) => {
                for a in s {
                    self.key.check(a, AtomRole::Key)?;
                }
            }
            (Datum::Map(m), Some(vt)) => {
                for (k, v) in m.iter() {
                    self.key.check(k, AtomRole::Key)?;
                    vt.check(v, AtomRole::Value)?;
                }
            }
            (Datum::Set(_), Some(_)) => return Err(ConstraintError::ExpectedMap),
            (Datum::Map(_), None) => return Err(ConstraintError::ExpectedSet),
        }
        Ok(())
    }

    /// Checks that `length` elements fit in `[min, max]`.
    pub fn check_size(&self, length: u64, min: u64, max: Max) -> Result<(), ConstraintError> {
        if length < min || !max.allows(length) {
            return Err(ConstraintError::Size { length, min, max });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(json: &str) -> ColumnType {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn enum_and_lengths() {
        let t = ty(r#"{"key":{"type":"string","enum":["set",["a","b"]]}}"#);
        assert!(t.check(&Datum::from("a")).is_ok());
        assert!(matches!(
            t.check(&Datum::from("c")),
            Err(ConstraintError::NotInEnum { .. })
        ));
        let l = ty(r#"{"key":{"type":"string","minLength":2,"maxLength":3}}"#);
        assert!(l.check(&Datum::from("\u{e9}\u{e9}")).is_ok());
        assert!(matches!(
            l.check(&Datum::from("abcd")),
            Err(ConstraintError::StringLength { length: 4, .. })
        ));
    }

    #[test]
    fn maps_check_keys_and_values() {
        let t = ty(
            r#"{"key":"string","value":{"type":"integer","maxInteger":9},"min":0,"max":"unlimited"}"#,
        );
        assert!(t.check(&Datum::map([("a", 1)])).is_ok());
        assert!(t.check(&Datum::map([("a", 10)])).is_err());
        assert!(matches!(
            t.check(&Datum::map([(1, 1)])),
            Err(ConstraintError::AtomType {
                role: AtomRole::Key,
                ..
            })
        ));
        assert_eq!(
            t.check(&Datum::empty_set()),
            Err(ConstraintError::ExpectedMap)
        );
    }

    #[test]
    fn reals_accept_integers_and_check_ranges() {
        let t = ty(r#"{"key":{"type":"real","minReal":0.5}}"#);
        assert!(t.check(&Datum::from(1)).is_ok());
        assert!(t.check(&Datum::from(0.25)).is_err());
        assert!(t.check(&Datum::from(f64::NAN)).is_err());
    }
}
