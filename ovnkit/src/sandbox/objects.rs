//! The user's manifests: the default ones the binary carries, and a follower of a manifest
//! directory that reads it exactly as the controller does (the controller's
//! [`ManifestSource`]) and keeps the current objects while the files change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::Metadata;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use ovnkit_kube::controller::manifests::ManifestSource;
use ovnkit_kube::controller::source::{ObjectSource, SourceError, WatchEvent};
use tokio::sync::watch;

use super::world::{Objects, key};

/// The default manifests (`examples/cluster.yaml`).
pub const DEFAULT_MANIFESTS: &str = include_str!("../../../examples/cluster.yaml");

/// The file name the default manifests get in a directory.
pub const DEFAULT_FILE: &str = "cluster.yaml";

/// The current objects of a manifest directory, kept up to date by tasks that follow it.
#[derive(Debug)]
pub struct Follower {
    dir: PathBuf,
    shared: Arc<Mutex<State>>,
    changes: watch::Receiver<u64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct State {
    objects: Objects,
    /// Kinds whose first listing is complete.
    listed: usize,
    /// Errors not yet taken, deduplicated (each kind's stream reports a bad file).
    errors: Vec<String>,
}

const KINDS: usize = 5;

impl Follower {
    /// Starts following `dir` on the current tokio runtime and waits for the first listing
    /// of every kind (at most `within`). Fails when a file of the directory cannot be read or
    /// parsed then.
    pub async fn start(dir: &Path, within: Duration) -> Result<Follower> {
        let source = ManifestSource::open(dir)?;
        let shared = Arc::new(Mutex::new(State::default()));
        let (tx, changes) = watch::channel(0u64);
        let tx = Arc::new(tx);
        let tasks = vec![
            spawn(
                source.namespaces(),
                &shared,
                &tx,
                |o| &mut o.namespaces,
                |m| m.name.clone().unwrap_or_default(),
            ),
            spawn(source.pods(), &shared, &tx, |o| &mut o.pods, key),
            spawn(source.services(), &shared, &tx, |o| &mut o.services, key),
            spawn(
                source.endpoint_slices(),
                &shared,
                &tx,
                |o| &mut o.slices,
                key,
            ),
            spawn(
                source.network_policies(),
                &shared,
                &tx,
                |o| &mut o.policies,
                key,
            ),
        ];
        let follower = Follower {
            dir: dir.to_owned(),
            shared,
            changes,
            tasks,
        };
        let listed = async {
            let mut changes = follower.changes.clone();
            while follower.lock().listed < KINDS {
                if changes.changed().await.is_err() {
                    break;
                }
            }
        };
        if tokio::time::timeout(within, listed).await.is_err() {
            bail!(
                "reading the manifests in {} took over {within:?}",
                dir.display()
            );
        }
        let errors = follower.take_errors();
        if !errors.is_empty() {
            bail!(
                "the manifests in {} have errors:\n  {}",
                dir.display(),
                errors.join("\n  ")
            );
        }
        Ok(follower)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The objects now.
    pub fn objects(&self) -> Objects {
        self.lock().objects.clone()
    }

    /// The errors reported since the last call (bad files; their objects stay as they were).
    pub fn take_errors(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().errors)
    }

    /// Waits until the objects change (or an error is reported), then for `quiet` without a
    /// further change (an editor's save, or a tool writing several files, is one change).
    pub async fn changed(&mut self, quiet: Duration) {
        if self.changes.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        loop {
            match tokio::time::timeout(quiet, self.changes.changed()).await {
                Ok(Ok(())) => continue,
                _ => return,
            }
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn spawn<K>(
    mut stream: BoxStream<'static, Result<WatchEvent<K>, SourceError>>,
    shared: &Arc<Mutex<State>>,
    tx: &Arc<watch::Sender<u64>>,
    slot: fn(&mut Objects) -> &mut BTreeMap<String, K>,
    key_of: fn(&ObjectMeta) -> String,
) -> tokio::task::JoinHandle<()>
where
    K: Metadata<Ty = ObjectMeta> + Clone + PartialEq + Send + 'static,
{
    let shared = shared.clone();
    let tx = tx.clone();
    tokio::spawn(async move {
        let mut listing: Option<BTreeMap<String, K>> = None;
        while let Some(event) = stream.next().await {
            let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
            let changed = match event {
                Ok(WatchEvent::Init) => {
                    listing = Some(BTreeMap::new());
                    false
                }
                Ok(WatchEvent::InitApply(o)) => {
                    listing
                        .get_or_insert_with(BTreeMap::new)
                        .insert(key_of(o.metadata()), o);
                    false
                }
                Ok(WatchEvent::InitDone) => {
                    *slot(&mut state.objects) = listing.take().unwrap_or_default();
                    state.listed += 1;
                    true
                }
                Ok(WatchEvent::Apply(o)) => {
                    let map = slot(&mut state.objects);
                    let k = key_of(o.metadata());
                    let changed = map.get(&k) != Some(&o);
                    map.insert(k, o);
                    changed
                }
                Ok(WatchEvent::Delete(o)) => slot(&mut state.objects)
                    .remove(&key_of(o.metadata()))
                    .is_some(),
                Err(e) => {
                    let text = error_chain(&e);
                    if !state.errors.contains(&text) {
                        state.errors.push(text);
                    }
                    true
                }
            };
            drop(state);
            if changed {
                tx.send_modify(|n| *n += 1);
            }
        }
    })
}

/// An error with its causes: `manifest x.yaml: document 2 is not YAML: ...`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
