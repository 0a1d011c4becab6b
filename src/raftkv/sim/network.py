"""The simulated network: who can reach whom, and when (and whether) a message arrives.

The network decides; the cluster's event queue carries messages. A message sent at virtual time
``t`` from ``a`` to ``b`` is

* dropped at once if ``a`` and ``b`` are on different sides of a partition, or with probability
  ``loss``;
* otherwise due at ``t + d`` with ``d`` uniform in ``delay_ms`` (integer ms). Without ``reorder``
  messages between one ordered pair are FIFO: a message is never due before the previous one on
  that pair. With ``reorder`` each message draws its delay independently;
* duplicated with probability ``duplicate``: a second copy, due no earlier than the first.

Partitions are groups of node ids; two nodes can talk iff some group holds both, so overlapping
groups make non-transitive ("bridge") partitions and a node in no group is cut off. All draws
come from the ``random.Random`` the cluster passes in, so a seed fixes every decision.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from raftkv.raft.messages import Message


@dataclass(slots=True)
class Flight:
    """A message in the network. ``seq`` is unique and orders events due at the same ms."""

    seq: int
    msg: Message
    sent_ms: int
    due_ms: int
    sender_incarnation: int
    duplicate: bool = False


class Network:
    """Link model of the simulator.

    Args:
        rng: the cluster's random source.
        delay_ms: default one-way delay range, inclusive, in ms (min >= 1).
    """

    def __init__(self, rng: random.Random, delay_ms: tuple[int, int] = (1, 5)) -> None:
        self._rng = rng
        self.default_delay = delay_ms
        self.loss = 0.0
        self.duplicate = 0.0
        self.delay_ms = delay_ms
        self.reorder = False
        self.groups: tuple[tuple[int, ...], ...] | None = None
        self._links: set[tuple[int, int]] | None = None
        self._last_due: dict[tuple[int, int], int] = {}
        self.stats: dict[str, int] = {"loss": 0, "dup": 0, "delay": 0, "reorder": 0}
        """Message faults injected: lost, duplicated, delayed beyond the default maximum,
        overtaken by a later message of the same pair."""

    def configure(
        self,
        loss: float = 0.0,
        duplicate: float = 0.0,
        delay_ms: tuple[int, int] | None = None,
        reorder: bool = False,
    ) -> None:
        """Set the link behaviour for all pairs (see module docstring)."""
        lo, hi = delay_ms if delay_ms is not None else self.default_delay
        if not (0.0 <= loss <= 1.0 and 0.0 <= duplicate <= 1.0):
            raise ValueError("loss and duplicate are probabilities in [0, 1]")
        if lo < 1 or hi < lo:
            raise ValueError(f"delay_ms must be (min, max) with 1 <= min <= max, got {(lo, hi)}")
        self.loss, self.duplicate, self.delay_ms, self.reorder = loss, duplicate, (lo, hi), reorder

    @property
    def clean(self) -> bool:
        """No partition, no loss, no duplication, no reordering, the default delay."""
        return (
            self.groups is None
            and self.loss == 0.0
            and self.duplicate == 0.0
            and not self.reorder
            and self.delay_ms == self.default_delay
        )

    def partition(self, groups: Iterable[Iterable[int]]) -> None:
        """Only nodes sharing a group can talk from now on."""
        gs = tuple(tuple(sorted(set(g))) for g in groups)
        self.groups = gs
        self._links = {(a, b) for g in gs for a in g for b in g}

    def heal(self) -> None:
        """Everyone can talk to everyone again."""
        self.groups = None
        self._links = None

    def connected(self, a: int, b: int) -> bool:
        """Whether ``a`` and ``b`` can exchange messages now."""
        return self._links is None or a == b or (a, b) in self._links

    def delivery_times(self, frm: int, to: int, now_ms: int) -> list[int]:
        """When the copies of a message sent now arrive: ``[]`` (lost), one time, or two
        (duplicated). Does not check partitions."""
        rng = self._rng
        stats = self.stats
        if self.loss and rng.random() < self.loss:
            stats["loss"] += 1
            return []
        lo, hi = self.delay_ms
        due = now_ms + rng.randint(lo, hi)
        if due - now_ms > self.default_delay[1]:
            stats["delay"] += 1
        key = (frm, to)
        last = self._last_due.get(key, 0)
        if not self.reorder:
            due = max(due, last)
        elif due < last:
            stats["reorder"] += 1
        self._last_due[key] = max(due, last)
        times = [due]
        if self.duplicate and rng.random() < self.duplicate:
            stats["dup"] += 1
            second = max(due, now_ms + rng.randint(lo, hi))
            self._last_due[key] = max(second, self._last_due[key])
            times.append(second)
        return times


__all__ = ["Flight", "Network"]
