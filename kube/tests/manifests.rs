//! The manifest-directory mode: `ManifestSource` streams over a temporary directory of YAML
//! files. Every wait for an event is bounded by a timeout; nothing sleeps.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use ovnkit_kube::controller::manifests::{DuplicateObject, ManifestError, ManifestSource};
use ovnkit_kube::controller::source::{Kind, ObjectRef, ObjectSource, SourceError, WatchEvent};

/// How long any one expected event may take (the fallback rescan alone is far quicker).
const WAIT: Duration = Duration::from_secs(10);

type Stream<K> = BoxStream<'static, Result<WatchEvent<K>, SourceError>>;

/// A source with quick rescans, so a missed `notify` event does not slow a test down.
fn source(dir: &Path) -> ManifestSource {
    ManifestSource::new(dir)
        .with_debounce(Duration::from_millis(50))
        .with_rescan_interval(Duration::from_millis(250))
}

/// Writes a file as an editor that saves atomically does: the scanner never reads a part.
fn put(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    let temp = dir.join(format!(".{name}.tmp"));
    fs::write(&temp, text).expect("write temp");
    fs::rename(&temp, &path).expect("rename");
    path
}

/// An event as text: `Init`, `InitApply(default/web)`, `Apply(n1)`, `Delete(...)`, `InitDone`,
/// or `Err(<file name>)` for a manifest error.
fn describe<K: kube::Resource>(item: &Result<WatchEvent<K>, SourceError>) -> String {
    let id = |k: &K| match k.namespace() {
        Some(ns) => format!("{ns}/{}", k.name_any()),
        None => k.name_any(),
    };
    match item {
        Ok(WatchEvent::Init) => "Init".to_owned(),
        Ok(WatchEvent::InitApply(k)) => format!("InitApply({})", id(k)),
        Ok(WatchEvent::InitDone) => "InitDone".to_owned(),
        Ok(WatchEvent::Apply(k)) => format!("Apply({})", id(k)),
        Ok(WatchEvent::Delete(k)) => format!("Delete({})", id(k)),
        Err(SourceError::Manifest { path, .. }) => format!(
            "Err({})",
            path.file_name().unwrap_or_default().to_string_lossy()
        ),
        Err(e) => format!("Err({e})"),
    }
}

async fn next<K>(stream: &mut Stream<K>) -> Result<WatchEvent<K>, SourceError> {
    match tokio::time::timeout(WAIT, stream.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("the stream ended"),
        Err(_) => panic!("no event within {WAIT:?}"),
    }
}

/// The next `n` events, described.
async fn take<K: kube::Resource>(stream: &mut Stream<K>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(describe(&next(stream).await));
    }
    out
}

/// The initial listing (and any errors before it), described.
async fn listing<K: kube::Resource>(stream: &mut Stream<K>) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let event = describe(&next(stream).await);
        let done = event == "InitDone";
        out.push(event);
        if done {
            return out;
        }
    }
}

fn pod_yaml(name: &str, labels: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\n")
}

const ALL_KINDS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: team-a
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations:
    ovn.kubernetes.io/egress_rate: "10"
---
---
# a document with a comment only
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports: [{port: 80}]
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: db, namespace: team-a}
- apiVersion: v1
  kind: Node
  metadata: {name: node1}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: d}
---
apiVersion: v1
kind: Node
metadata:
  name: node2
"#;

#[tokio::test]
async fn initial_listing_of_every_kind_skips_other_kinds() {
    let dir = tempfile::tempdir().expect("tempdir");
    put(dir.path(), "all.yaml", ALL_KINDS);
    put(dir.path(), "notes.txt", "not a manifest");
    put(dir.path(), "empty.yml", "");
    let source = source(dir.path());

    let mut namespaces = source.namespaces();
    assert_eq!(
        listing(&mut namespaces).await,
        ["Init", "InitApply(team-a)", "InitDone"]
    );
    let mut nodes = source.nodes();
    assert_eq!(
        listing(&mut nodes).await,
        ["Init", "InitApply(node1)", "InitApply(node2)", "InitDone"]
    );

    let mut pods = source.pods();
    assert!(matches!(next(&mut pods).await, Ok(WatchEvent::Init)));
    let mut listed = Vec::new();
    loop {
        match next(&mut pods).await {
            Ok(WatchEvent::InitApply(pod)) => listed.push(pod),
            Ok(WatchEvent::InitDone) => break,
            other => panic!("unexpected {}", describe(&other)),
        }
    }
    let ids: Vec<String> = listed
        .iter()
        .map(|p| format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()))
        .collect();
    assert_eq!(ids, ["default/web", "team-a/db"]);
    let web = &listed[0];
    assert_eq!(
        web.annotations().get("ovn.kubernetes.io/egress_rate"),
        Some(&"10".to_owned())
    );
    let uid = web.uid().expect("a uid");
    assert!(web.resource_version().is_some());
    assert_ne!(Some(uid.clone()), listed[1].uid());

    // Another stream (a restarted controller) sees the same UIDs and versions.
    let mut again = source.pods();
    assert!(matches!(next(&mut again).await, Ok(WatchEvent::Init)));
    let Ok(WatchEvent::InitApply(web_again)) = next(&mut again).await else {
        panic!("no InitApply")
    };
    assert_eq!(web_again.uid(), Some(uid));
    assert_eq!(web_again.resource_version(), web.resource_version());
}

#[tokio::test]
async fn adding_editing_and_deleting_give_apply_and_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    put(dir.path(), "a.yaml", &pod_yaml("web", "app: web"));
    let mut pods = source(dir.path()).pods();
    assert_eq!(
        take(&mut pods, 3).await,
        ["Init", "InitApply(default/web)", "InitDone"]
    );

    // A new file.
    put(
        dir.path(),
        "b.yaml",
        &format!(
            "{}---\n{}",
            pod_yaml("db", "app: db"),
            pod_yaml("cache", "")
        ),
    );
    let mut added = take(&mut pods, 2).await;
    added.sort();
    assert_eq!(added, ["Apply(default/cache)", "Apply(default/db)"]);

    // An edit of one object: an annotation.
    put(
        dir.path(),
        "a.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {app: web}\n  \
         annotations: {ovn.kubernetes.io/egress_rate: \"5\"}\n",
    );
    let Ok(WatchEvent::Apply(edited)) = next(&mut pods).await else {
        panic!("no Apply after the edit")
    };
    assert_eq!(edited.name_any(), "web");
    assert_eq!(
        edited.annotations().get("ovn.kubernetes.io/egress_rate"),
        Some(&"5".to_owned())
    );

    // A rewrite that does not change any object yields nothing: the next event is the one
    // of the following change.
    put(
        dir.path(),
        "a.yaml",
        "# the same pod\napiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {app: web}\n  \
         annotations: {ovn.kubernetes.io/egress_rate: \"5\"}\n",
    );
    put(dir.path(), "c.yml", &pod_yaml("late", ""));
    assert_eq!(take(&mut pods, 1).await, ["Apply(default/late)"]);

    // A document removed from a file.
    put(dir.path(), "b.yaml", &pod_yaml("db", "app: db"));
    assert_eq!(take(&mut pods, 1).await, ["Delete(default/cache)"]);

    // A file removed.
    fs::remove_file(dir.path().join("b.yaml")).expect("remove");
    assert_eq!(take(&mut pods, 1).await, ["Delete(default/db)"]);
}

#[tokio::test]
async fn an_edit_keeps_the_uid_and_changes_the_resource_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    put(dir.path(), "a.yaml", &pod_yaml("web", "v: one"));
    let mut pods = source(dir.path()).pods();
    let mut first: Option<Pod> = None;
    loop {
        match next(&mut pods).await {
            Ok(WatchEvent::InitApply(pod)) => first = Some(pod),
            Ok(WatchEvent::InitDone) => break,
            _ => {}
        }
    }
    let first = first.expect("web listed");
    put(dir.path(), "a.yaml", &pod_yaml("web", "v: two"));
    let Ok(WatchEvent::Apply(second)) = next(&mut pods).await else {
        panic!("no Apply")
    };
    assert_eq!(first.uid(), second.uid());
    assert_ne!(first.resource_version(), second.resource_version());
}

#[tokio::test]
async fn a_malformed_file_is_reported_once_and_keeps_its_objects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = put(dir.path(), "a.yaml", &pod_yaml("web", ""));
    put(
        dir.path(),
        "bad.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: [\n",
    );
    let mut pods = source(dir.path()).pods();
    // Broken from the start: reported before the listing, which has the other files.
    assert_eq!(
        listing(&mut pods).await,
        [
            "Err(bad.yaml)",
            "Init",
            "InitApply(default/web)",
            "InitDone"
        ]
    );

    put(
        dir.path(),
        "a.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [web\n",
    );
    let err = next(&mut pods).await.expect_err("a manifest error");
    let SourceError::Manifest { path, source } = &err else {
        panic!("not a manifest error: {err}")
    };
    assert_eq!(path, &a);
    assert_eq!(err.to_string(), format!("manifest {}", a.display()));
    let cause = source
        .downcast_ref::<ManifestError>()
        .expect("a ManifestError");
    assert!(matches!(cause, ManifestError::Yaml { .. }), "{cause:?}");
    assert_eq!(cause.to_string(), "document 1 is not YAML");

    // Not reported again while the file stays as it is, and web is not deleted: the next
    // event is the one of another file.
    put(dir.path(), "b.yaml", &pod_yaml("db", ""));
    assert_eq!(take(&mut pods, 1).await, ["Apply(default/db)"]);

    // A different broken version is reported again; one with a pod that is not valid too.
    put(
        dir.path(),
        "a.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: 3}\n",
    );
    let err = next(&mut pods).await.expect_err("a manifest error");
    let SourceError::Manifest { source, .. } = &err else {
        panic!("not a manifest error: {err}")
    };
    assert_eq!(source.to_string(), "document 1 is not a valid Pod");

    // Fixed: the changed object is applied.
    put(dir.path(), "a.yaml", &pod_yaml("web", "fixed: \"yes\""));
    let Ok(WatchEvent::Apply(web)) = next(&mut pods).await else {
        panic!("no Apply after the fix")
    };
    assert_eq!(web.labels().get("fixed"), Some(&"yes".to_owned()));
}

#[tokio::test]
async fn a_bad_file_is_reported_on_every_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    put(dir.path(), "a.yaml", "apiVersion: v1\nkind: Node\n");
    let source = source(dir.path());
    let expected = ["Err(a.yaml)", "Init", "InitDone"];
    assert_eq!(listing(&mut source.namespaces()).await, expected);
    assert_eq!(listing(&mut source.pods()).await, expected);
    assert_eq!(listing(&mut source.nodes()).await, expected);
}

#[tokio::test]
async fn the_later_file_wins_a_duplicate_and_both_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = put(dir.path(), "a.yaml", &pod_yaml("web", "from: a"));
    let b = put(dir.path(), "b.yaml", &pod_yaml("web", "from: b"));
    let mut pods = source(dir.path()).pods();

    let err = next(&mut pods).await.expect_err("a duplicate");
    let SourceError::Manifest { path, source } = &err else {
        panic!("not a manifest error: {err}")
    };
    assert_eq!(path, &b);
    match source.downcast_ref::<DuplicateObject>() {
        Some(DuplicateObject {
            object,
            first,
            second,
        }) => {
            assert_eq!(object, &ObjectRef::namespaced(Kind::Pod, "default", "web"));
            assert_eq!((first, second), (&a, &b));
        }
        other => panic!("not a duplicate: {other:?}"),
    }
    assert_eq!(
        source.to_string(),
        format!(
            "Pod default/web is defined in {} and again in {}; the latter is used",
            a.display(),
            b.display()
        )
    );

    assert!(matches!(next(&mut pods).await, Ok(WatchEvent::Init)));
    let Ok(WatchEvent::InitApply(web)) = next(&mut pods).await else {
        panic!("no InitApply")
    };
    assert_eq!(web.labels().get("from"), Some(&"b".to_owned()));
    assert!(matches!(next(&mut pods).await, Ok(WatchEvent::InitDone)));

    // Without the later file, the earlier definition is the object.
    fs::remove_file(&b).expect("remove");
    let Ok(WatchEvent::Apply(web)) = next(&mut pods).await else {
        panic!("no Apply")
    };
    assert_eq!(web.labels().get("from"), Some(&"a".to_owned()));
}

#[tokio::test]
async fn open_refuses_a_missing_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing");
    match ManifestSource::open(&missing) {
        Err(SourceError::Manifest { path, .. }) => assert_eq!(path, missing),
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn the_periodic_rescan_alone_picks_up_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    put(dir.path(), "a.yaml", &pod_yaml("web", ""));
    let mut pods = source(dir.path()).with_notify(false).pods();
    assert_eq!(
        listing(&mut pods).await,
        ["Init", "InitApply(default/web)", "InitDone"]
    );
    put(dir.path(), "b.yaml", &pod_yaml("db", ""));
    assert_eq!(take(&mut pods, 1).await, ["Apply(default/db)"]);
    fs::remove_file(dir.path().join("a.yaml")).expect("remove");
    assert_eq!(take(&mut pods, 1).await, ["Delete(default/web)"]);
}

#[tokio::test]
async fn a_directory_that_appears_later_is_listed_then() {
    let dir = tempfile::tempdir().expect("tempdir");
    let later = dir.path().join("later");
    let mut pods = source(&later).pods();
    assert_eq!(take(&mut pods, 1).await, ["Err(later)"]);
    fs::create_dir(&later).expect("mkdir");
    put(&later, "a.yaml", &pod_yaml("web", ""));
    // The directory may be read between the two: then web comes as an Apply.
    let events = take(&mut pods, 3).await;
    let expected_listing = ["Init", "InitApply(default/web)", "InitDone"];
    if events != expected_listing {
        assert_eq!(events[..2], ["Init", "InitDone"]);
        assert_eq!(events[2], "Apply(default/web)");
    }
}
