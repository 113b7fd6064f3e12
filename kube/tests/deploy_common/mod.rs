//! The manifests of the repository's `deploy/` folder, parsed into k8s-openapi types: every
//! YAML document of every `*.yaml` file, by `apiVersion` and `kind`. A kind not listed in
//! [`Manifest`] fails, and so does a field the type does not have (the document must come back
//! unchanged from a round trip through the type, so a misspelt or misplaced field is caught
//! instead of being dropped).
//!
//! Shared by `kube/tests/deploy_manifests.rs` (RBAC), `ovnkit/tests/deploy_flags.rs` (flags)
//! and `ovnkit/tests/deploy_image.rs` (image, paths, probes).

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One document of a manifest file.
#[derive(Debug, Clone)]
pub enum Manifest {
    /// `apps/v1` Deployment.
    Deployment(Box<Deployment>),
    /// `apps/v1` DaemonSet.
    DaemonSet(Box<DaemonSet>),
    /// `v1` ServiceAccount.
    ServiceAccount(Box<ServiceAccount>),
    /// `v1` ConfigMap.
    ConfigMap(Box<ConfigMap>),
    /// `rbac.authorization.k8s.io/v1` ClusterRole.
    ClusterRole(Box<ClusterRole>),
    /// `rbac.authorization.k8s.io/v1` ClusterRoleBinding.
    ClusterRoleBinding(Box<ClusterRoleBinding>),
}

/// A parsed document and where it came from.
#[derive(Debug, Clone)]
pub struct Document {
    /// `deploy/<file>#<index>`.
    pub origin: String,
    /// The document.
    pub manifest: Manifest,
}

/// The `deploy/` folder.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every document of every `deploy/*.yaml` file, in file order. Panics on anything that is
/// not a known kind with known fields.
pub fn load() -> Vec<Document> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .expect("the deploy folder")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no manifests in {}",
        deploy_dir().display()
    );
    let mut out = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read(&path).expect("a manifest file");
        for (index, document) in serde_yaml::Deserializer::from_slice(&text).enumerate() {
            let origin = format!("deploy/{name}#{index}");
            let value =
                Value::deserialize(document).unwrap_or_else(|e| panic!("{origin}: not YAML: {e}"));
            if value.is_null() {
                continue; // an empty document (a trailing `---`)
            }
            out.push(Document {
                manifest: parse(&origin, value),
                origin,
            });
        }
    }
    out
}

fn parse(origin: &str, value: Value) -> Manifest {
    let api_version = value["apiVersion"].as_str().unwrap_or_default().to_owned();
    let kind = value["kind"].as_str().unwrap_or_default().to_owned();
    match (api_version.as_str(), kind.as_str()) {
        ("apps/v1", "Deployment") => Manifest::Deployment(typed(origin, value)),
        ("apps/v1", "DaemonSet") => Manifest::DaemonSet(typed(origin, value)),
        ("v1", "ServiceAccount") => Manifest::ServiceAccount(typed(origin, value)),
        ("v1", "ConfigMap") => Manifest::ConfigMap(typed(origin, value)),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            Manifest::ClusterRole(typed(origin, value))
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            Manifest::ClusterRoleBinding(typed(origin, value))
        }
        _ => panic!(
            "{origin}: {api_version:?} {kind:?} is not a kind these tests know (add it to \
             kube/tests/deploy_common and check it)"
        ),
    }
}

/// `value` as a `T`, which must give back exactly `value`.
fn typed<T: DeserializeOwned + serde::Serialize>(origin: &str, value: Value) -> Box<T> {
    let object: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("{origin}: does not parse as its kind: {e}"));
    let back = serde_json::to_value(&object).expect("serializable");
    if let Some(difference) = first_difference(&value, &back, "") {
        panic!("{origin}: {difference} (a field the type does not have, or of the wrong form)");
    }
    Box::new(object)
}

/// Where `written` and `typed` (its round trip) first differ.
fn first_difference(written: &Value, typed: &Value, at: &str) -> Option<String> {
    match (written, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let here = format!("{at}.{key}");
                match b.get(key) {
                    None => return Some(format!("{here} is dropped by the type")),
                    Some(other) => {
                        if let Some(d) = first_difference(value, other, &here) {
                            return Some(d);
                        }
                    }
                }
            }
            b.keys()
                .find(|k| !a.contains_key(*k))
                .map(|k| format!("{at}.{k} appears in the round trip"))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, &format!("{at}[{i}]"))),
        (a, b) if a == b => None,
        (a, b) => Some(format!("{at}: {a} comes back as {b}")),
    }
}

impl Manifest {
    /// The kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Manifest::Deployment(_) => "Deployment",
            Manifest::DaemonSet(_) => "DaemonSet",
            Manifest::ServiceAccount(_) => "ServiceAccount",
            Manifest::ConfigMap(_) => "ConfigMap",
            Manifest::ClusterRole(_) => "ClusterRole",
            Manifest::ClusterRoleBinding(_) => "ClusterRoleBinding",
        }
    }

    /// The name and namespace.
    pub fn name(&self) -> (Option<&str>, &str) {
        let meta = match self {
            Manifest::Deployment(o) => &o.metadata,
            Manifest::DaemonSet(o) => &o.metadata,
            Manifest::ServiceAccount(o) => &o.metadata,
            Manifest::ConfigMap(o) => &o.metadata,
            Manifest::ClusterRole(o) => &o.metadata,
            Manifest::ClusterRoleBinding(o) => &o.metadata,
        };
        (
            meta.namespace.as_deref(),
            meta.name.as_deref().unwrap_or_default(),
        )
    }

    /// The pod template's spec of a workload.
    pub fn pod_spec(&self) -> Option<&PodSpec> {
        match self {
            Manifest::Deployment(d) => d.spec.template.spec.as_ref(),
            Manifest::DaemonSet(d) => d.spec.template.spec.as_ref(),
            _ => None,
        }
    }
}

/// A workload of the manifests and its pod spec.
pub struct Workload<'a> {
    /// `Deployment kube-system/ovnkit-controller`.
    pub what: String,
    /// Its namespace.
    pub namespace: &'a str,
    /// The pod spec.
    pub spec: &'a PodSpec,
}

impl Workload<'_> {
    /// The containers, init containers first.
    pub fn containers(&self) -> impl Iterator<Item = &Container> {
        self.spec
            .init_containers
            .iter()
            .flatten()
            .chain(&self.spec.containers)
    }

    /// The `ovnkit` subcommand its main container runs (`controller`, `agent`): the first
    /// argument after the binary.
    pub fn subcommand(&self) -> Option<&str> {
        let main = self.spec.containers.first()?;
        let mut words = main
            .command
            .iter()
            .flatten()
            .chain(main.args.iter().flatten());
        words.nth(1).map(String::as_str)
    }
}

/// The Deployments and DaemonSets.
pub fn workloads(documents: &[Document]) -> Vec<Workload<'_>> {
    documents
        .iter()
        .filter_map(|d| {
            let spec = d.manifest.pod_spec()?;
            let (namespace, name) = d.manifest.name();
            Some(Workload {
                what: format!(
                    "{} {}/{name}",
                    d.manifest.kind(),
                    namespace.unwrap_or("default")
                ),
                namespace: namespace.unwrap_or("default"),
                spec,
            })
        })
        .collect()
}

/// The one workload whose main container runs `ovnkit <subcommand>`.
#[track_caller]
pub fn workload<'a>(documents: &'a [Document], subcommand: &str) -> Workload<'a> {
    let mut found: Vec<Workload<'a>> = workloads(documents)
        .into_iter()
        .filter(|w| w.subcommand() == Some(subcommand))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one workload running `ovnkit {subcommand}`"
    );
    found.remove(0)
}

/// The ConfigMap `namespace/name`.
#[track_caller]
pub fn config_map<'a>(documents: &'a [Document], namespace: &str, name: &str) -> &'a ConfigMap {
    documents
        .iter()
        .find_map(|d| match &d.manifest {
            Manifest::ConfigMap(c)
                if c.metadata.namespace.as_deref() == Some(namespace)
                    && c.metadata.name.as_deref() == Some(name) =>
            {
                Some(&**c)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no ConfigMap {namespace}/{name} in deploy/"))
}

/// The source files `ovnkit agent` and `ovnkit cni` run: the `agent` and `cni` modules of
/// `ovnkit-kube`, and every module of the crate they name (`crate::<module>`), transitively.
pub fn agent_sources() -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kube/src");
    let mut modules: std::collections::BTreeSet<String> =
        ["agent".to_owned(), "cni".to_owned()].into();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut todo: Vec<String> = modules.iter().cloned().collect();
    while let Some(module) = todo.pop() {
        let mut found = Vec::new();
        let file = src.join(format!("{module}.rs"));
        if file.is_file() {
            found.push(file);
        }
        let dir = src.join(&module);
        if dir.is_dir() {
            walk(&dir, &mut found);
        }
        assert!(!found.is_empty(), "no module {module} in {}", src.display());
        for path in found {
            let text = std::fs::read_to_string(&path).expect("a source file");
            for part in text.split("crate::").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && modules.insert(name.clone()) {
                    todo.push(name);
                }
            }
            files.push(path);
        }
    }
    files.sort();
    files.dedup();
    files
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
