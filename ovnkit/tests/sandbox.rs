//! `ovnkit sandbox` through the binary, as a user runs it: `up --json` on the default
//! manifests (2 nodes) passes every check of its report, carries the daemons' metrics (in
//! the report and in `status`), follows an edit of the manifests while it runs (`--keep`),
//! and `down` leaves nothing of it; `down` after a SIGKILLed `up` removes everything too.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ovn_testbed::{Lab, namespaces_with_prefix, process_alive};
use ovnkit::sandbox::objects::DEFAULT_MANIFESTS;
use ovnkit::sandbox::report::{Cell, Matrix, Metrics, Outcome, PodRow, Report};
use ovnkit::sandbox::status::Status;

const BIN: &str = env!("CARGO_BIN_EXE_ovnkit");

/// Whether the lab can run here (`None` skips, except with CI=true, where it panics).
fn lab_available() -> bool {
    Lab::for_test().is_some()
}

/// `ovnkit sandbox up` running in the background, brought down (`ovnkit sandbox down`) when
/// dropped, a failed assertion included, so that a failing test leaves no lab behind.
struct Up {
    child: Child,
    state: PathBuf,
}

impl Drop for Up {
    fn drop(&mut self) {
        if self.state.exists() {
            let _ = run(&[
                "sandbox",
                "down",
                "--dir",
                &self.state.display().to_string(),
            ]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ovnkit sandbox up ... --dir <state>` in the background; stdout and stderr into files of
/// `dir`.
fn up(dir: &Path, state: &Path, args: &[&str]) -> Up {
    let out = fs::File::create(dir.join("up.out")).unwrap();
    let err = fs::File::create(dir.join("up.err")).unwrap();
    let child = Command::new(BIN)
        .args(["sandbox", "up"])
        .args(args)
        .arg("--dir")
        .arg(state)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("ovnkit sandbox up starts");
    Up {
        child,
        state: state.to_owned(),
    }
}

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().expect("ovnkit runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Polls `f` every 200 ms for at most `timeout`; on a timeout, panics with `up`'s stderr.
fn wait<T>(work: &Path, timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            let err = fs::read_to_string(work.join("up.err")).unwrap_or_default();
            panic!("timed out after {timeout:?}: {what}\n--- sandbox up's stderr ---\n{err}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn status(state: &Path) -> Status {
    let (ok, text) = run(&[
        "sandbox",
        "status",
        "--json",
        "--dir",
        &state.display().to_string(),
    ]);
    assert!(ok, "status: {text}");
    serde_json::from_str(&text).expect("status --json is JSON")
}

/// Nothing of the sandbox is left: no namespace of its lab, no process of its PIDs, no lab
/// directory, no state directory.
fn assert_nothing_left(report: &Report, state: &Path) {
    let prefix = format!("ovk{}-", report.lab_id);
    assert!(
        namespaces_with_prefix(&prefix).unwrap().is_empty(),
        "namespaces left: {:?}",
        namespaces_with_prefix(&prefix)
    );
    let alive: Vec<&i32> = report.pids.iter().filter(|p| process_alive(**p)).collect();
    assert!(alive.is_empty(), "processes left: {alive:?}");
    assert!(!Path::new(&report.lab_dir).exists(), "lab directory left");
    assert!(!state.exists(), "state directory left");
}

#[test]
fn sandbox_up_on_the_default_manifests_passes_every_check_follows_an_edit_and_down_leaves_nothing()
{
    if !lab_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let manifests = work.path().join("manifests");
    let state = work.path().join("state");
    fs::create_dir_all(&manifests).unwrap();
    fs::write(manifests.join("cluster.yaml"), DEFAULT_MANIFESTS).unwrap();
    let mut sandbox = up(
        work.path(),
        &state,
        &[
            "--nodes",
            "2",
            "--keep",
            "--json",
            "--manifests",
            &manifests.display().to_string(),
        ],
    );
    // The report on stdout, as JSON, once the checks ran.
    let report: Report = wait(
        work.path(),
        Duration::from_secs(600),
        "the JSON report",
        || {
            assert!(
                sandbox.child.try_wait().unwrap().is_none(),
                "up exited early"
            );
            let text = fs::read_to_string(work.path().join("up.out")).ok()?;
            serde_json::from_str(&text).ok()
        },
    );
    let shown = serde_json::to_string_pretty(&report).unwrap();
    assert!(report.passed, "failures: {:?}\n{shown}", report.failures);
    assert!(report.failures.is_empty());
    assert!(report.unavailable.is_empty(), "{:?}", report.unavailable);
    assert_eq!(report.nodes.len(), 2);
    assert_eq!(report.pods.len(), 14, "every pod of the manifests");
    assert!(
        report
            .pods
            .iter()
            .all(|p| p.outcome == Outcome::Pass && !p.ip.is_empty())
    );

    // Every pair, and the denials of the private subnet and of the NetworkPolicy among them.
    let matrix = report.reachability.as_ref().expect("a reachability matrix");
    assert_eq!(matrix.cells.len(), 14 * 13, "every pair");
    assert_eq!(matrix.outcome, Outcome::Pass);
    let blocked_by = |what: &str| {
        matrix
            .cells
            .iter()
            .any(|c| c.by.contains(what) && !c.tcp.expected && !c.tcp.reached)
    };
    assert!(blocked_by("private subnet secure"));
    assert!(blocked_by("policy apps/db-from-web"));
    let web_to_db = cell(matrix, "apps/web-0", "apps/db-1");
    assert!(
        web_to_db.tcp.reached && !web_to_db.ping.reached,
        "the policy admits web on TCP 8080 only: {web_to_db:?}"
    );

    // Two ClusterIP ports and the NodePort Service's cluster IP, its node port on both nodes,
    // three DNS names: every one answered as expected.
    assert_eq!(report.services.len(), 3);
    assert_eq!(report.node_ports.len(), 2);
    for check in report.services.iter().chain(&report.node_ports) {
        assert_eq!(check.outcome, Outcome::Pass, "{check:?}");
        assert_eq!(check.answers.len(), 3, "every web pod answered: {check:?}");
    }
    assert_eq!(report.dns.len(), 3);
    assert!(report.dns.iter().all(|d| d.outcome == Outcome::Pass));
    let subnets: BTreeSet<&str> = report.gateways.iter().map(|g| g.subnet.as_str()).collect();
    assert_eq!(
        subnets,
        BTreeSet::from(["apps", "edge", "ovn-default", "secure"])
    );
    assert!(report.gateways.iter().all(|g| g.outcome == Outcome::Pass));
    assert_eq!(report.qos.len(), 2);
    assert!(report.qos.iter().all(|q| q.outcome == Outcome::Pass));
    assert_metrics(report.metrics.as_ref(), &report.pods, "the report");

    // While it runs, status shows it (with the daemons' metrics, scraped live), and an edit
    // of the manifests changes the network: a pod added, a QoS annotation changed, the
    // NetworkPolicy removed.
    let live = wait(
        work.path(),
        Duration::from_secs(30),
        "status: running",
        || Some(status(&state)).filter(|s| s.running),
    );
    assert_metrics(live.metrics.as_ref(), &report.pods, "status");
    fs::write(
        manifests.join("late.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: late, namespace: default}\n\
         spec: {containers: [{name: app, image: busybox}]}\n",
    )
    .unwrap();
    let policy = DEFAULT_MANIFESTS
        .find("# Only the web pods reach the database")
        .expect("the policy comes last");
    let edited = DEFAULT_MANIFESTS[..policy].replace(
        "ovn.kubernetes.io/egress_rate: \"20\"",
        "ovn.kubernetes.io/egress_rate: \"10\"",
    );
    assert!(edited.contains("egress_rate: \"10\"") && !edited.contains("kind: NetworkPolicy"));
    let tmp = manifests.join(".cluster.yaml.tmp");
    fs::write(&tmp, edited).unwrap();
    fs::rename(&tmp, manifests.join("cluster.yaml")).unwrap();
    let (live, r) = wait(
        work.path(),
        Duration::from_secs(300),
        "the edit applied and checked",
        || {
            let s = status(&state);
            let r = s.report?;
            let uploader = r.qos.iter().find(|q| q.pod == "default/uploader")?;
            (r.pods.iter().any(|p| p.name == "late") && uploader.annotated_mbit == 10.0)
                .then_some((s.pods, r))
        },
    );
    assert!(
        live.iter()
            .any(|p| p.pod == "default/late" && !p.ip.is_empty())
    );
    for change in [
        "pod default/late created through CRI",
        "pod default/uploader: ovn.kubernetes.io/egress_rate=10",
        "network policy apps/db-from-web removed",
    ] {
        assert!(
            r.changes.iter().any(|c| c.contains(change)),
            "{change}: {:?}",
            r.changes
        );
    }
    assert!(r.passed, "after the edit: {:?}", r.failures);
    let late = r.pods.iter().find(|p| p.name == "late").unwrap();
    assert_eq!(late.outcome, Outcome::Pass);
    let m = r.reachability.as_ref().unwrap();
    assert!(cell(m, "default/late", "default/client").ping.reached);
    let client_to_db = cell(m, "default/client", "apps/db-0");
    assert!(
        client_to_db.ping.expected && client_to_db.ping.reached && client_to_db.tcp.reached,
        "without the policy, the database is open: {client_to_db:?}"
    );

    let (ok, text) = run(&["sandbox", "down", "--dir", &state.display().to_string()]);
    assert!(ok, "down: {text}");
    let exit = sandbox.child.wait().unwrap();
    assert!(exit.success(), "up exits 0 after down: {exit}");
    assert_nothing_left(&report, &state);
}

/// The metrics part: the controller planned steps and pods, and each agent served one
/// successful `ADD` per pod of its node.
fn assert_metrics(metrics: Option<&Metrics>, pods: &[PodRow], what: &str) {
    let m = metrics.unwrap_or_else(|| panic!("{what}: no metrics part"));
    assert!(m.not_scraped.is_empty(), "{what}: {:?}", m.not_scraped);
    let c = m
        .controller
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no controller metrics"));
    assert!(c.steps > 0, "{what}: {c:?}");
    let pod = c.kinds.iter().find(|k| k.kind == "pod");
    assert!(
        pod.is_some_and(|k| k.reconciles > 0 && k.objects > 0),
        "{what}: {c:?}"
    );
    assert!(c.lock_held, "{what}: {c:?}");
    assert_eq!(m.agents.len(), 2, "{what}: {m:?}");
    for a in &m.agents {
        let on_node = pods.iter().filter(|p| p.node == a.node).count() as u64;
        assert!(on_node > 0, "{what}: no pod on {}", a.node);
        assert_eq!(a.count("ADD", "ok"), on_node, "{what}: {a:?}");
        assert!(a.add_p99_ms.is_some(), "{what}: {a:?}");
    }
}

/// The matrix cell `from` -> `to`.
fn cell<'a>(m: &'a Matrix, from: &str, to: &str) -> &'a Cell {
    m.cells
        .iter()
        .find(|c| c.from == from && c.to == to)
        .unwrap_or_else(|| panic!("no cell {from} -> {to}"))
}

#[test]
fn sandbox_down_after_a_sigkilled_up_removes_everything() {
    if !lab_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let manifests = work.path().join("manifests");
    let state: PathBuf = work.path().join("state");
    fs::create_dir_all(&manifests).unwrap();
    fs::write(
        manifests.join("pods.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: default}\nspec: {containers: [{name: c}]}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: default}\nspec: {containers: [{name: c}]}\n",
    )
    .unwrap();
    let mut sandbox = up(
        work.path(),
        &state,
        &[
            "--nodes",
            "1",
            "--keep",
            "--manifests",
            &manifests.display().to_string(),
        ],
    );
    let report: Report = wait(work.path(), Duration::from_secs(600), "the report", || {
        assert!(
            sandbox.child.try_wait().unwrap().is_none(),
            "up exited early"
        );
        serde_json::from_slice(&fs::read(state.join("report.json")).ok()?).ok()
    });
    assert_eq!(report.pods.len(), 2);
    sandbox.child.kill().unwrap();
    sandbox.child.wait().unwrap();
    // The daemons outlive their owner.
    assert!(report.pids.iter().any(|p| process_alive(*p)));
    assert!(
        !namespaces_with_prefix(&format!("ovk{}-", report.lab_id))
            .unwrap()
            .is_empty()
    );
    assert!(!status(&state).running);

    let (ok, text) = run(&["sandbox", "down", "--dir", &state.display().to_string()]);
    assert!(ok, "down: {text}");
    assert!(text.contains("stopped"), "{text}");
    assert_nothing_left(&report, &state);
}
