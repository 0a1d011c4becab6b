"""``Proposal``: what ``Node.propose`` returns — the outcome of one write, settled once.

It is awaited like an asyncio future, but its done-callbacks run at once, inside the call that
settles it, not on a later turn of the event loop: when the node applies a batch of entries,
a server's callbacks answer every write of the batch in that same call, and the answers can
leave in one write per connection before the node goes on to its next step. An asyncio future
would schedule one callback per write and answer a turn of the loop later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator
from typing import Any

log = logging.getLogger("raftkv.node")

_PENDING, _RESULT, _ERROR = 0, 1, 2


class Proposal:
    """The result of one proposal, or its error. Await it, or add a done-callback."""

    __slots__ = ("_callbacks", "_state", "_value", "_waiting")

    def __init__(self) -> None:
        self._state = _PENDING
        self._value: Any = None
        self._callbacks: list[Callable[[Proposal], None]] = []
        self._waiting: list[asyncio.Future[None]] = []  # one per coroutine awaiting it

    def done(self) -> bool:
        return self._state != _PENDING

    def result(self) -> object:
        """The result; raises the error the proposal failed with.

        Raises:
            asyncio.InvalidStateError: the proposal is not settled yet.
        """
        if self._state == _RESULT:
            return self._value
        if self._state == _ERROR:
            raise self._value
        raise asyncio.InvalidStateError("the proposal is not settled yet")

    def exception(self) -> BaseException | None:
        """The error the proposal failed with, or None (if it succeeded or is pending)."""
        return self._value if self._state == _ERROR else None

    def set_result(self, value: object) -> None:
        self._settle(_RESULT, value)

    def set_exception(self, error: BaseException) -> None:
        self._settle(_ERROR, error)

    def add_done_callback(self, fn: Callable[[Proposal], None]) -> None:
        """Call ``fn(self)`` once settled: at once if it already is, else inside the call that
        settles it."""
        if self._state == _PENDING:
            self._callbacks.append(fn)
        else:
            _call(fn, self)

    def _settle(self, state: int, value: object) -> None:
        if self._state != _PENDING:
            raise asyncio.InvalidStateError("the proposal is already settled")
        self._state, self._value = state, value
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            _call(fn, self)
        for w in self._waiting:
            if not w.done():  # (an awaiter that was cancelled cancelled its own)
                w.set_result(None)
        self._waiting = []

    def __await__(self) -> Generator[Any, None, object]:
        if self._state == _PENDING:
            wakeup = asyncio.get_running_loop().create_future()
            self._waiting.append(wakeup)
            yield from wakeup.__await__()
        return self.result()


def _call(fn: Callable[[Proposal], None], p: Proposal) -> None:
    try:
        fn(p)
    except Exception:  # one caller's bug must not stop the others' answers, nor the node
        log.exception("a proposal's done-callback failed")
