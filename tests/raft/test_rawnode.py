"""The RawNode API: its contract with the host, misuse, and bad input."""

from __future__ import annotations

import random

import pytest
from harness import Net

from raftkv.raft import (
    Config,
    ConfigError,
    ConfState,
    MemoryStorage,
    ProposalDropped,
    RaftError,
    RawNode,
    Role,
    plan,
)
from raftkv.raft.host import Apply, Persist, Send
from raftkv.raft.messages import (
    AppendEntries,
    AppendResponse,
    Heartbeat,
    RequestVote,
    VoteResponse,
    decode_message,
    encode_message,
)
from raftkv.raft.types import Entry


def single() -> RawNode:
    return RawNode(Config(id=1, rng=random.Random(1)), MemoryStorage(ConfState(voters=(1,))))


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="election_tick"):
        RawNode(Config(id=1, election_tick=5, heartbeat_tick=5), MemoryStorage())
    with pytest.raises(ConfigError, match="id"):
        RawNode(Config(id=0), MemoryStorage())


def test_advance_without_or_twice_for_a_ready_raises() -> None:
    n = single()
    n.campaign()
    rd = n.ready()
    with pytest.raises(RaftError):
        n.ready()  # one Ready outstanding at a time
    n.advance(rd)
    with pytest.raises(RaftError):
        n.advance(rd)
    n2 = single()
    with pytest.raises(RaftError):
        n2.advance(rd)


def test_propose_without_a_leader_raises() -> None:
    n = single()
    with pytest.raises(ProposalDropped):
        n.propose(b"x")
    with pytest.raises(ProposalDropped):
        n.read_index(b"r")


def test_single_node_commits_only_after_its_own_persist() -> None:
    # Thesis §10.2.1: the leader counts its own entry toward commit once it is persisted.
    st = MemoryStorage(ConfState(voters=(1,)))
    n = RawNode(Config(id=1, rng=random.Random(1)), st)
    n.campaign()
    rd = n.ready()
    assert rd.soft_state is not None and rd.soft_state.role is Role.LEADER
    assert [e.index for e in rd.entries] == [1] and rd.committed_entries == []
    st.save(rd.hard_state, rd.entries)
    n.advance(rd)
    idx = n.propose(b"x")
    assert idx == 2
    rd = n.ready()
    assert [e.index for e in rd.committed_entries] == [1]  # no-op committed, x not yet
    st.save(rd.hard_state, rd.entries)
    n.advance(rd)
    rd = n.ready()
    assert [e.data for e in rd.committed_entries] == [b"x"]
    assert rd.hard_state is not None and rd.hard_state.commit == 2


def test_plan_orders_persist_before_acknowledgements() -> None:
    net = Net(3)
    net.nodes[1].campaign()
    rd = net.nodes[1].ready()
    steps = plan(rd)
    assert [type(s) for s in steps] == [Send]  # a pre-vote changes no persisted state
    first_send = steps[0]
    assert isinstance(first_send, Send)
    assert all(isinstance(m, RequestVote) and m.pre for m in first_send.messages)
    net.nodes[1].advance(rd)
    net.nodes[1].step(VoteResponse(to=1, frm=2, term=1, pre=True, reject=False))
    rd = net.nodes[1].ready()
    # The candidate's new term and self-vote are durable before it asks for votes.
    assert [type(s) for s in plan(rd)] == [Persist, Send]
    assert rd.hard_state is not None and (rd.hard_state.term, rd.hard_state.vote) == (1, 1)
    net.nodes[1].advance(rd)
    # A follower granting a vote: its response leaves only after the persist.
    vote = RequestVote(to=2, frm=1, term=1, pre=False, last_index=0, last_term=0)
    net.nodes[2].step(vote)
    rd2 = net.nodes[2].ready()
    assert rd2.hard_state is not None and rd2.hard_state.vote == 1
    assert rd2.messages == [] and len(rd2.messages_after_persist) == 1
    steps2 = plan(rd2)
    assert isinstance(steps2[0], Persist) and isinstance(steps2[1], Send)
    assert not any(isinstance(s, Apply) for s in steps2)


def test_one_vote_per_term() -> None:
    net = Net(3)
    n = net.nodes[3]
    n.step(RequestVote(to=3, frm=1, term=5, pre=False, last_index=0, last_term=0))
    n.step(RequestVote(to=3, frm=2, term=5, pre=False, last_index=9, last_term=4))
    rd = n.ready()
    grants = [(m.to, m.reject) for m in rd.messages_after_persist if isinstance(m, VoteResponse)]
    assert grants == [(1, False), (2, True)]
    assert n.status().vote == 1


def test_messages_from_unknown_nodes_or_with_bad_fields_are_dropped_and_counted() -> None:
    net = Net(3)
    n = net.nodes[2]
    before = n.status()
    bad = [
        Heartbeat(to=2, frm=9, term=3, commit=0),  # unknown node
        AppendEntries(to=2, frm=1, term=2, log_term=0, index=-1),  # negative index
        AppendEntries(to=2, frm=1, term=2, log_term=0, index=0, commit=5),  # commit beyond
        AppendEntries(  # entries not contiguous
            to=2, frm=1, term=2, log_term=0, index=0, entries=(Entry(term=2, index=3),)
        ),
        AppendEntries(  # an entry from a future term
            to=2, frm=1, term=2, log_term=0, index=0, entries=(Entry(term=7, index=1),)
        ),
        RequestVote(to=2, frm=1, term=2, pre=False, last_index=0, last_term=5),
        AppendResponse(to=2, frm=3, term=-1, index=0),
        Heartbeat(to=3, frm=1, term=2, commit=0),  # for another node
        Heartbeat(to=2, frm=1, term=2, commit=4),  # commit beyond our log
    ]
    for m in bad:
        n.step(m)
    after = n.status()
    assert after.dropped_messages == before.dropped_messages + len(bad)
    # The only state change allowed: the last heartbeat is from a valid leader of term 2.
    assert (after.commit, after.last_index, after.vote) == (0, 0, 0)


def test_messages_round_trip_through_the_wire_codec() -> None:
    m = AppendEntries(
        to=2, frm=1, term=3, log_term=2, index=7, entries=(Entry(term=3, index=8, data=b"x"),)
    )
    assert decode_message(encode_message(m)) == m


def test_status_reports_progress_on_the_leader_only() -> None:
    net = Net(3)
    net.campaign(1)
    s = net.nodes[1].status()
    assert s.role is Role.LEADER and set(s.progress) == {1, 2, 3}
    assert s.progress[2].match == 1
    assert net.nodes[2].status().progress == {}
    d = s.to_dict()
    assert d["role"] == "leader" and d["progress"]["2"]["state"] == "replicate"  # type: ignore[index]


def test_transfer_leader_requires_a_leader_and_a_voter() -> None:
    net = Net(3)
    net.campaign(1)
    with pytest.raises(RaftError):
        net.nodes[2].transfer_leader(3)
    with pytest.raises(RaftError):
        net.nodes[1].transfer_leader(9)
    net.cut(1, 3)
    net.propose(1, b"a")
    net.nodes[1].transfer_leader(3)  # 3 is behind: caught up first
    with pytest.raises(ProposalDropped):
        net.nodes[1].propose(b"during transfer")
    net.heal()
    net.tick_all(6)
    assert net.leader() == 3


def test_plan_applies_already_durable_entries_before_the_persist() -> None:
    net = Net(3)
    net.campaign(1)
    net.cut(1, 2)
    net.propose(1, b"a")  # committed by 1 and 3; node 2 never saw it
    follower = net.nodes[2]
    # One AppendEntries brings node 2 entry 2 (persisted, not yet known committed); the next
    # carries entry 3 and commit 3: entry 2 is applied before the persist, entry 3 after.
    follower.step(
        AppendEntries(
            to=2, frm=1, term=1, log_term=1, index=1, entries=(Entry(term=1, index=2, data=b"a"),)
        )
    )
    rd = follower.ready()
    net.storage[2].save(rd.hard_state, rd.entries)
    follower.advance(rd)
    follower.step(
        AppendEntries(
            to=2,
            frm=1,
            term=1,
            log_term=1,
            index=2,
            entries=(Entry(term=1, index=3, data=b"b"),),
            commit=3,
        )
    )
    rd = follower.ready()
    steps = plan(rd)
    kinds = [type(s).__name__ for s in steps]
    assert kinds == ["Apply", "Persist", "Send", "Apply"], kinds
    early, late = steps[0], steps[3]
    assert isinstance(early, Apply) and [e.index for e in early.entries] == [2]
    assert isinstance(late, Apply) and [e.index for e in late.entries] == [3]
