"""Proposal: settled once; done-callbacks run inside the settling call; awaitable."""

from __future__ import annotations

import asyncio

import pytest

from raftkv.node import Proposal


def test_callbacks_run_inside_the_call_that_settles_in_order() -> None:
    p = Proposal()
    seen: list[str] = []
    p.add_done_callback(lambda q: seen.append(f"a:{q.result()}"))
    p.add_done_callback(lambda q: seen.append(f"b:{q.result()}"))
    assert not p.done() and seen == []
    p.set_result(7)
    assert seen == ["a:7", "b:7"]  # no turn of an event loop needed (there is none here)
    p.add_done_callback(lambda q: seen.append("late"))  # already settled: called at once
    assert seen[-1] == "late"
    with pytest.raises(asyncio.InvalidStateError):
        p.set_result(8)


def test_an_error_reaches_result_and_a_failing_callback_stops_no_other(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p = Proposal()
    with pytest.raises(asyncio.InvalidStateError):
        p.result()
    seen: list[BaseException | None] = []

    def bad(q: Proposal) -> None:
        raise RuntimeError("a caller's bug")

    p.add_done_callback(bad)
    p.add_done_callback(lambda q: seen.append(q.exception()))
    err = ValueError("refused")
    p.set_exception(err)
    assert seen == [err]
    assert "done-callback failed" in caplog.text
    with pytest.raises(ValueError, match="refused"):
        p.result()


def test_awaiters_wake_and_a_cancelled_one_leaves_the_others_alone() -> None:
    async def main() -> None:
        p = Proposal()
        first = asyncio.ensure_future(_await(p))
        second = asyncio.ensure_future(_await(p))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        p.set_result("ok")
        assert await second == "ok"
        assert first.cancelled()
        assert await p == "ok"  # settled: returns at once

        failed = Proposal()
        waiter = asyncio.ensure_future(_await(failed))
        await asyncio.sleep(0)
        failed.set_exception(KeyError("k"))
        with pytest.raises(KeyError):
            await waiter

    asyncio.run(main())


async def _await(p: Proposal) -> object:
    return await p
