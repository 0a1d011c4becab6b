"""AsyncClient's move to the leader: nothing leaks, and watches stay with their connection."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import raftkv.client.aio as aio
from cluster import ThreadCluster, until, until_async
from raftkv.client import AsyncClient
from raftkv.kv.wire import ClientResponse, WatchCancel, WatchResult


def _follower_first(cl: ThreadCluster) -> tuple[int, int, list[str]]:
    lead = cl.wait_leader()
    follower = next(i for i in cl.ids if i != lead)
    eps = [cl.endpoint(follower)] + [cl.endpoint(i) for i in cl.ids if i != follower]
    return lead, follower, eps


def test_close_closes_a_connection_kept_open_for_its_watch(fresh_cluster: ThreadCluster) -> None:
    cl = fresh_cluster
    lead = cl.wait_leader()
    to = next(i for i in cl.ids if i != lead)

    async def main() -> None:
        c = AsyncClient(cl.endpoints, command_timeout=10.0)
        await c.put("r/a", "1")
        old = c._conn
        assert old is not None and c.endpoint == cl.endpoint(lead)
        w = c.watch("r/", prefix=True)
        await w.start()
        cl.loop.call_soon_threadsafe(cl._node(lead).transfer_leader, to)
        await asyncio.to_thread(until, lambda: cl.leader() not in (None, lead))
        new = await asyncio.to_thread(cl.wait_leader)
        for n in range(1000):
            if c.endpoint == cl.endpoint(new):
                break
            await c.put(f"r/{n}", "x")
        assert c._conn is not old and not old.closed  # kept open for the watch
        await c.close()
        assert old.closed and old._task.done()

    asyncio.run(main())


def test_a_watch_created_while_the_client_moves_stays_with_its_connection(
    fresh_cluster: ThreadCluster,
) -> None:
    """The WatchCreate's answer arrives after the client moved to the leader: the watch lives
    on the follower's connection, so its cancel must go there, not to the leader (where the
    same watch id may belong to someone else's watch)."""
    cl = fresh_cluster
    lead, follower, eps = _follower_first(cl)

    async def main() -> None:
        other = AsyncClient([cl.endpoint(lead)], command_timeout=10.0)
        theirs = other.watch("theirs/", prefix=True)
        await theirs.start()
        c = AsyncClient(eps, command_timeout=10.0, prefer_leader=False)
        await c.get("k")
        first = c._conn
        assert first is not None and first.endpoint == cl.endpoint(follower)
        c.prefer_leader = True
        real = first._on_response

        def late(resp: ClientResponse) -> None:  # the WatchCreate's answer, 100 ms late
            if isinstance(resp.body, WatchResult):
                asyncio.get_running_loop().call_later(0.1, real, resp)
            else:
                real(resp)

        first._on_response = late  # type: ignore[method-assign]
        mine = c.watch("mine/", prefix=True)
        starting = asyncio.ensure_future(mine.start())
        await asyncio.sleep(0)
        c._term = 0  # the next answer shows a newer term: the client moves to the leader
        await c.get("k")
        await starting
        await until_async(lambda: c.endpoint == cl.endpoint(lead))
        assert mine._conn is first
        await mine.cancel()
        await other.put("theirs/a", "1")  # their watch was not cancelled by ours
        ev = await asyncio.wait_for(theirs.__anext__(), 10)
        assert [e.kv.key for e in ev.events] == [b"theirs/a"]
        await c.close()
        await other.close()

    asyncio.run(main())


def test_a_connection_cannot_cancel_a_watch_it_does_not_own(cluster: ThreadCluster) -> None:
    lead = cluster.wait_leader()

    async def main() -> None:
        async with AsyncClient([cluster.endpoint(lead)]) as a, AsyncClient(
            [cluster.endpoint(lead)]
        ) as b:
            w = a.watch("own/", prefix=True)
            await w.start()
            await b.get("own/x")  # b's connection exists
            assert b._conn is not None
            resp = await b._conn.send(WatchCancel(w.watch_id))
            assert isinstance(resp.body, WatchResult) and resp.body.response.canceled
            await a.put("own/a", "1")  # a's watch still delivers
            ev = await asyncio.wait_for(w.__anext__(), 10)
            assert [e.kv.key for e in ev.events] == [b"own/a"]
            await w.cancel()

    asyncio.run(main())


def test_a_call_cancelled_while_the_client_looks_for_the_leader_leaks_nothing(
    fresh_cluster: ThreadCluster,
) -> None:
    cl = fresh_cluster
    _, _, eps = _follower_first(cl)
    made: list[aio._Connection] = []
    real_init = aio._Connection.__init__

    async def main() -> None:
        c = AsyncClient(eps, command_timeout=10.0)
        task: asyncio.Task[Any] | None = None

        def init(self: aio._Connection, *args: Any, **kwargs: Any) -> None:
            real_init(self, *args, **kwargs)
            made.append(self)
            if len(made) == 1:  # cancel the put while it asks this member for the leader
                assert task is not None
                asyncio.get_running_loop().call_soon(task.cancel)

        aio._Connection.__init__ = init  # type: ignore[method-assign]
        try:
            task = asyncio.ensure_future(c.put("k", "v"))
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            aio._Connection.__init__ = real_init  # type: ignore[method-assign]
        await c.close()
        assert made and all(m.closed for m in made)

    asyncio.run(main())

