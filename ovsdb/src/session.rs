//! A sans-IO OVSDB JSON-RPC session.
//!
//! [`Session`] is the protocol side of one connection, with no socket and no clock, in the
//! style of `quinn-proto`: whoever owns the socket feeds it what was read and when
//! ([`Session::handle_input`]) and the time when a timer fires ([`Session::handle_timeout`]),
//! and then pulls out, in this order:
//!
//! 1. [`Session::poll_event`] until `None`: replies matched to their requests, notifications
//!    and at most one fatal [`SessionError`], in the order the server sent them. The server
//!    sends the `update2` for a client's own write *before* the `transact` reply, and events
//!    keep that order.
//! 2. [`Session::poll_transmit`]: bytes to write (requests, and the answers to the server's
//!    `echo` requests, which the session gives by itself).
//! 3. [`Session::poll_timeout`]: when to call [`Session::handle_timeout`] next.
//!
//! Requests are sent with [`Session::request`] (or the named shortcuts such as
//! [`Session::transact`]) and carry ids the session picks; [`Session::cancel`] gives up on one.
//! The monitor and lock methods of later work go through the same generic [`Session::request`].
//!
//! ```
//! use std::time::Instant;
//! use ovsdb::session::{Event, Session, SessionConfig};
//!
//! let now = Instant::now();
//! let mut session = Session::new(SessionConfig::default(), now);
//! let id = session.list_dbs();
//! let out = session.poll_transmit().expect("the request");
//! assert_eq!(&out[..], br#"{"method":"list_dbs","params":[],"id":0}"#);
//!
//! session.handle_input(now, br#"{"method":"echo","params":[],"id":"echo"}{"id":0,"res"#);
//! session.handle_input(now, br#"ult":["OVN_Northbound"],"error":null}"#);
//! let Some(Event::Reply { id: got, result }) = session.poll_event() else { panic!() };
//! assert_eq!(got, id);
//! assert_eq!(result.expect("success").get(), r#"["OVN_Northbound"]"#);
//! // The session answered the server's echo by itself.
//! assert_eq!(&session.poll_transmit().expect("echo reply")[..],
//!            br#"{"id":"echo","result":[],"error":null}"#);
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::framing::{DEFAULT_MAX_MESSAGE_LEN, Framer, FramingError};
use crate::jsonrpc::{
    self, DecodeError, Message, Notification, Request, Response, RpcError, encode_request,
};

/// Identifies a request sent through a [`Session`]; the JSON-RPC id on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Settings of a [`Session`].
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// After this long without receiving anything, send an `echo`; if nothing arrives in the
    /// same time again, fail with [`SessionError::InactivityTimeout`]. `None` (the default)
    /// never probes. Open vSwitch clients use 5 s on TCP and TLS.
    pub inactivity_probe: Option<Duration>,
    /// The largest message accepted from the server.
    pub max_message_len: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            inactivity_probe: None,
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
        }
    }
}

impl SessionConfig {
    /// Sets [`SessionConfig::inactivity_probe`].
    pub fn with_inactivity_probe(mut self, probe: Option<Duration>) -> Self {
        self.inactivity_probe = probe;
        self
    }

    /// Sets [`SessionConfig::max_message_len`].
    pub fn with_max_message_len(mut self, len: usize) -> Self {
        self.max_message_len = len;
        self
    }
}

/// A fatal protocol failure. After one the session is closed: it ignores input, sends nothing
/// more, and the connection should be dropped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The byte stream could not be split into messages.
    #[error("framing")]
    Framing(#[from] FramingError),
    /// A message could not be decoded.
    #[error("decoding a message from the server")]
    Decode(#[from] DecodeError),
    /// Nothing arrived for an inactivity-probe interval, and then nothing for another one
    /// after an `echo`; the duration is the whole silence.
    #[error("nothing from the server for {0:?}, an echo probe unanswered")]
    InactivityTimeout(Duration),
}

/// What a [`Session`] reports, from [`Session::poll_event`].
#[derive(Debug)]
pub enum Event {
    /// The answer to a request sent with [`Session::request`].
    Reply {
        /// The request answered.
        id: RequestId,
        /// Its result, or the error the server sent.
        result: Result<Box<RawValue>, RpcError>,
    },
    /// A notification from the server (`update2`, `locked`, ...).
    Notification(Notification),
    /// The session failed; no event follows.
    Failed(SessionError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// A request of the user: its reply becomes an [`Event::Reply`].
    User,
    /// The session's own inactivity probe.
    Probe,
}

#[derive(Debug, Clone, Copy)]
enum Probe {
    Off,
    /// Send an `echo` once nothing has arrived for an interval.
    Idle,
    /// An `echo` went out at this time; fail if nothing arrives within an interval of it.
    Probing(Instant),
}

/// The protocol state of one OVSDB connection. See the [module docs](self).
#[derive(Debug)]
pub struct Session {
    framer: Framer,
    transmit: BytesMut,
    events: VecDeque<Event>,
    pending: HashMap<u64, Pending>,
    next_id: u64,
    probe: Probe,
    probe_interval: Option<Duration>,
    /// When bytes last arrived (or the connection opened).
    last_input: Instant,
    closed: bool,
}

impl Session {
    /// A session on a connection that has just been opened at `now`.
    pub fn new(config: SessionConfig, now: Instant) -> Self {
        Self {
            framer: Framer::with_max_message_len(config.max_message_len),
            transmit: BytesMut::new(),
            events: VecDeque::new(),
            pending: HashMap::new(),
            next_id: 0,
            probe: match config.inactivity_probe {
                Some(_) => Probe::Idle,
                None => Probe::Off,
            },
            probe_interval: config.inactivity_probe,
            last_input: now,
            closed: false,
        }
    }

    /// Sends a request whose params are serialized straight into the transmit buffer.
    ///
    /// Returns an error (and sends nothing) if `params` fails to serialize.
    pub fn request<P: Serialize + ?Sized>(
        &mut self,
        method: &str,
        params: &P,
    ) -> Result<RequestId, serde_json::Error> {
        let id = self.next_id;
        encode_request(&mut self.transmit, method, params, Some(id))?;
        self.next_id += 1;
        self.pending.insert(id, Pending::User);
        Ok(RequestId(id))
    }

    /// Sends a request with raw JSON params.
    pub fn request_raw(&mut self, method: &str, params: &RawValue) -> RequestId {
        self.request(method, params)
            .expect("raw JSON always serializes")
    }

    /// Sends a notification (a request with a `null` id; no answer comes).
    pub fn notify<P: Serialize + ?Sized>(
        &mut self,
        method: &str,
        params: &P,
    ) -> Result<(), serde_json::Error> {
        encode_request(&mut self.transmit, method, params, None)
    }

    /// `list_dbs`: the result is an array of database names.
    pub fn list_dbs(&mut self) -> RequestId {
        self.request("list_dbs", &[(); 0])
            .expect("an empty array serializes")
    }

    /// `get_schema`: the result is the schema of `db`.
    pub fn get_schema(&mut self, db: &str) -> RequestId {
        self.request("get_schema", &[db])
            .expect("a string array serializes")
    }

    /// `transact` with its params (`[db, operation...]`) already built.
    pub fn transact(&mut self, params: &RawValue) -> RequestId {
        self.request_raw("transact", params)
    }

    /// `echo`: the result is `params` sent back.
    pub fn echo(&mut self, params: &RawValue) -> RequestId {
        self.request_raw("echo", params)
    }

    /// `get_server_id`: the result is the server's UUID as a string.
    pub fn get_server_id(&mut self) -> RequestId {
        self.request("get_server_id", &[(); 0])
            .expect("an empty array serializes")
    }

    /// Gives up on a request: sends the RFC 7047 `cancel` notification and forgets the request,
    /// so no [`Event::Reply`] comes for it. ovsdb-server drops the request; on a session that
    /// sent `set_db_change_aware` it also answers it with the error `canceled`, which the
    /// session swallows. Returns `false` if the request is not outstanding.
    pub fn cancel(&mut self, id: RequestId) -> bool {
        match self.pending.get(&id.0) {
            Some(Pending::User) => {
                self.pending.remove(&id.0);
                encode_request(&mut self.transmit, "cancel", &[id.0], None)
                    .expect("an integer array serializes");
                true
            }
            _ => false,
        }
    }

    /// Requests sent and not yet answered nor canceled.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// Whether the session failed ([`Event::Failed`] was queued).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether bytes of an incomplete message are held: at the end of the stream this means
    /// the server closed mid-message.
    pub fn is_mid_message(&self) -> bool {
        self.framer.is_mid_message()
    }

    /// Feeds bytes read from the connection at `now`, split anywhere. Any bytes count as signs
    /// of life for the inactivity probe.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.closed || data.is_empty() {
            return;
        }
        self.last_input = self.last_input.max(now);
        if let Probe::Probing(_) = self.probe {
            self.probe = Probe::Idle;
        }
        self.framer.extend(data);
        loop {
            match self.framer.next_frame() {
                Ok(Some(frame)) => match Message::decode(&frame) {
                    Ok(msg) => self.dispatch(msg),
                    Err(err) => return self.fail(err.into()),
                },
                Ok(None) => return,
                Err(err) => return self.fail(err.into()),
            }
        }
    }

    /// Advances the session's timers to `now`: the inactivity probe. Like Open vSwitch's, it
    /// sends an `echo` once nothing has arrived for an interval, and fails the session once
    /// nothing has arrived for another interval after that: a silent server is given up two
    /// intervals after its last bytes (plus however late this is called).
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(interval) = self.probe_interval else {
            return;
        };
        if self.closed {
            return;
        }
        match self.probe {
            Probe::Off => {}
            Probe::Idle if now >= self.last_input + interval => {
                let id = self.next_id;
                self.next_id += 1;
                encode_request(&mut self.transmit, "echo", &[(); 0], Some(id))
                    .expect("an empty array serializes");
                self.pending.insert(id, Pending::Probe);
                self.probe = Probe::Probing(now);
            }
            Probe::Idle => {}
            Probe::Probing(sent) if now >= sent + interval => {
                let silence = now.saturating_duration_since(self.last_input);
                self.fail(SessionError::InactivityTimeout(silence));
            }
            Probe::Probing(_) => {}
        }
    }

    /// When [`Session::handle_timeout`] should be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let interval = self.probe_interval?;
        match self.probe {
            _ if self.closed => None,
            Probe::Off => None,
            Probe::Idle => Some(self.last_input + interval),
            Probe::Probing(sent) => Some(sent + interval),
        }
    }

    /// The next event, in the order the server's messages arrived.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// All bytes waiting to be written, if any.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.transmit.is_empty() {
            None
        } else {
            Some(self.transmit.split().freeze())
        }
    }

    fn fail(&mut self, err: SessionError) {
        self.closed = true;
        self.events.push_back(Event::Failed(err));
    }

    fn dispatch(&mut self, msg: Message) {
        match msg {
            Message::Notification(n) => self.events.push_back(Event::Notification(n)),
            Message::Request(req) => self.answer(req),
            Message::Response(resp) => self.complete(resp),
        }
    }

    /// Answers a request from the server: `echo` with its params, anything else with an error.
    fn answer(&mut self, req: Request) {
        if req.method == "echo" {
            jsonrpc::encode_response(&mut self.transmit, &req.id, Ok(&req.params));
        } else {
            tracing::debug!(method = %req.method, "unexpected request from the server");
            let err = Value::String("unknown method".to_owned());
            jsonrpc::encode_response(&mut self.transmit, &req.id, Err(&err));
        }
    }

    fn complete(&mut self, resp: Response) {
        let Some(id) = resp.id.as_u64() else {
            tracing::warn!(id = %resp.id, "reply with an id this session never sent");
            return;
        };
        match self.pending.remove(&id) {
            Some(Pending::User) => self.events.push_back(Event::Reply {
                id: RequestId(id),
                result: resp.result,
            }),
            Some(Pending::Probe) => {}
            // A canceled request (ids below `next_id` were ours); later ids never were.
            None if id < self.next_id => tracing::debug!(id, "reply to a canceled request"),
            None => tracing::warn!(id, "reply to a request this session never sent"),
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
