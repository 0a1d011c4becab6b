"""What ``raftkv.node`` drives: any object with ``apply``, ``snapshot`` and ``restore``.

The KV store (``raftkv.kv``) is one; a user's replicated dict or counter is another (see
``examples/``). ``apply`` receives committed entries in index order, exactly once per node
incarnation (after a restart, from the latest snapshot on).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Protocol

from raftkv.raft.types import Entry


class StateMachine(Protocol):
    def apply(self, entries: list[Entry]) -> Sequence[object]:
        """Apply committed entries in order; return one result per entry (None for no-ops).

        ``entry.data`` is exactly what was proposed; empty data is a leader's no-op.
        """
        ...

    def snapshot(self) -> bytes:
        """The whole state, as bytes ``restore`` understands."""
        ...

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a snapshot (``b""`` means the empty state)."""
        ...


_HEADER = struct.Struct(">QQ")
HEADER_SIZE = _HEADER.size


def wrap(origin: int, rid: int, payload: bytes) -> bytes:
    """Prefix a proposal with who proposed it, so the proposer can match the applied entry to
    the request waiting for it (whoever was leader when it was appended)."""
    return _HEADER.pack(origin, rid) + payload


def origin_of(data: bytes) -> int:
    """The member that proposed a wrapped entry (0 for a no-op)."""
    return int(_HEADER.unpack_from(data)[0]) if len(data) >= HEADER_SIZE else 0


def unwrap(data: bytes) -> tuple[int, int, bytes]:
    """Inverse of ``wrap``; a no-op (empty data) gives (0, 0, b"")."""
    if len(data) < HEADER_SIZE:
        return 0, 0, b""
    origin, rid = _HEADER.unpack_from(data)
    return origin, rid, data[HEADER_SIZE:]
