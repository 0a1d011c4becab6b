"""Commit notices: a leader's appends that carry no entries, held briefly so the next append
carries their news instead.

When the commit index moves, the core sends every follower an append (the Raft paper's
AppendEntries; etcd's ``bcastAppend``). Often it has no entries: it only tells the follower the
new commit index. Each one costs the leader a send and the follower's answer, and the
follower a receive, a Ready and an answer. Under a steady load the next append follows within
a millisecond and carries the same commit index anyway; with one client at a time it follows
as soon as the client's next request arrives.

So the host holds such an append (a *commit notice*) for up to ``delay`` seconds:

* a later append to the same follower, in the same term, at an index and a commit index at
  least the held one's, replaces it (everything the held one says, it says too);
* any other message to that follower sends the held notice first, so the order of messages
  to a follower never changes (a read-index answer, for one, is never seen before the commit
  index it asks the follower to wait for);
* when the delay ends, the notices still held are sent;
* a notice to a follower that is waiting for the commit (it forwarded one of the entries
  this commit index covers, and answers its client only once it applies it) is never held.

Holding or dropping an append is, to Raft, a slower or a lossy network, which Raft tolerates
by design (§5.3); the held notice is at most ``delay`` late. With ``delay == 0`` nothing is held.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence

from raftkv.raft.messages import AppendEntries, Message


class CommitNotices:
    """Args:
    delay: how long a notice may be held, in seconds (0: never held).
    send: sends messages (the transport's ``send``).

    Attributes:
        replaced: notices that a later append made unnecessary (never sent).
    """

    def __init__(self, delay: float, send: Callable[[tuple[Message, ...]], None]) -> None:
        self._delay = delay
        self._send = send
        self._held: dict[int, AppendEntries] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.replaced = 0

    def send(self, messages: Sequence[Message], waiting: Collection[int] = ()) -> None:
        """Send ``messages`` in order, holding or replacing commit notices as above; a notice
        to a member in ``waiting`` goes out at once."""
        if self._delay <= 0:
            self._send(tuple(messages))
            return
        out: list[Message] = []
        held = self._held
        for m in messages:
            old = held.get(m.to)
            if old is not None:
                if isinstance(m, AppendEntries) and _covers(m, old):
                    self.replaced += 1
                else:
                    out.append(old)
                del held[m.to]
            if isinstance(m, AppendEntries) and not m.entries and m.to not in waiting:
                held[m.to] = m
            else:
                out.append(m)
        if out:
            self._send(tuple(out))
        if held and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay, self.flush)

    def flush(self) -> None:
        """Send every held notice now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._held:
            notices, self._held = tuple(self._held.values()), {}
            self._send(notices)

    def close(self) -> None:
        """Drop the held notices (the node is stopping)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._held.clear()


def _covers(m: AppendEntries, old: AppendEntries) -> bool:
    """Whether ``m`` tells the follower all ``old`` does: the same leader's term, a log position
    at least as far (its answer acknowledges as much), a commit index at least as high."""
    return m.term == old.term and m.index >= old.index and m.commit >= old.commit
