"""Helpers of the transport tests: a bounded asyncio runner, condition polling, sample messages,
and a small cluster of real PeerTransports on 127.0.0.1 (ports picked by binding port 0)."""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from raftkv.raft.messages import (
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    Propose,
    ReadIndex,
    ReadIndexResponse,
    RequestVote,
    TimeoutNow,
    VoteResponse,
)
from raftkv.raft.types import ConfState, Entry, EntryType, Snapshot, SnapshotMeta
from raftkv.transport import PeerTransport

sys.path.insert(0, str(Path(__file__).parent))

T = TypeVar("T")
DEADLINE = 10.0
CLUSTER_ID = 0x5EED


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Run ``coro`` in a fresh event loop, failing the test if it takes over ``timeout``."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def wait_until(pred: Callable[[], bool], timeout: float = DEADLINE, what: str = "") -> None:
    """Poll ``pred`` every few ms until it holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.005)


async def retry_until(
    action: Callable[[], None], pred: Callable[[], bool], timeout: float = DEADLINE
) -> None:
    """Repeat ``action`` (e.g. a send, as Raft retransmits) until ``pred`` holds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {pred}")
        action()
        await asyncio.sleep(0.02)


def every_kind(frm: int, to: int, term: int = 3) -> list[Message]:
    """One message of every kind from ``frm`` to ``to``."""
    ents = (Entry(3, 10, b"x" * 10), Entry(3, 11, b"", EntryType.CONF_CHANGE))
    snap = Snapshot(SnapshotMeta(9, 2, ConfState((1, 2, 3), (4,))), b"state" * 100)
    return [
        AppendEntries(to=to, frm=frm, term=term, log_term=2, index=9, entries=ents, commit=8),
        AppendResponse(to=to, frm=frm, term=term, index=11, reject=True, reject_hint=5, log_term=2),
        RequestVote(to=to, frm=frm, term=term, pre=True, last_index=11, last_term=3, transfer=True),
        VoteResponse(to=to, frm=frm, term=term, pre=False, reject=True),
        Heartbeat(to=to, frm=frm, term=term, commit=7, ctx=b"c"),
        HeartbeatResponse(to=to, frm=frm, term=term, ctx=b"c"),
        InstallSnapshot(to=to, frm=frm, term=term, snapshot=snap),
        TimeoutNow(to=to, frm=frm, term=term),
        Propose(to=to, frm=frm, term=0, entries=ents),
        ReadIndex(to=to, frm=frm, term=0, ctx=b"r"),
        ReadIndexResponse(to=to, frm=frm, term=term, index=11, ctx=b"r"),
    ]


class Member:
    """A PeerTransport with everything it received and reported, for assertions."""

    def __init__(self, node_id: int, **kwargs: Any) -> None:
        self.id = node_id
        self.received: list[Message] = []
        self.unreachable: list[int] = []
        self.snapshot_status: list[tuple[int, bool]] = []
        self.kwargs = kwargs
        self.t = self._build({})

    def _build(self, peers: dict[int, tuple[str, int]]) -> PeerTransport:
        kwargs = {"rng": random.Random(self.id), "backoff_min": 0.01, "backoff_max": 0.1}
        kwargs.update(self.kwargs)
        return PeerTransport(
            self.id,
            kwargs.pop("cluster_id", CLUSTER_ID),
            peers,
            self.received.append,
            report_unreachable=self.unreachable.append,
            on_snapshot_status=lambda to, ok: self.snapshot_status.append((to, ok)),
            **kwargs,
        )

    @property
    def addr(self) -> tuple[str, int]:
        assert self.t.address is not None
        return self.t.address

    async def restart(self) -> None:
        """Stop, then start a new transport on the same port with the same peers."""
        addr, peers = self.addr, self.t.peers
        await self.t.stop()
        self.t = self._build(peers)
        await self.t.start(*addr)

    def from_peer(self, frm: int) -> list[Message]:
        return [m for m in self.received if m.frm == frm]


async def cluster(n: int, **kwargs: Any) -> list[Member]:
    """``n`` started members (ids 1..n) that know each other's addresses."""
    members = [Member(i + 1, **kwargs) for i in range(n)]
    for m in members:
        await m.t.start("127.0.0.1", 0)
    for m in members:
        for o in members:
            if o is not m:
                m.t.add_peer(o.id, o.addr)
    return members


async def stop_all(members: list[Member]) -> None:
    await asyncio.gather(*(m.t.stop() for m in members))


async def with_cluster(n: int, body: Callable[[list[Member]], Awaitable[None]], **kw: Any) -> None:
    members = await cluster(n, **kw)
    try:
        await body(members)
    finally:
        await stop_all(members)


@pytest.fixture(autouse=True)
def no_asyncio_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test whose event loop logged an error (a task exception never retrieved, ...)."""
    yield
    errors = [
        r.getMessage()
        for r in caplog.get_records("call")
        if r.name == "asyncio" and r.levelno >= 40
    ]
    assert not errors, errors
