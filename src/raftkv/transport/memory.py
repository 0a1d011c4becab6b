"""An in-process transport with ``PeerTransport``'s interface, for ``raftkv.node`` unit tests.

Members join a ``MemoryNetwork`` when started. ``send`` encodes each message (so only what
survives the wire codec is delivered) and schedules its delivery with ``loop.call_soon``: delivery
is never reentrant, and messages arrive in send order. A message to a member that is not
started, unknown or cut off by ``drop_peers`` is dropped, counted and reported like the TCP
transport does (``report_unreachable``; ``on_snapshot_status(to, False)`` for a snapshot).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping

from raftkv.raft.messages import InstallSnapshot, Message, decode_message, encode_message
from raftkv.transport.api import Address, PeerStats

logger = logging.getLogger("raftkv.transport")


class MemoryNetwork:
    """The members started on it, by id."""

    def __init__(self) -> None:
        self.members: dict[int, MemoryTransport] = {}


class MemoryTransport:
    """Delivers messages between transports of one ``MemoryNetwork``.

    Args:
        self_id: this member's id.
        network: the network shared by the members.
        peers: the other members (addresses are ignored); more with ``add_peer``.
        on_message: called with each message received, on the event loop.
        report_unreachable: called with a peer id when a message to it was dropped.
        on_snapshot_status: called with (peer id, ok) for each InstallSnapshot sent.
    """

    def __init__(
        self,
        self_id: int,
        network: MemoryNetwork,
        peers: Mapping[int, Address] | Iterable[int],
        on_message: Callable[[Message], None],
        *,
        report_unreachable: Callable[[int], None] | None = None,
        on_snapshot_status: Callable[[int, bool], None] | None = None,
    ) -> None:
        self.self_id = self_id
        self.network = network
        self._on_message = on_message
        self._report_unreachable = report_unreachable
        self._on_snapshot_status = on_snapshot_status
        self._peers: set[int] = set()
        self._stats: dict[int, PeerStats] = {}
        self._blocked: set[int] = set()
        self._running = False
        for pid in peers:
            self.add_peer(pid, ("memory", 0))

    async def start(self, host: str = "memory", port: int = 0) -> None:
        """Join the network (host and port are ignored)."""
        if self.network.members.get(self.self_id, self) is not self:
            raise RuntimeError(f"member {self.self_id} is already on this network")
        self.network.members[self.self_id] = self
        self._running = True

    async def stop(self) -> None:
        """Leave the network; messages in flight to this member are dropped."""
        self._running = False
        if self.network.members.get(self.self_id) is self:
            del self.network.members[self.self_id]

    def add_peer(self, peer_id: int, addr: Address) -> None:
        if peer_id != self.self_id:
            self._peers.add(peer_id)
            self._stats.setdefault(peer_id, PeerStats())

    def remove_peer(self, peer_id: int) -> None:
        self._peers.discard(peer_id)

    def drop_peers(self, ids: Iterable[int]) -> None:
        """Discard traffic to and from ``ids`` until ``heal``."""
        self._blocked |= set(ids) - {self.self_id}

    def heal(self) -> None:
        self._blocked.clear()

    def stats(self) -> dict[int, PeerStats]:
        return {pid: dataclasses.replace(s) for pid, s in self._stats.items()}

    def _peer_stats(self, peer_id: int) -> PeerStats:
        return self._stats.setdefault(peer_id, PeerStats())

    def send(self, messages: Iterable[Message]) -> None:
        """Schedule each message's delivery; never blocks."""
        loop = asyncio.get_running_loop()
        for m in messages:
            s = self._peer_stats(m.to)
            target = self.network.members.get(m.to)
            if (
                not self._running
                or target is None
                or m.to not in self._peers
                or m.to in self._blocked
            ):
                s.dropped += 1
                self._report(m, ok=False)
                continue
            data = encode_message(m)
            s.messages_sent += 1
            s.bytes_sent += len(data)
            s.writes += 1
            s.frames_sent += 1
            loop.call_soon(target._receive, self.self_id, data)
            self._report(m, ok=True)

    def _report(self, m: Message, *, ok: bool) -> None:
        if not ok and self._report_unreachable is not None:
            self._report_unreachable(m.to)
        if isinstance(m, InstallSnapshot):
            s = self._peer_stats(m.to)
            if ok:
                s.snapshots_sent += 1
            else:
                s.snapshots_failed += 1
            if self._on_snapshot_status is not None:
                self._on_snapshot_status(m.to, ok)

    def _receive(self, frm: int, data: bytes) -> None:
        s = self._peer_stats(frm)
        if not self._running or frm in self._blocked:
            s.dropped_received += 1
            return
        m = decode_message(data)
        s.messages_received += 1
        s.bytes_received += len(data)
        if isinstance(m, InstallSnapshot):
            s.snapshots_received += 1
        try:
            self._on_message(m)
        except Exception:
            logger.exception(
                "node %d: on_message failed for %s from peer %d",
                self.self_id,
                type(m).__name__,
                frm,
            )
