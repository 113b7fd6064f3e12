//! Where the controller's objects come from and where its results go: the two IO edges of the
//! controller, each with two implementations that behave the same (a Kubernetes API server
//! through kube-rs, and a directory of manifests with a state directory).
//!
//! - [`ObjectSource`]: streams of [`WatchEvent`]s for Namespaces, Pods, Nodes, Services,
//!   EndpointSlices and NetworkPolicies (kube-runtime's
//!   watcher events: an initial listing framed by `Init`/`InitDone`, then `Apply` and `Delete`;
//!   a relist, after a `410 Gone` or a restart, is a new initial listing).
//! - [`StatusSink`]: the annotations the controller writes back on objects (Kube-OVN's output
//!   keys) and the events it reports (a bad annotation, a conflict), naming the object.

use std::collections::BTreeMap;
use std::fmt;

use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;

/// kube-runtime's watcher event, the one event type of every source.
pub use kube::runtime::watcher::Event as WatchEvent;

/// The kinds of object the controller watches and writes back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `v1/Namespace`.
    Namespace,
    /// `v1/Pod`.
    Pod,
    /// `v1/Node`.
    Node,
    /// `v1/Service`.
    Service,
    /// `discovery.k8s.io/v1/EndpointSlice`.
    EndpointSlice,
    /// `networking.k8s.io/v1/NetworkPolicy`.
    NetworkPolicy,
}

impl Kind {
    /// The Kubernetes kind.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Pod => "Pod",
            Kind::Node => "Node",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::NetworkPolicy => "NetworkPolicy",
        }
    }
}

impl Kind {
    /// Whether objects of the kind live in a namespace.
    #[must_use]
    pub const fn is_namespaced(self) -> bool {
        !matches!(self, Kind::Namespace | Kind::Node)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An object by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace (`None` for cluster-scoped kinds).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Its UID, when known (Kubernetes Events refer to it).
    pub uid: Option<String>,
}

impl ObjectRef {
    /// A namespaced object.
    pub fn namespaced(kind: Kind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectRef {
            kind,
            namespace: Some(namespace.into()),
            name: name.into(),
            uid: None,
        }
    }

    /// A cluster-scoped object.
    pub fn cluster(kind: Kind, name: impl Into<String>) -> Self {
        ObjectRef {
            kind,
            namespace: None,
            name: name.into(),
            uid: None,
        }
    }

    /// The same object with its UID.
    #[must_use]
    pub fn with_uid(mut self, uid: impl Into<String>) -> Self {
        self.uid = Some(uid.into());
        self
    }
}

impl fmt::Display for ObjectRef {
    /// `Pod default/web`, `Node node1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Why a source stopped or an event could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The Kubernetes watcher failed (it retries on its own; this is reported for the log).
    #[error("watching {kind}s")]
    Watch {
        /// The kind watched.
        kind: Kind,
        /// The watcher's error.
        #[source]
        source: Box<kube::runtime::watcher::Error>,
    },
    /// A manifest file could not be read or parsed; its objects are left as they were.
    #[error("manifest {path}")]
    Manifest {
        /// The file.
        path: std::path::PathBuf,
        /// What was wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Streams of the watched objects.
pub trait ObjectSource: Send + Sync {
    /// Namespaces.
    fn namespaces(&self) -> BoxStream<'static, Result<WatchEvent<Namespace>, SourceError>>;
    /// Pods of every namespace.
    fn pods(&self) -> BoxStream<'static, Result<WatchEvent<Pod>, SourceError>>;
    /// Nodes.
    fn nodes(&self) -> BoxStream<'static, Result<WatchEvent<Node>, SourceError>>;
    /// Services of every namespace.
    fn services(&self) -> BoxStream<'static, Result<WatchEvent<Service>, SourceError>>;
    /// EndpointSlices of every namespace.
    fn endpoint_slices(&self)
    -> BoxStream<'static, Result<WatchEvent<EndpointSlice>, SourceError>>;
    /// NetworkPolicies of every namespace.
    fn network_policies(
        &self,
    ) -> BoxStream<'static, Result<WatchEvent<NetworkPolicy>, SourceError>>;
}

/// How serious a reported event is (Kubernetes Event `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

/// An event about an object: a bad annotation, a conflict, an address that could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEvent {
    /// The object.
    pub object: ObjectRef,
    /// Normal or warning.
    pub type_: EventType,
    /// A short CamelCase reason (`BadAnnotation`, `AddressConflict`, ...).
    pub reason: String,
    /// The message: names the object, the key and why.
    pub message: String,
}

/// Why a result could not be written back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The API server refused or could not be reached.
    #[error("writing back to {object}")]
    Api {
        /// The object.
        object: ObjectRef,
        /// The client's error.
        #[source]
        source: Box<kube::Error>,
    },
    /// A status file could not be written.
    #[error("writing {path}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// Where the controller's results go.
#[async_trait::async_trait]
pub trait StatusSink: Send + Sync {
    /// Sets `annotations` on `object` (a `None` value removes the key); other annotations stay.
    async fn annotate(
        &self,
        object: &ObjectRef,
        annotations: &BTreeMap<String, Option<String>>,
    ) -> Result<(), SinkError>;

    /// Sets the annotations of many objects (what one reconcile step wrote back); the objects
    /// that could not be annotated come back with why. One [`StatusSink::annotate`] each
    /// unless the sink does better (a state directory writes each file once).
    async fn annotate_all(
        &self,
        items: &[(ObjectRef, BTreeMap<String, Option<String>>)],
    ) -> Vec<(ObjectRef, SinkError)> {
        let mut failed = Vec::new();
        for (object, annotations) in items {
            if let Err(e) = self.annotate(object, annotations).await {
                failed.push((object.clone(), e));
            }
        }
        failed
    }

    /// Forgets what was written on an object that no longer exists. An API server drops a
    /// deleted object's annotations with it, so this does nothing by default; a state
    /// directory removes its entry.
    async fn forget(&self, object: &ObjectRef) -> Result<(), SinkError> {
        let _ = object;
        Ok(())
    }

    /// Reports `event`.
    async fn event(&self, event: &ObjectEvent) -> Result<(), SinkError>;
}
