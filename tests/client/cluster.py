"""A real 3-member raftkv cluster in one process: Nodes over MemoryTransport with MemoryStorage,
each with a KVStateMachine and a KVService, each served by NativeProtocol on a real 127.0.0.1
socket. It runs on its own event loop in a background thread, so tests may drive it from any
loop (an AsyncClient under ``asyncio.run``) or none (the CLI, which runs its own loop)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from raftkv.kv import KVStateMachine
from raftkv.node import Node, NodeConfig
from raftkv.raft import ConfState, MemoryStorage
from raftkv.server.native import NativeProtocol
from raftkv.server.service import KVService, Member, ServiceConfig
from raftkv.transport.framing import CLIENT_MAGIC, MAGIC_LEN
from raftkv.transport.memory import MemoryNetwork, MemoryTransport

_T = TypeVar("_T")
CLUSTER_ID = 0x1C0FFEE
PROGRESS_EVERY = 0.2  # seconds between progress notifications of progress_notify watches


class SniffingListener(asyncio.Protocol):
    """The client port's sniffing, in miniature: read the magic, then hand over the connection
    (with the bytes read so far) to NativeProtocol, exactly as the real listener does."""

    def __init__(self, service: KVService, on_native: Callable[[NativeProtocol], None]) -> None:
        self.service = service
        self.on_native = on_native
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        if len(self.buf) < MAGIC_LEN:
            return
        if not self.buf.startswith(CLIENT_MAGIC):
            self.transport.close()
            return
        proto = NativeProtocol(self.service)
        self.on_native(proto)
        self.transport.set_protocol(proto)
        proto.connection_made(self.transport)
        proto.data_received(self.buf)


class Member_:
    def __init__(self) -> None:
        self.node: Node | None = None
        self.sm: KVStateMachine | None = None
        self.service: KVService | None = None
        self.transport: MemoryTransport | None = None
        self.server: asyncio.Server | None = None
        self.protocols: list[NativeProtocol] = []
        self.stopped = False


class ThreadCluster:
    def __init__(self, n: int = 3, tick_ms: int = 5) -> None:
        self.ids = list(range(1, n + 1))
        self.tick_ms = tick_ms
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.members = {i: Member_() for i in self.ids}
        self.ports: dict[int, int] = {}
        self.net: MemoryNetwork | None = None

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float = 30.0) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def endpoints(self) -> list[str]:
        return [f"127.0.0.1:{self.ports[i]}" for i in self.ids]

    def endpoint(self, i: int) -> str:
        return f"127.0.0.1:{self.ports[i]}"

    def start(self) -> None:
        self.run(self._start())
        self.wait_leader()

    async def _start(self) -> None:
        self.net = MemoryNetwork()
        # Listen first: the members' client URLs are known before the services start.
        for i in self.ids:
            m = self.members[i]
            m.server = await self.loop.create_server(
                lambda i=i: SniffingListener(self._service(i), self.members[i].protocols.append),  # type: ignore[misc]
                "127.0.0.1",
                0,
            )
            self.ports[i] = m.server.sockets[0].getsockname()[1]
        members = [
            Member(
                id=i,
                name=f"m{i}",
                peer_urls=(f"http://127.0.0.1:{22380 + i}",),
                client_urls=(f"http://{self.endpoint(i)}",),
            )
            for i in self.ids
        ]
        for i in self.ids:
            m = self.members[i]
            m.sm = KVStateMachine()
            t = MemoryTransport(
                i,
                self.net,
                [p for p in self.ids if p != i],
                on_message=lambda msg, i=i: self._node(i).receive(msg),  # type: ignore[misc]
                report_unreachable=lambda p, i=i: self._node(i).report_unreachable(p),  # type: ignore[misc]
                on_snapshot_status=lambda p, ok, i=i: self._node(i).report_snapshot(p, ok),  # type: ignore[misc]
            )
            m.transport = t
            m.node = Node(
                NodeConfig(id=i, tick_ms=self.tick_ms, seed=i),
                MemoryStorage(ConfState(voters=tuple(self.ids))),
                t,
                m.sm,
            )
            m.service = KVService(
                m.node,
                m.sm,
                ServiceConfig(
                    cluster_id=CLUSTER_ID,
                    members=members,
                    request_timeout=2.0,
                    lease_check_interval=0.05,
                    watch_progress_interval=PROGRESS_EVERY,
                ),
            )
            await t.start()
            await m.node.start()
            await m.service.start()

    def _node(self, i: int) -> Node:
        n = self.members[i].node
        assert n is not None
        return n

    def _service(self, i: int) -> KVService:
        s = self.members[i].service
        assert s is not None
        return s

    def leader(self) -> int | None:
        for i, m in self.members.items():
            if not m.stopped and m.node is not None and m.node.is_leader():
                return i
        return None

    def wait_leader(self, timeout: float = 10.0) -> int:
        def ready() -> bool:
            lead = self.leader()
            return lead is not None and all(
                m.stopped or (m.node is not None and m.node.leader() == lead)
                for m in self.members.values()
            )

        until(ready, timeout)
        lead = self.leader()
        assert lead is not None
        return lead

    def stop_member(self, i: int) -> None:
        """Stop member ``i``: its listener, its client connections, its service and node."""
        self.run(self._stop_member(i))

    async def _stop_member(self, i: int) -> None:
        m = self.members[i]
        if m.stopped:
            return
        m.stopped = True
        if m.server is not None:
            m.server.close()
        for p in m.protocols:
            if p._transport is not None:
                p._transport.abort()
        if m.service is not None:
            await m.service.stop()
        if m.node is not None:
            await m.node.stop(transfer=False)
        if m.transport is not None:
            await m.transport.stop()

    def close(self) -> None:
        try:
            for i in self.ids:
                self.stop_member(i)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


def until(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for ``pred`` with a deadline (polling; never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.002)


async def until_async(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    async def loop() -> None:
        while not pred():
            await asyncio.sleep(0.002)

    await asyncio.wait_for(loop(), timeout)
