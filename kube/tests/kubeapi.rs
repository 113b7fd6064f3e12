//! `controller::kubeapi` at the HTTP boundary: a kube-rs client over a mock service, and a
//! scripted API server (`kubeapi_common`) that checks what the client sends and answers with
//! Kubernetes JSON. Every wait is bounded, so a broken test fails instead of hanging; nothing
//! asserts on timing.

mod kubeapi_common;

use std::collections::BTreeMap;

use futures::StreamExt;
use futures::future::join;
use futures::stream::BoxStream;
use kube::Resource;
use kube::runtime::watcher;
use ovnkit_kube::controller::kubeapi::{
    CONFLICT_ATTEMPTS, ConnectError, EVENT_ACTION, FIELD_MANAGER, KubeSource, KubeStatus,
    REPORTING_CONTROLLER, client_from_kubeconfig,
};
use ovnkit_kube::controller::source::{
    EventType, Kind, ObjectEvent, ObjectRef, ObjectSource, SinkError, SourceError, StatusSink,
    WatchEvent,
};
use serde_json::json;
use tokio::sync::mpsc;

use kubeapi_common::{
    MockApi, bookmark, error_event, event, list, mock_client, namespace, node, partial_metadata,
    pod, within,
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

// ---- annotations ----

fn pod_annotations() -> BTreeMap<String, Option<String>> {
    BTreeMap::from([
        (
            "ovn.kubernetes.io/ip_address".to_owned(),
            Some("10.16.0.5".to_owned()),
        ),
        (
            "ovn.kubernetes.io/mac_address".to_owned(),
            Some("00:00:00:0a:10:05".to_owned()),
        ),
        ("ovn.kubernetes.io/routed".to_owned(), None),
    ])
}

const POD_PATCH: &str = concat!(
    r#"{"metadata":{"annotations":{"#,
    r#""ovn.kubernetes.io/ip_address":"10.16.0.5","#,
    r#""ovn.kubernetes.io/mac_address":"00:00:00:0a:10:05","#,
    r#""ovn.kubernetes.io/routed":null}}}"#,
);

/// Takes the next request, checks it is the pod annotation patch, and returns it.
async fn expect_pod_patch(api: &mut MockApi) -> kubeapi_common::Request {
    let patch = api.next().await;
    assert_eq!(patch.method, "PATCH");
    assert_eq!(patch.path, "/api/v1/namespaces/web/pods/frontend");
    assert_eq!(
        patch.query,
        BTreeMap::from([("fieldManager".to_owned(), FIELD_MANAGER.to_owned())])
    );
    assert_eq!(
        patch.header("content-type"),
        Some("application/merge-patch+json")
    );
    assert_eq!(std::str::from_utf8(&patch.body).unwrap(), POD_PATCH);
    patch
}

#[tokio::test]
async fn annotations_are_a_merge_patch_naming_the_field_manager() {
    let (client, mut api) = mock_client();
    let status = KubeStatus::from_client(client);
    let frontend = ObjectRef::namespaced(Kind::Pod, "web", "frontend");

    let (result, ()) = within(
        "the patch",
        join(status.annotate(&frontend, &pod_annotations()), async {
            let patch = expect_pod_patch(&mut api).await;
            assert_eq!(FIELD_MANAGER, "ovnkit-controller");
            // Only the metadata comes back, not the whole pod.
            let accept = patch.header("accept").expect("an Accept header");
            assert!(accept.contains("as=PartialObjectMetadata"), "{accept}");
            assert_eq!(
                patch.json(),
                json!({"metadata": {"annotations": {
                    "ovn.kubernetes.io/ip_address": "10.16.0.5",
                    "ovn.kubernetes.io/mac_address": "00:00:00:0a:10:05",
                    "ovn.kubernetes.io/routed": null,
                }}})
            );
            patch.ok(&partial_metadata(&pod("web", "frontend", "12")));
        }),
    )
    .await;
    result.expect("annotated");
    assert!(api.try_next().is_none());
}

#[tokio::test]
async fn nodes_and_namespaces_are_patched_at_their_cluster_scoped_paths() {
    let (client, mut api) = mock_client();
    let status = KubeStatus::from_client(client);
    let annotations = BTreeMap::from([(
        "ovn.kubernetes.io/chassis".to_owned(),
        Some("6a3c1a7e-2d1b-4d47-8f2c-0b9e5c1f7a10".to_owned()),
    )]);

    let (result, ()) = within(
        "the node patch",
        join(
            status.annotate(&ObjectRef::cluster(Kind::Node, "node1"), &annotations),
            async {
                let patch = api.next().await;
                assert_eq!(
                    (patch.method.as_str(), patch.path.as_str()),
                    ("PATCH", "/api/v1/nodes/node1")
                );
                assert_eq!(patch.query("fieldManager"), Some(FIELD_MANAGER));
                assert_eq!(
                    patch.json(),
                    json!({"metadata": {"annotations": {
                        "ovn.kubernetes.io/chassis": "6a3c1a7e-2d1b-4d47-8f2c-0b9e5c1f7a10",
                    }}})
                );
                patch.ok(&partial_metadata(&node("node1", "7")));
            },
        ),
    )
    .await;
    result.expect("node annotated");

    let annotations = BTreeMap::from([(
        "ovn.kubernetes.io/logical_switch".to_owned(),
        Some("ovn-default".to_owned()),
    )]);
    let (result, ()) = within(
        "the namespace patch",
        join(
            status.annotate(&ObjectRef::cluster(Kind::Namespace, "web"), &annotations),
            async {
                let patch = api.next().await;
                assert_eq!(
                    (patch.method.as_str(), patch.path.as_str()),
                    ("PATCH", "/api/v1/namespaces/web")
                );
                assert_eq!(
                    patch.header("content-type"),
                    Some("application/merge-patch+json")
                );
                patch.ok(&partial_metadata(&namespace("web", "8")));
            },
        ),
    )
    .await;
    result.expect("namespace annotated");
}

#[tokio::test]
async fn a_conflicting_patch_is_sent_again_until_it_succeeds() {
    let (client, mut api) = mock_client();
    let status = KubeStatus::from_client(client);
    let frontend = ObjectRef::namespaced(Kind::Pod, "web", "frontend");

    let (result, ()) = within(
        "two conflicts, then the patch",
        join(status.annotate(&frontend, &pod_annotations()), async {
            for _ in 0..2 {
                expect_pod_patch(&mut api).await.fail(
                    409,
                    "Conflict",
                    "Operation cannot be fulfilled on pods \"frontend\": the object has been modified",
                );
            }
            expect_pod_patch(&mut api)
                .await
                .ok(&partial_metadata(&pod("web", "frontend", "14")));
        }),
    )
    .await;
    result.expect("annotated after two conflicts");
    assert!(api.try_next().is_none());
}

#[tokio::test]
async fn conflicts_are_retried_a_bounded_number_of_times() {
    let (client, mut api) = mock_client();
    let status = KubeStatus::from_client(client);
    let frontend = ObjectRef::namespaced(Kind::Pod, "web", "frontend");

    let (result, ()) = within(
        "conflicts until the patch gives up",
        join(status.annotate(&frontend, &pod_annotations()), async {
            for _ in 0..CONFLICT_ATTEMPTS {
                expect_pod_patch(&mut api).await.fail(
                    409,
                    "Conflict",
                    "the object has been modified",
                );
            }
        }),
    )
    .await;
    match result {
        Err(SinkError::Api { object, source }) => {
            assert_eq!(object, frontend);
            assert!(
                matches!(&*source, kube::Error::Api(status) if status.code == 409),
                "{source:?}"
            );
        }
        other => panic!("expected a conflict error, got {other:?}"),
    }
    assert!(api.try_next().is_none(), "no patch after the last attempt");
}

#[tokio::test]
async fn a_patch_of_a_gone_object_is_not_an_error() {
    let (client, mut api) = mock_client();
    let status = KubeStatus::from_client(client);
    let frontend = ObjectRef::namespaced(Kind::Pod, "web", "frontend");

    let (result, ()) = within(
        "the patch answered 404",
        join(status.annotate(&frontend, &pod_annotations()), async {
            expect_pod_patch(&mut api)
                .await
                .fail(404, "NotFound", "pods \"frontend\" not found");
        }),
    )
    .await;
    result.expect("a gone object is fine");
    assert!(api.try_next().is_none(), "a 404 is not retried");
}

#[tokio::test]
async fn other_patch_errors_are_returned_without_retrying() {
    let (client, mut api) = mock_client();
    let status = KubeStatus::from_client(client);
    let frontend = ObjectRef::namespaced(Kind::Pod, "web", "frontend");

    let (result, ()) = within(
        "the patch answered 403",
        join(status.annotate(&frontend, &pod_annotations()), async {
            expect_pod_patch(&mut api).await.fail(
                403,
                "Forbidden",
                "pods \"frontend\" is forbidden: User \"ovnkit\" cannot patch resource \"pods\"",
            );
        }),
    )
    .await;
    match result {
        Err(SinkError::Api { object, source }) => {
            assert_eq!(object, frontend);
            assert!(
                matches!(&*source, kube::Error::Api(status) if status.code == 403),
                "{source:?}"
            );
        }
        other => panic!("expected a forbidden error, got {other:?}"),
    }
    assert!(api.try_next().is_none());
}

#[tokio::test]
async fn no_annotations_send_no_request() {
    let (client, mut api) = mock_client();
    let status = KubeStatus::from_client(client);
    // Nobody answers: if a request went out, this would wait until the timeout.
    within(
        "an empty annotate",
        status.annotate(
            &ObjectRef::namespaced(Kind::Pod, "web", "frontend"),
            &BTreeMap::new(),
        ),
    )
    .await
    .expect("nothing to do");
    assert!(api.try_next().is_none());
}

#[tokio::test]
async fn a_pod_without_a_namespace_is_refused_without_a_request() {
    let (client, mut api) = mock_client();
    let status = KubeStatus::from_client(client);
    let result = within(
        "annotating a pod without a namespace",
        status.annotate(
            &ObjectRef::cluster(Kind::Pod, "frontend"),
            &pod_annotations(),
        ),
    )
    .await;
    match result {
        Err(SinkError::Api { source, .. }) => {
            assert!(
                matches!(*source, kube::Error::BuildRequest(_)),
                "{source:?}"
            );
        }
        other => panic!("expected a refused request, got {other:?}"),
    }
    assert!(api.try_next().is_none());
}

// ---- events ----

#[tokio::test]
async fn events_are_posted_with_the_reporter_and_the_object_reference() {
    let (client, mut api) = mock_client();
    let status = KubeStatus::from_client(client);
    let bad = ObjectEvent {
        object: ObjectRef::namespaced(Kind::Pod, "web", "frontend").with_uid("uid-frontend"),
        type_: EventType::Warning,
        reason: "BadAnnotation".to_owned(),
        message:
            "pod web/frontend: ovn.kubernetes.io/ip_address \"10.16.0.300\" is not an IP address"
                .to_owned(),
    };

    let (result, ()) = within(
        "the event",
        join(status.event(&bad), async {
            let post = api.next().await;
            assert_eq!(
                (post.method.as_str(), post.path.as_str()),
                ("POST", "/apis/events.k8s.io/v1/namespaces/web/events")
            );
            assert_eq!(post.header("content-type"), Some("application/json"));
            let body = post.json();
            assert_eq!(body["apiVersion"], "events.k8s.io/v1");
            assert_eq!(body["kind"], "Event");
            assert_eq!(body["metadata"]["namespace"], "web");
            let name = body["metadata"]["name"].as_str().expect("a name");
            assert!(name.starts_with("frontend."), "{name}");
            assert_eq!(body["reportingController"], REPORTING_CONTROLLER);
            assert_eq!(body["reportingInstance"], "ovnkit-controller");
            assert_eq!(
                body["regarding"],
                json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "namespace": "web",
                    "name": "frontend",
                    "uid": "uid-frontend",
                })
            );
            assert_eq!(body["type"], "Warning");
            assert_eq!(body["reason"], "BadAnnotation");
            assert_eq!(body["note"], bad.message.as_str());
            assert_eq!(body["action"], EVENT_ACTION);
            assert!(body["eventTime"].is_string(), "{body}");
            assert!(body.get("series").is_none(), "{body}");
            post.respond(201, &body);
        }),
    )
    .await;
    result.expect("event posted");
    assert!(api.try_next().is_none());
}

#[tokio::test]
async fn node_events_go_to_the_default_namespace_and_name_the_instance() {
    let (client, mut api) = mock_client();
    let status = KubeStatus::from_client(client).with_reporting_instance("ovnkit-controller-7d9f");
    let ready = ObjectEvent {
        object: ObjectRef::cluster(Kind::Node, "node1").with_uid("uid-node1"),
        type_: EventType::Normal,
        reason: "GatewayReady".to_owned(),
        message: "node node1: gateway chassis bound".to_owned(),
    };

    let (result, ()) = within(
        "the event",
        join(status.event(&ready), async {
            let post = api.next().await;
            assert_eq!(
                (post.method.as_str(), post.path.as_str()),
                ("POST", "/apis/events.k8s.io/v1/namespaces/default/events")
            );
            let body = post.json();
            assert_eq!(
                body["regarding"],
                json!({"apiVersion": "v1", "kind": "Node", "name": "node1", "uid": "uid-node1"})
            );
            assert_eq!(body["type"], "Normal");
            assert_eq!(body["reason"], "GatewayReady");
            assert_eq!(body["reportingController"], REPORTING_CONTROLLER);
            assert_eq!(body["reportingInstance"], "ovnkit-controller-7d9f");
            post.respond(201, &body);
        }),
    )
    .await;
    result.expect("event posted");
}

#[tokio::test]
async fn a_repeated_event_patches_the_first_ones_series() {
    let (client, mut api) = mock_client();
    let status = KubeStatus::from_client(client);
    let conflict = ObjectEvent {
        object: ObjectRef::namespaced(Kind::Pod, "web", "frontend").with_uid("uid-frontend"),
        type_: EventType::Warning,
        reason: "AddressConflict".to_owned(),
        message: "pod web/frontend: 10.16.0.5 is taken by web/backend".to_owned(),
    };

    let (result, first) = within(
        "the first event",
        join(status.event(&conflict), async {
            let post = api.next().await;
            assert_eq!(post.method, "POST");
            let body = post.json();
            post.respond(201, &body);
            body
        }),
    )
    .await;
    result.expect("first event posted");
    let name = first["metadata"]["name"]
        .as_str()
        .expect("a name")
        .to_owned();

    let (result, ()) = within(
        "the repeat",
        join(status.event(&conflict), async {
            let patch = api.next().await;
            assert_eq!(
                (patch.method.as_str(), patch.path.as_str()),
                (
                    "PATCH",
                    format!("/apis/events.k8s.io/v1/namespaces/web/events/{name}").as_str()
                )
            );
            assert_eq!(
                patch.header("content-type"),
                Some("application/merge-patch+json")
            );
            let body = patch.json();
            assert_eq!(body["series"]["count"], 2);
            assert!(body["series"]["lastObservedTime"].is_string(), "{body}");
            assert_eq!(body["note"], conflict.message.as_str());
            patch.ok(&body);
        }),
    )
    .await;
    result.expect("series patched");
}

#[tokio::test]
async fn long_notes_are_cut_to_the_apis_limit() {
    let (client, mut api) = mock_client();
    let status = KubeStatus::from_client(client);
    let long = ObjectEvent {
        object: ObjectRef::cluster(Kind::Namespace, "web"),
        type_: EventType::Warning,
        reason: "BadAnnotation".to_owned(),
        message: "x".repeat(5000),
    };
    let (result, ()) = within(
        "the event",
        join(status.event(&long), async {
            let post = api.next().await;
            let body = post.json();
            let note = body["note"].as_str().expect("a note");
            assert_eq!(note.len(), 1024);
            assert!(note.ends_with("..."));
            post.respond(201, &body);
        }),
    )
    .await;
    result.expect("event posted");
}

#[tokio::test]
async fn a_refused_event_is_an_error() {
    let (client, mut api) = mock_client();
    let status = KubeStatus::from_client(client);
    let event = ObjectEvent {
        object: ObjectRef::namespaced(Kind::Pod, "gone", "frontend"),
        type_: EventType::Warning,
        reason: "BadAnnotation".to_owned(),
        message: "pod gone/frontend: bad".to_owned(),
    };
    let (result, ()) = within(
        "the event",
        join(status.event(&event), async {
            api.next().await.fail(
                403,
                "Forbidden",
                "unable to create new content in namespace gone because it is being terminated",
            );
        }),
    )
    .await;
    match result {
        Err(SinkError::Api { object, source }) => {
            assert_eq!(object, event.object);
            assert!(
                matches!(&*source, kube::Error::Api(status) if status.code == 403),
                "{source:?}"
            );
        }
        other => panic!("expected an API error, got {other:?}"),
    }
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
    KubeStatus::from_kubeconfig(&path).await.expect("a sink");
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
