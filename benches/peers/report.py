#!/usr/bin/env python3
"""Prints the peer comparison's tables (markdown) from one or more results files of run.py.

usage: report.py RESULTS.jsonl [MORE.jsonl ...]

Every figure is the median over the valid runs of a cell (min-max in brackets for the main
time). The "/ ovnkit" column divides a client's median by ovnkit's median of the same
workload, so it is only meaningful between clients measured in the same run: pass one
results file, or files from the same session.
"""

import json
import statistics
import sys

TITLES = {
    "W1": "W1 bulk insert: 1 switch + N ports in ONE transaction",
    "W2": "W2 sequential: N single-port transactions, waiting for each reply",
    "W3": "W3 initial sync of 1 switch + N ports (process start -> all ports in memory)",
    "W4": "W4 fan-out: N single-row updates (pipelined writer) -> the monitor has seen all",
}
SELF = {"W1": "self-reported txn s", "W2": "self-reported txns s", "W3": "self-reported sync s"}
OURS = "ovnkit"


def load(paths):
    records = []
    for path in paths:
        with open(path) as f:
            records.extend(json.loads(line) for line in f if line.strip())
    return records


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def num(value, digits=2):
    return "-" if value is None else "%.*f" % (digits, value)


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return "%s (%s-%s)" % (num(median(values)), num(min(values)), num(max(values)))


def ratio(value, ours):
    if value is None or not ours:
        return "-"
    r = value / ours
    return "%.1f" % r if r >= 10 else "%.2f" % r


def is_ok(rec):
    return str(rec.get("valid", "")).startswith("ok")


def groups(runs, workload):
    """(client, n) -> runs, in the order clients first appear, ovnkit first."""
    out = {}
    for rec in runs:
        if rec["workload"] == workload:
            out.setdefault((rec["client"], rec["n"]), []).append(rec)
    return sorted(out.items(), key=lambda kv: kv[0][0] != OURS)


def header(envs, ends, runs):
    lines = []
    for env in envs:
        lines.append("Run of %s: %s; %s; %s; %s; commit %s; %s runs per cell." % (
            env["at"], env["host"], env["ovsdb_server"], env["ovn_nbctl"], env["schema"],
            env["commit"], env["reps"]))
        for name, text in sorted(env.get("clients", {}).items()):
            lines.append("- %s: %s" % (name, text))
    loads = [r["load1"] for r in runs if "load1" in r]
    if loads:
        lines.append("")
        lines.append("Load average (1 min) at the start of each run: %.1f to %.1f." % (
            min(loads), max(loads)))
    minutes = sum(e.get("minutes", 0) for e in ends)
    if minutes:
        lines.append("Time taken: %.1f min." % minutes)
    return lines


def workload_table(workload, cells):
    lines = ["### %s" % TITLES[workload], ""]
    ours = None
    for (client, _), recs in cells:
        use = [r for r in recs if is_ok(r)] or recs
        if client == OURS:
            key = "fanout_s" if workload == "W4" else "wall_s"
            ours = median([r.get(key) for r in use])
    if workload == "W4":
        lines.append("| client | N | runs ok | fan-out s median (min-max) | / ovnkit | writer done s "
                     "| lag after writer s | server CPU s (updates) | client CPU s (updates / "
                     "total) | client peak RSS MB | initial sync s |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    else:
        lines.append("| client | N | runs ok | wall s median (min-max) | / ovnkit | server CPU s | "
                     "client CPU s | client peak RSS MB | %s |" % SELF[workload])
        lines.append("|---|---|---|---|---|---|---|---|---|")
    failures = []
    for (client, n), recs in cells:
        ok = [r for r in recs if is_ok(r)]
        failures.extend(r for r in recs if not is_ok(r))
        use = ok or recs
        name = "**%s**" % client if client == OURS else client
        runs_ok = "%d/%d" % (len(ok), len(recs))
        if workload == "W4":
            fanout = [r.get("fanout_s") for r in use]
            updates_cpu = median([r["client_cpu_s"] - r.get("client_cpu_at_ready_s", 0)
                                  for r in use])
            lines.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s |" % (
                name, n, runs_ok, spread(fanout), ratio(median(fanout), ours),
                num(median([r.get("writer_s") for r in use])),
                num(median([r.get("lag_s") for r in use])),
                num(median([r.get("server_cpu_updates_s") for r in use])),
                num(updates_cpu), num(median([r["client_cpu_s"] for r in use])),
                num(median([r["client_rss_mb"] for r in use]), 0),
                num(median([r.get("sync_s") for r in use]))))
        else:
            wall = [r["wall_s"] for r in use]
            lines.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
                name, n, runs_ok, spread(wall), ratio(median(wall), ours),
                num(median([r["server_cpu_s"] for r in use])),
                num(median([r["client_cpu_s"] for r in use])),
                num(median([r["client_rss_mb"] for r in use]), 0),
                num(median([r.get("self", {}).get("work_s") for r in use]))))
    for rec in failures[:8]:
        lines.append("")
        lines.append("- FAILED: %s %s run %d: %s" % (
            rec["workload"], rec["client"], rec["rep"], rec["valid"]))
    lines.append("")
    return lines


def server_floor(runs):
    """The server's own CPU per unit of work, from the client that cost it least."""
    lines = ["### W0 the server's own cost (least median server CPU over the clients)", "",
             "| from | cheapest client | server CPU s | per unit |", "|---|---|---|---|"]
    units = (("W1", "server_cpu_s", "row"), ("W2", "server_cpu_s", "transaction"),
             ("W4", "server_cpu_updates_s", "update transaction"))
    for workload, key, unit in units:
        best = None
        for (client, n), recs in groups(runs, workload):
            value = median([r.get(key) for r in recs if is_ok(r)])
            if value is not None and (best is None or value < best[0]):
                best = (value, client, n)
        if best:
            lines.append("| %s (N=%d) | %s | %s | %.1f us per %s |" % (
                workload, best[2], best[1], num(best[0]), best[0] / best[2] * 1e6, unit))
    lines.append("")
    return lines


def render(records):
    envs = [r for r in records if r.get("kind") == "env"]
    ends = [r for r in records if r.get("kind") == "end"]
    runs = [r for r in records if r.get("kind") == "run"]
    lines = header(envs, ends, runs)
    lines.append("")
    for workload in ("W1", "W2", "W3", "W4"):
        cells = groups(runs, workload)
        if cells:
            lines.extend(workload_table(workload, cells))
    if runs:
        lines.extend(server_floor(runs))
    return "\n".join(lines)


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    print(render(load(argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
