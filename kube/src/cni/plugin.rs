//! The plugin process: reads the CNI environment and stdin, answers `VERSION` itself and
//! forwards every other command to the node agent over its unix socket, blocking, with bounded
//! waits. No runtime, no threads: it lives for one command.

use std::collections::BTreeMap;
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::protocol::{MAX_MESSAGE, Reply, Request};
use super::spec::{self, CniCommand, CniEnv, CniError, CniVersion, MAX_CONFIG, NetConf};

/// How long the plugin keeps trying to connect to the agent's socket (absent, or refusing)
/// before it gives up.
pub const CONNECT_WAIT: Duration = Duration::from_secs(2);
/// The pause between two connection attempts.
pub const CONNECT_RETRY: Duration = Duration::from_millis(100);

/// Whether this process was started as a CNI plugin: no arguments and `CNI_COMMAND` set, as a
/// runtime runs `<bin_dir>/<type>`. A binary that doubles as the plugin checks this first
/// thing in `main` and then calls [`run_process`].
#[must_use]
pub fn invoked_as_plugin() -> bool {
    std::env::args_os().len() == 1 && std::env::var_os("CNI_COMMAND").is_some()
}

/// [`run`] on this process's `CNI_*` environment and standard streams; returns the exit code.
/// Values that are not UTF-8 are kept lossily: a path with U+FFFD names nothing, and the agent
/// says so.
#[must_use]
pub fn run_process() -> i32 {
    let env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())))
        .filter(|(k, _)| k.starts_with("CNI_"))
        .collect();
    run(
        &env,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
    )
}

/// Runs one CNI command: `env` holds the `CNI_*` variables, `stdin` the network
/// configuration. Prints the result (`ADD`, `VERSION`), nothing (`DEL`, `CHECK`, `STATUS`,
/// `GC`) or the CNI error object on `stdout`, and returns the exit code: 0, or 1 with an error.
/// A line goes to stderr only when `DEL` succeeds without the agent (see [`crate::cni`]).
pub fn run(env: &BTreeMap<String, String>, stdin: &mut impl Read, stdout: &mut impl Write) -> i32 {
    let input = read_config(stdin);
    let version = input
        .as_ref()
        .ok()
        .and_then(|bytes| NetConf::requested_version(bytes));
    let (out, code) = match invoke(env, input, version) {
        Ok(Some(v)) => (Some(v), 0),
        Ok(None) => (None, 0),
        Err(e) => (Some(e.to_json(version.unwrap_or(CniVersion::V1_0_0))), 1),
    };
    if let Some(v) = out {
        let written = serde_json::to_writer(&mut *stdout, &v)
            .map_err(io::Error::from)
            .and_then(|()| stdout.write_all(b"\n"))
            .and_then(|()| stdout.flush());
        if let Err(e) = written {
            eprintln!("ovnkit cni: writing to stdout failed: {e}");
            return 1;
        }
    }
    code
}

/// Reads stdin up to [`MAX_CONFIG`] bytes.
fn read_config(stdin: &mut impl Read) -> Result<Vec<u8>, CniError> {
    let mut bytes = Vec::new();
    stdin
        .take(MAX_CONFIG as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            CniError::new(
                CniError::IO_FAILURE,
                format!("reading the network configuration from stdin failed: {e}"),
            )
        })?;
    if bytes.len() > MAX_CONFIG {
        return Err(spec::too_large(bytes.len()));
    }
    Ok(bytes)
}

fn invoke(
    vars: &BTreeMap<String, String>,
    input: Result<Vec<u8>, CniError>,
    version: Option<CniVersion>,
) -> Result<Option<Value>, CniError> {
    if CniEnv::command_of(vars)? == CniCommand::Version {
        return Ok(Some(spec::version_json(version)));
    }
    let env = CniEnv::from_map(vars)?;
    let conf = NetConf::parse(&input?)?;
    let Some(request) = spec::request(&env, &conf)? else {
        return Ok(Some(spec::version_json(version)));
    };
    let socket = &conf.agent_socket;
    let reply = match exchange(socket, conf.timeout, &request) {
        Ok(reply) => reply,
        Err(Exchange::Unreachable(e)) if env.command == CniCommand::Del => {
            eprintln!(
                "ovnkit cni: DEL of {} ({}): the agent at {} is unreachable ({e}); \
                 reporting success, the agent releases the attachment when it starts",
                env.container_id,
                env.ifname,
                socket.display()
            );
            return Ok(None);
        }
        Err(e) => return Err(e.into_cni(env.command, socket, conf.timeout)),
    };
    match (env.command, reply) {
        (CniCommand::Add, Reply::Added { attachment }) => {
            Ok(Some(spec::result_json(conf.cni_version, &attachment)))
        }
        (CniCommand::Add, Reply::Done) => Err(CniError::new(
            CniError::DECODE_FAILURE,
            format!(
                "the ovnkit agent at {} answered ADD with done instead of the attachment",
                socket.display()
            ),
        )),
        (_, Reply::Done) => Ok(None),
        (command, Reply::Added { .. }) => Err(CniError::new(
            CniError::DECODE_FAILURE,
            format!(
                "the ovnkit agent at {} answered {command} with an attachment instead of done",
                socket.display()
            ),
        )),
        (_, Reply::Failed { failure }) => Err(CniError {
            code: failure.code,
            msg: failure.msg,
            details: failure.details,
        }),
    }
}

/// How talking to the agent failed.
enum Exchange {
    /// No connection within [`CONNECT_WAIT`]; the last attempt's error.
    Unreachable(io::Error),
    /// No complete reply within the timeout.
    TimedOut,
    /// Writing the request or reading the reply failed.
    Io(&'static str, io::Error),
    /// The connection ended before the reply did (`true`: in the middle of it).
    Closed(bool),
    /// The reply is over [`MAX_MESSAGE`].
    TooLarge,
    /// The reply is not a [`Reply`].
    Malformed(serde_json::Error),
    /// The request is over [`MAX_MESSAGE`].
    RequestTooLarge(usize),
}

impl Exchange {
    fn into_cni(self, command: CniCommand, socket: &Path, timeout: Duration) -> CniError {
        let socket = socket.display();
        match self {
            Exchange::Unreachable(e) => CniError::new(
                if command == CniCommand::Status {
                    CniError::NOT_AVAILABLE
                } else {
                    CniError::TRY_AGAIN_LATER
                },
                format!("cannot reach the ovnkit agent at {socket}: {e}"),
            )
            .with_details(format!(
                "tried for {}s; is the ovnkit agent running on this node?",
                CONNECT_WAIT.as_secs()
            )),
            Exchange::TimedOut => CniError::new(
                CniError::TRY_AGAIN_LATER,
                format!(
                    "the ovnkit agent at {socket} did not answer {command} within {}s (timeoutSeconds)",
                    timeout.as_secs()
                ),
            ),
            Exchange::Io(what, e) => CniError::new(
                CniError::IO_FAILURE,
                format!("{what} the ovnkit agent at {socket} failed: {e}"),
            ),
            Exchange::Closed(mid) => CniError::new(
                CniError::IO_FAILURE,
                format!(
                    "the ovnkit agent at {socket} closed the connection {}",
                    if mid {
                        "in the middle of its reply"
                    } else {
                        "without a reply"
                    }
                ),
            ),
            Exchange::TooLarge => CniError::new(
                CniError::IO_FAILURE,
                format!("the reply of the ovnkit agent at {socket} is over {MAX_MESSAGE} bytes"),
            ),
            Exchange::Malformed(e) => CniError::new(
                CniError::DECODE_FAILURE,
                format!("the reply of the ovnkit agent at {socket} cannot be decoded: {e}"),
            ),
            Exchange::RequestTooLarge(n) => CniError::new(
                CniError::INVALID_CONFIG,
                format!(
                    "network configuration: the request to the agent would be {n} bytes, over {MAX_MESSAGE}"
                ),
            ),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// One request and its reply on a new connection to `socket`.
/// One connection attempt, given up after `wait`: `connect` on a unix socket blocks while the
/// listener's backlog is full (an agent alive but not accepting), and std has no timeout for
/// it, so the attempt runs on its own thread (left behind if it never returns; the plugin
/// process ends soon after).
fn connect_within(socket: &Path, wait: Duration) -> io::Result<UnixStream> {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = socket.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(UnixStream::connect(path));
    });
    rx.recv_timeout(wait).unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the agent accepts no connection (its backlog is full)",
        ))
    })
}

fn exchange(socket: &Path, timeout: Duration, request: &Request) -> Result<Reply, Exchange> {
    let mut line = serde_json::to_vec(request).map_err(Exchange::Malformed)?;
    if line.len() > MAX_MESSAGE {
        return Err(Exchange::RequestTooLarge(line.len()));
    }
    line.push(b'\n');

    let started = Instant::now();
    let mut stream = loop {
        let left = CONNECT_WAIT.saturating_sub(started.elapsed());
        match connect_within(socket, left.max(CONNECT_RETRY)) {
            Ok(s) => break s,
            Err(e) if started.elapsed() >= CONNECT_WAIT => return Err(Exchange::Unreachable(e)),
            Err(_) => std::thread::sleep(CONNECT_RETRY),
        }
    };

    let deadline = Instant::now() + timeout;
    let sending = "sending the request to";
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| Exchange::Io(sending, e))?;
    stream.write_all(&line).map_err(|e| {
        if is_timeout(&e) {
            Exchange::TimedOut
        } else {
            Exchange::Io(sending, e)
        }
    })?;

    let mut reply = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Exchange::TimedOut);
        }
        let reading = "reading the reply of";
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| Exchange::Io(reading, e))?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => return Err(Exchange::TimedOut),
            Err(e) => return Err(Exchange::Io(reading, e)),
        };
        if n == 0 {
            // The agent closed without a newline: take what came if it is a whole reply.
            if reply.is_empty() {
                return Err(Exchange::Closed(false));
            }
            return serde_json::from_slice(&reply).map_err(|_| Exchange::Closed(true));
        }
        let newline = chunk[..n].iter().position(|&b| b == b'\n');
        reply.extend_from_slice(&chunk[..newline.unwrap_or(n)]);
        if reply.len() > MAX_MESSAGE {
            return Err(Exchange::TooLarge);
        }
        if newline.is_some() {
            return serde_json::from_slice(&reply).map_err(Exchange::Malformed);
        }
    }
}
