//! Network namespaces owned by the lab.

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread;

use nix::sched::{CloneFlags, setns};

use crate::cmd;
use crate::error::{Error, Result};

/// A network namespace created by the lab, deleted (with its `/etc/netns/<name>` directory) when
/// dropped. It gets its own `resolv.conf` pointing at 127.0.0.1, so nothing inside ever asks the
/// host's resolver, and its loopback is up.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace `name`. Fails if it already exists.
    pub fn create(name: &str) -> Result<Netns> {
        cmd::output(Command::new("ip").args(["netns", "add", name]))?;
        let ns = Netns {
            name: name.to_string(),
        };
        let etc = ns.etc_dir();
        fs::create_dir_all(&etc)
            .map_err(|e| Error::io(format!("creating {}", etc.display()), e))?;
        fs::write(etc.join("resolv.conf"), "nameserver 127.0.0.1\n")
            .map_err(|e| Error::io(format!("writing {}/resolv.conf", etc.display()), e))?;
        ns.exec("ip", &["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn etc_dir(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(&self.name)
    }

    /// A command that runs `program` inside the namespace (through `ip netns exec`).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs `program args` inside the namespace; fails unless it exits 0; returns its stdout.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        cmd::output(self.command(program).args(args))
    }

    /// Runs `program args` inside the namespace and returns its output whatever its status.
    pub fn exec_raw(&self, program: &str, args: &[&str]) -> Result<Output> {
        cmd::raw_output(self.command(program).args(args))
    }

    /// Runs `f` on a new thread that has entered this namespace, and returns its result. Sockets
    /// that `f` opens live in the namespace. The calling thread is not affected.
    pub fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn(f)?.join()
    }

    /// Starts `f` on a new thread inside this namespace.
    pub fn spawn<T, F>(&self, f: F) -> Result<NsThread<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_in(self, f)
    }

    /// Whether a namespace called `name` exists.
    pub fn exists(name: &str) -> bool {
        PathBuf::from("/var/run/netns").join(name).exists()
    }
}

/// A network namespace a thread can enter: a lab [`Netns`], or a CRI pod's
/// ([`CriPod`](crate::CriPod)). The traffic helpers ([`tcp_throughput`](crate::tcp_throughput),
/// [`source_seen_by`](crate::source_seen_by)) take either.
pub trait EnterNetns {
    /// The namespace's file (`/var/run/netns/<name>`, or the runtime's bind mount).
    fn netns_file(&self) -> PathBuf;
    /// How messages name the namespace.
    fn netns_label(&self) -> String;
}

impl EnterNetns for Netns {
    fn netns_file(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }

    fn netns_label(&self) -> String {
        self.name.clone()
    }
}

/// Starts `f` on a new thread that has entered `ns` (a lab namespace or a CRI pod's). Sockets
/// `f` opens live in that namespace, also after they are handed to another thread; processes
/// it spawns start there.
pub fn spawn_in<T, F>(ns: &impl EnterNetns, f: F) -> Result<NsThread<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let path = ns.netns_file();
    let label = ns.netns_label();
    let file =
        File::open(&path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let handle = thread::Builder::new()
        .name(format!("netns-{label}"))
        .spawn(move || {
            setns(&file, CloneFlags::CLONE_NEWNET)?;
            drop(file);
            Ok(f())
        })
        .map_err(|e| Error::io("spawning a namespace thread", e))?;
    Ok(NsThread {
        handle,
        netns: label,
    })
}

/// A thread running inside a network namespace (see [`Netns::spawn`]).
#[derive(Debug)]
pub struct NsThread<T> {
    handle: thread::JoinHandle<Result<T, nix::Error>>,
    netns: String,
}

impl<T> NsThread<T> {
    /// Waits for the thread and returns what it returned. A panic inside is re-raised here.
    pub fn join(self) -> Result<T> {
        match self.handle.join() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(Error::io(
                format!("entering namespace {}", self.netns),
                e.into(),
            )),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Whether the thread has finished.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = cmd::raw_output(Command::new("ip").args(["netns", "del", &self.name]));
        let _ = fs::remove_dir_all(self.etc_dir());
    }
}
