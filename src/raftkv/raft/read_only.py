"""ReadIndex bookkeeping on the leader (Raft §8, thesis §6.4).

A read request records the commit index at the time it arrived, then the leader confirms it is
still leader by a round of heartbeats carrying the request's context. Once a majority has
answered a context, that request and every one queued before it may be served at their
recorded index.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class ReadRequest:
    index: int
    ctx: bytes
    frm: int  # who asked: the leader itself, or a follower that forwarded it
    acks: set[int] = field(default_factory=set)


class ReadOnly:
    """Pending read requests, in arrival order."""

    def __init__(self) -> None:
        self.pending: dict[bytes, ReadRequest] = {}
        self.queue: list[bytes] = []

    def add_request(self, index: int, ctx: bytes, frm: int) -> bool:
        """Queue a read; returns False for a context already pending."""
        if ctx in self.pending:
            return False
        self.pending[ctx] = ReadRequest(index, ctx, frm)
        self.queue.append(ctx)
        return True

    def recv_ack(self, node: int, ctx: bytes) -> set[int] | None:
        """Record that ``node`` answered the heartbeat for ``ctx``; returns the acks so far."""
        rs = self.pending.get(ctx)
        if rs is None:
            return None
        rs.acks.add(node)
        return rs.acks

    def advance(self, ctx: bytes) -> list[ReadRequest]:
        """Release the request for ``ctx`` and every request queued before it."""
        if ctx not in self.pending:
            return []
        n = self.queue.index(ctx) + 1
        released = [self.pending.pop(c) for c in self.queue[:n]]
        del self.queue[:n]
        return released

    def last_pending_ctx(self) -> bytes | None:
        return self.queue[-1] if self.queue else None

    def reset(self) -> list[ReadRequest]:
        dropped = [self.pending[c] for c in self.queue]
        self.pending.clear()
        self.queue.clear()
        return dropped
