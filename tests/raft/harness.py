"""A tiny synchronous network of RawNodes for core tests (no virtual time, no faults beyond
dropping): messages are delivered breadth-first until the network is quiet.

Unlike the simulator, it lets a test script exactly which messages flow, the way etcd-io/raft's
``network`` helper does.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from raftkv.raft import Apply, Config, ConfState, Entry, MemoryStorage, Persist, RawNode, Send, plan
from raftkv.raft.messages import Message


class Net:
    def __init__(self, n: int, seed: int = 0, **cfg: object) -> None:
        self.ids = list(range(1, n + 1))
        self.storage: dict[int, MemoryStorage] = {}
        self.nodes: dict[int, RawNode] = {}
        self.applied: dict[int, list[Entry]] = {i: [] for i in self.ids}
        self.cfg = cfg
        self.seed = seed
        self.dropped_links: set[tuple[int, int]] = set()
        self.filter: Callable[[Message], bool] | None = None
        self.delivered: list[Message] = []
        self.reads: dict[int, list[tuple[int, bytes]]] = {i: [] for i in self.ids}
        for i in self.ids:
            self.storage[i] = MemoryStorage(ConfState(voters=tuple(self.ids)))
            self.start(i)

    def start(self, i: int) -> None:
        snap = self.storage[i].snapshot()
        self.nodes[i] = RawNode(
            Config(id=i, rng=random.Random(self.seed * 1000 + i), applied=snap.meta.index, **self.cfg),  # type: ignore[arg-type]
            self.storage[i],
        )

    def cut(self, a: int, b: int) -> None:
        self.dropped_links |= {(a, b), (b, a)}

    def isolate(self, a: int) -> None:
        for b in self.ids:
            if b != a:
                self.cut(a, b)

    def heal(self) -> None:
        self.dropped_links.clear()

    def _drain(self, i: int) -> list[Message]:
        out: list[Message] = []
        node = self.nodes[i]
        while node.has_ready():
            rd = node.ready()
            for step in plan(rd):
                match step:
                    case Send(msgs):
                        out.extend(msgs)
                    case Persist(snap, hs, ents):
                        if snap is not None:
                            self.storage[i].apply_snapshot(snap)
                        self.storage[i].save(hs, ents)
                    case Apply(snap, ents):
                        if snap is not None:
                            self.applied[i] = []
                        self.applied[i].extend(ents)
            self.reads[i].extend((r.index, r.ctx) for r in rd.read_states)
            node.advance(rd)
        return out

    def deliver_all(self, msgs: Iterable[Message] = (), max_rounds: int = 10_000) -> int:
        """Deliver until quiet; returns how many messages were delivered."""
        queue = list(msgs)
        for i in self.ids:
            queue.extend(self._drain(i))
        count = 0
        rounds = 0
        while queue and rounds < max_rounds:
            rounds += 1
            m = queue.pop(0)
            if (m.frm, m.to) in self.dropped_links or m.to not in self.nodes:
                continue
            if self.filter is not None and not self.filter(m):
                continue
            self.delivered.append(m)
            self.nodes[m.to].step(m)
            count += 1
            queue.extend(self._drain(m.to))
        return count

    def campaign(self, i: int) -> None:
        self.nodes[i].campaign()
        self.deliver_all()

    def propose(self, i: int, data: bytes) -> int:
        idx = self.nodes[i].propose(data)
        self.deliver_all()
        return idx

    def tick_all(self, n: int = 1) -> None:
        for _ in range(n):
            for i in self.ids:
                self.nodes[i].tick()
            self.deliver_all()

    def leader(self) -> int | None:
        leaders = [i for i in self.ids if self.nodes[i].status().role.value == "leader"]
        if not leaders:
            return None
        return max(leaders, key=lambda i: self.nodes[i].status().term)

    def log_data(self, i: int) -> list[tuple[int, int, bytes]]:
        st = self.storage[i]
        return [(e.index, e.term, e.data) for e in st.entries(st.first_index(), st.last_index() + 1)]
