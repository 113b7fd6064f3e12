//! Locks (RFC 7047 section 4.1.8): `lock`, `steal` and `unlock`, and the `locked` and
//! `stolen` notifications, for leader election among controllers.
//!
//! A lock belongs to the connection: it is released when the connection closes. `lock`
//! answers at once whether the lock is held now; if not, the client waits in the lock's queue
//! and the server sends `locked` when it gets it. `steal` takes it from its owner at once; the
//! owner gets `stolen`. [`super::ReplicaClient`] takes the lock again after each reconnect.

use serde::Deserialize;

use super::{Client, ClientError};
use crate::jsonrpc::Notification;

/// A lock notification for this connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockNotice {
    /// `locked`: the lock named is now held by this connection.
    Locked(String),
    /// `stolen`: another client stole the lock named; this connection no longer holds it.
    Stolen(String),
}

/// Classifies `n` as a lock notification; `None` for other methods or malformed params.
#[must_use]
pub fn lock_notice(n: &Notification) -> Option<LockNotice> {
    let name = || {
        serde_json::from_str::<(String,)>(n.params.get())
            .ok()
            .map(|(s,)| s)
    };
    match n.method.as_str() {
        "locked" => name().map(LockNotice::Locked),
        "stolen" => name().map(LockNotice::Stolen),
        _ => None,
    }
}

#[derive(Deserialize)]
struct Locked {
    locked: bool,
}

impl Client {
    /// `lock`: asks for the lock `name`. `true` if it is held now; `false` if the client now
    /// waits for it (a `locked` notification follows when it gets it).
    pub async fn lock(&self, name: &str) -> Result<bool, ClientError> {
        let r: Locked = self.call("lock", &[name]).await?;
        Ok(r.locked)
    }

    /// `steal`: takes the lock `name` from whoever holds it (who is sent `stolen`). Always
    /// held afterwards.
    pub async fn steal(&self, name: &str) -> Result<bool, ClientError> {
        let r: Locked = self.call("steal", &[name]).await?;
        Ok(r.locked)
    }

    /// `unlock`: releases the lock `name`, or stops waiting for it.
    pub async fn unlock(&self, name: &str) -> Result<(), ClientError> {
        self.request("unlock", &[name]).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    #[test]
    fn classifies_lock_notifications() {
        let n = |m: &str, p: &str| Notification {
            method: m.to_owned(),
            params: RawValue::from_string(p.to_owned()).unwrap(),
        };
        assert_eq!(
            lock_notice(&n("locked", r#"["ctl"]"#)),
            Some(LockNotice::Locked("ctl".into()))
        );
        assert_eq!(
            lock_notice(&n("stolen", r#"["ctl"]"#)),
            Some(LockNotice::Stolen("ctl".into()))
        );
        assert_eq!(lock_notice(&n("update2", r#"[null,{}]"#)), None);
    }
}
