#!/usr/bin/env python3
"""W4 for ovsdb-client: `ovsdb-client --format=json monitor` does the protocol (C, no IDL);
this script only reads its output, one JSON table per line. The first table is the initial
contents (then the runner is told we are ready); every later one is an update, whose "new"
rows are checked for external_ids:gen == BENCH_GEN.
"""

import json
import os
import subprocess
import sys
import time

STARTED = time.monotonic()
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import workload as wl  # noqa: E402


def main():
    cfg = wl.Settings()
    if cfg.workload != "W4":
        sys.stderr.write("ovsdb-client-monitor does not run %s\n" % cfg.workload)
        return 3
    monitor = subprocess.Popen(
        ["ovsdb-client", "--format=json", "monitor", cfg.remote, cfg.db, wl.LSP,
         "name,external_ids"],
        stdout=subprocess.PIPE)
    wanted = ["gen", cfg.gen]
    reached = set()
    tables = 0
    synced = None
    try:
        for line in monitor.stdout:
            table = json.loads(line)
            tables += 1
            if synced is None:
                synced = time.monotonic()
                cfg.signal_ready()
                continue
            head = table["headings"]
            action, name, ids = head.index("action"), head.index("name"), head.index("external_ids")
            for row in table["data"]:
                if row[action] == "new" and wanted in row[ids][1]:
                    reached.add(row[name])
            if len(reached) >= cfg.n:
                break
    finally:
        monitor.kill()
        monitor.wait()
    if len(reached) < cfg.n:
        sys.stderr.write("ovsdb-client stopped after %d of %d ports\n" % (len(reached), cfg.n))
        return 1
    cfg.report(sync_s=round(synced - STARTED, 3), seen=len(reached), tables=tables)
    return 0


if __name__ == "__main__":
    sys.exit(main())
