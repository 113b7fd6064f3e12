#!/usr/bin/env python3
"""Runs the peer comparison: workloads W1-W4 against a private OVN_Northbound ovsdb-server,
for ovnkit's `ovsdb-bench-client` and the peer clients, and prints the tables.

Every run gets a fresh ovsdb-server in its own directory under the work directory (unix
socket only, pidfile there, stopped by PID after checking that the PID still belongs to that
pidfile). Clients are started with the settings of the contract in benches/peers/README.md.
Repetitions are interleaved (rep 1 of every client, then rep 2, ...) so that a machine whose
speed drifts treats every client alike. One JSON line per run goes to the results file; the
report (report.py) is printed at the end and written beside it as .md.

Run setup.sh first; see benches/peers/README.md.
"""

import argparse
import glob
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CLIENTS = os.path.join(HERE, "clients")
sys.path.insert(0, os.path.join(HERE, "lib"))
import workload as wl  # noqa: E402
import report  # noqa: E402

WORKLOADS = ("W1", "W2", "W3", "W4")
DEFAULT_N = {"W1": 10000, "W2": 2000, "W3": 100000, "W4": 10000}
PREFIX = {"W1": "p", "W2": "w", "W3": "p", "W4": "p"}
SWITCH = "ls0"
W4_GEN = "1"
SETTLE_S = 0.5
DEB_PYTHON = "/usr/bin/python3"
TIME = "/usr/bin/time"
HZ = os.sysconf("SC_CLK_TCK")
RUN_ENV_DIRS = ("OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVN_RUNDIR", "OVN_LOGDIR", "OVN_DBDIR")


def say(text):
    sys.stderr.write("[peers %s] %s\n" % (time.strftime("%H:%M:%S"), text))
    sys.stderr.flush()


def default_work_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("PEERS_WORK") or os.path.join(base, "ovnkit-peers")


def default_ovnkit_bin():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    return os.path.join(target, "release", "ovsdb-bench-client")


# ---------------------------------------------------------------------------------------------
# Clients


class Client(object):
    """A client: a name, the workloads it runs, its command, and how to tell it is installed."""

    def __init__(self, name, workloads, argv, probe=None, hint=""):
        self.name = name
        self.workloads = workloads
        self.argv = argv
        self.probe = probe
        self.hint = hint

    def missing(self):
        """Why this client cannot run here, or None."""
        exe = self.argv[0]
        if os.sep in exe:
            if not os.access(exe, os.X_OK):
                return "%s is missing (%s)" % (exe, self.hint)
        elif shutil.which(exe) is None:
            return "%s is not on PATH (%s)" % (exe, self.hint)
        if self.probe:
            ok = subprocess.run(self.probe, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL).returncode == 0
            if not ok:
                return "`%s` fails (%s)" % (" ".join(self.probe), self.hint)
        return None


def builtin_clients(work, ovnkit_bin):
    """Every client the runner knows, in the order the tables show them."""
    venv_deb = os.path.join(work, "venv-deb", "bin", "python")
    venv_pip = os.path.join(work, "venv-pip", "bin", "python")
    raw_python = DEB_PYTHON if os.path.exists(DEB_PYTHON) else sys.executable
    setup = "run benches/peers/setup.sh"
    c = lambda name: os.path.join(CLIENTS, name)  # noqa: E731
    return [
        Client("ovnkit", WORKLOADS, [ovnkit_bin],
               hint="cargo build --release -p benches --bin ovsdb-bench-client, or --ovnkit PATH"),
        Client("ovs-idl+cjson", WORKLOADS, [DEB_PYTHON, c("python_idl.py")],
               probe=[DEB_PYTHON, "-c", "import ovs.db.idl, ovs._json"], hint=setup),
        Client("ovs-idl", WORKLOADS, [venv_pip, c("python_idl.py")],
               probe=[venv_pip, "-c", "import ovs.db.idl"], hint=setup),
        Client("ovsdbapp+cjson", WORKLOADS, [venv_deb, c("ovsdbapp_peer.py")],
               probe=[venv_deb, "-c", "import ovsdbapp, ovs._json"], hint=setup),
        Client("ovsdbapp", WORKLOADS, [venv_pip, c("ovsdbapp_peer.py")],
               probe=[venv_pip, "-c", "import ovsdbapp"], hint=setup),
        Client("ovn-nbctl", ("W1", "W2", "W3"), ["bash", c("nbctl.sh")],
               probe=["ovn-nbctl", "--version"], hint=setup),
        Client("ovn-nbctl-daemon", ("W2",), ["bash", c("nbctl_daemon.sh")],
               probe=["ovn-nbctl", "--version"], hint=setup),
        Client("ovsdb-client", ("W3", "W4"), ["bash", c("ovsdb_client.sh")],
               probe=["ovsdb-client", "--version"], hint=setup),
        Client("raw-jsonrpc", ("W1", "W2"), [raw_python, c("jsonrpc.py")]),
    ]


# ---------------------------------------------------------------------------------------------
# Processes


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def alive(pid):
    """Whether pid exists and is not a zombie (PID 1 may reap detached daemons late)."""
    fields = proc_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def cpu_s(pid):
    fields = proc_stat(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / float(HZ)


def hwm_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def tree_cpu_s(pid):
    """CPU time of pid and every live descendant."""
    total = cpu_s(pid) or 0.0
    for task in glob.glob("/proc/%d/task/*/children" % pid):
        try:
            with open(task) as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            continue
        total += sum(tree_cpu_s(k) for k in kids)
    return total


def owns_pidfile(pid, pidfile):
    """Whether process pid was started with --pidfile=<pidfile>."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return False
    return ("--pidfile=" + pidfile).encode() in args


def stop_pidfile(pidfile, grace_s=10.0):
    """Stops the daemon of `pidfile`: SIGTERM, then SIGKILL after `grace_s`, each only after
    checking that the PID still belongs to that pidfile. Returns the PID it stopped, or None."""
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    if not alive(pid) or not owns_pidfile(pid, pidfile):
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    if alive(pid) and owns_pidfile(pid, pidfile):
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.01)
    return pid


def private_env(directory, base=None):
    env = dict(os.environ if base is None else base)
    for var in RUN_ENV_DIRS:
        env[var] = directory
    return env


class Server(object):
    """A private OVN_Northbound ovsdb-server in `directory`, on a unix socket only."""

    def __init__(self, directory, schema, db_copy=None):
        self.dir = directory
        self.db = os.path.join(directory, "nb.db")
        self.sock = os.path.join(directory, "nb.sock")
        self.pidfile = os.path.join(directory, "nb.pid")
        self.ctl = os.path.join(directory, "nb.ctl")
        if len(self.sock) > 100:
            raise SystemExit("socket path %s is too long for a unix socket: use a shorter "
                             "--work directory" % self.sock)
        if db_copy:
            shutil.copyfile(db_copy, self.db)
        else:
            subprocess.run(["ovsdb-tool", "create", self.db, schema], check=True)
        env = private_env(directory)
        with open(os.path.join(directory, "nb.stderr"), "w") as err:
            subprocess.run(
                ["ovsdb-server", self.db, "--detach", "--no-chdir", "-vconsole:off",
                 "--pidfile=" + self.pidfile, "--log-file=" + os.path.join(directory, "nb.log"),
                 "--unixctl=" + self.ctl, "--remote=punix:" + self.sock],
                env=env, stderr=err, check=True)
        with open(self.pidfile) as f:
            self.pid = int(f.read().strip())
        wl.wait_socket(self.sock, 30)

    @property
    def remote(self):
        return "unix:" + self.sock

    def cpu(self):
        return cpu_s(self.pid)

    def compact(self):
        subprocess.run(["ovs-appctl", "-t", self.ctl, "ovsdb-server/compact"],
                       env=private_env(self.dir), check=True, stdout=subprocess.DEVNULL)

    def stop(self):
        stop_pidfile(self.pidfile)


def stop_leftovers(directory, keep):
    """Stops any daemon a client left in its run directory (by its pidfile, checked)."""
    for pidfile in glob.glob(os.path.join(directory, "*.pid")):
        if pidfile != keep:
            pid = stop_pidfile(pidfile)
            if pid:
                say("stopped a leftover daemon %d of %s" % (pid, pidfile))


class Timed(object):
    """A client process started in its own session under GNU time, and reaped on a thread so
    that its exit time is exact.

    The client's CPU time and peak RSS come from GNU time, which forks it: a process spawned
    straight from this (Python) runner would inherit the runner's memory high-water mark
    through exec, and report it as its own peak RSS."""

    def __init__(self, argv, env, log_path):
        self.usage_file = log_path + ".usage"
        wrapped = [TIME, "-o", self.usage_file, "-f", "%U %S %M", "--"] + list(argv)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_DUP2, fd, 1), (os.POSIX_SPAWN_DUP2, fd, 2)]
        self.started = time.monotonic()
        self.pid = os.posix_spawn(TIME, wrapped, env, file_actions=actions, setsid=True)
        os.close(fd)
        self.ended = None
        self.status = None
        self.thread = threading.Thread(target=self._reap, daemon=True)
        self.thread.start()

    def _reap(self):
        _, status = os.waitpid(self.pid, 0)
        self.ended = time.monotonic()
        self.status = status

    def usage(self):
        """(CPU seconds, peak RSS in kB) of the client and its reaped descendants."""
        try:
            with open(self.usage_file) as f:
                user, system, rss_kb = f.read().split("\n")[-2].split()
            return float(user) + float(system), int(rss_kb)
        except (OSError, ValueError, IndexError):
            return None, None

    def running(self):
        return self.thread.is_alive()

    def wait(self, timeout):
        """Waits for the exit; kills the whole session after `timeout`. Returns True if it
        timed out."""
        self.thread.join(timeout)
        if not self.thread.is_alive():
            return False
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.thread.join()
        return True

    def exit_code(self):
        return os.waitstatus_to_exitcode(self.status)


# ---------------------------------------------------------------------------------------------
# Runs


def schema_version(schema):
    out = subprocess.run(["ovsdb-tool", "schema-version", schema], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def fixture(work, schema, n):
    """A database with the switch and ports p1..pN, built once with one JSON-RPC transaction,
    compacted, and cached under the work directory."""
    cache = os.path.join(work, "fixtures")
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, "nb-%s-%d.db" % (schema_version(schema), n))
    if os.path.exists(path):
        return path
    build = os.path.join(cache, "build")
    shutil.rmtree(build, ignore_errors=True)
    os.makedirs(build)
    say("building the %d-port fixture (once; cached in %s)" % (n, cache))
    server = Server(build, schema)
    try:
        rpc = wl.Rpc(server.sock)
        rpc.transact(wl.NB_DB, wl.insert_ports_ops("p", 1, n, SWITCH, True))
        rpc.close()
        server.compact()
    finally:
        server.stop()
    shutil.copyfile(server.db, path + ".part")
    os.replace(path + ".part", path)
    shutil.rmtree(build, ignore_errors=True)
    return path


def check_ports(sock, prefix, n):
    """W1/W2: exactly ports prefix1..prefixN, each with its address and external_ids, and the
    switch holding exactly them. Returns "ok" or what is wrong."""
    rpc = wl.Rpc(sock)
    res = rpc.transact(wl.NB_DB, [
        {"op": "select", "table": wl.LSP, "where": [],
         "columns": ["_uuid", "name", "addresses", "external_ids"]},
        {"op": "select", "table": wl.LS, "where": [], "columns": ["name", "ports"]}])
    rpc.close()
    problems = []
    ports = {row["name"]: row for row in res[0]["rows"]}
    wanted = {wl.port_name(prefix, i): i for i in range(1, n + 1)}
    if set(ports) != set(wanted):
        problems.append("%d ports, %d of them expected, %d expected" % (
            len(ports), len(set(ports) & set(wanted)), n))
    for name, i in wanted.items():
        row = ports.get(name)
        if row is None:
            continue
        want = wl.port_row(prefix, i)
        if row["addresses"] != want["addresses"] or row["external_ids"] != want["external_ids"]:
            problems.append("port %s: %r %r" % (name, row["addresses"], row["external_ids"]))
            break
    switches = res[1]["rows"]
    if [s["name"] for s in switches] != [SWITCH]:
        problems.append("switches %r" % [s["name"] for s in switches])
    else:
        refs = switches[0]["ports"]
        members = {u for _, u in refs[1]} if refs[0] == "set" else {refs[1]}
        if members != {row["_uuid"][1] for row in ports.values()}:
            problems.append("%s holds %d ports" % (SWITCH, len(members)))
    return "ok" if not problems else "; ".join(problems)


def client_env(server, workload, n, directory):
    env = private_env(directory)
    env.update({
        "BENCH_WORKLOAD": workload,
        "OVSDB_REMOTE": server.remote,
        "OVSDB_SOCK": server.sock,
        "BENCH_DB": wl.NB_DB,
        "BENCH_SCHEMA": SCHEMA,
        "BENCH_N": str(n),
        "BENCH_SWITCH": SWITCH,
        "BENCH_PREFIX": PREFIX[workload],
        "BENCH_TMPDIR": directory,
        "BENCH_RESULT_FILE": os.path.join(directory, "result.json"),
        "PEERS_PYTHON": DEB_PYTHON if os.path.exists(DEB_PYTHON) else sys.executable,
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    if workload == "W4":
        env["BENCH_READY_FILE"] = os.path.join(directory, "ready")
        env["BENCH_GEN"] = W4_GEN
    return env


def run_w4(args, server, proc, env, rec):
    """Waits for the ready file, lets the client settle, runs the writer, and times the
    fan-out: from the writer's first request to the client's exit."""
    ready = env["BENCH_READY_FILE"]
    deadline = proc.started + args.timeout
    while not os.path.exists(ready):
        if not proc.running():
            return False
        if time.monotonic() > deadline:
            return proc.wait(0)
        time.sleep(0.002)
    rec["sync_s"] = round(time.monotonic() - proc.started, 3)
    time.sleep(SETTLE_S)
    rec["client_cpu_at_ready_s"] = round(tree_cpu_s(proc.pid), 3)
    server_at_ready = server.cpu()
    writer = subprocess.run(
        [sys.executable, os.path.join(HERE, "lib", "writer.py"), server.sock, wl.NB_DB,
         PREFIX["W4"], str(args.n["W4"]), W4_GEN],
        capture_output=True, text=True, timeout=args.timeout)
    timed_out = proc.wait(max(1.0, deadline - time.monotonic()))
    rec["server_cpu_updates_s"] = round(server.cpu() - server_at_ready, 3)
    try:
        times = json.loads(writer.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        rec["writer_error"] = writer.stderr[-2000:]
        return timed_out
    rec["writer_failed"] = times["failed"]
    rec["writer_s"] = round(times["last_reply"] - times["first_sent"], 3)
    if proc.ended is not None:
        rec["fanout_s"] = round(proc.ended - times["first_sent"], 3)
        rec["lag_s"] = round(proc.ended - times["last_reply"], 3)
    return timed_out


def run_one(args, client, workload, rep):
    n = args.n[workload]
    directory = os.path.join(args.work, "run", "%s-%s-r%d" % (workload, client.name, rep))
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    db_copy = fixture(args.work, SCHEMA, n) if workload in ("W3", "W4") else None
    rec = {"kind": "run", "workload": workload, "client": client.name, "rep": rep, "n": n,
           "argv": client.argv, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "load1": os.getloadavg()[0]}
    server = Server(directory, SCHEMA, db_copy)
    proc = None
    try:
        if workload == "W2":
            rpc = wl.Rpc(server.sock)
            rpc.transact(wl.NB_DB, [{"op": "insert", "table": wl.LS, "row": {"name": SWITCH}}])
            rpc.close()
        env = client_env(server, workload, n, directory)
        server_before = server.cpu()
        proc = Timed(client.argv, env, os.path.join(directory, "client.log"))
        if workload == "W4":
            timed_out = run_w4(args, server, proc, env, rec)
        else:
            timed_out = proc.wait(args.timeout)
        rec["server_cpu_s"] = round(server.cpu() - server_before, 3)
        rec["server_hwm_mb"] = round((hwm_kb(server.pid) or 0) / 1024.0, 1)
        rec["wall_s"] = round(proc.ended - proc.started, 3)
        rec["rc"] = proc.exit_code()
        rec["timed_out"] = timed_out
        own = {}
        try:
            with open(env["BENCH_RESULT_FILE"]) as f:
                own = json.load(f)
        except (OSError, ValueError):
            pass
        rec["self"] = own
        cpu, rss_kb = proc.usage()
        if cpu is None:
            raise SystemExit("no usage figures from %s for %s" % (TIME, client.name))
        cpu += float(own.get("extra_cpu_s", 0))
        rss_kb = max(rss_kb, int(own.get("extra_maxrss_kb", 0) or 0))
        rec["client_cpu_s"] = round(cpu, 3)
        rec["client_rss_mb"] = round(rss_kb / 1024.0, 1)
        rec["valid"] = validate(rec, workload, server, n, own)
    finally:
        if proc is not None and proc.running():
            proc.wait(0)
        server.stop()
        stop_leftovers(directory, server.pidfile)
    if not args.keep:
        for name in ("nb.db",):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass
    return rec


def validate(rec, workload, server, n, own):
    if rec["timed_out"]:
        return "timed out"
    if rec["rc"] != 0:
        return "exit code %d" % rec["rc"]
    if workload in ("W1", "W2"):
        return check_ports(server.sock, PREFIX[workload], n)
    if workload == "W3":
        if "rows" not in own:
            return "ok (exit 0; row count not reported)"
        return "ok" if own["rows"] == n else "synced %s rows of %d" % (own["rows"], n)
    if "writer_failed" not in rec:
        return "writer: %s" % rec.get("writer_error", "no output")
    if rec["writer_failed"]:
        return "writer: %d transactions failed" % rec["writer_failed"]
    return "ok" if "fanout_s" in rec else "client exit not seen"


# ---------------------------------------------------------------------------------------------
# The environment of a run


def first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "unavailable (%s)" % e
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "unavailable (exit %d)" % out.returncode


PY_VERSIONS = (
    "import sys, importlib.metadata as m\n"
    "def v(p):\n"
    "    try:\n"
    "        return m.version(p)\n"
    "    except Exception:\n"
    "        return '-'\n"
    "try:\n"
    "    import ovs._json\n"
    "    cj = 'C JSON'\n"
    "except Exception:\n"
    "    cj = 'pure-Python JSON'\n"
    "print('Python %s, ovs %s (%s), ovsdbapp %s' % (sys.version.split()[0], v('ovs'), cj,"
    " v('ovsdbapp')))\n")


def environment(args, clients):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    env = {
        "kind": "env",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": "%s %s, %d CPUs (%s), %.0f GiB" % (
            platform.system(), platform.release(), os.cpu_count() or 0, cpu,
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2.0 ** 30),
        "ovsdb_server": first_line(["ovsdb-server", "--version"]),
        "ovn_nbctl": first_line(["ovn-nbctl", "--version"]),
        "schema": "%s %s" % (wl.NB_DB, schema_version(SCHEMA)),
        "load": os.getloadavg(),
        "reps": args.reps,
        "n": args.n,
        "commit": first_line(["git", "-C", REPO, "describe", "--always", "--dirty"]),
        "clients": {},
    }
    for client in clients:
        exe = client.argv[0]
        if exe.endswith("python") or exe.endswith("python3"):
            env["clients"][client.name] = first_line([exe, "-c", PY_VERSIONS])
        elif client.name == "ovnkit":
            env["clients"][client.name] = exe
    return env


# ---------------------------------------------------------------------------------------------


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-w", "--workloads", default="W1,W2,W3,W4",
                    help="comma-separated workloads (default W1,W2,W3,W4)")
    ap.add_argument("-c", "--clients", default="all",
                    help="comma-separated client names, or 'all' (default): every installed "
                         "client that runs the workload; see --list")
    ap.add_argument("--reps", type=int, default=3, help="runs per client and workload (3)")
    ap.add_argument("--n", action="append", default=[], metavar="W=N",
                    help="size of a workload, e.g. --n W3=20000 (defaults: %s)"
                         % ", ".join("%s=%d" % kv for kv in sorted(DEFAULT_N.items())))
    ap.add_argument("--ovnkit", default=default_ovnkit_bin(), metavar="PATH",
                    help="ovnkit's ovsdb-bench-client (default: %(default)s)")
    ap.add_argument("--client", action="append", default=[], metavar="NAME=COMMAND",
                    help="another client that follows the contract (split like a shell "
                         "line, not run through a shell); runs every workload, exit 3 skips one")
    ap.add_argument("--work", default=default_work_dir(),
                    help="work directory: run directories, fixtures, venvs, results "
                         "(default: %(default)s, or $PEERS_WORK)")
    ap.add_argument("--out", help="results file (default: WORK/results/<UTC time>.jsonl)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per run (900)")
    ap.add_argument("--keep", action="store_true", help="keep each run's database")
    ap.add_argument("--list", action="store_true", help="list the clients and exit")
    args = ap.parse_args()
    args.work = os.path.abspath(args.work)
    args.workloads = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    for w in args.workloads:
        if w not in WORKLOADS:
            ap.error("unknown workload %s" % w)
    sizes = dict(DEFAULT_N)
    for spec in args.n:
        w, _, value = spec.partition("=")
        if w.upper() not in WORKLOADS or not value.isdigit() or int(value) < 1:
            ap.error("--n wants W=N, got %r" % spec)
        sizes[w.upper()] = int(value)
    args.n = sizes
    return args


SCHEMA = wl.NB_SCHEMA


def main():
    args = parse_args()
    clients = builtin_clients(args.work, os.path.abspath(args.ovnkit))
    for spec in args.client:
        name, _, command = spec.partition("=")
        if not name or not command:
            raise SystemExit("--client wants NAME=COMMAND, got %r" % spec)
        clients.append(Client(name, WORKLOADS, shlex.split(command), hint="--client"))
    if args.list:
        for client in clients:
            print("%-17s %-12s %s%s" % (client.name, ",".join(client.workloads),
                                        " ".join(client.argv),
                                        "" if client.missing() is None
                                        else "\n%17s NOT AVAILABLE: %s" % ("", client.missing())))
        return 0
    for tool in ("ovsdb-server", "ovsdb-tool", "ovs-appctl", TIME):
        if shutil.which(tool) is None:
            raise SystemExit("%s is not installed: run benches/peers/setup.sh" % tool)
    if not os.path.exists(SCHEMA):
        raise SystemExit("%s is missing: run benches/peers/setup.sh" % SCHEMA)
    if args.clients == "all":
        chosen = []
        for client in clients:
            why = client.missing()
            if why:
                say("skipping %s: %s" % (client.name, why))
            else:
                chosen.append(client)
    else:
        by_name = {c.name: c for c in clients}
        chosen = []
        for name in [x.strip() for x in args.clients.split(",") if x.strip()]:
            if name not in by_name:
                raise SystemExit("unknown client %s (see --list)" % name)
            why = by_name[name].missing()
            if why:
                raise SystemExit("client %s cannot run: %s" % (name, why))
            chosen.append(by_name[name])
    out = args.out or os.path.join(args.work, "results",
                                   time.strftime("%Y%m%d-%H%M%S.jsonl", time.gmtime()))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    started = time.monotonic()
    with open(out, "a") as results:
        results.write(json.dumps(environment(args, chosen)) + "\n")
        results.flush()
        all_ok = True
        for workload in args.workloads:
            todo = [c for c in chosen if workload in c.workloads]
            for rep in range(1, args.reps + 1):
                for client in list(todo):
                    rec = run_one(args, client, workload, rep)
                    if rec["rc"] == 3:
                        say("%s: %s does not run it (exit 3), skipped" % (workload, client.name))
                        todo.remove(client)
                        continue
                    results.write(json.dumps(rec) + "\n")
                    results.flush()
                    ok = rec["valid"].startswith("ok")
                    all_ok = all_ok and ok
                    extra = " fan-out %.3f s" % rec["fanout_s"] if "fanout_s" in rec else ""
                    say("%s %-17s r%d n=%d wall %.3f s%s, server CPU %.2f s, client CPU %.2f s, "
                        "%.0f MB, load %.1f: %s" % (
                            workload, client.name, rep, rec["n"], rec["wall_s"], extra,
                            rec["server_cpu_s"], rec["client_cpu_s"], rec["client_rss_mb"],
                            rec["load1"], rec["valid"]))
        results.write(json.dumps({"kind": "end", "load": os.getloadavg(),
                                  "minutes": round((time.monotonic() - started) / 60, 1)}) + "\n")
    text = report.render(report.load([out]))
    md = os.path.splitext(out)[0] + ".md"
    with open(md, "w") as f:
        f.write(text)
    print(text)
    say("results: %s  report: %s" % (out, md))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
