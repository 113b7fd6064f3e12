//! The manifest-directory mode: `ManifestSource` streams over a temporary directory of YAML
//! files, and `StateDir` over a temporary state directory. Every wait for an event is bounded
//! by a timeout; nothing sleeps.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use ovnkit_kube::controller::manifests::{
    DuplicateObject, ManifestError, ManifestSource, StateDir,
};
use ovnkit_kube::controller::source::{
    EventType, Kind, ObjectEvent, ObjectRef, ObjectSource, SinkError, SourceError, StatusSink,
    WatchEvent,
};

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

fn annotations(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
        .collect()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).expect("read")).expect("json")
}

#[tokio::test]
async fn state_dir_merges_annotations_into_one_file_per_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = StateDir::open(dir.path()).expect("open");
    let web = ObjectRef::namespaced(Kind::Pod, "default", "web");
    let node = ObjectRef::cluster(Kind::Node, "node1");
    let ns = ObjectRef::cluster(Kind::Namespace, "team-a");

    let a = annotations(&[("ovn.kubernetes.io/ip_address", Some("10.16.0.5"))]);
    state.annotate(&web, &a).await.expect("annotate");
    let b = annotations(&[("ovn.kubernetes.io/mac_address", Some("00:00:00:aa:bb:cc"))]);
    state.annotate(&web, &b).await.expect("annotate");
    let c = annotations(&[("ovn.kubernetes.io/chassis", Some("c1"))]);
    state.annotate(&node, &c).await.expect("annotate");
    let d = annotations(&[("ovn.kubernetes.io/logical_switch", Some("ovn-default"))]);
    state.annotate(&ns, &d).await.expect("annotate");

    assert_eq!(
        read_json(&dir.path().join("pods.json")),
        serde_json::json!({"default/web": {
            "ovn.kubernetes.io/ip_address": "10.16.0.5",
            "ovn.kubernetes.io/mac_address": "00:00:00:aa:bb:cc",
        }})
    );
    assert_eq!(
        read_json(&dir.path().join("nodes.json")),
        serde_json::json!({"node1": {"ovn.kubernetes.io/chassis": "c1"}})
    );
    assert_eq!(
        read_json(&dir.path().join("namespaces.json")),
        serde_json::json!({"team-a": {"ovn.kubernetes.io/logical_switch": "ovn-default"}})
    );
    assert_eq!(
        state
            .annotations(Kind::Pod, Some("default"), "web")
            .get("ovn.kubernetes.io/ip_address")
            .map(String::as_str),
        Some("10.16.0.5")
    );

    // None removes a key; removing the last key removes the object.
    let remove_ip = annotations(&[("ovn.kubernetes.io/ip_address", None)]);
    state.annotate(&web, &remove_ip).await.expect("annotate");
    assert_eq!(
        read_json(&dir.path().join("pods.json")),
        serde_json::json!({"default/web": {"ovn.kubernetes.io/mac_address": "00:00:00:aa:bb:cc"}})
    );
    let remove_mac = annotations(&[("ovn.kubernetes.io/mac_address", None)]);
    state.annotate(&web, &remove_mac).await.expect("annotate");
    assert_eq!(
        read_json(&dir.path().join("pods.json")),
        serde_json::json!({})
    );
    assert!(
        state
            .annotations(Kind::Pod, Some("default"), "web")
            .is_empty()
    );
    // Removing what is not there is not an error.
    state.annotate(&web, &remove_mac).await.expect("annotate");
}

#[tokio::test]
async fn state_dir_reopened_keeps_what_was_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let web = ObjectRef::namespaced(Kind::Pod, "default", "web");
    {
        let state = StateDir::open(dir.path()).expect("open");
        let a = annotations(&[("a", Some("1")), ("b", Some("2"))]);
        state.annotate(&web, &a).await.expect("annotate");
    }
    // A temporary file an interrupted write left is cleaned up.
    fs::write(dir.path().join(".pods.json.tmp.1.0"), "{\"partial").expect("write");

    let state = StateDir::open(dir.path()).expect("reopen");
    assert!(!dir.path().join(".pods.json.tmp.1.0").exists());
    let expected: BTreeMap<String, String> = [
        ("a".to_owned(), "1".to_owned()),
        ("b".to_owned(), "2".to_owned()),
    ]
    .into();
    assert_eq!(
        state.annotations(Kind::Pod, Some("default"), "web"),
        expected
    );

    // New writes merge with what was read.
    let c = annotations(&[("a", None), ("c", Some("3"))]);
    state.annotate(&web, &c).await.expect("annotate");
    assert_eq!(
        read_json(&dir.path().join("pods.json")),
        serde_json::json!({"default/web": {"b": "2", "c": "3"}})
    );
}

#[tokio::test]
async fn state_dir_refuses_a_corrupt_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("nodes.json"), "{\"node1\": 3}").expect("write");
    match StateDir::open(dir.path()) {
        Err(SinkError::File { path, .. }) => assert_eq!(path, dir.path().join("nodes.json")),
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_never_sees_a_partial_annotations_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = StateDir::open(dir.path()).expect("open");
    let path = dir.path().join("pods.json");
    let done = Arc::new(AtomicBool::new(false));

    let reader = {
        let done = Arc::clone(&done);
        let path = path.clone();
        std::thread::spawn(move || {
            let mut reads = 0_u32;
            while !done.load(Ordering::Relaxed) {
                match fs::read(&path) {
                    Ok(bytes) => {
                        if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                            return Err(format!("a partial file ({} bytes): {e}", bytes.len()));
                        }
                        reads += 1;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(reads)
        })
    };

    // Large files (up to half a megabyte), so a plain write would be seen half done.
    let big = "x".repeat(16 * 1024);
    for i in 0..30 {
        let pod = ObjectRef::namespaced(Kind::Pod, "default", format!("pod-{i}"));
        let a = annotations(&[("big", Some(&big)), ("i", Some(&i.to_string()))]);
        state.annotate(&pod, &a).await.expect("annotate");
    }
    done.store(true, Ordering::Relaxed);
    let reads = reader
        .join()
        .expect("reader thread")
        .expect("whole files only");
    println!("{reads} whole reads");
    assert_eq!(read_json(&path).as_object().map(|o| o.len()), Some(30));
}

#[tokio::test]
async fn events_are_appended_as_json_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = StateDir::open(dir.path()).expect("open");
    let web = ObjectRef::namespaced(Kind::Pod, "default", "web");
    state
        .event(&ObjectEvent {
            object: web.clone(),
            type_: EventType::Warning,
            reason: "BadAnnotation".to_owned(),
            message: r#"pod default/web: annotation ovn.kubernetes.io/egress_rate="10M": unknown unit "M" (write a plain number of Mbit/s)"#.to_owned(),
        })
        .await
        .expect("event");
    state
        .event(&ObjectEvent {
            object: ObjectRef::cluster(Kind::Node, "node1"),
            type_: EventType::Normal,
            reason: "GatewayReady".to_owned(),
            message: "node node1 is a gateway".to_owned(),
        })
        .await
        .expect("event");

    let text = fs::read_to_string(dir.path().join("events.jsonl")).expect("read");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["object"], "Pod default/web");
    assert_eq!(lines[0]["type"], "Warning");
    assert_eq!(lines[0]["reason"], "BadAnnotation");
    assert_eq!(
        lines[0]["message"],
        r#"pod default/web: annotation ovn.kubernetes.io/egress_rate="10M": unknown unit "M" (write a plain number of Mbit/s)"#
    );
    assert_eq!(lines[1]["object"], "Node node1");
    assert_eq!(lines[1]["type"], "Normal");
    for line in &lines {
        let time = line["time"].as_str().expect("a time");
        let parsed: k8s_openapi::jiff::Timestamp = time.parse().expect("RFC 3339");
        // `2025-01-02T03:04:05.678Z`: UTC, milliseconds.
        assert!(time.ends_with('Z') && time.len() == 24, "{time}");
        assert!(parsed.as_second() > 1_600_000_000, "{time}");
    }
    // Keys in the documented order.
    assert!(text.starts_with(r#"{"time":"#), "{text}");
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
