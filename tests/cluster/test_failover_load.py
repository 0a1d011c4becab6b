"""SIGKILL the leader under write load: a new leader takes over, no acknowledged write is lost
(checked key by key on every member), and the killed member rejoins from its WAL and catches up
through a snapshot, since the others compacted their logs past it meanwhile."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from cluster_helpers import DEADLINE, ELECTION_MS, SMALL_WAL, free_ports, wait_until

from raftkv.client import AsyncClient
from raftkv.localcluster import LocalCluster


async def write_load(
    endpoints: list[str], acked: dict[str, str], stop: asyncio.Event, workers: int = 8
) -> int:
    """Put k/<n> = v<n> from ``workers`` concurrent writers until ``stop``; returns failures."""
    failures = 0
    counter = iter(range(10**9))

    async def writer() -> None:
        nonlocal failures
        async with AsyncClient(endpoints, command_timeout=5) as c:
            while not stop.is_set():
                n = next(counter)
                key, value = f"k/{n:06d}", f"v{n}"
                try:
                    await c.put(key, value)
                except Exception:
                    failures += 1  # not acknowledged: may or may not be there
                    continue
                acked[key] = value

    await asyncio.gather(*(writer() for _ in range(workers)))
    return failures


def test_sigkill_leader_under_load_loses_no_acknowledged_write(tmp_path: Path) -> None:
    ports = free_ports(6)
    c = LocalCluster(
        tmp_path / "c",
        ports=[(ports[2 * i], ports[2 * i + 1]) for i in range(3)],
        election_timeout_ms=ELECTION_MS,
        extra_args=[*SMALL_WAL, "--snapshot-count", "100"],
    )
    c.start()
    try:
        leader = c.wait_ready(DEADLINE)
        acked: dict[str, str] = {}

        async def scenario() -> int:
            stop = asyncio.Event()
            load = asyncio.create_task(write_load(c.endpoints(), acked, stop))
            deadline = time.monotonic() + DEADLINE
            while len(acked) < 200 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            c.kill(leader)  # SIGKILL, mid-load
            at_kill = len(acked)
            deadline = time.monotonic() + 2 * DEADLINE
            while len(acked) < at_kill + 600 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            stop.set()
            await load
            return at_kill

        at_kill = asyncio.run(scenario())
        assert len(acked) >= at_kill + 600, "writes did not resume after the leader was killed"
        new_leader = c.leader()
        assert new_leader is not None and new_leader != leader

        c.start_member(leader)  # rejoins from its WAL
        wait_until(
            lambda: (
                (s := c.status(leader)) is not None
                and (n := c.status(new_leader)) is not None
                and s["applied"] >= n["commit"]
            ),
            2 * DEADLINE,
            "the restarted member to catch up",
        )
        log = Path(c.members[leader].log_path).read_text()
        assert "installed snapshot" in log, "the far-behind member should catch up by snapshot"

        async def check(endpoint: str) -> None:
            async with AsyncClient([endpoint]) as cl:
                resp = await cl.get("k/", prefix=True, serializable=True)
                have = {kv.key.decode(): kv.value.decode() for kv in resp.kvs}
            lost = [k for k, v in acked.items() if have.get(k) != v]
            assert not lost, f"{endpoint} lost acknowledged writes: {lost[:5]}"

        for ep in c.endpoints():
            asyncio.run(check(ep))
    finally:
        c.kill_all()
