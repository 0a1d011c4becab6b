"""Client sessions: exactly-once semantics for retried commands (thesis §6.3).

A command may carry ``(client_id, seq)``. The state machine remembers, per client, the last seq
it applied and that command's result. A command whose seq equals the last one is a retry: it gets
the cached result and changes nothing (no new revision). An older seq gets ``StaleSequence``.
Sessions are created implicitly by a client's first command and leave through the log, by an
``ExpireSessionsRequest`` the leader stamps with its clock, so every replica drops the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from raftkv.kv.errors import ERRORS, KVError, StaleSequence
from raftkv.kv.types import Response

Result = Response | KVError | None
"""What applying one entry yields: a response, a typed error, or None for a no-op."""


@dataclass(slots=True)
class Session:
    last_seq: int
    result: Result
    last_active_ms: int


class SessionImage(msgspec.Struct, frozen=True, array_like=True):
    """A session in a snapshot. A cached error is stored by its class name."""

    client_id: int
    last_seq: int
    last_active_ms: int
    response: Response | None = None
    error: str = ""


class Sessions:
    def __init__(self) -> None:
        self.by_client: dict[int, Session] = {}

    def lookup(self, client_id: int, seq: int, now_ms: int) -> tuple[bool, Result]:
        """(True, cached result) if ``seq`` was already applied for ``client_id``; else (False, None)."""
        s = self.by_client.get(client_id)
        if s is None or seq > s.last_seq:
            return False, None
        s.last_active_ms = max(s.last_active_ms, now_ms)
        if seq == s.last_seq:
            return True, s.result
        return True, StaleSequence()

    def record(self, client_id: int, seq: int, result: Result, now_ms: int) -> None:
        s = self.by_client.get(client_id)
        active = now_ms if s is None else max(s.last_active_ms, now_ms)
        self.by_client[client_id] = Session(seq, result, active)

    def expire(self, now_ms: int, timeout_ms: int) -> int:
        """Drop sessions idle for ``timeout_ms`` or longer; returns how many."""
        idle = [c for c, s in self.by_client.items() if s.last_active_ms + timeout_ms <= now_ms]
        for c in idle:
            del self.by_client[c]
        return len(idle)

    def image(self) -> list[SessionImage]:
        out: list[SessionImage] = []
        for cid in sorted(self.by_client):
            s = self.by_client[cid]
            if isinstance(s.result, KVError):
                out.append(
                    SessionImage(cid, s.last_seq, s.last_active_ms, None, type(s.result).__name__)
                )
            else:
                out.append(SessionImage(cid, s.last_seq, s.last_active_ms, s.result))
        return out

    def load(self, images: list[SessionImage]) -> None:
        self.by_client = {
            im.client_id: Session(
                im.last_seq,
                ERRORS[im.error]() if im.error else im.response,
                im.last_active_ms,
            )
            for im in images
        }
