//! Monitors on one connection: `monitor`, `monitor_cond` and `monitor_cond_since` with the
//! fall back to an older method when the server answers "unknown method",
//! `monitor_cond_change`, `monitor_cancel`, `set_db_change_aware`, and the notifications that
//! belong to monitors (`update*`, `monitor_canceled`).
//!
//! These are thin: the request values and the decoding live in [`crate::monitor`], the
//! replica that applies them in [`crate::replica`]. [`super::ReplicaClient`] ties them to
//! reconnection.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use serde_json::value::RawValue;

use super::{Client, ClientError};
use crate::jsonrpc::Notification;
use crate::monitor::{CondChange, MonitorMethod, MonitorRequest};
use crate::replica::Replica;
use crate::schema::DatabaseSchema;
use crate::value::Uuid;

/// A monitor's reply, with the method that produced it (older than asked for when the server
/// did not know the newer one).
#[derive(Debug)]
pub struct MonitorStarted {
    /// The method the server accepted.
    pub method: MonitorMethod,
    /// The reply's `result`, raw: feed it to
    /// [`Replica::apply_reply`](crate::replica::Replica::apply_reply) with the request
    /// rewritten to `method`.
    pub result: Box<RawValue>,
}

/// Whether `err` is the server's answer to a method it does not implement.
#[must_use]
pub fn is_unknown_method(err: &ClientError) -> bool {
    match err {
        ClientError::Server { error, .. } => {
            error.error() == Some("unknown method")
                || error
                    .details()
                    .is_some_and(|d| d.contains("unknown method"))
        }
        _ => false,
    }
}

/// What a notification says about monitors, if anything.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorNotice<'a> {
    /// `update`, `update2` or `update3` for the monitor with this id.
    Update {
        /// The monitor id (`params[0]`).
        monitor_id: Value,
        /// The notification's method.
        method: &'a str,
    },
    /// `monitor_canceled`: the server dropped the monitor with this id (its database was
    /// removed or replaced); resubscribe.
    Canceled {
        /// The monitor id.
        monitor_id: Value,
    },
}

/// Classifies `n` as a monitor notification; `None` for other methods or malformed params.
#[must_use]
pub fn monitor_notice(n: &Notification) -> Option<MonitorNotice<'_>> {
    match n.method.as_str() {
        "update" | "update2" | "update3" => Some(MonitorNotice::Update {
            monitor_id: first_param(n.params.get())?,
            method: n.method.as_str(),
        }),
        "monitor_canceled" => Some(MonitorNotice::Canceled {
            monitor_id: first_param(n.params.get())?,
        }),
        _ => None,
    }
}

/// The first element of a params array; the rest is skipped without being decoded.
pub(crate) fn first_param(params: &str) -> Option<Value> {
    struct FirstVisitor;
    impl<'de> serde::de::Visitor<'de> for FirstVisitor {
        type Value = Option<Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a params array")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let first = seq.next_element::<Value>()?;
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(first)
        }
    }
    use serde::Deserializer;
    let mut de = serde_json::Deserializer::from_str(params);
    de.deserialize_seq(FirstVisitor).ok().flatten()
}

/// Tells apart the monitors [`Client::fetch`] opens on one connection.
static FETCHES: AtomicU64 = AtomicU64::new(0);

impl Client {
    /// A replica holding what `request` selects now: a monitor is opened, its reply applied to
    /// a new [`Replica`] of `schema`, and the monitor cancelled, so nothing follows. For a
    /// replica that stays up to date across reconnects, use [`super::ReplicaClient`].
    ///
    /// # Errors
    /// What the server answered, or [`ClientError::Monitor`] when its reply does not fit
    /// `schema`.
    pub async fn fetch(
        &self,
        request: &MonitorRequest,
        schema: &DatabaseSchema,
    ) -> Result<Replica, ClientError> {
        let id = format!("fetch-{}", FETCHES.fetch_add(1, Ordering::Relaxed));
        let request = request.clone().with_id(id.clone());
        let started = self.monitor(&request, None).await?;
        let mut replica = Replica::new(schema);
        replica
            .apply_reply(&request.with_method(started.method), started.result.get())
            .map_err(|source| ClientError::Monitor {
                db: schema.name.clone(),
                source: Box::new(source),
            })?;
        self.monitor_cancel(&Value::String(id)).await?;
        Ok(replica)
    }

    /// Sends `request` (with `last_txn_id` for `monitor_cond_since`), falling back to the next
    /// older method each time the server answers "unknown method".
    pub async fn monitor(
        &self,
        request: &MonitorRequest,
        last_txn_id: Option<Uuid>,
    ) -> Result<MonitorStarted, ClientError> {
        let mut req = request.clone();
        loop {
            match self
                .request(req.method.as_str(), &req.params(last_txn_id))
                .await
            {
                Ok(result) => {
                    return Ok(MonitorStarted {
                        method: req.method,
                        result,
                    });
                }
                Err(e) if is_unknown_method(&e) => match req.method.fallback() {
                    Some(older) => {
                        tracing::debug!(
                            method = req.method.as_str(),
                            fallback = older.as_str(),
                            "server does not know the monitor method"
                        );
                        req.method = older;
                    }
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }

    /// `monitor_cond_change`: new conditions for a running `monitor_cond*` monitor (build
    /// them with [`MonitorRequest::cond_change`]). The rows that enter or leave the
    /// conditions arrive as notifications.
    pub async fn monitor_cond_change(&self, change: &CondChange) -> Result<(), ClientError> {
        self.request("monitor_cond_change", change).await.map(drop)
    }

    /// `monitor_cancel`: stops the monitor with id `monitor_id`.
    pub async fn monitor_cancel(&self, monitor_id: &Value) -> Result<(), ClientError> {
        self.request("monitor_cancel", &[monitor_id])
            .await
            .map(drop)
    }

    /// `set_db_change_aware`: with `true`, the server sends `monitor_canceled` instead of
    /// closing the connection when a monitored database goes away or changes schema.
    pub async fn set_db_change_aware(&self, aware: bool) -> Result<(), ClientError> {
        self.request("set_db_change_aware", &[aware])
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::RpcError;

    fn notification(method: &str, params: &str) -> Notification {
        Notification {
            method: method.to_owned(),
            params: RawValue::from_string(params.to_owned()).unwrap(),
        }
    }

    #[test]
    fn classifies_monitor_notifications() {
        let n = notification(
            "update3",
            r#"["m1","2f6c4a8e-1b9d-4f8a-9a59-6c3c8b1f0b3e",{}]"#,
        );
        assert_eq!(
            monitor_notice(&n),
            Some(MonitorNotice::Update {
                monitor_id: Value::from("m1"),
                method: "update3"
            })
        );
        let n = notification("monitor_canceled", r#"[null]"#);
        assert_eq!(
            monitor_notice(&n),
            Some(MonitorNotice::Canceled {
                monitor_id: Value::Null
            })
        );
        assert_eq!(monitor_notice(&notification("locked", r#"["l"]"#)), None);
    }

    #[test]
    fn recognises_unknown_method() {
        let err = ClientError::Server {
            method: "monitor_cond_since".into(),
            error: RpcError {
                value: serde_json::json!({"error": "unknown method", "details": "x"}),
            },
        };
        assert!(is_unknown_method(&err));
        let err = ClientError::Server {
            method: "monitor".into(),
            error: RpcError {
                value: serde_json::json!({"error": "unknown database"}),
            },
        };
        assert!(!is_unknown_method(&err));
    }
}
