#!/usr/bin/env python3
"""The W4 writer: one single-row transaction per port, all sent back to back.

usage: writer.py SOCKET DB PREFIX N GEN

Each transaction sets one port's external_ids to {pod: <name>, gen: GEN}, naming the row by
_uuid. The UUIDs are read first (not timed); then one thread writes every request while this
one reads the replies. Prints one JSON object with CLOCK_MONOTONIC times (the runner's
clock): first request sent, last request sent, last reply read, and the count of failed
transactions. Exits 1 if any failed.
"""

import json
import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workload as wl  # noqa: E402

BATCH = 100
FIRST_ID = 1 << 20


def main(argv):
    path, db, prefix, n, gen = argv[1], argv[2], argv[3], int(argv[4]), argv[5]
    rpc = wl.Rpc(path)
    found = rpc.transact(db, [{"op": "select", "table": wl.LSP, "where": [],
                               "columns": ["_uuid", "name"]}])
    uuids = {row["name"]: row["_uuid"][1] for row in found[0]["rows"]}
    requests = []
    for i in range(1, n + 1):
        name = wl.port_name(prefix, i)
        op = {"op": "update", "table": wl.LSP,
              "where": [["_uuid", "==", ["uuid", uuids[name]]]],
              "row": {"external_ids": ["map", [["gen", gen], ["pod", name]]]}}
        requests.append(wl.encode("transact", [db, op], FIRST_ID + i))
    batches = [b"".join(requests[k:k + BATCH]) for k in range(0, n, BATCH)]
    times = {}

    def send_all():
        times["first_sent"] = time.monotonic()
        for batch in batches:
            rpc.send_bytes(batch)
        times["last_sent"] = time.monotonic()

    sender = threading.Thread(target=send_all)
    sender.start()
    replies = failed = 0
    while replies < n:
        msg = rpc.receive()
        if msg.get("id", 0) <= FIRST_ID:
            continue
        replies += 1
        result = msg.get("result") or [None]
        if msg.get("error") is not None or not isinstance(result[0], dict) \
                or result[0].get("count") != 1:
            failed += 1
    times["last_reply"] = time.monotonic()
    sender.join()
    times.update(n=n, failed=failed)
    print(json.dumps(times))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
