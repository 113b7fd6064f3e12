#!/usr/bin/env python3
"""ovs-idl: the official Python IDL (`ovs.db.idl`), used directly, as a hand-written agent would.

Only the tables a workload needs are registered. Which `ovs` package is used (Debian's
python3-openvswitch with its C JSON parser, or the pure-Python one from PyPI) depends on the
interpreter the runner starts this with.
"""

import os
import sys
import time

STARTED = time.monotonic()
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import workload as wl  # noqa: E402

import ovs.db.idl as idl_mod  # noqa: E402
import ovs.poller  # noqa: E402
import ovs.vlog  # noqa: E402


class WatchingIdl(idl_mod.Idl):
    """An IDL that notes every port that reached the wanted generation (W4)."""

    wanted_gen = None
    reached = None

    def notify(self, event, row, updates=None):
        if self.reached is None or event != "update":
            return
        if row.external_ids.get("gen") == self.wanted_gen:
            self.reached.add(row.uuid)


def spin(idl, done):
    """Runs the IDL's loop until `done()` holds."""
    while True:
        idl.run()
        if done():
            return
        poller = ovs.poller.Poller()
        idl.wait(poller)
        poller.block()


def open_idl(cfg, tables, cls=idl_mod.Idl):
    helper = idl_mod.SchemaHelper(location=cfg.schema)
    for table in tables:
        helper.register_table(table)
    idl = cls(cfg.remote, helper)
    spin(idl, idl.has_ever_connected)
    return idl


def commit(txn, what):
    status = txn.commit_block()
    if status != idl_mod.Transaction.SUCCESS:
        raise RuntimeError("%s: %s (%s)" % (what, status, txn.get_error()))


def fill_port(row, cfg, i):
    name = wl.port_name(cfg.prefix, i)
    row.name = name
    row.addresses = [wl.port_address(i)]
    row.external_ids = {"pod": name}


def w1(cfg):
    idl = open_idl(cfg, [wl.LS, wl.LSP])
    connected = time.monotonic()
    txn = idl_mod.Transaction(idl)
    ports = []
    for i in range(1, cfg.n + 1):
        row = txn.insert(idl.tables[wl.LSP])
        fill_port(row, cfg, i)
        ports.append(row)
    switch = txn.insert(idl.tables[wl.LS])
    switch.name = cfg.switch
    switch.ports = ports
    commit(txn, "W1")
    cfg.report(work_s=round(time.monotonic() - connected, 3))


def w2(cfg):
    idl = open_idl(cfg, [wl.LS, wl.LSP])
    connected = time.monotonic()
    switches = [r for r in idl.tables[wl.LS].rows.values() if r.name == cfg.switch]
    if len(switches) != 1:
        raise RuntimeError("switch %s not found" % cfg.switch)
    for i in range(1, cfg.n + 1):
        txn = idl_mod.Transaction(idl)
        row = txn.insert(idl.tables[wl.LSP])
        fill_port(row, cfg, i)
        switches[0].addvalue("ports", row)
        commit(txn, "W2 transaction %d" % i)
    cfg.report(work_s=round(time.monotonic() - connected, 3))


def w3(cfg):
    idl = open_idl(cfg, [wl.LSP])
    rows = len(idl.tables[wl.LSP].rows)
    cfg.report(work_s=round(time.monotonic() - STARTED, 3), rows=rows)


def w4(cfg):
    idl = open_idl(cfg, [wl.LSP], cls=WatchingIdl)
    synced = time.monotonic()
    idl.wanted_gen = cfg.gen
    idl.reached = set()
    cfg.signal_ready()
    spin(idl, lambda: len(idl.reached) >= cfg.n)
    cfg.report(sync_s=round(synced - STARTED, 3), seen=len(idl.reached))


def main():
    ovs.vlog.Vlog.init(None)
    cfg = wl.Settings()
    run = {"W1": w1, "W2": w2, "W3": w3, "W4": w4}.get(cfg.workload)
    if run is None:
        sys.stderr.write("ovs-idl does not run %s\n" % cfg.workload)
        return 3
    run(cfg)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # A large cache takes seconds to free at interpreter exit; that is not the workload.
    os._exit(code)
