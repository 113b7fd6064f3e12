//! JSON-RPC 1.0 messages as OVSDB uses them (RFC 7047 section 4).
//!
//! Three shapes travel on the wire: a request (`method`, `params`, `id`), a notification (a
//! request whose `id` is `null`) and a response (`result`, `error`, `id`, exactly one of the
//! first two non-null). [`Message::decode`] reads one frame from [`crate::framing::Framer`]
//! into a [`Message`]; `params` and `result` stay raw JSON ([`RawValue`]) so that a large
//! result is parsed once, by the typed layer that knows its shape, and not first into a
//! generic tree.
//!
//! ```
//! use ovsdb::jsonrpc::{Message, Response};
//!
//! let msg = Message::decode(br#"{"id":7,"result":["OVN_Northbound"],"error":null}"#)?;
//! let Message::Response(Response { id, result }) = msg else { panic!("a response") };
//! assert_eq!(id, serde_json::json!(7));
//! assert_eq!(result.expect("no error").get(), r#"["OVN_Northbound"]"#);
//! # Ok::<(), ovsdb::jsonrpc::DecodeError>(())
//! ```

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// A frame is not a JSON-RPC 1.0 message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is not valid JSON, or not a JSON object, or a member has the wrong type.
    #[error("invalid JSON-RPC message")]
    Json(#[from] serde_json::Error),
    /// The object has neither a `method` nor a `result`/`error` member.
    #[error("JSON-RPC message is neither a request nor a response")]
    Shape,
}

/// One decoded JSON-RPC message.
#[derive(Debug)]
pub enum Message {
    /// A request the peer expects an answer to.
    Request(Request),
    /// A request with a `null` id: no answer is expected.
    Notification(Notification),
    /// The answer to a request.
    Response(Response),
}

/// A request: `{"method": ..., "params": ..., "id": ...}`.
#[derive(Debug)]
pub struct Request {
    /// The method name.
    pub method: String,
    /// The parameters, raw.
    pub params: Box<RawValue>,
    /// The id to answer with, any JSON value but `null` (ovsdb-server uses `"echo"`).
    pub id: Value,
}

/// A notification: a request with `"id": null`.
#[derive(Debug)]
pub struct Notification {
    /// The method name, such as `update2` or `locked`.
    pub method: String,
    /// The parameters, raw.
    pub params: Box<RawValue>,
}

impl Notification {
    /// The method as a [`NotificationKind`].
    pub fn kind(&self) -> NotificationKind {
        NotificationKind::from_method(&self.method)
    }
}

/// The notifications ovsdb-server sends, with [`NotificationKind::Other`] for any other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationKind {
    /// `update`: monitor changes (RFC 7047).
    Update,
    /// `update2`: monitor changes as diffs (`monitor_cond`).
    Update2,
    /// `update3`: `update2` plus the last transaction id (`monitor_cond_since`).
    Update3,
    /// `locked`: a lock requested earlier is now held.
    Locked,
    /// `stolen`: a held lock was taken by another client.
    Stolen,
    /// `monitor_canceled`: the server dropped a monitor (for example, the database was removed).
    MonitorCanceled,
    /// Any other method.
    Other(String),
}

impl NotificationKind {
    /// Classifies a method name.
    pub fn from_method(method: &str) -> Self {
        match method {
            "update" => Self::Update,
            "update2" => Self::Update2,
            "update3" => Self::Update3,
            "locked" => Self::Locked,
            "stolen" => Self::Stolen,
            "monitor_canceled" => Self::MonitorCanceled,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// A response: `{"id": ..., "result": ..., "error": ...}`.
#[derive(Debug)]
pub struct Response {
    /// The id of the request this answers.
    pub id: Value,
    /// `result` when `error` is `null`, else the error.
    pub result: Result<Box<RawValue>, RpcError>,
}

/// The `error` member of a response.
///
/// OVSDB sends either an object `{"error": "<tag>", "details": "<text>"}` or a bare string
/// such as `"canceled"`; the value is kept as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The error value as sent.
    pub value: Value,
}

impl RpcError {
    /// The error tag: the `error` member of an object, or the string itself.
    pub fn error(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            Value::Object(o) => o.get("error").and_then(Value::as_str),
            _ => None,
        }
    }

    /// The `details` member, if any.
    pub fn details(&self) -> Option<&str> {
        self.value.get("details").and_then(Value::as_str)
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.error(), self.details()) {
            (Some(e), Some(d)) => write!(f, "{e}: {d}"),
            (Some(e), None) => f.write_str(e),
            _ => write!(f, "{}", self.value),
        }
    }
}

/// Every member any of the three shapes can have; absent and `null` both read as `None`.
#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<Box<RawValue>>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Option<Box<RawValue>>>,
    #[serde(default)]
    error: Option<Value>,
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).expect("null is valid JSON")
}

fn empty_array() -> Box<RawValue> {
    RawValue::from_string("[]".to_owned()).expect("[] is valid JSON")
}

impl Message {
    /// Decodes one frame.
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        let wire: WireMessage = serde_json::from_slice(frame)?;
        match (wire.method, wire.id) {
            (Some(method), None) => Ok(Message::Notification(Notification {
                method,
                params: wire.params.unwrap_or_else(empty_array),
            })),
            (Some(method), Some(id)) => Ok(Message::Request(Request {
                method,
                params: wire.params.unwrap_or_else(empty_array),
                id,
            })),
            (None, id) => {
                let result = match (wire.error, wire.result) {
                    (Some(value), _) => Err(RpcError { value }),
                    (None, Some(Some(result))) => Ok(result),
                    // `"result": null` is a valid result; a message with neither member is not
                    // a response at all.
                    (None, Some(None)) => Ok(null()),
                    (None, None) => return Err(DecodeError::Shape),
                };
                Ok(Message::Response(Response {
                    id: id.unwrap_or(Value::Null),
                    result,
                }))
            }
        }
    }
}

/// Reads a member that is present, possibly as `null`: absent stays `None` (from `default`).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Serialize)]
struct OutRequest<'a, P: ?Sized> {
    method: &'a str,
    params: &'a P,
    id: Option<u64>,
}

#[derive(Serialize)]
struct OutResponse<'a> {
    id: &'a Value,
    result: Option<&'a RawValue>,
    error: Option<&'a Value>,
}

/// Appends a request (`id` is `Some`) or a notification (`id` is `None`) to `out`.
///
/// On error `out` is left as it was.
pub fn encode_request<P: Serialize + ?Sized>(
    out: &mut BytesMut,
    method: &str,
    params: &P,
    id: Option<u64>,
) -> Result<(), serde_json::Error> {
    let start = out.len();
    let msg = OutRequest { method, params, id };
    serde_json::to_writer(out.writer(), &msg).inspect_err(|_| out.truncate(start))
}

/// Appends a response to `out`: a `result` or an `error`, with the other `null`.
pub fn encode_response(out: &mut BytesMut, id: &Value, result: Result<&RawValue, &Value>) {
    let msg = match result {
        Ok(result) => OutResponse {
            id,
            result: Some(result),
            error: None,
        },
        Err(error) => OutResponse {
            id,
            result: None,
            error: Some(error),
        },
    };
    serde_json::to_writer(out.writer(), &msg)
        .expect("a response of raw JSON and plain values always serializes");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_the_three_shapes() {
        let m = Message::decode(br#"{"method":"echo","params":[],"id":"echo"}"#).unwrap();
        assert!(
            matches!(m, Message::Request(Request { ref method, ref id, .. })
            if method == "echo" && *id == json!("echo"))
        );

        let m = Message::decode(br#"{"method":"update2","params":[null,{}],"id":null}"#).unwrap();
        let Message::Notification(n) = m else {
            panic!("notification")
        };
        assert_eq!(n.kind(), NotificationKind::Update2);
        assert_eq!(n.params.get(), "[null,{}]");

        let m = Message::decode(
            br#"{"id":3,"result":null,"error":{"error":"unknown database","details":"x"}}"#,
        )
        .unwrap();
        let Message::Response(r) = m else {
            panic!("response")
        };
        let err = r.result.unwrap_err();
        assert_eq!(err.error(), Some("unknown database"));
        assert_eq!(err.to_string(), "unknown database: x");
    }

    #[test]
    fn null_result_is_a_result_but_no_result_is_an_error() {
        let m = Message::decode(br#"{"id":1,"result":null,"error":null}"#).unwrap();
        let Message::Response(r) = m else {
            panic!("response")
        };
        assert_eq!(r.result.unwrap().get(), "null");
        assert!(matches!(
            Message::decode(br#"{"id":1}"#),
            Err(DecodeError::Shape)
        ));
        assert!(matches!(
            Message::decode(b"[1,2]"),
            Err(DecodeError::Json(_))
        ));
    }

    #[test]
    fn encodes_requests_notifications_and_responses() {
        let mut out = BytesMut::new();
        encode_request(&mut out, "list_dbs", &json!([]), Some(4)).unwrap();
        encode_request(&mut out, "cancel", &json!([4]), None).unwrap();
        let params = RawValue::from_string("[1]".into()).unwrap();
        encode_response(&mut out, &json!("echo"), Ok(&params));
        encode_response(&mut out, &json!(9), Err(&json!("unknown method")));
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            concat!(
                r#"{"method":"list_dbs","params":[],"id":4}"#,
                r#"{"method":"cancel","params":[4],"id":null}"#,
                r#"{"id":"echo","result":[1],"error":null}"#,
                r#"{"id":9,"result":null,"error":"unknown method"}"#,
            )
        );
    }
}
