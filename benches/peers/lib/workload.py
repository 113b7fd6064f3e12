"""What every client of the peer comparison shares: the settings it is given, the rows it
writes, and a small OVSDB JSON-RPC connection (standard library only).

The runner, the W4 writer and the Python clients import this module; nothing here depends
on the peers' own packages.
"""

import json
import os
import resource
import socket
import time

NB_DB = "OVN_Northbound"
NB_SCHEMA = "/usr/share/ovn/ovn-nb.ovsschema"
LSP = "Logical_Switch_Port"
LS = "Logical_Switch"


def port_name(prefix, i):
    """Name of port `i` (1-based)."""
    return "%s%d" % (prefix, i)


def port_address(i):
    """The one entry of port `i`'s `addresses`: a MAC and an IPv4 address derived from i."""
    hi, mid, lo = (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF
    return "0a:00:00:%02x:%02x:%02x 10.%d.%d.%d" % (hi, mid, lo, 16 + (i >> 16), mid, lo)


def port_row(prefix, i):
    """Port `i` as an OVSDB row in wire form."""
    name = port_name(prefix, i)
    return {
        "name": name,
        "addresses": port_address(i),
        "external_ids": ["map", [["pod", name]]],
    }


def insert_ports_ops(prefix, first, last, switch, create_switch):
    """Operations that insert ports first..last and attach them to `switch`.

    With `create_switch` the switch is inserted in the same transaction (W1, fixtures);
    otherwise it must exist and gets the ports through a `mutate` (W2)."""
    ops = []
    refs = []
    for i in range(first, last + 1):
        label = "lsp%d" % i
        ops.append({"op": "insert", "table": LSP, "uuid-name": label,
                    "row": port_row(prefix, i)})
        refs.append(["named-uuid", label])
    if create_switch:
        ops.append({"op": "insert", "table": LS,
                    "row": {"name": switch, "ports": ["set", refs]}})
    else:
        ops.append({"op": "mutate", "table": LS, "where": [["name", "==", switch]],
                    "mutations": [["ports", "insert", ["set", refs]]]})
    return ops


class Settings(object):
    """The settings a client is started with (see the contract in benches/peers/README.md)."""

    def __init__(self, environ=None):
        e = os.environ if environ is None else environ
        self.workload = e.get("BENCH_WORKLOAD", "")
        self.remote = e["OVSDB_REMOTE"]
        self.socket = e.get("OVSDB_SOCK") or self.remote.partition(":")[2]
        self.db = e.get("BENCH_DB", NB_DB)
        self.schema = e.get("BENCH_SCHEMA", NB_SCHEMA)
        self.n = int(e.get("BENCH_N", "0"))
        self.switch = e.get("BENCH_SWITCH", "ls0")
        self.prefix = e.get("BENCH_PREFIX", "p")
        self.tmpdir = e.get("BENCH_TMPDIR", "")
        self.result_file = e.get("BENCH_RESULT_FILE", "")
        self.ready_file = e.get("BENCH_READY_FILE", "")
        self.gen = e.get("BENCH_GEN", "1")

    def report(self, **fields):
        """Writes the client's own figures (merged into the runner's record)."""
        if not self.result_file:
            return
        usage = resource.getrusage(resource.RUSAGE_SELF)
        fields.setdefault("own_cpu_s", round(usage.ru_utime + usage.ru_stime, 3))
        with open(self.result_file, "w") as out:
            json.dump(fields, out)

    def signal_ready(self):
        """W4: tells the runner that the initial contents are in."""
        if not self.ready_file:
            return
        partial = self.ready_file + ".part"
        with open(partial, "w") as out:
            out.write("%.6f\n" % time.monotonic())
        os.replace(partial, self.ready_file)


class RpcError(Exception):
    """An error reply, or an operation error inside a transaction's result."""


class Rpc(object):
    """One JSON-RPC connection to an OVSDB server's unix socket.

    Requests can be pipelined (`send` several, then `receive`); echo requests from the server
    are answered while receiving. Messages are concatenated JSON objects with no delimiter, so
    the buffer is decoded whenever it could end on a complete object."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.decoder = json.JSONDecoder()
        self.pending = bytearray()
        self.ready = []
        self.last_id = 0

    def close(self):
        self.sock.close()

    def send(self, method, params):
        """Sends one request; returns its id."""
        self.last_id += 1
        self.send_bytes(encode(method, params, self.last_id))
        return self.last_id

    def send_bytes(self, data):
        self.sock.sendall(data)

    def _split(self):
        text = self.pending.decode("utf-8")
        pos, end = 0, len(text)
        while True:
            while pos < end and text[pos] in " \t\r\n":
                pos += 1
            if pos == end:
                break
            try:
                msg, pos = self.decoder.raw_decode(text, pos)
            except ValueError:
                break
            self.ready.append(msg)
        self.pending = bytearray(text[pos:].encode("utf-8"))

    def receive(self):
        """The next message that is not an echo request."""
        while True:
            while self.ready:
                msg = self.ready.pop(0)
                if msg.get("method") == "echo" and msg.get("id") is not None:
                    reply = {"id": msg["id"], "result": msg.get("params", []), "error": None}
                    self.sock.sendall(json.dumps(reply).encode())
                    continue
                return msg
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("the server closed the connection")
            self.pending += chunk
            if self.pending.rstrip().endswith(b"}"):
                self._split()

    def call(self, method, params):
        """Sends a request and waits for its reply (other replies are dropped)."""
        want = self.send(method, params)
        while True:
            msg = self.receive()
            if msg.get("id") != want:
                continue
            if msg.get("error") is not None:
                raise RpcError(msg["error"])
            return msg["result"]

    def transact(self, db, ops):
        """Runs one transaction; raises if any operation failed."""
        result = self.call("transact", [db] + list(ops))
        check_transact(result)
        return result


def encode(method, params, request_id):
    return json.dumps({"method": method, "params": params, "id": request_id},
                      separators=(",", ":")).encode()


def check_transact(result):
    for i, op in enumerate(result):
        if isinstance(op, dict) and "error" in op:
            raise RpcError("operation %d: %s: %s" % (i, op.get("error"), op.get("details")))


def wait_socket(path, timeout):
    """Waits until a unix socket accepts connections."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            Rpc(path).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)
