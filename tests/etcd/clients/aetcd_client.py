"""Run by the aetcd client's own venv (not by pytest): argv = host port. Exits 0 when every
check passed; prints the first failure otherwise."""

import asyncio
import sys

import aetcd


async def main(host: str, port: int) -> None:
    async with aetcd.Client(host=host, port=port, timeout=10) as c:
        await c.put(b"ae/a", b"1")
        await c.put(b"ae/b", b"2")
        got = await c.get(b"ae/a")
        assert got is not None and got.value == b"1", got
        rng = await c.get_prefix(b"ae/")
        assert [(kv.key, kv.value) for kv in rng] == [(b"ae/a", b"1"), (b"ae/b", b"2")], rng
        assert await c.get(b"ae/none") is None
        ok, _ = await c.transaction(
            compare=[c.transactions.value(b"ae/a") == b"1"],
            success=[c.transactions.put(b"ae/t", b"yes")],
            failure=[c.transactions.put(b"ae/t", b"no")],
        )
        assert ok and (await c.get(b"ae/t")).value == b"yes"
        ok, _ = await c.transaction(
            compare=[c.transactions.version(b"ae/a") > 5],
            success=[], failure=[c.transactions.put(b"ae/t", b"no")],
        )
        assert not ok and (await c.get(b"ae/t")).value == b"no"
        # watch: a put seen on the stream
        watch = await c.watch_prefix(b"ae/w")
        await asyncio.sleep(0.3)
        await c.put(b"ae/w1", b"x")
        async def first() -> object:
            async for ev in watch:
                return ev
            return None
        ev = await asyncio.wait_for(first(), 10)
        assert ev.kv.key == b"ae/w1" and ev.kv.value == b"x", ev
        await watch.cancel()
        # leases
        lease = await c.lease(60)
        await c.put(b"ae/l", b"v", lease=lease)
        assert 55 <= await lease.remaining_ttl() <= 60
        assert await lease.granted_ttl() == 60
        assert await lease.keys() == [b"ae/l"]
        await lease.refresh()
        await lease.revoke()
        assert await c.get(b"ae/l") is None
        d = await c.delete_prefix(b"ae/")
        assert d.deleted == 4, d.deleted  # a, b, t, w1 (l went with its lease)
        st = await c.status()
        assert st.version == "3.4.23", st.version
    print("aetcd: ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
