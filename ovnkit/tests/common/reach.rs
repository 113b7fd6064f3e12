//! Reachability matrices of real connections between lab pods, in the manner of the upstream
//! Kubernetes NetworkPolicy e2e tests: every pod serves TCP and UDP on a few ports, every pod
//! probes every other pod (loopback is ignored, as upstream does) in parallel threads inside
//! the client's network namespace, and the matrix of what connected is compared with the
//! matrix expected.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ovn_testbed::{NsThread, Pod};

/// How long a probe waits for a connection or an answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1000);

/// A transport protocol of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// TCP listeners and UDP echo sockets on `ports` of a pod's address; stopped when dropped.
pub struct Servers {
    stop: Arc<AtomicBool>,
    thread: Option<NsThread<()>>,
}

impl Servers {
    /// Starts them in `pod`'s namespace.
    pub fn start(pod: &Pod, ports: &[u16]) -> Self {
        let ip = pod.ip();
        let ports = ports.to_vec();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = pod
            .netns()
            .spawn(move || {
                let bound: std::io::Result<Vec<(TcpListener, UdpSocket)>> = ports
                    .iter()
                    .map(|p| {
                        let addr = SocketAddr::new(ip, *p);
                        let t = TcpListener::bind(addr)?;
                        t.set_nonblocking(true)?;
                        let u = UdpSocket::bind(addr)?;
                        u.set_nonblocking(true)?;
                        Ok((t, u))
                    })
                    .collect();
                let sockets = match bound {
                    Ok(s) => {
                        let _ = tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let mut buf = [0u8; 64];
                while !flag.load(Ordering::Relaxed) {
                    let mut idle = true;
                    for (t, u) in &sockets {
                        match t.accept() {
                            Ok(_) => idle = false,
                            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                            Err(_) => {}
                        }
                        if let Ok((n, from)) = u.recv_from(&mut buf) {
                            let _ = u.send_to(&buf[..n], from);
                            idle = false;
                        }
                    }
                    if idle {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            })
            .expect("server thread");
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("servers in {}: {e}", pod.name()),
            Err(_) => panic!("servers in {} died", pod.name()),
        }
        Servers {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts one probe from `from` to `to:port`; its thread returns whether it connected (TCP)
/// or got its datagram echoed (UDP) within [`PROBE_TIMEOUT`].
pub fn probe(from: &Pod, to: IpAddr, port: u16, proto: Proto) -> NsThread<bool> {
    let addr = SocketAddr::new(to, port);
    from.netns()
        .spawn(move || match proto {
            Proto::Tcp => TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).is_ok(),
            Proto::Udp => {
                let any = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                let Ok(s) = UdpSocket::bind(any) else {
                    return false;
                };
                let _ = s.set_read_timeout(Some(PROBE_TIMEOUT));
                let mut buf = [0u8; 16];
                s.send_to(b"probe", addr).is_ok()
                    && s.recv_from(&mut buf).is_ok_and(|(n, _)| n == 5)
            }
        })
        .expect("probe thread")
}

/// Whether `pod` (`ns/name`) fits `pattern` (`ns/name`, `ns/*`, `*/name`, `*`).
fn fits(pattern: &str, pod: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let (pn, pp) = pattern.split_once('/').unwrap_or((pattern, "*"));
    let (n, p) = pod.split_once('/').unwrap_or((pod, ""));
    (pn == "*" || pn == n) && (pp == "*" || pp == p)
}

/// Which pod may connect to which: `(from, to) -> expected`.
#[derive(Debug, Clone)]
pub struct Matrix {
    pods: Vec<String>,
    expected: BTreeMap<(String, String), bool>,
}

impl Matrix {
    /// Every pair of `pods` (`ns/name`) expected `default`.
    pub fn new(pods: &[String], default: bool) -> Self {
        let mut expected = BTreeMap::new();
        for f in pods {
            for t in pods.iter().filter(|t| *t != f) {
                expected.insert((f.clone(), t.clone()), default);
            }
        }
        Matrix {
            pods: pods.to_vec(),
            expected,
        }
    }

    /// Pods fitting `from` to pods fitting `to` (patterns as `x/a`, `x/*`, `*`) expect `v`.
    pub fn expect(mut self, from: &str, to: &str, v: bool) -> Self {
        for ((f, t), e) in &mut self.expected {
            if fits(from, f) && fits(to, t) {
                *e = v;
            }
        }
        self
    }

    /// Everything into pods fitting `to` expects `v`.
    pub fn ingress(self, to: &str, v: bool) -> Self {
        self.expect("*", to, v)
    }

    /// Everything out of pods fitting `from` expects `v`.
    pub fn egress(self, from: &str, v: bool) -> Self {
        self.expect(from, "*", v)
    }

    /// The expectation of one pair.
    pub fn get(&self, from: &str, to: &str) -> bool {
        self.expected[&(from.to_owned(), to.to_owned())]
    }

    /// How many pairs expect to connect and how many not.
    pub fn counts(&self) -> (usize, usize) {
        let yes = self.expected.values().filter(|v| **v).count();
        (yes, self.expected.len() - yes)
    }

    /// The matrix as upstream prints it: rows from, columns to; `.` connects, `X` does not
    /// (as seen), `!` marks a pair that differs from what was expected.
    fn table(&self, actual: &BTreeMap<(String, String), bool>) -> String {
        let mut s = String::from("from\\to");
        for t in &self.pods {
            let _ = write!(s, " {t:>4}");
        }
        s.push('\n');
        for f in &self.pods {
            let _ = write!(s, "{f:>7}");
            for t in &self.pods {
                let cell = match (
                    self.expected.get(&(f.clone(), t.clone())),
                    actual.get(&(f.clone(), t.clone())),
                ) {
                    (None, _) => "-".to_owned(),
                    (Some(e), Some(a)) if e != a => format!("!{}", if *a { "." } else { "X" }),
                    (Some(e), _) => (if *e { "." } else { "X" }).to_owned(),
                };
                let _ = write!(s, " {cell:>4}");
            }
            s.push('\n');
        }
        s
    }
}

/// Probes every pair of `m` on `port`/`proto` and compares. A pair expected to connect that
/// did not is probed again (up to five times, waiting longer each time: a loaded machine may
/// be slow); a pair that connected against expectation is probed again after 1 and 2 s more
/// (a datapath flow of the rules before the change may live until the revalidator of a busy
/// `ovs-vswitchd` gets to it), and must be blocked by then.
///
/// # Panics
/// With the case name, the port and both matrices when they differ.
pub fn check(case: &str, pods: &BTreeMap<String, Pod>, m: &Matrix, port: u16, proto: Proto) {
    let run = |pairs: Vec<(String, String)>| -> BTreeMap<(String, String), bool> {
        let threads: Vec<_> = pairs
            .into_iter()
            .map(|(f, t)| {
                let th = probe(&pods[&f], pods[&t].ip(), port, proto);
                ((f, t), th)
            })
            .collect();
        threads
            .into_iter()
            .map(|(k, th)| (k, th.join().expect("probe")))
            .collect()
    };
    let mut actual = run(m.expected.keys().cloned().collect());
    for wait_ms in [250, 500, 1000, 2000, 4000] {
        let missing: Vec<(String, String)> = actual
            .iter()
            .filter(|(k, a)| m.expected[*k] && !**a)
            .map(|(k, _)| k.clone())
            .collect();
        if missing.is_empty() {
            break;
        }
        // A loaded machine (ovn-controller recomputing, the userspace datapath's upcalls)
        // may miss a probe's window: pairs that must connect get a few more tries.
        std::thread::sleep(Duration::from_millis(wait_ms));
        actual.extend(run(missing));
    }
    for wait_ms in [1000, 2000] {
        let through: Vec<(String, String)> = actual
            .iter()
            .filter(|(k, a)| !m.expected[*k] && **a)
            .map(|(k, _)| k.clone())
            .collect();
        if through.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(wait_ms));
        actual.extend(run(through));
    }
    if actual != m.expected {
        let wrong: Vec<String> = actual
            .iter()
            .filter(|(k, a)| m.expected[*k] != **a)
            .map(|((f, t), a)| format!("{f} -> {t}: {}", if *a { "connected" } else { "blocked" }))
            .collect();
        panic!(
            "case {case}: {proto:?} {port}: {} pairs differ ({}); seen (! where it differs from what was expected):\n{}",
            wrong.len(),
            wrong.join(", "),
            m.table(&actual)
        );
    }
}
