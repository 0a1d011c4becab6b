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
* when the delay ends, counted from when its news was first held (a newer notice that
  replaces it keeps that time), a notice still held is sent;
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
        self._held: dict[int, tuple[AppendEntries, float]] = {}  # peer -> (notice, held since)
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
        now: float | None = None
        for m in messages:
            since: float | None = None
            entry = held.pop(m.to, None)
            if entry is not None:
                old, old_since = entry
                if isinstance(m, AppendEntries) and _covers(m, old):
                    self.replaced += 1
                    if not m.entries:
                        since = old_since  # its news has waited since then: no fresh delay
                else:
                    out.append(old)
            if isinstance(m, AppendEntries) and not m.entries and m.to not in waiting:
                if since is None:
                    if now is None:
                        now = asyncio.get_running_loop().time()
                    since = now
                held[m.to] = (m, since)
            else:
                out.append(m)
        if out:
            self._send(tuple(out))
        if held and self._timer is None:
            self._arm()

    def held(self) -> dict[int, float]:
        """Follower -> since when (event loop time) its news has been held."""
        return {peer: since for peer, (_, since) in self._held.items()}

    def _arm(self) -> None:
        first = min(since for _, since in self._held.values())
        self._timer = asyncio.get_running_loop().call_at(first + self._delay, self._expire)

    def _expire(self) -> None:
        """Send the notices held for ``delay`` (each is held from when its news was first held,
        not from the last time a newer notice replaced it)."""
        self._timer = None
        due_by = asyncio.get_running_loop().time() - self._delay + 1e-4  # timers fire early
        due = [peer for peer, (_, since) in self._held.items() if since <= due_by]
        if due:
            self._send(tuple(self._held.pop(peer)[0] for peer in due))
        if self._held:
            self._arm()

    def flush(self) -> None:
        """Send every held notice now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._held:
            notices = tuple(m for m, _ in self._held.values())
            self._held = {}
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
