"""``EventHub``: a member's live events in the simulator's trace schema v1, for SSE subscribers.

Each event is a flat JSON object ``{"t_ms", "node", "ev", ...}`` with the field names of
``raftkv.sim.trace`` (``t_ms`` here is wall-clock milliseconds since the Unix epoch, so the
events of several members line up). Sampling keeps the stream small whatever the load:

- ``role`` (``role``, ``lead``, ``term``): every change, at once (from the node's soft state);
- ``term`` (``term``) and ``vote`` (``term``, ``vote``): every change seen by the sampler;
- ``commit`` (``index``, ``term``), ``append`` (``lo``, ``hi``), ``apply`` (``lo``, ``hi``,
  ``cmds``) and ``snapshot`` (``source``, ``index``): at most once per ``sample_ms`` (50 ms),
  aggregated over the interval;
- ``send`` (``to``, ``count``, ``bytes``, ``dropped``, ``agg_ms``, ``kinds``): messages to one peer
  aggregated over ``agg_ms`` (100 ms) from the transport's counters; nothing when idle.

A new subscriber first gets a ``role`` event with the current state. A subscriber that does not
keep up loses events (its queue is bounded); the server never blocks on one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from raftkv.node import Node, Role
from raftkv.transport import PeerStats

Event = dict[str, Any]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class EventHub:
    """Args:
    node: the running member.
    stats: the transport's per-peer counters (``PeerTransport.stats``), or None.
    sample_ms: the least interval between two commit/append/apply events.
    agg_ms: the interval message counts are aggregated over.
    queue_size: events buffered per subscriber before its oldest are dropped.
    """

    def __init__(
        self,
        node: Node,
        stats: Callable[[], Mapping[int, PeerStats]] | None = None,
        *,
        sample_ms: int = 50,
        agg_ms: int = 100,
        queue_size: int = 1024,
    ) -> None:
        self.node = node
        self._stats = stats
        self.sample_ms = sample_ms
        self.agg_ms = agg_ms
        self.queue_size = queue_size
        self._subs: set[asyncio.Queue[Event]] = set()
        self._task: asyncio.Task[None] | None = None
        self.cmds_applied = 0
        self._cmds_reported = 0
        node.on_soft_state.append(self._on_soft_state)
        node.on_apply.append(self._on_apply)

    # -- subscribers ----------------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue(self.queue_size)
        st = self.node.raw.status()
        q.put_nowait(self._event("role", role=st.role.value, lead=st.lead, term=st.term))
        self._subs.add(q)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._sampler(), name="raftkv-events")
        return q

    def unsubscribe(self, q: asyncio.Queue[Event]) -> None:
        self._subs.discard(q)

    async def close(self) -> None:
        self._subs.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    # -- sources --------------------------------------------------------------------------------

    def _event(self, ev: str, **fields: Any) -> Event:
        return {"t_ms": now_ms(), "node": self.node.id, "ev": ev, **fields}

    def publish(self, e: Event) -> None:
        for q in list(self._subs):
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(e)

    def _on_soft_state(self, lead: int, role: Role, term: int) -> None:
        if self._subs:
            self.publish(self._event("role", role=role.value, lead=lead, term=term))

    def _on_apply(self, entries: Sequence[Any]) -> None:  # raft Entry (server may not import raft)
        self.cmds_applied += sum(1 for e in entries if e.data)

    async def _sampler(self) -> None:
        node = self.node
        st = node.raw.status()
        term, vote, commit, last = st.term, st.vote, st.commit, st.last_index
        applied, snap = node.applied, node.snapshot_index
        self._cmds_reported = self.cmds_applied
        sent = self._read_stats()
        sent_kinds = dict(node.sent_kinds)
        next_agg = time.monotonic() + self.agg_ms / 1000
        while self._subs:
            await asyncio.sleep(self.sample_ms / 1000)
            st = node.raw.status()
            if st.term != term:
                term = st.term
                self.publish(self._event("term", term=term))
            if st.vote != vote:
                vote = st.vote
                self.publish(self._event("vote", term=term, vote=vote))
            if st.last_index != last:
                if st.last_index > last:
                    self.publish(self._event("append", lo=last + 1, hi=st.last_index))
                last = st.last_index
            if st.commit > commit:
                commit = st.commit
                self.publish(self._event("commit", index=commit, term=term))
            if node.snapshot_index != snap:
                snap = node.snapshot_index
                self.publish(self._event("snapshot", source="create", index=snap))
            if node.applied > applied:
                cmds = self.cmds_applied - self._cmds_reported
                self._cmds_reported = self.cmds_applied
                self.publish(self._event("apply", lo=applied + 1, hi=node.applied, cmds=cmds))
                applied = node.applied
            if time.monotonic() >= next_agg:
                next_agg += self.agg_ms / 1000
                now = self._read_stats()
                now_kinds = dict(node.sent_kinds)
                for peer, s in sorted(now.items()):
                    before = sent.get(peer, (0, 0, 0))
                    count, nbytes, dropped = (s[k] - before[k] for k in range(3))
                    kinds = {
                        k: n - sent_kinds.get((p, k), 0)
                        for (p, k), n in sorted(now_kinds.items())
                        if p == peer and n > sent_kinds.get((p, k), 0)
                    }
                    if count or dropped:
                        self.publish(
                            self._event(
                                "send",
                                to=peer,
                                count=count,
                                bytes=nbytes,
                                dropped=dropped,
                                agg_ms=self.agg_ms,
                                kinds=kinds,
                            )
                        )
                sent = now
                sent_kinds = now_kinds

    def _read_stats(self) -> dict[int, tuple[int, int, int]]:
        if self._stats is None:
            return {}
        return {p: (s.messages_sent, s.bytes_sent, s.dropped) for p, s in self._stats().items()}
