"""Plain data of the Raft core: entries, persisted state, snapshots, roles.

Every type is a frozen msgspec Struct so it is cheap to build, compare and encode; ``array_like``
keeps the encoding compact on the wire and in the WAL.
"""

from __future__ import annotations

import enum

import msgspec


class EntryType(enum.IntEnum):
    """What an entry carries."""

    NORMAL = 0
    CONF_CHANGE = 1


class Entry(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One log entry. ``data`` is opaque to the core; an empty NORMAL entry is a leader's no-op."""

    term: int
    index: int
    data: bytes = b""
    type: EntryType = EntryType.NORMAL


ENTRY_OVERHEAD = 16
"""Bytes charged per entry on top of its data when limiting message and Ready sizes."""


def entry_size(e: Entry) -> int:
    return len(e.data) + ENTRY_OVERHEAD


class HardState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What must be on stable storage before a node acknowledges anything (thesis §3.8)."""

    term: int = 0
    vote: int = 0
    commit: int = 0


EMPTY_HARD_STATE = HardState()


class ConfState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The voting members of the cluster. Invariant: ``voters`` is sorted and unique."""

    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()


class SnapshotMeta(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Where a snapshot sits in the log and which configuration it carries."""

    index: int = 0
    term: int = 0
    conf_state: ConfState = ConfState()


class Snapshot(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A state-machine image up to and including ``meta.index``. Index 0 means 'no snapshot'."""

    meta: SnapshotMeta = SnapshotMeta()
    data: bytes = b""

    @property
    def empty(self) -> bool:
        return self.meta.index == 0


EMPTY_SNAPSHOT = Snapshot()


class Role(enum.Enum):
    """The four roles of a node. PRE_CANDIDATE is the PreVote phase (thesis §9.6)."""

    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class SoftState(msgspec.Struct, frozen=True, gc=False):
    """Volatile state the host may want to show; never persisted."""

    lead: int
    role: Role


class ReadState(msgspec.Struct, frozen=True, gc=False):
    """A linearizable read may be served once the state machine has applied ``index`` (§6.4)."""

    index: int
    ctx: bytes
