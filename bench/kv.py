"""raftkv 3-node cluster against a 3-member etcd 3.4 cluster (Debian's etcd-server), one run.

Same workload, same number of Python load-generator processes for both: puts of 256-byte values
with 1 and 64 concurrent clients, then linearizable gets with 64 clients, each for --seconds.
By default raftkv is driven through its native protocol (raftkv.client) and etcd through its JSON
gateway (aiohttp); with ``--api etcd`` both are driven by the same gRPC load generator (grpclib
with raftkv's etcd v3 stubs), speaking etcd's API to each. Every write is fsynced on a majority
before it is acknowledged, in both systems. Prints ops/s, p50/p99 latency, client CPU, the
raftkv/etcd ratios and the raw fsync p50 of this disk, and the CPU the members and the clients
spent per request.

Where the requests go: each client is given every member's endpoint. raftkv's client talks to
the leader when it knows it (``AsyncClient(prefer_leader=True)``, its default); the gRPC and
JSON-gateway clients spread over the members, as etcd's clients do, and a member that is not
the leader forwards writes to it. ``--etcd-at-leader`` sends etcd's requests to its leader
instead, to compare with etcd at its best placement.

    .venv/bin/python bench/kv.py [--seconds 10] [--procs 2] [--api native|etcd] [--etcd-at-leader]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VALUE = b"v" * 256


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fsync_p50(path: str, n: int = 200) -> float:
    f = os.path.join(path, "fsync-probe")
    times = []
    with open(f, "wb") as fh:
        for _ in range(n):
            fh.write(b"x" * 4096)
            fh.flush()
            t0 = time.perf_counter()
            os.fsync(fh.fileno())
            times.append(time.perf_counter() - t0)
    os.unlink(f)
    return statistics.median(times) * 1000


# -- load generator (runs in its own process) ---------------------------------------------------


async def load(system: str, endpoints: list[str], clients: int, seconds: float, op: str) -> dict:
    lat: list[float] = []
    stop_at = time.monotonic() + seconds
    if system.endswith("-grpc"):
        from grpclib.client import Channel

        from raftkv.server.etcdpb import rpc_grpc, rpc_pb2

        chans = [Channel(*ep.rsplit(":", 1)) for ep in endpoints]
        stubs = [rpc_grpc.KVStub(ch) for ch in chans]

        async def one(i: int) -> None:
            stub = stubs[i % len(stubs)]
            k = 0
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                if op == "put":
                    await stub.Put(rpc_pb2.PutRequest(key=f"k{i}-{k % 1000}".encode(), value=VALUE))
                else:
                    await stub.Range(rpc_pb2.RangeRequest(key=f"k{i}-0".encode()))
                lat.append(time.perf_counter() - t0)
                k += 1

        await asyncio.gather(*(one(i) for i in range(clients)))
        for ch in chans:
            ch.close()
    elif system == "raftkv":
        from raftkv.client import AsyncClient

        # Every client gets all endpoints (starting at a different one); each finds the leader.
        conns = [
            AsyncClient(endpoints[k:] + endpoints[:k], command_timeout=10)
            for k in range(len(endpoints))
        ]

        async def one(i: int) -> None:
            c = conns[i % len(conns)]
            k = 0
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                if op == "put":
                    await c.put(f"k{i}-{k % 1000}".encode(), VALUE)
                else:
                    await c.get(f"k{i}-0".encode())
                lat.append(time.perf_counter() - t0)
                k += 1

        await asyncio.gather(*(one(i) for i in range(clients)))
        for c in conns:
            await c.close()
    else:
        import aiohttp

        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=clients + 4)
        ) as s:

            async def one(i: int) -> None:
                base = f"http://{endpoints[i % len(endpoints)]}"
                k = 0
                while time.monotonic() < stop_at:
                    key = base64.b64encode(f"k{i}-{k % 1000 if op == 'put' else 0}".encode())
                    body = {"key": key.decode()}
                    if op == "put":
                        body["value"] = base64.b64encode(VALUE).decode()
                    t0 = time.perf_counter()
                    async with s.post(f"{base}/v3/kv/{'put' if op == 'put' else 'range'}",
                                      json=body) as r:
                        await r.read()
                        if r.status != 200:
                            raise RuntimeError(f"etcd answered {r.status}")
                    lat.append(time.perf_counter() - t0)
                    k += 1

            await asyncio.gather(*(one(i) for i in range(clients)))
    cpu = os.times()
    return {"lat": lat, "cpu": cpu.user + cpu.system}


def run_load(system: str, endpoints: list[str], clients: int, seconds: float, op: str,
             procs: int) -> dict:
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    ps = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", system, "--endpoints", ",".join(endpoints),
             "--clients", str(n), "--seconds", str(seconds), "--op", op],
            stdout=subprocess.PIPE, text=True,
        )
        for n in per if n > 0
    ]
    lat: list[float] = []
    cpu = 0.0
    for p in ps:
        out, _ = p.communicate(timeout=seconds + 60)
        if p.returncode != 0:
            raise SystemExit(f"{system} load generator failed")
        r = json.loads(out)
        lat += r["lat"]
        cpu += r["cpu"]
    lat.sort()
    return {
        "ops": len(lat) / seconds,
        "p50": lat[len(lat) // 2] * 1000 if lat else float("nan"),
        "p99": lat[int(len(lat) * 0.99)] * 1000 if lat else float("nan"),
        "cpu": cpu,
    }


def server_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) the server processes ``pids`` have used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


def measured(system: str, endpoints: list[str], w: tuple[str, int], seconds: float, procs: int,
             pids: list[int]) -> dict:
    """run_load, plus the CPU the servers spent meanwhile."""
    before = server_cpu(pids)
    r = run_load(system, endpoints, w[1], seconds, w[0], procs)
    r["server_cpu"] = server_cpu(pids) - before
    return r


# -- clusters -----------------------------------------------------------------------------------


def etcd_leader(eps: list[str]) -> str:
    """The client endpoint of etcd's leader, from the gateway's maintenance status."""
    import urllib.request

    ids = []
    for ep in eps:
        req = urllib.request.Request(f"http://{ep}/v3/maintenance/status", data=b"{}")
        st = json.load(urllib.request.urlopen(req, timeout=5))
        ids.append(st["header"]["member_id"])
    return eps[ids.index(st["leader"])]


def start_etcd(base: str) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    etcd = shutil.which("etcd")
    if etcd is None:
        raise SystemExit("etcd not found: apt-get install etcd-server")
    ports = [(free_port(), free_port()) for _ in range(3)]
    initial = ",".join(f"e{i}=http://127.0.0.1:{p}" for i, (_, p) in enumerate(ports))
    procs = []
    for i, (c, p) in enumerate(ports):
        with open(f"{base}/e{i}.log", "wb") as log:
            procs.append(subprocess.Popen(
            [etcd, "--name", f"e{i}", "--data-dir", f"{base}/e{i}",
             "--listen-client-urls", f"http://127.0.0.1:{c}",
             "--advertise-client-urls", f"http://127.0.0.1:{c}",
             "--listen-peer-urls", f"http://127.0.0.1:{p}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{p}",
             "--initial-cluster", initial, "--initial-cluster-state", "new",
             "--initial-cluster-token", "bench"],
            stdout=subprocess.DEVNULL, stderr=log,
        ))
    eps = [f"127.0.0.1:{c}" for c, _ in ports]
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            ok = all(
                json.load(urllib.request.urlopen(f"http://{ep}/health", timeout=1))["health"]
                == "true"
                for ep in eps
            )
            if ok:
                return procs, eps
        except Exception:
            pass
        time.sleep(0.2)
    raise SystemExit("etcd did not become healthy")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--procs", type=int, default=2, help="load-generator processes per system")
    ap.add_argument("--worker")
    ap.add_argument("--endpoints")
    ap.add_argument("--clients", type=int)
    ap.add_argument("--op")
    ap.add_argument("--etcd-at-leader", action="store_true",
                    help="send etcd's load to its leader (raftkv's client finds its leader itself)")
    ap.add_argument("--api", choices=("native", "etcd"), default="native",
                    help="native: raftkv's protocol vs etcd's JSON gateway; etcd: gRPC to both")
    a = ap.parse_args()
    if a.worker:
        r = asyncio.run(load(a.worker, a.endpoints.split(","), a.clients, a.seconds, a.op))
        print(json.dumps(r))
        return

    from raftkv.localcluster import LocalCluster

    base = tempfile.mkdtemp(prefix="raftkv-bench-", dir=os.environ.get("RAFTKV_BENCH_DIR"))
    print(f"raw fsync p50 of this disk (4 KiB): {fsync_p50(base):.2f} ms")
    workloads = [("put", 1), ("put", 64), ("get", 64)]
    results: dict[str, dict[tuple[str, int], dict]] = {}
    try:
        ports = [(free_port(), free_port()) for _ in range(3)]
        cluster = LocalCluster(Path(base) / "raftkv", ports=ports, fault_injection=False)
        cluster.start()
        cluster.wait_ready(30)
        try:
            eps = cluster.endpoints()
            gen = "raftkv-grpc" if a.api == "etcd" else "raftkv"
            results["raftkv"] = {w: measured(gen, eps, w, a.seconds, a.procs, cluster.pids())
                                 for w in workloads}
        finally:
            cluster.close()
        procs, eps = start_etcd(base)
        try:
            if a.etcd_at_leader:
                eps = [etcd_leader(eps)]
            gen = "etcd-grpc" if a.api == "etcd" else "etcd"
            pids = [p.pid for p in procs]
            results["etcd"] = {w: measured(gen, eps, w, a.seconds, a.procs, pids)
                               for w in workloads}
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=20)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    how = ("the same gRPC load generator (etcd v3 API) for both" if a.api == "etcd"
           else "raftkv native protocol vs etcd JSON gateway")
    print(f"{a.procs} load-generator processes per system; {how}")
    where = "to its leader" if a.etcd_at_leader else "spread over its members"
    ours = "spread over its members" if a.api == "etcd" else "to its leader (the client finds it)"
    print(f"raftkv's requests go {ours}; etcd's go {where}")
    print("server cpu: the three members' CPU (user + system) over the run; per op: servers' and")
    print("clients' CPU per request, in microseconds")
    print(f"{'workload':<22}{'system':<8}{'ops/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'client cpu s':>14}{'server cpu s':>14}{'us/op':>8}")
    for w in workloads:
        name = f"{w[0]}s, {w[1]} client{'s' if w[1] > 1 else ''}"
        for system in ("raftkv", "etcd"):
            r = results[system][w]
            per_op = (r["cpu"] + r["server_cpu"]) / (r["ops"] * a.seconds) * 1e6
            print(f"{name:<22}{system:<8}{r['ops']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}"
                  f"{r['cpu']:>14.1f}{r['server_cpu']:>14.1f}{per_op:>8.0f}")
        rk, et = results["raftkv"][w], results["etcd"][w]
        print(f"{'':<22}{'ratio':<8}{rk['ops'] / et['ops']:>9.2f}x{rk['p50'] / et['p50']:>8.2f}x")


if __name__ == "__main__":
    main()
