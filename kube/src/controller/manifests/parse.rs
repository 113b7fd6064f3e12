//! One manifest file's text -> the objects of the watched kinds it holds, with their synthetic
//! `uid` and `resourceVersion`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::controller::source::{Kind, ObjectRef};

/// Where in a file a document is: its number (from 1, empty documents counted) and, inside a
/// `List`, the item's number (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// The document, from 1.
    pub document: usize,
    /// The item of a `List` document, from 1.
    pub item: Option<usize>,
}

impl fmt::Display for Location {
    /// `document 2`, `document 2 item 3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.item {
            Some(item) => write!(f, "document {} item {item}", self.document),
            None => write!(f, "document {}", self.document),
        }
    }
}

/// What is wrong with a manifest file (the `source` of a
/// [`SourceError::Manifest`](crate::controller::source::SourceError::Manifest) naming the file).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// A document is not YAML.
    #[error("{at} is not YAML")]
    Yaml {
        /// The document.
        at: Location,
        /// The parser's error (with its line and column).
        #[source]
        source: serde_yaml::Error,
    },
    /// A document lacks a field every object has, or the field is not what it should be.
    #[error("{at}: {problem}")]
    Shape {
        /// The document.
        at: Location,
        /// What is wrong: `kind is missing or not a string`, `metadata.name is missing`, ...
        problem: &'static str,
    },
    /// A Namespace, Pod or Node document does not have the fields of its kind.
    #[error("{at} is not a valid {kind}")]
    Invalid {
        /// The document.
        at: Location,
        /// Its kind.
        kind: Kind,
        /// The decoder's error.
        #[source]
        source: serde_yaml::Error,
    },
}

/// Two documents define the same object: the one in `second` (the later file by path order,
/// or the later document of one file) is used. The `source` of a
/// [`SourceError::Manifest`](crate::controller::source::SourceError::Manifest) naming `second`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object} is defined in {} and again in {}; the latter is used", first.display(), second.display())]
pub struct DuplicateObject {
    /// The object (kind, namespace, name).
    pub object: ObjectRef,
    /// The file of the definition that is not used.
    pub first: PathBuf,
    /// The file of the definition that is used.
    pub second: PathBuf,
}

/// An object of one of the watched kinds (boxed: a Pod is large).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Object {
    Namespace(Box<Namespace>),
    Pod(Box<Pod>),
    Node(Box<Node>),
    Service(Box<Service>),
    EndpointSlice(Box<EndpointSlice>),
    NetworkPolicy(Box<NetworkPolicy>),
}

/// What objects are keyed by: kind, namespace (namespaced kinds only) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    pub(crate) kind: Kind,
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
}

impl Key {
    pub(crate) fn object_ref(&self) -> ObjectRef {
        match &self.namespace {
            Some(ns) => ObjectRef::namespaced(self.kind, ns, &self.name),
            None => ObjectRef::cluster(self.kind, &self.name),
        }
    }
}

/// The objects of one file, in document order, and how many documents of other kinds it held.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) objects: Vec<(Key, Object)>,
    /// `apiVersion kind` -> how many documents of it were ignored.
    pub(crate) ignored: BTreeMap<String, usize>,
}

/// Parses a file's text: every document, `---` separated; empty documents are skipped, a `v1`
/// `List` is expanded, kinds other than `v1` Namespace, Pod and Node are counted and skipped.
/// The first bad document fails the whole file.
pub(crate) fn parse(text: &[u8]) -> Result<Parsed, ManifestError> {
    let mut parsed = Parsed::default();
    for (index, document) in serde_yaml::Deserializer::from_slice(text).enumerate() {
        let at = Location {
            document: index + 1,
            item: None,
        };
        let value = serde_yaml::Value::deserialize(document)
            .map_err(|source| ManifestError::Yaml { at, source })?;
        if value.is_null() {
            continue;
        }
        let (api_version, kind) = type_of(&value, at)?;
        if api_version == "v1" && kind == "List" {
            let items = value
                .get("items")
                .and_then(serde_yaml::Value::as_sequence)
                .ok_or(ManifestError::Shape {
                    at,
                    problem: "items is missing or not a list",
                })?;
            for (item, value) in items.iter().enumerate() {
                let at = Location {
                    document: index + 1,
                    item: Some(item + 1),
                };
                one(&mut parsed, value.clone(), at)?;
            }
        } else {
            one(&mut parsed, value, at)?;
        }
    }
    Ok(parsed)
}

fn type_of(value: &serde_yaml::Value, at: Location) -> Result<(&str, &str), ManifestError> {
    if !value.is_mapping() {
        return Err(ManifestError::Shape {
            at,
            problem: "not a mapping",
        });
    }
    let api_version = value
        .get("apiVersion")
        .and_then(serde_yaml::Value::as_str)
        .ok_or(ManifestError::Shape {
            at,
            problem: "apiVersion is missing or not a string",
        })?;
    let kind = value
        .get("kind")
        .and_then(serde_yaml::Value::as_str)
        .ok_or(ManifestError::Shape {
            at,
            problem: "kind is missing or not a string",
        })?;
    Ok((api_version, kind))
}

fn one(parsed: &mut Parsed, value: serde_yaml::Value, at: Location) -> Result<(), ManifestError> {
    let (api_version, kind) = type_of(&value, at)?;
    let kind = match (api_version, kind) {
        ("v1", "Namespace") => Kind::Namespace,
        ("v1", "Pod") => Kind::Pod,
        ("v1", "Node") => Kind::Node,
        ("v1", "Service") => Kind::Service,
        ("discovery.k8s.io/v1", "EndpointSlice") => Kind::EndpointSlice,
        ("networking.k8s.io/v1", "NetworkPolicy") => Kind::NetworkPolicy,
        _ => {
            *parsed
                .ignored
                .entry(format!("{api_version} {kind}"))
                .or_default() += 1;
            return Ok(());
        }
    };
    let entry = match kind {
        Kind::Namespace => {
            let mut ns: Namespace = typed(value, kind, at)?;
            let key = normalize(&mut ns.metadata, kind, at)?;
            stamp(&mut ns, &key);
            (key, Object::Namespace(Box::new(ns)))
        }
        Kind::Pod => {
            let mut pod: Pod = typed(value, kind, at)?;
            let key = normalize(&mut pod.metadata, kind, at)?;
            stamp(&mut pod, &key);
            (key, Object::Pod(Box::new(pod)))
        }
        Kind::Node => {
            let mut node: Node = typed(value, kind, at)?;
            let key = normalize(&mut node.metadata, kind, at)?;
            stamp(&mut node, &key);
            (key, Object::Node(Box::new(node)))
        }
        Kind::Service => {
            let mut o: Service = typed(value, kind, at)?;
            let key = normalize(&mut o.metadata, kind, at)?;
            stamp(&mut o, &key);
            (key, Object::Service(Box::new(o)))
        }
        Kind::EndpointSlice => {
            let mut o: EndpointSlice = typed(value, kind, at)?;
            let key = normalize(&mut o.metadata, kind, at)?;
            stamp(&mut o, &key);
            (key, Object::EndpointSlice(Box::new(o)))
        }
        Kind::NetworkPolicy => {
            let mut o: NetworkPolicy = typed(value, kind, at)?;
            let key = normalize(&mut o.metadata, kind, at)?;
            stamp(&mut o, &key);
            (key, Object::NetworkPolicy(Box::new(o)))
        }
    };
    parsed.objects.push(entry);
    Ok(())
}

fn typed<T: DeserializeOwned>(
    value: serde_yaml::Value,
    kind: Kind,
    at: Location,
) -> Result<T, ManifestError> {
    serde_yaml::from_value(value).map_err(|source| ManifestError::Invalid { at, kind, source })
}

/// Checks the name, puts a namespaced object without a namespace in `default` and takes the namespace off
/// cluster-scoped objects; returns the object's key.
fn normalize(meta: &mut ObjectMeta, kind: Kind, at: Location) -> Result<Key, ManifestError> {
    let name = match meta.name.as_deref() {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => {
            return Err(ManifestError::Shape {
                at,
                problem: "metadata.name is missing or empty",
            });
        }
    };
    let namespace = match kind {
        _ if kind.is_namespaced() => {
            let ns = match meta.namespace.as_deref() {
                Some(ns) if !ns.is_empty() => ns.to_owned(),
                _ => "default".to_owned(),
            };
            meta.namespace = Some(ns.clone());
            Some(ns)
        }
        _ => {
            meta.namespace = None;
            None
        }
    };
    Ok(Key {
        kind,
        namespace,
        name,
    })
}

/// Gives the object a synthetic `uid` (unless the manifest sets one) and a `resourceVersion`
/// that is a hash of everything else, so it changes exactly when the object does.
fn stamp<T>(object: &mut T, key: &Key)
where
    T: k8s_openapi::Metadata<Ty = ObjectMeta> + serde::Serialize + fmt::Debug,
{
    let meta = object.metadata_mut();
    if meta.uid.as_deref().is_none_or(str::is_empty) {
        meta.uid = Some(synthetic_uid(key));
    }
    meta.resource_version = None;
    let mut hasher = Fnv64::new();
    if serde_json::to_writer(&mut hasher, &*object).is_err() {
        hasher.write(format!("{object:?}").as_bytes());
    }
    let version = hasher.finish().to_string();
    object.metadata_mut().resource_version = Some(version);
}

/// A UUID (version 8, the version for custom UUIDs) from kind, namespace and name: the same
/// object gets the same UID in every run.
pub(crate) fn synthetic_uid(key: &Key) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut hash = OFFSET;
    let namespace = key.namespace.as_deref().unwrap_or_default();
    for part in [
        "ovnkit-manifest",
        key.kind.as_str(),
        namespace,
        key.name.as_str(),
    ] {
        for byte in part.bytes().chain([0]) {
            hash ^= u128::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    // Version 8 in bits 76..80, variant 0b10 in bits 62..64 (RFC 9562).
    let hash = (hash & !(0xf << 76)) | (0x8 << 76);
    let hash = (hash & !(0b11 << 62)) | (0b10 << 62);
    let hex = format!("{hash:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// FNV-1a, 64 bits: a hash that is the same in every build and run.
struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl std::io::Write for Fnv64 {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Fnv64::write(self, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: Kind, ns: Option<&str>, name: &str) -> Key {
        Key {
            kind,
            namespace: ns.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    #[test]
    fn uid_is_a_stable_version_8_uuid() {
        let a = synthetic_uid(&key(Kind::Pod, Some("default"), "web"));
        assert_eq!(a, synthetic_uid(&key(Kind::Pod, Some("default"), "web")));
        assert_ne!(a, synthetic_uid(&key(Kind::Pod, Some("other"), "web")));
        assert_ne!(a, synthetic_uid(&key(Kind::Namespace, None, "web")));
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('8'), "{a}");
        assert!(
            matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
            "{a}"
        );
    }

    #[test]
    fn documents_lists_and_other_kinds() {
        let text = "\
---
apiVersion: v1
kind: Pod
metadata: {name: web}
---
---
# only a comment
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Node, metadata: {name: n1, namespace: junk}}
- {apiVersion: v1, kind: Service, metadata: {name: s}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
";
        let parsed = parse(text.as_bytes()).expect("parses");
        let keys: Vec<Key> = parsed.objects.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(
            keys,
            [
                key(Kind::Pod, Some("default"), "web"),
                key(Kind::Node, None, "n1"),
                key(Kind::Service, Some("default"), "s"),
            ]
        );
        assert_eq!(parsed.ignored.get("v1 ConfigMap"), Some(&1));
        assert_eq!(parsed.ignored.get("apps/v1 Deployment"), Some(&1));
        let Object::Node(node) = &parsed.objects[1].1 else {
            panic!("not a node")
        };
        assert_eq!(node.metadata.namespace, None);
    }

    #[test]
    fn resource_version_follows_the_content() {
        let rv = |text: &str| -> Option<String> {
            let parsed = parse(text.as_bytes()).expect("parses");
            match &parsed.objects[0].1 {
                Object::Pod(pod) => pod.metadata.resource_version.clone(),
                _ => None,
            }
        };
        let a = rv("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\n");
        let same = rv("# comment\napiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n");
        let other = rv("apiVersion: v1\nkind: Pod\nmetadata: {name: web, labels: {a: b}}\n");
        assert!(a.is_some());
        assert_eq!(a, same);
        assert_ne!(a, other);
    }

    #[test]
    fn errors_name_the_document() {
        let err = parse(b"apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\nkind: Pod\n")
            .expect_err("no apiVersion");
        assert_eq!(
            err.to_string(),
            "document 2: apiVersion is missing or not a string"
        );
        let err =
            parse(b"apiVersion: v1\nkind: Pod\nmetadata: {namespace: a}\n").expect_err("no name");
        assert_eq!(
            err.to_string(),
            "document 1: metadata.name is missing or empty"
        );
        let err = parse(b"apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: 3\n")
            .expect_err("bad spec");
        assert_eq!(err.to_string(), "document 1 is not a valid Pod");
        let err = parse(b"a: [\n").expect_err("not yaml");
        assert_eq!(err.to_string(), "document 1 is not YAML");
        let err = parse(b"apiVersion: v1\nkind: List\nitems:\n- 3\n").expect_err("bad item");
        assert_eq!(err.to_string(), "document 1 item 1: not a mapping");
        let err = parse(b"apiVersion: v1\nkind: Pod\nmetadata: {name: \xff}\n").expect_err("utf-8");
        assert!(matches!(err, ManifestError::Yaml { .. }), "{err:?}");
    }
}
