"""Live view of a running cluster, read over HTTP from each member's client URL.

Per member, one task polls ``GET /raftkv/v1/status`` every ``poll_ms`` (200 ms) and one task
follows ``GET /raftkv/v1/events`` (SSE, trace schema v1). Both only update in-memory state; a
frame (``raftkv.dashboard.model``) is built from it every ``frame_ms`` (100 ms) and pushed to
the pages, so the page's work does not grow with the event rate.

Log terms of a live member are an approximation (the status has no per-entry terms): entries
the dashboard sees appear (``last_index`` growing in a status or an ``append`` event) are given
the member's current term at that moment, and a shrinking ``last_index`` truncates them; entries
that existed before the dashboard first saw the member have an unknown term (drawn grey) unless
another member knows the term at that committed index (Log Matching, see ``fill_committed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from typing import Any

import aiohttp

from raftkv.dashboard.model import NODE_FIELDS, TermRuns, fill_committed, window


def _sid(i: Any) -> Any:
    """A member id as the page gets it: a string (0, "none", stays the number 0)."""
    return str(i) if i else 0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Member:
    def __init__(self, index: int, url: str, name: str) -> None:
        self.index = index
        self.url = url.rstrip("/")
        self.name = name
        self.id = 0
        self.reachable = False
        self.status: dict[str, Any] = {}
        self.log = TermRuns()
        self.seen_log = False
        self.sse_connected = False


class LiveMonitor:
    """Args:
    urls: the members' client URLs (``http://host:port``).
    names: display names, one per URL (default: the status's name).
    poll_ms: status poll interval; frame_ms: frame interval.
    """

    def __init__(
        self,
        urls: list[str],
        names: list[str] | None = None,
        *,
        poll_ms: int = 200,
        frame_ms: int = 100,
    ) -> None:
        self.members = [
            Member(i, u if "://" in u else f"http://{u}", (names or [])[i] if names else "")
            for i, u in enumerate(urls)
        ]
        self.poll_ms = poll_ms
        self.frame_ms = frame_ms
        self.msgs: dict[tuple[int, int], int] = {}
        self.msg_kinds: dict[tuple[int, int], str] = {}
        self.leaders: deque[dict[str, Any]] = deque(maxlen=200)
        self.ev_ms = 0  # newest event time folded into the state since the last frame
        self.partition: list[list[int]] | None = None  # set by the controls
        self.seq = 0
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.last_frame: dict[str, Any] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._last_leader: tuple[int, int] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        for m in self.members:
            self._tasks.append(asyncio.create_task(self._poll(m)))
            self._tasks.append(asyncio.create_task(self._follow(m)))
        self._tasks.append(asyncio.create_task(self._frames()))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None
        return self._session

    # -- sources --------------------------------------------------------------------------------

    async def _poll(self, m: Member) -> None:
        timeout = aiohttp.ClientTimeout(total=max(0.5, self.poll_ms / 1000 * 4))
        while True:
            started = time.monotonic()
            try:
                async with self.session.get(m.url + "/raftkv/v1/status", timeout=timeout) as r:
                    st = await r.json(content_type=None)
                if r.status != 200 or not isinstance(st, dict):
                    raise ValueError(f"status {r.status}")
                self._on_status(m, st)
            except (TimeoutError, aiohttp.ClientError, ValueError, OSError):
                m.reachable = False
            delay = self.poll_ms / 1000 - (time.monotonic() - started)
            await asyncio.sleep(max(0.02, delay))

    def _on_status(self, m: Member, st: dict[str, Any]) -> None:
        m.reachable = True
        m.id = int(st.get("member_id", st.get("id", 0)))
        if not m.name:
            m.name = str(st.get("name") or f"member {m.id}")
        last = int(st.get("last_index", 0))
        if not m.seen_log:  # what was there before we looked: unknown terms
            m.log = TermRuns(1, [[0, last]])
            m.seen_log = True
        m.log.observe_last(last, int(st.get("term", 0)))
        self._note_role(m, st.get("role", ""), int(st.get("term", 0)))
        m.status = st

    def _note_role(self, m: Member, role: str, term: int) -> None:
        last = self._last_leader
        if role == "leader" and m.id and last != (m.id, term) and (last is None or term >= last[1]):
            self._last_leader = (m.id, term)
            self.leaders.append({"t_ms": now_ms(), "node": m.id, "term": term})

    async def _follow(self, m: Member) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=1.0, sock_read=20.0)
        while True:
            try:
                async with self.session.get(m.url + "/raftkv/v1/events", timeout=timeout) as r:
                    m.sse_connected = True
                    async for raw in r.content:
                        line = raw.decode("utf-8", "replace").strip()
                        if line.startswith("data:"):
                            with contextlib.suppress(ValueError):
                                self._on_event(m, json.loads(line[5:]))
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass
            m.sse_connected = False
            await asyncio.sleep(0.3)

    def _on_event(self, m: Member, e: dict[str, Any]) -> None:
        ev = e.get("ev")
        if e.get("node"):
            m.id = int(e["node"])
        self.ev_ms = max(self.ev_ms, int(e.get("t_ms", 0)))
        st = m.status
        if ev == "role":
            if st:
                st.update(role=e["role"], lead=e["lead"], term=e["term"])
            self._note_role(m, e["role"], int(e["term"]))
        elif ev == "send":
            key = (m.id, int(e["to"]))
            self.msgs[key] = self.msgs.get(key, 0) + int(e.get("count", 1))
            kinds = e.get("kinds") or {}
            if kinds:  # the dot takes the colour of the kind sent most in this window
                self.msg_kinds[key] = max(sorted(kinds), key=lambda k: kinds[k])
        elif not st:
            return
        elif ev == "term":
            st["term"] = e["term"]
        elif ev == "vote":
            st["vote"] = e["vote"]
        elif ev == "commit":
            st["commit"] = max(int(st.get("commit", 0)), int(e["index"]))
        elif ev == "apply":
            st["applied"] = max(int(st.get("applied", 0)), int(e["hi"]))
        elif ev == "append":
            hi = int(e["hi"])
            if m.seen_log:
                m.log.observe_last(hi, int(st.get("term", 0)))
            st["last_index"] = hi
        elif ev == "snapshot":
            st["snapshot_index"] = int(e.get("index", st.get("snapshot_index", 0)))

    # -- frames ---------------------------------------------------------------------------------

    def frame(self) -> dict[str, Any]:
        up = [m for m in self.members if m.status]
        lo, hi = window([int(m.status.get("last_index", 0)) for m in up])
        views = []
        for m in self.members:
            v: dict[str, Any] = {"id": m.id or -(m.index + 1), "name": m.name or m.url}
            v["index"] = m.index
            v["url"] = m.url
            v["up"] = m.reachable
            v["known"] = bool(m.status)
            for k in NODE_FIELDS:
                v[k] = m.status.get(k, {} if k == "progress" else 0)
            v["role"] = m.status.get("role", "unknown")
            v["terms"] = m.log.terms(lo, hi) if m.status else [None] * (hi - lo + 1)
            views.append(v)
        fill_committed([v for v in views if v["known"]])
        for v in views:  # 64-bit member ids do not fit a JavaScript number: strings
            v["id"], v["vote"], v["lead"] = _sid(v["id"]), _sid(v["vote"]), _sid(v["lead"])
        msgs = [
            {"from": _sid(f), "to": _sid(t), "n": n, "kind": self.msg_kinds.get((f, t), "")}
            for (f, t), n in sorted(self.msgs.items())
        ]
        self.msgs = {}
        self.msg_kinds = {}
        self.seq += 1
        f = {
            "mode": "live",
            "seq": self.seq,
            "t_ms": now_ms(),
            "ev_ms": self.ev_ms,
            "window_lo": lo,
            "window_hi": hi,
            "nodes": views,
            "msgs": msgs,
            "partition": [[_sid(i) for i in g] for g in self.partition] if self.partition else None,
            "leaders": [{**x, "node": _sid(x["node"])} for x in list(self.leaders)[-20:]],
        }
        self.last_frame = f
        return f

    async def _frames(self) -> None:
        while True:
            await asyncio.sleep(self.frame_ms / 1000)
            f = self.frame()
            for q in list(self.subscribers):
                if q.full():
                    with contextlib.suppress(asyncio.QueueEmpty):
                        q.get_nowait()  # a slow page skips frames; it never slows us
                q.put_nowait(f)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(4)
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self.subscribers.discard(q)

    def leader(self) -> Member | None:
        best: Member | None = None
        for m in self.members:
            if (
                m.reachable
                and m.status.get("role") == "leader"
                and (best is None or m.status.get("term", 0) > best.status.get("term", 0))
            ):
                best = m
        return best
