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
    if ready.snapshot is not None or ready.hard_state is not None or ready.entries:
        steps.append(Persist(ready.snapshot, ready.hard_state, tuple(ready.entries)))
    if ready.messages_after_persist:
        steps.append(Send(tuple(ready.messages_after_persist)))
    if ready.snapshot is not None or ready.committed_entries:
        steps.append(Apply(ready.snapshot, tuple(ready.committed_entries)))
    return tuple(steps)
