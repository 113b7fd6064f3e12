//! Real traffic between namespaces: ping and TCP throughput.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::netns::{EnterNetns, Netns, spawn_in};

/// What a ping run saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PingStats {
    /// Echo requests sent.
    pub transmitted: u32,
    /// Echo replies received.
    pub received: u32,
}

impl PingStats {
    /// Lost replies in percent (0.0 to 100.0).
    pub fn loss_percent(&self) -> f64 {
        if self.transmitted == 0 {
            return 100.0;
        }
        100.0 * f64::from(self.transmitted - self.received.min(self.transmitted))
            / f64::from(self.transmitted)
    }
}

/// Pings `dst` from inside `ns`.
pub fn ping(ns: &Netns, dst: IpAddr, count: u32) -> Result<PingStats> {
    ping_with(ns.command("ping"), ns.name(), dst, count)
}

/// Runs `command` (`ping`, or a command that runs it in some namespace) with the lab's ping
/// arguments appended; `place` names where it runs, for errors.
pub(crate) fn ping_with(
    mut command: std::process::Command,
    place: &str,
    dst: IpAddr,
    count: u32,
) -> Result<PingStats> {
    let count = count.max(1).to_string();
    let dst = dst.to_string();
    command.args(["-n", "-q", "-c", &count, "-i", "0.2", "-W", "1", &dst]);
    let out = crate::cmd::raw_output(&mut command)?;
    let text = String::from_utf8_lossy(&out.stdout);
    // Exit status 1 means "some replies missing", which is a result, not an error.
    parse_ping(&text).ok_or_else(|| Error::Parse {
        what: format!("ping {dst} in {place}"),
        output: format!("{text}{}", String::from_utf8_lossy(&out.stderr)),
    })
}

/// Parses `N packets transmitted, M received` from ping's summary.
pub(crate) fn parse_ping(text: &str) -> Option<PingStats> {
    let line = text.lines().find(|l| l.contains("packets transmitted"))?;
    let mut fields = line.split(',').map(str::trim);
    let transmitted = fields.next()?.split_whitespace().next()?.parse().ok()?;
    let received = fields.next()?.split_whitespace().next()?.parse().ok()?;
    Some(PingStats {
        transmitted,
        received,
    })
}

/// A TCP transfer as the receiver measured it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    /// Bytes received.
    pub bytes: u64,
    /// From the first byte received to the end of the stream.
    pub elapsed: Duration,
}

impl Throughput {
    /// The rate in kbit/s (1 kbit = 1000 bit).
    pub fn kbit_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs <= 0.0 {
            0.0
        } else {
            self.bytes as f64 * 8.0 / secs / 1000.0
        }
    }

    /// The rate in Mbit/s.
    pub fn mbit_per_s(&self) -> f64 {
        self.kbit_per_s() / 1000.0
    }
}

/// Ports for throughput listeners, unique within this process.
static NEXT_PORT: AtomicU16 = AtomicU16::new(20000);

/// How long a stalled transfer may sit idle before it fails.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends TCP data from namespace `from` to `to_addr` (an address inside `to`) for `duration`
/// and returns what the receiver measured.
pub fn tcp_throughput(
    from: &impl EnterNetns,
    to: &impl EnterNetns,
    to_addr: IpAddr,
    duration: Duration,
) -> Result<Throughput> {
    let port = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
    let addr = SocketAddr::new(to_addr, port);
    let (bound_tx, bound_rx) = mpsc::channel();
    let receiver = spawn_in(to, move || -> std::io::Result<Throughput> {
        let listener = TcpListener::bind(addr);
        let _ = bound_tx.send(listener.as_ref().map(drop).map_err(|e| e.kind()));
        let listener = listener?;
        let (stream, _) = accept_within(&listener, IDLE_TIMEOUT)?;
        receive_all(stream)
    })?;
    match bound_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(kind)) => {
            return Err(Error::io(
                format!("binding {addr} in {}", to.netns_label()),
                kind.into(),
            ));
        }
        Err(_) => {
            return Err(Error::Invalid(format!(
                "receiver in {} died",
                to.netns_label()
            )));
        }
    }
    let sender = spawn_in(from, move || -> std::io::Result<u64> {
        let mut stream = TcpStream::connect_timeout(&addr, IDLE_TIMEOUT)?;
        stream.set_write_timeout(Some(IDLE_TIMEOUT))?;
        let chunk = vec![0x5a_u8; 64 * 1024];
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < duration {
            stream.write_all(&chunk)?;
            sent += chunk.len() as u64;
        }
        stream.shutdown(std::net::Shutdown::Write)?;
        Ok(sent)
    })?;
    let sent = sender.join()?;
    let received = receiver.join()?;
    let sent =
        sent.map_err(|e| Error::io(format!("sending to {addr} from {}", from.netns_label()), e))?;
    let received = received
        .map_err(|e| Error::io(format!("receiving on {addr} in {}", to.netns_label()), e))?;
    if received.bytes != sent {
        return Err(Error::Invalid(format!(
            "TCP to {addr}: sent {sent} bytes but {} arrived",
            received.bytes
        )));
    }
    Ok(received)
}

fn accept_within(
    listener: &TcpListener,
    timeout: Duration,
) -> std::io::Result<(TcpStream, SocketAddr)> {
    listener.set_nonblocking(true)?;
    let start = Instant::now();
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                stream.set_nonblocking(false)?;
                return Ok((stream, peer));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && start.elapsed() < timeout => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                return Err(std::io::Error::new(
                    ErrorKind::TimedOut,
                    "no connection arrived",
                ));
            }
            Err(e) => return Err(e),
        }
    }
}

fn receive_all(mut stream: TcpStream) -> std::io::Result<Throughput> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    let mut first = None;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        first.get_or_insert_with(Instant::now);
        bytes += n as u64;
    }
    let elapsed = first.map(|t| t.elapsed()).unwrap_or_default();
    Ok(Throughput { bytes, elapsed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ping_summary_with_loss() {
        let text = "--- 10.0.0.2 ping statistics ---\n\
                    10 packets transmitted, 7 received, 30% packet loss, time 1805ms\n";
        let stats = parse_ping(text).unwrap();
        assert_eq!(
            stats,
            PingStats {
                transmitted: 10,
                received: 7
            }
        );
        assert!((stats.loss_percent() - 30.0).abs() < 1e-9);
    }

    #[test]
    fn parses_ping_summary_with_errors_field() {
        let text = "5 packets transmitted, 0 received, +5 errors, 100% packet loss, time 4090ms\n";
        assert_eq!(parse_ping(text).unwrap().loss_percent(), 100.0);
    }

    #[test]
    fn rejects_output_without_summary() {
        assert_eq!(parse_ping("ping: connect: Network is unreachable\n"), None);
    }

    #[test]
    fn throughput_is_bits_over_time() {
        let t = Throughput {
            bytes: 1_250_000,
            elapsed: Duration::from_secs(1),
        };
        assert!((t.kbit_per_s() - 10_000.0).abs() < 1e-6);
        assert!((t.mbit_per_s() - 10.0).abs() < 1e-9);
    }
}
