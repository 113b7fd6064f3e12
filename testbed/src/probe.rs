//! Long-running probes: a continuous pinger that measures outages, and a TCP server that tells
//! each client which source address it saw (to check SNAT and gateways).

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::netns::{EnterNetns, Netns, NsThread, spawn_in};

/// A `ping` running in the background from a namespace, with the arrival time of every reply.
///
/// Use it to check that connectivity never stops while something changes, or to measure how
/// long an outage lasted (the longest gap between two replies).
#[derive(Debug)]
pub struct Pinger {
    child: Child,
    reader: Option<thread::JoinHandle<()>>,
    replies: Arc<Mutex<Vec<Duration>>>,
    started: Instant,
    interval: Duration,
}

/// What a [`Pinger`] saw.
#[derive(Debug, Clone, PartialEq)]
pub struct PingTimeline {
    /// How long the pinger ran.
    pub ran_for: Duration,
    /// The interval between echo requests.
    pub interval: Duration,
    /// When each reply arrived, from the start.
    pub replies: Vec<Duration>,
}

impl PingTimeline {
    /// Requests sent (approximately `ran_for / interval`).
    pub fn sent(&self) -> u64 {
        (self.ran_for.as_secs_f64() / self.interval.as_secs_f64()).floor() as u64 + 1
    }

    /// The longest stretch without a reply: between the start and the first reply, between two
    /// replies, or between the last reply and the end. An unbroken run gives about one interval.
    pub fn longest_gap(&self) -> Duration {
        let mut previous = Duration::ZERO;
        let mut longest = Duration::ZERO;
        for &at in self.replies.iter().chain([&self.ran_for]) {
            longest = longest.max(at.saturating_sub(previous));
            previous = at;
        }
        longest
    }

    /// The gaps longer than `threshold`, as (start, length) from the start of the run.
    pub fn outages(&self, threshold: Duration) -> Vec<(Duration, Duration)> {
        let mut previous = Duration::ZERO;
        let mut out = Vec::new();
        for &at in self.replies.iter().chain([&self.ran_for]) {
            let gap = at.saturating_sub(previous);
            if gap > threshold {
                out.push((previous, gap));
            }
            previous = at;
        }
        out
    }
}

impl Pinger {
    /// Starts pinging `dst` from `ns` every `interval` (at least 10 ms).
    pub fn start(ns: &Netns, dst: IpAddr, interval: Duration) -> Result<Pinger> {
        let interval = interval.max(Duration::from_millis(10));
        let seconds = format!("{:.3}", interval.as_secs_f64());
        let mut command = ns.command("ping");
        command
            .args(["-n", "-i", &seconds, "-W", "1", &dst.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().map_err(|source| Error::Spawn {
            command: format!("ping {dst} in {}", ns.name()),
            source,
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Invalid("ping has no stdout".into()))?;
        let replies = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let sink = replies.clone();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if line.contains("bytes from") {
                    sink.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(started.elapsed());
                }
            }
        });
        Ok(Pinger {
            child,
            reader: Some(reader),
            replies,
            started,
            interval,
        })
    }

    /// Replies so far.
    pub fn replies(&self) -> usize {
        self.replies.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Stops the pinger and returns what it saw.
    pub fn stop(mut self) -> PingTimeline {
        let ran_for = self.started.elapsed();
        self.halt();
        let replies = std::mem::take(&mut *self.replies.lock().unwrap_or_else(|e| e.into_inner()));
        PingTimeline {
            ran_for,
            interval: self.interval,
            replies,
        }
    }

    fn halt(&mut self) {
        // Our own child: killed through its handle, never by name.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A TCP server that answers every connection with the client's source address (one line) and
/// closes it. Run it on an external host to see what address a pod's traffic leaves with.
#[derive(Debug)]
pub struct SourceEcho {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<NsThread<()>>,
    seen: Arc<Mutex<Vec<IpAddr>>>,
}

impl SourceEcho {
    /// Starts the server in `ns` on `addr` (an address of that namespace).
    pub fn start(ns: &Netns, addr: SocketAddr) -> Result<SourceEcho> {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (flag, log) = (stop.clone(), seen.clone());
        let thread = ns.spawn(move || {
            let listener = match TcpListener::bind(addr).and_then(|l| {
                l.set_nonblocking(true)?;
                Ok(l)
            }) {
                Ok(l) => {
                    let _ = tx.send(Ok(()));
                    l
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, peer)) => {
                        log.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(peer.ip());
                        let _ = stream.set_nonblocking(false);
                        let _ = writeln!(stream, "{}", peer.ip());
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        })?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::io(format!("binding {addr} in {}", ns.name()), e)),
            Err(_) => return Err(Error::Invalid(format!("server in {} died", ns.name()))),
        }
        Ok(SourceEcho {
            addr,
            stop,
            thread: Some(thread),
            seen,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every source address seen so far, in order.
    pub fn seen(&self) -> Vec<IpAddr> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for SourceEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Connects from `ns` to a [`SourceEcho`] at `server` and returns the source address the server
/// saw.
pub fn source_seen_by(
    ns: &impl EnterNetns,
    server: SocketAddr,
    timeout: Duration,
) -> Result<IpAddr> {
    let answer = spawn_in(ns, move || -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&server, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    })?
    .join()?;
    let text =
        answer.map_err(|e| Error::io(format!("asking {server} from {}", ns.netns_label()), e))?;
    text.trim().parse().map_err(|_| Error::Parse {
        what: format!("answer of {server}"),
        output: text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline(replies: &[u64], ran_for: u64) -> PingTimeline {
        PingTimeline {
            ran_for: Duration::from_millis(ran_for),
            interval: Duration::from_millis(100),
            replies: replies
                .iter()
                .map(|&ms| Duration::from_millis(ms))
                .collect(),
        }
    }

    #[test]
    fn an_unbroken_run_has_gaps_of_one_interval() {
        let t = timeline(&[100, 200, 300, 400], 450);
        assert_eq!(t.longest_gap(), Duration::from_millis(100));
        assert!(t.outages(Duration::from_millis(150)).is_empty());
    }

    #[test]
    fn an_outage_is_the_gap_between_replies_around_it() {
        let t = timeline(&[100, 200, 2700, 2800], 2850);
        assert_eq!(t.longest_gap(), Duration::from_millis(2500));
        assert_eq!(
            t.outages(Duration::from_millis(500)),
            vec![(Duration::from_millis(200), Duration::from_millis(2500))]
        );
    }

    #[test]
    fn no_reply_at_all_is_one_outage_of_the_whole_run() {
        let t = timeline(&[], 1000);
        assert_eq!(t.longest_gap(), Duration::from_millis(1000));
    }
}
