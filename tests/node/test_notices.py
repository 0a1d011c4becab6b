"""Commit notices: held, replaced by a later append, sent first before anything else, sent
when the delay ends; and in a running cluster, every follower still learns every commit."""

from __future__ import annotations

import asyncio

from node_helpers import Cluster, run, until

from raftkv.node.notices import CommitNotices
from raftkv.raft.messages import AppendEntries, Heartbeat, Message, ReadIndexResponse
from raftkv.raft.types import Entry


def app(to: int, index: int, commit: int, n: int = 0, term: int = 2) -> AppendEntries:
    ents = tuple(Entry(term=term, index=index + k + 1, data=b"x") for k in range(n))
    return AppendEntries(
        to=to, frm=1, term=term, log_term=term, index=index, entries=ents, commit=commit
    )


class Wire:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    def __call__(self, messages: tuple[Message, ...]) -> None:
        self.sent.extend(messages)


def with_notices(delay: float, body: object) -> None:
    async def main() -> None:
        wire = Wire()
        notices = CommitNotices(delay, wire)
        try:
            await body(notices, wire)  # type: ignore[operator]
        finally:
            notices.close()

    asyncio.run(main())


def test_a_later_append_replaces_a_held_notice() -> None:
    async def body(notices: CommitNotices, wire: Wire) -> None:
        notice = app(2, index=5, commit=5)
        notices.send([notice, app(3, index=5, commit=5)])
        assert wire.sent == []  # both held
        nxt = app(2, index=5, commit=5, n=1)
        notices.send([nxt])
        assert wire.sent == [nxt] and notices.replaced == 1
        notices.flush()  # the one to 3 was not replaced: it goes out
        assert wire.sent == [nxt, app(3, index=5, commit=5)]
        notices.flush()
        assert len(wire.sent) == 2

    with_notices(10.0, body)


def test_any_other_message_to_that_follower_sends_the_notice_first() -> None:
    async def body(notices: CommitNotices, wire: Wire) -> None:
        notice = app(2, index=7, commit=7)
        read = ReadIndexResponse(to=2, frm=1, term=2, index=7, ctx=b"r")
        hb = Heartbeat(to=3, frm=1, term=2, commit=7)
        notices.send([notice, hb, read])
        assert wire.sent == [hb, notice, read]
        assert notices.replaced == 0

    with_notices(10.0, body)


def test_an_append_that_does_not_say_as_much_does_not_replace_it() -> None:
    async def body(notices: CommitNotices, wire: Wire) -> None:
        notice = app(2, index=9, commit=9)
        behind = app(2, index=4, commit=9, n=1)  # a retry further back: its answer says less
        notices.send([notice, behind])
        assert wire.sent == [notice, behind]
        newer_term = app(2, index=9, commit=9, n=1, term=3)
        notices.send([app(2, index=9, commit=9), newer_term])
        assert wire.sent[-2:] == [app(2, index=9, commit=9), newer_term]
        assert notices.replaced == 0

    with_notices(10.0, body)


def test_a_notice_to_a_waiting_follower_is_never_held() -> None:
    async def body(notices: CommitNotices, wire: Wire) -> None:
        notices.send([app(2, index=5, commit=5), app(3, index=5, commit=5)], waiting={3})
        assert wire.sent == [app(3, index=5, commit=5)]  # 3 forwarded an entry up to 5
        notices.send([app(2, index=6, commit=6)], waiting={2})  # replaces the held one
        assert wire.sent[-1] == app(2, index=6, commit=6) and notices.replaced == 1
        notices.flush()
        assert len(wire.sent) == 2

    with_notices(10.0, body)


def test_a_newer_notice_keeps_the_time_the_news_has_waited() -> None:
    async def body(notices: CommitNotices, wire: Wire) -> None:
        notices.send([app(2, index=5, commit=5)])
        first = notices.held()[2]
        await asyncio.sleep(0.01)
        notices.send([app(2, index=5, commit=6)])  # a newer notice: the follower still waits
        assert notices.held() == {2: first}
        notices.send([app(2, index=6, commit=6, n=1)])  # an append delivers the news
        await asyncio.sleep(0.01)
        notices.send([app(2, index=7, commit=7)])  # fresh news, held from now
        assert notices.held()[2] > first
        assert wire.sent == [app(2, index=6, commit=6, n=1)] and notices.replaced == 2

    with_notices(10.0, body)


def test_a_held_notice_is_sent_when_the_delay_ends() -> None:
    async def body(notices: CommitNotices, wire: Wire) -> None:
        notices.send([app(2, index=3, commit=3)])
        assert wire.sent == []
        await until(lambda: len(wire.sent) == 1, timeout=20)
        assert wire.sent == [app(2, index=3, commit=3)]

    with_notices(0.01, body)


def test_nothing_is_held_with_no_delay_and_close_drops_what_is_held() -> None:
    async def body(notices: CommitNotices, wire: Wire) -> None:
        notices.send([app(2, index=3, commit=3)])
        assert wire.sent == [app(2, index=3, commit=3)]

    with_notices(0, body)

    async def closing(notices: CommitNotices, wire: Wire) -> None:
        notices.send([app(2, index=3, commit=3)])
        notices.close()
        await asyncio.sleep(0.05)  # past the delay: the timer must be gone
        assert wire.sent == []

    with_notices(0.01, closing)


def test_followers_learn_every_commit_and_one_at_a_time_proposals_replace_notices() -> None:
    async def body(c: Cluster) -> None:
        await until(lambda: c.leader() is not None)
        lead = c.leader()
        assert lead is not None
        for _ in range(30):  # one at a time: each commit's notice meets the next append
            await c.nodes[lead].propose(b"y")
        await until(lambda: all(c.sms[i].values.get("y") == 30 for i in c.ids), timeout=20)
        assert c.nodes[lead].notices.replaced > 0

    run(body, commit_notice_ms=50)


def test_with_notices_off_none_is_replaced() -> None:
    async def body(c: Cluster) -> None:
        await until(lambda: c.leader() is not None)
        lead = c.leader()
        assert lead is not None
        for _ in range(10):
            await c.nodes[lead].propose(b"z")
        await until(lambda: all(c.sms[i].values.get("z") == 10 for i in c.ids), timeout=20)
        assert c.nodes[lead].notices.replaced == 0

    run(body, commit_notice_ms=0)


def test_a_follower_hears_at_once_of_the_commit_of_what_it_forwarded() -> None:
    """A follower answers its client only once it applies the write it forwarded, so the
    commit index that covers it goes out at once. Here a held notice would wait a minute and
    the first heartbeat comes 10 s after the election: each write must take far less."""

    async def body(c: Cluster) -> None:
        c.nodes[1].campaign()
        await until(lambda: c.leader() == 1 and c.nodes[2].leader() == 1, timeout=20)
        for n in range(1, 6):
            assert await asyncio.wait_for(c.nodes[2].propose(b"f"), 5) == n
        assert c.sms[2].values["f"] == 5

    run(body, heartbeat_tick=5000, election_tick=50_000, commit_notice_ms=60_000)
