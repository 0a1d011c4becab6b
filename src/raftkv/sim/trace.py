"""The simulator's event trace (schema v1, documented in ``docs/trace.md``).

Every event is a flat JSON object with ``t_ms`` (virtual time), ``node`` (0 for cluster-wide
events) and ``ev`` (its kind), plus fields per kind. Events go to three places: an optional text
sink (one JSON line each, keys sorted, no spaces — byte-identical across runs of one seed), a
ring buffer of the most recent events (printed when a run fails), and subscribers (fault
injectors, benchmarks, a live dashboard).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from raftkv.raft.messages import (
    AppendEntries,
    AppendResponse,
    Heartbeat,
    InstallSnapshot,
    Message,
    Propose,
    RequestVote,
    VoteResponse,
    kind,
)

TRACE_VERSION = 1

Event = dict[str, Any]
Listener = Callable[[Event], None]


def dumps(obj: object) -> str:
    """The one serialization of trace records: sorted keys, no spaces."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def rle_terms(terms: Iterable[int]) -> list[list[int]]:
    """Run-length encode a sequence of terms: ``[1, 1, 2]`` → ``[[1, 2], [2, 1]]``."""
    out: list[list[int]] = []
    for t in terms:
        if out and out[-1][0] == t:
            out[-1][1] += 1
        else:
            out.append([t, 1])
    return out


def text(data: bytes) -> str:
    """A command's bytes as trace text (UTF-8, undecodable bytes backslash-escaped)."""
    return data.decode("utf-8", "backslashreplace")


def message_fields(m: Message) -> dict[str, Any]:
    """The fields of a message in ``send``/``deliver``/``drop`` events (docs/trace.md)."""
    f: dict[str, Any] = {"from": m.frm, "to": m.to, "kind": kind(m), "term": m.term}
    if isinstance(m, AppendEntries):
        f["index"] = m.index
        f["log_term"] = m.log_term
        f["n"] = len(m.entries)
        f["commit"] = m.commit
    elif isinstance(m, AppendResponse):
        f["index"] = m.index
        f["reject"] = m.reject
        if m.reject:
            f["reject_hint"] = m.reject_hint
            f["log_term"] = m.log_term
    elif isinstance(m, RequestVote):
        f["pre"] = m.pre
        f["last_index"] = m.last_index
        f["last_term"] = m.last_term
        f["transfer"] = m.transfer
    elif isinstance(m, VoteResponse):
        f["pre"] = m.pre
        f["reject"] = m.reject
    elif isinstance(m, Heartbeat):
        f["commit"] = m.commit
    elif isinstance(m, Propose):
        f["n"] = len(m.entries)
    elif isinstance(m, InstallSnapshot):
        f["index"] = m.snapshot.meta.index
        f["snap_term"] = m.snapshot.meta.term
    return f


class Trace:
    """Collects events of one run.

    Args:
        sink: a text stream receiving one JSON line per record, or None.
        recent: how many recent events to keep for failure reports.
    """

    def __init__(self, sink: TextIO | None, recent: int = 30) -> None:
        self._sink = sink
        self.recent: deque[Event] = deque(maxlen=max(recent, 1))
        self._listeners: list[Listener] = []
        self.count = 0

    @property
    def writing(self) -> bool:
        """Whether records are written to a sink (expensive records can be skipped if not)."""
        return self._sink is not None

    def header(self, fields: dict[str, Any]) -> None:
        """Write the header record ``{"v": 1, ...}`` (sink only)."""
        if self._sink is not None:
            self._sink.write(dumps({"v": TRACE_VERSION, **fields}) + "\n")

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every later event (not for ``state`` records)."""
        self._listeners.append(listener)

    def emit(self, t_ms: int, node: int, ev: str, **fields: Any) -> None:
        """Record one event."""
        e: Event = {"t_ms": t_ms, "node": node, "ev": ev, **fields}
        self.count += 1
        self.recent.append(e)
        if self._sink is not None:
            self._sink.write(dumps(e) + "\n")
        for fn in self._listeners:
            fn(e)

    def record(self, e: Event) -> None:
        """Write a bulky record (``state``) to the sink only."""
        if self._sink is not None:
            self._sink.write(dumps(e) + "\n")

    def format_recent(self) -> list[str]:
        """The recent events, one compact JSON line each, oldest first."""
        return [dumps(e) for e in self.recent]


__all__ = [
    "TRACE_VERSION",
    "Event",
    "Listener",
    "Trace",
    "dumps",
    "message_fields",
    "rle_terms",
    "text",
]
