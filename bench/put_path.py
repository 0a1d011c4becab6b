"""Where one put's time goes: a traced 1-client run on a local 3-node cluster, hop by hop.

    .venv/bin/python bench/put_path.py [--seconds 3]

Every process of the run (the three members and the load generator) loads a ``sitecustomize``
written by this script, which wraps a few functions of the node, transport, storage, native
protocol and client to record ``time.perf_counter_ns()`` (CLOCK_MONOTONIC: one clock for all
processes). One client sends one put at a time to the leader, so each request's events can be
lined up across processes. Prints the median of each step of the critical path, then the
floor this machine sets for any design with the same hops: two process round trips over
loopback, one event-loop -> thread -> event-loop round trip, and one 4 KiB write + fdatasync.
The wrappers add a microsecond or two per event.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kv as kvbench  # bench/kv.py: the load generator, free ports, the fsync probe

SITECUSTOMIZE = '''
import atexit, os, time
_DIR = os.environ.get("RAFTKV_TRACE_DIR")
if _DIR:
    _EV = []
    _ns = time.perf_counter_ns

    def _dump():
        with open(os.path.join(_DIR, f"{os.getpid()}.txt"), "w") as f:
            f.writelines(f"{t} {label}\\n" for label, t in _EV)

    atexit.register(_dump)

    def _wrap(cls, name, label, when=None, after=False):
        real = getattr(cls, name)

        def traced(*a, **k):
            hit = when is None or when(*a, **k)
            if hit and not after:
                _EV.append((label, _ns()))
            r = real(*a, **k)
            if hit and after:
                _EV.append((label, _ns()))
            return r

        setattr(cls, name, traced)

    from raftkv.client import aio as client
    from raftkv.node import node
    from raftkv.raft.messages import AppendEntries, AppendResponse
    from raftkv.server import native
    from raftkv.storage import aio, wal
    from raftkv.transport import peer

    def _appends(self, ms):
        return any(isinstance(m, AppendEntries) and m.entries for m in ms)

    _wrap(client._Connection, "send", "client sends")
    _wrap(client._Connection, "_on_response", "client answered")
    _wrap(native.NativeProtocol, "data_received", "request in")
    _wrap(native.NativeProtocol, "_flush", "answer out")
    _wrap(node.Node, "_apply", "apply", lambda self, snap, ents: bool(ents))
    _wrap(peer.PeerTransport, "send", "appends out", _appends)
    _wrap(peer.PeerTransport, "send", "ack out",
          lambda self, ms: any(isinstance(m, AppendResponse) for m in ms))
    _wrap(node.Node, "receive", "appends in",
          lambda self, m: isinstance(m, AppendEntries) and bool(m.entries))
    _wrap(node.Node, "receive", "ack in", lambda self, m: isinstance(m, AppendResponse))
    _wrap(aio.AsyncDiskStorage, "save", "save queued", lambda self, hs, ents: bool(ents))
    _wrap(wal.WalWriter, "_sync", "fsync starts")
    _wrap(wal.WalWriter, "_sync", "fsync ends", after=True)
'''

ECHO_SERVER = """
import asyncio
from raftkv.cli.serve import event_loop_factory

async def main():
    async def echo(r, w):
        while data := await r.read(64):
            w.write(data)
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
    runner.run(main())
"""

# The critical path, as (from, to) events; "F" is the follower whose ack reached the leader first.
STEPS = [
    ("client -> leader (loopback)", ("C", "client sends"), ("L", "request in")),
    ("leader: decode, propose, Ready, send", ("L", "request in"), ("L", "appends out")),
    ("leader -> follower (loopback)", ("L", "appends out"), ("F", "appends in")),
    ("follower: step, Ready, queue the save", ("F", "appends in"), ("F", "save queued")),
    ("follower: hand-off to the I/O thread", ("F", "save queued"), ("F", "fsync starts")),
    ("follower: fdatasync", ("F", "fsync starts"), ("F", "fsync ends")),
    ("follower: back to the loop, ack", ("F", "fsync ends"), ("F", "ack out")),
    ("follower -> leader (loopback)", ("F", "ack out"), ("L", "ack in")),
    ("leader: commit, Ready, apply", ("L", "ack in"), ("L", "apply")),
    ("leader: answer written", ("L", "apply"), ("L", "answer out")),
    ("leader -> client (loopback)", ("L", "answer out"), ("C", "client answered")),
]


def trace_run(seconds: float) -> tuple[str, int]:
    """Run the traced cluster and load; returns (trace dir, leader pid)."""
    from raftkv.localcluster import LocalCluster

    base = tempfile.mkdtemp(prefix="raftkv-putpath-", dir=os.environ.get("RAFTKV_BENCH_DIR"))
    site = os.path.join(base, "site")
    traces = os.path.join(base, "traces")
    os.makedirs(site)
    os.makedirs(traces)
    Path(site, "sitecustomize.py").write_text(SITECUSTOMIZE)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [site, os.environ.get("PYTHONPATH")]))
    os.environ["RAFTKV_TRACE_DIR"] = traces
    ports = [(kvbench.free_port(), kvbench.free_port()) for _ in range(3)]
    cluster = LocalCluster(Path(base) / "raftkv", ports=ports, fault_injection=False)
    cluster.start()
    try:
        cluster.wait_ready(30)
        leader = cluster.leader()
        assert leader is not None
        pid = cluster.pids()[leader]
        r = kvbench.run_load("raftkv", [cluster.endpoints()[leader]], 1, seconds, "put", 1)
        print(f"1 client, puts to the leader for {seconds:g} s: p50 {r['p50']:.3f} ms "
              f"(traced: the wrappers cost a little)")
    finally:
        cluster.close()  # members exit cleanly and write their traces
    return base, pid


def analyse(traces: str, leader_pid: int) -> dict[str, list[float]]:
    events: list[tuple[int, int, str]] = []
    for path in glob.glob(os.path.join(traces, "*.txt")):
        pid = int(os.path.basename(path)[:-4])
        for line in Path(path).read_text().splitlines():
            stamp, what = line.split(" ", 1)
            events.append((int(stamp), pid, what))
    events.sort()
    client = next(p for _, p, label in events if label == "client sends")
    steps: dict[str, list[float]] = {name: [] for name, _, _ in STEPS}
    steps["total"] = []
    start = None
    window: list[tuple[int, int, str]] = []
    for ev in events:
        t, pid, label = ev
        if pid == client and label == "client sends":
            start, window = t, [ev]
        elif start is not None:
            window.append(ev)
            if pid == client and label == "client answered":
                _one_request(window, client, leader_pid, steps)
                start = None
    return steps


def _one_request(window: list[tuple[int, int, str]], client: int, leader: int,
                 steps: dict[str, list[float]]) -> None:  # fmt: skip
    """Follow the request along STEPS: each step ends at the first matching event after it
    began. The follower is the one whose ack for this entry left first."""
    followers = {p for _, p, _ in window} - {client, leader}
    best: list[tuple[str, float]] | None = None
    best_ack = None
    for f in followers:
        role = {client: "C", leader: "L", f: "F"}
        parts, t = [], window[0][0]
        for name, _, (who, label) in STEPS:
            nxt = next((te for te, p, lab in window
                        if te >= t and lab == label and role.get(p) == who), None)  # fmt: skip
            if nxt is None:
                break
            parts.append((name, (nxt - t) / 1000))
            if (who, label) == ("F", "ack out"):
                ack = nxt
            t = nxt
        if len(parts) == len(STEPS) and (best_ack is None or ack < best_ack):
            best, best_ack = parts, ack
    if best is None:
        return
    for name, us in best:
        steps[name].append(us)
    steps["total"].append(sum(us for _, us in best))


def floor() -> tuple[float, float, float]:
    """(process round trip, loop -> thread -> loop, 4 KiB write + fdatasync), p50 in µs."""
    from raftkv.cli.serve import event_loop_factory

    n = 3000

    def rtt() -> float:
        echo = subprocess.Popen(
            [sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True
        )
        try:
            assert echo.stdout is not None
            port = int(echo.stdout.readline())

            async def main() -> float:
                r, w = await asyncio.open_connection("127.0.0.1", port)
                out = []
                for _ in range(n):
                    t = time.perf_counter()
                    w.write(b"x")
                    await r.read(64)
                    out.append(time.perf_counter() - t)
                w.close()
                return statistics.median(out) * 1e6

            with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
                return runner.run(main())
        finally:
            echo.kill()
            echo.wait()

    def thread_rt() -> float:
        async def main() -> float:
            loop = asyncio.get_running_loop()
            cond = threading.Condition()
            work: list[asyncio.Future[None] | None] = []

            def worker() -> None:
                while True:
                    with cond:
                        while not work:
                            cond.wait()
                        f = work.pop()
                    if f is None:
                        return
                    loop.call_soon_threadsafe(f.set_result, None)

            th = threading.Thread(target=worker)
            th.start()
            out = []
            for _ in range(n):
                f = loop.create_future()
                t = time.perf_counter()
                with cond:
                    work.append(f)
                    cond.notify()
                await f
                out.append(time.perf_counter() - t)
            with cond:
                work.append(None)
                cond.notify()
            th.join()
            return statistics.median(out) * 1e6

        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            return runner.run(main())

    def fsync() -> float:
        """4 KiB pwrite + fdatasync over a zero-filled file, as the WAL writes (no allocation)."""
        disk = os.environ.get("RAFTKV_BENCH_DIR") or tempfile.gettempdir()
        path = os.path.join(disk, f"raftkv-fsync-probe-{os.getpid()}")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            size = 8 << 20
            os.pwrite(fd, bytes(size), 0)
            os.fsync(fd)
            block, out = os.urandom(4096), []
            for i in range(1000):
                t = time.perf_counter()
                os.pwrite(fd, block, (i * 4096) % size)
                os.fdatasync(fd)
                out.append(time.perf_counter() - t)
            return statistics.median(out) * 1e6
        finally:
            os.close(fd)
            os.remove(path)

    return rtt(), thread_rt(), fsync()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args()
    base, leader = trace_run(a.seconds)
    try:
        steps = analyse(os.path.join(base, "traces"), leader)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    total = 0.0
    print(f"{'step of the critical path':<42}{'p50 µs':>8}{'p90 µs':>8}")
    for name, _, _ in STEPS:
        v = sorted(steps[name])
        if not v:
            print(f"{name:<42}{'-':>8}")
            continue
        p50, p90 = v[len(v) // 2], v[int(len(v) * 0.9)]
        total += p50
        print(f"{name:<42}{p50:>8.0f}{p90:>8.0f}")
    v = sorted(steps["total"])
    print(f"{'sum of the medians':<42}{total:>8.0f}")
    print(f"{'whole request (median of the sums)':<42}{v[len(v) // 2]:>8.0f}  "
          f"({len(v)} requests with every step traced)")
    rtt, thread, fsync = floor()
    print()
    print(f"this machine's floor for these hops: process round trip {rtt:.0f} µs (x2), "
          f"loop -> thread -> loop {thread:.0f} µs, 4 KiB write + fdatasync {fsync:.0f} µs")
    print(f"  = {2 * rtt + thread + fsync:.0f} µs before any work on a request")


if __name__ == "__main__":
    main()
