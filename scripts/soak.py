"""Chaos soak of a local 3-member cluster: writers put unique keys while members are killed and
restarted, isolated and healed, and leadership is moved; afterwards every acknowledged key must
be on every member with its acknowledged value. Prints the count of mismatches (0 to pass) and
exits 1 if there is any.

    .venv/bin/python scripts/soak.py [--seconds 150] [--seed 1] [--writers 8]

Data and member logs go under a temp dir in RAFTKV_BENCH_DIR (or the system's temp dir), kept
when a mismatch is found.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from raftkv.client import AsyncClient
from raftkv.localcluster import LocalCluster, free_ports


async def writer(
    cluster: LocalCluster, w: int, acked: dict[bytes, bytes], stop: asyncio.Event
) -> None:
    async with AsyncClient(cluster.endpoints(), command_timeout=3) as c:
        k = 0
        while not stop.is_set():
            key, value = f"w{w}-{k}".encode(), f"{k}".encode() * 20
            try:
                await c.put(key, value)
                acked[key] = value
            except Exception:  # unavailable during the faults: not acknowledged, not counted
                await asyncio.sleep(0.01)
            k += 1


async def chaos(cluster: LocalCluster, rng: random.Random, seconds: float) -> int:
    end, steps = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        action, i = rng.choice(["kill", "isolate", "heal", "transfer", "restart"]), rng.randrange(3)
        all_up = all(m.running() for m in cluster.members)
        try:
            if action == "kill" and all_up:
                await asyncio.to_thread(cluster.kill, i)
            elif action == "restart":
                for m in cluster.members:
                    if not m.running():
                        await asyncio.to_thread(cluster.start_member, m.index)
            elif action == "isolate" and all_up:
                await asyncio.to_thread(cluster.isolate, [i])
            elif action == "heal":
                await asyncio.to_thread(cluster.heal)
            elif action == "transfer" and (lead := cluster.leader()) is not None:
                target = rng.choice([j for j in range(3) if j != lead])
                await asyncio.to_thread(cluster.transfer_leader, target)
            steps += 1
        except Exception as e:  # e.g. a transfer refused while partitioned
            print(f"  {action} {i}: {str(e)[:100]}")
    return steps


async def verify(cluster: LocalCluster, acked: dict[bytes, bytes]) -> int:
    bad = 0
    for ep in cluster.endpoints():
        async with AsyncClient([ep], command_timeout=10) as c:
            await c.get(b"soak")  # linearizable: this member has applied everything committed
            for key, value in acked.items():
                r = await c.get(key, serializable=True)
                if not r.kvs or r.kvs[0].value != value:
                    bad += 1
                    if bad <= 5:
                        print(f"MISMATCH on {ep}: {key!r} -> {r.kvs[:1]}")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=150.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--writers", type=int, default=8)
    a = ap.parse_args()
    base = tempfile.mkdtemp(prefix="raftkv-soak-", dir=os.environ.get("RAFTKV_BENCH_DIR"))
    ports = [(c, p) for c, p in (free_ports(2) for _ in range(3))]
    cluster = LocalCluster(Path(base), ports=ports, extra_args=["--snapshot-count", "2000"])
    acked: dict[bytes, bytes] = {}
    bad = -1
    try:
        cluster.start()
        cluster.wait_ready(30)

        async def run() -> int:
            stop = asyncio.Event()
            tasks = [asyncio.create_task(writer(cluster, w, acked, stop)) for w in range(a.writers)]
            steps = await chaos(cluster, random.Random(a.seed), a.seconds)
            stop.set()
            await asyncio.gather(*tasks)
            return steps

        steps = asyncio.run(run())
        for m in cluster.members:
            if not m.running():
                cluster.start_member(m.index)
        cluster.wait_for(lambda: all(cluster.status(i) for i in range(3)), 60, "every member up")
        cluster.heal()
        cluster.wait_ready(60)
        bad = asyncio.run(verify(cluster, acked))
        print(f"{steps} fault steps, {len(acked)} acknowledged writes, {bad} mismatches")
    finally:
        cluster.close()
        if bad == 0:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"data and logs kept in {base}")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
