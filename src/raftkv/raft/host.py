"""The Ready contract, in one place: what a host does with a Ready, and in which order.

Both hosts — the simulator and the asyncio node — turn each Ready into the steps returned by
``plan`` and carry them out in order, then call ``advance``::

    for step in plan(ready):
        match step:
            case Send(messages): ...            # hand to the transport
            case Persist(snapshot, hard_state, entries): ...  # durable before returning
            case Apply(snapshot, entries): ...   # state machine, in index order
    node.advance(ready)

The order is the safety contract (thesis §3.8): a node's own appends may leave at once, in
parallel with its disk write (thesis §10.2.1), but votes and append responses acknowledge state
that must already be durable, so they leave only after ``Persist``. A snapshot is installed before
any later committed entry is applied.

Committed entries that were already durable before this Ready come in an ``Apply`` *before*
the ``Persist``: applying them does not wait for this Ready's fsync (a host may even run that
``Apply`` while the fsync is in flight). Committed entries carried in this Ready's own
``entries`` are applied only after the ``Persist``.
"""

from __future__ import annotations

from dataclasses import dataclass

from raftkv.raft.messages import Message
from raftkv.raft.rawnode import Ready
from raftkv.raft.types import Entry, HardState, Snapshot


@dataclass(frozen=True, slots=True)
class Send:
    """Hand these messages to the transport."""

    messages: tuple[Message, ...]


@dataclass(frozen=True, slots=True)
class Persist:
    """Make these durable (snapshot first, then entries, then hard state) before going on."""

    snapshot: Snapshot | None
    hard_state: HardState | None
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class Apply:
    """Restore ``snapshot`` into the state machine if set, then apply ``entries`` in order."""

    snapshot: Snapshot | None
    entries: tuple[Entry, ...]


Step = Send | Persist | Apply


def plan(ready: Ready) -> tuple[Step, ...]:
    """The steps that carry out ``ready``, in the only safe order."""
    steps: list[Step] = []
    if ready.messages:
        steps.append(Send(tuple(ready.messages)))
    committed = ready.committed_entries
    if ready.snapshot is None and committed:
        first_new = ready.entries[0].index if ready.entries else committed[-1].index + 1
        n = _count_below(committed, first_new)
        if n:
            steps.append(Apply(None, tuple(committed[:n])))
            committed = committed[n:]
    if ready.snapshot is not None or ready.hard_state is not None or ready.entries:
        steps.append(Persist(ready.snapshot, ready.hard_state, tuple(ready.entries)))
    if ready.messages_after_persist:
        steps.append(Send(tuple(ready.messages_after_persist)))
    if ready.snapshot is not None or committed:
        steps.append(Apply(ready.snapshot, tuple(committed)))
    return tuple(steps)


def _count_below(entries: list[Entry], index: int) -> int:
    """How many of ``entries`` (in index order) have an index below ``index``."""
    if not entries or entries[0].index >= index:
        return 0
    return min(len(entries), index - entries[0].index)
