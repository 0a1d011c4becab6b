"""Shared by the node tests: a user's counter state machine and a cluster of Nodes over the
in-memory transport, with MemoryStorage."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from raftkv.node import Node, NodeConfig
from raftkv.raft import ConfState, Entry, MemoryStorage
from raftkv.transport.memory import MemoryNetwork, MemoryTransport


class Counter:
    """A user's state machine: named counters."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def apply(self, entries: list[Entry]) -> list[object]:
        out: list[object] = []
        for e in entries:
            if not e.data:
                out.append(None)
                continue
            name = e.data.decode()
            self.values[name] = self.values.get(name, 0) + 1
            out.append(self.values[name])
        return out

    def snapshot(self) -> bytes:
        return json.dumps(self.values, sort_keys=True).encode()

    def restore(self, data: bytes) -> None:
        self.values = json.loads(data) if data else {}


class Cluster:
    def __init__(self, n: int = 3, **cfg: Any) -> None:
        self.ids = list(range(1, n + 1))
        self.net = MemoryNetwork()
        self.storage = {i: MemoryStorage(ConfState(voters=tuple(self.ids))) for i in self.ids}
        self.sms: dict[int, Counter] = {}
        self.nodes: dict[int, Node] = {}
        self.transports: dict[int, MemoryTransport] = {}
        self.cfg = cfg

    async def start(self, i: int) -> None:
        self.sms[i] = Counter()
        t = MemoryTransport(
            i,
            self.net,
            [p for p in self.ids if p != i],
            on_message=lambda m: self.nodes[i].receive(m),
            report_unreachable=lambda p: self.nodes[i].report_unreachable(p),
            on_snapshot_status=lambda p, ok: self.nodes[i].report_snapshot(p, ok),
        )
        self.transports[i] = t
        self.nodes[i] = Node(
            NodeConfig(id=i, tick_ms=2, seed=i, **self.cfg), self.storage[i], t, self.sms[i]
        )
        await t.start()
        await self.nodes[i].start()

    async def start_all(self) -> None:
        for i in self.ids:
            await self.start(i)

    async def stop(self, i: int, transfer: bool = False) -> None:
        await self.nodes[i].stop(transfer=transfer)
        await self.transports[i].stop()

    async def stop_all(self) -> None:
        for i in self.ids:
            if not self.nodes[i].done.is_set():
                await self.stop(i)

    def leader(self) -> int | None:
        for i, n in self.nodes.items():
            if not n.done.is_set() and n.is_leader():
                return i
        return None


async def until(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    async def loop() -> None:
        while not pred():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(loop(), timeout)


def run(coro: Callable[[Cluster], Awaitable[None]], **cfg: Any) -> None:
    async def main() -> None:
        c = Cluster(**cfg)
        await c.start_all()
        try:
            await coro(c)
        finally:
            await c.stop_all()

    asyncio.run(main())
