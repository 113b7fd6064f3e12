//! The `ovnkit controller` binary run the way an operator runs it, on a real OVN central, with
//! a manifest directory and a state directory; helpers to write manifests and read results.

#![allow(dead_code)] // Each test binary uses its own part of this module.

pub mod agent;
pub mod reach;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ovnkit::sandbox::procs::{ControllerProcess, log_tail};

/// A controller process ([`ControllerProcess`], the sandbox's too); killed (SIGKILL) and
/// reaped when dropped, with its log's tail printed when the test fails.
pub struct Controller {
    process: ControllerProcess,
    pub log: PathBuf,
}

impl Controller {
    /// Starts `ovnkit controller` on `nb` with `manifests` and `state`; its log goes to
    /// `log` (appended, so that restarts keep one log).
    pub fn start(nb: &str, manifests: &Path, state: &Path, log: &Path, extra: &[&str]) -> Self {
        let process = ControllerProcess::start(
            Path::new(env!("CARGO_BIN_EXE_ovnkit")),
            nb,
            manifests,
            state,
            log,
            extra,
        )
        .expect("ovnkit controller starts");
        Controller {
            process,
            log: log.to_owned(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        u32::try_from(self.process.pid()).expect("a PID")
    }

    /// SIGKILL, and reap.
    pub fn kill(mut self) {
        self.process.kill();
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        self.process.is_running()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.process.kill();
        if std::thread::panicking() {
            eprintln!("--- controller log (last lines) ---");
            eprintln!("{}", log_tail(&self.log, 60));
        }
    }
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A YAML string value.
fn q(s: &str) -> String {
    serde_json::to_string(s).expect("a string")
}

fn annotations_yaml(out: &mut String, annotations: &[(&str, &str)]) {
    if annotations.is_empty() {
        return;
    }
    out.push_str("  annotations:\n");
    for (k, v) in annotations {
        let _ = writeln!(out, "    {}: {}", q(k), q(v));
    }
}

/// A Namespace manifest.
pub fn namespace(name: &str, annotations: &[(&str, &str)]) -> String {
    let mut s = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n",
        q(name)
    );
    annotations_yaml(&mut s, annotations);
    s
}

/// A Node manifest naming its OVN chassis.
pub fn node(name: &str, chassis: &str) -> String {
    let mut s = format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {}\n",
        q(name)
    );
    annotations_yaml(&mut s, &[("ovnkit.io/chassis", chassis)]);
    s
}

/// A Pod manifest scheduled on `node`; owned by StatefulSet `statefulset` when given.
pub fn pod(
    ns: &str,
    name: &str,
    node: &str,
    annotations: &[(&str, &str)],
    statefulset: Option<&str>,
) -> String {
    let mut s = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {}\n  namespace: {}\n",
        q(name),
        q(ns)
    );
    annotations_yaml(&mut s, annotations);
    if let Some(sts) = statefulset {
        let _ = write!(
            s,
            "  ownerReferences:\n  - apiVersion: apps/v1\n    kind: StatefulSet\n    name: {}\n    uid: {}\n",
            q(sts),
            q(&format!("sts-{sts}"))
        );
    }
    let _ = write!(
        s,
        "spec:\n  nodeName: {}\n  containers:\n  - name: c\n    image: pause\n",
        q(node)
    );
    s
}

/// Writes `documents` into `dir/file` atomically (a hidden temporary file, then a rename).
pub fn write_manifest(dir: &Path, file: &str, documents: &[String]) {
    let tmp = dir.join(format!(".{file}.tmp"));
    fs::write(&tmp, documents.join("---\n")).expect("write manifest");
    fs::rename(&tmp, dir.join(file)).expect("rename manifest");
}

/// The annotations the controller wrote for `kind_file` (`pods.json`, `nodes.json`), by
/// object; empty until the file exists.
pub fn results(state: &Path, kind_file: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    match fs::read(state.join(kind_file)) {
        Ok(bytes) => serde_json::from_slice(&bytes).expect("a results file is JSON"),
        Err(_) => BTreeMap::new(),
    }
}

/// The events the controller reported, one JSON object each.
pub fn events(state: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(state.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event line is JSON"))
        .collect()
}

/// Rows of `ovn-nbctl --format=csv --data=bare --no-headings --columns=... list TABLE`.
pub fn nb_rows(nbctl: impl Fn(&[&str]) -> String, table: &str, columns: &str) -> Vec<Vec<String>> {
    let out = nbctl(&[
        "--format=csv",
        "--data=bare",
        "--no-headings",
        &format!("--columns={columns}"),
        "list",
        table,
    ]);
    out.lines()
        .filter(|l| !l.is_empty())
        .map(split_csv)
        .collect()
}

/// One CSV line (fields may be quoted, with `""` for a quote).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}
