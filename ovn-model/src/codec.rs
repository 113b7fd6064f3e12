//! Codecs for the override table: each module converts one domain type to and from a column's
//! [`Datum`], as the generated `from_row`/`to_row` expect (`decode`/`encode`).

use ovsdb::{Atom, Datum};

fn strings(d: &Datum) -> Result<Vec<&str>, String> {
    let set = d
        .as_set()
        .ok_or_else(|| format!("expected a set of strings, got {d}"))?;
    set.iter()
        .map(|a| {
            a.as_str()
                .ok_or_else(|| format!("expected a string, got {a}"))
        })
        .collect()
}

fn string_set<T: ToString>(items: impl IntoIterator<Item = T>) -> Datum {
    Datum::set(items.into_iter().map(|x| Atom::String(x.to_string())))
}

/// A scalar MAC column.
pub(crate) mod mac {
    use super::*;
    use crate::MacAddr;

    pub(crate) fn decode(d: &Datum) -> Result<MacAddr, String> {
        let a = d
            .as_atom()
            .and_then(Atom::as_str)
            .ok_or_else(|| format!("expected a string, got {d}"))?;
        a.parse().map_err(|e: crate::DomainError| e.to_string())
    }

    #[allow(clippy::unnecessary_wraps)] // The codec signature is shared by all overrides.
    pub(crate) fn encode(v: &MacAddr) -> Result<Datum, String> {
        Ok(Datum::from(v.to_string()))
    }
}

/// An optional MAC column.
pub(crate) mod optional_mac {
    use super::*;
    use crate::MacAddr;

    pub(crate) fn decode(d: &Datum) -> Result<Option<MacAddr>, String> {
        match strings(d)?.as_slice() {
            [] => Ok(None),
            [one] => one
                .parse()
                .map(Some)
                .map_err(|e: crate::DomainError| e.to_string()),
            _ => Err(format!("expected at most one MAC, got {d}")),
        }
    }

    #[allow(clippy::unnecessary_wraps, clippy::ref_option)] // Shared codec signature.
    pub(crate) fn encode(v: &Option<MacAddr>) -> Result<Datum, String> {
        Ok(string_set(v.iter()))
    }
}

/// A set of `addr/len` strings (`Logical_Router_Port.networks`).
pub(crate) mod ip_networks {
    use super::*;
    use ipnet::IpNet;

    pub(crate) fn decode(d: &Datum) -> Result<Vec<IpNet>, String> {
        strings(d)?
            .into_iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .map_err(|_| crate::DomainError::Network { text: s.to_owned() }.to_string())
            })
            .collect()
    }

    #[allow(clippy::unnecessary_wraps, clippy::ptr_arg)] // Shared codec signature.
    pub(crate) fn encode(v: &Vec<IpNet>) -> Result<Datum, String> {
        Ok(string_set(v))
    }
}

/// A set of port address strings (`Logical_Switch_Port.addresses`, `Port_Binding.mac`).
pub(crate) mod lsp_addresses {
    use super::*;
    use crate::LspAddress;

    pub(crate) fn decode(d: &Datum) -> Result<Vec<LspAddress>, String> {
        Ok(strings(d)?
            .into_iter()
            .map(|s| match s.parse::<LspAddress>() {
                Ok(a) => a,
                Err(never) => match never {},
            })
            .collect())
    }

    #[allow(clippy::unnecessary_wraps, clippy::ptr_arg)] // Shared codec signature.
    pub(crate) fn encode(v: &Vec<LspAddress>) -> Result<Datum, String> {
        Ok(string_set(v))
    }
}
