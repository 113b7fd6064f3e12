//! Rust names for schema names: tables become `CamelCase` types, columns `snake_case` fields,
//! enum values `CamelCase` variants.

use std::collections::BTreeSet;

const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Splits on anything that is not alphanumeric.
fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// `Logical_Switch` -> `LogicalSwitch`, `ACL` -> `Acl`, `QoS` -> `QoS`, `Open_vSwitch` ->
/// `OpenVSwitch`, `from-lport` -> `FromLport`.
pub(crate) fn type_name(s: &str) -> String {
    let mut out = String::new();
    for w in words(s) {
        let all_upper = w.chars().all(|c| !c.is_ascii_lowercase());
        let mut chars = w.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            if all_upper {
                out.extend(chars.map(|c| c.to_ascii_lowercase()));
            } else {
                out.extend(chars);
            }
        }
    }
    if out.is_empty() {
        out.push_str("Empty");
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    out
}

/// `external_ids` -> `external_ids`, `type` -> `type_`, `Foo-Bar` -> `foo_bar`.
pub(crate) fn field_name(s: &str) -> String {
    let mut out: String = words(s)
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join("_");
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'c');
    }
    if KEYWORDS.contains(&out.as_str()) || out == "uuid" {
        out.push('_');
    }
    out
}

/// Variant names for enum values, unique and never `Other`.
pub(crate) fn variant_names(values: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    values
        .iter()
        .map(|v| {
            let mut name = type_name(v);
            if name == "Other" {
                name.push_str("Value");
            }
            let base = name.clone();
            let mut n = 2;
            while !seen.insert(name.clone()) {
                name = format!("{base}{n}");
                n += 1;
            }
            name
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names() {
        assert_eq!(type_name("Logical_Switch_Port"), "LogicalSwitchPort");
        assert_eq!(type_name("ACL"), "Acl");
        assert_eq!(type_name("DHCP_Options"), "DhcpOptions");
        assert_eq!(type_name("QoS"), "QoS");
        assert_eq!(type_name("Open_vSwitch"), "OpenVSwitch");
        assert_eq!(type_name("from-lport"), "FromLport");
        assert_eq!(type_name("dnat_and_snat"), "DnatAndSnat");
        assert_eq!(type_name(""), "Empty");
        assert_eq!(type_name("802.1q"), "V8021q");
    }

    #[test]
    fn field_names() {
        assert_eq!(field_name("external_ids"), "external_ids");
        assert_eq!(field_name("type"), "type_");
        assert_eq!(field_name("match"), "match_");
        assert_eq!(field_name("uuid"), "uuid_");
        assert_eq!(field_name("Foo-Bar"), "foo_bar");
    }

    #[test]
    fn variants_are_unique() {
        let v = ["a-b", "a_b", "other"].map(String::from);
        assert_eq!(variant_names(&v), ["AB", "AB2", "OtherValue"]);
    }
}
