//! The manifests of `deploy/` against the code: every document is a known Kubernetes kind
//! with known fields (`deploy_common`), the controller's RBAC allows exactly the requests the
//! controller sends, and the agent, which sends none, gets no API access.
//!
//! The controller's requests are not listed by hand: the real controller loop
//! (`controller::run`) runs with [`KubeSource`] and [`KubeStatus`] over a kube-rs client
//! whose HTTP goes to a recording API server (`kubeapi_common`'s mock service, answering
//! every list with a small cluster, holding every watch open, accepting every patch and
//! event), and writes to a real OVN NB `ovsdb-server`. Every request it sends is mapped to
//! what RBAC authorizes (API group, resource, verb) and must be allowed by a ClusterRole bound
//! to the controller's ServiceAccount; every verb and resource those roles grant must have
//! been used. The RBAC part needs root and OVN (skipped otherwise, failed under `CI=true`).

mod deploy_common;
mod kubeapi_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use deploy_common::{Document, Manifest, agent_sources, load, workload};
use k8s_openapi::api::rbac::v1::PolicyRule;
use kubeapi_common::{MockApi, Request, mock_client, partial_metadata, within};
use ovn_testbed::{Lab, OvsdbServerOptions, schemas};
use ovnkit_kube::controller::config::ControllerConfig;
use ovnkit_kube::controller::kubeapi::{KubeSource, KubeStatus};
use ovnkit_kube::controller::run::{Progress, run_observed};
use ovnkit_kube::controller::source::{ObjectEvent, ObjectRef, SinkError, StatusSink};
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

// ---- what every manifest is ----

#[test]
fn every_manifest_is_a_known_kind_with_known_fields() {
    let documents = load();
    let kinds: BTreeSet<&str> = documents.iter().map(|d| d.manifest.kind()).collect();
    for kind in [
        "Deployment",
        "DaemonSet",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
    ] {
        assert!(kinds.contains(kind), "no {kind} in deploy/");
    }
    let mut names = BTreeSet::new();
    for d in &documents {
        let (namespace, name) = d.manifest.name();
        assert!(!name.is_empty(), "{}: no name", d.origin);
        assert!(
            names.insert((d.manifest.kind(), namespace, name)),
            "{}: a second {} {name}",
            d.origin,
            d.manifest.kind()
        );
    }
}

// ---- what an API request needs ----

/// What RBAC authorizes a request by: API group (`""` for the core group), resource
/// (`pods`, `pods/status`), verb.
type Access = (String, String, String);

/// The RBAC attributes of a request, as the API server derives them from the method, the
/// path and the query.
fn access(method: &str, path: &str, watch: bool) -> Access {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => panic!("{method} {path}: not a resource path"),
    };
    let (resource, name, subresource) = match rest {
        ["namespaces", _ns, resource, more @ ..] => (*resource, more.first(), more.get(1)),
        [resource, more @ ..] => (*resource, more.first(), more.get(1)),
        [] => panic!("{method} {path}: no resource"),
    };
    let resource = match subresource {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_owned(),
    };
    let verb = match (method, name.is_some()) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => panic!("{method} {path}: an unexpected method"),
    };
    (group.to_owned(), resource, verb.to_owned())
}

#[test]
fn requests_map_to_what_rbac_authorizes() {
    let cases = [
        ("GET", "/api/v1/pods", false, ("", "pods", "list")),
        ("GET", "/api/v1/pods", true, ("", "pods", "watch")),
        (
            "GET",
            "/api/v1/namespaces",
            false,
            ("", "namespaces", "list"),
        ),
        (
            "PATCH",
            "/api/v1/namespaces/web",
            false,
            ("", "namespaces", "patch"),
        ),
        (
            "PATCH",
            "/api/v1/namespaces/web/pods/a",
            false,
            ("", "pods", "patch"),
        ),
        (
            "GET",
            "/api/v1/namespaces/web/pods/a",
            false,
            ("", "pods", "get"),
        ),
        (
            "PATCH",
            "/api/v1/namespaces/web/pods/a/status",
            false,
            ("", "pods/status", "patch"),
        ),
        (
            "PATCH",
            "/api/v1/nodes/node1",
            false,
            ("", "nodes", "patch"),
        ),
        (
            "GET",
            "/apis/discovery.k8s.io/v1/endpointslices",
            true,
            ("discovery.k8s.io", "endpointslices", "watch"),
        ),
        (
            "POST",
            "/apis/events.k8s.io/v1/namespaces/default/events",
            false,
            ("events.k8s.io", "events", "create"),
        ),
        (
            "DELETE",
            "/apis/events.k8s.io/v1/namespaces/default/events",
            false,
            ("events.k8s.io", "events", "deletecollection"),
        ),
    ];
    for (method, path, watch, (group, resource, verb)) in cases {
        assert_eq!(
            access(method, path, watch),
            (group.to_owned(), resource.to_owned(), verb.to_owned()),
            "{method} {path} watch={watch}"
        );
    }
}

// ---- what the manifests grant ----

/// The rules of the ClusterRoles bound to ServiceAccount `namespace/name`, with where each
/// comes from.
fn rules_of(documents: &[Document], namespace: &str, name: &str) -> Vec<(String, PolicyRule)> {
    let roles: BTreeMap<&str, (&str, &Vec<PolicyRule>)> = documents
        .iter()
        .filter_map(|d| match &d.manifest {
            Manifest::ClusterRole(r) => Some((
                r.metadata.name.as_deref()?,
                (d.origin.as_str(), r.rules.as_ref()?),
            )),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for d in documents {
        let Manifest::ClusterRoleBinding(b) = &d.manifest else {
            continue;
        };
        let binds = b.subjects.iter().flatten().any(|s| {
            s.kind == "ServiceAccount"
                && s.name == name
                && s.namespace.as_deref() == Some(namespace)
        });
        if !binds {
            continue;
        }
        assert_eq!(
            b.role_ref.kind, "ClusterRole",
            "{}: binds a {}",
            d.origin, b.role_ref.kind
        );
        let (origin, rules) = roles.get(b.role_ref.name.as_str()).unwrap_or_else(|| {
            panic!(
                "{}: binds ClusterRole {}, which deploy/ does not define",
                d.origin, b.role_ref.name
            )
        });
        out.extend(
            rules
                .iter()
                .map(|r| (format!("{origin} (via {})", d.origin), r.clone())),
        );
    }
    out
}

/// Whether `rule` allows `access`.
fn allows(rule: &PolicyRule, (group, resource, verb): &Access) -> bool {
    let has = |list: Option<&Vec<String>>, item: &str| {
        list.is_some_and(|l| l.iter().any(|x| x == item || x == "*"))
    };
    has(rule.api_groups.as_ref(), group)
        && has(rule.resources.as_ref(), resource)
        && rule.verbs.iter().any(|v| v == verb || v == "*")
        && rule.resource_names.as_ref().is_none_or(Vec::is_empty)
}

/// What `rule` grants, one access each; wildcards and rules that are not about resources
/// are reported in `problems`.
fn grants(origin: &str, rule: &PolicyRule, problems: &mut Vec<String>) -> Vec<Access> {
    if rule
        .non_resource_urls
        .as_ref()
        .is_some_and(|u| !u.is_empty())
    {
        problems.push(format!("{origin}: grants non-resource URLs {rule:?}"));
    }
    if rule.resource_names.as_ref().is_some_and(|n| !n.is_empty()) {
        problems.push(format!(
            "{origin}: names resources (the controller acts on any object) {rule:?}"
        ));
    }
    let groups = rule.api_groups.clone().unwrap_or_default();
    let resources = rule.resources.clone().unwrap_or_default();
    let mut out = Vec::new();
    for g in &groups {
        for r in &resources {
            for v in &rule.verbs {
                if g == "*" || r == "*" || v == "*" {
                    problems.push(format!(
                        "{origin}: a wildcard grants more than is used: {g:?} {r:?} {v:?}"
                    ));
                }
                out.push((g.clone(), r.clone(), v.clone()));
            }
        }
    }
    out
}

/// Every binding names a ServiceAccount and a ClusterRole of the manifests.
#[test]
fn bindings_name_service_accounts_and_roles_of_the_manifests() {
    let documents = load();
    let accounts: BTreeSet<(Option<&str>, &str)> = documents
        .iter()
        .filter(|d| matches!(d.manifest, Manifest::ServiceAccount(_)))
        .map(|d| d.manifest.name())
        .collect();
    let roles: BTreeSet<&str> = documents
        .iter()
        .filter(|d| matches!(d.manifest, Manifest::ClusterRole(_)))
        .map(|d| d.manifest.name().1)
        .collect();
    for d in &documents {
        let Manifest::ClusterRoleBinding(b) = &d.manifest else {
            continue;
        };
        assert!(
            roles.contains(b.role_ref.name.as_str()),
            "{}: no ClusterRole {}",
            d.origin,
            b.role_ref.name
        );
        for s in b.subjects.iter().flatten() {
            assert_eq!(s.kind, "ServiceAccount", "{}", d.origin);
            assert!(
                accounts.contains(&(s.namespace.as_deref(), s.name.as_str())),
                "{}: no ServiceAccount {:?}/{}",
                d.origin,
                s.namespace,
                s.name
            );
        }
    }
    // And every workload runs as one of them.
    for w in deploy_common::workloads(&documents) {
        let account = w.spec.service_account_name.as_deref().unwrap_or("default");
        assert!(
            accounts.contains(&(Some(w.namespace), account)),
            "{}: runs as ServiceAccount {account}, which deploy/ does not define",
            w.what
        );
    }
}

// ---- the agent: no API access ----

/// Where `text` names the kube-rs crate (`kube::`, not `ovnkit_kube::`), k8s-openapi, or the
/// controller (whose `kubeapi` holds the API client).
fn api_uses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let names_kube = code.match_indices("kube::").any(|(i, _)| {
            !code[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        });
        if names_kube || code.contains("k8s_openapi") || code.contains("crate::controller") {
            out.push(format!("line {}: {}", n + 1, line.trim()));
        }
    }
    out
}

#[test]
fn the_agent_uses_no_kubernetes_api_and_gets_no_access() {
    assert_eq!(api_uses("use kube::Client;"), ["line 1: use kube::Client;"]);
    assert!(api_uses("use ovnkit_kube::cni; // kube::Api").is_empty());
    let sources = agent_sources();
    for module in ["agent", "cni"] {
        assert!(
            sources
                .iter()
                .any(|p| p.components().any(|c| c.as_os_str() == module)),
            "{sources:?}"
        );
    }
    for path in sources {
        let text = std::fs::read_to_string(&path).expect("a source file");
        let uses = api_uses(&text);
        assert!(
            uses.is_empty(),
            "{} names the Kubernetes API, which the agent's manifests give it no access \
             to (deploy/rbac.yaml, deploy/agent.yaml): {uses:?}",
            path.display()
        );
    }

    let documents = load();
    let agent = workload(&documents, "agent");
    assert_eq!(
        agent.spec.automount_service_account_token,
        Some(false),
        "{}: mounts an API token it does not use",
        agent.what
    );
    let account = agent
        .spec
        .service_account_name
        .as_deref()
        .expect("the agent names its ServiceAccount");
    let rules = rules_of(&documents, agent.namespace, account);
    assert!(
        rules.is_empty(),
        "the agent's ServiceAccount is granted {rules:?}"
    );
}

// ---- the controller: exactly what it sends ----

/// A small cluster: namespaces (one defining a subnet), a node, pods (one with a static
/// address, one with a bad one, which makes an event), a Service with its EndpointSlice, a
/// NetworkPolicy. Keyed by the path a list of the kind is sent to.
fn cluster() -> BTreeMap<&'static str, Value> {
    fn meta(namespace: Option<&str>, name: &str, rv: u32, extra: Value) -> Value {
        let mut m = json!({
            "name": name,
            "uid": format!("uid-{name}"),
            "resourceVersion": rv.to_string(),
        });
        if let Some(ns) = namespace {
            m["namespace"] = json!(ns);
        }
        for (k, v) in extra.as_object().into_iter().flatten() {
            m[k] = v.clone();
        }
        m
    }
    fn pod(ns: &str, name: &str, rv: u32, annotations: Value) -> Value {
        json!({
            "metadata": meta(Some(ns), name, rv, json!({
                "labels": { "app": name },
                "annotations": annotations,
            })),
            "spec": {
                "nodeName": "node1",
                "containers": [{ "name": "app", "image": "registry.k8s.io/pause:3.10" }],
            },
            "status": { "phase": "Pending" },
        })
    }
    fn list(api_version: &str, kind: &str, items: Vec<Value>) -> Value {
        json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": { "resourceVersion": "100" },
            "items": items,
        })
    }
    let namespace = |name: &str, rv, annotations: Value| {
        json!({
            "metadata": meta(None, name, rv, json!({
                "labels": { "kubernetes.io/metadata.name": name },
                "annotations": annotations,
            })),
            "spec": { "finalizers": ["kubernetes"] },
            "status": { "phase": "Active" },
        })
    };
    BTreeMap::from([
        (
            "/api/v1/namespaces",
            list(
                "v1",
                "NamespaceList",
                vec![
                    namespace("default", 1, json!({})),
                    namespace("kube-system", 2, json!({})),
                    namespace(
                        "web",
                        3,
                        json!({ "ovn.kubernetes.io/cidr": "10.17.0.0/24" }),
                    ),
                ],
            ),
        ),
        (
            "/api/v1/nodes",
            list(
                "v1",
                "NodeList",
                vec![json!({
                    "metadata": meta(None, "node1", 4, json!({
                        "labels": { "kubernetes.io/hostname": "node1" },
                    })),
                    "status": {
                        "addresses": [{ "type": "InternalIP", "address": "172.18.0.2" }],
                    },
                })],
            ),
        ),
        (
            "/api/v1/pods",
            list(
                "v1",
                "PodList",
                vec![
                    pod("web", "frontend", 5, json!({})),
                    pod(
                        "default",
                        "fixed",
                        6,
                        json!({ "ovn.kubernetes.io/ip_address": "10.16.0.50" }),
                    ),
                    pod(
                        "default",
                        "typo",
                        7,
                        json!({ "ovn.kubernetes.io/ip_address": "10.16.0.300" }),
                    ),
                ],
            ),
        ),
        (
            "/api/v1/services",
            list(
                "v1",
                "ServiceList",
                vec![json!({
                    "metadata": meta(Some("web"), "frontend", 8, json!({})),
                    "spec": {
                        "type": "ClusterIP",
                        "clusterIP": "10.96.0.10",
                        "clusterIPs": ["10.96.0.10"],
                        "selector": { "app": "frontend" },
                        "ports": [{ "name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080 }],
                    },
                })],
            ),
        ),
        (
            "/apis/discovery.k8s.io/v1/endpointslices",
            list(
                "discovery.k8s.io/v1",
                "EndpointSliceList",
                vec![json!({
                    "metadata": meta(Some("web"), "frontend-x1", 9, json!({
                        "labels": { "kubernetes.io/service-name": "frontend" },
                    })),
                    "addressType": "IPv4",
                    "endpoints": [{
                        "addresses": ["10.17.0.2"],
                        "conditions": { "ready": true },
                        "nodeName": "node1",
                        "targetRef": { "kind": "Pod", "namespace": "web", "name": "frontend" },
                    }],
                    "ports": [{ "name": "http", "port": 8080, "protocol": "TCP" }],
                })],
            ),
        ),
        (
            "/apis/networking.k8s.io/v1/networkpolicies",
            list(
                "networking.k8s.io/v1",
                "NetworkPolicyList",
                vec![json!({
                    "metadata": meta(Some("web"), "frontend-ingress", 10, json!({})),
                    "spec": {
                        "podSelector": { "matchLabels": { "app": "frontend" } },
                        "policyTypes": ["Ingress"],
                        "ingress": [{
                            "from": [{ "namespaceSelector": {
                                "matchLabels": { "kubernetes.io/metadata.name": "default" },
                            } }],
                            "ports": [{ "protocol": "TCP", "port": 8080 }],
                        }],
                    },
                })],
            ),
        ),
    ])
}

/// One request as sent: method, path, whether a watch.
type Sent = (String, String, bool);

/// Answers every request the way an API server holding `lists` would, and records it: lists
/// answered, watches held open, metadata patches and events accepted, anything else 404.
async fn serve(
    mut api: MockApi,
    lists: BTreeMap<&'static str, Value>,
    sent: Arc<Mutex<Vec<Sent>>>,
) {
    while let Some(request) = api.recv().await {
        let watch = request
            .query("watch")
            .is_some_and(|w| w == "true" || w == "1");
        sent.lock()
            .unwrap()
            .push((request.method.clone(), request.path.clone(), watch));
        answer(request, watch, &lists);
    }
}

fn answer(request: Request, watch: bool, lists: &BTreeMap<&'static str, Value>) {
    let events = request.path.starts_with("/apis/events.k8s.io/");
    match request.method.as_str() {
        "GET" if watch => request.hold(),
        "GET" => match lists.get(request.path.as_str()) {
            Some(list) => request.ok(list),
            None => request.fail(404, "NotFound", "not in the fixture"),
        },
        "POST" if events => {
            let body = request.json();
            request.respond(201, &body);
        }
        "PATCH" if events => {
            let body = request.json();
            request.ok(&body);
        }
        "PATCH" => {
            let segments: Vec<&str> = request.path.split('/').collect();
            let name = segments.last().copied().unwrap_or_default();
            let mut metadata = json!({ "name": name, "uid": format!("uid-{name}") });
            if let ["", "api", "v1", "namespaces", ns, _, _] = segments.as_slice() {
                metadata["namespace"] = json!(ns);
            }
            let object = json!({ "metadata": metadata });
            request.ok(&partial_metadata(&object));
        }
        _ => request.fail(404, "NotFound", "not served by this test"),
    }
}

/// The controller's sink, keeping the events it reports so that the test can report them
/// again.
struct Recording {
    inner: KubeStatus,
    events: Mutex<Vec<ObjectEvent>>,
}

#[async_trait::async_trait]
impl StatusSink for Recording {
    async fn annotate(
        &self,
        object: &ObjectRef,
        annotations: &BTreeMap<String, Option<String>>,
    ) -> Result<(), SinkError> {
        self.inner.annotate(object, annotations).await
    }

    async fn event(&self, event: &ObjectEvent) -> Result<(), SinkError> {
        self.events.lock().unwrap().push(event.clone());
        self.inner.event(event).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controllers_rbac_allows_exactly_what_it_sends() {
    let documents = load();
    let controller = workload(&documents, "controller");
    let account = controller
        .spec
        .service_account_name
        .clone()
        .expect("the controller names its ServiceAccount");
    let rules = rules_of(&documents, controller.namespace, &account);
    assert!(
        !rules.is_empty(),
        "the controller's ServiceAccount is granted nothing"
    );

    let Some(lab) = Lab::for_test() else {
        return;
    };
    let nb = lab
        .start_ovsdb_server(OvsdbServerOptions::new(schemas::NB).with_name("nb"))
        .expect("an NB ovsdb-server");

    let (client, api) = mock_client();
    let sent = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(serve(api, cluster(), sent.clone()));
    let sink = Arc::new(Recording {
        inner: KubeStatus::from_client(client.clone()),
        events: Mutex::new(Vec::new()),
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let (observer, mut progress) = watch::channel(Progress::default());
    let run = tokio::spawn({
        let sink: Arc<dyn StatusSink> = sink.clone();
        let remote = nb.unix_remote();
        async move {
            let source = KubeSource::from_client(client);
            run_observed(
                ControllerConfig::default(),
                &remote,
                &source,
                sink,
                async {
                    let _ = stopped.await;
                },
                &observer,
            )
            .await
        }
    });
    within(
        "the controller to write and settle",
        progress.wait_for(|p| p.settled && p.transactions > 0),
    )
    .await
    .expect("the controller is running");

    // The same event reported again (as on a retry) patches the first one's series.
    let reported: Vec<ObjectEvent> = sink.events.lock().unwrap().clone();
    assert!(!reported.is_empty(), "the cluster made no event");
    for event in &reported {
        within("an event reported again", sink.inner.event(event))
            .await
            .expect("the event is accepted");
    }
    stop.send(()).expect("the controller is running");
    within("the controller to stop", run)
        .await
        .expect("the controller task")
        .expect("the controller ran");

    let sent: Vec<Sent> = sent.lock().unwrap().clone();
    let mut used: BTreeMap<Access, String> = BTreeMap::new();
    for (method, path, watch) in &sent {
        used.entry(access(method, path, *watch))
            .or_insert_with(|| format!("{method} {path}{}", if *watch { " (watch)" } else { "" }));
    }
    // The run did what the fixture is for: every kind listed and watched, results written
    // back, events created and patched.
    let verbs: BTreeSet<&str> = used.keys().map(|(_, _, v)| v.as_str()).collect();
    for verb in ["list", "watch", "patch", "create"] {
        assert!(verbs.contains(verb), "no {verb} in {used:#?}");
    }
    let listed = used.keys().filter(|(_, _, v)| v == "list").count();
    assert_eq!(listed, cluster().len(), "lists: {used:#?}");

    let mut problems = Vec::new();
    for (access, example) in &used {
        if !rules.iter().any(|(_, rule)| allows(rule, access)) {
            problems.push(format!(
                "not allowed: {access:?}, as in {example}; add it to the controller's ClusterRole"
            ));
        }
    }
    for (origin, rule) in &rules {
        for granted in grants(origin, rule, &mut problems) {
            if !used.contains_key(&granted) {
                problems.push(format!(
                    "{origin}: grants {granted:?}, which the controller never sent"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the controller's RBAC does not match what it sends:\n{}\n\nsent:\n{}",
        problems.join("\n"),
        used.iter()
            .map(|(a, e)| format!("  {a:?}  {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
