//! The controller's object source over a Kubernetes API server: [`KubeSource`] watches
//! Namespaces, Pods and Nodes.
//!
//! It takes a [`kube::Client`]: [`client_from_kubeconfig`] (a kubeconfig file, its current
//! context), [`client_from_env`] (`$KUBECONFIG` or `~/.kube/config`, else the in-cluster
//! service account), or any client (`from_client`, which the tests use with a mock service).
//!
//! ```no_run
//! use ovnkit_kube::controller::kubeapi::{KubeSource, client_from_env};
//! use ovnkit_kube::controller::source::ObjectSource;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = client_from_env().await?;
//! let source = KubeSource::from_client(client);
//! let pods = source.pods(); // Init, InitApply.., InitDone, then Apply/Delete, for ever
//! # drop(pods);
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
//! # Tests
//!
//! `kube/tests/kubeapi.rs` tests this module at the HTTP boundary, the way kube-rs tests
//! controllers: a [`kube::Client`] over a `tower_test` mock service, and a scripted API server
//! that checks each request (method, path, query, headers) and answers with Kubernetes JSON
//! (`v1` lists, newline-separated watch events, `Status` errors).

use std::fmt;
use std::path::{Path, PathBuf};

use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tracing::debug;

use super::source::{Kind, ObjectSource, SourceError, WatchEvent};

/// Objects per page of a list, unless [`KubeSource::with_page_size`] says otherwise (the
/// page size of client-go's lists).
pub const DEFAULT_PAGE_SIZE: u32 = 500;

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
