//! Label selectors (`matchLabels` and `matchExpressions`), checked once and matched many times.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// The label every namespace carries with its own name (the API server sets it; a manifest
/// need not).
pub(crate) const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// One `matchExpressions` requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Requirement {
    /// The label has one of the values.
    In(String, Vec<String>),
    /// The label is absent or has none of the values.
    NotIn(String, Vec<String>),
    /// The label is present.
    Exists(String),
    /// The label is absent.
    DoesNotExist(String),
}

/// A checked label selector. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Selector {
    labels: BTreeMap<String, String>,
    requirements: Vec<Requirement>,
}

/// What is wrong with a selector: the field (relative to the selector) and why.
pub(crate) type SelectorError = (String, String);

impl Selector {
    /// Checks `s` as the API server would.
    ///
    /// # Errors
    /// The field (`matchExpressions[1].operator`, ...) and the reason.
    pub(crate) fn parse(s: &LabelSelector) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for (i, e) in s.match_expressions.iter().flatten().enumerate() {
            let field = |f: &str| format!("matchExpressions[{i}].{f}");
            let values = e.values.clone().unwrap_or_default();
            let needs_values = |r: Requirement| {
                if values.is_empty() {
                    Err((
                        field("values"),
                        format!("must be non-empty when operator is {}", e.operator),
                    ))
                } else {
                    Ok(r)
                }
            };
            let no_values = |r: Requirement| {
                if values.is_empty() {
                    Ok(r)
                } else {
                    Err((
                        field("values"),
                        format!("must be empty when operator is {}", e.operator),
                    ))
                }
            };
            let key = e.key.clone();
            if key.is_empty() {
                return Err((field("key"), "must not be empty".into()));
            }
            requirements.push(match e.operator.as_str() {
                "In" => needs_values(Requirement::In(key, values.clone()))?,
                "NotIn" => needs_values(Requirement::NotIn(key, values.clone()))?,
                "Exists" => no_values(Requirement::Exists(key))?,
                "DoesNotExist" => no_values(Requirement::DoesNotExist(key))?,
                other => {
                    return Err((
                        field("operator"),
                        format!(
                            "{other:?} is not a valid operator (In, NotIn, Exists or DoesNotExist)"
                        ),
                    ));
                }
            });
        }
        Ok(Selector {
            labels: s.match_labels.clone().unwrap_or_default(),
            requirements,
        })
    }

    /// Whether `labels` match.
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// Whether the labels of namespace `name` match (its name label included).
    pub(crate) fn matches_namespace(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| {
            labels
                .get(k)
                .map(String::as_str)
                .or_else(|| (k == NAMESPACE_NAME_LABEL).then_some(name))
        })
    }

    fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.labels.iter().all(|(k, v)| get(k) == Some(v.as_str()))
            && self.requirements.iter().all(|r| match r {
                Requirement::In(k, vs) => get(k).is_some_and(|v| vs.iter().any(|x| x == v)),
                Requirement::NotIn(k, vs) => get(k).is_none_or(|v| vs.iter().all(|x| x != v)),
                Requirement::Exists(k) => get(k).is_some(),
                Requirement::DoesNotExist(k) => get(k).is_none(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    fn selector(
        match_labels: &[(&str, &str)],
        exprs: Vec<LabelSelectorRequirement>,
    ) -> Result<Selector, SelectorError> {
        Selector::parse(&LabelSelector {
            match_labels: (!match_labels.is_empty()).then(|| labels(match_labels)),
            match_expressions: (!exprs.is_empty()).then_some(exprs),
        })
    }

    #[test]
    fn the_empty_selector_matches_everything() {
        let s = selector(&[], Vec::new()).unwrap();
        assert_eq!(s, Selector::default());
        assert!(s.matches(&labels(&[])));
        assert!(s.matches(&labels(&[("pod", "a")])));
    }

    #[test]
    fn match_labels_need_every_pair() {
        let s = selector(&[("pod", "a"), ("tier", "web")], Vec::new()).unwrap();
        assert!(s.matches(&labels(&[("pod", "a"), ("tier", "web"), ("x", "y")])));
        assert!(!s.matches(&labels(&[("pod", "a")])));
        assert!(!s.matches(&labels(&[("pod", "b"), ("tier", "web")])));
    }

    #[test]
    fn each_operator_matches_as_kubernetes_does() {
        let cases = [
            (expr("pod", "In", &["a", "b"]), [true, true, false, false]),
            (
                expr("pod", "NotIn", &["a", "b"]),
                [false, false, true, true],
            ),
            (expr("pod", "Exists", &[]), [true, true, true, false]),
            (
                expr("pod", "DoesNotExist", &[]),
                [false, false, false, true],
            ),
        ];
        let subjects = [
            labels(&[("pod", "a")]),
            labels(&[("pod", "b")]),
            labels(&[("pod", "c")]),
            labels(&[("other", "a")]),
        ];
        for (e, want) in cases {
            let op = e.operator.clone();
            let s = selector(&[], vec![e]).unwrap();
            let got: Vec<bool> = subjects.iter().map(|l| s.matches(l)).collect();
            assert_eq!(got, want, "{op}");
        }
    }

    #[test]
    fn labels_and_expressions_are_anded() {
        let s = selector(&[("tier", "web")], vec![expr("pod", "NotIn", &["a"])]).unwrap();
        assert!(s.matches(&labels(&[("tier", "web"), ("pod", "b")])));
        assert!(!s.matches(&labels(&[("tier", "web"), ("pod", "a")])));
        assert!(!s.matches(&labels(&[("pod", "b")])));
    }

    #[test]
    fn namespaces_carry_their_name_label() {
        let s = selector(&[(NAMESPACE_NAME_LABEL, "y")], Vec::new()).unwrap();
        assert!(s.matches_namespace("y", &labels(&[])));
        assert!(!s.matches_namespace("x", &labels(&[])));
        let s = selector(&[], vec![expr(NAMESPACE_NAME_LABEL, "NotIn", &["x"])]).unwrap();
        assert!(s.matches_namespace("z", &labels(&[("team", "z")])));
        assert!(!s.matches_namespace("x", &labels(&[])));
    }

    #[test]
    fn bad_requirements_name_the_field() {
        let e = selector(&[], vec![expr("pod", "Matches", &["a"])]).unwrap_err();
        assert_eq!(
            e,
            (
                "matchExpressions[0].operator".into(),
                r#""Matches" is not a valid operator (In, NotIn, Exists or DoesNotExist)"#.into()
            )
        );
        let e = selector(&[], vec![expr("a", "Exists", &[]), expr("pod", "In", &[])]).unwrap_err();
        assert_eq!(
            e,
            (
                "matchExpressions[1].values".into(),
                "must be non-empty when operator is In".into()
            )
        );
        let e = selector(&[], vec![expr("pod", "DoesNotExist", &["x"])]).unwrap_err();
        assert_eq!(e.0, "matchExpressions[0].values");
    }
}
