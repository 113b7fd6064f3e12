//! `controller::kubeapi` at the HTTP boundary: a kube-rs client over a mock service, and a
//! scripted API server (`kubeapi_common`) that checks what the client sends and answers with
//! Kubernetes JSON. Every wait is bounded, so a broken test fails instead of hanging; nothing
//! asserts on timing.

mod kubeapi_common;

use futures::StreamExt;
use futures::stream::BoxStream;
use kube::Resource;
use kube::runtime::watcher;
use ovnkit_kube::controller::kubeapi::{ConnectError, KubeSource, client_from_kubeconfig};
use ovnkit_kube::controller::source::{Kind, ObjectSource, SourceError, WatchEvent};
use tokio::sync::mpsc;

use kubeapi_common::{
    bookmark, error_event, event, list, mock_client, namespace, node, pod, within,
};

type Item<K> = Result<WatchEvent<K>, SourceError>;

/// Polls `stream` in a task of its own, as the controller does, and hands over its items.
fn drive<K: Send + 'static>(
    mut stream: BoxStream<'static, Item<K>>,
) -> mpsc::UnboundedReceiver<Item<K>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(item) = stream.next().await {
            if tx.send(item).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next `n` items.
async fn next_n<K>(items: &mut mpsc::UnboundedReceiver<Item<K>>, n: usize) -> Vec<Item<K>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let item = within("the next watch event", items.recv())
            .await
            .expect("the stream ended");
        out.push(item);
    }
    out
}

/// `Init`, `InitApply(name)`, `InitDone`, `Apply(name)`, `Delete(name)`, `Err(Kind)`.
fn describe<K: Resource>(item: &Item<K>) -> String
where
    WatchEvent<K>: std::fmt::Display,
{
    match item {
        Ok(event) => event.to_string(),
        Err(SourceError::Watch { kind, .. }) => format!("Err({kind})"),
        Err(other) => format!("Err({other})"),
    }
}

fn describe_all<K: Resource>(items: &[Item<K>]) -> Vec<String>
where
    WatchEvent<K>: std::fmt::Display,
{
    items.iter().map(describe).collect()
}

/// The watcher error inside a [`SourceError::Watch`] of `kind`.
#[track_caller]
fn watch_error<K: std::fmt::Debug>(item: &Item<K>, kind: Kind) -> &watcher::Error {
    match item {
        Err(SourceError::Watch { kind: k, source }) if *k == kind => source,
        other => panic!("expected a watch error on {kind}s, got {other:?}"),
    }
}

/// Nothing more came out of the stream.
#[track_caller]
fn assert_quiet<K: std::fmt::Debug>(items: &mut mpsc::UnboundedReceiver<Item<K>>) {
    if let Ok(item) = items.try_recv() {
        panic!("unexpected item {item:?}");
    }
}

// ---- watching ----

#[tokio::test]
async fn namespaces_are_listed_in_pages_then_watched_from_the_lists_version() {
    let (client, mut api) = mock_client();
    let mut items = drive(
        KubeSource::from_client(client)
            .with_page_size(2)
            .namespaces(),
    );

    within("the list and the watch", async {
        let first = api.next().await.expect_list("/api/v1/namespaces");
        assert_eq!(first.query("limit"), Some("2"));
        assert_eq!(first.query("continue"), None);
        // A consistent read: no resourceVersion=0 (served from the cache, maybe stale).
        assert_eq!(first.query("resourceVersion"), None);
        first.ok(&list(
            "NamespaceList",
            "10",
            Some("page-2"),
            &[namespace("default", "1"), namespace("kube-system", "2")],
        ));

        let second = api.next().await.expect_list("/api/v1/namespaces");
        assert_eq!(second.query("limit"), Some("2"));
        assert_eq!(second.query("continue"), Some("page-2"));
        second.ok(&list("NamespaceList", "10", None, &[namespace("web", "7")]));

        let watch = api.next().await.expect_watch("/api/v1/namespaces", "10");
        assert_eq!(watch.query("timeoutSeconds"), Some("290"));
        assert_eq!(watch.header("accept-encoding"), Some("identity"));
        watch.watch_events(&[
            event("ADDED", &namespace("db", "11")),
            event("MODIFIED", &namespace("web", "12")),
            event("DELETED", &namespace("db", "13")),
            bookmark("Namespace", "15"),
        ]);

        // The server ended the watch: resumed from the bookmark's version, no new list.
        api.next()
            .await
            .expect_watch("/api/v1/namespaces", "15")
            .hold();
    })
    .await;

    let seen = next_n(&mut items, 8).await;
    assert_eq!(
        describe_all(&seen),
        [
            "Init",
            "InitApply(default)",
            "InitApply(kube-system)",
            "InitApply(web)",
            "InitDone",
            "Apply(db)",
            "Apply(web)",
            "Delete(db)",
        ]
    );
    let Ok(WatchEvent::Apply(web)) = &seen[6] else {
        unreachable!()
    };
    assert_eq!(web.metadata.uid.as_deref(), Some("uid-web"));
    assert_eq!(web.metadata.resource_version.as_deref(), Some("12"));
    assert_quiet(&mut items);
}

#[tokio::test]
async fn pods_are_watched_in_every_namespace() {
    let (client, mut api) = mock_client();
    let mut items = drive(KubeSource::from_client(client).pods());

    within("the list and the watch", async {
        let first = api.next().await.expect_list("/api/v1/pods");
        assert_eq!(first.query("limit"), Some("500"));
        first.ok(&list(
            "PodList",
            "40",
            None,
            &[pod("web", "frontend", "31"), pod("db", "postgres", "32")],
        ));
        api.next()
            .await
            .expect_watch("/api/v1/pods", "40")
            .watch_events(&[
                event("ADDED", &pod("batch", "job-1", "41")),
                event("DELETED", &pod("web", "frontend", "42")),
            ]);
        api.next().await.expect_watch("/api/v1/pods", "42").hold();
    })
    .await;

    let seen = next_n(&mut items, 6).await;
    assert_eq!(
        describe_all(&seen),
        [
            "Init",
            "InitApply(frontend)",
            "InitApply(postgres)",
            "InitDone",
            "Apply(job-1)",
            "Delete(frontend)",
        ]
    );
    let namespaces: Vec<_> = seen
        .iter()
        .filter_map(|item| match item {
            Ok(WatchEvent::InitApply(p) | WatchEvent::Apply(p) | WatchEvent::Delete(p)) => {
                p.metadata.namespace.clone()
            }
            _ => None,
        })
        .collect();
    assert_eq!(namespaces, ["web", "db", "batch", "web"]);
    let Ok(WatchEvent::Apply(job)) = &seen[4] else {
        unreachable!()
    };
    let spec = job.spec.as_ref().expect("a spec");
    assert_eq!(spec.node_name.as_deref(), Some("node1"));
    assert_quiet(&mut items);
}

#[tokio::test]
async fn nodes_are_listed_and_watched() {
    let (client, mut api) = mock_client();
    let mut items = drive(KubeSource::from_client(client).nodes());

    within("the list and the watch", async {
        api.next().await.expect_list("/api/v1/nodes").ok(&list(
            "NodeList",
            "100",
            None,
            &[node("node1", "90")],
        ));
        api.next()
            .await
            .expect_watch("/api/v1/nodes", "100")
            .watch_events(&[
                event("ADDED", &node("node2", "101")),
                event("MODIFIED", &node("node1", "102")),
                event("DELETED", &node("node2", "103")),
            ]);
        api.next().await.expect_watch("/api/v1/nodes", "103").hold();
    })
    .await;

    let seen = next_n(&mut items, 6).await;
    assert_eq!(
        describe_all(&seen),
        [
            "Init",
            "InitApply(node1)",
            "InitDone",
            "Apply(node2)",
            "Apply(node1)",
            "Delete(node2)",
        ]
    );
    assert_quiet(&mut items);
}

#[tokio::test]
async fn a_410_gone_watch_event_starts_over_with_a_new_list() {
    let (client, mut api) = mock_client();
    let mut items = drive(KubeSource::from_client(client).namespaces());

    within("list, watch, 410, list again", async {
        api.next().await.expect_list("/api/v1/namespaces").ok(&list(
            "NamespaceList",
            "10",
            None,
            &[namespace("web", "5")],
        ));
        api.next()
            .await
            .expect_watch("/api/v1/namespaces", "10")
            .watch_events(&[
                event("ADDED", &namespace("db", "11")),
                error_event(410, "Expired", "too old resource version: 11 (20)"),
            ]);
        let relist = api.next().await.expect_list("/api/v1/namespaces");
        assert_eq!(relist.query("resourceVersion"), None);
        relist.ok(&list(
            "NamespaceList",
            "20",
            None,
            &[namespace("web", "5"), namespace("cache", "19")],
        ));
        api.next()
            .await
            .expect_watch("/api/v1/namespaces", "20")
            .hold();
    })
    .await;

    let seen = next_n(&mut items, 9).await;
    assert_eq!(
        describe_all(&seen),
        [
            "Init",
            "InitApply(web)",
            "InitDone",
            "Apply(db)",
            "Err(Namespace)",
            "Init",
            "InitApply(web)",
            "InitApply(cache)",
            "InitDone",
        ]
    );
    assert!(
        matches!(
            watch_error(&seen[4], Kind::Namespace),
            watcher::Error::WatchError(status) if status.code == 410
        ),
        "{:?}",
        seen[4]
    );
    assert_quiet(&mut items);
}

#[tokio::test]
async fn a_watch_answered_with_http_410_starts_over_with_a_new_list() {
    let (client, mut api) = mock_client();
    let mut items = drive(KubeSource::from_client(client).pods());

    within("list, watch answered 410, list again", async {
        api.next().await.expect_list("/api/v1/pods").ok(&list(
            "PodList",
            "10",
            None,
            &[pod("web", "frontend", "5")],
        ));
        api.next().await.expect_watch("/api/v1/pods", "10").fail(
            410,
            "Expired",
            "too old resource version: 10 (30)",
        );
        // Not the same watch again (kube-runtime alone would retry it forever): a new list.
        api.next().await.expect_list("/api/v1/pods").ok(&list(
            "PodList",
            "30",
            None,
            &[pod("web", "backend", "29")],
        ));
        api.next().await.expect_watch("/api/v1/pods", "30").hold();
    })
    .await;

    let seen = next_n(&mut items, 7).await;
    assert_eq!(
        describe_all(&seen),
        [
            "Init",
            "InitApply(frontend)",
            "InitDone",
            "Err(Pod)",
            "Init",
            "InitApply(backend)",
            "InitDone",
        ]
    );
    assert!(
        matches!(
            watch_error(&seen[3], Kind::Pod),
            watcher::Error::WatchStartFailed(kube::Error::Api(status)) if status.code == 410
        ),
        "{:?}",
        seen[3]
    );
    assert_quiet(&mut items);
}

#[tokio::test]
async fn other_errors_are_reported_and_the_stream_goes_on() {
    let (client, mut api) = mock_client();
    let mut items = drive(KubeSource::from_client(client).nodes());

    within("a refused list, a failed watch, and their retries", async {
        api.next().await.expect_list("/api/v1/nodes").fail(
            403,
            "Forbidden",
            "nodes is forbidden: User \"ovnkit\" cannot list resource \"nodes\"",
        );
        api.next().await.expect_list("/api/v1/nodes").ok(&list(
            "NodeList",
            "50",
            None,
            &[node("node1", "49")],
        ));
        api.next().await.expect_watch("/api/v1/nodes", "50").fail(
            500,
            "InternalError",
            "etcdserver: leader changed",
        );
        // Not a 410: the same watch again, no new list.
        api.next()
            .await
            .expect_watch("/api/v1/nodes", "50")
            .watch_events(&[event("MODIFIED", &node("node1", "51"))]);
        api.next().await.expect_watch("/api/v1/nodes", "51").hold();
    })
    .await;

    let seen = next_n(&mut items, 7).await;
    assert_eq!(
        describe_all(&seen),
        [
            "Init",
            "Err(Node)",
            "Init",
            "InitApply(node1)",
            "InitDone",
            "Err(Node)",
            "Apply(node1)",
        ]
    );
    assert!(
        matches!(
            watch_error(&seen[1], Kind::Node),
            watcher::Error::InitialListFailed(kube::Error::Api(status)) if status.code == 403
        ),
        "{:?}",
        seen[1]
    );
    assert!(
        matches!(
            watch_error(&seen[5], Kind::Node),
            watcher::Error::WatchStartFailed(kube::Error::Api(status)) if status.code == 500
        ),
        "{:?}",
        seen[5]
    );
    assert_quiet(&mut items);
}

// ---- constructors ----

const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: http://127.0.0.1:6443
contexts:
- name: lab
  context:
    cluster: lab
    user: ovnkit
    namespace: kube-system
current-context: lab
users:
- name: ovnkit
  user:
    token: not-a-real-token
"#;

#[tokio::test]
async fn clients_are_made_from_a_kubeconfig_file() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, KUBECONFIG).expect("kubeconfig written");

    let client = client_from_kubeconfig(&path).await.expect("a client");
    assert_eq!(client.default_namespace(), "kube-system");
    KubeSource::from_kubeconfig(&path).await.expect("a source");
}

#[tokio::test]
async fn a_missing_kubeconfig_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("no-such-kubeconfig");
    let error = KubeSource::from_kubeconfig(&path)
        .await
        .expect_err("no kubeconfig there");
    assert!(
        matches!(&error, ConnectError::Kubeconfig { path: named, .. } if *named == path),
        "{error:?}"
    );
    assert!(error.to_string().contains("no-such-kubeconfig"), "{error}");
}
