//! Traffic of the checks: each pod's small TCP/UDP server answering its name, and the probes
//! a pod sends (TCP, UDP, ping, a DNS query). Sockets are made on a thread that entered the
//! pod's network namespace, so they live there; the servers then run on the sandbox's tokio
//! runtime.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use ovn_testbed::EnterNetns;
use tokio::io::AsyncWriteExt;

/// The port every pod serves on (TCP and UDP), the one the reachability matrix probes.
pub const PROBE_PORT: u16 = 8080;

/// A pod's servers; stopped when dropped.
#[derive(Debug)]
pub struct PodServers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for PodServers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts servers in `pod`'s namespace answering `answer` (a line): TCP on `tcp` ports, UDP on
/// `udp` ports (every address of the pod).
pub fn serve(
    rt: &tokio::runtime::Handle,
    pod: &impl EnterNetns,
    answer: &str,
    tcp: &[u16],
    udp: &[u16],
) -> Result<PodServers> {
    let (tcp, udp) = (tcp.to_vec(), udp.to_vec());
    let (listeners, sockets) = ovn_testbed::spawn_in(pod, move || -> io::Result<_> {
        let any = |p| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), p);
        let mut listeners = Vec::new();
        for p in tcp {
            let l = std::net::TcpListener::bind(any(p))?;
            l.set_nonblocking(true)?;
            listeners.push(l);
        }
        let mut sockets = Vec::new();
        for p in udp {
            let s = UdpSocket::bind(any(p))?;
            s.set_nonblocking(true)?;
            sockets.push(s);
        }
        Ok((listeners, sockets))
    })?
    .join()?
    .with_context(|| format!("binding the servers of {}", pod.netns_label()))?;
    let mut tasks = Vec::new();
    let line = format!("{answer}\n");
    for l in listeners {
        let line = line.clone();
        tasks.push(rt.spawn(async move {
            let Ok(l) = tokio::net::TcpListener::from_std(l) else {
                return;
            };
            while let Ok((mut stream, _)) = l.accept().await {
                let line = line.clone();
                tokio::spawn(async move {
                    let _ = stream.write_all(line.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        }));
    }
    for s in sockets {
        let line = line.clone();
        tasks.push(rt.spawn(async move {
            let Ok(s) = tokio::net::UdpSocket::from_std(s) else {
                return;
            };
            let mut buf = [0u8; 512];
            while let Ok((_, peer)) = s.recv_from(&mut buf).await {
                let _ = s.send_to(line.as_bytes(), peer).await;
            }
        }));
    }
    Ok(PodServers { tasks })
}

/// Runs `f` on a thread inside `ns` and returns its result.
pub fn in_netns<T: Send + 'static>(
    ns: &impl EnterNetns,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    Ok(ovn_testbed::spawn_in(ns, f)?.join()?)
}

/// Connects to `addr` and reads the line the server sends (call it inside a namespace).
pub fn tcp_ask(addr: SocketAddr, timeout: Duration) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text.trim().to_owned())
}

/// Sends one datagram to `addr` and reads the answer (call it inside a namespace).
pub fn udp_ask(addr: SocketAddr, timeout: Duration) -> io::Result<String> {
    let socket = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))?;
    socket.set_read_timeout(Some(timeout))?;
    socket.send_to(b"?", addr)?;
    let mut buf = [0u8; 512];
    let (n, _) = socket.recv_from(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).trim().to_owned())
}

/// One ICMP echo to `dst` with `ping` (call it inside a namespace: a process started from a
/// thread that entered a network namespace starts in it). Whether the reply came.
pub fn ping_once(dst: IpAddr) -> bool {
    Command::new("ping")
        .args(["-n", "-q", "-c", "1", "-W", "1", &dst.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A DNS question for the A records of `name`, with id `id` and recursion desired.
pub fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(u8::try_from(label.len()).unwrap_or(63).min(63));
        q.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// The answer to [`dns_query`] `id`: its response code and the IPv4 addresses of its A
/// records; `None` when it is not a well-formed answer to that question.
pub fn dns_answer(id: u16, packet: &[u8]) -> Option<(u8, Vec<IpAddr>)> {
    let word = |at: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *packet.get(at)?,
            *packet.get(at + 1)?,
        ])))
    };
    if word(0)? != usize::from(id) || packet.get(2)? & 0x80 == 0 {
        return None;
    }
    let rcode = packet.get(3)? & 0x0f;
    let (questions, answers) = (word(4)?, word(6)?);
    let skip_name = |mut at: usize| -> Option<usize> {
        loop {
            let len = *packet.get(at)?;
            if len & 0xc0 == 0xc0 {
                return Some(at + 2);
            }
            if len == 0 {
                return Some(at + 1);
            }
            at += 1 + usize::from(len);
        }
    };
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(at)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..answers {
        at = skip_name(at)?;
        let (kind, len) = (word(at)?, word(at + 8)?);
        let data = packet.get(at + 10..at + 10 + len)?;
        if kind == 1 && len == 4 {
            out.push(IpAddr::V4(Ipv4Addr::new(
                data[0], data[1], data[2], data[3],
            )));
        }
        at += 10 + len;
    }
    Some((rcode, out))
}

/// Asks `server` (UDP 53) for the A records of `name` (call it inside a namespace); tries
/// `tries` times, each waiting `timeout`.
pub fn resolve(
    server: IpAddr,
    name: &str,
    timeout: Duration,
    tries: u32,
) -> io::Result<(u8, Vec<IpAddr>)> {
    let socket = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))?;
    socket.set_read_timeout(Some(timeout))?;
    let mut last = io::Error::new(io::ErrorKind::TimedOut, "no answer");
    for attempt in 0..tries.max(1) {
        let id = 0x5a00 | u16::try_from(attempt & 0xff).unwrap_or(0);
        socket.send_to(&dns_query(id, name), SocketAddr::new(server, 53))?;
        let mut buf = [0u8; 1500];
        loop {
            match socket.recv_from(&mut buf) {
                Ok((n, _)) => {
                    if let Some(answer) = dns_answer(id, &buf[..n]) {
                        return Ok(answer);
                    }
                }
                Err(e) => {
                    last = e;
                    break;
                }
            }
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dns_answer_with_a_compressed_name_gives_its_addresses() {
        let q = dns_query(0x5a01, "web.apps.svc.cluster.local");
        assert_eq!(&q[12..16], b"\x03web");
        let mut a = q.clone();
        a[2] = 0x81;
        a[3] = 0x80;
        a[7] = 2; // two answers
        for ip in [[10, 96, 0, 100], [10, 96, 0, 101]] {
            a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
            a.extend_from_slice(&ip);
        }
        let (rcode, ips) = dns_answer(0x5a01, &a).unwrap();
        assert_eq!(rcode, 0);
        assert_eq!(
            ips,
            vec![
                IpAddr::V4(Ipv4Addr::new(10, 96, 0, 100)),
                IpAddr::V4(Ipv4Addr::new(10, 96, 0, 101))
            ]
        );
        assert_eq!(dns_answer(0x5a02, &a), None, "another question's answer");
        assert_eq!(dns_answer(0x5a01, &q), None, "a question is no answer");
        assert_eq!(dns_answer(0x5a01, &a[..a.len() - 2]), None, "truncated");
    }
}
