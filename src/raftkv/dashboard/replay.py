"""Replay of a simulator trace (schema v1, docs/trace.md) as one frame per tick.

The trace is read once; node state is rebuilt from the periodic ``state`` records and the events
between them (``role``, ``term``, ``vote``, ``append``, ``truncate``, ``commit``, ``apply``,
``snapshot``, ``crash``, ``restart``, ``partition``, ``heal``). Between two ``state`` records
the election timer is extrapolated: it advances one per tick and restarts at a role change or
when a follower receives an append or heartbeat (resets are not traced, docs/trace.md).
Messages are the ``send`` events aggregated per (from, to) over each tick.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from raftkv.dashboard.model import TermRuns, fill_committed, window


class TraceError(Exception):
    """The file is not a trace of schema v1."""


def _blank(nid: int) -> dict[str, Any]:
    return {
        "id": nid, "name": f"n{nid}", "up": True, "role": "follower", "term": 0, "vote": 0,
        "lead": 0, "commit": 0, "applied": 0, "last_index": 0, "snapshot_index": 0,
        "election_elapsed": 0, "randomized_election_timeout": 0, "progress": {},
        "paused": False,
    }  # fmt: skip


class Replay:
    """All frames of one trace. ``frames[k]`` is the state at the end of tick ``k``."""

    def __init__(self, lines: Iterable[str]) -> None:
        it = iter(lines)
        try:
            self.header: dict[str, Any] = json.loads(next(it))
        except (StopIteration, ValueError) as e:
            raise TraceError("not a trace: the first line is not a JSON header") from e
        if not isinstance(self.header, dict) or self.header.get("v") != 1:
            raise TraceError('not a trace of schema v1 (header without "v": 1)')
        self.tick_ms = int(self.header.get("tick_ms", 10)) or 10
        n = int(self.header.get("nodes", 0))
        self.ids = list(range(1, n + 1))
        self.nodes = {i: _blank(i) for i in self.ids}
        self.logs = {i: TermRuns() for i in self.ids}
        self.elapsed_base: dict[int, tuple[int, int]] = {i: (0, 0) for i in self.ids}
        self.partition: list[list[int]] | None = None
        self.frames: list[dict[str, Any]] = []
        self.leaders: list[dict[str, Any]] = []  # {tick, node, term}
        self.commits: list[int] = []  # max commit per tick
        self.first_leader_tick: int | None = None
        msgs: dict[tuple[int, int], list[Any]] = {}
        tick = 0
        for line in it:
            if not line.strip():
                continue
            rec = json.loads(line)
            et = int(rec["t_ms"]) // self.tick_ms
            while tick < et:
                self._frame(tick, msgs)
                msgs = {}
                tick += 1
            self._apply(rec, tick, msgs)
        self._frame(tick, msgs)

    # -- building -----------------------------------------------------------------------------

    def _reset_timer(self, nid: int, tick: int) -> None:
        self.elapsed_base[nid] = (tick, 0)

    def _apply(self, e: dict[str, Any], tick: int, msgs: dict[tuple[int, int], list[Any]]) -> None:
        ev = e["ev"]
        nid = int(e.get("node", 0))
        s = self.nodes.get(nid)
        if ev == "send":
            key = (int(e["from"]), int(e["to"]))
            m = msgs.setdefault(key, [0, e.get("kind", "")])
            m[0] += 1
            m[1] = e.get("kind", m[1])
            return
        if ev == "partition":
            self.partition = [list(g) for g in e.get("groups", [])]
            return
        if ev == "heal":
            self.partition = None
            return
        if s is None:
            return
        if ev == "state":
            if not e.get("up", True):
                s["up"] = False
                return
            for k in (*_blank(0).keys(),):
                if k in e and k not in ("id", "name"):
                    s[k] = e[k]
            s["up"] = True
            self.logs[nid] = TermRuns(int(e.get("log_first", 1)), e.get("log_terms", []))
            self.elapsed_base[nid] = (tick, int(e.get("election_elapsed", 0)))
        elif ev == "role":
            was_leader = s["role"] == "leader"
            s.update(role=e["role"], lead=e["lead"], term=e["term"])
            self._reset_timer(nid, tick)
            if e["role"] == "leader" and not was_leader:
                self.leaders.append({"tick": tick, "node": nid, "term": e["term"]})
                if self.first_leader_tick is None:
                    self.first_leader_tick = tick
            if e["role"] != "leader":
                s["progress"] = {}
        elif ev == "term":
            s["term"] = e["term"]
        elif ev == "vote":
            s["term"], s["vote"] = e["term"], e["vote"]
        elif ev == "append":
            self.logs[nid].put(int(e["lo"]), e.get("terms", []))
            s["last_index"] = self.logs[nid].last
        elif ev == "truncate":
            self.logs[nid].truncate(int(e["lo"]) - 1)
            s["last_index"] = self.logs[nid].last
        elif ev == "commit":
            s["commit"] = max(s["commit"], int(e["index"]))
        elif ev == "apply":
            s["applied"] = max(s["applied"], int(e["hi"]))
        elif ev == "snapshot":
            if e.get("source") in ("create", "leader") and "index" in e:
                s["snapshot_index"] = int(e["index"])
        elif ev == "crash":
            s["up"] = False
            s["role"] = "follower"
        elif ev == "restart":
            s["up"] = True
            s["role"], s["lead"] = "follower", 0
            for k in ("term", "vote", "commit", "snapshot_index", "last_index"):
                if k in e:
                    s[k] = e[k]
            self.logs[nid].truncate(int(e.get("last_index", self.logs[nid].last)))
            self._reset_timer(nid, tick)
        elif ev == "deliver" and e.get("kind") in ("app", "hb") and s["role"] != "leader":
            self._reset_timer(nid, tick)

    def _frame(self, tick: int, msgs: dict[tuple[int, int], list[Any]]) -> None:
        lo, hi = window([s["last_index"] for s in self.nodes.values()])
        views = []
        for nid, s in self.nodes.items():
            v = dict(s)
            base_tick, base = self.elapsed_base[nid]
            v["election_elapsed"] = base + (tick - base_tick)
            v["terms"] = self.logs[nid].terms(lo, hi) if s["up"] or True else []
            views.append(v)
        fill_committed(views)
        commit = max((s["commit"] for s in self.nodes.values()), default=0)
        self.commits.append(commit)
        self.frames.append(
            {
                "mode": "replay",
                "seq": tick,
                "tick": tick,
                "t_ms": tick * self.tick_ms,
                "window_lo": lo,
                "window_hi": hi,
                "nodes": views,
                "msgs": [
                    {"from": f, "to": t, "n": m[0], "kind": m[1]}
                    for (f, t), m in sorted(msgs.items())
                ],
                "partition": self.partition,
            }
        )

    # -- queries ------------------------------------------------------------------------------

    @property
    def ticks(self) -> int:
        return len(self.frames)

    def info(self) -> dict[str, Any]:
        return {
            "mode": "replay",
            "controls": False,
            "header": self.header,
            "ticks": self.ticks,
            "tick_ms": self.tick_ms,
            "ids": self.ids,
            "leaders": self.leaders,
            "first_leader_tick": self.first_leader_tick,
            "commits": self.commits,
        }

    def frame_range(self, lo: int, hi: int) -> list[dict[str, Any]]:
        lo = max(0, lo)
        return self.frames[lo : min(hi, self.ticks)]

    @classmethod
    def from_file(cls, path: str) -> Replay:
        with open(path, encoding="utf-8") as f:
            return cls(f)
