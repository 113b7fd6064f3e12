//! Watching the directory: a [`Scanner`] turns successive reads of the directory into watcher
//! events for one kind, and [`watch`] drives it from `notify` events and a periodic rescan.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::parse::{self, DuplicateObject, Key, Object};
use crate::controller::source::{Kind, SourceError, WatchEvent};

/// How quickly changes are picked up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// After a `notify` event, how long to wait for more before rescanning.
    pub(crate) debounce: Duration,
    /// How often the directory is rescanned without a `notify` event.
    pub(crate) rescan: Duration,
    /// Whether to watch with `notify` at all.
    pub(crate) notify: bool,
}

/// A kind a manifest stream yields.
pub(crate) trait Watched: Clone + Send + Sync + 'static {
    const KIND: Kind;
    fn from_object(object: Object) -> Option<Self>;
    fn version(&self) -> Option<&str>;
}

macro_rules! watched {
    ($($kind:ident),* $(,)?) => {
        $(impl Watched for $kind {
            const KIND: Kind = Kind::$kind;
            fn from_object(object: Object) -> Option<Self> {
                match object {
                    Object::$kind(o) => Some(*o),
                    _ => None,
                }
            }
            fn version(&self) -> Option<&str> {
                self.metadata.resource_version.as_deref()
            }
        })*
    };
}

watched!(Namespace, Pod, Node, Service, EndpointSlice, NetworkPolicy);

type Item<K> = Result<WatchEvent<K>, SourceError>;

/// What was last seen of a file: its content's hash, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Content(u64),
    Unreadable(String),
}

#[derive(Debug)]
struct FileState<K> {
    seen: Seen,
    /// The objects of the kind from the last version of the file that parsed.
    objects: Vec<(Key, K)>,
}

/// The directory as last read, for one kind, and what the consumer has been told.
#[derive(Debug)]
pub(crate) struct Scanner<K> {
    dir: PathBuf,
    /// Why the directory could not be listed last time (reported once per change).
    dir_error: Option<String>,
    files: BTreeMap<PathBuf, FileState<K>>,
    /// Duplicate definitions already reported: the object, the file not used, the file used.
    duplicates: BTreeSet<(Key, PathBuf, PathBuf)>,
    /// Whether the initial listing was sent.
    listed: bool,
    /// The objects as sent to the consumer.
    shown: BTreeMap<Key, K>,
}

impl<K: Watched> Scanner<K> {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Scanner {
            dir,
            dir_error: None,
            files: BTreeMap::new(),
            duplicates: BTreeSet::new(),
            listed: false,
            shown: BTreeMap::new(),
        }
    }

    /// Whether the directory could be listed the last time.
    pub(crate) fn dir_readable(&self) -> bool {
        self.dir_error.is_none()
    }

    /// Reads the directory and returns what changed since the last call: the initial listing
    /// the first time the directory can be read, `Apply` and `Delete` after that, and an error
    /// for each file that changed and does not parse and for each new duplicate.
    pub(crate) fn rescan(&mut self) -> Vec<Item<K>> {
        let mut out = Vec::new();
        let paths = match manifest_files(&self.dir) {
            Ok(paths) => {
                self.dir_error = None;
                paths
            }
            Err(source) => {
                let text = source.to_string();
                if self.dir_error.as_ref() != Some(&text) {
                    self.dir_error = Some(text);
                    out.push(Err(SourceError::Manifest {
                        path: self.dir.clone(),
                        source: Box::new(source),
                    }));
                }
                return out;
            }
        };
        self.files.retain(|path, _| paths.contains(path));
        for path in paths {
            self.read_file(path, &mut out);
        }
        self.publish(&mut out);
        out
    }

    fn read_file(&mut self, path: PathBuf, out: &mut Vec<Item<K>>) {
        let text = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            // Removed between the listing and the read: gone.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.files.remove(&path);
                return;
            }
            Err(source) => {
                let seen = Seen::Unreadable(source.to_string());
                let state = self.files.entry(path.clone()).or_insert_with(|| FileState {
                    seen: Seen::Content(0),
                    objects: Vec::new(),
                });
                if state.seen != seen {
                    state.seen = seen;
                    out.push(Err(SourceError::Manifest {
                        path,
                        source: Box::new(source),
                    }));
                }
                return;
            }
        };
        let seen = Seen::Content(content_hash(&text));
        if self.files.get(&path).is_some_and(|s| s.seen == seen) {
            return;
        }
        let parsed = parse::parse(&text);
        let state = self.files.entry(path.clone()).or_insert_with(|| FileState {
            seen: seen.clone(),
            objects: Vec::new(),
        });
        state.seen = seen;
        match parsed {
            Ok(parsed) => {
                if !parsed.ignored.is_empty() {
                    tracing::debug!(
                        path = %path.display(),
                        stream = %K::KIND,
                        ignored = ?parsed.ignored,
                        "manifest: documents of kinds that are not watched were ignored"
                    );
                }
                state.objects = parsed
                    .objects
                    .into_iter()
                    .filter_map(|(key, object)| Some((key, K::from_object(object)?)))
                    .collect();
            }
            Err(source) => out.push(Err(SourceError::Manifest {
                path,
                source: Box::new(source),
            })),
        }
    }

    /// Merges the files (a later path wins) and sends what differs from what was sent.
    fn publish(&mut self, out: &mut Vec<Item<K>>) {
        let mut merged: BTreeMap<&Key, (&K, &Path)> = BTreeMap::new();
        let mut duplicates = BTreeSet::new();
        for (path, file) in &self.files {
            for (key, object) in &file.objects {
                if let Some((_, earlier)) = merged.insert(key, (object, path)) {
                    duplicates.insert((key.clone(), earlier.to_owned(), path.clone()));
                }
            }
        }
        for (key, first, second) in &duplicates {
            if !self
                .duplicates
                .contains(&(key.clone(), first.clone(), second.clone()))
            {
                out.push(Err(SourceError::Manifest {
                    path: second.clone(),
                    source: Box::new(DuplicateObject {
                        object: key.object_ref(),
                        first: first.clone(),
                        second: second.clone(),
                    }),
                }));
            }
        }
        self.duplicates = duplicates;

        if !self.listed {
            self.listed = true;
            out.push(Ok(WatchEvent::Init));
            for (key, (object, _)) in &merged {
                self.shown.insert((*key).clone(), (*object).clone());
                out.push(Ok(WatchEvent::InitApply((*object).clone())));
            }
            out.push(Ok(WatchEvent::InitDone));
            return;
        }
        let gone: Vec<Key> = self
            .shown
            .keys()
            .filter(|key| !merged.contains_key(key))
            .cloned()
            .collect();
        for key in gone {
            if let Some(object) = self.shown.remove(&key) {
                tracing::debug!(object = %key.object_ref(), "manifest: deleted");
                out.push(Ok(WatchEvent::Delete(object)));
            }
        }
        for (key, (object, _)) in merged {
            let changed = self
                .shown
                .get(key)
                .is_none_or(|shown| shown.version() != object.version());
            if changed {
                tracing::debug!(object = %key.object_ref(), "manifest: applied");
                self.shown.insert(key.clone(), object.clone());
                out.push(Ok(WatchEvent::Apply(object.clone())));
            }
        }
    }
}

/// The manifest files of `dir`, sorted: regular files (or links to them) named `*.yaml` or
/// `*.yml`, not hidden.
fn manifest_files(dir: &Path) -> io::Result<BTreeSet<PathBuf>> {
    let mut paths = BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let path = entry.path();
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            paths.insert(path);
        }
    }
    Ok(paths)
}

fn content_hash(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// The state of one stream.
struct Watch<K> {
    /// `None` while a scan runs on the blocking pool.
    scanner: Option<Scanner<K>>,
    timing: Timing,
    queue: VecDeque<Item<K>>,
    wake: Arc<Notify>,
    watcher: Option<notify::RecommendedWatcher>,
    /// Whether a failure to watch was logged as a warning already.
    watch_warned: bool,
    tick: Option<Interval>,
    started: bool,
}

/// The stream of `K` in `dir`: the initial listing, then changes. Watching starts on the first
/// poll and stops when the stream is dropped.
pub(crate) fn watch<K: Watched>(
    dir: PathBuf,
    timing: Timing,
) -> BoxStream<'static, Result<WatchEvent<K>, SourceError>> {
    let state = Watch {
        scanner: Some(Scanner::new(dir)),
        timing,
        queue: VecDeque::new(),
        wake: Arc::new(Notify::new()),
        watcher: None,
        watch_warned: false,
        tick: None,
        started: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.queue.pop_front() {
                return Some((item, st));
            }
            if st.started {
                st.wait().await;
            } else {
                // Watch first, then read: a change in between is not lost.
                st.started = true;
                st.start_watching();
            }
            st.scan().await?;
        }
    })
    .boxed()
}

impl<K: Watched> Watch<K> {
    fn dir(&self) -> Option<&Path> {
        self.scanner.as_ref().map(|s| s.dir.as_path())
    }

    fn start_watching(&mut self) {
        if !self.timing.notify {
            return;
        }
        let Some(dir) = self.dir().map(Path::to_path_buf) else {
            return;
        };
        let wake = Arc::clone(&self.wake);
        let handler = move |event: notify::Result<notify::Event>| match event {
            Ok(event) if is_read(&event.kind) => {}
            // An error (a queue overflow, say) may hide a change: rescan.
            Ok(_) | Err(_) => wake.notify_one(),
        };
        let watcher = notify::recommended_watcher(handler).and_then(|mut w| {
            w.watch(&dir, RecursiveMode::NonRecursive)?;
            Ok(w)
        });
        match watcher {
            Ok(w) => self.watcher = Some(w),
            Err(error) => {
                if self.watch_warned {
                    tracing::debug!(dir = %dir.display(), %error, "manifest: cannot watch");
                } else {
                    self.watch_warned = true;
                    tracing::warn!(
                        dir = %dir.display(),
                        %error,
                        "manifest: cannot watch the directory; rescanning periodically only"
                    );
                }
            }
        }
    }

    /// Waits for a `notify` event (and then the debounce delay) or the rescan period.
    async fn wait(&mut self) {
        let period = self.timing.rescan.max(Duration::from_millis(10));
        let tick = self.tick.get_or_insert_with(|| {
            let mut tick = tokio::time::interval_at(Instant::now() + period, period);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            tick
        });
        tokio::select! {
            () = self.wake.notified() => {
                tokio::time::sleep(self.timing.debounce).await;
                // Events during the delay are covered by the coming scan.
                let _ = self.wake.notified().now_or_never();
                tick.reset();
            }
            _ = tick.tick() => {}
        }
    }

    /// Rescans on the blocking pool and queues what changed; `None` if the runtime is
    /// shutting down.
    async fn scan(&mut self) -> Option<()> {
        let mut scanner = self.scanner.take()?;
        let joined = tokio::task::spawn_blocking(move || {
            let items = scanner.rescan();
            (scanner, items)
        })
        .await;
        let (scanner, items) = match joined {
            Ok(done) => done,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return None,
        };
        let readable = scanner.dir_readable();
        self.scanner = Some(scanner);
        self.queue.extend(items);
        if !readable {
            // A removed directory takes its watch with it; watch again once it is back.
            self.watcher = None;
        } else if self.watcher.is_none() {
            self.start_watching();
        }
        Some(())
    }
}

/// Events of reading, which the scanner itself causes.
fn is_read(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(
            AccessKind::Read
                | AccessKind::Open(_)
                | AccessKind::Close(AccessMode::Read | AccessMode::Execute)
        )
    )
}
