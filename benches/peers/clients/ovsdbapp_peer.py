#!/usr/bin/env python3
"""ovsdbapp: the OpenStack library, used the way Neutron's OVN driver uses it.

The schema comes from the server, every table is registered, a `Connection` thread runs the
IDL and `OvnNbApiIdlImpl` (with its automatic name indexes) builds the commands. W4 goes
through `RowEventHandler` and a `RowEvent`, as Neutron's driver watches port updates.
"""

import os
import sys
import threading
import time

STARTED = time.monotonic()
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import workload as wl  # noqa: E402

from ovsdbapp.backend.ovs_idl import connection  # noqa: E402
from ovsdbapp.backend.ovs_idl import event as row_event  # noqa: E402
from ovsdbapp.schema.ovn_northbound import impl_idl  # noqa: E402

WAIT_S = 900


class GenerationReached(row_event.RowEvent):
    """Fires for every port update that carries the wanted generation."""

    def __init__(self, gen, n):
        super().__init__((self.ROW_UPDATE,), wl.LSP, None)
        self.gen = gen
        self.n = n
        self.ports = set()
        self.all_seen = threading.Event()

    def match_fn(self, event, row, old=None):
        return row.external_ids.get("gen") == self.gen

    def run(self, event, row, old):
        self.ports.add(row.name)
        if len(self.ports) >= self.n:
            self.all_seen.set()


class EventIdl(connection.OvsdbIdl):
    """An IDL that hands every change to a RowEventHandler."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.events = row_event.RowEventHandler()

    def notify(self, event, row, updates=None):
        self.events.notify(event, row, updates)


def nb_api(cfg, idl_class=connection.OvsdbIdl):
    idl = idl_class.from_server(cfg.remote, cfg.db)
    api = impl_idl.OvnNbApiIdlImpl(connection.Connection(idl=idl, timeout=WAIT_S))
    return api, idl


def port_args(cfg, i):
    name = wl.port_name(cfg.prefix, i)
    return name, {"addresses": [wl.port_address(i)], "external_ids": {"pod": name}}


def w1(cfg):
    api, _ = nb_api(cfg)
    connected = time.monotonic()
    with api.transaction(check_error=True) as txn:
        switch = txn.add(api.ls_add(cfg.switch))
        for i in range(1, cfg.n + 1):
            name, columns = port_args(cfg, i)
            txn.add(api.lsp_add(switch, name, **columns))
    cfg.report(work_s=round(time.monotonic() - connected, 3))


def w2(cfg):
    api, _ = nb_api(cfg)
    connected = time.monotonic()
    for i in range(1, cfg.n + 1):
        name, columns = port_args(cfg, i)
        api.lsp_add(cfg.switch, name, **columns).execute(check_error=True)
    cfg.report(work_s=round(time.monotonic() - connected, 3))


def w3(cfg):
    _, idl = nb_api(cfg)
    rows = len(idl.tables[wl.LSP].rows)
    cfg.report(work_s=round(time.monotonic() - STARTED, 3), rows=rows)


def w4(cfg):
    _, idl = nb_api(cfg, EventIdl)
    synced = time.monotonic()
    watch = GenerationReached(cfg.gen, cfg.n)
    idl.events.watch_event(watch)
    cfg.signal_ready()
    if not watch.all_seen.wait(WAIT_S):
        raise RuntimeError("saw %d of %d ports at generation %s"
                           % (len(watch.ports), cfg.n, cfg.gen))
    cfg.report(sync_s=round(synced - STARTED, 3), seen=len(watch.ports))


def main():
    cfg = wl.Settings()
    run = {"W1": w1, "W2": w2, "W3": w3, "W4": w4}.get(cfg.workload)
    if run is None:
        sys.stderr.write("ovsdbapp does not run %s\n" % cfg.workload)
        return 3
    run(cfg)
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except Exception:  # the Connection thread would keep the process alive
        import traceback
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
