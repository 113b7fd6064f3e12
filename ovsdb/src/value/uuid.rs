//! Row UUIDs and the named UUIDs that stand for rows inserted in the same transaction.

use std::fmt;
use std::str::FromStr;

use super::ValueError;

/// A row UUID, as OVSDB writes it (`["uuid", "550e8400-e29b-41d4-a716-446655440000"]` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(pub uuid::Uuid);

impl Uuid {
    /// The all-zero UUID.
    pub const NIL: Uuid = Uuid(uuid::Uuid::nil());

    /// A UUID from its 128-bit value.
    #[must_use]
    pub const fn from_u128(v: u128) -> Self {
        Uuid(uuid::Uuid::from_u128(v))
    }

    /// The 128-bit value.
    #[must_use]
    pub const fn as_u128(&self) -> u128 {
        self.0.as_u128()
    }
}

/// The nil UUID ([`Uuid::NIL`]).
impl Default for Uuid {
    fn default() -> Self {
        Uuid::NIL
    }
}

impl From<uuid::Uuid> for Uuid {
    fn from(u: uuid::Uuid) -> Self {
        Uuid(u)
    }
}

impl From<Uuid> for uuid::Uuid {
    fn from(u: Uuid) -> Self {
        u.0
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl FromStr for Uuid {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // OVSDB accepts only the hyphenated 36-character form.
        if s.len() != 36 {
            return Err(ValueError::InvalidUuid { text: s.to_owned() });
        }
        uuid::Uuid::try_parse(s)
            .map(Uuid)
            .map_err(|_| ValueError::InvalidUuid { text: s.to_owned() })
    }
}

/// A symbolic name for a row inserted in the same transaction (`uuid-name` / `["named-uuid", name]`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NamedUuid(String);

impl NamedUuid {
    /// A named UUID; the name must be an identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn new(name: impl Into<String>) -> Result<Self, ValueError> {
        let name = name.into();
        if is_id(&name) {
            Ok(NamedUuid(name))
        } else {
            Err(ValueError::InvalidNamedUuid { text: name })
        }
    }

    /// A named UUID `prefix` + `n` (for example `row42`), handy for generated names.
    ///
    /// # Panics
    /// If `prefix` is not itself a valid identifier.
    #[must_use]
    pub fn numbered(prefix: &str, n: u64) -> Self {
        assert!(
            is_id(prefix),
            "named-uuid prefix {prefix:?} is not an identifier"
        );
        NamedUuid(format!("{prefix}{n}"))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NamedUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for NamedUuid {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NamedUuid::new(s)
    }
}

fn is_id(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_parse_requires_hyphenated_form() {
        assert!(
            "550e8400-e29b-41d4-a716-446655440000"
                .parse::<Uuid>()
                .is_ok()
        );
        assert!("550e8400e29b41d4a716446655440000".parse::<Uuid>().is_err());
    }

    #[test]
    fn named_uuid_must_be_identifier() {
        assert!(NamedUuid::new("row_1").is_ok());
        assert!(NamedUuid::new("1row").is_err());
        assert!(NamedUuid::new("").is_err());
        assert!(NamedUuid::new("a-b").is_err());
    }
}
