//! The manifest-directory mode of the controller: objects from a directory of YAML files
//! ([`ManifestSource`]), results into a state directory ([`StateDir`]). It is what the
//! controller runs on without an API server (`ovnkit sandbox`), and behaves as the Kubernetes
//! implementations of [`ObjectSource`] and
//! [`StatusSink`](crate::controller::source::StatusSink) do.
//!
//! # Manifests
//!
//! Every `*.yaml` and `*.yml` file directly in the directory (not hidden; links are followed)
//! is read, in path order. A file holds any number of documents separated by `---`; empty
//! documents are skipped and a `v1` `List` is expanded into its `items`. `v1` Namespaces, Pods,
//! Nodes and Services, `discovery.k8s.io/v1` EndpointSlices and `networking.k8s.io/v1`
//! NetworkPolicies are kept; documents of other kinds (Deployments, ConfigMaps, ...) are
//! skipped without error and logged at `debug`. A namespaced object without
//! `metadata.namespace` is in `default`.
//!
//! Objects are keyed by kind, namespace and name. Each gets a `metadata.uid` derived from its
//! key (the same in every run; a `uid` written in the manifest is kept) and a
//! `metadata.resourceVersion` that is a hash of the object, so it changes exactly when the
//! object does.
//!
//! Each stream starts with the initial listing (`Init`, an `InitApply` per object,
//! `InitDone`) and then yields `Apply` for a new or changed object and `Delete` for one no
//! longer in any file. The directory is rescanned after `notify` reports a change in it
//! (debounced) and periodically, because some file systems do not report changes. A file that
//! cannot be read or parsed is reported as [`SourceError::Manifest`] (with a
//! [`ManifestError`] or an IO error as its source) once per change of the file, and its
//! objects stay as they were. When two documents define the same object, the one in the later
//! file wins and a [`DuplicateObject`] error names both files. Watching stops when the
//! stream is dropped; each stream watches on its own.
//!
//! A file is read as it is when the scan runs: write files atomically (to a hidden temporary
//! file in the directory, then rename), as most editors and `kubectl`-like tools do, or a scan
//! that meets a half-written file sees it half written until the next scan.
//!
//! # The state directory
//!
//! ```text
//! state/
//!   namespaces.json   {"<name>": {"<annotation key>": "<value>", ...}, ...}
//!   pods.json         {"<namespace>/<name>": {...}, ...}
//!   nodes.json        {"<name>": {...}, ...}
//!   events.jsonl      one event a line:
//!                     {"time":"2025-01-02T03:04:05.678Z","object":"Pod default/web",
//!                      "type":"Warning","reason":"BadAnnotation","message":"..."}
//! ```
//!
//! An annotations file holds what the controller would have written back as annotations: an
//! annotation set to `None` is removed, and an object without annotations left is removed.
//! A file is replaced atomically (written to a temporary file in the same directory, synced,
//! renamed over the old one), so a reader sees the old content or the new, never a part.
//! The annotations are read when the directory is opened (so a restarted controller keeps
//! them) and then kept in memory; the entry of an object that no longer exists is removed
//! ([`StatusSink::forget`](crate::controller::source::StatusSink::forget)). Events are appended
//! (the controller also logs them). Writing many objects' annotations at once
//! ([`StatusSink::annotate_all`](crate::controller::source::StatusSink::annotate_all)) writes
//! each file once.
//!
//! # Tests
//!
//! `kube/tests/manifests.rs` runs both against temporary directories with plain tokio tests
//! (no root, no cluster): the initial listing, adding, editing and deleting documents and
//! files, malformed files and duplicates, waiting for each event with a timeout; and the state
//! directory's merging, atomic replacement, reopening and event lines.
//!
//! ```no_run
//! use futures::StreamExt;
//! use ovnkit_kube::controller::manifests::{ManifestSource, StateDir};
//! use ovnkit_kube::controller::source::{Kind, ObjectRef, ObjectSource, StatusSink, WatchEvent};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let source = ManifestSource::open("manifests")?;
//! let state = StateDir::open("state")?;
//! let mut pods = source.pods();
//! while let Some(event) = pods.next().await {
//!     match event {
//!         Ok(WatchEvent::InitApply(pod) | WatchEvent::Apply(pod)) => {
//!             let ns = pod.metadata.namespace.unwrap_or_default();
//!             let name = pod.metadata.name.unwrap_or_default();
//!             let pod = ObjectRef::namespaced(Kind::Pod, ns, name);
//!             let seen = [("example.org/seen".to_owned(), Some("true".to_owned()))];
//!             state.annotate(&pod, &seen.into()).await?;
//!         }
//!         Ok(WatchEvent::Delete(_) | WatchEvent::Init | WatchEvent::InitDone) => {}
//!         // A bad file: reported, its objects stay as they were.
//!         Err(error) => eprintln!("{error}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod parse;
mod status;
mod watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;

pub use self::parse::{DuplicateObject, Location, ManifestError};
pub use self::status::{EVENTS_FILE, StateDir, annotations_file};
use self::watch::{Timing, watch};
use crate::controller::source::{ObjectSource, SourceError, WatchEvent};

/// After a `notify` event, how long to wait for more before rescanning (an editor's save is
/// several events).
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(150);
/// How often the directory is rescanned when no `notify` event came.
pub const DEFAULT_RESCAN_INTERVAL: Duration = Duration::from_secs(2);

/// The watched kinds from a directory of manifests. See [the module](self).
#[derive(Debug, Clone)]
pub struct ManifestSource {
    dir: PathBuf,
    timing: Timing,
}

impl ManifestSource {
    /// The manifests of `dir`. The directory is read when a stream is first polled; until it
    /// can be read, the stream yields an error (once per different error) and no listing.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ManifestSource {
            dir: dir.into(),
            timing: Timing {
                debounce: DEFAULT_DEBOUNCE,
                rescan: DEFAULT_RESCAN_INTERVAL,
                notify: true,
            },
        }
    }

    /// The manifests of `dir`, which must be a directory that can be listed now.
    ///
    /// # Errors
    ///
    /// [`SourceError::Manifest`] naming `dir` if it cannot be listed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, SourceError> {
        let dir = dir.into();
        if let Err(source) = std::fs::read_dir(&dir) {
            return Err(SourceError::Manifest {
                path: dir,
                source: Box::new(source),
            });
        }
        Ok(Self::new(dir))
    }

    /// Sets how long to wait after a `notify` event for more before rescanning
    /// ([`DEFAULT_DEBOUNCE`]).
    #[must_use]
    pub fn with_debounce(mut self, debounce: Duration) -> Self {
        self.timing.debounce = debounce;
        self
    }

    /// Sets how often to rescan without a `notify` event ([`DEFAULT_RESCAN_INTERVAL`]; at least
    /// 10 ms).
    #[must_use]
    pub fn with_rescan_interval(mut self, interval: Duration) -> Self {
        self.timing.rescan = interval;
        self
    }

    /// Sets whether to watch the directory with `notify` (the default); without it, changes
    /// are picked up by the periodic rescan only (for file systems that report no changes).
    #[must_use]
    pub fn with_notify(mut self, notify: bool) -> Self {
        self.timing.notify = notify;
        self
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl ObjectSource for ManifestSource {
    fn namespaces(&self) -> BoxStream<'static, Result<WatchEvent<Namespace>, SourceError>> {
        watch(self.dir.clone(), self.timing)
    }

    fn pods(&self) -> BoxStream<'static, Result<WatchEvent<Pod>, SourceError>> {
        watch(self.dir.clone(), self.timing)
    }

    fn nodes(&self) -> BoxStream<'static, Result<WatchEvent<Node>, SourceError>> {
        watch(self.dir.clone(), self.timing)
    }

    fn services(&self) -> BoxStream<'static, Result<WatchEvent<Service>, SourceError>> {
        watch(self.dir.clone(), self.timing)
    }

    fn endpoint_slices(
        &self,
    ) -> BoxStream<'static, Result<WatchEvent<EndpointSlice>, SourceError>> {
        watch(self.dir.clone(), self.timing)
    }

    fn network_policies(
        &self,
    ) -> BoxStream<'static, Result<WatchEvent<NetworkPolicy>, SourceError>> {
        watch(self.dir.clone(), self.timing)
    }
}
