"""What every transport offers: the ``Transport`` protocol, addresses and per-peer counters.

``PeerTransport`` (TCP) and ``MemoryTransport`` (in-process, for ``raftkv.node`` unit tests)
both satisfy ``Transport``, so a host is written once against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from raftkv.raft.messages import Message

Address = tuple[str, int]
"""A peer's (host, port)."""


@dataclass(slots=True)
class PeerStats:
    """Counters of the traffic with one peer since the transport was built.

    ``writes`` counts write calls on the peer's connection: a burst of messages coalesced into
    one write counts once, so ``writes`` far below ``messages_sent`` shows batching at work.
    """

    messages_sent: int = 0
    bytes_sent: int = 0
    frames_sent: int = 0
    writes: int = 0
    messages_received: int = 0
    bytes_received: int = 0
    dropped: int = 0
    """Outbound messages dropped: queue full, peer unreachable, fault injection, too large."""
    dropped_received: int = 0
    """Inbound messages discarded by fault injection (``drop_peers``)."""
    connects: int = 0
    """Successful outbound handshakes."""
    reconnects: int = 0
    """Successful outbound handshakes after the first."""
    connect_failures: int = 0
    snapshots_sent: int = 0
    snapshots_failed: int = 0
    snapshots_received: int = 0


class Transport(Protocol):
    """The host's view of a transport. Every method runs on the event loop's thread."""

    self_id: int

    async def start(self, host: str, port: int) -> None:
        """Start receiving (listen on (host, port) for a network transport)."""
        ...

    def send(self, messages: Iterable[Message]) -> None:
        """Queue each message for its peer ``m.to``; never blocks or awaits."""
        ...

    async def stop(self) -> None:
        """Stop receiving and sending; queued messages are lost."""
        ...

    def add_peer(self, peer_id: int, addr: Address) -> None:
        """Add a member (or change its address)."""
        ...

    def remove_peer(self, peer_id: int) -> None:
        """Forget a member."""
        ...

    def drop_peers(self, ids: Iterable[int]) -> None:
        """Debug fault hook: discard traffic to and from ``ids`` until ``heal``."""
        ...

    def heal(self) -> None:
        """End every ``drop_peers``."""
        ...

    def stats(self) -> dict[int, PeerStats]:
        """A copy of the per-peer counters."""
        ...
