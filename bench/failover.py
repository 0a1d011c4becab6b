"""Failover: SIGKILL the leader 20 times under light load and time kill -> next acknowledged write.

For raftkv at its defaults, and for etcd 3.4 at its defaults and at
``--heartbeat-interval 50 --election-timeout 250``. Writes go to the surviving members, each
with a short timeout, retried until one is acknowledged. After each trial the killed member is
restarted and the next kill waits until every member names the same leader again. Prints
median, p99 and max.

    .venv/bin/python bench/failover.py [--trials 20]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(ep: str, path: str, body: dict, timeout: float = 0.15) -> dict:
    req = urllib.request.Request(f"http://{ep}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


class Etcd:
    def __init__(self, base: str, extra: list[str]) -> None:
        self.base = base
        self.extra = extra
        self.ports = [(free_port(), free_port()) for _ in range(3)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None, None, None]
        self.initial = ",".join(f"e{i}=http://127.0.0.1:{p}" for i, (_, p) in enumerate(self.ports))

    def endpoints(self) -> list[str]:
        return [f"127.0.0.1:{c}" for c, _ in self.ports]

    def start(self, i: int, state: str = "new") -> None:
        c, p = self.ports[i]
        with open(f"{self.base}/e{i}.log", "ab") as log:
            self.procs[i] = subprocess.Popen(
                ["etcd", "--name", f"e{i}", "--data-dir", f"{self.base}/e{i}",
                 "--listen-client-urls", f"http://127.0.0.1:{c}",
                 "--advertise-client-urls", f"http://127.0.0.1:{c}",
                 "--listen-peer-urls", f"http://127.0.0.1:{p}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{p}",
                 "--initial-cluster", self.initial, "--initial-cluster-state", state,
                 "--initial-cluster-token", "failover", *self.extra],
                stdout=subprocess.DEVNULL, stderr=log)

    def leader(self) -> int | None:
        for i, ep in enumerate(self.endpoints()):
            if self.procs[i] is None:
                continue
            try:
                st = post(ep, "/v3/maintenance/status", {})
                if st.get("leader") and st["leader"] == st["header"]["member_id"]:
                    return i
            except Exception:
                continue
        return None

    def wait_all(self, timeout: float = 30) -> None:
        """Until every member names the same leader (a restarted member has rejoined)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                leads = {post(ep, "/v3/maintenance/status", {}).get("leader")
                         for ep in self.endpoints()}
                if len(leads) == 1 and None not in leads and "0" not in leads:
                    return
            except Exception:
                pass
            time.sleep(0.02)
        raise SystemExit("etcd: a restarted member did not rejoin")

    def kill(self, i: int) -> None:
        p = self.procs[i]
        assert p is not None
        p.send_signal(signal.SIGKILL)
        p.wait()
        self.procs[i] = None

    def put(self, ep: str) -> bool:
        try:
            post(ep, "/v3/kv/put", {"key": base64.b64encode(b"f").decode(),
                                    "value": base64.b64encode(b"v").decode()})
            return True
        except Exception:
            return False

    def close(self) -> None:
        for p in self.procs:
            if p is not None:
                p.kill()
                p.wait()


class Raftkv:
    def __init__(self, base: str) -> None:
        from raftkv.localcluster import LocalCluster

        ports = [(free_port(), free_port()) for _ in range(3)]
        self.c = LocalCluster(Path(base) / "raftkv", ports=ports, fault_injection=False)
        self.c.start()
        self.c.wait_ready(30)
        self.dead: int | None = None

    def endpoints(self) -> list[str]:
        return self.c.endpoints()

    def leader(self) -> int | None:
        return self.c.leader()

    def kill(self, i: int) -> None:
        self.c.kill(i)
        self.dead = i

    def start(self, i: int, state: str = "existing") -> None:
        self.c.start_member(i)

    def wait_all(self, timeout: float = 30) -> None:
        """Until every member names the same leader (a restarted member has rejoined)."""
        self.c.wait_ready(timeout)

    def put(self, ep: str) -> bool:
        from raftkv.client import AsyncClient

        async def go() -> None:
            async with AsyncClient([ep], dial_timeout=0.15, command_timeout=0.15) as cl:
                await cl.put(b"f", b"v")

        try:
            asyncio.run(go())
            return True
        except Exception:
            return False

    def close(self) -> None:
        self.c.close()


def wait_leader(sys_: Etcd | Raftkv, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lead = sys_.leader()
        if lead is not None and sys_.put(sys_.endpoints()[lead]):
            return lead
        time.sleep(0.05)
    raise SystemExit("no leader")


def trials(sys_: Etcd | Raftkv, n: int) -> list[float]:
    out = []
    for _ in range(n):
        lead = wait_leader(sys_)
        # light load: a write a few ms before the kill, so the cluster is busy and warm
        sys_.put(sys_.endpoints()[lead])
        t0 = time.monotonic()
        sys_.kill(lead)
        survivors = [ep for i, ep in enumerate(sys_.endpoints()) if i != lead]
        k = 0
        while not sys_.put(survivors[k % 2]):
            k += 1
            if time.monotonic() - t0 > 30:
                raise SystemExit("no write acknowledged within 30 s of the kill")
        out.append(time.monotonic() - t0)
        sys_.start(lead, "existing")
        # The next kill must find a whole cluster: a Python process takes longer to start
        # than etcd's, and a kill while it is still starting leaves a one-member minority.
        sys_.wait_all()
    return out


def report(name: str, xs: list[float]) -> None:
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    print(f"{name:<46} median {statistics.median(xs) * 1000:7.0f} ms   p99 {p99 * 1000:7.0f} ms"
          f"   max {xs[-1] * 1000:7.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    a = ap.parse_args()
    base = tempfile.mkdtemp(prefix="raftkv-failover-", dir=os.environ.get("RAFTKV_BENCH_DIR"))
    try:
        r = Raftkv(base)
        try:
            report("raftkv (defaults: heartbeat 50, election 150)", trials(r, a.trials))
        finally:
            r.close()
        if shutil.which("etcd") is None:
            print("etcd not found: apt-get install etcd-server")
            return
        for extra, name in (([], "etcd 3.4 (defaults: heartbeat 100, election 1000)"),
                            (["--heartbeat-interval", "50", "--election-timeout", "250"],
                             "etcd 3.4 (heartbeat 50, election 250)")):
            d = tempfile.mkdtemp(dir=base)
            e = Etcd(d, extra)
            for i in range(3):
                e.start(i)
            try:
                report(name, trials(e, a.trials))
            finally:
                e.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
