//! The task that owns the socket: it pumps bytes and timers between the socket and the
//! [`Session`], and requests and replies between the session and the [`super::Client`]
//! handles. It holds no protocol logic of its own.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use serde_json::value::RawValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::error::{ClientError, DriverError, error_chain};
use super::transport::Io;
use crate::jsonrpc::{Notification, RpcError};
use crate::session::{Event, RequestId, Session};

/// Why a request got no result; the [`super::Client`] turns it into a [`ClientError`].
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server answered with an error.
    Rpc(RpcError),
    /// The connection ended first; the driver's error as text.
    Disconnected(String),
}

impl Failure {
    pub(crate) fn into_error(self, method: &str) -> ClientError {
        match self {
            Failure::Rpc(error) => ClientError::Server {
                method: method.to_owned(),
                error,
            },
            Failure::Disconnected(reason) => ClientError::Disconnected { reason },
        }
    }
}

/// The reply channel of one request.
pub(crate) type ReplyTx = oneshot::Sender<Result<Box<RawValue>, Failure>>;

/// What a [`super::Client`] asks of the driver.
pub(crate) enum Command {
    /// Send a request; `token` names it for a later [`Command::Cancel`].
    Request {
        token: u64,
        method: String,
        params: Box<RawValue>,
        reply: ReplyTx,
    },
    /// The caller stopped waiting for the request `token`.
    Cancel { token: u64 },
}

/// The connection's task. Spawn it (`tokio::spawn(driver)`); requests make progress only while
/// it runs. It finishes with `Ok(())` once every [`super::Client`] handle is dropped and no
/// reply is awaited, and with an error when the connection fails; then every waiting request
/// fails with [`ClientError::Disconnected`] and the [`super::Updates`] stream ends.
#[must_use = "the driver does nothing unless spawned or awaited"]
pub struct Driver {
    fut: Pin<Box<dyn Future<Output = Result<(), DriverError>> + Send>>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

impl Future for Driver {
    type Output = Result<(), DriverError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.fut.as_mut().poll(cx)
    }
}

impl Driver {
    pub(crate) fn new(
        io: Box<dyn Io>,
        session: Session,
        commands: mpsc::UnboundedReceiver<Command>,
        updates: mpsc::UnboundedSender<Notification>,
        remote: String,
    ) -> Self {
        let state = State {
            session,
            waiting: HashMap::new(),
            tokens: HashMap::new(),
            updates,
            remote,
        };
        Self {
            fut: Box::pin(state.run(io, commands)),
        }
    }
}

struct State {
    session: Session,
    /// Requests in flight: the token and where the reply goes.
    waiting: HashMap<RequestId, (u64, ReplyTx)>,
    /// Token of the caller -> request id, for cancellation.
    tokens: HashMap<u64, RequestId>,
    updates: mpsc::UnboundedSender<Notification>,
    remote: String,
}

const READ_CHUNK: usize = 64 * 1024;
/// Commands taken from the channel per wake-up, so that pipelined requests share a write.
const COMMAND_BATCH: usize = 256;

impl State {
    async fn run(
        mut self,
        io: Box<dyn Io>,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) -> Result<(), DriverError> {
        let result = self.pump(io, &mut commands).await;
        let reason = match &result {
            Ok(()) => "the driver stopped".to_owned(),
            Err(e) => error_chain(e),
        };
        for (_, (_, reply)) in self.waiting.drain() {
            let _ = reply.send(Err(Failure::Disconnected(reason.clone())));
        }
        commands.close();
        while let Ok(cmd) = commands.try_recv() {
            if let Command::Request { reply, .. } = cmd {
                let _ = reply.send(Err(Failure::Disconnected(reason.clone())));
            }
        }
        if result.is_err() {
            tracing::debug!(error = %reason, remote = %self.remote, "OVSDB connection ended");
        }
        result
    }

    async fn pump(
        &mut self,
        io: Box<dyn Io>,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Result<(), DriverError> {
        let (mut rd, mut wr) = tokio::io::split(io);
        let mut rbuf = vec![0u8; READ_CHUNK];
        let mut out = Bytes::new();
        let mut needs_flush = false;
        let mut handles_open = true;
        loop {
            self.drain_events()?;
            if out.is_empty() {
                if let Some(b) = self.session.poll_transmit() {
                    out = b;
                }
            }
            if !handles_open && self.waiting.is_empty() && out.is_empty() && !needs_flush {
                return Ok(());
            }
            let timeout = self.session.poll_timeout().map(Instant::from_std);
            tokio::select! {
                biased;
                read = rd.read(&mut rbuf) => match read {
                    Ok(0) => return Err(DriverError::Closed { remote: self.remote.clone() }),
                    Ok(n) => self.session.handle_input(Instant::now().into_std(), &rbuf[..n]),
                    Err(source) => return Err(self.io_error(source)),
                },
                sent = write_or_flush(&mut wr, &out), if !out.is_empty() || needs_flush => match sent {
                    Ok(Some(0)) => return Err(DriverError::Closed { remote: self.remote.clone() }),
                    Ok(Some(n)) => {
                        out.advance(n);
                        needs_flush = true;
                    }
                    Ok(None) => needs_flush = false,
                    Err(source) => return Err(self.io_error(source)),
                },
                cmd = commands.recv(), if handles_open => match cmd {
                    None => handles_open = false,
                    Some(cmd) => {
                        self.command(cmd);
                        for _ in 0..COMMAND_BATCH {
                            match commands.try_recv() {
                                Ok(cmd) => self.command(cmd),
                                Err(_) => break,
                            }
                        }
                    }
                },
                () = sleep_until(timeout), if timeout.is_some() => {
                    self.session.handle_timeout(Instant::now().into_std());
                }
            }
        }
    }

    fn io_error(&self, source: std::io::Error) -> DriverError {
        DriverError::Io {
            remote: self.remote.clone(),
            source,
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Request {
                token,
                method,
                params,
                reply,
            } => {
                if reply.is_closed() {
                    return;
                }
                let id = self.session.request_raw(&method, &params);
                self.waiting.insert(id, (token, reply));
                self.tokens.insert(token, id);
            }
            Command::Cancel { token } => {
                if let Some(id) = self.tokens.remove(&token) {
                    self.waiting.remove(&id);
                    self.session.cancel(id);
                }
            }
        }
    }

    fn drain_events(&mut self) -> Result<(), DriverError> {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Reply { id, result } => {
                    if let Some((token, reply)) = self.waiting.remove(&id) {
                        self.tokens.remove(&token);
                        let _ = reply.send(result.map_err(Failure::Rpc));
                    }
                }
                Event::Notification(n) => {
                    // Nobody listening is fine: the stream was dropped.
                    let _ = self.updates.send(n);
                }
                Event::Failed(source) => {
                    return Err(DriverError::Protocol {
                        remote: self.remote.clone(),
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Writes some of `out`, or flushes once it is all written (TLS may hold records back).
async fn write_or_flush(
    wr: &mut tokio::io::WriteHalf<Box<dyn Io>>,
    out: &[u8],
) -> std::io::Result<Option<usize>> {
    if out.is_empty() {
        wr.flush().await.map(|()| None)
    } else {
        wr.write(out).await.map(Some)
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
