#!/usr/bin/env python3
"""raw-jsonrpc: OVSDB's wire protocol from the standard library, nothing more.

No schema, no IDL, no cache, no validation: W1 sends the runner's rows as one transaction,
W2 one transaction per port and waits for each reply. It shows how little a Python process
can spend on these workloads; it is a yardstick, not a client anyone would deploy.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import workload as wl  # noqa: E402


def main():
    cfg = wl.Settings()
    if cfg.workload not in ("W1", "W2"):
        sys.stderr.write("raw-jsonrpc does not run %s\n" % cfg.workload)
        return 3
    rpc = wl.Rpc(cfg.socket)
    started = time.monotonic()
    if cfg.workload == "W1":
        rpc.transact(cfg.db, wl.insert_ports_ops(cfg.prefix, 1, cfg.n, cfg.switch, True))
    else:
        for i in range(1, cfg.n + 1):
            result = rpc.transact(cfg.db, wl.insert_ports_ops(cfg.prefix, i, i, cfg.switch, False))
            if result[-1].get("count") != 1:
                raise wl.RpcError("switch %s not found" % cfg.switch)
    cfg.report(work_s=round(time.monotonic() - started, 3))
    rpc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
