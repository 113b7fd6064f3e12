//! The controller's two IO edges over a Kubernetes API server: [`KubeSource`] watches
//! Namespaces, Pods, Nodes, Services, EndpointSlices and NetworkPolicies, [`KubeStatus`]
//! writes annotations back and reports events.
//!
//! Both take a [`kube::Client`]: [`client_from_kubeconfig`] (a kubeconfig file, its current
//! context), [`client_from_env`] (`$KUBECONFIG` or `~/.kube/config`, else the in-cluster
//! service account), or any client (`from_client`, which the tests use with a mock service).
//!
//! ```no_run
//! use ovnkit_kube::controller::kubeapi::{KubeSource, KubeStatus, client_from_env};
//! use ovnkit_kube::controller::source::ObjectSource;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = client_from_env().await?;
//! let source = KubeSource::from_client(client.clone());
//! let status = KubeStatus::from_client(client).with_reporting_instance("ovnkit-controller-0");
//! let pods = source.pods(); // Init, InitApply.., InitDone, then Apply/Delete, for ever
//! # drop((pods, status));
//! # Ok(())
//! # }
//! ```
//!
//! # What goes over the wire
//!
//! **Watching**, one kube-runtime [`watcher()`](watcher::watcher) per kind (Pods in every
//! namespace):
//!
//! - a paginated list, `GET /api/v1/pods?limit=500`, then `&continue=<token>` while the list
//!   says there is more ([`KubeSource::with_page_size`]); the stream yields `Init`, one
//!   `InitApply` per object, `InitDone`;
//! - a watch from the list's `metadata.resourceVersion`, `GET /api/v1/pods?watch=true&
//!   timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=<rv>`, whose `ADDED` and
//!   `MODIFIED` events are yielded as `Apply` and `DELETED` as `Delete`; when the server ends
//!   the watch it is resumed from the last version seen (an object's or a `BOOKMARK`'s);
//! - a `410 Gone` (the history the watch asked for is compacted) starts over with a new list,
//!   which the stream yields as a new `Init` .. `InitDone`. The server says it either as an
//!   `ERROR` watch event with code 410 or by answering the watch request with HTTP 410;
//!   kube-runtime relists on the first and would retry the same `resourceVersion` forever on
//!   the second, so on the second this module starts a new watcher.
//!
//! Errors are yielded as [`SourceError::Watch`] and the stream goes on, after kube-runtime's
//! default backoff (from 0.8 s, doubling to 30 s, with jitter; reset after two quiet minutes).
//! The streams never end.
//!
//! **Annotations**: `PATCH /api/v1/namespaces/<ns>/pods/<name>?fieldManager=ovnkit-controller`
//! (`/api/v1/nodes/<name>`, `/api/v1/namespaces/<name>`), `Content-Type:
//! application/merge-patch+json`, body `{"metadata":{"annotations":{"<key>":"<value>",
//! "<removed key>":null}}}`, asking for the object's metadata back (not the whole object).
//! Other annotations are left alone. A `409 Conflict` is tried again, up to
//! [`CONFLICT_ATTEMPTS`] attempts in all, waiting [`CONFLICT_BACKOFF`] and then twice as long
//! each time; a `404 Not Found` means the object is gone, which is not an error (logged at debug
//! level); any other failure is returned as [`SinkError::Api`].
//!
//! **Events**: kube-runtime's [`Recorder`] posts an `events.k8s.io/v1` Event to
//! `POST /apis/events.k8s.io/v1/namespaces/<ns>/events` (`default` for Nodes and Namespaces,
//! which have no namespace), with `reportingController` [`REPORTING_CONTROLLER`], `regarding`
//! the object (`v1`, kind, namespace, name, uid), `type` `Normal` or `Warning`, the reason, the
//! message as `note` (cut to 1 kB, the API's limit) and action [`EVENT_ACTION`]. Like
//! client-go's recorder, it does not create an event again for the same object, type and
//! reason within six minutes: it patches the first one's `series` (count, last seen) and
//! keeps the first one's note.
//!
//! # Tests
//!
//! `kube/tests/kubeapi.rs` tests this module at the HTTP boundary, the way kube-rs tests
//! controllers: a [`kube::Client`] over a `tower_test` mock service, and a scripted API server
//! that checks each request (method, path, query, headers, body) and answers with Kubernetes
//! JSON (`v1` lists, newline-separated watch events, `Status` errors).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::events::{self, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tracing::debug;

use super::source::{
    EventType, Kind, ObjectEvent, ObjectRef, ObjectSource, SinkError, SourceError, StatusSink,
    WatchEvent,
};

/// The field manager named on every annotation patch.
pub const FIELD_MANAGER: &str = "ovnkit-controller";

/// The `reportingController` of every event.
pub const REPORTING_CONTROLLER: &str = "ovnkit-controller";

/// The `action` of every event.
pub const EVENT_ACTION: &str = "Reconcile";

/// Objects per page of a list, unless [`KubeSource::with_page_size`] says otherwise (the
/// page size of client-go's lists).
pub const DEFAULT_PAGE_SIZE: u32 = 500;

/// How many times an annotation patch is sent when the server keeps answering
/// `409 Conflict`.
pub const CONFLICT_ATTEMPTS: u32 = 5;

/// The wait before the first retry of a conflicting patch; each further retry waits twice as
/// long.
pub const CONFLICT_BACKOFF: Duration = Duration::from_millis(20);

/// The longest event note the API accepts, in bytes.
const NOTE_LIMIT: usize = 1024;

/// No Kubernetes client could be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The kubeconfig file could not be read, or its current context names no usable
    /// cluster or user.
    #[error("kubeconfig {}", path.display())]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The environment holds no configuration: no `$KUBECONFIG` or `~/.kube/config`, and
    /// not in a cluster (no `KUBERNETES_SERVICE_HOST` and service account token).
    #[error("no Kubernetes client configuration in the environment")]
    Environment(#[source] kube::config::InferConfigError),
    /// The configuration was read but no client could be built from it (TLS material, proxy,
    /// authentication).
    #[error("building a Kubernetes client")]
    Client(#[source] kube::Error),
}

/// A client for the cluster of the kubeconfig file at `path` (its current context).
///
/// # Errors
///
/// [`ConnectError::Kubeconfig`] if the file cannot be read or used, [`ConnectError::Client`]
/// if no client can be built from it.
pub async fn client_from_kubeconfig(path: impl AsRef<Path>) -> Result<Client, ConnectError> {
    let path = path.as_ref();
    let config = async {
        let kubeconfig = Kubeconfig::read_from(path)?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await
    }
    .await
    .map_err(|source| ConnectError::Kubeconfig {
        path: path.to_owned(),
        source,
    })?;
    Client::try_from(config).map_err(ConnectError::Client)
}

/// A client configured from the environment, as `kubectl` and [`Client::try_default`] find
/// it: `$KUBECONFIG` or `~/.kube/config`, else the in-cluster service account.
///
/// # Errors
///
/// [`ConnectError::Environment`] if there is no configuration, [`ConnectError::Client`] if
/// no client can be built from it.
pub async fn client_from_env() -> Result<Client, ConnectError> {
    let config = kube::Config::infer()
        .await
        .map_err(ConnectError::Environment)?;
    Client::try_from(config).map_err(ConnectError::Client)
}

/// Namespaces, Pods (of every namespace) and Nodes, watched on a Kubernetes API server.
#[derive(Clone)]
pub struct KubeSource {
    client: Client,
    config: watcher::Config,
}

impl KubeSource {
    /// Watches through `client`.
    #[must_use]
    pub fn from_client(client: Client) -> Self {
        KubeSource {
            client,
            config: watcher::Config::default().page_size(DEFAULT_PAGE_SIZE),
        }
    }

    /// Watches the cluster of a kubeconfig file (see [`client_from_kubeconfig`]).
    ///
    /// # Errors
    ///
    /// The file cannot be read or no client can be made from it.
    pub async fn from_kubeconfig(path: impl AsRef<Path>) -> Result<Self, ConnectError> {
        client_from_kubeconfig(path).await.map(Self::from_client)
    }

    /// Watches the cluster the environment names (see [`client_from_env`]).
    ///
    /// # Errors
    ///
    /// There is no configuration or no client can be made from it.
    pub async fn from_env() -> Result<Self, ConnectError> {
        client_from_env().await.map(Self::from_client)
    }

    /// Lists `page_size` objects per request (at least 1) instead of [`DEFAULT_PAGE_SIZE`].
    #[must_use]
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.config = self.config.page_size(page_size.max(1));
        self
    }

    fn watch<K>(
        &self,
        api: Api<K>,
        kind: Kind,
    ) -> BoxStream<'static, Result<WatchEvent<K>, SourceError>>
    where
        K: Resource + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
    {
        relisting_watcher(api, self.config.clone())
            .default_backoff()
            .map_err(move |source| SourceError::Watch {
                kind,
                source: Box::new(source),
            })
            .boxed()
    }
}

impl fmt::Debug for KubeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeSource")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ObjectSource for KubeSource {
    fn namespaces(&self) -> BoxStream<'static, Result<WatchEvent<Namespace>, SourceError>> {
        self.watch(Api::all(self.client.clone()), Kind::Namespace)
    }

    fn pods(&self) -> BoxStream<'static, Result<WatchEvent<Pod>, SourceError>> {
        self.watch(Api::all(self.client.clone()), Kind::Pod)
    }

    fn nodes(&self) -> BoxStream<'static, Result<WatchEvent<Node>, SourceError>> {
        self.watch(Api::all(self.client.clone()), Kind::Node)
    }

    fn services(&self) -> BoxStream<'static, Result<WatchEvent<Service>, SourceError>> {
        self.watch(Api::all(self.client.clone()), Kind::Service)
    }

    fn endpoint_slices(
        &self,
    ) -> BoxStream<'static, Result<WatchEvent<EndpointSlice>, SourceError>> {
        self.watch(Api::all(self.client.clone()), Kind::EndpointSlice)
    }

    fn network_policies(
        &self,
    ) -> BoxStream<'static, Result<WatchEvent<NetworkPolicy>, SourceError>> {
        self.watch(Api::all(self.client.clone()), Kind::NetworkPolicy)
    }
}

type WatcherStream<K> = BoxStream<'static, Result<WatchEvent<K>, watcher::Error>>;

/// kube-runtime's watcher, started again (from a new list) when a watch request is answered
/// with HTTP 410 Gone: the version it resumes from is gone, and the watcher itself would
/// retry it forever.
fn relisting_watcher<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = Result<WatchEvent<K>, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
{
    stream::unfold(
        (api, config, None::<WatcherStream<K>>),
        |(api, config, current)| async move {
            let mut current =
                current.unwrap_or_else(|| watcher::watcher(api.clone(), config.clone()).boxed());
            let item = current.next().await?;
            let gone = matches!(
                &item,
                Err(watcher::Error::WatchStartFailed(kube::Error::Api(status)))
                    if status.code == 410
            );
            if gone {
                debug!(
                    url = api.resource_url(),
                    "watch answered 410 Gone; listing again"
                );
            }
            Some((item, (api, config, (!gone).then_some(current))))
        },
    )
}

/// Annotations and events written to a Kubernetes API server.
#[derive(Clone)]
pub struct KubeStatus {
    client: Client,
    reporter: Reporter,
    recorder: Recorder,
}

impl KubeStatus {
    /// Writes through `client`; events name [`REPORTING_CONTROLLER`] as their reporting
    /// controller and instance.
    #[must_use]
    pub fn from_client(client: Client) -> Self {
        let reporter = Reporter {
            controller: REPORTING_CONTROLLER.to_owned(),
            instance: None,
        };
        let recorder = Recorder::new(client.clone(), reporter.clone());
        KubeStatus {
            client,
            reporter,
            recorder,
        }
    }

    /// Writes to the cluster of a kubeconfig file (see [`client_from_kubeconfig`]).
    ///
    /// # Errors
    ///
    /// The file cannot be read or no client can be made from it.
    pub async fn from_kubeconfig(path: impl AsRef<Path>) -> Result<Self, ConnectError> {
        client_from_kubeconfig(path).await.map(Self::from_client)
    }

    /// Writes to the cluster the environment names (see [`client_from_env`]).
    ///
    /// # Errors
    ///
    /// There is no configuration or no client can be made from it.
    pub async fn from_env() -> Result<Self, ConnectError> {
        client_from_env().await.map(Self::from_client)
    }

    /// Names `instance` (a pod name, say) as the `reportingInstance` of events, so replicas
    /// of the controller can be told apart.
    #[must_use]
    pub fn with_reporting_instance(mut self, instance: impl Into<String>) -> Self {
        self.reporter.instance = Some(instance.into());
        self.recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        self
    }

    /// Sends `patch` to `object`'s metadata, asking for its metadata back.
    async fn patch(
        &self,
        object: &ObjectRef,
        params: &PatchParams,
        patch: &Patch<serde_json::Value>,
    ) -> Result<(), kube::Error> {
        let client = self.client.clone();
        let name = &object.name;
        match object.kind {
            Kind::Namespace => Api::<Namespace>::all(client)
                .patch_metadata(name, params, patch)
                .await
                .map(drop),
            Kind::Node => Api::<Node>::all(client)
                .patch_metadata(name, params, patch)
                .await
                .map(drop),
            kind => {
                let Some(namespace) = &object.namespace else {
                    return Err(kube::Error::BuildRequest(
                        kube::core::request::Error::Validation(format!(
                            "{object} has no namespace"
                        )),
                    ));
                };
                match kind {
                    Kind::Service => Api::<Service>::namespaced(client, namespace)
                        .patch_metadata(name, params, patch)
                        .await
                        .map(drop),
                    Kind::EndpointSlice => Api::<EndpointSlice>::namespaced(client, namespace)
                        .patch_metadata(name, params, patch)
                        .await
                        .map(drop),
                    Kind::NetworkPolicy => Api::<NetworkPolicy>::namespaced(client, namespace)
                        .patch_metadata(name, params, patch)
                        .await
                        .map(drop),
                    _ => Api::<Pod>::namespaced(client, namespace)
                        .patch_metadata(name, params, patch)
                        .await
                        .map(drop),
                }
            }
        }
    }
}

impl fmt::Debug for KubeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeStatus")
            .field("reporter", &self.reporter)
            .finish_non_exhaustive()
    }
}

/// Whether `error` is the API server answering `code` (by the HTTP code or the status reason).
fn is_status(error: &kube::Error, code: u16, reason: &str) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code || status.reason == reason)
}

#[async_trait::async_trait]
impl StatusSink for KubeStatus {
    async fn annotate(
        &self,
        object: &ObjectRef,
        annotations: &BTreeMap<String, Option<String>>,
    ) -> Result<(), SinkError> {
        if annotations.is_empty() {
            return Ok(());
        }
        let patch = Patch::Merge(serde_json::json!({
            "metadata": { "annotations": annotations }
        }));
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        let mut wait = CONFLICT_BACKOFF;
        let mut attempt = 1;
        loop {
            let Err(error) = self.patch(object, &params, &patch).await else {
                return Ok(());
            };
            if is_status(&error, 404, "NotFound") {
                debug!(%object, "not annotated: the object is gone");
                return Ok(());
            }
            if is_status(&error, 409, "Conflict") && attempt < CONFLICT_ATTEMPTS {
                debug!(%object, attempt, "annotation patch conflicted; trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
                continue;
            }
            return Err(SinkError::Api {
                object: object.clone(),
                source: Box::new(error),
            });
        }
    }

    async fn event(&self, event: &ObjectEvent) -> Result<(), SinkError> {
        let object = &event.object;
        let regarding = ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some(object.kind.as_str().to_owned()),
            namespace: object.namespace.clone(),
            name: Some(object.name.clone()),
            uid: object.uid.clone(),
            ..ObjectReference::default()
        };
        let published = events::Event {
            type_: match event.type_ {
                EventType::Normal => events::EventType::Normal,
                EventType::Warning => events::EventType::Warning,
            },
            reason: event.reason.clone(),
            note: Some(truncate(&event.message, NOTE_LIMIT)),
            action: EVENT_ACTION.to_owned(),
            secondary: None,
        };
        self.recorder
            .publish(&published, &regarding)
            .await
            .map_err(|source| SinkError::Api {
                object: object.clone(),
                source: Box::new(source),
            })
    }
}

/// `text` cut to at most `limit` bytes (on a character boundary), ending in `...` if cut.
fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncate_keeps_short_text_and_cuts_on_a_character_boundary() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("0123456789", 10), "0123456789");
        assert_eq!(truncate("0123456789ab", 10), "0123456...");
        // 'é' is two bytes; the cut falls inside the third one and backs off.
        assert_eq!(truncate("éééééé", 8), "éé...");
    }
}
