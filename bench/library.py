"""Library mode: a replicated counter embedded in 3 processes, raftkv against PySyncObj.

The callers run in the leader's process and keep the same number of increments in flight (the
window). raftkv fsyncs every batch on a majority before acknowledging (its WAL on disk);
PySyncObj keeps its log in memory and does not fsync. Prints ops/s for both and the ratio.

    .venv/bin/python bench/library.py [--seconds 10] [--window 1000]

Needs ``pip install pysyncobj`` (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


# -- raftkv worker ------------------------------------------------------------------------------


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def apply(self, entries: list) -> list:  # type: ignore[type-arg]
        out = []
        for e in entries:
            if e.data:
                self.value += 1
            out.append(self.value)
        return out

    def snapshot(self) -> bytes:
        return str(self.value).encode()

    def restore(self, data: bytes) -> None:
        self.value = int(data or b"0")


async def raftkv_worker(me: int, ports: list[int], seconds: float, window: int, data: str) -> None:
    from raftkv.node import start_replica

    peers = {i + 1: ("127.0.0.1", p) for i, p in enumerate(ports)}
    node = await start_replica(me, peers, Counter(), data_dir=f"{data}/n{me}", seed=me)
    deadline = time.monotonic() + 30
    while node.leader() == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    if node.is_leader():
        await node.propose(b"1")  # warm up
        done = 0
        stop_at = time.monotonic() + seconds
        t0 = time.monotonic()

        async def caller() -> None:
            nonlocal done
            while time.monotonic() < stop_at:
                await node.propose(b"1")
                done += 1

        await asyncio.gather(*(caller() for _ in range(window)))
        elapsed = time.monotonic() - t0
        fsyncs = node.storage.disk.fsyncs  # type: ignore[union-attr]
        print(json.dumps({"ops": done, "seconds": elapsed, "fsyncs": fsyncs}), flush=True)
    else:
        print(json.dumps({"follower": me}), flush=True)
    # Wait for the parent to say we are done (stdin closes).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await node.stop(transfer=False)


# -- PySyncObj worker ---------------------------------------------------------------------------


def pysyncobj_worker(me: int, ports: list[int], seconds: float, window: int) -> None:
    from pysyncobj import SyncObj, SyncObjConf, replicated

    class PCounter(SyncObj):  # type: ignore[misc]
        def __init__(self, self_addr: str, others: list[str]) -> None:
            super().__init__(self_addr, others, SyncObjConf(dynamicMembershipChange=False))
            self.value = 0

        @replicated  # type: ignore[misc]
        def inc(self) -> int:
            self.value += 1
            return self.value

    addrs = [f"127.0.0.1:{p}" for p in ports]
    obj = PCounter(addrs[me - 1], [a for i, a in enumerate(addrs) if i != me - 1])
    deadline = time.monotonic() + 30
    while obj._getLeader() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if str(obj._getLeader()) == addrs[me - 1]:
        lock = threading.Lock()
        sem = threading.Semaphore(window)
        done = 0
        stop_at = time.monotonic() + seconds

        def cb(result: object, err: object) -> None:
            nonlocal done
            with lock:
                done += 1
            sem.release()

        t0 = time.monotonic()
        while time.monotonic() < stop_at:
            sem.acquire()
            obj.inc(callback=cb)
        for _ in range(window):
            sem.acquire()
        elapsed = time.monotonic() - t0
        print(json.dumps({"ops": done, "seconds": elapsed}), flush=True)
    else:
        print(json.dumps({"follower": me}), flush=True)
    sys.stdin.read()
    obj.destroy()


# -- driver -------------------------------------------------------------------------------------


def run(system: str, seconds: float, window: int) -> float:
    ports = free_ports(3)
    with tempfile.TemporaryDirectory(dir=os.environ.get("RAFTKV_BENCH_DIR")) as data:
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--worker", system, "--me", str(i), "--ports",
                 ",".join(map(str, ports)), "--seconds", str(seconds), "--window", str(window),
                 "--data", data],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            for i in (1, 2, 3)
        ]
        results = []
        try:
            for p in procs:
                assert p.stdout is not None
                results.append(json.loads(p.stdout.readline()))
        finally:
            for p in procs:
                if p.stdin:
                    p.stdin.close()
            for p in procs:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
        lead = [r for r in results if "ops" in r]
        if len(lead) != 1:
            raise SystemExit(f"{system}: expected one leader, got {results}")
        if "fsyncs" in lead[0]:
            print(f"  raftkv leader: {lead[0]['fsyncs']} fsyncs for {lead[0]['ops']} increments "
                  f"({lead[0]['ops'] / max(1, lead[0]['fsyncs']):.0f} per fsync)")
        return float(lead[0]["ops"] / lead[0]["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--window", type=int, default=1000)
    ap.add_argument("--worker")
    ap.add_argument("--me", type=int)
    ap.add_argument("--ports")
    ap.add_argument("--data")
    a = ap.parse_args()
    if a.worker:
        ports = [int(p) for p in a.ports.split(",")]
        if a.worker == "raftkv":
            asyncio.run(raftkv_worker(a.me, ports, a.seconds, a.window, a.data))
        else:
            pysyncobj_worker(a.me, ports, a.seconds, a.window)
        return
    print(f"library mode: 3 processes, window {a.window}, {a.seconds:.0f} s each, "
          f"data in {Path(tempfile.gettempdir())}")
    r = run("raftkv", a.seconds, a.window)
    print(f"raftkv    (fsync on a majority): {r:9.0f} ops/s")
    try:
        import pysyncobj  # noqa: F401
    except ImportError:
        print("pysyncobj not installed: pip install pysyncobj")
        return
    p = run("pysyncobj", a.seconds, a.window)
    print(f"pysyncobj (memory, no fsync):    {p:9.0f} ops/s")
    print(f"ratio raftkv/pysyncobj: {r / p:.2f}x")


if __name__ == "__main__":
    main()
