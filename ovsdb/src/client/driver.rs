//! The task that owns the socket: it pumps bytes and timers between the socket and the
//! [`Session`], and requests and replies between the session and the [`super::Client`]
//! handles. It holds no protocol logic of its own.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use serde_json::value::RawValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::error::{ClientError, DriverError};
use super::transport::Io;
use crate::jsonrpc::{Notification, RpcError};
use crate::session::{Event, RequestId, Session};

/// Why a request got no result; the [`super::Client`] turns it into a [`ClientError`].
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server answered with an error.
    Rpc(RpcError),
    /// The connection ended first, with this error.
    Disconnected(Arc<DriverError>),
    /// The driver finished without an error (it cannot while a handle waits, but say so).
    Stopped,
}

impl Failure {
    pub(crate) fn into_error(self, method: &str) -> ClientError {
        match self {
            Failure::Rpc(error) => ClientError::Server {
                method: method.to_owned(),
                error,
            },
            Failure::Disconnected(source) => ClientError::Disconnected { source },
            Failure::Stopped => ClientError::NotRunning,
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
    /// Close the connection: fail what waits with [`DriverError::Abandoned`] and stop.
    Abandon {
        reason: Arc<dyn std::error::Error + Send + Sync>,
    },
}

/// What the driver shares with its [`super::Client`] handles: whether it was ever polled, and
/// the error it ended with, for requests made after it stopped.
#[derive(Debug, Default)]
pub(crate) struct DriverStatus {
    pub(crate) started: AtomicBool,
    pub(crate) ended: OnceLock<Arc<DriverError>>,
}

impl DriverStatus {
    /// The error for a request that found the command channel closed.
    pub(crate) fn closed_error(&self) -> ClientError {
        match self.ended.get() {
            Some(source) => ClientError::Disconnected {
                source: source.clone(),
            },
            None => ClientError::NotRunning,
        }
    }
}

/// The connection's task. Spawn it (`tokio::spawn(driver)`); requests make progress only while
/// it runs. It finishes with `Ok(())` once every [`super::Client`] handle is dropped and no
/// reply is awaited, and with an error when the connection fails; then every waiting request
/// fails with [`ClientError::Disconnected`], whose source is the same [`DriverError`] (hence
/// the `Arc`), and the [`super::Updates`] stream ends.
#[must_use = "the driver does nothing unless spawned or awaited"]
pub struct Driver {
    fut: Pin<Box<dyn Future<Output = Result<(), Arc<DriverError>>> + Send>>,
    status: Arc<DriverStatus>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

impl Future for Driver {
    type Output = Result<(), Arc<DriverError>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.status.started.store(true, Ordering::Relaxed);
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
        status: Arc<DriverStatus>,
    ) -> Self {
        let state = State {
            session,
            waiting: HashMap::new(),
            tokens: HashMap::new(),
            updates,
            remote,
            status: status.clone(),
        };
        Self {
            fut: Box::pin(state.run(io, commands)),
            status,
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
    status: Arc<DriverStatus>,
}

const READ_CHUNK: usize = 64 * 1024;
/// Commands taken from the channel per wake-up, so that pipelined requests share a write.
const COMMAND_BATCH: usize = 256;

impl State {
    async fn run(
        mut self,
        io: Box<dyn Io>,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) -> Result<(), Arc<DriverError>> {
        let result = self.pump(io, &mut commands).await.map_err(Arc::new);
        let failure = || match &result {
            Ok(()) => Failure::Stopped,
            Err(e) => Failure::Disconnected(e.clone()),
        };
        // Recorded before the channel closes, so a request that finds it closed finds this.
        if let Err(e) = &result {
            let _ = self.status.ended.set(e.clone());
        }
        commands.close();
        for (_, (_, reply)) in self.waiting.drain() {
            let _ = reply.send(Err(failure()));
        }
        while let Ok(cmd) = commands.try_recv() {
            if let Command::Request { reply, .. } = cmd {
                let _ = reply.send(Err(failure()));
            }
        }
        if let Err(e) = &result {
            tracing::debug!(error = %e, remote = %self.remote, "OVSDB connection ended");
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
            if out.is_empty()
                && let Some(b) = self.session.poll_transmit()
            {
                out = b;
            }
            if !handles_open && self.waiting.is_empty() && out.is_empty() && !needs_flush {
                return Ok(());
            }
            let timeout = self.session.poll_timeout().map(Instant::from_std);
            tokio::select! {
                biased;
                read = rd.read(&mut rbuf) => match read {
                    Ok(0) => return Err(self.closed()),
                    Ok(n) => self.session.handle_input(Instant::now().into_std(), &rbuf[..n]),
                    Err(source) => return Err(self.io_error(source)),
                },
                sent = write_or_flush(&mut wr, &out), if !out.is_empty() || needs_flush => match sent {
                    Ok(Some(0)) => return Err(self.closed()),
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
                        self.command(cmd)?;
                        for _ in 0..COMMAND_BATCH {
                            match commands.try_recv() {
                                Ok(cmd) => self.command(cmd)?,
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

    fn closed(&self) -> DriverError {
        DriverError::Closed {
            remote: self.remote.clone(),
            mid_message: self.session.is_mid_message(),
        }
    }

    fn io_error(&self, source: std::io::Error) -> DriverError {
        DriverError::Io {
            remote: self.remote.clone(),
            source,
        }
    }

    fn command(&mut self, cmd: Command) -> Result<(), DriverError> {
        match cmd {
            Command::Request {
                token,
                method,
                params,
                reply,
            } => {
                if reply.is_closed() {
                    return Ok(());
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
            Command::Abandon { reason } => {
                return Err(DriverError::Abandoned {
                    remote: self.remote.clone(),
                    reason,
                });
            }
        }
        Ok(())
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
