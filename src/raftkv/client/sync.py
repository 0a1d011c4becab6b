"""``Client``: the blocking twin of ``AsyncClient``.

It owns an event loop running in a daemon thread; each method submits the matching
``AsyncClient`` coroutine to that loop and waits for its result, so one ``Client`` keeps one
pipelined connection across calls and may be shared by many threads (their calls are pipelined
over that connection). ``close()`` (or leaving ``with``) stops the loop and its thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from raftkv.client.aio import AsyncClient, KeyLike, Watcher
from raftkv.kv import WatchFilter, WatchResponse
from raftkv.transport.framing import DEFAULT_MAX_FRAME

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _sync(
    method: Callable[Concatenate[AsyncClient, _P], Awaitable[_R]],
) -> Callable[Concatenate[Client, _P], _R]:
    def call(self: Client, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        async def run() -> _R:
            return await method(self._aio, *args, **kwargs)

        return self._run(run())

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call


class Client:
    """Same arguments, methods and errors as ``AsyncClient``, blocking."""

    def __init__(
        self,
        endpoints: Sequence[str],
        dial_timeout: float = 5.0,
        command_timeout: float = 5.0,
        max_frame_size: int = DEFAULT_MAX_FRAME,
        prefer_leader: bool = True,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="raftkv-client", daemon=True
        )
        self._thread.start()

        async def make() -> AsyncClient:
            return AsyncClient(
                endpoints, dial_timeout, command_timeout, max_frame_size, prefer_leader
            )

        self._closed = False
        self._aio = self._run(make())

    def _run(self, coro: Coroutine[Any, Any, _R]) -> _R:
        if self._loop.is_closed():
            coro.close()
            raise RuntimeError("client closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._run(self._aio.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    put = _sync(AsyncClient.put)
    get = _sync(AsyncClient.get)
    delete = _sync(AsyncClient.delete)
    txn = _sync(AsyncClient.txn)
    compact = _sync(AsyncClient.compact)
    lease_grant = _sync(AsyncClient.lease_grant)
    lease_revoke = _sync(AsyncClient.lease_revoke)
    lease_keep_alive_once = _sync(AsyncClient.lease_keep_alive_once)
    lease_time_to_live = _sync(AsyncClient.lease_time_to_live)
    lease_leases = _sync(AsyncClient.lease_leases)
    member_list = _sync(AsyncClient.member_list)
    status = _sync(AsyncClient.status)

    def watch(
        self,
        key: KeyLike,
        range_end: KeyLike = b"",
        prefix: bool = False,
        from_key: bool = False,
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: Iterable[WatchFilter] = (),
        progress_notify: bool = False,
    ) -> SyncWatcher:
        """A started watch: ``with client.watch(...) as w: for resp in w: ...``."""

        async def start() -> Watcher:
            w = self._aio.watch(
                key, range_end, prefix, from_key, start_revision, prev_kv, filters, progress_notify
            )
            await w.start()
            return w

        return SyncWatcher(self, self._run(start()))


class SyncWatcher:
    """A blocking iterator over a watch's responses; ``cancel()`` ends it."""

    def __init__(self, client: Client, watcher: Watcher) -> None:
        self._client = client
        self._watcher = watcher

    @property
    def watch_id(self) -> int:
        return self._watcher.watch_id

    def __iter__(self) -> Iterator[WatchResponse]:
        return self

    def __next__(self) -> WatchResponse:
        async def step() -> WatchResponse | None:
            try:
                return await self._watcher.__anext__()
            except StopAsyncIteration:
                return None

        resp = self._client._run(step())
        if resp is None:
            raise StopIteration
        return resp

    def cancel(self) -> None:
        self._client._run(self._watcher.cancel())

    def __enter__(self) -> SyncWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()
