//! [`StateDir`]: the annotations and events of the controller, in files.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::controller::source::{EventType, Kind, ObjectEvent, ObjectRef, SinkError, StatusSink};

/// The annotations of one kind: object (`<namespace>/<name>` or `<name>`) -> key -> value.
type Annotations = BTreeMap<String, BTreeMap<String, String>>;

/// `<namespace>/<name>` or `<name>`: an object's entry in its kind's file.
fn key_of(object: &ObjectRef) -> String {
    match &object.namespace {
        Some(ns) => format!("{ns}/{}", object.name),
        None => object.name.clone(),
    }
}

/// Sets `annotations` on `object`'s entry (a `None` value removes the key; an entry left
/// empty goes).
fn set(map: &mut Annotations, object: &ObjectRef, annotations: &BTreeMap<String, Option<String>>) {
    let key = key_of(object);
    let entry = map.entry(key.clone()).or_default();
    for (k, v) in annotations {
        match v {
            Some(v) => {
                entry.insert(k.clone(), v.clone());
            }
            None => {
                entry.remove(k);
            }
        }
    }
    if entry.is_empty() {
        map.remove(&key);
    }
}

/// The file of events, one JSON object a line.
pub const EVENTS_FILE: &str = "events.jsonl";

/// The file of annotations of `kind`: `namespaces.json`, `pods.json`, `nodes.json`, ...
#[must_use]
pub const fn annotations_file(kind: Kind) -> &'static str {
    match kind {
        Kind::Namespace => "namespaces.json",
        Kind::Pod => "pods.json",
        Kind::Node => "nodes.json",
        Kind::Service => "services.json",
        Kind::EndpointSlice => "endpointslices.json",
        Kind::NetworkPolicy => "networkpolicies.json",
    }
}

const KINDS: [Kind; 6] = [
    Kind::Namespace,
    Kind::Pod,
    Kind::Node,
    Kind::Service,
    Kind::EndpointSlice,
    Kind::NetworkPolicy,
];

/// The annotations of one kind: in memory, and the file they are written to.
#[derive(Debug)]
struct KindFile {
    path: PathBuf,
    /// Held across a write of the file: one writer at a time, in order.
    write: tokio::sync::Mutex<()>,
    /// What the file holds.
    map: Mutex<Annotations>,
}

/// A directory the controller writes its results to instead of an API server: the annotations
/// it would set, one JSON file per kind, and the events it would report, as JSON lines. See
/// [the module](super) for the layout.
///
/// One process writes a state directory at a time; the annotations are read once, when it is
/// opened, and kept in memory.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    kinds: [KindFile; KINDS.len()],
    events: tokio::sync::Mutex<()>,
    temp_seq: AtomicU64,
}

impl StateDir {
    /// Opens (and creates, if need be) the state directory `dir` and reads the annotations
    /// written there before. Temporary files left by an interrupted write are removed.
    ///
    /// # Errors
    ///
    /// [`SinkError::File`] if the directory cannot be created or read, or an annotations file
    /// cannot be read or is not a JSON object of objects of strings.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, SinkError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| SinkError::File {
            path: dir.clone(),
            source,
        })?;
        remove_temp_files(&dir)?;
        let mut kinds = Vec::with_capacity(KINDS.len());
        for kind in KINDS {
            let path = dir.join(annotations_file(kind));
            let map = read_annotations(&path)?;
            kinds.push(KindFile {
                path,
                write: tokio::sync::Mutex::new(()),
                map: Mutex::new(map),
            });
        }
        let Ok(kinds) = <[KindFile; KINDS.len()]>::try_from(kinds) else {
            unreachable!("one file per kind");
        };
        Ok(StateDir {
            kinds,
            dir,
            events: tokio::sync::Mutex::new(()),
            temp_seq: AtomicU64::new(0),
        })
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The annotations written on an object (empty if none); `namespace` is `None` for
    /// Namespaces and Nodes.
    #[must_use]
    pub fn annotations(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> BTreeMap<String, String> {
        let key = match namespace {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_owned(),
        };
        let map = self
            .kind(kind)
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.get(&key).cloned().unwrap_or_default()
    }

    /// Every object of `kind` with annotations, by key (`<namespace>/<name>` or `<name>`).
    #[must_use]
    pub fn all_annotations(&self, kind: Kind) -> BTreeMap<String, BTreeMap<String, String>> {
        self.kind(kind)
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Changes the annotations of `kind` with `f`, and writes the file once if they changed.
    async fn change(&self, kind: Kind, f: impl FnOnce(&mut Annotations)) -> Result<(), SinkError> {
        let file = self.kind(kind);
        let _writing = file.write.lock().await;
        let mut map = file
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        f(&mut map);
        if *file.map.lock().unwrap_or_else(PoisonError::into_inner) == map {
            return Ok(());
        }
        let mut bytes = serde_json::to_vec_pretty(&map).map_err(|e| SinkError::File {
            path: file.path.clone(),
            source: e.into(),
        })?;
        bytes.push(b'\n');
        let path = file.path.clone();
        let temp = self.temp_path(&path);
        let dir = self.dir.clone();
        blocking(move || write_atomically(&dir, &temp, &path, &bytes))
            .await
            .map_err(|source| SinkError::File {
                path: file.path.clone(),
                source,
            })?;
        *file.map.lock().unwrap_or_else(PoisonError::into_inner) = map;
        Ok(())
    }

    fn kind(&self, kind: Kind) -> &KindFile {
        match kind {
            Kind::Namespace => &self.kinds[0],
            Kind::Pod => &self.kinds[1],
            Kind::Node => &self.kinds[2],
            Kind::Service => &self.kinds[3],
            Kind::EndpointSlice => &self.kinds[4],
            Kind::NetworkPolicy => &self.kinds[5],
        }
    }

    fn temp_path(&self, path: &Path) -> PathBuf {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let seq = self.temp_seq.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join(format!(".{name}.tmp.{}.{seq}", std::process::id()))
    }
}

#[async_trait::async_trait]
impl StatusSink for StateDir {
    async fn annotate(
        &self,
        object: &ObjectRef,
        annotations: &BTreeMap<String, Option<String>>,
    ) -> Result<(), SinkError> {
        self.change(object.kind, |map| {
            set(map, object, annotations);
        })
        .await
    }

    async fn annotate_all(
        &self,
        items: &[(ObjectRef, BTreeMap<String, Option<String>>)],
    ) -> Vec<(ObjectRef, SinkError)> {
        let mut failed = Vec::new();
        for kind in KINDS {
            let of_kind: Vec<_> = items.iter().filter(|(o, _)| o.kind == kind).collect();
            if of_kind.is_empty() {
                continue;
            }
            let result = self
                .change(kind, |map| {
                    for (object, annotations) in &of_kind {
                        set(map, object, annotations);
                    }
                })
                .await;
            if let Err(e) = result {
                // One file failed: every object of the kind is reported, with the error once.
                let mut e = Some(e);
                for (object, _) in of_kind {
                    let err = e.take().unwrap_or_else(|| SinkError::File {
                        path: self.kind(kind).path.clone(),
                        source: io::Error::other("the same write failed"),
                    });
                    failed.push((object.clone(), err));
                }
            }
        }
        failed
    }

    async fn forget(&self, object: &ObjectRef) -> Result<(), SinkError> {
        let key = key_of(object);
        self.change(object.kind, |map| {
            map.remove(&key);
        })
        .await
    }

    async fn event(&self, event: &ObjectEvent) -> Result<(), SinkError> {
        let object = event.object.to_string();
        let line = EventLine {
            time: now_rfc3339(),
            object: &object,
            type_: match event.type_ {
                EventType::Warning => "Warning",
                EventType::Normal => "Normal",
            },
            reason: &event.reason,
            message: &event.message,
        };
        let path = self.dir.join(EVENTS_FILE);
        let mut bytes = serde_json::to_vec(&line).map_err(|e| SinkError::File {
            path: path.clone(),
            source: e.into(),
        })?;
        bytes.push(b'\n');
        let _appending = self.events.lock().await;
        let target = path.clone();
        blocking(move || {
            let mut file = OpenOptions::new().create(true).append(true).open(&target)?;
            // One write of the whole line: with O_APPEND, lines of writers do not interleave.
            file.write_all(&bytes)
        })
        .await
        .map_err(|source| SinkError::File { path, source })
    }
}

/// One line of `events.jsonl`.
#[derive(Serialize)]
struct EventLine<'a> {
    time: String,
    object: &'a str,
    #[serde(rename = "type")]
    type_: &'static str,
    reason: &'a str,
    message: &'a str,
}

/// Now, as RFC 3339 in UTC with milliseconds: `2025-01-02T03:04:05.678Z`.
fn now_rfc3339() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let nanos = i32::try_from(since.subsec_millis() * 1_000_000).unwrap_or(0);
    match k8s_openapi::jiff::Timestamp::new(secs, nanos) {
        Ok(ts) => format!("{ts:.3}"),
        Err(_) => "1970-01-01T00:00:00.000Z".to_owned(),
    }
}

/// Runs file IO on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(io::Error::other(e)),
    }
}

/// Writes `bytes` to `temp` (in the same directory as `path`), flushes it to disk and renames
/// it over `path`: a reader sees the old file or the new one, never a part.
fn write_atomically(dir: &Path, temp: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let written = (|| {
        let mut file = File::create(temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(temp);
    }
    written?;
    // The rename is durable once the directory is; not every file system can sync one.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn read_annotations(path: &Path) -> Result<Annotations, SinkError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| SinkError::File {
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Annotations::new()),
        Err(source) => Err(SinkError::File {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Removes `.<file>.tmp.*` files an interrupted write left.
fn remove_temp_files(dir: &Path) -> Result<(), SinkError> {
    let entries = fs::read_dir(dir).map_err(|source| SinkError::File {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = KINDS
            .iter()
            .any(|&k| name.starts_with(&format!(".{}.tmp.", annotations_file(k))));
        if ours {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}
