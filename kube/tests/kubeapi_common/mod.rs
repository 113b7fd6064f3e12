//! A scripted Kubernetes API server for a kube-rs client: a [`kube::Client`] over a
//! `tower_test` mock service, whose requests a test takes one at a time, checks, and answers
//! with Kubernetes JSON.
//!
//! This crate does not depend on `http`, and neither kube nor k8s-openapi re-exports it, so
//! [`mock_client`] never names `http::Request`/`http::Response`: tower-test's request type is
//! inferred from [`kube::Client::new`] (`http::Request<kube::client::Body>`), the response is
//! an `http::Response<String>` (http-body implements `Body` for `String`) built from
//! `Default`. Everything else here works on plain [`Request`]s.

#![allow(dead_code)] // Each test uses its own part of this module.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// How long a test step may take before the test fails instead of hanging.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// `future`, or a panic naming `what` if it takes longer than [`STEP_TIMEOUT`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(STEP_TIMEOUT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// A request the client sent: what it asked for, and the means to answer it.
#[derive(Debug)]
pub struct Request {
    /// `GET`, `PATCH`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, decoded.
    pub query: BTreeMap<String, String>,
    /// The headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
    reply: oneshot::Sender<Reply>,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    body: String,
}

impl Request {
    /// A query parameter.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    /// A header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// `METHOD path`, for messages.
    pub fn line(&self) -> String {
        format!("{} {}?{:?}", self.method, self.path, self.query)
    }

    /// Checks this is a list of `path` (not a watch) and returns it.
    #[track_caller]
    pub fn expect_list(self, path: &str) -> Self {
        assert_eq!(
            (
                self.method.as_str(),
                self.path.as_str(),
                self.query("watch")
            ),
            ("GET", path, None),
            "expected a list of {path}, got {}",
            self.line()
        );
        self
    }

    /// Checks this is a watch of `path` from `resource_version` (with bookmarks) and returns
    /// it.
    #[track_caller]
    pub fn expect_watch(self, path: &str, resource_version: &str) -> Self {
        assert_eq!(
            (self.method.as_str(), self.path.as_str()),
            ("GET", path),
            "expected a watch of {path}, got {}",
            self.line()
        );
        assert_eq!(self.query("watch"), Some("true"), "{}", self.line());
        assert_eq!(
            self.query("resourceVersion"),
            Some(resource_version),
            "{}",
            self.line()
        );
        assert_eq!(
            self.query("allowWatchBookmarks"),
            Some("true"),
            "{}",
            self.line()
        );
        self
    }

    /// Answers with `status` and a JSON `body`.
    pub fn respond(self, status: u16, body: &Value) {
        self.send(status, body.to_string());
    }

    /// Answers `200 OK` with a JSON `body`.
    pub fn ok(self, body: &Value) {
        self.respond(200, body);
    }

    /// Answers a watch: `200 OK`, one JSON watch event per line. The body ends after the
    /// last event, as when the server's watch timeout runs out.
    pub fn watch_events(self, events: &[Value]) {
        let body: String = events.iter().map(|e| format!("{e}\n")).collect();
        self.send(200, body);
    }

    /// Answers with a `v1` `Status` failure.
    pub fn fail(self, code: u16, reason: &str, message: &str) {
        self.respond(code, &status(code, reason, message));
    }

    /// Never answers: the client waits (for a watch, as on a quiet cluster).
    pub fn hold(self) {}

    fn send(self, status: u16, body: String) {
        self.reply
            .send(Reply { status, body })
            .expect("the client stopped waiting for its answer");
    }
}

/// The requests a [`mock_client`]'s client sends, in order.
#[derive(Debug)]
pub struct MockApi {
    requests: mpsc::UnboundedReceiver<Request>,
}

impl MockApi {
    /// The next request (waits for it).
    pub async fn next(&mut self) -> Request {
        self.requests
            .recv()
            .await
            .expect("the mock service is gone")
    }

    /// The next request, or `None` once the client is gone (for a server that runs until
    /// the test ends).
    pub async fn recv(&mut self) -> Option<Request> {
        self.requests.recv().await
    }

    /// A request already sent and not yet taken, if any.
    pub fn try_next(&mut self) -> Option<Request> {
        self.requests.try_recv().ok()
    }
}

/// The response type `T` of tower-test's `SendResponse<T>`, made with `Default`.
fn blank_response<T: Default>(_: &tower_test::mock::SendResponse<T>) -> T {
    T::default()
}

/// A client (default namespace `default`) whose requests go to the returned [`MockApi`].
///
/// Must be called in a Tokio runtime (the client and the bridge are tasks).
pub fn mock_client() -> (kube::Client, MockApi) {
    let (service, mut handle) = tower_test::mock::pair();
    let client = kube::Client::new(service, "default");
    let (requests, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().as_str().to_owned();
            let path = request.uri().path().to_owned();
            let query = request.uri().query().map(parse_query).unwrap_or_default();
            let headers = request
                .headers()
                .iter()
                .map(|(name, value)| {
                    let value = value.to_str().expect("an ASCII header value");
                    (name.as_str().to_owned(), value.to_owned())
                })
                .collect();
            let body = request
                .into_body()
                .collect_bytes()
                .await
                .expect("the request body")
                .to_vec();
            let (reply, answer) = oneshot::channel();
            let request = Request {
                method,
                path,
                query,
                headers,
                body,
                reply,
            };
            if requests.send(request).is_err() {
                return;
            }
            tokio::spawn(async move {
                let Ok(Reply { status, body }) = answer.await else {
                    // Not answered: keep the request open.
                    let _open = send;
                    return std::future::pending().await;
                };
                let mut response = blank_response(&send);
                *response.status_mut() = status.try_into().expect("an HTTP status");
                response.headers_mut().insert(
                    "content-type",
                    "application/json".parse().expect("a header value"),
                );
                *response.body_mut() = body;
                send.send_response(response);
            });
        }
    });
    (client, MockApi { requests: rx })
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ASCII");
                out.push(u8::from_str_radix(hex, 16).expect("a %XX escape"));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).expect("UTF-8")
}

// ---- Kubernetes JSON ----

/// A `v1` Namespace (as watch events carry it: with `apiVersion` and `kind`).
pub fn namespace(name: &str, resource_version: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "uid": format!("uid-{name}"),
            "resourceVersion": resource_version,
            "labels": { "kubernetes.io/metadata.name": name },
        },
        "spec": { "finalizers": ["kubernetes"] },
        "status": { "phase": "Active" },
    })
}

/// A `v1` Pod on `node`.
pub fn pod(namespace: &str, name: &str, resource_version: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("uid-{name}"),
            "resourceVersion": resource_version,
            "annotations": { "ovn.kubernetes.io/logical_switch": "ovn-default" },
        },
        "spec": {
            "nodeName": "node1",
            "containers": [{ "name": "app", "image": "registry.k8s.io/pause:3.10" }],
        },
        "status": { "phase": "Running", "podIP": "10.16.0.5" },
    })
}

/// A `v1` Node.
pub fn node(name: &str, resource_version: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": format!("uid-{name}"),
            "resourceVersion": resource_version,
            "labels": { "kubernetes.io/hostname": name },
        },
        "spec": { "podCIDR": "10.244.1.0/24" },
        "status": {
            "addresses": [{ "type": "InternalIP", "address": "172.18.0.2" }],
        },
    })
}

/// A `v1` list (`NamespaceList`, `PodList`, `NodeList`) at `resource_version`, with a
/// `continue` token when more pages follow. Items lose `apiVersion` and `kind`, as the API
/// server sends them in lists.
pub fn list(kind: &str, resource_version: &str, continue_: Option<&str>, items: &[Value]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut item = item.clone();
            let object = item.as_object_mut().expect("an object");
            object.remove("apiVersion");
            object.remove("kind");
            item
        })
        .collect();
    let mut metadata = json!({ "resourceVersion": resource_version });
    if let Some(token) = continue_ {
        metadata["continue"] = json!(token);
        metadata["remainingItemCount"] = json!(1);
    }
    json!({ "apiVersion": "v1", "kind": kind, "metadata": metadata, "items": items })
}

/// A watch event: `{"type": ..., "object": ...}`.
pub fn event(type_: &str, object: &Value) -> Value {
    json!({ "type": type_, "object": object })
}

/// A `BOOKMARK` watch event of `kind` at `resource_version`.
pub fn bookmark(kind: &str, resource_version: &str) -> Value {
    json!({
        "type": "BOOKMARK",
        "object": {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": { "resourceVersion": resource_version },
        },
    })
}

/// A `v1` `Status` failure.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

/// An `ERROR` watch event carrying a `Status`.
pub fn error_event(code: u16, reason: &str, message: &str) -> Value {
    json!({ "type": "ERROR", "object": status(code, reason, message) })
}

/// The `PartialObjectMetadata` of an object (what a metadata patch answers with).
pub fn partial_metadata(object: &Value) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": object["metadata"],
    })
}
